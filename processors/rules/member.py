"""One member's whole state and the single entry point shared by the worker, `loyalty simulate`
and the tests: the ledger rules and the offer rules composed (ADR 10).

For a purchase the offers are evaluated on the transaction, the ledger books the base earn
(`TRANSACTION_ADD`) and then one `OFFER_AWARD` per award; for a return the offers decide which
awards no longer hold and the ledger takes them back in the same `TRANSACTION_RETURN` event as
the base earn. Everything else is the ledger's alone. Like `ledger.handle`, `handle` takes
ownership of the state and changes it in place; it never reads a clock.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel

from processors.base.switches import switched_on
from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.base import Event
from processors.contract.clock import DayStarted
from processors.contract.common import Source
from processors.contract.config import (
    AudienceDefined,
    AudienceUploaded,
    ChallengePublished,
    OfferClosed,
    OfferEndDateExtended,
    OfferPublished,
    OfferWithdrawn,
    ProgramConfigured,
    PromotionCodesIssued,
    RewardCodesAdded,
    RewardPublished,
    RewardStoreConfigured,
)
from processors.contract.enrolments import MemberEnrolled, MemberProfileUpdated, MembersMerged
from processors.contract.internal import (
    ActivityForwarded,
    MemberMergedAway,
    OfferUseDenied,
    OfferUseGranted,
    OfferUseHeld,
    OfferUseHoldReleased,
    PromoCodeLinkAnswered,
    PromoCodeUseRequested,
    PurchaseForwarded,
    RewardAllocated,
    RewardAllocationRefused,
)
from processors.contract.offer_definition import OfferRewardKind
from processors.contract.offers import OfferCompleted
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import (
    IssuedOfferLockRequested,
    IssuedOfferRedeemRequested,
    IssuedOfferUnlockRequested,
    OfferLoadRequested,
    PointsRedemptionRequested,
    PreferencesChangeRequested,
    PromoCodeLinkRequested,
    RewardGrantRecordRequested,
    RewardRedemptionRequested,
    RewardStoreOfferPurchaseRequested,
)
from processors.contract.rewards import RewardGrantReason
from processors.contract.targeting import OfferTargetingTick
from processors.contract.transactions import TransactionCompleted, TransactionReturned
from processors.rules import identity, preferences
from processors.rules.arithmetic import derived_id
from processors.rules.challenges import progress as challenges
from processors.rules.challenges.catalogue import Challenges
from processors.rules.challenges.state import MemberChallenges
from processors.rules.codes import checkout, link
from processors.rules.codes.link import MemberCodes
from processors.rules.codes.promotions import Promotions
from processors.rules.ledger import handle as ledger
from processors.rules.ledger import policy, purchases
from processors.rules.ledger.awards import (
    ChallengeCredit,
    OfferCredit,
    OfferDebit,
    credit_challenge_award,
    credit_offer_award,
)
from processors.rules.ledger.state import MemberLedger, Purchase
from processors.rules.offers import evaluate as offers
from processors.rules.offers import facts, held_uses, limits, retention, schedule, targeting
from processors.rules.offers.catalogue import Catalogue
from processors.rules.offers.discounts import basket_cents
from processors.rules.offers.state import MemberOffers, PurchaseRecord
from processors.rules.preferences import MemberPreferences
from processors.rules.refusals import InputRefused
from processors.rules.rewards import external, grants, merge, redeem, store, wallet
from processors.rules.rewards.state import FreeGrant, MemberRewards

TargetingInput = OfferLoadRequested | OfferTargetingTick
RewardInput = RewardRedemptionRequested | RewardAllocated | RewardAllocationRefused
RewardInput |= RewardStoreOfferPurchaseRequested | IssuedOfferLockRequested
RewardInput |= IssuedOfferRedeemRequested | IssuedOfferUnlockRequested
RewardInput |= PromoCodeLinkRequested | PromoCodeLinkAnswered
RewardInput |= PreferencesChangeRequested | RewardGrantRecordRequested
MemberInput = ledger.LedgerInput | MemberProfileUpdated | OfferUseGranted | OfferUseDenied
MemberInput |= OfferUseHeld | OfferUseHoldReleased
MemberInput |= TargetingInput | RewardInput
ConfigInput = ProgramConfigured | OfferPublished | OfferEndDateExtended | OfferWithdrawn
ConfigInput |= OfferClosed | AudienceDefined
ConfigInput |= RewardPublished | PromotionCodesIssued | ChallengePublished
ConfigInput |= RewardStoreConfigured


@dataclass
class Config:
    """What the rules read from the config topic: programmes and the offer catalogue."""

    programs: dict[str, ProgramConfigured] = field(default_factory=dict)
    catalogue: Catalogue = field(default_factory=Catalogue)
    audiences: targeting.Audiences = field(default_factory=targeting.Audiences)
    # Offers whose audience is decided by the clock or a trigger (ADR 13).
    later: set[str] = field(default_factory=set)
    # When each retired offer was withdrawn: its end, if earlier than `ends_at` (retention).
    withdrawn: dict[str, datetime] = field(default_factory=dict)
    # The reward catalogue: each reward's latest version (ADR 20).
    rewards: dict[str, RewardPublished] = field(default_factory=dict)
    # Reward stores: each store's latest version, withdrawn ones too (ADR 33).
    reward_stores: dict[str, RewardStoreConfigured] = field(default_factory=dict)
    # Code-linked promotions and their codes (ADR 23).
    promotions: Promotions = field(default_factory=Promotions)
    # Published challenges (ADR 27).
    challenges: Challenges = field(default_factory=Challenges)

    def runs_in(self, market: str) -> bool:
        """Whether any programme or promotion is configured for `market` (else nothing of
        this engine can apply to a basket there)."""
        return any(p.market == market for p in self.programs.values()) or any(
            t.market == market for t in self.promotions.terms.values()
        )

    def apply(self, event: Event) -> str:
        """Fold one config event in; returns a note when it changed nothing (and why)."""
        match event:
            case ProgramConfigured():
                self.programs[event.program_id] = event
            case OfferPublished():
                self.catalogue.publish(event)
                self.withdrawn.pop(event.offer_id, None)
                if event.targeting.timing in targeting.LATER_TIMINGS:
                    self.later.add(event.offer_id)
            case AudienceUploaded():
                return self.audiences.apply(event)
            case AudienceDefined():
                return self.audiences.define(event)
            case OfferWithdrawn():
                if self.catalogue.get(event.offer_id) is not None:
                    self.withdrawn[event.offer_id] = event.occurred_at
                self.catalogue.withdraw(event.offer_id)
            case OfferEndDateExtended():
                return self._extend(event)
            case OfferClosed():
                if self.catalogue.get(event.offer_id) is None:
                    return f"closing of unknown or withdrawn offer {event.offer_id} ignored"
                self.catalogue.close(event.offer_id, event.occurred_at)
            case RewardPublished():
                self.rewards[event.reward_id] = event
            case RewardStoreConfigured():
                self.reward_stores[event.reward_store_id] = event
            case RewardCodesAdded():
                return "a reward's codes are its stock agent's (reward-stock topic)"
            case PromotionCodesIssued():
                return self.promotions.apply(event)
            case ChallengePublished():
                return self.challenges.publish(event)
            case _:
                return f"{type(event).__name__} is not read by the member rules"
        return ""

    def end_of(self, offer_id: str) -> datetime | None:
        """When nothing counts towards the offer any more (None: unknown offer)."""
        return retention.end_of(self.catalogue.definition(offer_id), self.withdrawn.get(offer_id))

    def _extend(self, event: OfferEndDateExtended) -> str:
        offer = self.catalogue.get(event.offer_id)
        if offer is None:
            return f"extension of unknown offer {event.offer_id} refused"
        program = self.programs.get(offer.program_id)
        refusal = schedule.extension_refusal(
            offer,
            offer.schedule.ends_at,
            event.ends_at,
            at=event.occurred_at,
            enabled=program is not None and program.offer_end_date_extension_enabled,
            # Run its course: its total uses or budget spent (the engine closed it).
            completed=self.catalogue.closed_at(event.offer_id) is not None,
        )
        if refusal is not None:
            return f"extension of {event.offer_id} refused: {refusal}"
        self.catalogue.extend(event.offer_id, event.ends_at)
        return ""


@dataclass
class MemberState:
    """Everything the rules keep about one member; None parts are not known yet."""

    member_id: str
    ledger: MemberLedger | None = None
    offers: MemberOffers | None = None
    rewards: MemberRewards | None = None
    codes: MemberCodes | None = None
    challenges: MemberChallenges | None = None
    preferences: MemberPreferences | None = None
    saved: dict[tuple[str, str], _Saved] = field(default_factory=dict, repr=False, compare=False)
    """The purchase records as last stored or loaded (`dump_state`): not the rules' concern."""


