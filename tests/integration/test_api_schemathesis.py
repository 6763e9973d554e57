"""Schemathesis against the API's own OpenAPI description, on the real app over real Postgres.

The app is served by uvicorn as `loyalty api` serves it (`server_config`), over a database of
this module's own holding one member with a ledger (`M1`, the member id's example) and a
published offer (`SPRING_FUEL_2X`, the offer id's example), with a staff token on every
request. Carts are evaluated on a fixed configuration and commands go to a recording sink,
so no broker is needed. For every operation, the examples, coverage and fuzzing phases send
both valid and invalid requests, and each answer must be: not a 5xx, a status the operation
documents, the documented content type, and a body the documented schema accepts.

Bounded and reproducible: at most `MAX_EXAMPLES` fuzzed requests per operation, a fixed seed,
derandomized, no example database (a run never depends on the one before).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
import requests
import schemathesis
import uvicorn
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from processors.contract.base import Event
from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.edge import server_config
from projections.api.routes_carts import FixedConfig
from projections.migrate import temporary_database
from projections.writers import feed, performance
from tests.cart_given import AT, config, offer, program, single

pytestmark = pytest.mark.integration

SECRET = "test-secret-for-the-schemathesis-run-only-long-enough-for-hs256"
STAFF = "Bearer " + issue_token(
    SECRET, "alice", Role.STAFF, now=datetime.now(UTC), ttl=timedelta(hours=2)
)
MEMBER, OFFER = "M1", "SPRING_FUEL_2X"
MAX_EXAMPLES = 50
SEED = 20261106
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class Recording:
    """A command sink that keeps what it is given."""

    def __init__(self) -> None:
        self.sent: list[Event] = []

    async def send(self, event: Event) -> None:
        self.sent.append(event)


def seed(dsn: str) -> None:
    """M1 with two ledger events (one with a lot), and one published offer (in M1's
    programme: both offer feeds show it)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO members (member_id, market, enrolled_at, first_name, last_name,"
            " status, updated_at, markets, program_ids)"
            " VALUES (%s, 'CA', %s, 'Ada', 'Lovelace', 'ACTIVE', %s, '{CA}', '{MAIN}')",
            (MEMBER, AT - timedelta(days=400), AT),
        )
        balance = 0
        for sequence, points in ((1, 120), (2, 30)):
            balance += points
            event_log_id = f"LE-{MEMBER}-{sequence}"
            recorded_at = AT - timedelta(days=3 - sequence)
            conn.execute(
                "INSERT INTO ledger_events (event_log_id, member_id, sequence, event_type,"
                " occurred_at, recorded_at, cause_event_id, source, store_id, till_id,"
                " transaction_id, points_on_event) VALUES (%s, %s, %s, 'TRANSACTION_ADD', %s,"
                " %s, %s, 'INSTORE', 'S1', 'T1', %s, %s)",
                (event_log_id, MEMBER, sequence, recorded_at, recorded_at, f"c-{sequence}",
                 f"TX{sequence}", points),
            )  # fmt: skip
            conn.execute(
                "INSERT INTO ledger_entries (entry_id, event_log_id, member_id, sequence,"
                " position, program_id, category, entry_type, kind, points, expires_at)"
                " VALUES (%s, %s, %s, %s, 0, 'MAIN', 'REGULAR', 'CREDIT', 'ALLOCATION', %s, %s)",
                (f"{event_log_id}-1", event_log_id, MEMBER, sequence, points,
                 AT + timedelta(days=365) if sequence == 1 else None),
            )  # fmt: skip
            conn.execute(
                "INSERT INTO ledger_event_balances (member_id, sequence, event_log_id,"
                " program_id, category, balance) VALUES (%s, %s, %s, 'MAIN', 'REGULAR', %s)",
                (MEMBER, sequence, event_log_id, balance),
            )
        conn.execute(
            "INSERT INTO member_balances (member_id, program_id, category, balance, sequence)"
            " VALUES (%s, 'MAIN', 'REGULAR', %s, 2)",
            (MEMBER, balance),
        )
        conn.execute(
            "INSERT INTO member_lots (member_id, program_id, category, expires_at, points)"
            " VALUES (%s, 'MAIN', 'REGULAR', %s, 120), (%s, 'MAIN', 'REGULAR', 'infinity', 30)",
            (MEMBER, AT + timedelta(days=365), MEMBER),
        )
        # The offer as the projector writes it: the catalogue row and its feed item.
        with conn.transaction():
            published = configuration().config.catalogue.get(OFFER)
            assert published is not None
            performance.write(conn, [program(), published])
            feed.write(conn, [published])


