"""The reward-stock agent: each reward's code batches and the members' requests for its
grants, keyed by reward, decided in arrival order by `processors.rules.rewards.stock`
(docs/adr/0020-rewards.md) → allocations and refusals to the members' partitions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from processors.contract.base import Event
from processors.frontdoor import Delivered
from processors.rules.rewards import stock
from processors.rules.rewards.state import RewardStock
from processors.runtime.batch import Decision
from processors.runtime.table import Table


class RewardStocks:
    """Decides each reward's stock on the reward's state."""

    name = "reward-stock"

    async def prepare(self, records: Sequence[Delivered]) -> None:
        return None

    def keys(self, event: Event, delivered: Delivered, table: Table | None) -> Iterable[str]:
        # The front door lets nothing else onto this topic.
        assert isinstance(event, stock.StockInput)
        return (event.reward_id,)

    def decide(self, key: str, state: RewardStock | None, event: Event) -> Decision[RewardStock]:
        assert isinstance(event, stock.StockInput)
        decision = stock.decide(state, event)
        return Decision(decision.state, decision.emitted, [decision.note] if decision.note else [])

    def load(self, key: str, raw: bytes) -> RewardStock:
        return RewardStock.model_validate_json(raw)

    def dump(self, state: RewardStock) -> bytes | None:
        return state.model_dump_json().encode()