class _Stored(BaseModel):
    """How a member's state is stored (the processor's table value), its purchases apart."""

    ledger: MemberLedger | None = None
    offers: MemberOffers | None = None
    rewards: MemberRewards | None = None
    codes: MemberCodes | None = None
    challenges: MemberChallenges | None = None
    preferences: MemberPreferences | None = None


_Record = Purchase | PurchaseRecord
_Saved = tuple[_Record, tuple[int, int], bytes | None]
"""A purchase record, its `revision` and its stored line (None: to be written again)."""

_APART = {"ledger": {"purchases": True}, "offers": {"purchases": True}}

VERIFY_SAVED = os.environ.get("LOYALTY_VERIFY_SAVED_STATE", "") == "1"
"""Check every purchase record reused by `dump_state` against its fresh JSON (the tests)."""
SAVE_AS_LINES = switched_on("LOYALTY_STATE_LINES")
"""False: save states as one JSON document, which every earlier version reads (the purchases'
lines changed layout in the first and second addenda of ADR 24), for an upgrade that may be
rolled back or runs old and new workers side by side; every format reads."""


def dump_state(state: MemberState) -> bytes:
    """The bytes a member's state is saved as: one line of JSON for all but the purchases,
    then one line per purchase record kept by the ledger (`l`) or the offers (`o`):
    `kind<TAB>"transaction id"<TAB>head<TAB>rest`, the record's head read at once and the
    rest (its lines) only when a rule asks for it (`deferred.Deferred`).

    A member keeps every purchase of the returns window twice, line by line: most of its
    bytes, written again after every batch that touches the member (9 KB at the median on
    the benchmark's mix; 95 KB after 20 purchases, where the JSON took a quarter of the CPU:
    docs/performance.md). A record changes only through a return or a redemption against it
    (`revision`), so one stored or loaded at the same revision is reused as it was (a line
    read from storage keeps the JSON the version that wrote it produced, and one whose rest
    was never read writes that rest back as it was). `SAVE_AS_LINES` false: one JSON
    document, which every earlier version reads."""
    stored = _Stored(
        ledger=state.ledger, offers=state.offers, rewards=state.rewards, codes=state.codes,
        challenges=state.challenges, preferences=state.preferences,
    )  # fmt: skip
    if not SAVE_AS_LINES:
        state.saved = {}
        return stored.model_dump_json().encode()
    lines = [stored.model_dump_json(exclude=_APART).encode()]
    before: dict[tuple[str, str], _Saved] = state.saved
    saved: dict[tuple[str, str], _Saved] = {}
    for kind, records in _records(state):
        for transaction_id, record in records.items():
            key = (kind, transaction_id)
            revision = record.revision
            kept = before.get(key)
            if kept is not None and kept[0] is record and kept[1] == revision and kept[2]:
                line = kept[2]
                if VERIFY_SAVED and line != _line(kind, transaction_id, record):
                    raise AssertionError(f"{kind} {transaction_id} changed at revision {revision}")
            else:
                line = _line(kind, transaction_id, record)
            saved[key] = (record, revision, line)
            lines.append(line)
    state.saved = saved
    return b"\n".join(lines)


