"""`loyalty audit`: every input record of a deployment (a topic prefix) reconciled with what
the engine did with it. A record is accounted for when an output cites it as its cause, when
the rules have nothing to do with it by design (an anonymous purchase earns nobody points), or
when a dead letter carries its topic, partition and offset. What is left is *unaccounted*: 0
is the only good answer, in tests, in the fault script and in production.

Reconciled today (inputs → what answers them):
- `MemberEnrolled` → its answer, an outcome whose `command_id` is the enrolment's `event_id`
  (ADR 28);
- `TransactionCompleted` with a member → a ledger event whose `cause_event_id` is the input's
  `event_id` (a purchase that earns nothing is booked with a 0-point entry), or, sent again
  under another `event_id`, the ledger event that booked its transaction;
- `TransactionReturned` with a member → its answer, an outcome whose `command_id` is the
  return's `return_id` (ADR 43);
- a purchase, return or activity of a member with no ledger event at all and no enrolment
  waiting to be run → waiting in the member's state for their enrolment (parked, ADR 8),
  booked when they enrol;
- a request with a `command_id` (redemptions, adjustments, transfers, offer loads) → an outcome
  (`RequestAccepted` / `RequestRejected`) with that `command_id`;
- `OfferUseRequested` → an `OfferUseGranted` or `OfferUseDenied` answering its `event_id`;
- `OfferUseReservationRequested` → an `OfferUseReservationAnswered` answering its `event_id`
  (a release, `OfferUseReservationReleased`, is answered by nothing by design);
- `OfferUseGranted` with points → an `OfferCompleted` for that member, offer and use;
- on the promotions' internal topic: a code's use (`PromoCodeUseRequested`) → its
  `PromoCodeRedeemed` or `PromoCodeRefused` (code and transaction); a till's reservation
  (`PromoCodeReservationRequested`) → the basket's `PromoCodeReserved` or the
  `PromoCodeRefused` citing it; an API process's lease (`PromoCodeLeaseRequested`) → its
  `PromoCodeLeaseAnswered`; a link claim → the member's outcome (its `command_id`); a
  release (`PromoCodeReservationReleased`) is answered by nothing by design.
Other input types are counted as *not reconciled* (listed by type), never as accounted for:
among them the activities and the market days (`loyalty.activities.v1`, `loyalty.clock.v1`),
facts that no output answers by design (an activity that matches no offer or challenge
changes nothing), read so that the report says how many there were.
Reads the topics from their beginning to the end offsets seen at the start; writes nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from processors.base.settings import Settings
from processors.base.topics import (
    ACTIVITIES,
    CLOCK,
    DEADLETTER,
    ENROLMENTS,
    LEDGER,
    LEDGER_STEPS,
    OFFER_USES,
    OFFERS,
    OUTCOMES,
    PROMOTION_USES,
    REDEMPTIONS,
    TRANSACTIONS,
    TopicSpec,
)
from processors.codec.avro import AvroCodec, DecodeError
from processors.contract.activities import ActivityRecorded
from processors.contract.base import Event
from processors.contract.deadletter import DeadLettered
from processors.contract.enrolments import MemberEnrolled
from processors.contract.internal import (
    OfferUseDenied,
    OfferUseGranted,
    OfferUseRequested,
    OfferUseReservationReleased,
    OfferUseReservationRequested,
    PromoCodeLeaseRequested,
    PromoCodeReservationReleased,
    PromoCodeReservationRequested,
    PromoCodeUseRequested,
)
from processors.contract.ledger import LedgerEventRecorded, LedgerEventType
from processors.contract.offers import (
    OfferCompleted,
    OfferUseReservationAnswered,
    PromoCodeLeaseAnswered,
    PromoCodeRedeemed,
    PromoCodeRefused,
    PromoCodeReserved,
)
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.transactions import TransactionCompleted, TransactionReturned

INPUTS = (
    ENROLMENTS, TRANSACTIONS, REDEMPTIONS, ACTIVITIES, CLOCK, OFFER_USES, PROMOTION_USES,
    LEDGER_STEPS,
)  # fmt: skip
OUTPUTS = (LEDGER, OUTCOMES, OFFERS, LEDGER_STEPS, DEADLETTER)


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass
class AuditReport:
    """What the audit found, per input record."""

    records: int = 0
    accounted: Counter[str] = field(default_factory=Counter)  # how, by count
    not_reconciled: Counter[str] = field(default_factory=Counter)  # input type, by count
    unaccounted: list[tuple[Position, str]] = field(default_factory=list)  # where, what

    @property
    def ok(self) -> bool:
        return not self.unaccounted


async def read_topic(
    bootstrap: str, topic: str, partitions: int
) -> list[tuple[Position, bytes | None]]:
    """Every record of `topic` (with `partitions` partitions) up to the end offsets it has now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                isolation_level="read_committed")  # fmt: skip
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[Position, bytes | None]] = []
        behind = {tp for tp in tps if ends[tp] > 0}
        while behind:
            fetched = await consumer.getmany(*behind, timeout_ms=1000)
            for tp, records in fetched.items():
                out += [(Position(topic, tp.partition, r.offset), r.value) for r in records
                        if r.offset < ends[tp]]  # fmt: skip
            for tp in list(behind):
                if await consumer.position(tp) >= ends[tp]:
                    behind.discard(tp)
        return out
    finally:
        await consumer.stop()


