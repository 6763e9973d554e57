"""Members' personalised feeds kept in each API process (`offer_feed.MemberFeeds`, ADR 25's
third addendum): an answer is served from memory until something it was built from is
notified (the member's rows, any offer), the listener is lost, or time alone changes it; the
memory it takes is bounded. With a fixed clock; the notifications from Postgres are checked on
the real stack (tests/integration/test_feed_notifications.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.offer_feed import (
    Answer,
    Fragments,
    Issued,
    MemberFeeds,
    Standing,
    _offer_json,
    offer_json,
    shows_as_untouched,
)
from projections.api.wakeups import Wakeups
from projections.writers.feed import FeedItem
from tests.feed_given import AT, FakeFeedStore, item, member, targeted, window

SECRET = "unit-test-secret-for-the-member-feeds-long-enough"
NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
TICK = timedelta(microseconds=1)
MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
ROWS: list[tuple[FeedItem, Standing | None]] = [(item("MASS_ONE"), None)]


def build(
    feeds: MemberFeeds,
    member_id: str = "M1",
    rows: list[tuple[FeedItem, Standing | None]] = ROWS,
    *,
    at: datetime = AT,
    asked: str | None = None,
    fragments: Fragments | None = None,
) -> Answer:
    """The member's answer at `at`, read and kept as the route does (`fragments`: the app's
    parts of offers, kept between answers; None: new ones)."""
    with feeds.reading(member_id) as reading:
        return feeds.answer(member(member_id), rows, asked, asked or "en", at,
                            fragments or Fragments(), reading=reading)  # fmt: skip


def test_an_answer_is_served_from_memory_until_its_member_is_notified():
    feeds = MemberFeeds()
    made = build(feeds)
    other = build(feeds, "M2")

    assert feeds.current("M1", None, AT + 5 * MINUTE) is made
    assert feeds.current("M1", "fr", AT) is None  # never built in French
    feeds.changed("member:M2")  # another member's rows
    assert feeds.current("M1", None, AT) is made
    assert feeds.current("M2", None, AT) is None
    feeds.changed("member:M1")
    assert feeds.current("M1", None, AT) is None
    assert other.etag != made.etag  # each member's own answer


@pytest.mark.parametrize("key", ["feed:CA", "feed:US", None])
def test_an_offer_notified_or_the_listener_lost_forgets_every_answer(key):
    feeds = MemberFeeds()
    for member_id in ("M1", "M2"):
        build(feeds, member_id)
        build(feeds, member_id, asked="fr")

    feeds.changed(key)  # an offer of any market: a member's programmes may be in any

    assert [feeds.current(m, asked, AT) for m in ("M1", "M2") for asked in (None, "fr")] == [
        None
    ] * 4
    assert (len(feeds), feeds.held_bytes) == (0, 0)


@pytest.mark.parametrize("key", ["member:M1", "feed:CA", None])
def test_an_answer_read_while_something_it_reads_was_notified_is_not_kept(key):
    feeds = MemberFeeds()
    with feeds.reading("M1") as reading:  # entered before the query ...
        feeds.changed(key)  # ... the projector commits while it runs ...
        made = feeds.answer(member("M1"), ROWS, None, "en", AT, Fragments(), reading=reading)
    assert b"MASS_ONE" in made.body  # ... the request is answered ...
    assert feeds.current("M1", None, AT) is None  # ... and the next one reads again


def test_another_members_notification_while_reading_keeps_the_answer():
    feeds = MemberFeeds()
    with feeds.reading("M1") as reading:
        feeds.changed("member:M2")
        made = feeds.answer(member("M1"), ROWS, None, "en", AT, Fragments(), reading=reading)
    assert feeds.current("M1", None, AT) is made


def test_answers_are_bounded_by_their_bytes_the_least_recently_used_first_out():
    size = len(build(MemberFeeds(), "M1").body)
    feeds = MemberFeeds(budget=3 * size + size // 2)  # room for three answers
    for member_id in ("M1", "M2", "M3"):
        build(feeds, member_id)
    assert feeds.current("M1", None, AT) is not None  # used: M2 is now the least recent

    build(feeds, "M4")

    held = [m for m in ("M1", "M2", "M3", "M4") if feeds.current(m, None, AT) is not None]
    assert held == ["M1", "M3", "M4"]
    assert feeds.held_bytes == 3 * size <= feeds.budget
    build(feeds, "M4")  # built again: replaces its answer, counted once
    assert feeds.held_bytes == 3 * size


def test_an_answer_larger_than_the_whole_budget_is_answered_not_kept():
    feeds = MemberFeeds(budget=10)
    made = build(feeds)
    assert b"MASS_ONE" in made.body
    assert (feeds.current("M1", None, AT), feeds.held_bytes) == (None, 0)


WELCOME = {"kind": "MASS", "timing": "TRIGGERED", "trigger_activity_kind": "APP_DOWNLOAD",
           "trigger_fires_per_member_max": 2, "trigger_valid_days": 7}  # fmt: skip
STORE = {"reward_store_id": "STORE", "points_cost": 500}


@pytest.mark.parametrize(
    ("rows", "changes_at"),
    [
        # an offer not displayed yet appears
        ([(item("SOON", schedule=window(DAY, 9 * DAY, display=20 * MINUTE)), None)],
         AT + 20 * MINUTE),
        # an offer goes live (is_live) after its display date
        ([(item("EARLY", schedule=window(30 * MINUTE, None, display=-MINUTE)), None)],
         AT + 30 * MINUTE),
        # an offer ends
        ([(item("ENDING", schedule=window(-DAY, 40 * MINUTE)), None)], AT + 40 * MINUTE),
        # days_left goes from 3 to 2
        ([(item("DAYS", schedule=window(-DAY, 2 * DAY + 25 * MINUTE)), None)],
         AT + 25 * MINUTE),
        # a triggered offer's fire lapses (7 days after it)
        ([(item("WELCOME", targeting=WELCOME), targeted(at=AT - 7 * DAY + 15 * MINUTE))],
         AT + 15 * MINUTE),
        # an instance's lock lapses: locked, then ready
        ([(item("BOUGHT", reward_store=STORE), Standing(issued=(Issued(
            "I-1", "LOCKED", "STORE", 500, AT - DAY, locked_until=AT + 10 * MINUTE),
        )))], AT + 10 * MINUTE),
    ],
    ids=["displayed", "live", "ended", "days_left", "fire_lapsed", "lock_lapsed"],
)  # fmt: skip
def test_an_answer_is_kept_until_the_first_moment_time_alone_changes_it(rows, changes_at):
    feeds = MemberFeeds()
    made = build(feeds, rows=rows)

    assert made.until == changes_at
    assert feeds.current("M1", None, changes_at - TICK) is made
    assert feeds.current("M1", None, changes_at) is None
    assert build(MemberFeeds(), rows=rows, at=changes_at - TICK).body == made.body
    assert build(MemberFeeds(), rows=rows, at=changes_at).body != made.body  # it did change


@pytest.mark.parametrize("changes_in", [20 * MINUTE, 25 * MINUTE, 40 * MINUTE])
def test_the_mass_offers_shared_by_members_are_built_again_when_time_alone_changes_them(
    changes_in,
):
    # Displayed, live or ended, a days_left ticking: the part every member without a standing
    # shares (`Fragments.mass`) is not reused past that moment.
    rows = [(item("SOON", schedule=window(DAY, 9 * DAY, display=20 * MINUTE)), None),
            (item("DAYS", schedule=window(-DAY, 2 * DAY + 25 * MINUTE)), None),
            (item("ENDING", schedule=window(-DAY, 40 * MINUTE)), None)]  # fmt: skip
    fragments = Fragments()
    before = build(MemberFeeds(), "M1", rows, at=AT + changes_in - TICK, fragments=fragments)
    after = build(MemberFeeds(), "M2", rows, at=AT + changes_in, fragments=fragments)
    fresh = build(MemberFeeds(), "M2", rows, at=AT + changes_in)

    assert after.body == fresh.body
    assert after.body.replace(b"M2", b"M1") != before.body


def test_an_answer_is_not_served_to_a_clock_before_it_was_built():
    feeds = MemberFeeds()
    build(feeds)
    assert feeds.current("M1", None, AT - TICK) is None
    assert build(feeds).until == AT + MemberFeeds.HELD_AT_MOST  # nothing changes by time


# --- through the route ---------------------------------------------------------------------


@pytest.fixture
def store() -> FakeFeedStore:
    return FakeFeedStore(items=[item("MASS_ONE", rank=2)], members={"M1": member("M1")})


@pytest.fixture
def listening(store) -> Iterator[tuple[TestClient, MemberFeeds]]:
    """The app with a listener that is up (notifications are told to it by hand)."""
    app = create_app(dsn=NO_DATABASE, api_secret=SECRET, clock=lambda: AT, feed_store=store)
    with TestClient(app) as running:
        app.state.wakeups = Wakeups(None, poll=60.0)
        app.state.wakeups.listening = True
        yield running, app.state.member_feeds


def bearer(subject: str = "M1", role: Role = Role.MEMBER) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, subject, role, now=datetime.now(UTC))}"}


def answered(where: str) -> float:
    return REGISTRY.get_sample_value("loyalty_api_member_feeds_total", {"answer": where}) or 0.0


def test_the_route_answers_from_memory_until_the_member_is_notified(store, listening):
    client, feeds = listening
    kept, read = answered("kept"), answered("read")
    first = client.get("/v1/members/M1/offers", headers=bearer())
    store.standings[("M1", "MASS_ONE")] = targeted(loaded_at=AT)  # not notified (yet)

    again = client.get("/v1/members/M1/offers", headers=bearer())
    held = {**bearer(), "If-None-Match": first.headers["ETag"]}
    revalidated = client.get("/v1/members/M1/offers", headers=held)
    feeds.changed("member:M1")  # the projector's commit, told by the listener
    changed = client.get("/v1/members/M1/offers", headers=bearer())

    assert (first.status_code, again.status_code, revalidated.status_code) == (200, 200, 304)
    assert again.content == first.content
    assert (again.headers["ETag"], revalidated.headers["ETag"]) == (first.headers["ETag"],) * 2
    assert revalidated.headers["Cache-Control"] == "private, no-cache"
    assert changed.json()["offers"][0]["activation"]["loaded_at"] == "2026-03-02T10:00:00Z"
    assert changed.headers["ETag"] != first.headers["ETag"]
    assert (answered("kept") - kept, answered("read") - read) == (2, 2)


def test_the_route_keeps_nothing_while_no_listener_follows_the_changes(store, listening):
    client, feeds = listening
    client.app.state.wakeups.listening = False  # type: ignore[attr-defined]
    first = client.get("/v1/members/M1/offers", headers=bearer())
    store.standings[("M1", "MASS_ONE")] = targeted(loaded_at=AT)
    again = client.get("/v1/members/M1/offers", headers=bearer())

    assert len(feeds) == 0
    assert again.headers["ETag"] != first.headers["ETag"]


def test_the_route_keeps_neither_an_unknown_nor_a_merged_member(store, listening):
    client, feeds = listening
    store.members["GONE"] = member("GONE", status="MERGED", merged_into="M1")
    assert client.get("/v1/members/NOBODY/offers", headers=bearer("NOBODY")).status_code == 404
    assert client.get("/v1/members/GONE/offers", headers=bearer("GONE")).status_code == 409
    assert len(feeds) == 0


TRIGGERED = {"kind": "MASS", "timing": "TRIGGERED", "trigger_activity_kind": "LOGIN",
             "trigger_fires_per_member_max": 3, "trigger_valid_days": 14}  # fmt: skip
PROGRESS = [{"behaviour_index": 0, "progress": "1200"}]
ACCUMULATED = [{"kind": "SPEND", "spend_min_cents": 5000, "accumulation": "ACCUMULATED"}]


@pytest.mark.parametrize(
    ("standing", "definition", "blank"),
    [
        (targeted(), None, True),
        (Standing(in_control_group=False), None, True),
        (targeted(progress=PROGRESS, progress_use_number=1, uses=1), None, False),
        (targeted(progress=PROGRESS, progress_use_number=2, uses=1), None, False),
        (targeted(progress=PROGRESS, progress_use_number=1), None, False),
        (targeted(loaded_at=AT - DAY), None, False),
        (targeted(points_awarded=100), None, False),
        (Standing(issued=(Issued("I-1", "ISSUED"),)), {"reward_store": STORE}, False),
        (targeted(), {"targeting": TRIGGERED}, False),
    ],
    ids=["targeted", "blank", "used-progress-done", "used-then-progress", "progress", "loaded",
         "earned", "bought", "triggered"],
)  # fmt: skip
def test_a_standing_is_shown_as_none_only_when_the_offer_would_show_nothing_of_it(
    standing, definition, blank
):
    # The shortcut (`shows_as_untouched`: the kept JSON of an offer without a standing) must
    # give the very bytes the standing would: compared with the JSON built from it.
    shown = item("OFFER", behaviours=ACCUMULATED, **(definition or {}))
    fragments = Fragments()

    assert shows_as_untouched(shown, standing) is blank
    built = _offer_json(shown, AT, "en", standing, True, fragments)
    assert offer_json(shown, AT, "en", standing, personal=True, fragments=fragments) == built
    untouched = offer_json(shown, AT, "en", None, personal=True, fragments=fragments)
    assert (built == untouched) is blank


def test_members_sharing_the_mass_offers_are_each_kept_as_long_as_their_own_answer_stays():
    # The shared part is built once, but a member answered later keeps their answer for as
    # long as one built for them alone would be kept (found in review: it was cut at the
    # shared part's first hour).
    fragments, later = Fragments(), AT + 59 * MINUTE
    build(MemberFeeds(), "M1", ROWS, fragments=fragments)
    shared = build(MemberFeeds(), "M2", ROWS, at=later, fragments=fragments)
    alone = build(MemberFeeds(), "M2", ROWS, at=later)

    assert shared.body == alone.body
    assert shared.until == alone.until == later + MemberFeeds.HELD_AT_MOST


def test_the_mass_offers_are_kept_once_per_copy_shown_whatever_the_tag_asked_for():
    # A client's tags are many; what they show is English or French (found in review: each
    # new tag kept another copy of every mass offer's JSON).
    fragments, items = Fragments(), [item("MASS_ONE"), item("MASS_TWO")]

    french = fragments.mass(items, AT, "fr")
    assert fragments.mass(items, AT, "fr-CA") is french
    assert fragments.mass(items, AT, "FR") is french
    english = fragments.mass(items, AT, "de-AT")  # no German copy: English
    assert english is fragments.mass(items, AT, "en") is not french
