"""Challenges over HTTP, end to end on the real stack (issue 15, docs/adr/0027-challenges.md):
the real worker counting purchases and steps, the real projector filling the challenge tables
of a database of this test's own, and the app `loyalty api` builds reading them.

Two members in a market with a 3-visit challenge and an onboarding series of steps: one
completes the visits, the other makes one visit; the member view shows progress, deadline and
the next step, the completion and, after a return below the goal, the points taken back; a
member token reads only its own view (403), no token is 401, a malformed id or locale 400, an
unknown member 404; staff read anyone's and the participation figures, a member may not."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from loyalty import stack
from loyalty.audit import uncommitted
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.base.settings import Settings, get_settings
from processors.contract.activities import ActivityKind
from processors.contract.common import Source
from processors.contract.enrolments import MembersMerged
from processors.contract.offer_definition import Behaviour, BehaviourKind
from projections.api.auth import Role
from tests.integration.test_rewards_api import api, bearer, projected
from tests.integration.test_worker_runtime import until
from tests.rules.given import T0, bought, enrolled, program, returned
from tests.rules.test_challenges import act, challenge

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(stack_settings, own_database_url, monkeypatch) -> Iterator[Settings]:
    """The stack under a topic prefix of this test's own, over a database of its own, and the
    environment `from_settings` and the child processes read pointed at both."""
    settings = stack_settings.model_copy(
        update={"topic_prefix": f"ch{uuid.uuid4().hex[:8]}.", "database_url": own_database_url}
    )
    stack.up(settings)
    monkeypatch.setenv("KAFKA_BOOTSTRAP", settings.bootstrap_servers)
    monkeypatch.setenv("DATABASE_URL", settings.dsn)
    monkeypatch.setenv("LOYALTY_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("LOYALTY_PARTITIONS", str(settings.partitions))
    monkeypatch.setenv("LOYALTY_API_DECISION_WAIT_MS", "60000")
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def visit(member: str, n: int):  # type: ignore[no-untyped-def]
    return bought(member, f"{member}-T{n}", cents=1000, at=T0 + timedelta(hours=n))


async def _count_is(engine, query: str, wanted: int) -> bool:
    return projected(engine, query) == wanted


async def test_the_member_view_the_bola_rules_and_the_participation_figures(engine, tmp_path):
    steps = Behaviour(kind=BehaviourKind.ACTIVITY, activity_kind=ActivityKind.CHALLENGE_STEP)
    config = [program(), challenge(), challenge("ONBOARD", steps, steps=["PROFILE", "APP"])]
    done, started = "ch-m1", "ch-m2"
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    try:
        await publish_events(engine, config)
        await publish_events(engine, [enrolled(done), enrolled(started)])

        async def enrolled_both() -> bool:  # topics are not ordered with each other
            return projected(engine, "SELECT count(*) FROM members") == 2

        assert await until(enrolled_both, 180), worker.log_tail() + projector.log_tail()
        await publish_events(engine, [*(visit(done, n) for n in (1, 2, 3)), visit(started, 1)])
        step = act(5, challenge_id="ONBOARD", step="PROFILE").model_copy(
            update={"member_id": started}
        )
        await publish_events(engine, [step])

        async def settled() -> bool:
            joined = "SELECT count(*) FROM member_challenges"
            completed = "SELECT count(*) FROM challenge_completions"
            return (
                await uncommitted(engine) == 0
                and projected(engine, joined) == 3
                and projected(engine, completed) == 1
            )

        counts = "SELECT (SELECT count(*) FROM member_challenges) || '/' || (SELECT count(*) FROM challenge_completions) || '/' || (SELECT count(*) FROM ledger_events) || '/' || (SELECT count(*) FROM challenges)"  # noqa: E501
        ok = await until(settled, 180)
        with psycopg.connect(engine.dsn) as conn:
            seen = conn.execute(counts).fetchone()
        assert ok, f"{seen} {await uncommitted(engine)}" + worker.log_tail() + projector.log_tail()

        # A third member merged into the first: their challenges are the survivor's now.
        await publish_events(engine, [enrolled("ch-m3")])
        assert await until(lambda: _count_is(engine, "SELECT count(*) FROM members", 3), 180)
        merge = MembersMerged(
            event_id="merge-ch-m3", occurred_at=T0 + timedelta(days=1), victim_member_id="ch-m3",
            survivor_member_id=done, source=Source.CALL_CENTER,
        )  # fmt: skip
        await publish_events(engine, [merge])
        merged_row = "SELECT count(*) FROM members WHERE status = 'MERGED'"
        assert await until(lambda: _count_is(engine, merged_row, 1), 180)

        async with api() as http:
            merged = await http.get(
                "/v1/members/ch-m3/challenges", headers=bearer(engine, "care", Role.STAFF)
            )
            mine = await http.get(
                f"/v1/members/{started}/challenges", headers=bearer(engine, started)
            )
            french = await http.get(
                f"/v1/members/{done}/challenges", params={"locale": "fr-CA"},
                headers=bearer(engine, done),
            )  # fmt: skip
            other = await http.get(
                f"/v1/members/{done}/challenges", headers=bearer(engine, started)
            )
            anonymous = await http.get(f"/v1/members/{done}/challenges")
            malformed = await http.get(
                "/v1/members/" + "x" * 200 + "/challenges", headers=bearer(engine, "x", Role.STAFF)
            )
            bad_locale = await http.get(
                f"/v1/members/{done}/challenges", params={"locale": "not a locale"},
                headers=bearer(engine, done),
            )  # fmt: skip
            unknown = await http.get(
                "/v1/members/ch-nobody/challenges", headers=bearer(engine, "care", Role.STAFF)
            )
            unknown_as_member = await http.get(
                "/v1/members/ch-nobody/challenges", headers=bearer(engine, started)
            )
            by_staff = await http.get(
                f"/v1/members/{started}/challenges", headers=bearer(engine, "care", Role.STAFF)
            )
            figures = await http.get(
                "/v1/challenges/participation", params={"market": "CA"},
                headers=bearer(engine, "analyst", Role.STAFF),
            )  # fmt: skip
            figures_as_member = await http.get(
                "/v1/challenges/participation", headers=bearer(engine, done)
            )
            bad_market = await http.get(
                "/v1/challenges/participation", params={"market": "ca"},
                headers=bearer(engine, "analyst", Role.STAFF),
            )  # fmt: skip

        # The visit that completed it comes back: the points are taken back, it stays completed.
        await publish_events(
            engine, [returned(done, f"{done}-T3", "R3", ("1", 1000), at=T0 + timedelta(days=1))]
        )
        back = f"SELECT count(*) FROM challenge_completions WHERE points_taken_back = 100 AND member_id = '{done}'"  # noqa: E501
        assert await until(lambda: _holds(engine, back), 120), projector.log_tail()
        async with api() as http:
            after_return = await http.get(
                f"/v1/members/{done}/challenges", headers=bearer(engine, done)
            )
    finally:
        services.stop()

    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert (body["member_id"], body["market"]) == (started, "CA")
    active = {c["challenge_id"]: c for c in body["active"]}
    visits = active["VISITS3"]
    assert (visits["progress"], visits["threshold"], visits["metric"]) == ("1", "3", "COUNT")
    assert visits["deadline"] is None  # no end
    assert visits["progress_expires_at"] == (T0 + timedelta(hours=1, days=30)).isoformat().replace(
        "+00:00", "Z"
    )
    assert visits["copy"]["locale"] == "en"
    onboarding = active["ONBOARD"]
    assert (onboarding["steps_done"], onboarding["next_step"]) == (1, "APP")
    assert body["completed"] == []

    assert french.status_code == 200
    completed = french.json()["completed"]
    assert [
        (c["challenge_id"], c["completion_number"], c["points_awarded"]) for c in completed
    ] == [("VISITS3", 1, 100)]
    assert completed[0]["copy"]["locale"] == "fr"
    # Completed as often as allowed: no longer active; the steps not started are.
    active_done = {c["challenge_id"]: c for c in french.json()["active"]}
    assert set(active_done) == {"ONBOARD"}
    assert active_done["ONBOARD"]["joined_at"] is None
    assert (active_done["ONBOARD"]["progress"], active_done["ONBOARD"]["next_step"]) == (
        "0",
        "PROFILE",
    )

    assert (other.status_code, other.json()["error"]) == (403, "forbidden")
    assert anonymous.status_code == 401
    assert malformed.status_code == 400
    assert bad_locale.status_code == 400
    assert unknown.status_code == 404
    assert (merged.status_code, merged.json()["error"]) == (409, "member_merged"), merged.text
    assert f"'{done}'" in merged.json()["reason"]
    assert unknown_as_member.status_code == 403  # never reveals whether the member exists
    assert by_staff.status_code == 200
    assert by_staff.json() == mine.json()

    assert figures.status_code == 200, figures.text
    rows = {r["challenge_id"]: r for r in figures.json()["challenges"]}
    assert (rows["VISITS3"]["members_joined"], rows["VISITS3"]["members_completed"]) == (2, 1)
    assert rows["VISITS3"]["completion_rate"] == "0.5000"
    assert (rows["ONBOARD"]["members_joined"], rows["ONBOARD"]["completion_rate"]) == (1, "0.0000")
    assert figures_as_member.status_code == 403
    assert bad_market.status_code == 400

    [kept] = after_return.json()["completed"]
    assert (kept["points_awarded"], kept["points_taken_back"]) == (100, 100)
    assert kept["taken_back_at"] is not None


async def _holds(engine: Settings, query: str) -> bool:
    return projected(engine, query) == 1
