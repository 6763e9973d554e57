"""Communication preferences and the inbox through the HTTP API, end to end on the real stack
(issue #15, ADR 28): the app as `loyalty api` builds it, the real worker deciding preference
changes, the real projector writing preferences, their audit trail and the inbox.

A member sets the channels their market offers (200; the same key 409; SMS, not offered,
422), staff change one with a reason; the audit trail, for staff only, names who did what.
The CRM posts a global and personal messages (a link off the allow-list is 422); a member
reads their inbox newest first, page by page, marks one read, and stops seeing campaign
messages once opted out of IN_APP; an anonymous visitor sees the market's global messages.
Member tokens read and change only their own member; bad input is 400."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from loyalty.producing import publish_events
from loyalty.services import Services
from processors.base.settings import Settings
from processors.contract.notifications import ContactChannel
from projections.api.auth import Role
from tests.integration.test_rewards_api import api, bearer, engine, projected
from tests.integration.test_worker_runtime import until
from tests.rules.given import enrolled, program

pytestmark = pytest.mark.integration

__all__ = ["engine"]  # the fixture, shared with the rewards API's tests

CHANNELS = [ContactChannel.EMAIL, ContactChannel.PUSH, ContactChannel.IN_APP]


def count_is(settings: Settings, query: str, wanted: int) -> Callable[[], Awaitable[bool]]:
    """A predicate for `until`: the query counts `wanted` rows."""

    async def holds() -> bool:
        return projected(settings, query) == wanted

    return holds


def staff(settings: Settings) -> dict[str, str]:
    return bearer(settings, "care-7", Role.STAFF)


async def put(
    http: httpx.AsyncClient, settings: Settings, member: str, key: str, channels: dict[str, Any],
    *, headers: dict[str, str] | None = None, **body: Any,
) -> httpx.Response:  # fmt: skip
    return await http.put(
        f"/v1/members/{member}/preferences",
        json={"channels": channels, **body},
        headers={**(headers or bearer(settings, member)), "Idempotency-Key": key},
    )


async def post(
    http: httpx.AsyncClient, settings: Settings, key: str, **message: Any
) -> httpx.Response:
    return await http.post(
        "/v1/inbox/messages",
        json={"title": "Hello", "body": "A message", **message},
        headers={**staff(settings), "Idempotency-Key": key},
    )


async def posted(settings: Settings, event_id: str) -> int:
    """How many records of the notifications topic carry `event_id` (read to its end)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from processors.base.topics import NOTIFICATIONS
    from processors.codec.avro import AvroCodec

    topic = settings.topic(NOTIFICATIONS.name)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        assert partitions, f"no partitions of {topic}"
        ends = await consumer.end_offsets(partitions)
        codec, found, read = AvroCodec.with_history(), 0, 0
        deadline = asyncio.get_running_loop().time() + 30
        while read < sum(ends.values()):  # no transactions here: offsets are counts
            assert asyncio.get_running_loop().time() < deadline, "the topic was not read"
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                read += len(records)
                found += sum(codec.decode(r.value).event_id == event_id for r in records)
        return found
    finally:
        await consumer.stop()


