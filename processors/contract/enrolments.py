"""Topic `loyalty.enrolments.v1`: who the members are. Enrolments, profile changes and merges,
keyed by member (a merge by its victim: DESIGN.md §2).

It owns the member's identity and profile; it never carries points, which the ledger owns,
except the balances an enrolment imports from a previous system."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import ClassVar, Self

from pydantic import Field, model_validator

from processors.base import topics
from processors.contract.base import Event, Id, Market, Record, SignedPoints, UtcDatetime
from processors.contract.common import PointsCategory, Source

TOPIC = topics.ENROLMENTS.name


class MemberProfile(Record):
    """What a member told us about themselves: used for targeting, birthdays and the app."""

    first_name: str | None = Field(default=None, max_length=100, description="Given name.")
    last_name: str | None = Field(default=None, max_length=100, description="Family name.")
    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Email address (contact only: members are identified by member_id, never "
        "by email).",
    )
    phone: str | None = Field(
        default=None,
        pattern=r"^\+[1-9][0-9]{6,14}$",
        description="Mobile number in E.164 form, e.g. +14165550123.",
    )
    birth_date: date | None = Field(
        default=None,
        description="Date of birth; birthday rewards need it. Not after the day the event "
        "carrying it occurred (a day's grace for time zones ahead of UTC), nor before 1900.",
    )
    gender: str | None = Field(
        default=None,
        max_length=32,
        description="Gender as the member stated it; used only for targeting by attribute.",
    )
    preferred_locale: str | None = Field(
        default=None,
        pattern=r"^[a-z]{2}(-[A-Z]{2})?$",
        description="Language for offer copy and messages, e.g. `en` or `fr-CA`.",
    )
    city: str | None = Field(default=None, max_length=64, description="City of residence.")
    province: str | None = Field(
        default=None, max_length=8, description="Province or state code of residence."
    )
    postal_code: str | None = Field(
        default=None, max_length=16, description="Postal or ZIP code of residence."
    )
    country: str | None = Field(
        default=None,
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 country of residence.",
    )
    attributes: dict[str, str] = Field(
        default_factory=dict,
        description="Extended profile attributes used for targeting (e.g. segment, RFM score).",
    )


BIRTH_DATE_EARLIEST = date(1900, 1, 1)
"""No member was born before this: a date before it is a typing error."""


def birth_date_problem(profile: MemberProfile | None, at: datetime) -> str | None:
    """Why the profile's date of birth cannot be true when given at `at`, or None: a day after
    `at`'s (UTC) day or later (a birthday reward would wait years for it), or before 1900."""
    born = profile.birth_date if profile is not None else None
    if born is None:
        return None
    if born > (at + timedelta(days=1)).date():
        return f"birth_date {born.isoformat()} is in the future"
    if born < BIRTH_DATE_EARLIEST:
        return f"birth_date {born.isoformat()} is before {BIRTH_DATE_EARLIEST.isoformat()}"
    return None


class ImportedBalance(Record):
    """A balance carried over from a previous system: the opening balance of one account."""

    program_id: Id = Field(description="The programme of the account; one of program_ids.")
    category: PointsCategory = Field(description="The points category of the account.")
    points: SignedPoints = Field(
        description="The balance carried over; negative when the old system owed points back "
        "(the ledger then records a debit)."
    )
    expires_at: UtcDatetime | None = Field(
        default=None,
        description="When the imported points expire (null: the programme's policy applies from "
        "the enrolment).",
    )


class MemberEnrolled(Event):
    """A customer enrolled in one or more programmes of a market and became a member."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The new member's id, chosen by the enrolling system.")
    market: Market = Field(description="The market whose programmes the member joined.")
    program_ids: list[Id] = Field(
        min_length=1,
        description="The programmes joined; each opens an account per configured category "
        "(DESIGN.md §5.24). A later enrolment of the same member opens only programmes not yet "
        "joined.",
    )
    source: Source = Field(description="The channel the member enrolled through.")
    store_id: Id | None = Field(
        default=None, description="The store that enrolled the member, for in-store sign-ups."
    )
    profile: MemberProfile = Field(description="The profile given at enrolment.")
    referrer_member_id: Id | None = Field(
        default=None,
        description="The member who referred this one (REFERRAL awards); never the member.",
    )
    imported_balances: list[ImportedBalance] = Field(
        default_factory=list,
        description="Balances migrated from a previous system (POINTS_IMPORT): each opens its "
        "account with that balance; accounts not listed open at zero.",
    )

    @model_validator(mode="after")
    def _check_programmes_and_referrer(self) -> Self:
        if len(set(self.program_ids)) != len(self.program_ids):
            raise ValueError("program_ids must not repeat a programme")
        if self.referrer_member_id == self.member_id:
            raise ValueError("a member cannot refer themselves")
        accounts = [(b.program_id, b.category) for b in self.imported_balances]
        if len(set(accounts)) != len(accounts):
            raise ValueError("imported_balances must not repeat an account (programme, category)")
        strangers = {b.program_id for b in self.imported_balances} - set(self.program_ids)
        if strangers:
            raise ValueError(f"imported_balances name programmes not joined: {sorted(strangers)}")
        problem = birth_date_problem(self.profile, self.occurred_at)
        if problem is not None:
            raise ValueError(problem)
        return self


class MemberProfileUpdated(Event):
    """A member's profile changed; the event carries the whole profile after the change."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member whose profile changed.")
    source: Source = Field(description="The channel the change was made through.")
    profile: MemberProfile = Field(
        description="The whole profile after the change: a snapshot, not a patch, so a null "
        "field was cleared."
    )

    @model_validator(mode="after")
    def _check_birth_date(self) -> Self:
        problem = birth_date_problem(self.profile, self.occurred_at)
        if problem is not None:
            raise ValueError(problem)
        return self


class MembersMerged(Event):
    """Two members were found to be one person: the victim's account merged into the survivor's.

    Keyed by the victim (DESIGN.md §2): the victim's partition moves its balances out and
    records its final ledger event, then the survivor's partition applies the other side from a
    re-keyed internal topic. Both ledgers stay readable (§5.18).
    """

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "victim_member_id"

    victim_member_id: Id = Field(
        description="The member merged away (the record key): their ledger ends with the merge."
    )
    survivor_member_id: Id = Field(
        description="The member who remains and receives the victim's balances."
    )
    source: Source = Field(description="The channel the merge was made through.")
    reason: str | None = Field(
        default=None, max_length=500, description="Why the members were merged, for member care."
    )

    @model_validator(mode="after")
    def _check_two_members(self) -> Self:
        if self.victim_member_id == self.survivor_member_id:
            raise ValueError("a member cannot be merged into themselves")
        return self
