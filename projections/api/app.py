"""The ASGI app: routes, error handlers, the Postgres pools and `/healthz` (metrics: ADR 18).

Wiring only. The database address, the token secret, the clock, the configuration source
(for cart evaluation and offer loads), the command sink (where command endpoints write), the
reward store (what the reward routes read and write), the feed store (what the offer feeds
read, and where app events are kept) and how long a redemption waits for its decision are
given to `create_app`, so tests pass a fixed `now`, a fixed configuration, a recording sink
and in-memory stores, and nothing here reads settings except `from_settings`,
the factory `loyalty api` and `uvicorn --factory` use: it follows the config topic with a
`ConfigFeed` and produces commands with a `KafkaCommandSink`, both started and stopped with the
app. Never holds business logic nor SQL beyond the health probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram
from psycopg import AsyncConnection, IsolationLevel
from psycopg_pool import AsyncConnectionPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from processors.contract.outcomes import TOPIC as OUTCOMES_TOPIC
from projections.api import errors
from projections.api.answers import Answers
from projections.api.code_leases import LeaseBook, holder_id
from projections.api.code_store import CodeStore, PostgresCodeStore
from projections.api.commands import CommandSink, KafkaCommandSink, ManagedSink, NoCommands
from projections.api.edge import BoundedRequestBody, BoundedRequestTarget
from projections.api.feed_store import FeedStore, PostgresFeedStore
from projections.api.member_requests import PostgresMemberRequestStore
from projections.api.member_store import MemberStore
from projections.api.offer_feed import Fragments, MarketFeeds, MemberFeeds
from projections.api.reward_store import PostgresRewardStore, RewardStore
from projections.api.reward_store_queries import RewardStoreQueries
from projections.api.routes_carts import ConfigSource, NoConfig
from projections.api.routes_carts import router as carts_router
from projections.api.routes_challenges import router as challenges_router
from projections.api.routes_codes import router as codes_router
from projections.api.routes_enrolment import router as enrolment_router
from projections.api.routes_feed import router as feed_router
from projections.api.routes_feed_events import router as feed_events_router
from projections.api.routes_inbox import listed
from projections.api.routes_inbox import router as inbox_router
from projections.api.routes_issued_offers import router as issued_offers_router
from projections.api.routes_ledger import router as ledger_router
from projections.api.routes_offers import router as offers_router
from projections.api.routes_performance import router as performance_router
from projections.api.routes_preferences import router as preferences_router
from projections.api.routes_redemptions import router as redemptions_router
from projections.api.routes_reward_stores import router as reward_stores_router
from projections.api.routes_rewards import router as rewards_router
from projections.api.throttle import (
    FAILURES_MAX_DEFAULT,
    FEED_EVENTS_MAX_DEFAULT,
    FEED_EVENTS_THROTTLED,
    Throttle,
)
from projections.api.wakeups import Wakeups
from projections.console import router as console
from projections.console.adjustments import AdjustmentStore
from projections.console.audit import StaffAuditLog
from projections.console.sessions import EndedSessions

Clock = Callable[[], datetime]

REQUESTS = Counter(
    "loyalty_api_requests_total",
    "HTTP requests answered, by route template and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "loyalty_api_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5),
)


ANSWERS_START_S = 5.0
"""How long the app's start waits for its answer reader to be reading (ADR 34)."""


def wall_clock() -> datetime:
    """The real time: the API is an adapter, so it may read the clock (default windows)."""
    return datetime.now(UTC)


async def _configure(conn: AsyncConnection[Any]) -> None:
    # The API only reads; one request's statements share one snapshot.
    await conn.set_read_only(True)
    await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)


# A read that is one statement needs no transaction around it: in autocommit it is one round
# trip, not three (BEGIN, the statement, COMMIT). Read-only on the server, since no BEGIN says
# so; a transaction opened on it explicitly is repeatable read, as the read pool's.
_STATEMENT_READS = {
    "autocommit": True,
    "options": "-c default_transaction_read_only=on",
}


async def _configure_statements(conn: AsyncConnection[Any]) -> None:
    await conn.set_isolation_level(IsolationLevel.REPEATABLE_READ)