def _records(state: MemberState) -> list[tuple[str, Mapping[str, _Record]]]:
    kept: list[tuple[str, Mapping[str, _Record]]] = []
    if state.ledger is not None:
        kept.append(("l", state.ledger.purchases))
    if state.offers is not None:
        kept.append(("o", state.offers.purchases))
    return kept


def _line(kind: str, transaction_id: str, record: _Record) -> bytes:
    head, rest = record.stored()
    return b"\t".join((kind.encode(), json.dumps(transaction_id).encode(), head, rest))


def load_state(member_id: str, raw: bytes | str) -> MemberState:
    """A member's state from its saved bytes (`dump_state`); one saved as a single JSON
    document (before its purchases were lines of their own) reads the same, and a bare ledger
    (saved before the offer rules joined it) reads as a member without offers yet."""
    data = raw.encode() if isinstance(raw, str) else raw
    head, *lines = data.split(b"\n")
    if not head.startswith(b'{"ledger"'):
        return MemberState(member_id, MemberLedger.model_validate_json(head))
    stored = _Stored.model_validate_json(head)
    state = MemberState(member_id, stored.ledger, stored.offers, stored.rewards, stored.codes,
                        stored.challenges, stored.preferences)  # fmt: skip
    for number, line in enumerate(lines, 2):
        where = f"member {member_id}'s stored state, line {number}"
        try:
            key, record, current = _read_line(line, stored, state.saved, where)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        # A line of the first layout is written again in the current one at the next save.
        state.saved[key] = (record, record.revision, line if current else None)
    return state


def _read_line(
    line: bytes, stored: _Stored, read: Mapping[tuple[str, str], _Saved], where: str
) -> tuple[tuple[str, str], _Record, bool]:
    """One purchase record's line, its record put where it belongs in `stored`; and whether
    the line has the current layout (a head and the rest)."""
    try:
        kind, quoted, *body = line.split(b"\t", 3)
        transaction_id = json.loads(quoted)
    except ValueError:
        raise ValueError(f"not a purchase line: {line[:60]!r}") from None
    if not body:
        raise ValueError(f"not a purchase line: {line[:60]!r}")
    if not isinstance(transaction_id, str):
        raise ValueError(f"not a transaction id: {quoted[:60]!r}")
    if (kind.decode(errors="replace"), transaction_id) in read:
        raise ValueError(f"purchase {transaction_id!r} stored twice")
    record: _Record
    if kind == b"l":
        if stored.ledger is None:
            raise ValueError(f"a ledger purchase {transaction_id!r} with no ledger")
        record = stored.ledger.purchases[transaction_id] = _record(Purchase, body, where)
        if record.transaction_id != transaction_id:
            raise ValueError(f"ledger purchase {record.transaction_id!r} on the line of "
                             f"{transaction_id!r}")  # fmt: skip
    elif kind == b"o":
        if stored.offers is None:
            raise ValueError(f"an offers purchase {transaction_id!r} with no offers")
        record = stored.offers.purchases[transaction_id] = _record(PurchaseRecord, body, where)
    else:
        raise ValueError(f"a stored purchase of unknown kind {kind!r}")
    return (kind.decode(), transaction_id), record, len(body) == 2


_R = TypeVar("_R", Purchase, PurchaseRecord)


def _record(kind: type[_R], body: list[bytes], where: str) -> _R:
    """A record from its line's columns: its head and the rest, read when asked for; or, as
    the first lines were written, one JSON object read at once."""
    if len(body) == 1:
        return kind.model_validate_json(body[0])
    return kind.unread(body[0], body[1], where)


def is_empty(state: MemberState) -> bool:
    """True when nothing is known of the member (nothing worth saving)."""
    parts = (state.ledger, state.offers, state.rewards, state.codes, state.challenges,
             state.preferences)  # fmt: skip
    return all(part is None for part in parts)


@dataclass
class MemberResult:
    """The member's next state and what to emit, in order."""

    state: MemberState
    emitted: list[Event] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def take(self, result: ledger.Result) -> None:
        self.state.ledger = result.state
        self.emitted += result.emitted
        if result.note:
            self.notes.append(result.note)