async def audit(settings: Settings, codec: AvroCodec | None = None) -> AuditReport:
    """Reconcile the inputs of `settings.topic_prefix`'s deployment with its outputs."""
    codec = codec or AvroCodec.with_history()
    bootstrap = settings.bootstrap_servers
    specs = {spec.name: spec for spec in (*INPUTS, *OUTPUTS)}
    read = await asyncio.gather(*(
        read_topic(bootstrap, settings.topic(name), spec.partitions(settings.partitions))
        for name, spec in specs.items()
    ))  # fmt: skip
    by_topic = dict(zip(specs, read, strict=True))

    def events(name: str) -> list[tuple[Position, Event | None]]:
        decoded: list[tuple[Position, Event | None]] = []
        for position, value in by_topic[name]:
            try:
                decoded.append((position, codec.decode(value)))
            except DecodeError:
                decoded.append((position, None))
        return decoded

    causes: set[str] = set()  # event ids a ledger event cites
    bought: set[tuple[str, str]] = set()  # (member, transaction) a purchase's event books
    booked: set[str] = set()  # members with a ledger event (enrolled at some point)
    commands: set[str] = set()  # command ids an outcome answers
    answered: set[str] = set()  # offer-use requests and reservations answered
    completed: set[tuple[str, str, int]] = set()  # (member, offer, use) completed
    for _, event in events(LEDGER.name):
        if isinstance(event, LedgerEventRecorded):
            causes.add(event.cause_event_id)
            booked.add(event.member_id)
            if event.event_type is LedgerEventType.TRANSACTION_ADD and event.transaction_id:
                bought.add((event.member_id, event.transaction_id))
    for _, event in events(OUTCOMES.name):
        if isinstance(event, RequestAccepted | RequestRejected):
            commands.add(event.command_id)
    for _, event in events(OFFERS.name):
        if isinstance(event, OfferCompleted):
            completed.add((event.member_id, event.offer_id, event.use_number))
        elif isinstance(event, OfferUseReservationAnswered):
            answered.add(event.request_event_id)
        elif isinstance(event, PromoCodeRedeemed | PromoCodeRefused | PromoCodeReserved):
            answered.add(_basket_code(event))
            if isinstance(event, PromoCodeRefused):
                answered.add(event.cause_event_id)
        elif isinstance(event, PromoCodeLeaseAnswered):
            answered.add(event.lease_id)
    steps = events(LEDGER_STEPS.name)
    for _, event in steps:
        if isinstance(event, OfferUseGranted | OfferUseDenied):
            answered.add(event.request_event_id)
    dead = {
        Position(e.original_topic, e.original_partition, e.original_offset)
        for _, e in events(DEADLETTER.name)
        if isinstance(e, DeadLettered)
    }

    # Members whose enrolment is there but not answered yet: their purchases are not parked
    # for an enrolment to come, the engine has not run them.
    enrolling = {
        e.member_id for _, e in events(ENROLMENTS.name)
        if isinstance(e, MemberEnrolled) and e.event_id not in commands
    }  # fmt: skip
    known = booked | enrolling
    report = AuditReport()
    for spec in INPUTS:
        for position, event in steps if spec is LEDGER_STEPS else events(spec.name):
            report.records += 1
            if position in dead:
                report.accounted["dead-lettered"] += 1
                continue
            how = _accounted(event, causes, commands, answered, completed)
            if how is None and _sent_again(event, bought):
                how = "a purchase booked already, sent again"
            if not how and _waits_for_enrolment(event, known):
                how = "waiting for the member's enrolment (parked)"
            if how is None:
                report.unaccounted.append((position, type(event).__name__))
            elif how == "":
                report.not_reconciled[type(event).__name__] += 1
            else:
                report.accounted[how] += 1
    return report


