"""Requests that wait for the engine's decision wake when the projector commits it.

Command endpoints answer with the worker's decision (ADR 22): the API writes the request to
Kafka, then looks in the projection until the outcome is there. Looking every few
milliseconds made each waiting request a stream of queries: at 50 redemptions a second the
read pool was saturated by the looks themselves and every request, `/healthz` included,
queued behind them (measured: p50 4 s). Instead (migration 0018), the tables the endpoints
wait on notify channel `loyalty_decided` when a row is written, with the key a waiter
watches (`member:<id>`, `code:<code>`); Postgres delivers it at commit, when the row
becomes visible. One connection per API process listens; a waiter looks once, then again
only when its key is notified, or after `recheck` seconds as a safety net (a notification
lost while the listener reconnected: on every (re)connection all waiters look again).

Without a listening connection (Postgres down, or an app built without one) waiters look
every `poll` seconds, as before.

The same listener tells in-process caches what changed (`follow`): the anonymous offer feed,
the same for every visitor of a market, is kept until its market is notified (`feed:<market>`,
migration 0020). One connection, one channel, one mechanism for both.

A waiter may also hear its answer straight from Kafka (`answers`, ADR 34): registered with the
app's answer reader before its request is written (`expecting`), it is judged on what it heard
as soon as an answer arrives, and looks in Postgres when it starts (a repeat's answer is only
there), when its key is notified and every `recheck` seconds. A request that cannot be a
repeat (`look_first` False: a till's reservation, named by its time) reads Postgres only every
`recheck` while the reader reads and hears its answers: not at its start, and not each time its
key is notified: a code's key is notified for every basket's reservation of the code, and each
notification made every waiter on it read Postgres twice for an answer the reader brings
anyway (measured: a quarter of the API's time at 200 reservations a second,
docs/performance.md). Whichever path has the answer
first answers (they carry the same event); a reader that is down or behind only leaves the
waiter to the projection, notifications included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import psycopg
from prometheus_client import Counter

from processors.base.logs import get_logger
from processors.contract.base import Event
from projections.api.answers import AnswerKey, Answers, Heard

log = get_logger(__name__)

ANSWERED = Counter(
    "loyalty_api_decisions_answered_total",
    "Waiting requests answered within their wait, by where the answer was found: `kafka` (the "
    "answer reader) or `projection` (Postgres).",
    ["via"],
)

T = TypeVar("T")
CHANNEL = "loyalty_decided"


def member_key(member_id: str) -> str:
    """What the outcome and wallet tables notify for a member's row."""
    return f"member:{member_id}"


def code_key(code: str) -> str:
    """What the promo code reservation tables notify for a code's row."""
    return f"code:{code}"


@dataclass(frozen=True)
class Asked(Generic[T]):
    """A new request to write and wait for (`Wakeups.ask`): the answers that are its own on
    Kafka, the key its answer's row notifies, and how Postgres and what was heard are read."""

    request: Event
    answers: tuple[AnswerKey, ...]
    key: str
    look: Callable[[], Awaitable[T | None]]
    judge: Callable[[Sequence[Event]], T | None]


