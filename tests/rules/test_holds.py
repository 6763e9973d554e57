"""`holds.LiveHolds` counts exactly what a scan of the holds counts, whatever the order of
changes and times (times may go back: requests carry their own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.rules.holds import LiveHolds

T0 = datetime(2026, 12, 6, tzinfo=UTC)
AFTER = timedelta(minutes=30)


@dataclass
class Held:
    code: str
    until: datetime


def _labels(held: Held) -> tuple[str]:
    return (held.code,)


def _scan(holds: dict[str, Held], at: datetime, code: str | None) -> int:
    return sum(1 for h in holds.values() if h.until > at and code in (None, h.code))


_steps = st.lists(
    st.tuples(
        st.sampled_from(["hold", "drop", "extend", "forget", "forget-some", "count"]),
        st.sampled_from(["k1", "k2", "k3", "k4", "k5"]),
        st.sampled_from(["A", "B"]),
        st.integers(min_value=-5, max_value=40),  # minutes after the step's time
        st.integers(min_value=-8, max_value=10),  # how the step's time moves
    ),
    max_size=80,
)


@settings(max_examples=600, deadline=None)
@given(_steps)
def test_counts_equal_a_scan_after_any_changes(steps: list[tuple[str, str, str, int, int]]) -> None:
    holds: dict[str, Held] = {}
    live = LiveHolds(holds, _labels)
    at = T0
    for action, key, code, minutes, move in steps:
        at += timedelta(minutes=move)
        until = at + timedelta(minutes=minutes)
        if action == "hold":
            live.hold(key, Held(code, until))
        elif action == "drop":
            live.drop(key)
        elif action == "extend" and key in holds:
            live.extend(key, max(holds[key].until, until))
        elif action == "forget":
            live.forget(at, AFTER)
            assert all(h.until + AFTER > at for h in holds.values())
        elif action == "forget-some":
            due = sum(1 for h in holds.values() if h.until + AFTER <= at)
            live.forget(at, AFTER, most=1)
            assert sum(1 for h in holds.values() if h.until + AFTER <= at) == max(due - 1, 0)
        for label in (None, "A", "B"):
            assert live.count(at, label) == _scan(holds, at, label)


def test_holds_kept_before_the_counts_are_built_are_counted() -> None:
    holds = {"k1": Held("A", T0 + timedelta(minutes=5)), "k2": Held("B", T0)}
    live = LiveHolds(holds, _labels)
    assert (live.count(T0), live.count(T0, "A"), live.count(T0, "B")) == (1, 1, 0)
    assert live.count(T0 + timedelta(minutes=5)) == 0
    assert live.count(T0 - timedelta(minutes=1)) == 2  # an earlier time: counted again


def test_forget_keeps_what_lapsed_recently_and_sweeps_only_when_due() -> None:
    holds = {"old": Held("A", T0), "new": Held("A", T0 + AFTER)}
    live = LiveHolds(holds, _labels)
    live.forget(T0 + AFTER - timedelta(seconds=1), AFTER)
    assert set(holds) == {"old", "new"}
    live.forget(T0 + AFTER, AFTER)
    assert set(holds) == {"new"}


def test_forget_at_most_so_many_takes_the_earliest_and_leaves_the_rest_due() -> None:
    holds = {f"k{n}": Held("A", T0 + timedelta(seconds=n)) for n in range(2500)}
    live = LiveHolds(holds, _labels)
    later = T0 + AFTER + timedelta(hours=1)  # every one is due
    live.forget(later, AFTER, most=1000)
    assert len(holds) == 1500
    assert min(holds, key=lambda k: holds[k].until) == "k1000"
    assert live.unsaved() == 1000  # what the agent's next save writes
    live.forget(later, AFTER, most=1000)
    live.forget(later, AFTER, most=1000)
    assert holds == {}


def test_equal_states_stay_equal_whatever_their_counts_hold() -> None:
    first = LiveHolds({}, _labels)
    first.count(T0)
    assert first == LiveHolds({}, _labels)
