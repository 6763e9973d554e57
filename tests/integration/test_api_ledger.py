"""The ledger read API on the real Postgres: pages, filters, closing balances, lots, isolation.

Rows are written straight into the projection tables by a tiny writer below (the projection
runner is tested on its own); the app runs in-process with a fixed clock.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from prometheus_client import generate_latest

from projections.api.app import create_app
from projections.api.auth import Role, issue_token

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SECRET = "test-secret-for-the-ledger-api-tests-only-long-enough-for-any-hmac-size"


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


# --- a tiny writer: what the ledger projection would have written --------------------------


@dataclass(frozen=True)
class E:
    """One entry to write: `credit(...)` / `debit(...)`."""

    program_id: str
    entry_type: str
    points: int
    category: str = "REGULAR"
    kind: str = "ALLOCATION"
    expires_at: datetime | None = None

    @property
    def signed(self) -> int:
        return self.points if self.entry_type == "CREDIT" else -self.points


def credit(program_id: str, points: int, **kw: Any) -> E:
    return E(program_id, "CREDIT", points, **kw)


def debit(program_id: str, points: int, **kw: Any) -> E:
    return E(program_id, "DEBIT", points, **{"kind": "REDEMPTION", **kw})


@dataclass
class Ledger:
    """Appends events to one member's ledger tables, keeping balances like the projection."""

    conn: psycopg.Connection
    member_id: str
    sequence: int = 0
    balances: dict[tuple[str, str], int] = field(default_factory=dict)

    def enrol(self, first_name: str = "Ada", last_name: str = "Lovelace") -> None:
        self.conn.execute(
            "INSERT INTO members (member_id, market, enrolled_at, first_name, last_name, status,"
            " updated_at) VALUES (%s, 'CA', %s, %s, %s, 'ACTIVE', %s)",
            (self.member_id, days_ago(400), first_name, last_name, days_ago(400)),
        )

    def event(
        self,
        recorded_at: datetime,
        *entries: E,
        event_type: str = "TRANSACTION_ADD",
        source: str = "INSTORE",
        store_id: str | None = None,
        till_id: str | None = None,
        transaction_id: str | None = None,
    ) -> str:
        self.sequence += 1
        event_log_id = f"LE-{self.member_id}-{self.sequence}"
        self.conn.execute(
            "INSERT INTO ledger_events (event_log_id, member_id, sequence, event_type,"
            " occurred_at, recorded_at, cause_event_id, source, store_id, till_id,"
            " transaction_id, transaction_number, points_on_event)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                event_log_id,
                self.member_id,
                self.sequence,
                event_type,
                recorded_at - timedelta(seconds=1),
                recorded_at,
                f"cause-{event_log_id}",
                source,
                store_id,
                till_id,
                transaction_id,
                f"N-{transaction_id}" if transaction_id else None,
                sum(entry.signed for entry in entries),
            ),
        )
        touched: list[tuple[str, str]] = []
        for position, entry in enumerate(entries):
            self.conn.execute(
                "INSERT INTO ledger_entries (entry_id, event_log_id, member_id, sequence,"
                " position, program_id, category, entry_type, kind, points, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    f"{event_log_id}-{position + 1}",
                    event_log_id,
                    self.member_id,
                    self.sequence,
                    position,
                    entry.program_id,
                    entry.category,
                    entry.entry_type,
                    entry.kind,
                    entry.points,
                    entry.expires_at,
                ),
            )
            account = (entry.program_id, entry.category)
            self.balances[account] = self.balances.get(account, 0) + entry.signed
            if account not in touched:
                touched.append(account)
        for program_id, category in touched:
            balance = self.balances[(program_id, category)]
            self.conn.execute(
                "INSERT INTO ledger_event_balances (member_id, sequence, event_log_id,"
                " program_id, category, balance) VALUES (%s, %s, %s, %s, %s, %s)",
                (self.member_id, self.sequence, event_log_id, program_id, category, balance),
            )
            self.conn.execute(
                "INSERT INTO member_balances (member_id, program_id, category, balance, sequence)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (member_id, program_id, category)"
                " DO UPDATE SET balance = EXCLUDED.balance, sequence = EXCLUDED.sequence",
                (self.member_id, program_id, category, balance, self.sequence),
            )
        return event_log_id

    def lot(self, program_id: str, category: str, expires_at: datetime | str, points: int) -> None:
        self.conn.execute(
            "INSERT INTO member_lots (member_id, program_id, category, expires_at, points)"
            " VALUES (%s, %s, %s, %s, %s)",
            (self.member_id, program_id, category, expires_at, points),
        )


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def new_ledger(db: psycopg.Connection):
    """`new_ledger()` → a Ledger for a fresh member id (the database is shared by the run)."""

    def make(*, enrolled: bool = True) -> Ledger:
        ledger = Ledger(db, f"M-{uuid.uuid4().hex[:10]}")
        if enrolled:
            ledger.enrol()
        return ledger

    return make