def handle(state: MemberState, message: MemberInput, config: Config) -> MemberResult:
    """Apply one member-keyed input to the member's ledger and offers."""
    result = MemberResult(state)
    if isinstance(message, ActivityForwarded):
        # Recorded for a member merged into this one: counted here as this member's.
        message = message.activity()
    if isinstance(message, TransactionCompleted | TransactionReturned) and not message.member_id:
        # An anonymous customer's basket, keyed by its transaction: no member to credit, and
        # nothing to keep (promo codes it carries are counted by their own agent).
        result.notes.append("anonymous customer: no member to credit")
        if isinstance(message, TransactionCompleted):
            _anonymous_codes(result, message, config)
        return result
    if isinstance(message, TransactionCompleted | TransactionReturned):
        # Refused whole, before anything changes (parked ones too, never later on enrolment).
        wrong = policy.currency_refusal(config.programs.values(), message.market, message.currency)
        if wrong is not None:
            raise InputRefused("currency_mismatch", wrong)
    match message:
        case MemberEnrolled():
            _enrol(result, message, config)
        case MemberProfileUpdated():
            tier = state.offers.tier if state.offers is not None else None
            state.offers = offers.update_profile(state.offers, message)
            if _active(state) and state.offers.tier not in (None, tier):  # type: ignore[union-attr]
                _trigger(result, config, (ActivityKind.CUSTOM, targeting.TIER_TRIGGER), message)
        case OfferTargetingTick() | OfferLoadRequested() | DayStarted():
            _target(result, message, config)
        case TransactionCompleted():
            _purchase(result, message, config)
        case PurchaseForwarded():
            _purchase(result, message.purchase(), config)
        case TransactionReturned():
            _return(result, message, config)
        case OfferUseGranted():
            if _active(state):  # else the use stays pending: nothing to credit
                _book(result, limits.on_granted(_offers(state), message), config, None)
        case OfferUseDenied():
            if state.offers is not None:
                limits.on_denied(state.offers, message)
        case OfferUseHeld():
            if _active(state):  # a stranger's basket: nothing to hold
                bought = message.transaction_id in state.ledger.purchases  # type: ignore[union-attr]
                if note := held_uses.hold(_offers(state), message, bought):
                    result.notes.append(note)
        case OfferUseHoldReleased():
            if state.offers is not None:
                held_uses.release(state.offers, message)
        case PointsRedemptionRequested():
            _redeem(result, message, config)
        case RewardRedemptionRequested():
            reward = config.rewards.get(message.reward_id)
            unmet = redeem.unmet(reward, _offers(state), message.occurred_at)
            result.emitted += redeem.request(state.ledger, _rewards(state), message, reward,
                                             unmet)  # fmt: skip
        case RewardStoreOfferPurchaseRequested():
            offer = config.catalogue.get(message.offer_id)
            reward_store = config.reward_stores.get(message.reward_store_id)
            result.emitted += store.purchase(state.ledger, _store_offers(state), message, offer,
                                             reward_store)  # fmt: skip
        case (
            IssuedOfferLockRequested() | IssuedOfferRedeemRequested() | IssuedOfferUnlockRequested()
        ):
            result.emitted += store.hold(state.ledger, _store_offers(state), message)
        case PromoCodeLinkRequested():
            markets = [p.market for i in _programs(state) if (p := config.programs.get(i))]
            codes = _codes(state) if _active(state) else MemberCodes()  # a stranger's: dropped
            result.emitted += link.request(state.ledger, codes, message, config.promotions,
                                           markets, config.catalogue)  # fmt: skip
        case RewardGrantRecordRequested():
            reward = config.rewards.get(message.reward_id)
            result.emitted += external.record(state.ledger, _rewards(state), message, reward)
        case PreferencesChangeRequested():
            known = state.preferences or MemberPreferences()
            result.emitted += preferences.change(state.ledger, known, message, config.programs)
            if known.opted_in:
                state.preferences = known
        case PromoCodeLinkAnswered():
            result.emitted += link.answered(state.ledger, _codes(state), message)
        case RewardAllocated():
            result.emitted += redeem.allocated(state.ledger, _rewards(state), message)
        case RewardAllocationRefused():
            refused = redeem.refused(state.ledger, _rewards(state), message)
            result.emitted += refused
            if not refused:  # a free grant, or a step already answered
                result.notes.append(f"reward {message.reward_id} not granted: {message.reason}")
        case MembersMerged():
            result.take(ledger.handle(state.ledger, message, config.programs))
            _send_rewards_along(result, message)
        case MemberMergedAway():
            # A survivor merged away since passes the step on whole (its rewards and offers
            # too) to its own survivor, and keeps none of it.
            passed_on = state.ledger is not None and state.ledger.status == "MERGED"
            fresh = not passed_on and (
                state.ledger is None or message.event_id not in state.ledger.steps_applied
            )
            result.take(ledger.handle(state.ledger, message, config.programs))
            if fresh:
                result.emitted += merge.moved_in(_rewards(state), message)
                result.emitted += store.moved_in(_offers(state), message)
        case ActivityRecorded():
            seen = _seen(state, message)
            result.take(ledger.handle(state.ledger, message, config.programs))
            if _active(state) and not seen:
                _activity(result, message, config)
            elif seen:
                result.notes.append("activity already counted")
        case _:
            result.take(ledger.handle(state.ledger, message, config.programs))
    return result


