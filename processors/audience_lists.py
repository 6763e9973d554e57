"""List-based audiences (seed 003, "List-based targeting for audience"): members' loyalty ids,
uploaded as a CSV whose header is `loyaltyId`, published as `AudienceUploaded` parts that offers
target by `targeting.audience_id`. The one home of the parts and their ids, for
`loyalty audiences upload` and the console's offer form.

Builds events from members' ids (`processors.code_lists` reads the CSV); never publishes and
never reads a clock (`at` is the caller's).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from processors.contract.config import AudienceUploaded
from processors.contract.offer_definition import LIST_MAX
from processors.rules.arithmetic import derived_id

AUDIENCE_HEADER = "loyaltyId"
"""The header of an uploaded audience list (seed 003)."""
FILE_NAME_MAX = 255


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
