"""Who is in an offer's audience, held out or not, and when that is decided (DESIGN.md §5.16,
§5.17; seed 003 "Offer targeting", "Triggered scheduling", "test vs. control";
docs/adr/0013-targeting-and-activation.md).

- **Kinds.** MASS: every member of the offer's programme, never recorded per member (the feed
  shows mass offers from the catalogue). AUDIENCE_LIST: the members of an audience (`Audiences`): an
  uploaded list (`AudienceUploaded`), or a saved query (`AudienceDefined`) that several offers
  reuse, judged like CRITERIA. CRITERIA: every criterion holds on the member's facts
  (`facts`) as of the decision instant.
- **Timing.** STATIC: decided once, as of the publication (`OfferTargetingTick` on every
  partition; a member without a decision is decided at their first behaviour, still as of the
  publication). DELAYED_STATIC: decided once, as of `targeting_at` (the first `DayStarted` at
  or after it, or the first behaviour after it). DYNAMIC: decided again at each behaviour.
  TRIGGERED: the trigger activity targets the member, at most `trigger_fires_per_member_max`
  times, each fire for one use within `trigger_valid_days`.
- **Control.** `in_control` is a stable hash of (offer_id, member_id): the same member always
  lands in the same group, for every kind and timing.
- **Load to card.** `load` answers an `OfferLoadRequested`: only a targeted member (control
  included: tracked as if targeted) may load a live LOAD_TO_CARD offer.

Decisions are kept in `MemberOffers.targeting`, triggers in `.triggers`, loads in `.loaded`;
`status` reads them for eligibility. Pure: times are the inputs' business times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from processors.contract.activities import ActivityKind
from processors.contract.base import Event
from processors.contract.config import AudienceDefined, AudienceUploaded, OfferPublished
from processors.contract.offer_definition import (
    ActivationKind,
    TargetingAttribute,
    TargetingCriterion,
    TargetingKind,
    TargetingTiming,
)
from processors.contract.offers import OfferLoaded, OfferTargeted
from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import OfferLoadRequested
from processors.contract.targeting import OfferTargetingTick
from processors.rules import identity, outcomes
from processors.rules.arithmetic import derived_id
from processors.rules.offers.state import (
    LoadOutcome,
    MemberOffers,
    TargetingDecision,
    TriggerFire,
)

REGISTRATION_TRIGGER = "MEMBER_REGISTERED"
"""The CUSTOM trigger name the engine fires itself when a member enrols."""
TIER_TRIGGER = "TIER_ACHIEVED"
"""The CUSTOM trigger name the engine fires itself when a member's tier changes."""

LATER_TIMINGS = frozenset({TargetingTiming.DELAYED_STATIC, TargetingTiming.TRIGGERED})
"""Timings decided by the clock or by a trigger, not by the behaviour evaluated."""

_BUCKETS = 10_000  # control shares are whole percents: 100 buckets per percent