def _rules(config: Config) -> tuple[Catalogue, dict[str, ProgramConfigured]]:
    return config.catalogue, config.programs


def _active(state: MemberState) -> bool:
    return state.ledger is not None and state.ledger.status == "ACTIVE"


def _offers(state: MemberState) -> MemberOffers:
    if state.offers is None:
        # A member recorded before the offer rules existed: their offers start from nothing,
        # in the programmes their ledger holds.
        programs = list(state.ledger.programs) if state.ledger is not None else []
        state.offers = MemberOffers(member_id=state.member_id, programs=programs)
    return state.offers


def _store_offers(state: MemberState) -> MemberOffers:
    """The offer state a reward-store request works on (a stranger's is thrown away)."""
    return _offers(state) if _active(state) else MemberOffers(member_id=state.member_id)


def _codes(state: MemberState) -> MemberCodes:
    if state.codes is None:
        state.codes = MemberCodes()
    return state.codes


def _programs(state: MemberState) -> list[str]:
    return list(state.ledger.programs) if state.ledger is not None else []


def _send_rewards_along(result: MemberResult, merged: MembersMerged) -> None:
    """The victim's issued rewards and the reward-store offers they bought and have not used
    travel with the merge's step to the survivor."""
    rewards = result.state.rewards
    for n, event in enumerate(result.emitted):
        if isinstance(event, MemberMergedAway):
            bought = store.moved_away(result.state.offers)
            moved, closed = (
                merge.moved_away(
                    rewards, merged.victim_member_id, merged.survivor_member_id,
                    merged.event_id, merged.occurred_at,
                )
                if rewards is not None
                else ([], [])
            )  # fmt: skip
            result.emitted[n] = event.model_copy(update={"rewards": moved, "issued_offers": bought})
            result.emitted[n + 1 : n + 1] = closed
            return


def _rewards(state: MemberState) -> MemberRewards:
    if state.rewards is None:
        state.rewards = MemberRewards()
    return state.rewards


BIRTHDAY_CATCH_UP_DAYS = 31
"""How far back a daily run looks for a birthday that fell on a day whose run never came."""


def _last_run(state: MemberState, market: str, config: Config) -> date | None:
    """The member's last daily run in `market` (its programmes' there), before this one."""
    if state.ledger is None:
        return None
    days = [
        day for program_id, day in state.ledger.expiry_days.items()
        if (program := config.programs.get(program_id)) is not None and program.market == market
    ]  # fmt: skip
    return max(days, default=None)


def _birthday(result: MemberResult, config: Config, day: DayStarted, last_run: date | None) -> None:
    """A birthday reward, once a year, from the member's market's daily run: on the birthday,
    or on the first run after it when the market's clock skipped that day (within
    `BIRTHDAY_CATCH_UP_DAYS` of the last run; a user's trial lost a reward to a skipped day)."""
    state = result.state
    profile = state.offers.profile if state.offers is not None else None
    birth = profile.birth_date if profile is not None else None
    if birth is None:
        return
    today = day.business_date
    since = max(last_run, today - timedelta(days=BIRTHDAY_CATCH_UP_DAYS)) if last_run else today
    missed = [since + timedelta(days=n) for n in range(1, (today - since).days)]
    birthday = next((d for d in [*missed, today] if grants.birthday_on(birth, d)), None)
    if birthday is None:
        return
    for program_id in state.ledger.programs if state.ledger is not None else []:
        program = config.programs.get(program_id)
        if program is None or program.market != day.market or not program.birthday_reward_id:
            continue
        key = derived_id("GRANT-BDAY", state.member_id, program_id, str(birthday.year))
        _free(result, config, program.birthday_reward_id, RewardGrantReason.BIRTHDAY, day, key,
              program_id)  # fmt: skip


def _free(
    result: MemberResult,
    config: Config,
    reward_id: str,
    reason: RewardGrantReason,
    cause: Event,
    key: str,
    program_id: str,
) -> None:
    """A reward the programme gives (sign-up, birthday), announced in the member's inbox."""
    state = result.state
    reward = config.rewards.get(reward_id)
    profile = state.offers.profile if state.offers is not None else None
    grant = FreeGrant(reason=reason.value, cause_event_id=cause.event_id,
                      at=cause.occurred_at, program_id=program_id)  # fmt: skip
    grant = grants.announced(grant, reward, profile.preferred_locale if profile else None)
    events, note = grants.give(_rewards(state), state.member_id, key, reward, grant)
    result.emitted += events
    if note:
        result.notes.append(f"{reason.value.lower()} reward {reward_id}: {note}")


def _offer_reward(result: MemberResult, completed: OfferCompleted, config: Config) -> None:
    """A completed use of a REWARD offer grants its catalogue reward, free (ADR 20)."""
    offer = config.catalogue.definition(completed.offer_id)
    if offer is None or offer.reward.kind is not OfferRewardKind.REWARD:
        return
    reward_id = offer.reward.reward_id
    grant = FreeGrant(
        reason=RewardGrantReason.OFFER.value, cause_event_id=completed.cause_event_id,
        at=completed.occurred_at, offer_id=completed.offer_id, program_id=offer.program_id,
    )  # fmt: skip
    key = derived_id("GRANT", completed.event_id)  # one grant per completed use
    events, note = grants.give(
        _rewards(result.state), completed.member_id, key, config.rewards.get(reward_id or ""), grant
    )
    result.emitted += events
    if note:
        result.notes.append(f"offer {completed.offer_id}: {note}")


