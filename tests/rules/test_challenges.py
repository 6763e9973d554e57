"""Challenges (issue 15, docs/adr/0027-challenges.md): progress from purchases and activities,
completion with its award once, returns taking progress back and, after a completion, its
points; steps in order; the rolling window; through the same rules the worker runs."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from processors.codec.json_form import from_json_object
from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.base import Event
from processors.contract.common import Source
from processors.contract.config import ChallengePublished
from processors.contract.ledger import EntryKind, LedgerEventRecorded, LedgerEventType
from processors.contract.offer_definition import Accumulation, Behaviour, BehaviourKind
from processors.contract.offers import (
    ChallengeAwardTakenBack,
    ChallengeCompleted,
    ChallengeProgressed,
)
from processors.contract.rewards import RewardGranted, RewardGrantReason
from processors.rules.member import dump_state, load_state
from processors.simulation import Simulation
from tests.rules.given import PROGRAM, T0, bought, day, enrolled, line, program, returned
from tests.rules.test_rewards import reward


def challenge(challenge_id: str = "VISITS3", goal: Behaviour | None = None, **changes: Any):  # type: ignore[no-untyped-def]
    with open("schemas/examples/ChallengePublished.json") as example:
        fields = json.load(example)
    fields |= {
        "event_id": f"cfg-{challenge_id}",
        "occurred_at": "2026-01-01T00:00:00Z",
        "challenge_id": challenge_id,
        "program_id": PROGRAM,
        "starts_at": "2026-01-01T00:00:00Z",
        "completions_per_member_max": 1,
        "award_points": 100,
    }
    published = from_json_object(fields)
    changes["goal"] = goal or Behaviour(kind=BehaviourKind.VISITS, count_min=3, window_days=30)
    return ChallengePublished.model_validate({**published.model_dump(), **changes})


def engine(*configs: Event) -> Simulation:
    sim = Simulation()
    sim.run([program(), *configs])
    sim.feed(enrolled("m1"))
    return sim


def act(
    n: int, kind: ActivityKind = ActivityKind.CHALLENGE_STEP, **fields: Any
) -> ActivityRecorded:
    return ActivityRecorded(
        event_id=f"act-{n}", occurred_at=T0 + timedelta(hours=n), member_id="m1", kind=kind,
        source=Source.APP, **fields,
    )  # fmt: skip


def progress(out: list[Event]) -> list[Decimal]:
    return [e.progress for e in out if isinstance(e, ChallengeProgressed)]


def completed(out: list[Event]) -> list[ChallengeCompleted]:
    return [e for e in out if isinstance(e, ChallengeCompleted)]


def awards(out: list[Event]) -> list[int]:
    return [
        e.points_on_event
        for e in out
        if isinstance(e, LedgerEventRecorded) and e.event_type is LedgerEventType.CHALLENGE_AWARD
    ]


def visit(n: int, cents: int = 1000, days: int = 0) -> Any:
    return bought("m1", f"t{n}", cents=cents, at=T0 + timedelta(days=days, hours=n))


def test_three_visits_complete_the_challenge_and_award_its_points_once():
    sim = engine(challenge())
    assert progress(sim.feed(visit(1))) == [1]
    assert progress(sim.feed(visit(2))) == [2]
    out = sim.feed(visit(3))
    (done,) = completed(out)
    assert (done.completion_number, done.points_awarded, done.program_id) == (1, 100, PROGRAM)
    assert awards(out) == [100]
    again = sim.feed(visit(3))  # redelivered
    assert completed(again) == []
    assert awards(again) == []
    assert completed(sim.feed(visit(4))) == []  # completed once: counts nothing more


def test_a_redelivered_purchase_counts_once():
    sim = engine(challenge())
    sim.feed(visit(1))
    again = sim.feed(visit(1))
    assert progress(again) == []
    assert awards(again) == []
    assert progress(sim.feed(visit(2))) == [2]


def test_visits_older_than_the_rolling_window_stop_counting():
    sim = engine(challenge())
    sim.feed(visit(1))
    sim.feed(visit(2, days=10))
    out = sim.feed(visit(3, days=35))  # the first visit is 35 days old
    assert progress(out) == [2]
    assert completed(out) == []


def test_the_day_start_drops_progress_that_left_the_window():
    sim = engine(challenge())
    sim.feed(visit(1))
    aged = sim.feed(day(date(2026, 4, 5)))
    assert progress(aged) == [0]


def test_a_return_before_completion_takes_progress_back():
    spend = Behaviour(kind=BehaviourKind.SPEND, spend_min_cents=5000,
                      accumulation=Accumulation.ACCUMULATED)  # fmt: skip
    sim = engine(challenge("SPEND50", spend))
    sim.feed(bought("m1", "t1", line("a", 2000), line("b", 1500)))
    out = sim.feed(returned("m1", "t1", "r1", ("b", 1500)))
    assert progress(out) == [Decimal(2000)]
    assert progress(sim.feed(returned("m1", "t1", "r1", ("b", 1500)))) == []  # redelivered
    out = sim.feed(bought("m1", "t2", line("c", 3000), at=T0 + timedelta(hours=1)))
    assert [c.completion_number for c in completed(out)] == [1]


def test_a_return_below_the_goal_after_completion_takes_the_points_back_once():
    sim = engine(challenge())
    for n in (1, 2, 3):
        sim.feed(visit(n))
    out = sim.feed(returned("m1", "t3", "r3", ("1", 1000), at=T0 + timedelta(days=2)))
    (taken,) = [e for e in out if isinstance(e, ChallengeAwardTakenBack)]
    assert (taken.points_taken_back, taken.completion_number) == (100, 1)
    (booked,) = [e for e in out if isinstance(e, LedgerEventRecorded)]
    assert booked.event_type is LedgerEventType.TRANSACTION_RETURN
    back = [e.points for e in booked.entries if e.kind is EntryKind.RETURN and e.offer_id is None]
    assert 100 in back
    again = sim.feed(returned("m1", "t2", "r2", ("1", 1000), at=T0 + timedelta(days=2)))
    assert not [e for e in again if isinstance(e, ChallengeAwardTakenBack)]  # once
    assert completed(sim.feed(visit(9))) == []  # never re-opened


def test_a_partial_return_that_still_meets_the_goal_takes_nothing_back():
    spend = Behaviour(kind=BehaviourKind.SPEND, spend_min_cents=5000,
                      accumulation=Accumulation.ACCUMULATED)  # fmt: skip
    sim = engine(challenge("SPEND50", spend))
    sim.feed(bought("m1", "t1", line("a", 4000), line("b", 2000)))
    out = sim.feed(returned("m1", "t1", "r1", ("b", 1000)))
    assert not [e for e in out if isinstance(e, ChallengeAwardTakenBack)]


def test_steps_count_only_in_order():
    steps = Behaviour(kind=BehaviourKind.ACTIVITY, activity_kind=ActivityKind.CHALLENGE_STEP)
    sim = engine(challenge("ONBOARD", steps, steps=["PROFILE", "APP", "FIRST_BUY"]))
    assert progress(sim.feed(act(1, challenge_id="ONBOARD", step="APP"))) == []
    assert progress(sim.feed(act(2, challenge_id="ONBOARD", step="PROFILE"))) == [1]
    assert progress(sim.feed(act(3, challenge_id="ONBOARD", step="APP"))) == [2]
    out = sim.feed(act(4, challenge_id="ONBOARD", step="FIRST_BUY"))
    assert [c.completion_number for c in completed(out)] == [1]
    assert awards(out) == [100]


def test_a_custom_activity_counted_up_to_its_count_completes_and_repeats():
    custom = Behaviour(kind=BehaviourKind.ACTIVITY, activity_kind=ActivityKind.CUSTOM,
                       activity_custom_name="REVIEW", count_min=2)  # fmt: skip
    sim = engine(challenge("REVIEWS", custom, completions_per_member_max=2))
    done = []
    for n in range(1, 7):
        done += completed(sim.feed(act(n, ActivityKind.CUSTOM, custom_name="REVIEW")))
    assert [c.completion_number for c in done] == [1, 2]


def test_a_reward_challenge_grants_the_reward_named_in_its_completion():
    free = {"points_cost": None, "uses_code_stock": False}
    sim = engine(reward("CAKE", **free), challenge(award_points=None, award_reward_id="CAKE"))
    for n in (1, 2):
        sim.feed(visit(n))
    out = sim.feed(visit(3))
    (done,) = completed(out)
    (granted,) = [e for e in out if isinstance(e, RewardGranted)]
    assert granted.reason is RewardGrantReason.CHALLENGE
    assert granted.challenge_id == "VISITS3"
    assert (done.reward_id, done.granted_reward_id) == ("CAKE", granted.granted_reward_id)
    assert awards(out) == []


def test_a_member_of_another_programme_makes_no_progress():
    sim = engine(challenge(program_id="OTHER"))
    assert progress(sim.feed(visit(1))) == []


def journey() -> list[Event]:
    """Visits that complete, a return that takes the points back, steps, a day's start."""
    return [
        visit(1), visit(2), act(3, challenge_id="ONBOARD", step="PROFILE"), visit(4),
        returned("m1", "t4", "r4", ("1", 1000), at=T0 + timedelta(days=1)),
        act(30, challenge_id="ONBOARD", step="APP"), day(date(2026, 4, 20)),
    ]  # fmt: skip


def journeyed(redeliver: bool = False, reload: bool = False) -> list[str]:
    steps = Behaviour(kind=BehaviourKind.ACTIVITY, activity_kind=ActivityKind.CHALLENGE_STEP)
    sim = engine(challenge(), challenge("ONBOARD", steps, steps=["PROFILE", "APP"]))
    out: list[Event] = []
    for event in journey():
        out += sim.feed(event)
        if redeliver:  # the broker delivers it again
            out += sim.feed(event)
        if reload:  # the worker restarts from its saved state
            sim.members["m1"] = load_state("m1", dump_state(sim.members["m1"]))
    return [e.model_dump_json() for e in out]


def test_a_replay_a_redelivery_and_a_restart_give_the_same_events():
    once = journeyed()
    assert journeyed() == once  # replay from the start: the same ids, the same events
    assert journeyed(reload=True) == once  # the state survives being saved and loaded
    # Each input again: nothing new; a request's answer (the return's) is given again as it was.
    assert list(dict.fromkeys(journeyed(redeliver=True))) == once
    done = [json.loads(e)["challenge_id"] for e in once if '"granted_reward_id"' in e]
    assert done == ["VISITS3", "ONBOARD"]
    assert sum('"points_taken_back"' in e for e in once) == 1
