"""A member's communication preferences (issue #15, docs/adr/0028-member-services.md): which
marketing channels they opted in or out of, changed only by a `PreferencesChangeRequested`
and only for channels the member's market offers.

Decides and evolves the member's `MemberPreferences`; answers every request like any other
(`RequestAccepted`, or `RequestRejected` with `unknown_member`, `member_merged`,
`channel_not_offered`, nothing changed) and publishes what changed as `PreferencesChanged`,
one entry of the audit trail (who, when, through which channel, old → new). A choice that
changes nothing is no entry, nor is one made before the channel's latest (a request that
arrives late does not undo a newer choice). Pure: times and ids come from the request.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from processors.contract.base import Event
from processors.contract.notifications import ContactChannel, PreferenceChange, PreferencesChanged
from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import PreferencesChangeRequested
from processors.rules.arithmetic import derived_id
from processors.rules.ledger import requests
from processors.rules.ledger.result import Programs
from processors.rules.ledger.state import MemberLedger


class MemberPreferences(BaseModel):
    """A member's marketing opt-ins, by channel, as last set (a channel never set is absent),
    and when each was set (the request's time; absent for a choice kept before it was)."""

    opted_in: dict[ContactChannel, bool] = Field(default_factory=dict)
    changed_at: dict[ContactChannel, datetime] = Field(default_factory=dict)


def offered(ledger: MemberLedger, programs: Programs) -> list[ContactChannel]:
    """The channels the markets of the member's programmes offer, in the contract's order."""
    channels = {c for p in ledger.programs if (g := programs.get(p)) for c in g.offered_channels}
    return [c for c in ContactChannel if c in channels]


def change(
    ledger: MemberLedger | None,
    preferences: MemberPreferences,
    request: PreferencesChangeRequested,
    programs: Programs,
) -> list[Event]:
    """Set the channels asked, all or none: `PreferencesChanged` (when anything changed), then
    the answer. A repeated command_id gets its answer again, nothing changed."""
    repeated = requests.repeat(ledger, request)
    if repeated is not None:
        return repeated.emitted
    refusal = _refusal(ledger, request, programs)
    if refusal is not None:
        return [requests.reply(ledger, request, reason=refusal[0], detail=refusal[1])]
    changes: list[PreferenceChange] = []
    held: list[str] = []
    for choice in request.choices:
        # The latest choice holds, by when it was made, not by when it arrived: a consent
        # manager's older state arriving late does not undo the member's newer opt-out (and
        # the projection keeps the latest by time too).
        later = preferences.changed_at.get(choice.channel)
        if later is not None and request.occurred_at < later:
            held.append(f"{choice.channel.value} kept: a later choice ({later.isoformat()}) holds")
            continue
        preferences.changed_at[choice.channel] = request.occurred_at
        was = preferences.opted_in.get(choice.channel)
        if was is choice.opted_in:
            continue
        preferences.opted_in[choice.channel] = choice.opted_in
        changes.append(
            PreferenceChange(channel=choice.channel, opted_in=choice.opted_in, was_opted_in=was)
        )
    emitted: list[Event] = []
    if changes:
        changed = PreferencesChanged(
            event_id=derived_id("PREFS", request.member_id, request.command_id),
            occurred_at=request.occurred_at, member_id=request.member_id, changes=changes,
            changed_by=request.changed_by, changed_by_id=request.changed_by_id,
            source=request.source, reason=request.reason,
        )  # fmt: skip
        emitted.append(changed)
    detail = "; ".join(
        [f"{len(changes)} channel(s) changed" if changes else "nothing to change", *held]
    )
    emitted.append(requests.reply(ledger, request, detail=detail, discount_cents=None))
    return emitted


def _refusal(
    ledger: MemberLedger | None, request: PreferencesChangeRequested, programs: Programs
) -> tuple[RejectionReason, str] | None:
    if ledger is None or ledger.status == "UNKNOWN":
        return RejectionReason.unknown_member, "no such member"
    if ledger.status == "MERGED":
        return RejectionReason.member_merged, f"merged into {ledger.merged_into}"
    allowed = offered(ledger, programs)
    for choice in request.choices:
        if choice.channel not in allowed:
            names = ", ".join(c.value for c in allowed) or "none"
            return (
                RejectionReason.channel_not_offered,
                f"{choice.channel.value} is not offered in the member's market (offered: {names})",
            )
    return None
