"""Topic `loyalty.outcomes.v1`: the engine's answer to every request of
`loyalty.redemptions.v1` and to every enrolment of `loyalty.enrolments.v1` (whose event_id is
its command id), keyed by the requesting member.

A rejection is a fact with a stable, named reason, never a vanished exception. A request
repeated with the same `command_id` is answered by re-emitting the original outcome, with the
same event_id (DESIGN.md §5.15); the HTTP API turns that into 409 Conflict.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from processors.base import topics
from processors.contract.base import (
    Cents,
    ContractEnum,
    Event,
    Id,
    OfferId,
    Points,
    Text,
    UtcDatetime,
)
from processors.contract.redemptions import RequestType

TOPIC = topics.OUTCOMES.name


class RejectionReason(ContractEnum):
    """Why a request was refused. Stable and ordered: new reasons are added before UNKNOWN."""

    insufficient_points = "insufficient_points"  # the balance would go below zero
    # A second use of a single-use reward, token or code (a repeated command_id is answered
    # with its original outcome instead).
    duplicate_request = "duplicate_request"
    reward_expired = "reward_expired"  # the reward or granted reward is past its expiry
    code_exhausted = "code_exhausted"  # no code left in the reward's stock, or code limit hit
    unknown_member = "unknown_member"
    unknown_reward = "unknown_reward"
    reward_locked = "reward_locked"  # the issued offer or reward is locked to a transaction
    not_eligible = "not_eligible"  # not targeted, wrong programme or store
    invalid_request = "invalid_request"  # well-formed but contradicts configuration
    limit_reached = "limit_reached"  # a per-member, per-offer or per-code use limit
    offer_not_live = "offer_not_live"  # outside the offer's window, or withdrawn
    unknown_offer = "unknown_offer"  # no such offer, issued offer or reward store
    unknown_code = "unknown_code"  # no such promo code
    member_merged = "member_merged"  # the member was merged into another (use the survivor)
    unknown_program = "unknown_program"  # no such programme is configured
    # The engine accepts the request on its topic but does not act on its kind yet.
    not_supported = "not_supported"
    # A reward's stock is spent: no code left, or all its grants given.
    out_of_stock = "out_of_stock"
    # The reward is not in the catalogue now (not yet available, or not for sale).
    reward_unavailable = "reward_unavailable"
    code_expired = "code_expired"  # outside its promotion's window
    code_not_yet_valid = "code_not_yet_valid"  # its promotion has not started yet
    code_already_linked = "code_already_linked"  # a single-use code linked to another member
    # An enrolment (request_type ENROLMENT) the engine refused, nothing opened: the member is
    # in every programme named already; an enrolment names a programme that is not configured
    # (the enrolment's word: `unknown_program` stays the adjustments'), is another market's, or
    # does not take members now (`ProgramConfigured.enrolment_open` false).
    already_enrolled = "already_enrolled"
    unknown_programme = "unknown_programme"
    market_mismatch = "market_mismatch"
    programme_disabled = "programme_disabled"
    # A preferences change names a channel the member's market does not offer.
    channel_not_offered = "channel_not_offered"
    # An external grant names a code the reward already granted to a member.
    code_taken = "code_taken"
    # A return (request_type RETURN) that changes nothing: no purchase of that id is known for
    # the member (never received, or older than the returns window), or every line it names is
    # unknown to the purchase or returned in full already.
    unknown_transaction = "unknown_transaction"
    nothing_to_return = "nothing_to_return"
    UNKNOWN = "UNKNOWN"


class RequestAccepted(Event):
    """A request was accepted and its effects recorded (ledger events, grants, loads)."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The requesting member.")
    command_id: Id = Field(description="The request's command_id.")
    request_type: RequestType = Field(description="Which kind of request this answers.")
    request_event_id: Id = Field(description="event_id of the request answered.")
    points_debited: Points = Field(
        default=0, description="Points taken from the member in total; 0 when none."
    )
    discount_cents: Cents | None = Field(
        default=None, description="For a points redemption: the discount bought, minor units."
    )
    ledger_event_log_id: Id | None = Field(
        default=None, description="The ledger event recording the points moved, if any."
    )
    granted_reward_ids: list[Id] = Field(
        default_factory=list, description="For a reward redemption: the rewards granted."
    )
    issued_offer_id: Id | None = Field(
        default=None,
        description="For a reward-store purchase: the offer instance issued; for a lock or an "
        "immediate redeem: the instance held.",
    )
    offer_id: OfferId | None = Field(
        default=None,
        description="For a reward-store purchase, lock or redeem: the offer the issued instance "
        "is of (it keeps that offer id when the store offer is edited).",
    )
    reward_store_id: Id | None = Field(
        default=None,
        description="For a reward-store purchase, lock or redeem: the store the instance was "
        "bought in.",
    )
    transaction_id: Id | None = Field(
        default=None,
        description="For a lock or an immediate redeem of an issued offer: the transaction it "
        "is held for, when named.",
    )
    locked_until: UtcDatetime | None = Field(
        default=None,
        description="For a lock of an issued offer: when the lock lapses and the instance is "
        "free for another transaction again.",
    )
    detail: Text | None = Field(default=None, description="A note for a person, if any.")


class RequestRejected(Event):
    """A request was refused; nothing changed."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The requesting member.")
    command_id: Id = Field(description="The request's command_id.")
    request_type: RequestType = Field(description="Which kind of request this answers.")
    request_event_id: Id = Field(description="event_id of the request answered.")
    reason: RejectionReason = Field(description="Why, as a stable code clients can act on.")
    detail: Text = Field(
        min_length=1,
        description="Why, for a person (e.g. `balance 120 < 150 requested`); never parsed.",
    )
