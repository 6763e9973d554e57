"""Bodies of the member-service endpoints (docs/adr/0028-member-services.md): enrolment,
communication preferences and their audit trail, the inbox."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from processors.contract.base import Market
from processors.contract.enrolments import MemberProfile
from processors.contract.notifications import ContactChannel
from projections.api.identifiers import ApiId
from projections.api.schemas import Body, Instant

DecisionStatus = Literal["accepted", "rejected", "pending"]


class EnrolmentRequest(BaseModel):
    """The body of `POST /v1/members/{id}/enrolment`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    market: Market = Field(description="The member's market.", examples=["CA"])
    program_id: ApiId = Field(
        description="The market's programme to join.", examples=["CA_REWARDS"]
    )
    profile: MemberProfile | None = Field(
        default=None,
        description="What the member tells about themselves (names, email, date of birth for "
        "birthday rewards, preferred language, ...); the fields of the contract's "
        "MemberProfile.",
    )


class Enrolment(Body):
    """An enrolment and, once decided, the worker's answer."""

    command_id: str = Field(description="The Idempotency-Key.")
    member_id: str
    request_event_id: str = Field(
        description="The MemberEnrolled's event id, derived from the member and the key."
    )
    status: DecisionStatus = Field(
        description="accepted (the programme's accounts are open), rejected (nothing opened; "
        "see reason), or pending (written, not decided yet: ask `status_url`)."
    )
    status_url: str = Field(description="Where this enrolment's state is read again.")
    market: str
    program_ids: list[str] = Field(description="The programmes the enrolment asked to join.")
    ledger_event_log_id: str | None = Field(
        description="The registration's ledger event (the opening balances); null until accepted."
    )
    reason: str | None = Field(
        description="When rejected: the stable reason (already_enrolled, unknown_programme, "
        "market_mismatch, programme_disabled, member_merged)."
    )
    detail: str | None = Field(description="The worker's words, for a person; never parsed.")
    decided_at: Instant | None = Field(description="When the worker decided; null: pending.")


ENROLMENT_EXAMPLE: dict[str, Any] = {
    "command_id": "enrol-2026-12-01-0001",
    "member_id": "M1",
    "request_event_id": "member-enrolled-3f0c9a1b2d4e5f60718293a4b5c6d7e8",
    "status": "accepted",
    "status_url": "/v1/members/M1/enrolment/enrol-2026-12-01-0001",
    "market": "CA",
    "program_ids": ["CA_REWARDS"],
    "ledger_event_log_id": "LE-9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "reason": None,
    "detail": "joined CA_REWARDS",
    "decided_at": "2026-12-01T15:04:05Z",
}
ENROLMENT_PENDING = ENROLMENT_EXAMPLE | {
    "status": "pending", "ledger_event_log_id": None, "detail": None, "decided_at": None,
}  # fmt: skip
ENROLMENT_REJECTED = ENROLMENT_PENDING | {
    "status": "rejected", "reason": "programme_disabled",
    "detail": "programme CA_REWARDS is not open", "decided_at": "2026-12-01T15:04:05Z",
}  # fmt: skip


# --- communication preferences ----------------------------------------------------------------


class PreferencesRequest(BaseModel):
    """The body of `PUT /v1/members/{id}/preferences`: the channels to set, the others kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Strict: "yes" or 1 is not a choice the member made (it was read as true).
    channels: dict[ContactChannel, StrictBool] = Field(
        min_length=1,
        max_length=8,
        description="Channel → opted in (true) or out (false); only channels the member's "
        "market offers (`offered` of the GET).",
        examples=[{"EMAIL": False, "PUSH": True}],
    )
    reason: str | None = Field(
        default=None, max_length=500, description="Why, when staff change it (the audit trail)."
    )


class ChannelPreference(Body):
    """One channel the member's market offers, and the member's choice."""

    channel: ContactChannel
    opted_in: bool | None = Field(description="The member's choice; null: never set.")
    changed_at: Instant | None = Field(description="When it was last changed; null: never.")


class Preferences(Body):
    """A member's communication preferences, as projected."""

    member_id: str
    channels: list[ChannelPreference] = Field(
        description="Every channel the member's market offers, in a fixed order."
    )


class PreferencesUpdate(Body):
    """A preferences change and, once decided, the worker's answer."""

    command_id: str = Field(description="The Idempotency-Key.")
    member_id: str
    status: DecisionStatus = Field(
        description="accepted (set; the audit trail has the entry), rejected (nothing changed; "
        "see reason), or pending (written, not decided yet: ask `status_url`)."
    )
    status_url: str
    channels: dict[str, bool] = Field(description="The channels asked for, as asked.")
    changed_by: str = Field(description="MEMBER, or STAFF for a staff token.")
    changed_by_id: str = Field(description="The member, or the staff user (the token's subject).")
    reason: str | None = Field(
        description="When rejected: the stable reason (channel_not_offered, unknown_member, "
        "member_merged)."
    )
    detail: str | None = Field(description="The worker's words, for a person; never parsed.")
    decided_at: Instant | None


