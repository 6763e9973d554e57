"""Staff changes to a published offer, judged against the configuration as it is now: the one
home of `loyalty offers extend` and the console's extension and withdrawal.

An extension follows the seed's rules (DESIGN.md §5.11, `rules.offers.schedule`): refused with
the rule broken, else the `OfferEndDateExtended` to publish; the worker judges it again. Never
publishes and never reads the clock: `now` is the caller's.
"""

from __future__ import annotations

from datetime import datetime

from processors.contract.config import OfferEndDateExtended, OfferWithdrawn
from processors.rules.arithmetic import derived_id
from processors.rules.member import Config
from processors.rules.offers.schedule import extension_refusal


def extension(
    config: Config,
    offer_id: str,
    ends_at: datetime,
    *,
    now: datetime,
    requested_by: str,
    reason: str | None = None,
) -> OfferEndDateExtended | str:
    """The event extending `offer_id` to `ends_at`, or why it is refused: `"CODE: sentence"`
    for a rule broken, or that no such offer is published."""
    offer = config.catalogue.get(offer_id)
    if offer is None:
        return f"no offer {offer_id} is published"
    program = config.programs.get(offer.program_id)
    refusal = extension_refusal(
        offer,
        offer.schedule.ends_at,
        ends_at,
        at=now,
        enabled=program is not None and program.offer_end_date_extension_enabled,
        completed=config.catalogue.closed_at(offer_id) is not None,
    )
    if refusal is not None:
        return refusal
    return OfferEndDateExtended(
        event_id=derived_id("offer-extended", offer_id, ends_at.isoformat(), now.isoformat()),
        occurred_at=now,
        offer_id=offer_id,
        ends_at=ends_at,
        requested_by=requested_by,
        reason=reason,
    )


def withdrawal(
    config: Config, offer_id: str, *, now: datetime, requested_by: str, reason: str | None = None
) -> OfferWithdrawn | str:
    """The event withdrawing `offer_id` from `now`, or why not (never published)."""
    if config.catalogue.get(offer_id) is None:
        return f"no offer {offer_id} is published"
    return OfferWithdrawn(
        event_id=derived_id("offer-withdrawn", offer_id, now.isoformat()),
        occurred_at=now,
        offer_id=offer_id,
        requested_by=requested_by,
        reason=reason,
    )