def _registered(result: MemberResult, enrolled: MemberEnrolled, config: Config) -> None:
    """Registering is a behaviour a live offer may pay on (a welcome bonus): the enrolment
    counts as the custom activity `MEMBER_REGISTERED`, once (its event id is the cause)."""
    state = _offers(result.state)
    registered = ActivityRecorded(
        event_id=enrolled.event_id, occurred_at=enrolled.occurred_at,
        member_id=result.state.member_id, kind=ActivityKind.CUSTOM,
        custom_name=targeting.REGISTRATION_TRIGGER, source=enrolled.source,
    )  # fmt: skip
    _book(result, offers.on_activity(state, registered, *_rules(config)), config, registered)


def _enrol(result: MemberResult, enrolled: MemberEnrolled, config: Config) -> None:
    state = result.state
    # Inputs parked before the enrolment are replayed through the whole member (ledger and
    # offers), not through the ledger alone.
    parked = []
    if ledger.parked_state(state.ledger):
        assert state.ledger is not None
        parked, state.ledger.parked = list(state.ledger.parked), []
    before = len(result.emitted)
    result.take(ledger.handle(state.ledger, enrolled, config.programs))
    answer = [e for e in result.emitted[before:] if isinstance(e, RequestRejected)]
    if answer and answer[0].command_id == enrolled.event_id:  # refused: nothing opened
        if parked:
            assert state.ledger is not None
            state.ledger.parked = parked
        return
    state.offers = offers.enrol(state.offers, enrolled)
    if _active(state):
        facts.on_enrolled(state.offers, enrolled)
        _trigger(result, config, (ActivityKind.CUSTOM, targeting.REGISTRATION_TRIGGER), enrolled)
        _registered(result, enrolled, config)
        for program_id in enrolled.program_ids:  # a sign-up reward, once per programme
            program = config.programs.get(program_id)
            if program is not None and program.enrolment_reward_id is not None:
                _free(result, config, program.enrolment_reward_id, RewardGrantReason.ENROLMENT,
                      enrolled, derived_id("GRANT-ENROL", state.member_id, program_id),
                      program_id)  # fmt: skip
    for message in parked:
        replayed = handle(state, message, config)
        result.emitted += replayed.emitted
        result.notes += replayed.notes


def _purchase(result: MemberResult, purchase: TransactionCompleted, config: Config) -> None:
    state = result.state
    known = state.ledger is not None and purchase.transaction_id in state.ledger.purchases
    result.take(ledger.handle(state.ledger, purchase, config.programs))
    # Offers look at a purchase once, and only one the ledger took (not parked, not merged
    # away, not past the returns window): the ledger's record of it is the gate.
    recorded = (
        not known and _active(state) and purchase.transaction_id in state.ledger.purchases  # type: ignore[union-attr]
    )
    if recorded:
        # The codes it carries, and those linked to the member (used up now).
        carried = link.with_linked(state.codes, purchase)
        judged = checkout.judge(carried, config.promotions, config.catalogue, _offers(state))
        facts.on_purchase(_offers(state), purchase)
        found = config.catalogue.for_transaction(
            purchase.market, purchase.occurred_at, purchase.lines
        )
        _decide(result, config, found, purchase.event_id, purchase.occurred_at)
        evaluation = offers.on_transaction(
            _offers(state), purchase, *_rules(config), config.end_of, judged.unlocks
        )
        for n, completed in enumerate(evaluation.events):  # a store offer spends its instance
            offer = (
                config.catalogue.get(completed.offer_id)
                if isinstance(completed, OfferCompleted)
                else None
            )
            if offer is not None and offer.reward_store is not None:
                spent = store.use(_offers(state), offer.offer_id, purchase)
                evaluation.events[n] = completed.model_copy(update={"issued_offer_id": spent})
        # The offers' discounts first, then the codes', then the rewards', as the till was
        # told: together never more than the basket.
        took = sum(e.discount_cents for e in evaluation.events if isinstance(e, OfferCompleted))
        left = checkout.after_offers(judged, basket_cents(purchase.lines), took)
        result.emitted += judged.events
        if state.rewards is not None:
            used = wallet.use_tokens(state.rewards, purchase, left)
            result.emitted += used.emitted
            result.notes += used.notes
        _book(result, evaluation, config, purchase)
        result.emitted += checkout.unused(
            judged, carried, evaluation.events, _offers(state), *_rules(config)
        )
        held_uses.used(_offers(state), purchase.transaction_id, purchase.occurred_at)
        counted = challenges.on_purchase(
            _challenges(state), purchase, config.challenges, config.programs, _member(state)
        )
        _challenge_outcome(result, counted, config, purchase)