def create_app(
    *,
    dsn: str,
    api_secret: str | list[str],
    clock: Clock = wall_clock,
    pool_max_size: int = 10,
    config_source: ConfigSource | None = None,
    command_sink: CommandSink | None = None,
    outcome_topic: str = OUTCOMES_TOPIC,
    reward_store: RewardStore | None = None,
    feed_store: FeedStore | None = None,
    decision_wait_s: float = 3.0,
    decision_poll_s: float = 0.02,
    code_store: CodeStore | None = None,
    code_failures_per_minute: int = FAILURES_MAX_DEFAULT,
    code_reservation_ttl_s: float = 900.0,
    inbox_link_schemes: str = "https",
    inbox_link_hosts: str = "",
    feed_events_per_minute: int = FEED_EVENTS_MAX_DEFAULT,
    answers: Answers | None = None,
    member_feeds_bytes: int = MemberFeeds.BUDGET_DEFAULT,
    code_lease_uses: int = 0,
) -> FastAPI:
    """The API over the database at `dsn`, checking tokens signed with `api_secret` (a key, or
    the keys accepted during a rotation, the signing key first).

    `config_source`: the programmes and offers carts are evaluated with; when it can `run`
    (a `ConfigFeed`), it runs for the app's lifetime. None: cart evaluation answers 503.
    `command_sink`: where command endpoints write requests (ADR 16); when it has `start` and
    `stop` (a `KafkaCommandSink`), they bracket the app's lifetime. None: commands answer 503.
    `outcome_topic`: the topic the worker answers commands on, as the 202 names it.
    `reward_store`: where the reward routes read and write; None: the Postgres tables at `dsn`
    (through the read pool, and a small read-write pool for the API's own key table).
    `feed_store`: what the offer feed routes read and write; None: the Postgres tables at
    `dsn` (a read-only pool in autocommit: each feed one statement, one round trip; and the
    same write pool for the API's own table of app events).
    `decision_wait_s`, `decision_poll_s`: how long a redemption waits for its decision before
    answering 202 (docs/adr/0022-redemption-endpoint.md), woken when the projector commits it
    (`wakeups`), else looking every `decision_poll_s`; the promo code link and reservations
    wait the same way.
    `code_store`: what the promo code routes read and write; None: the Postgres tables at `dsn`
    (the statement pool: each of its reads is one statement; and the write pool for the API's
    own table of link keys).
    `code_failures_per_minute`: failed code validations allowed per member, token or address
    in a minute before the code endpoints answer 429 (in this process's memory: ADR 26).
    `code_reservation_ttl_s`: how long a promo code reserved at the till counts.
    `inbox_link_schemes`, `inbox_link_hosts`: the allow-list of an inbox message's deep link,
    comma-separated (docs/adr/0028-member-services.md).
    `feed_events_per_minute`: app events one member (or, anonymously, one address) may send
    in a minute before `POST /v1/offer-feed/events` answers 429 (in this process's memory).
    `answers`: this process's reader of the worker's answers on Kafka (docs/adr/
    0034-answers-from-kafka.md), run for the app's lifetime; waiting requests are answered by
    whichever of it and the projection has the answer first. None: the projection only.
    `member_feeds_bytes`: the bytes of members' feeds kept in this process until a change of
    them is notified (0: none kept).
    `code_lease_uses`: the uses of a shared promo code this process leases from the
    promotion's agent at a time, to answer tills' reservations of it at once
    (docs/adr/0040-reservations-from-a-lease.md); 0: every reservation waits for the agent.
    """
    source: ConfigSource = config_source if config_source is not None else NoConfig()
    sink: CommandSink = command_sink if command_sink is not None else NoCommands()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_max_size,
            configure=_configure,
            timeout=5.0,
            open=False,
            name="loyalty-api",
        )
        # Not waiting: the API starts while Postgres is down and says so on /healthz.
        await pool.open(wait=False)
        app.state.pool = pool
        # What the API writes to Postgres: its Idempotency-Keys and app events (autocommit).
        write_pool = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=4,
            kwargs={"autocommit": True},
            timeout=5.0,
            open=False,
            name="loyalty-api-keys",
        )
        await write_pool.open(wait=False)
        # Reads of one statement each: the offer feeds (ADR 25, second addendum), the promo
        # codes' and the cart's; in autocommit, one round trip where a transaction takes three.
        statement_pool = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_max_size,
            kwargs=_STATEMENT_READS,
            configure=_configure_statements,
            timeout=5.0,
            open=False,
            name="loyalty-api-statements",
        )
        await statement_pool.open(wait=False)
        app.state.statement_pool = statement_pool
        if reward_store is None:
            app.state.reward_store = PostgresRewardStore(pool, write_pool)
        if feed_store is None:
            app.state.feed_store = PostgresFeedStore(statement_pool, write_pool)
        if code_store is None:  # each of its reads one statement: one round trip
            app.state.code_store = PostgresCodeStore(statement_pool, write_pool)
        app.state.member_requests = PostgresMemberRequestStore(pool, write_pool)
        app.state.reward_store_queries = RewardStoreQueries(pool)
        app.state.member_store = MemberStore(pool, write_pool)
        app.state.staff_audit = StaffAuditLog(pool, write_pool)
        app.state.staff_adjustments = AdjustmentStore(write_pool)
        app.state.ended_sessions = EndedSessions(pool, write_pool)
        run = getattr(source, "run", None)
        following = asyncio.create_task(run(), name="config-feed") if run is not None else None
        listening = asyncio.create_task(app.state.wakeups.run(), name="decision-listener")
        reading = None
        if answers is not None:
            reading = asyncio.create_task(answers.run(), name="answer-reader")
            app.state.answer_reader = reading
            # Served once the reader reads, so the first requests are answered from Kafka too;
            # not longer than ANSWERS_START_S: a broker down must not keep the reads down.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(answers.reading.wait(), timeout=ANSWERS_START_S)
        if isinstance(sink, ManagedSink):
            await sink.start()  # never raises: a broker down answers commands 503
        try:
            yield
        finally:
            leases: LeaseBook | None = app.state.code_leases
            for task in (*(leases.tasks if leases is not None else ()), following, listening,
                         reading):  # fmt: skip
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if isinstance(sink, ManagedSink):
                await sink.stop()
            await write_pool.close()
            await statement_pool.close()
            await pool.close()

    app = FastAPI(
        title="Loyalty engine API",
        version="1",
        summary="Reads of the points ledger and balances; cart evaluation; offer loads; the "
        "offer feeds; the reward catalogue, wallet and redemptions; promo codes (DESIGN.md §6).",
        lifespan=lifespan,
    )
    app.state.api_secrets = [api_secret] if isinstance(api_secret, str) else list(api_secret)
    app.state.dsn = dsn  # the console's report reads as the CLI does (ADR 35)
    app.state.clock = clock
    app.state.config_source = source
    app.state.command_sink = sink
    app.state.outcome_topic = outcome_topic
    app.state.reward_store = reward_store
    app.state.feed_store = feed_store
    # The offers' fixed JSON, encoded once per version, and the public answers while they
    # stay exact, each kept until its market is notified (docs/adr/0025-offer-feeds.md), and
    # the members' answers, each until the member or an offer is (third addendum).
    app.state.feed_fragments = Fragments()
    app.state.market_feeds = MarketFeeds()
    app.state.member_feeds = MemberFeeds(member_feeds_bytes)
    app.state.decision_wait = decision_wait_s
    app.state.decision_poll = decision_poll_s
    app.state.wakeups = Wakeups(dsn, poll=decision_poll_s, answers=answers)
    app.state.wakeups.follow(MarketFeeds.NOTIFIED, app.state.market_feeds.changed)
    for prefix in MemberFeeds.NOTIFIED:
        app.state.wakeups.follow(prefix, app.state.member_feeds.changed)
    app.state.code_store = code_store
    app.state.link_schemes = listed(inbox_link_schemes)
    app.state.link_hosts = listed(inbox_link_hosts)
    app.state.code_throttle = Throttle(code_failures_per_minute)
    app.state.feed_event_throttle = Throttle(
        feed_events_per_minute, what="app events", counted=None, throttled=FEED_EVENTS_THROTTLED
    )
    app.state.reservation_ttl = timedelta(seconds=code_reservation_ttl_s)
    app.state.code_leases = (
        LeaseBook(holder_id(), uses=code_lease_uses) if code_lease_uses > 0 else None
    )
    errors.install(app)
    # First: Starlette tries the routes in order, and the probes are the most called.
    app.add_api_route("/healthz", _healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/metrics", _metrics_moved, methods=["GET"], include_in_schema=False)
    app.include_router(ledger_router)
    app.include_router(carts_router)
    app.include_router(performance_router)
    app.include_router(offers_router)
    app.include_router(feed_router)
    app.include_router(feed_events_router)
    app.include_router(rewards_router)
    app.include_router(redemptions_router)
    app.include_router(enrolment_router)
    app.include_router(preferences_router)
    app.include_router(inbox_router)
    app.include_router(codes_router)
    app.include_router(challenges_router)
    app.include_router(reward_stores_router)
    app.include_router(issued_offers_router)
    console.mount(app)  # the staff console's pages under /console (ADR 35)
    # Inside `Measured`: a 414 or a 413 is counted like any other answer.
    # The console answers a NUL character in its own pages (`console.sessions`), the API here.
    app.add_middleware(BoundedRequestBody, wider={console.PREFIX: console.BODY_MAX_BYTES},
                       own_nul_checks=(console.PREFIX,))  # fmt: skip
    app.add_middleware(BoundedRequestTarget, own_nul_checks=(console.PREFIX,))
    app.add_middleware(Measured)

    def openapi() -> dict[str, Any]:
        # Each route declares the refusals it answers (`errors.refusals`); FastAPI's default
        # 422 is never one of them.
        if app.openapi_schema is None:
            app.openapi_schema = errors.with_body_limit(
                errors.without_framework_422(FastAPI.openapi(app))
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def from_settings() -> FastAPI:
    """The API as configured by the environment (`processors.base.settings`), carts evaluated
    with the configuration a `ConfigFeed` follows on the deployment's config topic, commands
    produced to the deployment's topics by a `KafkaCommandSink`."""
    from processors.base.settings import get_settings
    from processors.base.topics import CONFIG, OUTCOMES
    from processors.codec.avro import AvroCodec
    from processors.config_feed import ConfigFeed
    from projections.api.answers import TOPICS as ANSWER_TOPICS

    settings = get_settings()
    feed = ConfigFeed(
        settings.bootstrap_servers,
        settings.topic(CONFIG.name),
        AvroCodec.with_history(),  # every recorded writer: the topic starts at 0
    )
    return create_app(
        dsn=settings.dsn,
        api_secret=settings.api_secrets(),
        config_source=feed,
        command_sink=KafkaCommandSink(settings.bootstrap_servers, topic_of=settings.topic),
        outcome_topic=settings.topic(OUTCOMES.name),
        decision_wait_s=settings.api_decision_wait_ms / 1000,
        decision_poll_s=settings.api_decision_poll_ms / 1000,
        code_failures_per_minute=settings.api_code_failures_per_minute,
        code_reservation_ttl_s=settings.api_code_reservation_ttl_s,
        inbox_link_schemes=settings.api_inbox_link_schemes,
        inbox_link_hosts=settings.api_inbox_link_hosts,
        feed_events_per_minute=settings.api_feed_events_per_minute,
        member_feeds_bytes=settings.api_member_feeds_mib * 2**20,
        code_lease_uses=settings.api_code_lease_uses if settings.api_answers_from_kafka else 0,
        answers=Answers(
            settings.bootstrap_servers,
            {settings.topic(t.name): t.partitions(settings.partitions) for t in ANSWER_TOPICS},
        )
        if settings.api_answers_from_kafka
        else None,
    )


class Measured:
    """ASGI middleware: each answer's latency and status in `LATENCY` and `REQUESTS`.

    Plain ASGI, not `@app.middleware("http")`: Starlette's `BaseHTTPMiddleware` runs the rest
    of the app in a task of its own and streams the body through a queue, which cost every
    request, `/healthz` included, more than most routes' own work."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app fails before starting one

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            # The route template, not the path: member ids must not become label values.
            route = getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
            REQUESTS.labels(scope["method"], route, str(status)).inc()


async def _healthz(request: Request) -> JSONResponse:
    """200 when Postgres answers, else 503 with the reason. One round trip: asked on the
    statement pool (autocommit), not in a transaction of its own."""
    pool: AsyncConnectionPool[Any] = request.app.state.statement_pool
    try:
        async with pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")
    except Exception as error:  # noqa: BLE001 - any failure means "not healthy", with its name
        return JSONResponse(
            {"status": "unavailable", "database": type(error).__name__}, status_code=503
        )
    return JSONResponse({"status": "ok", "database": "ok"})


async def _metrics_moved(_: Request) -> Response:
    """Not on the public port (ADR 18): the metrics name routes, rates and errors of every
    caller, so they are served on the internal port `loyalty api` opens for them."""
    raise errors.NotFoundError(
        "metrics are served on the internal metrics port (LOYALTY_API_METRICS_PORT, "
        "127.0.0.1:9402 by default)"
    )