# --- the app, in-process ----------------------------------------------------------------------


@pytest.fixture(scope="module")
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(dsn=database_url, api_secret=SECRET, clock=lambda: NOW)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http


def token(subject: str, role: Role = Role.MEMBER, **claims: Any) -> str:
    return issue_token(SECRET, subject, role, now=datetime.now(UTC), **claims)


def as_member(member_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(member_id)}"}


STAFF = {"Authorization": f"Bearer {token('alice', Role.STAFF, ttl=timedelta(days=1))}"}


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=STAFF)
    assert response.status_code == 200, response.text
    return response.json()


def sequences(body: dict[str, Any]) -> list[int]:
    return [event["sequence"] for event in body["events"]]


def entries(body: dict[str, Any]) -> list[tuple[int, str, str, str, int]]:
    return [
        (
            event["sequence"],
            entry["program_id"],
            entry["category"],
            entry["entry_type"],
            entry["points"],
        )
        for event in body["events"]
        for entry in event["entries"]
    ]


# --- the ledger -------------------------------------------------------------------------------


async def test_a_page_shows_the_customer_the_page_and_each_event_with_its_entries(
    client, new_ledger
):
    # given a registration and a purchase in the last week
    ledger = new_ledger()
    m = ledger.member_id
    ledger.event(
        days_ago(3),
        credit("P1", 0, kind="OPENING_BALANCE"),
        event_type="CUSTOMER_REGISTRATION",
        source="APP",
    )
    ledger.event(
        days_ago(1),
        credit("P1", 120, expires_at=datetime(2027, 12, 1, 5, tzinfo=UTC)),
        store_id="0412",
        till_id="T3",
        transaction_id="TX1",
    )

    # when the member reads its ledger
    response = await client.get(f"/v1/members/{m}/ledger", headers=as_member(m))

    # then everything is there, chronologically, with the default window echoed
    assert response.status_code == 200
    assert response.json() == {
        "customer": {
            "member_id": m,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "market": "CA",
            "status": "ACTIVE",
            "merged_into": None,
        },
        "page": {
            "limit": 10,
            "has_more": False,
            "next_cursor": None,
            "filters": {
                "source": None,
                "till_id": None,
                "from": "2026-11-13T12:00:00Z",
                "to": "2026-11-20T12:00:00Z",
                "entry_type": None,
                "category": None,
                "program_id": None,
                "includeTillConceptEvents": False,
            },
        },
        "events": [
            {
                "event_log_id": f"LE-{m}-1",
                "sequence": 1,
                "event_type": "CUSTOMER_REGISTRATION",
                "occurred_at": "2026-11-17T11:59:59Z",
                "recorded_at": "2026-11-17T12:00:00Z",
                "source": "APP",
                "store_id": None,
                "till_id": None,
                "transaction_id": None,
                "transaction_number": None,
                "related_member_id": None,
                "points_on_event": 0,
                "entries": [
                    {
                        "entry_id": f"LE-{m}-1-1",
                        "program_id": "P1",
                        "category": "REGULAR",
                        "entry_type": "CREDIT",
                        "kind": "OPENING_BALANCE",
                        "points": 0,
                        "expires_at": None,
                        "offer_id": None,
                    }
                ],
            },
            {
                "event_log_id": f"LE-{m}-2",
                "sequence": 2,
                "event_type": "TRANSACTION_ADD",
                "occurred_at": "2026-11-19T11:59:59Z",
                "recorded_at": "2026-11-19T12:00:00Z",
                "source": "INSTORE",
                "store_id": "0412",
                "till_id": "T3",
                "transaction_id": "TX1",
                "transaction_number": "N-TX1",
                "related_member_id": None,
                "points_on_event": 120,
                "entries": [
                    {
                        "entry_id": f"LE-{m}-2-1",
                        "program_id": "P1",
                        "category": "REGULAR",
                        "entry_type": "CREDIT",
                        "kind": "ALLOCATION",
                        "points": 120,
                        "expires_at": "2027-12-01T05:00:00Z",
                        "offer_id": None,
                    }
                ],
            },
        ],
    }