def _anonymous_codes(result: MemberResult, purchase: TransactionCompleted, config: Config) -> None:
    """An anonymous purchase's promo codes: a cart discount's use, or the use of an offer a
    code unlocks when the offer completes on the purchase (ADR 37); the refusals of the rest."""
    judged = checkout.judge(purchase, config.promotions, config.catalogue)
    priced = any(isinstance(e, PromoCodeUseRequested) for e in judged.events)  # a cart discount
    bought = offers.on_anonymous_purchase(purchase, *_rules(config), judged.unlocks, priced)
    if priced:
        checkout.after_offers(judged, basket_cents(purchase.lines), bought.discount_cents)
    result.emitted += judged.events
    result.emitted += bought.uses
    result.emitted += checkout.unused(judged, purchase, bought.uses, None, *_rules(config))


def _return(result: MemberResult, returned: TransactionReturned, config: Config) -> None:
    state = result.state
    # A member merged away still re-evaluates its own purchases; the ledger forwards the
    # outcome to the survivor, who holds the points now.
    holds_records = state.ledger is not None and state.ledger.status in ("ACTIVE", "MERGED")
    record = state.ledger.purchases.get(returned.transaction_id) if holds_records else None  # type: ignore[union-attr]
    if record is None or returned.return_id in record.return_ids:
        result.take(ledger.handle(state.ledger, returned, config.programs))
        return
    evaluation = offers.on_return(_offers(state), returned, *_rules(config))
    debits = [
        OfferDebit(r.offer_id, r.program_id, r.points, r.awarded_at) for r in evaluation.reversals
    ]
    taken = challenges.on_return(_challenges(state), returned, config.challenges, state.member_id)
    debits += [OfferDebit(None, t.program_id, t.points, t.awarded_at) for t in taken.taken_back]
    assert state.ledger is not None
    result.take(purchases.return_purchase(state.ledger, returned, config.programs, debits))
    result.emitted += evaluation.events
    _challenge_outcome(result, taken, config, None)


def _seen(state: MemberState, activity: ActivityRecorded) -> bool:
    """True if the offers already counted this activity; the same event_id with another body
    is a conflict (rules.identity), found before anything changes."""
    if state.offers is None:
        return False
    kept = state.offers.activities.get(activity.event_id)
    if kept is None and activity.event_id not in state.offers.causes:
        return False
    identity.check("event_id", activity.event_id, kept[1] if kept else None, activity)
    return True


def _activity(result: MemberResult, activity: ActivityRecorded, config: Config) -> None:
    """What a new activity means for the offers: facts, triggers, behaviours."""
    state = _offers(result.state)
    facts.on_activity(state, activity)
    _trigger(result, config, (activity.kind, activity.custom_name), activity)
    found = config.catalogue.for_activity(state.markets, activity.occurred_at, activity)
    _decide(result, config, found, activity.event_id, activity.occurred_at)
    evaluation = offers.on_activity(state, activity, *_rules(config))
    horizon = state.horizon()  # after on_activity, which may move it
    if horizon is None or activity.occurred_at >= horizon:
        state.activities[activity.event_id] = (activity.occurred_at, identity.digest(activity))
    _book(result, evaluation, config, activity)
    counted = challenges.on_activity(
        _challenges(result.state), activity, config.challenges, _member(result.state)
    )
    _challenge_outcome(result, counted, config, activity)


def _redeem(result: MemberResult, request: PointsRedemptionRequested, config: Config) -> None:
    """The ledger decides; an accepted redemption then counts towards POINTS_REDEMPTION
    offers, once per programme it drew from (a repeated command re-emits the same outcome,
    whose id the offer rules have already seen)."""
    state = result.state
    result.take(ledger.handle(state.ledger, request, config.programs))
    accepted = [
        e
        for e in result.emitted
        if isinstance(e, RequestAccepted) and e.command_id == request.command_id
    ]
    if not accepted or not _active(state):
        return
    for allocation in request.allocations:
        evaluation = offers.on_redemption(
            _offers(state),
            state.member_id,
            allocation.program_id,
            allocation.points,
            f"{accepted[0].event_id}|{allocation.program_id}",
            request.occurred_at,
            *_rules(config),
            source=request.source,
            lines=request.lines,
        )
        _book(result, evaluation, config, request)


def _decide(
    result: MemberResult, config: Config, found: list[OfferPublished], cause: str, at: datetime
) -> None:
    """Targeting decided before a behaviour is evaluated (dynamic, or static not yet)."""
    events = targeting.on_behaviour(_offers(result.state), found, config.audiences, cause, at)
    result.emitted += events


def _trigger(
    result: MemberResult,
    config: Config,
    trigger: tuple[ActivityKind, str | None],
    cause: Event,
) -> None:
    """The member did something TRIGGERED offers may target them on."""
    found = [o for i in sorted(config.later) if (o := config.catalogue.get(i)) is not None]
    result.emitted += targeting.on_trigger(
        _offers(result.state), found, config.audiences, trigger, cause.event_id, cause.occurred_at
    )