def _sent_again(event: Event | None, bought: set[tuple[str, str]]) -> bool:
    """A member's purchase sent again under another event id, its transaction booked already
    (the same transaction is one purchase: the ledger books it once)."""
    return (
        isinstance(event, TransactionCompleted)
        and event.member_id is not None
        and (event.member_id, event.transaction_id) in bought
    )


def _waits_for_enrolment(event: Event | None, known: set[str]) -> bool:
    """A member's purchase, return or activity that the ledger keeps until the member enrols:
    the member has no ledger event yet, not even their registration, and no enrolment waiting
    to be run (`known` holds both kinds of member)."""
    if not isinstance(event, TransactionCompleted | TransactionReturned | ActivityRecorded):
        return False
    return event.member_id is not None and event.member_id not in known


def _accounted(
    event: Event | None,
    causes: set[str],
    commands: set[str],
    answered: set[str],
    completed: set[tuple[str, str, int]],
) -> str | None:
    """How `event` is accounted for; None: it is not; "": no rule reconciles its type."""
    match event:
        case None:
            return None  # undecodable and not dead-lettered
        case MemberEnrolled():
            return "answered" if event.event_id in commands else None
        case TransactionCompleted() if event.member_id:
            return "cited by a ledger event" if event.event_id in causes else None
        case TransactionCompleted():
            return "anonymous purchase: no points to book"
        case TransactionReturned() if event.member_id:
            return "answered" if event.return_id in commands else None
        case TransactionReturned():
            return "anonymous return: no points to take back"
        case OfferUseRequested() | OfferUseReservationRequested():
            return "answered" if event.event_id in answered else None
        case OfferUseReservationReleased() | PromoCodeReservationReleased():
            return "a release: nothing to answer"
        case PromoCodeUseRequested():
            return "answered" if _basket_code(event) in answered else None
        case PromoCodeReservationRequested():
            asked = {_basket_code(event), event.event_id}
            return "answered" if asked & answered else None
        case PromoCodeLeaseRequested():
            return "answered" if event.event_id in answered else None
        case OfferUseGranted() if event.points_granted > 0:
            use = (event.member_id, event.offer_id, event.use_number)
            return "award completed" if use in completed else None
        case OfferUseGranted() | OfferUseDenied():
            return "nothing to award"
    command = getattr(event, "command_id", None)
    if command is not None:
        return "answered" if command in commands else None
    return ""


def _basket_code(
    event: PromoCodeUseRequested
    | PromoCodeReservationRequested
    | PromoCodeRedeemed
    | PromoCodeRefused
    | PromoCodeReserved,
) -> str:
    """What answers a code's use or reservation for a basket: the code and the transaction
    (one answer per pair, as the promotion's agent keeps them)."""
    return f"code:{event.code}|{event.transaction_id}"


def partitions_of(settings: Settings, spec: TopicSpec) -> list[TopicPartition]:
    """Every partition of a contract topic on `settings`' deployment."""
    name = settings.topic(spec.name)
    return [TopicPartition(name, p) for p in range(spec.partitions(settings.partitions))]


async def uncommitted(settings: Settings) -> int:
    """Records on the worker's input topics beyond what its consumer groups have committed:
    0 once the worker has run everything there is."""
    from processors.app import consumer_groups

    lag = 0
    for group_id, specs in consumer_groups(settings).values():
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers,
                                    group_id=group_id, enable_auto_commit=False)  # fmt: skip
        await consumer.start()
        try:
            for spec in specs:
                tps = partitions_of(settings, spec)
                ends = await consumer.end_offsets(tps)
                for tp in tps:
                    lag += ends[tp] - (await consumer.committed(tp) or 0)
        finally:
            await consumer.stop()
    return lag


def render(report: AuditReport, limit: int = 50) -> str:
    """The report in words, unaccounted records first."""
    lines = [f"{report.records} input record(s); unaccounted: {len(report.unaccounted)}"]
    for position, kind in report.unaccounted[:limit]:
        lines.append(f"  UNACCOUNTED {position} {kind}")
    if len(report.unaccounted) > limit:
        lines.append(f"  ... and {len(report.unaccounted) - limit} more")
    for how, count in report.accounted.most_common():
        lines.append(f"  accounted: {count} {how}")
    for kind, count in report.not_reconciled.most_common():
        lines.append(f"  not reconciled (no rule for the type yet): {count} {kind}")
    return "\n".join(lines)
