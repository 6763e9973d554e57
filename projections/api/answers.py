"""The engine's answers to waiting requests, read from Kafka by each API process
(docs/adr/0034-answers-from-kafka.md).

A waiting endpoint (a redemption, a reward-store purchase, a lock or redeem, a member-service
command, a promo code link, a till's reservation) writes its request and waits for the
worker's answer. Waiting for the projector to commit that answer to Postgres and notify
(`wakeups`) costs a Kafka read, a batch and a commit more than the answer itself: the answer is
readable on its topic ~12 ms before the projector's commit wakes anybody. So each API process
reads the answer topics itself:

- one consumer, no group: it is assigned every partition of the answer topics and starts at
  their end when it connects (what was answered before nobody here waits for), reading
  committed records only (the worker does not use transactions today; if it ever does, an
  aborted answer is never shown);
- only the answer events are decoded (`ANSWERS`): any other record on those topics is skipped
  on its 8-byte schema fingerprint, before any Avro is read;
- a waiting request registers what identifies its answer (`keys_of`) BEFORE its request is
  written, so an answer cannot come between the write and the registration; the map is
  bounded (`waiters_max` keys), a request past the bound simply waits for Postgres;
- a registration lasts as long as its request waits: answered, timed out or cancelled, it
  unregisters.

Postgres stays the record: the claim of an Idempotency-Key, a repeat's 409 and the status
URLs read it, and `wakeups` keeps looking there too, so a reader that is down, behind or
restarting delays nothing beyond what the projector's commit takes. Never decides what an
answer means to a client (the routes judge the events they heard) and holds no SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from processors.base import topics
from processors.base.logs import get_logger
from processors.codec.avro import HISTORY_DIR, AvroCodec, DecodeError
from processors.contract.base import Event
from processors.contract.offers import (
    OfferUseReservationAnswered,
    PromoCodeLeaseAnswered,
    PromoCodeRefused,
    PromoCodeReserved,
)
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
from processors.contract.rewards import RewardGranted

log = get_logger(__name__)

AnswerKey = tuple[str, ...]
"""What identifies one request's answer on its topic (see `keys_of`)."""

ANSWERS: tuple[type[Event], ...] = (
    RequestAccepted,
    RequestRejected,
    RewardGranted,
    PromoCodeReserved,
    PromoCodeRefused,
    OfferUseReservationAnswered,
    PromoCodeLeaseAnswered,
)
"""The events a waiting request may be answered by."""

TOPICS = (topics.OUTCOMES, topics.REWARDS, topics.OFFERS)
"""Where those events travel (unprefixed names)."""

UNREGISTERED = Counter(
    "loyalty_api_answers_unregistered_total",
    "Waiting requests not registered with the answer reader because its map was full (they "
    "wait for the projector's commit instead).",
)


def outcome_key(member_id: str, request_type: RequestType, command_id: str) -> AnswerKey:
    """A member's request of a kind, by its command id: `RequestAccepted` / `RequestRejected`."""
    return ("outcome", member_id, request_type.value, command_id)


def grants_key(member_id: str, command_id: str) -> AnswerKey:
    """The rewards a member's redemption granted: `RewardGranted` with its command id."""
    return ("grants", member_id, command_id)


def code_reserved_key(code: str, transaction_id: str) -> AnswerKey:
    """A promo code reserved for a basket: `PromoCodeReserved` (it names no request: asking
    again for the same basket extends the one reservation)."""
    return ("code-reserved", code, transaction_id)


def refused_key(cause_event_id: str) -> AnswerKey:
    """A promo code refused to the request (or purchase) with this event id: `PromoCodeRefused`."""
    return ("code-refused", cause_event_id)


def offer_reservation_key(request_event_id: str) -> AnswerKey:
    """The offer agent's answer to one reservation request: `OfferUseReservationAnswered`."""
    return ("offer-reservation", request_event_id)


def lease_key(lease_id: str) -> AnswerKey:
    """The promotion's agent's answer to this process's lease request: `PromoCodeLeaseAnswered`
    (docs/adr/0040-reservations-from-a-lease.md)."""
    return ("code-lease", lease_id)