async def test_preferences_their_audit_trail_and_the_inbox(engine, tmp_path):
    services = Services(engine, tmp_path)
    worker = services.start("worker", "worker")
    projector = services.start("projector", "project")
    try:
        await publish_events(
            engine, [program(contact_channels=CHANNELS), enrolled("pm-1"), enrolled("pm-2")]
        )
        members_in = "SELECT count(DISTINCT member_id) FROM member_balances"  # accounts open
        assert await until(count_is(engine, members_in, 2), 180), (
            worker.log_tail() + projector.log_tail()
        )
        async with api() as http:
            # The channels come from the programmes the API's config feed has read: 503 until then.
            async def configured() -> bool:
                got = await http.get("/v1/members/pm-1/preferences", headers=bearer(engine, "pm-1"))
                return got.status_code != 503

            assert await until(configured, 60)
            before = await http.get("/v1/members/pm-1/preferences", headers=bearer(engine, "pm-1"))
            first = await put(http, engine, "pm-1", "p1", {"EMAIL": True, "PUSH": False})
            repeat = await put(http, engine, "pm-1", "p1", {"EMAIL": True, "PUSH": False})
            sms = await put(http, engine, "pm-1", "p2", {"SMS": True})
            by_staff = await put(http, engine, "pm-1", "p3", {"EMAIL": False},
                                 headers=staff(engine), reason="asked by phone")  # fmt: skip
            trail = "SELECT count(*) FROM member_preference_changes WHERE member_id = 'pm-1'"
            assert await until(count_is(engine, trail, 3), 60)
            after = await http.get("/v1/members/pm-1/preferences", headers=bearer(engine, "pm-1"))
            audit = await http.get("/v1/members/pm-1/preferences/audit", headers=staff(engine))
            audit_page = await http.get(
                "/v1/members/pm-1/preferences/audit", params={"limit": 2}, headers=staff(engine)
            )
            audit_rest = await http.get(
                "/v1/members/pm-1/preferences/audit",
                params={"limit": 2, "cursor": audit_page.json()["next_cursor"]},
                headers=staff(engine),
            )
            own_audit = await http.get(
                "/v1/members/pm-1/preferences/audit", headers=bearer(engine, "pm-1")
            )

            # The inbox: a campaign's global message, then a personal one for each member.
            global_ = await post(http, engine, "i1", market="CA", campaign_id="WINTER",
                                 deep_link_url="loyalty://offers/DOUBLE_WEEKEND")  # fmt: skip
            mine = await post(http, engine, "i2", member_id="pm-1",
                              deep_link_url="https://www.example.com/rewards")  # fmt: skip
            theirs = await post(http, engine, "i3", member_id="pm-2")
            # The same key again: the same message, nothing written; with another body: 422.
            theirs_again = await post(http, engine, "i3", member_id="pm-2")
            theirs_changed = await post(http, engine, "i3", member_id="pm-2", title="Other")
            bad_link = await post(http, engine, "i4", market="CA",
                                  deep_link_url="https://evil.example.net/win")  # fmt: skip
            bad_scheme = await post(http, engine, "i5", market="CA",
                                    deep_link_url="javascript://offers/alert(1)")  # fmt: skip
            messages = "SELECT count(*) FROM inbox_messages"
            assert await until(count_is(engine, messages, 3), 60)
            inbox = await http.get("/v1/members/pm-1/inbox", headers=bearer(engine, "pm-1"))
            page = await http.get(
                "/v1/members/pm-1/inbox", params={"limit": 1}, headers=bearer(engine, "pm-1")
            )
            rest = await http.get(
                "/v1/members/pm-1/inbox",
                params={"limit": 1, "cursor": page.json()["next_cursor"]},
                headers=bearer(engine, "pm-1"),
            )
            global_id = global_.json()["message_id"]
            read = await http.put(
                f"/v1/members/pm-1/inbox/{global_id}/read", headers=bearer(engine, "pm-1")
            )
            read_again = await http.put(
                f"/v1/members/pm-1/inbox/{global_id}/read", headers=bearer(engine, "pm-1")
            )
            not_hers = await http.put(
                f"/v1/members/pm-2/inbox/{mine.json()['message_id']}/read",
                headers=bearer(engine, "pm-2"),
            )
            after_read = await http.get("/v1/members/pm-1/inbox", headers=bearer(engine, "pm-1"))
            visitor = await http.get("/v1/inbox", params={"market": "CA"})
            opt_out = await put(http, engine, "pm-1", "p4", {"IN_APP": False})
            in_app = "SELECT count(*) FROM member_preferences WHERE channel = 'IN_APP'"
            assert await until(count_is(engine, in_app, 1), 60)
            opted_out = await http.get("/v1/members/pm-1/inbox", headers=bearer(engine, "pm-1"))
    finally:
        services.stop()
    written_for_i3 = await posted(engine, theirs.json()["event_id"])

    assert before.status_code == 200, before.text
    assert [c["opted_in"] for c in before.json()["channels"]] == [None, None, None]
    assert first.status_code == 200, first.text
    assert (first.json()["status"], first.json()["changed_by"]) == ("accepted", "MEMBER")
    assert (repeat.status_code, repeat.json()) == (409, first.json())
    assert (sms.status_code, sms.json()["error"]) == (422, "channel_not_offered")
    assert by_staff.status_code == 200, by_staff.text
    assert by_staff.json()["changed_by_id"] == "care-7"
    assert {c["channel"]: c["opted_in"] for c in after.json()["channels"]} == {
        "EMAIL": False, "PUSH": False, "IN_APP": None,
    }  # fmt: skip
    entries = [(e["channel"], e["was_opted_in"], e["opted_in"], e["changed_by"])
               for e in audit.json()["changes"]]  # fmt: skip
    assert entries[0] == ("EMAIL", True, False, "STAFF")
    assert sorted(entries[1:]) == [("EMAIL", None, True, "MEMBER"), ("PUSH", None, False, "MEMBER")]
    assert audit.json()["changes"][0]["reason"] == "asked by phone"
    assert audit_page.json()["changes"] + audit_rest.json()["changes"] == audit.json()["changes"]
    assert audit_rest.json()["next_cursor"] is None
    assert own_audit.status_code == 403

    assert [r.status_code for r in (global_, mine, theirs)] == [202] * 3
    assert (theirs_again.status_code, theirs_again.json()) == (409, theirs.json())
    assert (theirs_changed.status_code, theirs_changed.json()["error"]) == (
        422, "idempotency_key_reused"
    )  # fmt: skip
    assert written_for_i3 == 1, "one key wrote one MessagePosted"
    assert (bad_link.status_code, bad_link.json()["error"]) == (422, "deep_link_not_allowed")
    assert (bad_scheme.status_code, bad_scheme.json()["error"]) == (422, "deep_link_not_allowed")
    listed = inbox.json()
    assert [m["message_id"] for m in listed["messages"]] == [
        mine.json()["message_id"], global_id,
    ]  # newest first  # fmt: skip
    assert [m["kind"] for m in listed["messages"]] == ["personal", "global"]
    assert listed["unread"] == 2
    assert page.json()["messages"] + rest.json()["messages"] == listed["messages"]
    assert rest.json()["next_cursor"] is None
    assert (read.status_code, read_again.status_code, not_hers.status_code) == (204, 204, 404)
    assert after_read.json()["unread"] == 1
    assert [m["read"] for m in after_read.json()["messages"]] == [False, True]
    assert [m["message_id"] for m in visitor.json()["messages"]] == [global_id]
    assert visitor.json()["messages"][0]["read"] is None
    assert opt_out.status_code == 200, opt_out.text
    # Opted out of IN_APP: the campaign's message is gone, the personal one stays.
    assert [m["message_id"] for m in opted_out.json()["messages"]] == [mine.json()["message_id"]]


