"""Enrolling through the HTTP API, end to end on the real stack (issue #15, ADR 28): the app as
`loyalty api` builds it, the real worker deciding, the real projector writing its answer.
A member joins their market's open programme (201, the registration's ledger event); the same
key again is 409 with the original, a new key 409 already_enrolled; a foreign, unknown or
closed programme is 422 with the worker's reason and opens nothing; a member token enrols and
reads only its own member; bad input is 400.

The API waits for decisions up to a bound far beyond what they take here, so the answers do
not depend on the machine's speed."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from loyalty.producing import publish_events
from loyalty.services import Services
from processors.base.settings import Settings
from projections.api.auth import Role
from tests.integration.test_member_services_api import count_is
from tests.integration.test_rewards_api import api, bearer, engine, projected
from tests.integration.test_worker_runtime import until
from tests.rules.given import PROGRAM, program

pytestmark = pytest.mark.integration

__all__ = ["engine"]  # the fixture, shared with the rewards API's tests

CLOSED, US = "CA_CLOSED", "US_MAIN"


async def enrol(
    http: httpx.AsyncClient,
    settings: Settings,
    member: str,
    key: str,
    *,
    market: str = "CA",
    program_id: str = PROGRAM,
    as_member: str | None = None,
) -> httpx.Response:
    return await http.post(
        f"/v1/members/{member}/enrolment",
        json={"market": market, "program_id": program_id,
              "profile": {"first_name": "Ada", "preferred_locale": "fr-CA"}},
        headers={**bearer(settings, as_member or member), "Idempotency-Key": key},
    )  # fmt: skip


async def test_enrolment_answers_with_the_workers_decision(engine, tmp_path):
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    try:
        await publish_events(
            engine,
            [
                program(),
                program(program_id=CLOSED, enrolment_open=False),
                program(program_id=US, market="US", currency="USD", time_zone="America/New_York"),
            ],
        )
        async with api() as http:
            joined, foreign, unknown, closed = await asyncio.gather(
                enrol(http, engine, "en-1", "k1"),
                enrol(http, engine, "en-2", "k1", market="US"),
                enrol(http, engine, "en-3", "k1", program_id="NOWHERE"),
                enrol(http, engine, "en-4", "k1", program_id=CLOSED),
            )
            repeat = await enrol(http, engine, "en-1", "k1")
            again = await enrol(http, engine, "en-1", "k2")
            reused = await enrol(http, engine, "en-1", "k1", program_id=CLOSED)
            status = await http.get("/v1/members/en-1/enrolment/k1", headers=bearer(engine, "en-1"))
            by_staff = await http.get(
                "/v1/members/en-3/enrolment/k1", headers=bearer(engine, "care", Role.STAFF)
            )
            never = await http.get("/v1/members/en-1/enrolment/k9", headers=bearer(engine, "en-1"))
            balance = await http.get("/v1/members/en-1/balance", headers=bearer(engine, "en-1"))
            # Once the refusals are projected, the refused enrolments have opened nothing:
            # to the member services they are no member.
            refusals = (
                "SELECT count(*) FROM request_outcomes"
                " WHERE member_id IN ('en-2', 'en-3', 'en-4') AND NOT accepted"
            )
            assert await until(count_is(engine, refusals, 3), 60)
            no_preferences = await http.get(
                "/v1/members/en-2/preferences", headers=bearer(engine, "en-2")
            )
            no_inbox = await http.get("/v1/members/en-2/inbox", headers=bearer(engine, "en-2"))
        logs = worker.log_tail() + projector.log_tail()
    finally:
        services.stop()

    assert joined.status_code == 201, joined.text + logs
    body = joined.json()
    assert (body["status"], body["program_ids"], body["market"]) == ("accepted", [PROGRAM], "CA")
    assert body["ledger_event_log_id"]
    assert joined.headers["Location"] == "/v1/members/en-1/enrolment/k1"

    for refused, reason in ((foreign, "market_mismatch"), (unknown, "unknown_programme"),
                            (closed, "programme_disabled")):  # fmt: skip
        assert (refused.status_code, refused.json()["error"]) == (422, reason), refused.text

    assert repeat.status_code == 409
    assert repeat.json() == body  # the original outcome, nothing written again
    assert again.status_code == 409
    assert (again.json()["status"], again.json()["reason"]) == ("rejected", "already_enrolled")
    assert (reused.status_code, reused.json()["error"]) == (422, "idempotency_key_reused")
    assert (status.status_code, status.json()) == (200, body)
    assert (by_staff.status_code, by_staff.json()["reason"]) == (200, "unknown_programme")
    assert never.status_code == 404
    assert balance.status_code == 200, balance.text
    assert (no_preferences.status_code, no_inbox.status_code) == (404, 404)

    # The refused members opened nothing: only en-1 has accounts and a member row, and no
    # enrolment is left waiting for its answer.
    accounts = "SELECT count(DISTINCT member_id) FROM member_balances"
    assert projected(engine, accounts) == 1
    ours = "member_id IN ('en-1', 'en-2', 'en-3', 'en-4')"
    members = f"SELECT member_id, markets, program_ids FROM members WHERE {ours}"
    with psycopg.connect(engine.dsn) as conn:
        assert conn.execute(members).fetchall() == [("en-1", ["CA"], [PROGRAM])]
    assert projected(engine, f"SELECT count(*) FROM member_enrolments_pending WHERE {ours}") == 0


async def test_a_member_token_enrols_and_reads_only_its_own_member_and_bad_input_is_400(engine):
    async with api() as http:
        other = await enrol(http, engine, "en-5", "k1", as_member="en-6")
        peek = await http.get("/v1/members/en-5/enrolment/k1", headers=bearer(engine, "en-6"))
        anonymous = await http.post(
            "/v1/members/en-5/enrolment",
            json={"market": "CA", "program_id": PROGRAM},
            headers={"Idempotency-Key": "k1"},
        )
        no_key = await http.post(
            "/v1/members/en-5/enrolment",
            json={"market": "CA", "program_id": PROGRAM},
            headers=bearer(engine, "en-5"),
        )
        bad_market = await enrol(http, engine, "en-5", "k2", market="ca")
        unknown_field = await http.post(
            "/v1/members/en-5/enrolment",
            json={"market": "CA", "program_id": PROGRAM, "points": 100},
            headers={**bearer(engine, "en-5"), "Idempotency-Key": "k3"},
        )
        bad_profile = await http.post(
            "/v1/members/en-5/enrolment",
            json={"market": "CA", "program_id": PROGRAM, "profile": {"email": "not an email"}},
            headers={**bearer(engine, "en-5"), "Idempotency-Key": "k4"},
        )
        unborn = await http.post(  # found by a user's trial: accepted, 201
            "/v1/members/en-5/enrolment",
            json={"market": "CA", "program_id": PROGRAM, "profile": {"birth_date": "2999-01-01"}},
            headers={**bearer(engine, "en-5"), "Idempotency-Key": "k5"},
        )
    assert (other.status_code, other.json()["error"]) == (403, "forbidden")
    assert peek.status_code == 403
    assert anonymous.status_code == 401
    for response in (no_key, bad_market, unknown_field, bad_profile, unborn):
        assert (response.status_code, response.json()["error"]) == (400, "invalid_parameter")
    assert unborn.json()["reason"] == "birth_date 2999-01-01 is in the future"