def _target(
    result: MemberResult,
    message: OfferTargetingTick | OfferLoadRequested | DayStarted,
    config: Config,
) -> None:
    """Static audiences (the publication's tick, the day delayed targeting waits for) and
    load-to-card requests (ADR 13)."""
    state = result.state
    if isinstance(message, DayStarted):
        last_run = _last_run(state, message.market, config)
        result.take(ledger.handle(state.ledger, message, config.programs))
        if state.offers is not None:  # the daily run bounds the offer state (retention)
            day = message.business_date if message.market in state.offers.markets else None
            retention.forget_ended(state.offers, config.end_of, day)
        markets = state.offers.markets if state.offers is not None else []
        if state.rewards is not None and message.market in markets:  # the member's own day
            expired = wallet.start_day(state.rewards, state.member_id, message)
            result.emitted += expired.emitted
        if _active(state) and message.market in markets:
            _birthday(result, config, message, last_run)
        if state.challenges is not None and message.market in markets:
            aged = challenges.on_day(state.challenges, message, config.challenges, state.member_id)
            result.emitted += aged.events
    if isinstance(message, OfferLoadRequested):
        offer = config.catalogue.get(message.offer_id)
        ledger_state = state.ledger
        merged_into = (
            ledger_state.merged_into
            if ledger_state is not None and ledger_state.status == "MERGED"
            else None
        )
        result.emitted += targeting.load(
            _offers(state) if _active(state) else MemberOffers(member_id=state.member_id),
            message, offer, config.audiences, member_known=_active(state),
            merged_into=merged_into,
        )  # fmt: skip
        return
    if not _active(state):
        return
    if isinstance(message, OfferTargetingTick):
        offer = config.catalogue.get(message.offer_id)
        if offer is None:
            result.notes.append(f"targeting tick for unknown offer {message.offer_id}")
            return
        result.emitted += targeting.on_static(
            _offers(state), offer, config.audiences, message.publication_event_id
        )
        return
    for offer_id in sorted(config.later):
        offer = config.catalogue.get(offer_id)
        instant = targeting.decision_instant(offer) if offer is not None else None
        if offer is None or offer.market != message.market or instant is None:
            continue
        if instant <= message.started_at < offer.schedule.ends_at:
            result.emitted += targeting.on_static(
                _offers(state), offer, config.audiences, message.event_id
            )


def _book(
    result: MemberResult,
    evaluation: offers.Evaluation,
    config: Config,
    cause: TransactionCompleted | ActivityRecorded | PointsRedemptionRequested | None,
) -> None:
    """Emit the offer events, then book each award into the ledger. Without a `cause` (a use
    granted by the offer's agent, ADR 14) the awards carry their cause's channel and store."""
    result.emitted += evaluation.events
    for completed in evaluation.events:
        if isinstance(completed, OfferCompleted) and not completed.in_control_group:
            _offer_reward(result, completed, config)
    ledger_state = result.state.ledger
    assert ledger_state is not None
    purchase = cause if isinstance(cause, TransactionCompleted) else None
    for award in evaluation.awards:
        credit = OfferCredit(
            offer_id=award.offer_id,
            program_id=award.program_id,
            points=award.points,
            completed_event_id=award.completed_event_id,
            occurred_at=award.occurred_at,
            source=cause.source if cause else award.source or Source.UNKNOWN,
            store_id=purchase.store.store_id if purchase else award.store_id,
            till_id=purchase.till_id if purchase else award.till_id,
            transaction_id=award.transaction_id,
            transaction_number=purchase.transaction_number
            if purchase
            else award.transaction_number,
        )
        result.take(credit_offer_award(ledger_state, credit, config.programs))


def _challenges(state: MemberState) -> MemberChallenges:
    if state.challenges is None:
        state.challenges = MemberChallenges()
    return state.challenges


def _member(state: MemberState) -> challenges.Member:
    """Who counts towards challenges: the member's markets and programmes."""
    markets = state.offers.markets if state.offers is not None else []
    return challenges.Member(state.member_id, markets, _programs(state))


def _challenge_outcome(
    result: MemberResult,
    outcome: challenges.Outcome,
    config: Config,
    cause: TransactionCompleted | ActivityRecorded | None,
) -> None:
    """Emit what the challenge rules decided, then book each completion's points in the
    ledger (CHALLENGE_AWARD) or give its reward (ADR 27). A return's take-backs are already in
    its ledger event."""
    result.emitted += outcome.events
    result.notes += outcome.notes
    ledger_state = result.state.ledger
    assert ledger_state is not None
    purchase = cause if isinstance(cause, TransactionCompleted) else None
    for award in outcome.awards:
        credit = ChallengeCredit(
            program_id=award.program_id, points=award.points,
            completed_event_id=award.completed_event_id, occurred_at=award.occurred_at,
            source=cause.source if cause else Source.UNKNOWN,
            store_id=purchase.store.store_id if purchase else None,
            till_id=purchase.till_id if purchase else None,
            transaction_id=award.transaction_id,
            transaction_number=purchase.transaction_number if purchase else None,
        )  # fmt: skip
        result.take(credit_challenge_award(ledger_state, credit, config.programs))
    for due in outcome.rewards:
        completed = due.completed
        key = derived_id("GRANT-CHALLENGE", completed.event_id)  # one grant per completion
        grant = FreeGrant(
            reason=RewardGrantReason.CHALLENGE.value, cause_event_id=completed.cause_event_id,
            at=completed.occurred_at, challenge_id=due.challenge_id, program_id=due.program_id,
        )  # fmt: skip
        member_id = result.state.member_id
        reward = config.rewards.get(due.reward_id)
        events, note = grants.give(_rewards(result.state), member_id, key, reward, grant)
        if not note:
            granted = grants.granted_reward_id(member_id, key)
            completed = completed.model_copy(
                update={"reward_id": due.reward_id, "granted_reward_id": granted}
            )
        else:
            result.notes.append(f"challenge {due.challenge_id}: {note}")
        result.emitted += [completed, *events]
