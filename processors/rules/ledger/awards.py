"""Offer awards in the ledger: each award an offer pays is one `OFFER_AWARD` ledger event, and
an award a return takes back is a `RETURN` debit naming the offer (DESIGN.md §5.14, ADR 10).

The offer rules decide what is due; these functions only book it, so the ledger stays the one
place balances come from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from processors.contract.common import PointsCategory, Source
from processors.contract.ledger import EntryKind, LedgerEventType
from processors.rules.ledger import policy
from processors.rules.ledger.draft import Draft
from processors.rules.ledger.result import Programs, Result, emit
from processors.rules.ledger.state import MemberLedger


@dataclass(frozen=True)
class OfferCredit:
    """Points an offer pays a member, booked as one OFFER_AWARD ledger event."""

    offer_id: str
    program_id: str
    points: int
    completed_event_id: str  # the OfferCompleted it pays: the ledger event's cause
    occurred_at: datetime
    source: Source
    store_id: str | None = None
    till_id: str | None = None
    transaction_id: str | None = None
    transaction_number: str | None = None


@dataclass(frozen=True)
class OfferDebit:
    """Points of an earlier offer award that a return takes back; `awarded_at`, when it was
    paid: its points went into that time's lot, whose expired points are not taken again."""

    offer_id: str | None  # None: a challenge's award (ChallengeAwardTakenBack names it)
    program_id: str
    points: int
    awarded_at: datetime | None = None


def credit_offer_award(state: MemberLedger, award: OfferCredit, programs: Programs) -> Result:
    """Book one award into the REGULAR account of the offer's programme, in a lot expiring by
    the programme's policy. Redelivery is harmless: the event id comes from the award's cause,
    and the offer rules emit an award once per use."""
    return _credit(state, LedgerEventType.OFFER_AWARD, award, award.offer_id, programs)


def _credit(
    state: MemberLedger,
    event_type: LedgerEventType,
    award: OfferCredit | ChallengeCredit,
    offer_id: str | None,
    programs: Programs,
) -> Result:
    result = Result(state)
    if state.status != "ACTIVE" or award.program_id not in state.programs or award.points <= 0:
        result.note = f"award for {award.program_id} not booked: member cannot hold it"
        return result
    program = programs.get(award.program_id)
    draft = Draft(
        state,
        event_type,
        cause_event_id=award.completed_event_id,
        occurred_at=award.occurred_at,
        source=award.source,
        store_id=award.store_id,
        till_id=award.till_id,
        transaction_id=award.transaction_id,
        transaction_number=award.transaction_number,
    )
    expiry = policy.expires_at(program, award.occurred_at) if program is not None else None
    draft.credit(
        award.program_id,
        PointsCategory.REGULAR,
        EntryKind.ALLOCATION,
        award.points,
        expiry,
        offer_id=offer_id,
    )
    emit(result, draft)
    return result


@dataclass(frozen=True)
class ChallengeCredit:
    """Points a completed challenge pays a member, booked as one CHALLENGE_AWARD ledger event
    (docs/adr/0027-challenges.md)."""

    program_id: str
    points: int
    completed_event_id: str  # the ChallengeCompleted it pays: the ledger event's cause
    occurred_at: datetime
    source: Source
    store_id: str | None = None
    till_id: str | None = None
    transaction_id: str | None = None
    transaction_number: str | None = None


def credit_challenge_award(
    state: MemberLedger, award: ChallengeCredit, programs: Programs
) -> Result:
    """Book a challenge's points like an offer's award (REGULAR, a lot expiring by the
    programme's policy), under its own event type; once per completion (its event id)."""
    return _credit(state, LedgerEventType.CHALLENGE_AWARD, award, None, programs)
