"""The engine without Kafka: config and member events in, output events out, through the same
rule composition the worker runs (`processors.rules.member`), offline and deterministic.

It routes as the worker does: config events fold into the configuration, a `DayStarted` and
a static offer's `OfferTargetingTick` reach every member, each other input reaches the member
its key names, and the internal
two-member steps (transfer, merge) come back in as the receiving member's input, the way the
internal steps topic feeds them to the worker; a use of an offer with offer-level limits is
decided by an in-memory copy of the offer's agent (`rules.offers.budget`), a reward's grants
by a copy of the reward's agent (`rules.rewards.stock`), and a promo code's use (with the use
of the offer it unlocks, ADR 37) by a copy of the promotion's (`rules.codes.uses`); their
answers come back in the same way. It is the dry run users take before publishing
an offer (`loyalty simulate`) and the runner of the scenario files.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from processors.contract.base import Event
from processors.contract.clock import DayStarted
from processors.contract.config import TOPIC as CONFIG_TOPIC
from processors.contract.config import OfferPublished, RewardCodesAdded
from processors.contract.internal import (
    OFFER_USES_TOPIC,
    PROMOTION_USES_TOPIC,
    REWARD_STOCK_TOPIC,
)
from processors.contract.internal import TOPIC as STEPS_TOPIC
from processors.contract.targeting import OfferTargetingTick
from processors.rules import identity
from processors.rules import member as rules
from processors.rules.codes import uses
from processors.rules.member import Config, MemberState
from processors.rules.offers import budget
from processors.rules.offers.targeting import targeting_tick
from processors.rules.refusals import InputRefused
from processors.rules.rewards import stock
from processors.rules.rewards.state import RewardStock


@dataclass
class Simulation:
    """The state of a simulated engine: configuration and every member's state."""

    config: Config = field(default_factory=Config)
    members: dict[str, MemberState] = field(default_factory=dict)
    offers: dict[str, budget.OfferUses] = field(default_factory=dict)  # offer-level limits
    stocks: dict[str, RewardStock] = field(default_factory=dict)  # reward stocks
    promotions: dict[str, uses.PromotionUses] = field(default_factory=dict)  # code uses
    notes: list[str] = field(default_factory=list)

    def feed(self, event: Event) -> list[Event]:
        """Apply one input event (and the internal steps it causes); the outputs, in order."""
        outputs: list[Event] = []
        queue: deque[Event] = deque([event])
        while queue:
            message = queue.popleft()
            if message.topic == CONFIG_TOPIC:
                if isinstance(message, RewardCodesAdded):  # as the worker's config fan-out
                    queue.append(stock.stocked(message))
                    continue
                self._note(message, self.config.apply(message))
                # A static audience is decided on every member, as the worker's tick does.
                if isinstance(message, OfferPublished) and (tick := targeting_tick(message)):
                    queue.append(tick)
                continue
            if message.topic == REWARD_STOCK_TOPIC:
                # The agent keyed by the reward decides, in arrival order (ADR 20).
                assert isinstance(message, stock.StockInput)
                decided = stock.decide(self.stocks.get(message.reward_id), message)
                self.stocks[message.reward_id] = decided.state
                self._note(message, decided.note)
                outputs += decided.emitted
                queue.extend(e for e in decided.emitted if e.topic == STEPS_TOPIC)
                continue
            if isinstance(message, uses.UsesInput):
                # The agent keyed by the promotion counts the use, in arrival order (ADR 23).
                counted = uses.decide(self.promotions.get(message.promotion_id), message)
                self.promotions[message.promotion_id] = counted.state
                outputs += counted.emitted
                queue.extend(e for e in counted.emitted if e.topic == STEPS_TOPIC)
                continue
            if isinstance(message, budget.UsesInput):
                # The agent keyed by the offer decides, in arrival order (ADR 14).
                decision = budget.decide(self.offers.get(message.offer_id), message)
                self.offers[message.offer_id] = decision.state
                outputs += decision.emitted
                # Answers go back to the members; an OfferClosed to the configuration.
                queue.extend(e for e in decision.emitted if e.topic in (STEPS_TOPIC, CONFIG_TOPIC))
                continue
            if not isinstance(message, rules.MemberInput):
                self._note(message, f"{type(message).__name__} is not simulated yet")
                continue
            everyone = isinstance(message, DayStarted | OfferTargetingTick)
            targets = sorted(self.members) if everyone else None
            for member_id in targets or [message.partition_key()]:
                state = self.members.setdefault(member_id, MemberState(member_id))
                try:
                    result = rules.handle(state, message, self.config)
                except identity.ConflictError as conflict:  # the worker dead-letters it
                    self._note(message, f"refused as a conflict: {conflict}")
                    continue
                except InputRefused as refused:  # the worker dead-letters it
                    self._note(message, f"refused: {refused}")
                    continue
                if rules.is_empty(state):  # nothing known (an anonymous basket): kept nowhere
                    del self.members[member_id]
                for note in result.notes:
                    self._note(message, note)
                for output in result.emitted:
                    outputs.append(output)
                    if output.topic in (STEPS_TOPIC, OFFER_USES_TOPIC, REWARD_STOCK_TOPIC,
                                        PROMOTION_USES_TOPIC):  # fmt: skip
                        queue.append(output)
        return outputs

    def run(self, events: list[Event]) -> list[Event]:
        """Feed every event in order; all outputs, in order."""
        return [output for event in events for output in self.feed(event)]

    def _note(self, event: Event, note: str) -> None:
        if note:
            self.notes.append(f"{type(event).__name__} {event.event_id}: {note}")
