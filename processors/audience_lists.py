"""List-based audiences (seed 003, "List-based targeting for audience"): members' loyalty ids,
uploaded as a CSV whose header is `loyaltyId`, published as `AudienceUploaded` parts that offers
target by `targeting.audience_id`. The one home of the parts and their ids, for
`loyalty audiences upload` and the console's offer form.

Reads text and builds events; never publishes and never reads a clock (`at` is the caller's).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from processors.code_lists import read_code_text
from processors.contract.config import AudienceUploaded
from processors.contract.offer_definition import LIST_MAX
from processors.rules.arithmetic import derived_id

AUDIENCE_HEADER = "loyaltyId"
"""The header of an uploaded audience list (seed 003)."""
FILE_NAME_MAX = 255


@dataclass(frozen=True)
class AudienceUpload:
    """What a file gives: the parts to publish (none if there is any error), the problems."""

    member_ids: list[str] = field(default_factory=list)
    events: list[AudienceUploaded] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_audience(
    audience_id: str, text: str, file_name: str, *, at: datetime, name: str | None = None
) -> AudienceUpload:
    """The CSV text's members (problems named by `file_name` and row) as one upload's parts."""
    listed = read_code_text(text, file_name, AUDIENCE_HEADER, count_max=None)
    if listed.errors:
        return AudienceUpload(listed.codes, [], listed.errors, listed.warnings)
    events = audience_parts(audience_id, listed.codes, at=at, name=name, file_name=file_name)
    return AudienceUpload(listed.codes, events, [], listed.warnings)


def audience_parts(
    audience_id: str,
    member_ids: list[str],
    *,
    at: datetime,
    file_name: str,
    name: str | None = None,
) -> list[AudienceUploaded]:
    """The members as one upload in parts of at most LIST_MAX, in order; `at` is their time,
    `file_name` the name of the file they came from.

    The upload's id derives from the audience and its members, so the same list again is a
    repeat (each part compacts to one), while another list replaces the audience as a whole
    once all of its parts arrived."""
    digest = hashlib.sha256("\n".join(member_ids).encode()).hexdigest()
    upload_id = derived_id("audience-upload", audience_id, digest)
    starts = range(0, len(member_ids), LIST_MAX)
    return [
        AudienceUploaded(
            event_id=derived_id("audience-part", upload_id, str(number)),
            occurred_at=at,
            audience_id=audience_id,
            name=name,
            upload_id=upload_id,
            part_number=number,
            part_count=len(starts),
            member_ids=member_ids[start : start + LIST_MAX],
            source_file_name=file_name[:FILE_NAME_MAX],
        )
        for number, start in enumerate(starts, start=1)
    ]
