"""Communication preferences (issue #15, ADR 28): a member opts in or out of the channels
their market offers, every change is one audit entry (`PreferencesChanged`: who, when,
source, old → new), a channel the market does not offer refuses the whole request, and a
repeated command is answered again without a second entry."""

from __future__ import annotations

from typing import Any

from processors.contract.common import Source
from processors.contract.notifications import ChangedBy, ContactChannel, PreferencesChanged
from processors.contract.outcomes import RequestAccepted, RequestRejected
from processors.contract.redemptions import ChannelChoice, PreferencesChangeRequested
from processors.simulation import Simulation
from tests.rules.given import T0, enrolled, program

EMAIL, PUSH, SMS = ContactChannel.EMAIL, ContactChannel.PUSH, ContactChannel.SMS


def engine(**programme: Any) -> Simulation:
    sim = Simulation()
    sim.run([program(**programme), enrolled("m1")])
    return sim


def choose(command: str, *choices: tuple[ContactChannel, bool], by: str = "m1",
           **fields: Any) -> PreferencesChangeRequested:  # fmt: skip
    staff = by != "m1"
    fields.setdefault("occurred_at", T0)
    return PreferencesChangeRequested(
        event_id=f"prefs-{command}", command_id=command, member_id="m1",
        choices=[ChannelChoice(channel=c, opted_in=o) for c, o in choices],
        changed_by=ChangedBy.STAFF if staff else ChangedBy.MEMBER, changed_by_id=by,
        source=Source.BACK_OFFICE if staff else Source.APP, **fields,
    )  # fmt: skip


def test_a_first_choice_is_recorded_as_a_change_from_never_set():
    out = engine().feed(choose("c1", (EMAIL, True), (PUSH, False)))
    changed, answer = out
    assert isinstance(changed, PreferencesChanged)
    assert isinstance(answer, RequestAccepted)
    assert [(c.channel, c.was_opted_in, c.opted_in) for c in changed.changes] == [
        (EMAIL, None, True), (PUSH, None, False),
    ]  # fmt: skip
    assert (changed.changed_by, changed.changed_by_id) == (ChangedBy.MEMBER, "m1")


def test_only_what_changes_is_an_entry_and_staff_are_named_with_their_reason():
    sim = engine()
    sim.feed(choose("c1", (EMAIL, True), (PUSH, True)))
    changed, _ = sim.feed(choose("c2", (EMAIL, False), (PUSH, True), by="care-7",
                                 reason="asked by phone"))  # fmt: skip
    assert isinstance(changed, PreferencesChanged)
    assert [(c.channel, c.was_opted_in, c.opted_in) for c in changed.changes] == [
        (EMAIL, True, False)
    ]
    assert (changed.changed_by, changed.changed_by_id, changed.reason) == (
        ChangedBy.STAFF, "care-7", "asked by phone",
    )  # fmt: skip


def test_nothing_to_change_is_accepted_without_an_entry():
    sim = engine()
    sim.feed(choose("c1", (EMAIL, True)))
    (answer,) = sim.feed(choose("c2", (EMAIL, True)))
    assert isinstance(answer, RequestAccepted)


def test_a_channel_the_market_does_not_offer_refuses_the_whole_request():
    sim = engine(contact_channels=[EMAIL, PUSH])
    (refused,) = sim.feed(choose("c1", (EMAIL, True), (SMS, True)))
    assert isinstance(refused, RequestRejected)
    assert refused.reason.value == "channel_not_offered"
    assert "SMS" in refused.detail
    changed, _ = sim.feed(choose("c2", (EMAIL, True)))  # EMAIL was not set by the refusal
    assert isinstance(changed, PreferencesChanged)
    assert changed.changes[0].was_opted_in is None


def test_a_repeated_command_is_answered_again_without_a_second_entry():
    sim = engine()
    first = sim.feed(choose("c1", (EMAIL, True)))
    assert sim.feed(choose("c1", (EMAIL, True))) == [first[-1]]


def test_a_stranger_is_unknown():
    sim = Simulation()
    sim.run([program()])
    (refused,) = sim.feed(choose("c1", (EMAIL, True)))
    assert isinstance(refused, RequestRejected)
    assert refused.reason.value == "unknown_member"


def test_a_choice_made_before_the_channels_latest_does_not_undo_it():
    # Found by a user's trial: an older request arriving later was applied (EMAIL back to
    # false in the consent manager's feed) while the projection kept the newer one (true),
    # and the member's own opt-out was then answered "nothing to change".
    from datetime import timedelta

    sim = engine()
    sim.feed(choose("c1", (EMAIL, True), occurred_at=T0 + timedelta(hours=1)))
    late = sim.feed(choose("c2", (EMAIL, False), (PUSH, True), occurred_at=T0))
    changed, answer = late
    assert isinstance(changed, PreferencesChanged)
    assert [(c.channel, c.opted_in) for c in changed.changes] == [(PUSH, True)]
    assert isinstance(answer, RequestAccepted)
    assert "EMAIL kept: a later choice" in (answer.detail or "")
    out = sim.feed(choose("c3", (EMAIL, False), occurred_at=T0 + timedelta(hours=2)))
    (opted_out, _) = out
    assert isinstance(opted_out, PreferencesChanged)
    assert [(c.channel, c.was_opted_in, c.opted_in) for c in opted_out.changes] == [
        (EMAIL, True, False)
    ]