def in_control(offer_id: str, member_id: str, share_percent: int) -> bool:
    """True when the member is held out of the offer as control: sha256 of the pair, read as
    a number, lands in the lowest `share_percent` of its range. Sticky and the same in every
    process (never Python's salted `hash()`)."""
    if share_percent <= 0:
        return False
    digest = hashlib.sha256(f"{offer_id}\x1f{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % _BUCKETS < share_percent * (_BUCKETS // 100)


# --- audiences ------------------------------------------------------------------------------


@dataclass
class Audiences:
    """Audiences by id: uploaded lists and saved queries. An upload replaces the audience as
    a whole once all of its parts arrived (parts may come in any order, a part twice is one
    part); until then the previous complete upload stands. A saved query (AudienceDefined) is
    judged on the member when targeting is decided. An id is a list or a query, whichever was
    configured last."""

    members: dict[str, frozenset[str]] = field(default_factory=dict)
    queries: dict[str, tuple[TargetingCriterion, ...]] = field(default_factory=dict)
    _parts: dict[tuple[str, str], dict[int, list[str]]] = field(default_factory=dict)

    def define(self, audience: AudienceDefined) -> str:
        """Save (or replace) a query-defined audience."""
        self.queries[audience.audience_id] = tuple(audience.criteria)
        self.members.pop(audience.audience_id, None)
        return ""

    def query(self, audience_id: str | None) -> tuple[TargetingCriterion, ...] | None:
        """The saved query of the audience; None when it is a list, or unknown."""
        return self.queries.get(audience_id or "")

    def apply(self, part: AudienceUploaded) -> str:
        """Fold one part in; a note while the upload is incomplete."""
        key = (part.audience_id, part.upload_id)
        parts = self._parts.setdefault(key, {})
        parts[part.part_number] = list(part.member_ids)
        if len(parts) < part.part_count:
            return f"audience {part.audience_id}: {len(parts)} of {part.part_count} parts"
        self.members[part.audience_id] = frozenset(m for ms in parts.values() for m in ms)
        self.queries.pop(part.audience_id, None)
        del self._parts[key]
        return ""

    def has(self, audience_id: str | None, member_id: str) -> bool:
        members = self.members.get(audience_id or "")
        return members is not None and member_id in members


# --- criteria -------------------------------------------------------------------------------


PROFILE_FACTS = frozenset({
    TargetingAttribute.CITY, TargetingAttribute.PROVINCE, TargetingAttribute.POSTAL_CODE_PREFIX,
    TargetingAttribute.COUNTRY, TargetingAttribute.GENDER, TargetingAttribute.BIRTHDAY_MONTH,
    TargetingAttribute.TIER, TargetingAttribute.PROFILE_ATTRIBUTE, TargetingAttribute.AGE_YEARS,
})  # fmt: skip
"""The criteria judged on the member's profile alone (tier and profile attributes, place, age,
birthday month); the others need the member's history (purchases, logins, clicks)."""


def meets_on_profile(
    criteria: Iterable[TargetingCriterion], state: MemberOffers, at: datetime
) -> bool:
    """`meets` for the criteria a profile alone can judge; the others are left to whoever
    knows the member's history (the catalogue leaves them to the redemption's answer)."""
    return meets((c for c in criteria if c.attribute in PROFILE_FACTS), state, at)


def meets(criteria: Iterable[TargetingCriterion], state: MemberOffers, at: datetime) -> bool:
    """True when every criterion holds on the member's facts as of `at`."""
    return all(holds(criterion, state, at) for criterion in criteria)


def holds(criterion: TargetingCriterion, state: MemberOffers, at: datetime) -> bool:
    """One criterion as of `at`. A member without the fact never matches; an UNKNOWN attribute
    never matches (never generous)."""
    value = _fact(criterion, state, at)
    if isinstance(value, str) or value is None:
        if criterion.attribute is TargetingAttribute.POSTAL_CODE_PREFIX:
            code = _postal(value)
            return bool(code) and any(code.startswith(_postal(v)) for v in criterion.values)
        return value is not None and value.casefold() in {v.casefold() for v in criterion.values}
    least = criterion.min_value if criterion.min_value is not None else value
    most = criterion.max_value if criterion.max_value is not None else value
    return least <= value <= most


def _postal(value: str | None) -> str:
    return (value or "").replace(" ", "").upper()


def _fact(criterion: TargetingCriterion, state: MemberOffers, at: datetime) -> str | int | None:
    profile = state.profile
    a = TargetingAttribute
    match criterion.attribute:
        case a.CITY | a.PROVINCE | a.COUNTRY | a.GENDER | a.POSTAL_CODE_PREFIX:
            name = "postal_code" if criterion.attribute is a.POSTAL_CODE_PREFIX else None
            return getattr(profile, name or criterion.attribute.value.lower(), None)
        case a.BIRTHDAY_MONTH:
            birth = profile.birth_date if profile else None
            return str(birth.month) if birth else None
        case a.TIER:
            return state.tier
        case a.PROFILE_ATTRIBUTE:
            return profile.attributes.get(criterion.key or "") if profile else None
        case a.AGE_YEARS:
            birth = profile.birth_date if profile else None
            return _age(birth, at.date()) if birth and birth <= at.date() else None
        case a.DAYS_SINCE_ENROLMENT:
            return _days_since(state.enrolled_at, at)
        case a.DAYS_SINCE_FIRST_PURCHASE:
            return _days_since(state.first_purchase_at, at)
        case a.DAYS_SINCE_LAST_PURCHASE:
            last = max((p.at for p in state.history if p.at <= at), default=None)
            return _days_since(last or state.last_purchase_at, at)
        case a.DAYS_SINCE_APP_DOWNLOAD:
            return _days_since(state.app_downloaded_at, at)
        case a.DAYS_SINCE_LAST_LOGIN:
            return _days_since(max((d for d in state.logins if d <= at), default=None), at)
        case a.DAYS_SINCE_LAST_EMAIL_CLICK:
            return _days_since(max((d for d in state.email_clicks if d <= at), default=None), at)
        case a.SPEND_CENTS | a.TRANSACTION_COUNT | a.AVERAGE_ORDER_CENTS | a.CATEGORY_SPEND_CENTS:
            return _purchases(criterion, state, at)
        case a.EMAIL_CLICK_COUNT:
            start = at - timedelta(days=criterion.lookback_days or 0)
            return sum(1 for d in state.email_clicks if start < d <= at)
    return None


def _purchases(criterion: TargetingCriterion, state: MemberOffers, at: datetime) -> int | None:
    """An aggregate over the purchases in (at − lookback_days, at]."""
    start = at - timedelta(days=criterion.lookback_days or 0)
    window = [p for p in state.history if start < p.at <= at]
    a = TargetingAttribute
    if criterion.attribute is a.TRANSACTION_COUNT:
        return len(window)
    if criterion.attribute is a.CATEGORY_SPEND_CENTS:
        return sum(p.category_cents.get(criterion.key or "", 0) for p in window)
    spend = sum(p.amount_cents for p in window)
    if criterion.attribute is a.SPEND_CENTS:
        return spend
    # Average order value: half-up to the cent; undefined (never matches) without a purchase.
    return (2 * spend + len(window)) // (2 * len(window)) if window else None


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _days_since(then: datetime | None, at: datetime) -> int | None:
    """Whole days from `then` to `at`; None when the fact is unknown or after `at`."""
    if then is None or then > at:
        return None
    return (at - then).days


# --- decisions ------------------------------------------------------------------------------


def decision_instant(offer: OfferPublished) -> datetime | None:
    """When a static audience is fixed: the publication, or targeting_at (None: not static)."""
    targeting = offer.targeting
    if targeting.timing is TargetingTiming.STATIC:
        return offer.occurred_at
    if targeting.timing is TargetingTiming.DELAYED_STATIC:
        return targeting.targeting_at
    return None


def in_audience(
    offer: OfferPublished, state: MemberOffers, audiences: Audiences, at: datetime
) -> bool:
    """Whether the member belongs to the offer's audience as of `at` (MASS: a member of the
    programme; CRITERIA decided as of a static instant also needs the member enrolled then)."""
    if offer.program_id not in state.programs:
        return False
    targeting = offer.targeting
    match targeting.kind:
        case TargetingKind.MASS:
            return True
        case TargetingKind.AUDIENCE_LIST:
            query = audiences.query(targeting.audience_id)
            if query is None:
                return audiences.has(targeting.audience_id, state.member_id)
            return _meets_as_of(offer, query, state, at)
        case TargetingKind.CRITERIA:
            return _meets_as_of(offer, targeting.criteria, state, at)
    return False


def _meets_as_of(
    offer: OfferPublished,
    criteria: Iterable[TargetingCriterion],
    state: MemberOffers,
    at: datetime,
) -> bool:
    """Criteria (the offer's own or a saved audience's) as of `at`; decided as of a static
    instant, they also need the member enrolled then."""
    static = decision_instant(offer) is not None
    if static and (state.enrolled_at is None or state.enrolled_at > at):
        return False
    return meets(criteria, state, at)


def decide(
    state: MemberOffers,
    offer: OfferPublished,
    audiences: Audiences,
    at: datetime,
    cause_event_id: str,
) -> list[Event]:
    """Record whether the member is in the audience as of `at`; an OfferTargeted the first
    time they are (its id from the offer, the member and the cause)."""
    targeted = in_audience(offer, state, audiences, at)
    share = offer.targeting.control_share_percent
    control = targeted and in_control(offer.offer_id, state.member_id, share)
    previous = state.targeting.get(offer.offer_id)
    announced = previous is not None and previous.announced
    state.targeting[offer.offer_id] = TargetingDecision(
        targeted=targeted, in_control=control, at=at, announced=announced or targeted
    )
    if not targeted or announced:
        return []
    return [_targeted(state, offer, control, at, cause_event_id)]


def _targeted(
    state: MemberOffers, offer: OfferPublished, control: bool, at: datetime, cause: str
) -> OfferTargeted:
    return OfferTargeted(
        event_id=derived_id("offer-targeted", cause, offer.offer_id, state.member_id),
        occurred_at=at,
        member_id=state.member_id,
        offer_id=offer.offer_id,
        in_control_group=control,
        cause_event_id=cause,
    )


def targeting_tick(offer: OfferPublished) -> OfferTargetingTick | None:
    """The tick that decides a STATIC audience on every member partition; None when the
    offer's audience is not decided at publication (MASS needs no decision)."""
    targeting_ = offer.targeting
    if targeting_.timing is not TargetingTiming.STATIC or targeting_.kind is TargetingKind.MASS:
        return None
    return OfferTargetingTick(
        event_id=derived_id("offer-targeting-tick", offer.event_id),
        occurred_at=offer.occurred_at,
        offer_id=offer.offer_id,
        publication_event_id=offer.event_id,
        targeting_at=offer.occurred_at,
    )


def on_static(
    state: MemberOffers, offer: OfferPublished, audiences: Audiences, cause_event_id: str
) -> list[Event]:
    """Decide a STATIC or DELAYED_STATIC audience for this member, once, as of its instant."""
    instant = decision_instant(offer)
    if instant is None or offer.targeting.kind is TargetingKind.MASS:
        return []
    if offer.offer_id in state.targeting or offer.program_id not in state.programs:
        return []
    return decide(state, offer, audiences, instant, cause_event_id)


def on_behaviour(
    state: MemberOffers,
    offers: Iterable[OfferPublished],
    audiences: Audiences,
    cause_event_id: str,
    at: datetime,
) -> list[Event]:
    """Before a behaviour is evaluated: decide DYNAMIC audiences as of now, and static ones
    not decided yet (the member missed the tick: enrolled since, or the tick came first)."""
    events: list[Event] = []
    for offer in offers:
        timing = offer.targeting.timing
        if offer.targeting.kind is TargetingKind.MASS:
            continue  # everyone: `status` needs no decision
        if timing is TargetingTiming.DYNAMIC:
            events += decide(state, offer, audiences, at, cause_event_id)
        elif timing is TargetingTiming.STATIC:
            events += on_static(state, offer, audiences, offer.event_id)
        elif timing is TargetingTiming.DELAYED_STATIC:
            instant = decision_instant(offer)
            if instant is not None and instant <= at:
                events += on_static(state, offer, audiences, cause_event_id)
    return events


def on_trigger(
    state: MemberOffers,
    offers: Iterable[OfferPublished],
    audiences: Audiences,
    trigger: tuple[ActivityKind, str | None],
    cause_event_id: str,
    at: datetime,
) -> list[Event]:
    """The member did a trigger activity (kind, custom name): each live TRIGGERED offer on it
    targets them again, up to its per-member cap, for one use within its valid days."""
    events: list[Event] = []
    kind, custom = trigger
    for offer in offers:
        targeting = offer.targeting
        if targeting.timing is not TargetingTiming.TRIGGERED:
            continue
        if targeting.trigger_activity_kind != kind or (
            targeting.trigger_activity_custom_name != custom
        ):
            continue
        if not offer.schedule.starts_at <= at < offer.schedule.ends_at:
            continue
        fires = state.triggers.setdefault(offer.offer_id, [])
        if any(f.cause == cause_event_id for f in fires):
            continue  # a redelivered trigger fires once
        if len(fires) >= (targeting.trigger_fires_per_member_max or 1):
            continue
        if not in_audience(offer, state, audiences, at):
            continue
        days = targeting.trigger_valid_days
        until = at + timedelta(days=days) if days is not None else None
        fires.append(TriggerFire(at=at, cause=cause_event_id, valid_until=until))
        control = in_control(offer.offer_id, state.member_id, targeting.control_share_percent)
        state.targeting[offer.offer_id] = TargetingDecision(
            targeted=True, in_control=control, at=at, announced=True
        )
        events.append(_targeted(state, offer, control, at, cause_event_id))
    return events


def status(offer: OfferPublished, state: MemberOffers, at: datetime, uses: int) -> bool | None:
    """The member's standing on the offer at `at`: None when not targeted, else whether held
    out as control. `uses` is the member's completed uses (a trigger fire is good for one)."""
    targeting = offer.targeting
    if targeting.timing is TargetingTiming.TRIGGERED:
        fires = state.triggers.get(offer.offer_id, [])
        if not fires or uses >= len(fires):
            return None
        latest = fires[-1]
        if at < latest.at or (latest.valid_until is not None and at >= latest.valid_until):
            return None
    elif targeting.kind is TargetingKind.MASS:
        if targeting.timing is TargetingTiming.UNKNOWN:
            return None
        return in_control(offer.offer_id, state.member_id, targeting.control_share_percent)
    decision = state.targeting.get(offer.offer_id)
    if decision is None or not decision.targeted:
        return None
    return decision.in_control


# --- load to card ---------------------------------------------------------------------------


def load(
    state: MemberOffers,
    request: OfferLoadRequested,
    offer: OfferPublished | None,
    audiences: Audiences,
    *,
    member_known: bool,
    merged_into: str | None = None,
) -> list[Event]:
    """Answer a load-to-card request. Accepted (OfferLoaded, RequestAccepted) when the member
    is targeted (control included) by a live LOAD_TO_CARD offer; else RequestRejected with a
    stable reason (`merged_into`: the survivor of a member merged away, who is told
    `member_merged` rather than `unknown_member`). A repeated command_id re-emits the original
    outcome, same event ids."""
    earlier = state.loads.get(request.command_id)
    if earlier is not None:
        identity.check("command_id", request.command_id, earlier.digest, request,
                       identity.REQUEST)  # fmt: skip
        return _outcome(state, request, earlier)
    at = request.occurred_at
    announced: list[Event] = []  # a member decided by this very request is told so first
    reason, detail = _refusal(state, request, offer, audiences, member_known, announced)
    if reason is RejectionReason.unknown_member and merged_into is not None:
        reason = RejectionReason.member_merged
        detail = f"member {request.member_id} was merged into {merged_into}: load it for them"
    outcome = LoadOutcome(
        at=at,
        offer_id=request.offer_id,
        request_event_id=request.event_id,
        outcome_event_id=derived_id("offer-load-outcome", request.event_id, request.command_id),
        reason=reason.value if reason is not None else None,
        detail=detail,
        digest=identity.digest(request, identity.REQUEST),
    )
    state.loads[request.command_id] = outcome
    if reason is None and request.offer_id not in state.loaded:
        state.loaded[request.offer_id] = at
        return [*announced, _loaded(state, request), *_outcome(state, request, outcome)]
    return [*announced, *_outcome(state, request, outcome)]


def _refusal(
    state: MemberOffers,
    request: OfferLoadRequested,
    offer: OfferPublished | None,
    audiences: Audiences,
    member_known: bool,
    announced: list[Event],
) -> tuple[RejectionReason | None, str | None]:
    at = request.occurred_at
    if not member_known:
        return RejectionReason.unknown_member, f"member {request.member_id} is not enrolled"
    if offer is None:
        return RejectionReason.unknown_offer, f"no live offer {request.offer_id}"
    if offer.activation.kind is not ActivationKind.LOAD_TO_CARD:
        return RejectionReason.invalid_request, f"offer {offer.offer_id} is not load-to-card"
    if not offer.schedule.display_at <= at < offer.schedule.ends_at:
        return RejectionReason.offer_not_live, f"offer {offer.offer_id} is not live at {at}"
    if offer.targeting.timing is TargetingTiming.DYNAMIC:
        decided = decide(state, offer, audiences, at, request.event_id)
    else:
        decided = on_behaviour(state, [offer], audiences, request.event_id, at)
    if offer.targeting.kind is not TargetingKind.MASS:  # MASS announces no one (ADR 13)
        announced += decided
    uses = state.offers[offer.offer_id].uses if offer.offer_id in state.offers else 0
    if status(offer, state, at, uses) is None:
        return RejectionReason.not_eligible, f"member is not targeted by {offer.offer_id}"
    if offer.offer_id in state.loaded:
        return None, "already loaded"
    return None, None


def _loaded(state: MemberOffers, request: OfferLoadRequested) -> OfferLoaded:
    return OfferLoaded(
        event_id=derived_id("offer-loaded", request.event_id, request.offer_id),
        occurred_at=request.occurred_at,
        member_id=state.member_id,
        offer_id=request.offer_id,
        cause_event_id=request.event_id,
        command_id=request.command_id,
    )


def _outcome(
    state: MemberOffers,
    request: OfferLoadRequested,
    outcome: LoadOutcome,
) -> list[Event]:
    """The answer a load gets, the first time and on every repeat (`rules.outcomes`)."""
    reason = RejectionReason(outcome.reason) if outcome.reason is not None else None
    answer = outcomes.answer(
        request,
        reason=reason,
        event_id=outcome.outcome_event_id,
        occurred_at=outcome.at,
        member_id=state.member_id,
        request_event_id=outcome.request_event_id,
        detail=outcome.detail if reason is None else outcome.detail or "refused",
    )
    return [answer]