async def test_pages_walk_the_ledger_in_order_with_no_gap_and_no_repeat(client, new_ledger):
    # given 23 events over the last few days
    ledger = new_ledger()
    for hour in range(23):
        ledger.event(days_ago(5) + timedelta(hours=hour), credit("P1", hour + 1))
    path = f"/v1/members/{ledger.member_id}/ledger"

    # when the pages are read one after the other, 10 at a time
    seen: list[int] = []
    shapes: list[tuple[int, bool]] = []
    params: dict[str, Any] = {"limit": 10}
    while True:
        body = await get(client, path, **params)
        seen += sequences(body)
        shapes.append((len(body["events"]), body["page"]["has_more"]))
        if body["page"]["next_cursor"] is None:
            break
        params["cursor"] = body["page"]["next_cursor"]

    # then every event comes once, in ledger order
    assert seen == list(range(1, 24))
    assert shapes == [(10, True), (10, True), (3, False)]


async def test_a_page_exactly_as_long_as_the_rest_says_there_is_no_more(client, new_ledger):
    ledger = new_ledger()
    for day in (3, 2, 1):
        ledger.event(days_ago(day), credit("P1", 10))
    body = await get(client, f"/v1/members/{ledger.member_id}/ledger", limit=3)
    assert (sequences(body), body["page"]["has_more"]) == ([1, 2, 3], False)
    assert body["page"]["next_cursor"] is None


async def test_by_default_only_the_last_seven_days_are_shown(client, new_ledger):
    ledger = new_ledger()
    ledger.event(days_ago(8), credit("P1", 10))
    ledger.event(days_ago(6), credit("P1", 20))
    body = await get(client, f"/v1/members/{ledger.member_id}/ledger")
    assert sequences(body) == [2]


async def test_from_and_to_bound_recorded_at_both_included(client, new_ledger):
    ledger = new_ledger()
    for day in (30, 20, 10, 5):
        ledger.event(days_ago(day), credit("P1", day))
    body = await get(
        client,
        f"/v1/members/{ledger.member_id}/ledger",
        **{"from": rfc3339(days_ago(20)), "to": rfc3339(days_ago(10))},
    )
    assert sequences(body) == [2, 3]
    assert body["page"]["filters"]["from"] == "2026-10-31T12:00:00Z"
    assert body["page"]["filters"]["to"] == "2026-11-10T12:00:00Z"


async def test_an_offset_other_than_utc_is_understood(client, new_ledger):
    ledger = new_ledger()
    ledger.event(datetime(2026, 11, 18, 5, 0, tzinfo=UTC), credit("P1", 1))
    body = await get(
        client,
        f"/v1/members/{ledger.member_id}/ledger",
        **{"from": "2026-11-18T00:00:00-05:00", "to": "2026-11-18T00:00:00-05:00"},
    )
    assert sequences(body) == [1]
    assert body["page"]["filters"]["from"] == "2026-11-18T05:00:00Z"


