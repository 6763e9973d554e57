"""The ledger projection's unit of work: the records of one poll, applied with their
checkpoints in one Postgres transaction.

Owns the order of a batch's work (claim each partition's checkpoint, skip what it already
covers, write the rest, move the checkpoint) and the routing of events to writers. It never
talks to Kafka (the runner does) and never decodes bytes: it receives events already admitted
by the front door.

Tables: `members` (from loyalty.enrolments.v1), the ledger tables (from loyalty.ledger.v1), the
offer tables (from loyalty.offers.v1), the offer performance tables (OfferTargeted, plus
loyalty.transactions.v1 and loyalty.config.v1 when the runner reads them), the reward tables
(the catalogue and code stock from loyalty.config.v1, the wallet from loyalty.rewards.v1),
`request_outcomes` (loyalty.outcomes.v1), members' preferences, their audit trail and the
inbox (loyalty.notifications.v1), the offer feed tables (offers from
loyalty.config.v1, members' standings from loyalty.offers.v1), the challenge tables
(challenges from loyalty.config.v1, members' standings from loyalty.offers.v1) and the promo
code tables
(promotions from loyalty.config.v1, code uses, reservations and refusals from
loyalty.offers.v1), the answers to tills' reservations of capped discount offers
(loyalty.offers.v1), the reward-store offers members bought (`member_issued_offers`, from
loyalty.outcomes.v1 and loyalty.offers.v1), plus this projection's rows of
`projection_checkpoints`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg.pq import TransactionStatus

from processors.base.topics import LEDGER
from processors.codec.avro import Decoded
from processors.contract.base import Event
from processors.contract.enrolments import MemberEnrolled, MemberProfileUpdated, MembersMerged
from processors.contract.ledger import LedgerEventRecorded
from processors.contract.offers import (
    OfferCompleted,
    OfferProgressed,
    OfferUseReservationAnswered,
)
from projections import checkpoints
from projections.checkpoints import Partition
from projections.writers import (
    challenges,
    codes,
    feed,
    issued_offers,
    ledger,
    members,
    notifications,
    offer_reservations,
    offers,
    outcomes,
    performance,
    rewards,
)

PROJECTION = "ledger"
"""The name this projection's checkpoints are stored under (it also covers `members` and the
offer tables)."""

TABLES = (
    members.TABLES + ledger.TABLES + offers.TABLES + performance.TABLES + rewards.TABLES
    + outcomes.TABLES + notifications.TABLES + feed.TABLES + codes.TABLES
    + offer_reservations.TABLES
    + challenges.TABLES + issued_offers.TABLES
)  # fmt: skip
"""Every table this projection fills: what `rebuild` swaps and `dump` hashes."""


TRUSTED_TOPICS = (LEDGER.name,)
"""Contract topics whose records the front door admits without validating them again: the
engine's own output, encoded from models validated when they were made (ADR 39). Their events
reach their writer as `Decoded` data, never as models."""


@dataclass(frozen=True)
class Admitted:
    """One record of a partition after the front door: its event (`Decoded` data on a trusted
    topic), or None if it was refused (the runner has logged and counted it; its offset is
    still passed over)."""

    offset: int
    event: Event | Decoded | None


@dataclass(frozen=True)
class PartitionBatch:
    """Consecutive records of one partition, offsets increasing."""

    topic: str
    partition: int
    records: Sequence[Admitted]
    expected: int | None = None
    """Where the caller believes the checkpoint stands (its consumer position before these
    records), or None if it does not know."""


@dataclass
class Outcome:
    """What a committed `apply` did."""

    next_offsets: dict[Partition, int] = field(default_factory=dict)
    """The committed checkpoint of every partition applied."""
    rewinds: dict[Partition, int] = field(default_factory=dict)
    """Partitions left untouched because their checkpoint is behind `expected` (the tables
    were swapped by a rebuild, or checkpoints were deleted): the caller must re-read them from
    this offset, or records would be missing."""
    events_applied: int = 0


def apply(
    conn: psycopg.Connection, batches: Sequence[PartitionBatch], *, projection: str = PROJECTION
) -> Outcome:
    """Apply `batches` and advance their checkpoints in one transaction; all or nothing.

    1. Claim each partition's checkpoint (locks it; in (topic, partition) order, so two
       projectors never deadlock on each other), all in one round trip.
    2. A checkpoint behind `expected` means the tables lost records the caller read past:
       skip that partition and report a rewind. Records before the checkpoint were applied
       already (a redelivery) and are skipped.
    3. Write the remaining events (ledger, members, offers, performance, the offer feed,
       rewards, outcomes, promo codes, reservations, then challenges), batched per table.
       The feed comes after offers and performance: it copies the rows they wrote (its
       events are also theirs, or passed over by them).
    4. Move each checkpoint past its batch, refused records included.

    `conn` must be idle (autocommit, or no transaction open): the transaction is this
    function's, and it is committed when `apply` returns.
    """
    if conn.info.transaction_status != TransactionStatus.IDLE:
        # Inside someone's transaction this would only be a savepoint, committed or not later.
        raise ValueError("apply needs an idle connection: it commits its own transaction")
    outcome = Outcome()
    ledger_events: list[ledger.LedgerData] = []
    member_events: list[MemberEnrolled | MemberProfileUpdated | MembersMerged] = []
    offer_events: list[OfferCompleted | OfferProgressed] = []
    performance_events: list[performance.PerformanceEvent] = []
    reward_events: list[rewards.RewardEvent] = []
    outcome_events: list[outcomes.OutcomeEvent] = []
    notification_events: list[notifications.NotificationEvent] = []
    feed_events: list[feed.FeedEvent] = []
    code_events: list[codes.CodeEvent] = []
    reservation_events: list[OfferUseReservationAnswered] = []
    challenge_events: list[challenges.ChallengeEvent] = []
    issued_events: list[issued_offers.IssuedOfferEvent] = []
    with conn.transaction():
        ordered = sorted((b for b in batches if b.records), key=lambda b: (b.topic, b.partition))
        claimed = checkpoints.claim(conn, projection, [(b.topic, b.partition) for b in ordered])
        moved: dict[checkpoints.Partition, int] = {}
        for batch in ordered:
            where = (batch.topic, batch.partition)
            stored = claimed[where]
            if batch.expected is not None and stored < batch.expected:
                outcome.rewinds[where] = stored
                continue
            for record in batch.records:
                if record.offset < stored or record.event is None:
                    continue
                event = record.event
                if isinstance(event, Decoded):
                    if event.event is not LedgerEventRecorded:  # (TRUSTED_TOPICS)
                        raise TypeError(f"{event.event.__name__} is not projected from data")
                    ledger_events.append(event.data)
                    continue
                if isinstance(event, feed.EVENTS):  # as well as by the writer it goes to below
                    feed_events.append(event)
                if isinstance(event, issued_offers.EVENTS):  # likewise
                    issued_events.append(event)
                if isinstance(event, LedgerEventRecorded):
                    ledger_events.append(event.model_dump())  # as if decoded
                elif isinstance(event, MemberEnrolled | MemberProfileUpdated | MembersMerged):
                    member_events.append(event)
                elif isinstance(event, OfferCompleted | OfferProgressed):
                    offer_events.append(event)
                elif isinstance(event, performance.EVENTS):  # (before offers.PASSED_OVER)
                    performance_events.append(event)
                elif isinstance(event, rewards.EVENTS):
                    reward_events.append(event)
                elif isinstance(event, outcomes.EVENTS):
                    outcome_events.append(event)
                elif isinstance(event, notifications.EVENTS):
                    notification_events.append(event)
                elif isinstance(event, codes.EVENTS):
                    code_events.append(event)
                elif isinstance(event, offer_reservations.EVENTS):
                    reservation_events.append(event)
                elif isinstance(event, challenges.EVENTS):
                    challenge_events.append(event)
                elif isinstance(event, issued_offers.OWN):
                    outcome.events_applied += 1  # the issued offers' alone (a merge's move)
                elif isinstance(
                    event, offers.PASSED_OVER + performance.PASSED_OVER + codes.PASSED_OVER
                ):
                    if isinstance(event, feed.EVENTS):
                        outcome.events_applied += 1  # the feed's alone (a load to card)
                    # else no table for it yet; its offset is passed over
                else:
                    raise TypeError(f"{type(event).__name__} is not projected here")
            next_offset = max(stored, batch.records[-1].offset + 1)
            if next_offset > stored:
                moved[where] = next_offset
            outcome.next_offsets[where] = next_offset
        checkpoints.store(conn, projection, moved)
        enrolments = members.touches_enrolments(member_events, outcome_events)
        if enrolments:
            members.serialize(conn)  # before writing an enrolment or an answer to one
        ledger.write(conn, ledger_events)
        members.write(conn, member_events)
        offers.write(conn, offer_events)
        performance.write(conn, performance_events)
        feed.write(conn, feed_events)
        rewards.write(conn, reward_events)
        outcomes.write(conn, outcome_events)
        if enrolments:
            members.settle(conn)  # enrolments wait for their answers (either may come first)
        notifications.write(conn, notification_events)
        codes.write(conn, code_events)
        offer_reservations.write(conn, reservation_events)
        challenges.write(conn, challenge_events)
        issued_offers.write(conn, issued_events)
    outcome.events_applied += (
        len(ledger_events) + len(member_events) + len(offer_events) + len(performance_events)
        + len(reward_events) + len(outcome_events) + len(notification_events) + len(code_events)
        + len(reservation_events)
        + len(challenge_events)
    )  # fmt: skip
    return outcome
