"""Topic `loyalty.internal.offer-targeting.v1`: deciding a static audience on every member
partition (DESIGN.md §5.17, docs/adr/0013-targeting-and-activation.md).

A static audience is fixed when the offer is published, including members who never act; the
member rules live on member partitions, so the worker copies each publication with STATIC
timing to every partition as one of these, and each partition decides for the members it holds.
Internal to the engine: not for upstream producers.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from processors.base import topics
from processors.contract.base import Event, Id, OfferId, UtcDatetime

TOPIC = topics.OFFER_TARGETING.name


class OfferTargetingTick(Event):
    """A static audience is to be decided now, on the partition this copy is on.

    One copy per partition for each `OfferPublished` with STATIC timing, keyed by the offer; its
    event_id derives from the publication's. A member's decision is taken once per offer, so a
    redelivered or republished copy decides nothing twice.
    """

    topic: ClassVar[str] = TOPIC
    key_field: ClassVar[str] = "offer_id"

    offer_id: OfferId = Field(description="The offer whose audience is decided (the record key).")
    publication_event_id: Id = Field(description="event_id of the OfferPublished it decides.")
    targeting_at: UtcDatetime = Field(
        description="The instant the audience is fixed: the publication's occurred_at. Member "
        "facts are judged as of this instant."
    )