class PreferenceAuditEntry(Body):
    """One channel of one change, as the audit trail keeps it."""

    change_event_id: str = Field(description="The PreferencesChanged event.")
    channel: str
    was_opted_in: bool | None = Field(description="Before the change; null: never set.")
    opted_in: bool
    changed_at: Instant
    changed_by: str = Field(description="MEMBER, STAFF, SYSTEM or CONSENT_MANAGER.")
    changed_by_id: str
    source: str = Field(description="The channel the change was made in (APP, BACK_OFFICE...).")
    reason: str | None


class PreferenceAudit(Body):
    """A member's preference changes, newest first."""

    member_id: str
    changes: list[PreferenceAuditEntry]
    next_cursor: str | None = Field(description="Pass as `cursor` for older changes; null: end.")


PREFERENCES_EXAMPLE: dict[str, Any] = {
    "member_id": "M1",
    "channels": [
        {"channel": "EMAIL", "opted_in": False, "changed_at": "2026-12-01T15:04:05Z"},
        {"channel": "SMS", "opted_in": None, "changed_at": None},
        {"channel": "PUSH", "opted_in": True, "changed_at": "2026-12-01T15:04:05Z"},
    ],
}
UPDATE_EXAMPLE: dict[str, Any] = {
    "command_id": "prefs-2026-12-01-0001",
    "member_id": "M1",
    "status": "accepted",
    "status_url": "/v1/members/M1/preferences/changes/prefs-2026-12-01-0001",
    "channels": {"EMAIL": False, "PUSH": True},
    "changed_by": "MEMBER",
    "changed_by_id": "M1",
    "reason": None,
    "detail": "2 channel(s) changed",
    "decided_at": "2026-12-01T15:04:05Z",
}
UPDATE_PENDING = UPDATE_EXAMPLE | {"status": "pending", "detail": None, "decided_at": None}
AUDIT_EXAMPLE: dict[str, Any] = {
    "member_id": "M1",
    "changes": [
        {"change_event_id": "PREFS-2b7c9e0f1a3d5c7e9b1d3f5a7c9e1b3d", "channel": "EMAIL",
         "was_opted_in": True, "opted_in": False, "changed_at": "2026-12-01T15:04:05Z",
         "changed_by": "STAFF", "changed_by_id": "care-7", "source": "BACK_OFFICE",
         "reason": "asked by phone"},
    ],
    "next_cursor": None,
}  # fmt: skip


# --- the inbox --------------------------------------------------------------------------------


class MessageRequest(BaseModel):
    """The body of `POST /v1/inbox/messages`: a CRM campaign's message, personal (member_id)
    or global for a market (market)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    member_id: ApiId | None = Field(default=None, description="The member; null: global.")
    market: Market | None = Field(default=None, description="A global message's market.")
    campaign_id: ApiId | None = Field(
        default=None, description="The CRM campaign (a marketing message: IN_APP opt-outs apply)."
    )
    locale: str = Field(
        default="en", pattern=r"^[a-z]{2}(-[A-Z]{2})?$", description="Language of the copy."
    )
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)
    deep_link_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where tapping leads; its scheme and host must be on the allow-list.",
    )
    image_url: str | None = Field(default=None, max_length=2048)
    expires_at: Instant | None = Field(default=None, description="When it leaves the inbox.")


class MessagePostedBody(Body):
    """The 202 of a posted message: written, visible once projected."""

    message_id: str
    event_id: str
    member_id: str | None
    market: str | None
    status: Literal["posted"] = "posted"


class InboxMessage(Body):
    """One message of an inbox."""

    message_id: str
    kind: Literal["personal", "global"]
    campaign_id: str | None
    locale: str
    title: str
    body: str
    deep_link_url: str | None
    image_url: str | None
    posted_at: Instant
    expires_at: Instant | None
    read: bool | None = Field(description="Whether the member marked it read; null: anonymous.")


class Inbox(Body):
    """A page of an inbox, newest first."""

    messages: list[InboxMessage]
    unread: int | None = Field(
        description="Unread messages in the whole inbox (not only this page); null: anonymous."
    )
    next_cursor: str | None = Field(description="Pass as `cursor` for older messages.")


INBOX_EXAMPLE: dict[str, Any] = {
    "messages": [
        {"message_id": "MSG-CRM-5d1c0b9a8e7f6a5b4c3d2e1f0a9b8c7d", "kind": "global",
         "campaign_id": "CA_WINTER_2026", "locale": "en", "title": "Double points weekend",
         "body": "Earn 2x points on everything this weekend.",
         "deep_link_url": "loyalty://offers/DOUBLE_WEEKEND", "image_url": None,
         "posted_at": "2026-12-04T14:00:00Z", "expires_at": "2026-12-07T05:00:00Z",
         "read": False},
    ],
    "unread": 1,
    "next_cursor": None,
}  # fmt: skip