async def test_source_and_till_filters_keep_only_matching_events(client, new_ledger):
    ledger = new_ledger()
    ledger.event(days_ago(4), credit("P1", 1), source="INSTORE", till_id="T1")
    ledger.event(days_ago(3), credit("P1", 2), source="ECOMMERCE")
    ledger.event(days_ago(2), credit("P1", 3), source="INSTORE", till_id="T2")
    path = f"/v1/members/{ledger.member_id}/ledger"

    assert sequences(await get(client, path, source="INSTORE")) == [1, 3]
    assert sequences(await get(client, path, till_id="T2")) == [3]
    assert sequences(await get(client, path, source="ECOMMERCE", till_id="T1")) == []


async def test_entry_type_keeps_events_with_such_entries_and_shows_only_those(client, new_ledger):
    # given a purchase (credit) and a return with a points return and a redemption reversal
    ledger = new_ledger()
    ledger.event(days_ago(3), credit("P1", 100))
    ledger.event(
        days_ago(2),
        debit("P1", 40, kind="RETURN"),
        credit("P1", 15, kind="REDEMPTION_REVERSAL"),
        event_type="TRANSACTION_RETURN",
    )
    path = f"/v1/members/{ledger.member_id}/ledger"

    # when only debits are asked for
    body = await get(client, path, entry_type="DEBIT")

    # then only the return shows, with only its debit, and its net unchanged
    assert entries(body) == [(2, "P1", "REGULAR", "DEBIT", 40)]
    assert body["events"][0]["points_on_event"] == -25
    assert entries(await get(client, path, entry_type="CREDIT")) == [
        (1, "P1", "REGULAR", "CREDIT", 100),
        (2, "P1", "REGULAR", "CREDIT", 15),
    ]


async def test_category_keeps_events_touching_it_and_shows_only_its_entries(client, new_ledger):
    # given a purchase earning promised points, then their conversion to regular
    ledger = new_ledger()
    ledger.event(days_ago(3), credit("P1", 50, category="PROMISED"))
    ledger.event(
        days_ago(2),
        debit("P1", 50, category="PROMISED", kind="CONVERSION"),
        credit("P1", 50, kind="CONVERSION"),
        event_type="PROMISED_POINTS_CONVERSION",
    )
    body = await get(client, f"/v1/members/{ledger.member_id}/ledger", category="REGULAR")
    assert entries(body) == [(2, "P1", "REGULAR", "CREDIT", 50)]


async def test_program_filter_shows_only_that_programmes_entries(client, new_ledger):
    ledger = new_ledger()
    ledger.event(days_ago(4), credit("P1", 10), credit("P2", 20))
    ledger.event(days_ago(3), credit("P2", 30))
    body = await get(client, f"/v1/members/{ledger.member_id}/ledger", program_id="P1")
    assert entries(body) == [(1, "P1", "REGULAR", "CREDIT", 10)]


