"""Topic `loyalty.activities.v1`: what members did outside a purchase (log-ins, app downloads,
profile completion, partner card links, email clicks, challenge steps), keyed by member.

Activities trigger offers and count towards behaviours and challenges; they never move points
themselves."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator

from processors.base import topics
from processors.contract.base import ContractEnum, Event, Id
from processors.contract.common import Source

TOPIC = topics.ACTIVITIES.name


class ActivityKind(ContractEnum):
    """What a member did: the system-defined activities, or CUSTOM for a business-defined one."""

    FIRST_LOGIN = "FIRST_LOGIN"
    APP_DOWNLOAD = "APP_DOWNLOAD"
    PROFILE_COMPLETED = "PROFILE_COMPLETED"
    PARTNER_CARD_LINKED = "PARTNER_CARD_LINKED"
    EMAIL_CLICKED = "EMAIL_CLICKED"
    CHALLENGE_STEP = "CHALLENGE_STEP"
    LOGIN = "LOGIN"
    CUSTOM = "CUSTOM"
    UNKNOWN = "UNKNOWN"


class ActivityRecorded(Event):
    """A member performed an activity that offers and challenges may react to."""

    topic: ClassVar[str] = TOPIC

    member_id: Id = Field(description="The member who performed the activity.")
    kind: ActivityKind = Field(description="What the member did.")
    custom_name: Id | None = Field(
        default=None, description="The business-defined activity's name; required for CUSTOM."
    )
    challenge_id: Id | None = Field(
        default=None,
        description="The challenge this step counts towards; required for CHALLENGE_STEP.",
    )
    step: Id | None = Field(
        default=None,
        description="CHALLENGE_STEP: which of the challenge's ordered steps was done (as "
        "ChallengePublished.steps names it).",
    )
    source: Source = Field(description="The channel the activity happened in.")
    attributes: dict[str, str] = Field(
        default_factory=dict,
        description="Facts about the activity that triggers and targeting may match on (e.g. "
        "partner, campaign_id, email_id).",
    )

    @model_validator(mode="after")
    def _check_kind_specific_fields(self) -> Self:
        # One direction only: a kind added later reads as UNKNOWN and must still validate.
        if self.kind is ActivityKind.CUSTOM and self.custom_name is None:
            raise ValueError("custom_name is required for CUSTOM activities")
        if self.kind is ActivityKind.CHALLENGE_STEP and self.challenge_id is None:
            raise ValueError("challenge_id is required for CHALLENGE_STEP activities")
        return self
