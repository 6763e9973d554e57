"""Runtime settings, read from environment variables (prefix `LOYALTY_`).

Two well-known unprefixed variables are honoured as well, because tools and CI set them:
`KAFKA_BOOTSTRAP` and `DATABASE_URL`. When they are absent, the addresses of the local stack
(`loyalty stack up`) are used.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
# Development only: anyone can read it here, so anyone could mint tokens for a server using it.
DEV_API_SECRET = "dev-only-loyalty-api-secret-change-me"  # noqa: S105


class Settings(BaseSettings):
    """Everything the engine's processes can be told from outside."""

    model_config = SettingsConfigDict(env_prefix="LOYALTY_", extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP", "LOYALTY_KAFKA_BOOTSTRAP"),
        description="host:port of an existing broker; unset means the local stack's broker.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "LOYALTY_DATABASE_URL"),
        description="libpq URL of an existing database; unset means the local stack's one.",
    )
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"
    partitions: int = Field(default=8, ge=1, le=256)
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prepended to every topic name, so deployments or test runs can share a "
        "broker without seeing each other's events.",
    )
    worker_app_id: str = Field(
        default="loyalty-engine",
        description="The worker's id: its consumer groups and the prefix of its table changelogs.",
    )
    worker_http_port: int = Field(
        default=9400,
        ge=0,
        le=65535,
        description="Where the worker serves /metrics (Prometheus) and /healthz on 127.0.0.1 "
        "(LOYALTY_OPS_HTTP_HOST to change); 0 turns them off.",
    )
    ops_http_host: str = Field(
        default="127.0.0.1",
        description="The address every process's internal /metrics (and the worker's and the "
        "projector's /healthz) bind to: 127.0.0.1 unless they must be reached from elsewhere.",
    )
    api_metrics_port: int = Field(
        default=9402,
        ge=0,
        le=65535,
        description="Where `loyalty api` serves Prometheus metrics, apart from its public port; "
        "0 turns them off.",
    )
    projector_http_port: int = Field(
        default=9401,
        ge=0,
        le=65535,
        description="Where the projector serves /metrics and /healthz; 0 turns them off.",
    )
    projector_gather_ms: int = Field(
        default=50,
        ge=0,
        le=1000,
        description="How long a projector's fetch may wait to gather a fuller transaction "
        "under light load (LOYALTY_PROJECTOR_GATHER_MS; docs/adr/0009-ledger-projection-"
        "checkpoints-and-rebuild.md, addendum): at most this much later in Postgres, for a "
        "third of the projector's CPU at 100 requests/s; 0: every fetch returns at once.",
    )
    api_decision_wait_ms: int = Field(
        default=3000,
        ge=0,
        le=60_000,
        description="How long POST /v1/members/{id}/redemptions waits for the worker's decision "
        "before answering 202 with the status URL (LOYALTY_API_DECISION_WAIT_MS); 0: never waits.",
    )
    api_decision_poll_ms: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="How often a waiting redemption looks for its outcome in Postgres "
        "(LOYALTY_API_DECISION_POLL_MS).",
    )
    api_answers_from_kafka: bool = Field(
        default=True,
        description="Whether each API process reads the worker's answers from Kafka itself, so "
        "a waiting request is answered without waiting for the projector's commit "
        "(LOYALTY_API_ANSWERS_FROM_KAFKA; docs/adr/0034-answers-from-kafka.md). Off: answered "
        "from Postgres only, woken by the projector's notification.",
    )
    api_code_reservation_ttl_s: int = Field(
        default=900,
        ge=10,
        le=86_400,
        description="How long a promo code reserved by POST /v1/carts/evaluate (`reserve`) "
        "counts before it lapses unused (LOYALTY_API_CODE_RESERVATION_TTL_S; 15 minutes).",
    )
    api_code_lease_uses: int = Field(
        default=50,
        ge=0,
        le=200,  # the most one lease sets aside (`rules.codes.uses.LEASE_USES_MAX`)
        description="Uses of a shared promo code each API process leases from the promotion's "
        "agent at a time, to answer tills' reservations of it without waiting for the agent "
        "(LOYALTY_API_CODE_LEASE_USES; docs/adr/0040-reservations-from-a-lease.md). 0: every "
        "reservation waits for the agent's answer. Needs the answers from Kafka.",
    )
    api_inbox_link_schemes: str = Field(
        default="https,loyalty",
        description="The schemes an inbox message's deep link may use, comma-separated "
        "(LOYALTY_API_INBOX_LINK_SCHEMES); any other is refused when the message is posted.",
    )
    api_inbox_link_hosts: str = Field(
        default="www.example.com,offers,rewards,challenges,inbox,profile",
        description="The hosts an inbox message's deep link may name, comma-separated "
        "(LOYALTY_API_INBOX_LINK_HOSTS): web hosts, and an app link's screen "
        "(`loyalty://rewards/...`); any other is refused when the message is posted.",
    )
    api_code_failures_per_minute: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Failed promo code validations one member, token or address may make in a "
        "minute on the code endpoints before they answer 429 "
        "(LOYALTY_API_CODE_FAILURES_PER_MINUTE).",
    )
    api_feed_events_per_minute: int = Field(
        default=120,
        ge=1,
        le=100_000,
        description="App events one member (or, anonymously, one address) may send in a minute "
        "before POST /v1/offer-feed/events answers 429 (LOYALTY_API_FEED_EVENTS_PER_MINUTE).",
    )
    api_member_feeds_mib: int = Field(
        default=64,
        ge=0,
        le=65_536,
        description="MiB of members' offer feeds each API process keeps until a change of them "
        "is notified (LOYALTY_API_MEMBER_FEEDS_MIB; 0: none kept, every read asks Postgres).",
    )
    api_access_log: bool = Field(
        default=False,
        description="Log a line for every HTTP request answered (uvicorn's access log, "
        "LOYALTY_API_ACCESS_LOG). Off by default: `loyalty_api_requests_total` and "
        "`loyalty_api_request_duration_seconds` count every answer by route and status, and "
        "a line a request cost 4 % of the API's CPU at 1,000 requests/s (docs/performance.md).",
    )
    api_feed_events_retention_days: int = Field(
        default=395,
        ge=1,
        le=36_500,
        description="Days the app events of the offers page are kept after they were received; "
        "`loyalty feed-events-prune` deletes older ones (LOYALTY_API_FEED_EVENTS_RETENTION_DAYS; "
        "13 months: a year over year comparison and a month to spare).",
    )
    console_adjustment_approval_points: int = Field(
        default=1_000,
        ge=0,
        le=10**9,
        description="A console points adjustment of more points than this waits for an admin's "
        "approval (maker/checker) before it is published "
        "(LOYALTY_CONSOLE_ADJUSTMENT_APPROVAL_POINTS; ADR 36).",
    )
    console_adjustment_daily_limit_points: int = Field(
        default=10_000,
        ge=0,
        le=10**9,
        description="Points one staff member may adjust in the console in a UTC day, credits "
        "and debits together (LOYALTY_CONSOLE_ADJUSTMENT_DAILY_LIMIT_POINTS; ADR 36).",
    )
    console_adjustment_limits: str = Field(
        default="",
        pattern=r"^([^=,\s]+=\d+(,[^=,\s]+=\d+)*)?$",
        description="Daily limits of named staff members, overriding the default: "
        "`alice=50000,bob=2000` (LOYALTY_CONSOLE_ADJUSTMENT_LIMITS; ADR 36).",
    )
    stall_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A partition with records waiting whose committed offset has not moved for "
        "this long makes /healthz answer 503.",
    )

    stack_dir: Path = REPO_ROOT / ".stack"
    cache_dir: Path = REPO_ROOT / ".cache"
    kafka_version: str = "4.1.1"
    kafka_host: str = "127.0.0.1"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_heap: str = "1g"
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 15432
    postgres_user: str = "loyalty"
    postgres_password: str = "loyalty"  # noqa: S105 - local dev stack on loopback only
    postgres_db: str = "loyalty"
    api_secret: SecretStr = Field(
        default=SecretStr(DEV_API_SECRET),
        min_length=32,
        description="HS256 key that signs and checks the HTTP API's bearer tokens "
        "(LOYALTY_API_SECRET). The default is for development only: set your own anywhere else.",
    )
    api_previous_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="During a key rotation, the key being retired (LOYALTY_API_PREVIOUS_SECRET): "
        "tokens it signed are still accepted, new ones are signed with api_secret only.",
    )
    allow_dev_secret: bool = Field(
        default=False,
        description="Let the API serve a non-loopback address with the development secret "
        "(LOYALTY_ALLOW_DEV_SECRET=true): for throw-away demos only.",
    )

    def api_secrets(self) -> list[str]:
        """The keys the API accepts, the signing key first."""
        keys = [self.api_secret.get_secret_value()]
        if self.api_previous_secret is not None:
            keys.append(self.api_previous_secret.get_secret_value())
        return keys

    def dev_secret_refusal(self, host: str) -> str | None:
        """Why the API must not serve `host` with these settings, or None: the development
        secret is public in the source, so anyone who reaches a non-loopback address could mint
        a staff token and read every member."""
        if self.api_secret.get_secret_value() != DEV_API_SECRET or self.allow_dev_secret:
            return None
        if host == "localhost" or _is_loopback(host):
            return None
        return (
            f"refusing to serve {host} with the development API secret (public in the source: "
            "anyone could mint a staff token). Set LOYALTY_API_SECRET to a key of your own "
            "(e.g. `openssl rand -hex 32`), bind to 127.0.0.1, or set "
            "LOYALTY_ALLOW_DEV_SECRET=true for a throw-away demo."
        )

    def console_adjustment_limits_by_staff(self) -> dict[str, int]:
        """`console_adjustment_limits` as staff name → daily points."""
        pairs = (item.split("=") for item in self.console_adjustment_limits.split(",") if item)
        return {name: int(points) for name, points in pairs}

    @property
    def bootstrap_servers(self) -> str:
        """The broker to talk to: the configured one, else the local stack's."""
        return self.kafka_bootstrap or f"{self.kafka_host}:{self.kafka_port}"

    def topic(self, name: str) -> str:
        """The name a contract topic has on this deployment's broker."""
        return f"{self.topic_prefix}{name}"

    @property
    def dsn(self) -> str:
        """The database to talk to: the configured one, else the local stack's."""
        return self.database_url or self.local_dsn(self.postgres_db)

    def local_dsn(self, database: str) -> str:
        """URL of one database on the local stack's server."""
        return (
            f"postgresql://{self.postgres_user}:{self.postgres_password}"
            f"@{self.postgres_host}:{self.postgres_port}/{database}"
        )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