async def test_till_concept_events_show_a_group_redemption_whole_when_asked(client, new_ledger):
    # given a group redemption at till T1 drawing on P1 and P2, one at T2 drawing on P2 and P3,
    # and a purchase at T1 earning in P1 and P2 (not a redemption)
    ledger = new_ledger()
    ledger.event(days_ago(5), credit("P1", 100), credit("P2", 100), credit("P3", 100))
    ledger.event(
        days_ago(4),
        debit("P1", 30),
        debit("P2", 20),
        event_type="POINTS_REDEMPTION",
        till_id="T1",
    )
    ledger.event(
        days_ago(3),
        debit("P2", 5),
        debit("P3", 5),
        event_type="POINTS_REDEMPTION",
        till_id="T2",
    )
    ledger.event(days_ago(2), credit("P1", 7), credit("P2", 8), till_id="T1")
    path = f"/v1/members/{ledger.member_id}/ledger"

    # when P1 is asked for, without and with till concept events
    plain = await get(client, path, program_id="P1")
    widened = await get(client, path, program_id="P1", includeTillConceptEvents="true")

    # then by default only P1's debit of the group redemption shows; asked, the whole of it
    assert entries(plain) == [
        (1, "P1", "REGULAR", "CREDIT", 100),
        (2, "P1", "REGULAR", "DEBIT", 30),
        (4, "P1", "REGULAR", "CREDIT", 7),
    ]
    assert entries(widened) == [
        (1, "P1", "REGULAR", "CREDIT", 100),
        (2, "P1", "REGULAR", "DEBIT", 30),
        (2, "P2", "REGULAR", "DEBIT", 20),
        (4, "P1", "REGULAR", "CREDIT", 7),
    ]
    assert widened["page"]["filters"]["includeTillConceptEvents"] is True


async def test_a_member_with_a_ledger_but_no_profile_is_shown_without_one(client, new_ledger):
    ledger = new_ledger(enrolled=False)
    ledger.event(days_ago(1), credit("P1", 5))
    body = await get(client, f"/v1/members/{ledger.member_id}/ledger")
    assert body["customer"] == {
        "member_id": ledger.member_id,
        "first_name": None,
        "last_name": None,
        "market": None,
        "status": None,
        "merged_into": None,
    }
    assert sequences(body) == [1]


async def test_an_enrolled_member_with_no_event_in_the_window_gets_an_empty_page(
    client, new_ledger
):
    ledger = new_ledger()
    body = await get(client, f"/v1/members/{ledger.member_id}/ledger")
    assert body["events"] == []
    assert body["page"]["has_more"] is False


# --- bad requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "parameter", "reason"),
    [
        ({"limit": "11"}, "limit", "Input should be less than or equal to 10"),
        ({"limit": "0"}, "limit", "Input should be greater than or equal to 1"),
        ({"limit": "ten"}, "limit", "Input should be a valid integer"),
        (
            {"from": "yesterday"},
            "from",
            "must be an RFC 3339 date-time with a time zone, e.g. 2026-11-02T14:31:08Z",
        ),
        (
            {"to": "2026-11-02T14:31:08"},
            "to",
            "must be an RFC 3339 date-time with a time zone, e.g. 2026-11-02T14:31:08Z",
        ),
        (
            {"to": "2026-11-02T14:31:08 05:00"},
            "to",
            "must be an RFC 3339 date-time with a time zone, e.g. 2026-11-02T14:31:08Z "
            "(send a '+' offset as %2B)",
        ),
        (
            {"from": "2026-02-30T00:00:00Z"},
            "from",
            "is not a valid date-time: day is out of range for month",
        ),
        (
            {"from": "2026-11-10T00:00:00Z", "to": "2026-11-09T00:00:00Z"},
            "from",
            "must not be after 'to' (2026-11-10T00:00:00Z > 2026-11-09T00:00:00Z)",
        ),
        ({"entry_type": "SIDEWAYS"}, "entry_type", "Input should be 'CREDIT', 'DEBIT' or"),
        ({"category": "GOLD"}, "category", "Input should be 'REGULAR', 'PROMISED', 'TRIGGER' or"),
        ({"source": "TELEPATHY"}, "source", "Input should be 'INSTORE', 'ECOMMERCE'"),
        ({"includeTillConceptEvents": "maybe"}, "includeTillConceptEvents", "Input should be"),
        (
            {"cursor": "not-a-cursor"},
            "cursor",
            "is not a cursor returned by this API (use page.next_cursor)",
        ),
    ],
)
async def test_a_bad_parameter_is_a_400_naming_it_and_why(
    client, new_ledger, params, parameter, reason
):
    ledger = new_ledger()
    response = await client.get(
        f"/v1/members/{ledger.member_id}/ledger", params=params, headers=STAFF
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["parameter"]) == ("invalid_parameter", parameter)
    assert body["reason"].startswith(reason)