class Wakeups:
    """The waiters of one API process, by the key they watch, and the listener that wakes them."""

    def __init__(
        self,
        dsn: str | None,
        *,
        poll: float,
        recheck: float = 0.5,
        answers: Answers | None = None,
    ) -> None:
        self._dsn = dsn
        self._poll = poll
        self._recheck = max(recheck, poll)
        self.answers = answers
        self._waiting: dict[str, set[Heard]] = {}
        self._followers: list[tuple[str, Callable[[str | None], None]]] = []
        self.listening = False

    def follow(self, prefix: str, changed: Callable[[str | None], None]) -> None:
        """Call `changed(key)` for each notified key that starts with `prefix`, and
        `changed(None)` each time the listener connects or is lost: what was notified while
        nobody listened is unknown, so anything may have changed."""
        self._followers.append((prefix, changed))

    async def run(self) -> None:
        """Listen until cancelled; reconnect with backoff when the connection is lost."""
        if self._dsn is None:
            return
        backoff = 0.2
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening, backoff = True, 0.2
                    self._wake_all()  # what was notified while nobody listened
                    async for notice in conn.notifies():
                        self._wake(notice.payload)
            except psycopg.Error as error:
                if self.listening:
                    log.warning("decision_listener_lost", error=str(error))
                self._lost()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._lost()

    def _lost(self) -> None:
        if self.listening:
            self.listening = False
            for _, changed in self._followers:
                changed(None)

    @contextlib.contextmanager
    def expecting(self, *answers: AnswerKey) -> Iterator[Heard]:
        """What the request about to be written will be answered by, heard from Kafka until
        the block ends (nothing is heard without an answer reader). Enter it before writing."""
        if self.answers is None:
            yield Heard()
            return
        with self.answers.expect(*answers) as heard:
            yield heard

    async def until(
        self,
        key: str,
        look: Callable[[], Awaitable[T | None]],
        *,
        wait: float,
        heard: Heard | None = None,
        judge: Callable[[Sequence[Event]], T | None] | None = None,
        look_first: bool = True,
    ) -> T | None:
        """The answer, or None if nothing came within `wait` seconds.

        `judge(events)` is asked each time `heard` (from `expecting`) hears an answer: no I/O,
        the Kafka path. `look()` reads Postgres: at once, each time `key` is notified, and
        every `recheck` seconds (`poll` without a listener); `look_first` False says the
        request is new (its answer cannot be there yet, nor pass before it registered): then
        not at once, and not on notifications while the answer reader hears its answers.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        waiter = heard if heard is not None else Heard()
        with self._watching(key, waiter):
            looking = look_first
            while True:
                waiter.woken.clear()  # before looking: a commit after the look wakes the next wait
                if waiter.news and judge is not None:
                    waiter.news = False
                    found = judge(waiter.events)
                    if found is not None:
                        ANSWERED.labels("kafka").inc()
                        return found
                if looking:
                    waiter.notified = False
                    found = await look()
                    if found is not None:
                        ANSWERED.labels("projection").inc()
                        return found
                left = deadline - loop.time()
                if left <= 0:
                    return None
                pause = self._recheck if self.listening else self._poll
                try:
                    await asyncio.wait_for(waiter.woken.wait(), timeout=min(pause, left))
                except TimeoutError:
                    looking = True
                else:
                    # Woken by an answer from Kafka: judged, Postgres not read. Notified by the
                    # projector: read, unless the request is new and the reader hears its
                    # answers (a repeat's answer may have passed before it registered).
                    looking = judge is None or (
                        waiter.notified and (look_first or not self._hears(waiter))
                    )

    async def ask(
        self, asked: Sequence[Asked[T]], send: Callable[[Event], Awaitable[None]], *, wait: float
    ) -> list[T | None]:
        """Write each request (`send`), then wait for the answers together, in order: None for
        a request without one within `wait` seconds. Each is expected before anything is
        written (an answer may be read before the write returns); each is new, so Postgres is
        not read before its key is notified or a recheck is due (`until`'s `look_first`)."""
        with contextlib.ExitStack() as expecting:
            heard_by = [expecting.enter_context(self.expecting(*a.answers)) for a in asked]
            for one in asked:
                await send(one.request)
            found = await asyncio.gather(*(
                self.until(one.key, one.look, wait=wait, heard=h, judge=one.judge,
                           look_first=False)
                for one, h in zip(asked, heard_by, strict=True)
            ))  # fmt: skip
        return list(found)

    def _hears(self, waiter: Heard) -> bool:
        """Whether the answer reader reads now and hears every answer `waiter` waits for."""
        return waiter.registered and self.answers is not None and self.answers.reading.is_set()

    @contextlib.contextmanager
    def _watching(self, key: str, waiter: Heard) -> Iterator[None]:
        self._waiting.setdefault(key, set()).add(waiter)
        try:
            yield
        finally:
            waiters = self._waiting.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiting[key]

    def _wake(self, key: str) -> None:
        for waiter in self._waiting.get(key, ()):
            waiter.notify()
        for prefix, changed in self._followers:
            if key.startswith(prefix):
                changed(key)

    def _wake_all(self) -> None:
        for waiters in self._waiting.values():
            for waiter in waiters:
                waiter.notify()
        for _, changed in self._followers:
            changed(None)