async def test_member_tokens_reach_only_their_own_member_and_bad_input_is_400(engine):
    import psycopg

    # A member merged away, as the projection shows one (found by a user's trial: a message
    # to them was 202 into an inbox left behind).
    with psycopg.connect(engine.dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO members (member_id, market, enrolled_at, status, merged_into,"
            " updated_at, markets) VALUES ('pm-gone', 'CA', now(), 'MERGED', 'pm-1', now(),"
            " '{CA}')"
        )
        conn.execute(
            "INSERT INTO member_balances (member_id, program_id, category, balance, sequence)"
            " VALUES ('pm-gone', 'CA_MAIN', 'REGULAR', 0, 2)"
        )
    async with api() as http:
        other_read = await http.get("/v1/members/pm-1/preferences", headers=bearer(engine, "x"))
        other_put = await put(http, engine, "pm-1", "k1", {"EMAIL": True},
                              headers=bearer(engine, "x"))  # fmt: skip
        other_inbox = await http.get("/v1/members/pm-1/inbox", headers=bearer(engine, "x"))
        other_read_mark = await http.put(
            "/v1/members/pm-1/inbox/MSG-1/read", headers=bearer(engine, "x")
        )
        anonymous = await http.get("/v1/members/pm-1/inbox")
        member_posts = await http.post(
            "/v1/inbox/messages",
            json={"market": "CA", "title": "t", "body": "b"},
            headers={**bearer(engine, "pm-1"), "Idempotency-Key": "m1"},
        )
        no_key = await http.put(
            "/v1/members/pm-1/preferences", json={"channels": {"EMAIL": True}},
            headers=bearer(engine, "pm-1"),
        )  # fmt: skip
        fax = await put(http, engine, "pm-1", "k2", {"FAX": True})
        empty = await put(http, engine, "pm-1", "k3", {})
        not_bool = await put(http, engine, "pm-1", "k4", {"EMAIL": "maybe"})
        both = await post(http, engine, "m2", market="CA", member_id="pm-1")
        neither = await post(http, engine, "m3")
        no_market = await http.get("/v1/inbox")
        bad_market = await http.get("/v1/inbox", params={"market": "c a"})
        bad_cursor = await http.get("/v1/inbox", params={"market": "CA", "cursor": "not-a-cursor"})
        # Found by trying it as a user: "yes" was an opt-in, a message to nobody was 202 and
        # nobody's audit trail an empty 200.
        yes = await put(http, engine, "pm-1", "k5", {"EMAIL": "yes"})
        to_nobody = await post(http, engine, "m4", member_id="pm-nobody")
        to_the_merged = await post(http, engine, "m5", member_id="pm-gone")
        nobodys_trail = await http.get(
            "/v1/members/pm-nobody/preferences/audit", headers=staff(engine)
        )
    for response in (other_read, other_put, other_inbox, other_read_mark, member_posts):
        assert response.status_code == 403, response.text
    assert anonymous.status_code == 401
    for response in (no_key, fax, empty, not_bool, both, neither, no_market, bad_market,
                     bad_cursor, yes):  # fmt: skip
        assert response.status_code == 400, response.text
    for response in (to_nobody, nobodys_trail):
        assert (response.status_code, response.json()["error"]) == (404, "not_found"), response.text
    assert (to_the_merged.status_code, to_the_merged.json()["error"]) == (422, "member_merged")
    assert "'pm-1'" in to_the_merged.json()["reason"]