async def test_a_bad_parameter_body_is_exact(client, new_ledger):
    ledger = new_ledger()
    response = await client.get(
        f"/v1/members/{ledger.member_id}/ledger", params={"limit": 11}, headers=STAFF
    )
    assert response.json() == {
        "error": "invalid_parameter",
        "parameter": "limit",
        "reason": "Input should be less than or equal to 10",
        "errors": [{"parameter": "limit", "reason": "Input should be less than or equal to 10"}],
    }


async def test_the_closing_balance_refuses_the_same_bad_parameters(client, new_ledger):
    ledger = new_ledger()
    response = await client.get(
        f"/v1/members/{ledger.member_id}/ledger/closing-balance",
        params={"from": "2026-11-10T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        headers=STAFF,
    )
    assert response.status_code == 400
    assert response.json()["parameter"] == "from"


# --- who may read what ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["ledger", "ledger/closing-balance", "balance"])
async def test_a_member_token_reads_only_its_own_member(client, new_ledger, path):
    # given two members
    a, b = new_ledger(), new_ledger()

    # when A's token reads A, and then B
    own = await client.get(f"/v1/members/{a.member_id}/{path}", headers=as_member(a.member_id))
    other = await client.get(f"/v1/members/{b.member_id}/{path}", headers=as_member(a.member_id))

    # then A is answered and B is refused
    assert own.status_code == 200
    assert other.status_code == 403
    assert other.json() == {
        "error": "forbidden",
        "reason": "a member token reads only its own member's data",
    }


async def test_a_member_token_on_an_unknown_member_is_refused_not_found(client):
    # 403, not 404: a token must not learn which member ids exist.
    response = await client.get("/v1/members/NOBODY/ledger", headers=as_member("M-someone"))
    assert response.status_code == 403


async def test_a_staff_token_reads_any_member(client, new_ledger):
    ledger = new_ledger()
    response = await client.get(f"/v1/members/{ledger.member_id}/balance", headers=STAFF)
    assert response.status_code == 200


def forged(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


HOUR_AHEAD = int((datetime.now(UTC) + timedelta(hours=1)).timestamp())


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "missing Authorization header (expected 'Bearer <token>')"),
        ("Basic dXNlcjpwYXNz", "the Authorization header must be 'Bearer <token>'"),
        ("Bearer", "the Authorization header must be 'Bearer <token>'"),
        ("Bearer not.a.jwt", "the bearer value is not a JWT"),
        (
            "Bearer "
            + forged(
                {"sub": "M1", "role": "member", "exp": HOUR_AHEAD},
                secret="someone-elses-secret-of-enough-length",
            ),
            "the token's signature does not verify",
        ),
        (
            "Bearer " + forged({"sub": "M1", "role": "member", "exp": 1}),
            "the token has expired",
        ),
        (
            "Bearer " + forged({"sub": "M1", "role": "member"}),
            "the token lacks the 'exp' claim",
        ),
        (
            "Bearer " + forged({"sub": "M1", "role": "admin", "exp": HOUR_AHEAD}),
            "the token's 'role' claim must be 'member' or 'staff'",
        ),
        (
            "Bearer "
            + forged({"sub": "M1", "role": "staff", "exp": HOUR_AHEAD}, algorithm="HS512"),
            "the token must be signed with HS256",
        ),
        (
            "Bearer "
            + jwt.encode({"sub": "M1", "role": "staff", "exp": HOUR_AHEAD}, None, algorithm="none"),
            "the token must be signed with HS256",
        ),
    ],
)
async def test_no_usable_token_is_a_401_with_the_reason(client, authorization, reason):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get("/v1/members/M1/ledger", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "reason": reason}
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_an_unknown_member_is_a_404(client):
    response = await client.get(f"/v1/members/M-{uuid.uuid4().hex}/ledger", headers=STAFF)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    for path in ("ledger/closing-balance", "balance"):
        response = await client.get(
            f"/v1/members/M-unknown-{uuid.uuid4().hex}/{path}", headers=STAFF
        )
        assert response.status_code == 404


