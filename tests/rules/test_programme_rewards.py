"""Rewards the programme gives (issue #15 on the rewards core, ADR 20): a sign-up reward once
per programme joined, a birthday reward once a year from the member's market's daily run
(29 February: the 28th in other years), each announced in the member's inbox in their
language; switched off by leaving the programme's reward id empty."""

from __future__ import annotations

from datetime import date
from typing import Any

from processors.contract.enrolments import MemberProfile
from processors.contract.notifications import MessagePosted
from processors.contract.rewards import RewardGranted, RewardGrantReason
from processors.simulation import Simulation
from tests.rules.given import day, enrolled, program
from tests.rules.test_rewards import codes, reward


def engine(*configs: Any, **programme: Any) -> Simulation:
    sim = Simulation()
    free = {"points_cost": None, "uses_code_stock": True}
    stock = [codes("WELCOME", "W-1", "W-2"), codes("CAKE", "C-1", "C-2", "C-3")]
    sim.run([program(**programme), reward("WELCOME", **free), reward("CAKE", **free), *stock,
             *configs])  # fmt: skip
    return sim


def joined(member: str, born: date | None = None, locale: str | None = None):  # type: ignore[no-untyped-def]
    profile = MemberProfile(first_name=member, birth_date=born, preferred_locale=locale)
    return enrolled(member).model_copy(update={"profile": profile})


def grants(out: list) -> list[tuple[str, str, str | None]]:  # type: ignore[type-arg]
    return [(g.reason.value, g.reward_id, g.code) for g in out if isinstance(g, RewardGranted)]


def test_a_sign_up_reward_is_granted_once_and_announced_in_the_members_language():
    sim = engine(enrolment_reward_id="WELCOME")
    out = sim.feed(joined("m1", locale="fr-CA"))
    assert grants(out) == [(RewardGrantReason.ENROLMENT.value, "WELCOME", "W-1")]
    (message,) = [m for m in out if isinstance(m, MessagePosted)]
    assert (message.locale, message.title) == ("fr", "Un muffin gratuit")
    again = sim.feed(joined("m1", locale="fr-CA"))  # redelivered: its answer again, no grant
    assert [type(e).__name__ for e in again] == ["RequestAccepted"]


def test_without_a_sign_up_reward_configured_nothing_is_granted():
    sim = engine()
    assert grants(sim.feed(joined("m1"))) == []


def test_a_birthday_reward_is_granted_on_the_day_once_a_year():
    sim = engine(birthday_reward_id="CAKE")
    sim.feed(joined("m1", born=date(1990, 3, 5)))
    assert grants(sim.feed(day(date(2026, 3, 4)))) == []
    on_the_day = sim.feed(day(date(2026, 3, 5)))
    assert grants(on_the_day) == [(RewardGrantReason.BIRTHDAY.value, "CAKE", "C-1")]
    assert [m.title for m in on_the_day if isinstance(m, MessagePosted)] == ["A free muffin"]
    assert grants(sim.feed(day(date(2026, 3, 5), ran_at=None))) == []  # the run again
    assert grants(sim.feed(day(date(2027, 3, 5)))) == [("BIRTHDAY", "CAKE", "C-2")]


def test_born_on_29_february_the_reward_comes_on_the_28th_in_other_years():
    sim = engine(birthday_reward_id="CAKE")
    sim.feed(joined("m1", born=date(2000, 2, 29)))
    assert grants(sim.feed(day(date(2027, 2, 28)))) == [("BIRTHDAY", "CAKE", "C-1")]
    assert grants(sim.feed(day(date(2027, 3, 1)))) == []
    sim.feed(day(date(2028, 2, 28)))  # a leap year: not yet
    assert grants(sim.feed(day(date(2028, 2, 29)))) == [("BIRTHDAY", "CAKE", "C-2")]


def test_a_member_without_a_date_of_birth_gets_no_birthday_reward():
    sim = engine(birthday_reward_id="CAKE")
    sim.feed(joined("m1"))
    assert grants(sim.feed(day(date(2026, 3, 5)))) == []


def test_a_birthday_whose_daily_run_never_came_is_granted_by_the_next_run_once():
    # Found by a user's trial: the market's clock skipped 1 March and the reward of a member
    # born on 1 March was lost for the year, without a note.
    sim = engine(birthday_reward_id="CAKE")
    sim.feed(joined("m1", born=date(2001, 3, 1)))
    assert grants(sim.feed(day(date(2028, 2, 28)))) == []
    assert grants(sim.feed(day(date(2028, 2, 29)))) == []
    assert grants(sim.feed(day(date(2028, 3, 2)))) == [("BIRTHDAY", "CAKE", "C-1")]
    assert grants(sim.feed(day(date(2028, 3, 3)))) == []  # once
    assert grants(sim.feed(day(date(2029, 3, 1)))) == [("BIRTHDAY", "CAKE", "C-2")]


def test_a_first_daily_run_long_after_a_birthday_does_not_grant_it():
    sim = engine(birthday_reward_id="CAKE")
    sim.feed(joined("m1", born=date(2001, 3, 1)))
    assert grants(sim.feed(day(date(2028, 3, 2)))) == []  # no run before it: today only