def configuration() -> FixedConfig:
    """The shared cart configuration, plus the offer id's example as a load-to-card offer."""
    built = config()
    built.apply(
        offer(
            OFFER,
            activation={"kind": "LOAD_TO_CARD"},
            behaviours=[single("SPEND", spend_min_cents=2000)],
            reward={"kind": "FLAT_POINTS", "points": 200},
        )
    )
    return FixedConfig(built)


@pytest.fixture(scope="module")
def served(stack_settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The base URL of the API, served by uvicorn over a seeded database of its own."""
    with temporary_database(stack_settings.dsn, "loyalty_test") as dsn:
        seed(dsn)
        app = create_app(
            dsn=dsn,
            api_secret=SECRET,
            clock=lambda: AT,
            config_source=configuration(),
            command_sink=Recording(),
            # No worker answers here: a redemption is pending (202) after this short wait.
            decision_wait_s=0.05,
        )
        with socket.socket() as listening:
            listening.bind(("127.0.0.1", 0))
            host, port = listening.getsockname()
            server = uvicorn.Server(server_config(app, host=host, port=port, log_config=None))
            thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]})
            thread.start()
            while not server.started and thread.is_alive():  # bounded by pytest-timeout
                time.sleep(0.01)
            try:
                yield f"http://{host}:{port}"
            finally:
                server.should_exit = True
                thread.join()


def description() -> dict[str, Any]:
    """The OpenAPI description the app serves (built without a database: it needs none)."""
    app = create_app(dsn="postgresql://unused", api_secret=SECRET, config_source=configuration())
    return app.openapi()


# Loaded at import, as `parametrize` needs; the served app's base URL is given per call.
# (`schemathesis.pytest.from_fixture` could start the server first, but fails on pytest 9: it
# sets `Function._nodeid`, which pytest 9 no longer has.)
schema = schemathesis.openapi.from_dict(
    description(),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # Health checks that time data generation would make a slow machine fail the run.
            "suppress-health-check": ["too_slow"],
            "headers": {"Authorization": STAFF},
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
                "mode": "all",
            },
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


def test_the_description_tested_is_the_one_served(served):
    assert requests.get(f"{served}/openapi.json", timeout=60).json() == description()


@schema.parametrize()
def test_the_api_answers_as_its_description_says(case: Any, served: str) -> None:
    case.call_and_validate(base_url=served, checks=CHECKS)


# --- the bad bytes the issue found, on the real database --------------------------------------

NUL_MEMBER = quote("M\x001")
NUL_PLACES = [
    f"/v1/members/{NUL_MEMBER}/ledger",
    f"/v1/members/{NUL_MEMBER}/ledger/closing-balance",
    f"/v1/members/{NUL_MEMBER}/balance",
    f"/v1/members/{MEMBER}/ledger?till_id=T%001",
    f"/v1/members/{MEMBER}/ledger?program_id=MAIN%00",
    f"/v1/members/{MEMBER}/ledger/closing-balance?till_id=T%001",
    f"/v1/members/{MEMBER}/ledger/closing-balance?program_id=MAIN%00",
    f"/v1/members/{NUL_MEMBER}/rewards",
    f"/v1/members/{MEMBER}/redemptions/k%001",
    f"/v1/rewards?market=CA&member_id={NUL_MEMBER}",
    f"/v1/members/{NUL_MEMBER}/offers",
    "/v1/offers?market=CA&locale=fr%00",
    f"/v1/members/{NUL_MEMBER}/challenges",
    "/v1/challenges/participation?market=CA%00",
    f"/v1/members/{MEMBER}/enrolment/k%001",
    f"/v1/members/{NUL_MEMBER}/preferences",
    f"/v1/members/{MEMBER}/preferences/changes/k%001",
    f"/v1/members/{NUL_MEMBER}/preferences/audit",
    f"/v1/members/{NUL_MEMBER}/inbox",
]


@pytest.mark.parametrize("target", NUL_PLACES)
def test_a_nul_byte_in_an_identifier_is_a_400_not_a_database_error(served, target):
    response = requests.get(served + target, headers={"Authorization": STAFF}, timeout=60)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_parameter"


def test_the_examples_name_data_that_exists(served):
    # So that the examples phase reads real rows and evaluates a cart, and their schemas are
    # checked, not only the refusals'.
    staff = {"Authorization": STAFF}
    for target in (f"/v1/members/{MEMBER}/ledger", f"/v1/offers/{OFFER}/performance"):
        response = requests.get(served + target, headers=staff, timeout=60)
        assert response.status_code == 200, response.text
    for target in ("/v1/offers?market=CA", f"/v1/members/{MEMBER}/offers"):
        response = requests.get(served + target, headers=staff, timeout=60)
        assert [o["offer_id"] for o in response.json()["offers"]] == [OFFER], response.text
    example = description()["components"]["schemas"]["CartRequest"]["examples"][0]
    response = requests.post(f"{served}/v1/carts/evaluate", json=example, headers=staff, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["total_points"] > 0