# --- closing balance --------------------------------------------------------------------------


@pytest.fixture
def two_programme_ledger(new_ledger) -> Ledger:
    """P1 REGULAR and PROMISED, P2 REGULAR; events on days 10, 6, 4, 2 before NOW."""
    ledger = new_ledger()
    ledger.event(days_ago(10), credit("P1", 100), credit("P2", 50), source="INSTORE")  # 1
    ledger.event(days_ago(6), credit("P1", 40, category="PROMISED"), source="ECOMMERCE")  # 2
    ledger.event(days_ago(4), debit("P1", 30), source="INSTORE", till_id="T9")  # 3
    ledger.event(days_ago(2), credit("P2", 5), source="APP")  # 4
    return ledger


async def test_with_no_filter_the_closing_balance_is_the_current_balance(
    client, two_programme_ledger
):
    m = two_programme_ledger.member_id
    body = await get(client, f"/v1/members/{m}/ledger/closing-balance")
    assert body == {
        "member_id": m,
        "as_of": {
            "event_log_id": f"LE-{m}-4",
            "sequence": 4,
            "recorded_at": "2026-11-18T12:00:00Z",
        },
        "filters": None,
        "balances": [
            {"program_id": "P1", "category": "PROMISED", "balance": 40},
            {"program_id": "P1", "category": "REGULAR", "balance": 70},
            {"program_id": "P2", "category": "REGULAR", "balance": 55},
        ],
        "total_points": 165,
    }


async def test_a_filtered_closing_balance_stands_after_the_views_last_event(
    client, two_programme_ledger
):
    m = two_programme_ledger.member_id
    path = f"/v1/members/{m}/ledger/closing-balance"
    window = {"from": rfc3339(days_ago(30))}

    # the last INSTORE event is #3: every account as it stood then
    body = await get(client, path, source="INSTORE", **window)
    assert body["as_of"]["sequence"] == 3
    assert body["balances"] == [
        {"program_id": "P1", "category": "PROMISED", "balance": 40},
        {"program_id": "P1", "category": "REGULAR", "balance": 70},
        {"program_id": "P2", "category": "REGULAR", "balance": 50},
    ]
    assert body["total_points"] == 160

    # the last event touching P1 is #3, and only P1's accounts count
    body = await get(client, path, program_id="P1", **window)
    assert (body["as_of"]["sequence"], body["total_points"]) == (3, 110)
    assert [b["program_id"] for b in body["balances"]] == ["P1", "P1"]

    # P1 REGULAR up to 5 days ago: as of #1
    body = await get(
        client, path, program_id="P1", category="REGULAR", to=rfc3339(days_ago(5)), **window
    )
    assert body["as_of"]["sequence"] == 1
    assert body["balances"] == [{"program_id": "P1", "category": "REGULAR", "balance": 100}]
    assert body["total_points"] == 100
    assert body["filters"]["category"] == "REGULAR"


async def test_from_defaults_to_seven_days_before_to(client, two_programme_ledger):
    m = two_programme_ledger.member_id
    path = f"/v1/members/{m}/ledger/closing-balance"
    # 8 days ago: the window is 15..8 days ago and holds #1 only
    body = await get(client, path, source="INSTORE", to=rfc3339(days_ago(8)))
    assert body["as_of"]["sequence"] == 1
    assert body["filters"]["from"] == rfc3339(days_ago(15))
    # 20 days ago: 27..20 days ago holds nothing
    body = await get(client, path, source="INSTORE", to=rfc3339(days_ago(20)))
    assert body["as_of"] is None


async def test_an_empty_view_has_no_closing_balance(client, two_programme_ledger):
    m = two_programme_ledger.member_id
    body = await get(client, f"/v1/members/{m}/ledger/closing-balance", source="PARTNER")
    assert (body["as_of"], body["balances"], body["total_points"]) == (None, [], 0)