def keys_of(event: Event) -> tuple[AnswerKey, ...]:
    """Which waiting requests `event` answers: the one home of "what identifies an answer"."""
    if isinstance(event, RequestAccepted | RequestRejected):
        return (outcome_key(event.member_id, event.request_type, event.command_id),)
    if isinstance(event, RewardGranted):
        return () if event.command_id is None else (grants_key(event.member_id, event.command_id),)
    if isinstance(event, PromoCodeReserved):
        return (code_reserved_key(event.code, event.transaction_id),)
    if isinstance(event, PromoCodeRefused):
        return (refused_key(event.cause_event_id),)
    if isinstance(event, OfferUseReservationAnswered):
        return (offer_reservation_key(event.request_event_id),)
    if isinstance(event, PromoCodeLeaseAnswered):
        return (lease_key(event.lease_id),)
    return ()


class Heard:
    """What one waiting request has heard: the answer events that reached it from Kafka, in
    arrival order, and the event that wakes it (also set by the projector's notification,
    `wakeups`, which then sets `notified`)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.woken = asyncio.Event()
        self.news = False
        """Set when an event arrived since the waiter last judged them."""
        self.notified = False
        """Set when the projector committed a row under the waiter's key since it last looked."""
        self.registered = False
        """Set when the answer reader hears every answer it waits for (its map had room)."""

    def hear(self, event: Event) -> None:
        self.events.append(event)
        self.news = True
        self.woken.set()

    def notify(self) -> None:
        self.notified = True
        self.woken.set()


class Answers:
    """The answer reader of one API process (see the module)."""

    def __init__(
        self,
        bootstrap: str,
        partitions: Mapping[str, int],
        *,
        codec: AvroCodec | None = None,
        waiters_max: int = 10_000,
    ) -> None:
        self.bootstrap = bootstrap
        self.partitions = [TopicPartition(t, p) for t, n in partitions.items() for p in range(n)]
        """Every partition of the answer topics (`partitions`: topic → count, as the topic
        catalogue creates them)."""
        # Knows the answers only: any other record fails its fingerprint lookup, undecoded.
        self.codec = codec or AvroCodec(ANSWERS, history_dir=HISTORY_DIR)
        self.waiters_max = waiters_max
        self._waiting: dict[AnswerKey, set[Heard]] = {}
        self.reading = asyncio.Event()
        """Set while assigned at a known position: answers written from now on are read."""

    @contextlib.contextmanager
    def expect(self, *keys: AnswerKey) -> Iterator[Heard]:
        """Register a waiter for the answers under `keys` until the block ends; enter it
        before the request is written."""
        heard = Heard()
        room = self.waiters_max
        registered = [k for k in keys if k in self._waiting or len(self._waiting) < room]
        if len(registered) < len(keys):
            UNREGISTERED.inc()
        for key in registered:
            self._waiting.setdefault(key, set()).add(heard)
        heard.registered = len(registered) == len(keys)
        try:
            yield heard
        finally:
            for key in registered:
                waiters = self._waiting.get(key)
                if waiters is not None:
                    waiters.discard(heard)
                    if not waiters:
                        del self._waiting[key]

    def waiting(self) -> int:
        """How many answer keys are waited for now."""
        return len(self._waiting)

    def deliver(self, event: Event) -> None:
        """Hand `event` to whoever waits for it."""
        for key in keys_of(event):
            for heard in self._waiting.get(key, ()):
                heard.hear(event)

    def read(self, value: bytes | None) -> None:
        """One record's value: an answer someone waits for is delivered, anything else skipped."""
        if not self._waiting or value is None:
            return
        try:
            event = self.codec.decode(value)
        except DecodeError:
            return  # not an answer (or not one this version reads): the worker's business
        self.deliver(event)

    async def run(self) -> None:
        """Read until cancelled; on a failure, start again at the end after a backoff (what was
        answered meanwhile reaches its waiters through Postgres)."""
        backoff = 0.2
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                isolation_level="read_committed",
            )
            try:
                await consumer.start()
                consumer.assign(self.partitions)
                await consumer.seek_to_end(*self.partitions)
                for tp in self.partitions:  # resolved now: an answer written from here is read
                    await consumer.position(tp)
                self.reading.set()
                backoff = 0.2
                log.info("answers.reading", partitions=len(self.partitions))
                while True:
                    fetched = await consumer.getmany(timeout_ms=1000)
                    for records in fetched.values():
                        for record in records:
                            self.read(record.value)
            except (KafkaError, OSError) as error:
                log.warning("answers.reader_lost", error=repr(error)[:300], retry_in=backoff)
            except Exception as error:  # noqa: BLE001 - else a dead reader would go unnoticed
                log.error("answers.reader_failed", error=repr(error)[:300], retry_in=backoff)
            finally:
                self.reading.clear()
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
