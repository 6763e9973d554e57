"""Topic `loyalty.notifications.v1`: what the engine tells members (inbox messages) and what
members allow (communication preferences, with their audit trail), keyed by member.

It never sends anything: CRM, the engagement platform and the consent manager subscribe here.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from processors.base import topics
from processors.contract.base import ContractEnum, Event, Id, Market, Record, Text, UtcDatetime
from processors.contract.common import Source

TOPIC = topics.NOTIFICATIONS.name


class ContactChannel(ContractEnum):
    """A channel a member can be contacted through; which ones exist varies by market."""

    EMAIL = "EMAIL"
    SMS = "SMS"
    PUSH = "PUSH"
    IN_APP = "IN_APP"
    POSTAL_MAIL = "POSTAL_MAIL"
    UNKNOWN = "UNKNOWN"


class ChangedBy(ContractEnum):
    """Who made a change on a member's behalf, for the audit trail."""

    MEMBER = "MEMBER"  # the member themselves
    STAFF = "STAFF"  # a member-care or store employee
    SYSTEM = "SYSTEM"  # an automated process (e.g. a hard bounce opts out of email)
    CONSENT_MANAGER = "CONSENT_MANAGER"  # synchronised from the consent management platform
    UNKNOWN = "UNKNOWN"


class PreferenceChange(Record):
    """One channel's opt-in, before and after a change."""

    channel: ContactChannel = Field(description="The channel.")
    opted_in: bool = Field(description="Whether the member now accepts marketing on it.")
    was_opted_in: bool | None = Field(
        default=None, description="Whether they did before the change (null: never set)."
    )


class MessagePosted(Event):
    """A message was posted to a member's in-app inbox, or to every inbox of a market (a
    global message, keyed by the market: anonymous visitors see it too)."""

    topic: ClassVar[str] = TOPIC

    member_id: Id | None = Field(
        default=None,
        description="The member whose inbox receives it; null: a global message for `market`.",
    )
    market: Market | None = Field(
        default=None,
        description="The market of a global message (required then); null on a personal one.",
    )
    message_id: Id = Field(
        description="Id of the message, derived deterministically from its cause."
    )
    cause_event_id: Id = Field(description="event_id of the event that caused the message.")
    campaign_id: Id | None = Field(default=None, description="The CRM campaign, if any.")
    locale: str = Field(
        pattern=r"^[a-z]{2}(-[A-Z]{2})?$", description="Language of the copy, e.g. `en`, `fr`."
    )
    title: str = Field(min_length=1, max_length=200, description="Headline, plain text.")
    body: Text = Field(min_length=1, description="Message text, plain text.")
    deep_link_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where tapping the message leads (an app deep link or a web URL).",
    )
    image_url: str | None = Field(
        default=None, max_length=2048, description="Image shown with the message."
    )
    expires_at: UtcDatetime | None = Field(
        default=None, description="When the message leaves the inbox (null: never)."
    )

    @model_validator(mode="after")
    def _check_expiry(self) -> Self:
        if self.expires_at is not None and self.expires_at <= self.occurred_at:
            raise ValueError("a message cannot expire before it is posted")
        if (self.member_id is None) == (self.market is None):
            raise ValueError("a message names a member (personal) or a market (global), not both")
        return self

    def partition_key(self) -> str:
        # A global message has no member partition: its market is its key.
        return self.member_id or self.market or ""


class PreferencesChanged(Event):
    """A member's communication preferences changed; each event is one entry of their audit
    trail."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member whose preferences changed.")
    changes: list[PreferenceChange] = Field(
        min_length=1, description="The channels changed, each at most once."
    )
    changed_by: ChangedBy = Field(description="Who made the change.")
    changed_by_id: Id = Field(
        description="Who exactly: the member_id for MEMBER, else the staff user's or system's id."
    )
    source: Source = Field(description="The channel the change was made in.")
    reason: str | None = Field(
        default=None, max_length=500, description="Why, when staff or a system changed it."
    )

    @model_validator(mode="after")
    def _check_audit(self) -> Self:
        channels = [c.channel for c in self.changes]
        if len(set(channels)) != len(channels):
            raise ValueError("changes must name each channel at most once")
        if self.changed_by is ChangedBy.MEMBER and self.changed_by_id != self.member_id:
            raise ValueError("a change made by the member names the member as changed_by_id")
        return self