# --- balance with lots ------------------------------------------------------------------------


async def test_the_balance_shows_each_account_with_its_lots_and_a_total_per_programme(
    client, new_ledger
):
    # given two programmes' accounts and their lots, one of which never expires
    ledger = new_ledger()
    ledger.event(days_ago(3), credit("P1", 300), credit("P1", 40, category="PROMISED"))
    ledger.event(days_ago(2), credit("P2", 25))
    ledger.lot("P1", "REGULAR", "infinity", 100)
    ledger.lot("P1", "REGULAR", datetime(2027, 1, 31, 5, tzinfo=UTC), 150)
    ledger.lot("P1", "REGULAR", datetime(2026, 12, 31, 5, tzinfo=UTC), 50)
    ledger.lot("P1", "PROMISED", datetime(2027, 6, 1, 4, tzinfo=UTC), 40)
    ledger.lot("P2", "REGULAR", "infinity", 25)
    m = ledger.member_id

    # when the member reads its balance
    response = await client.get(f"/v1/members/{m}/balance", headers=as_member(m))

    # then lots are earliest first, the never-expiring one last as null
    assert response.json() == {
        "member_id": m,
        "programs": [
            {
                "program_id": "P1",
                "total_points": 340,
                "categories": [
                    {
                        "category": "PROMISED",
                        "balance": 40,
                        "lots": [{"expires_at": "2027-06-01T04:00:00Z", "points": 40}],
                    },
                    {
                        "category": "REGULAR",
                        "balance": 300,
                        "lots": [
                            {"expires_at": "2026-12-31T05:00:00Z", "points": 50},
                            {"expires_at": "2027-01-31T05:00:00Z", "points": 150},
                            {"expires_at": None, "points": 100},
                        ],
                    },
                ],
            },
            {
                "program_id": "P2",
                "total_points": 25,
                "categories": [
                    {
                        "category": "REGULAR",
                        "balance": 25,
                        "lots": [{"expires_at": None, "points": 25}],
                    }
                ],
            },
        ],
    }


async def test_an_enrolled_member_without_accounts_has_no_programmes(client, new_ledger):
    ledger = new_ledger()
    body = await get(client, f"/v1/members/{ledger.member_id}/balance")
    assert body == {"member_id": ledger.member_id, "programs": []}


# --- operations -------------------------------------------------------------------------------


async def test_healthz_says_the_database_answers(client):
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "database": "ok"})


async def test_metrics_count_requests_by_route_template(client, new_ledger):
    ledger = new_ledger()
    await get(client, f"/v1/members/{ledger.member_id}/balance")
    text = generate_latest().decode()  # what the internal metrics port serves (ADR 18)
    assert (await client.get("/metrics")).status_code == 404  # never on the public port
    assert (
        'loyalty_api_requests_total{method="GET",route="/v1/members/{member_id}/balance",'
        'status="200"}'
    ) in text
    assert ledger.member_id not in text


async def test_who_is_asking_is_checked_before_what_is_asked(client, new_ledger):
    # A bad parameter never tells an unauthorised caller anything about the member.
    a, b = new_ledger(), new_ledger()
    anonymous = await client.get(f"/v1/members/{a.member_id}/ledger", params={"limit": 11})
    other = await client.get(
        f"/v1/members/{b.member_id}/ledger", params={"limit": 11}, headers=as_member(a.member_id)
    )
    assert (anonymous.status_code, other.status_code) == (401, 403)


async def test_healthz_says_so_when_the_database_does_not_answer():
    # Port 1 on loopback: nothing listens, so every connection attempt is refused.
    app = create_app(dsn="postgresql://nobody@127.0.0.1:1/none", api_secret=SECRET)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            response = await http.get("/healthz")
    assert (response.status_code, response.json()["status"]) == (503, "unavailable")
