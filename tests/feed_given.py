"""Given data for the offer feed tests: offers rendered by the feed writer itself
(`projections.writers.feed.item_of`), members with their standings, and an in-memory
`FeedStore` that selects what the Postgres one selects (its SQL is checked on the real stack:
tests/integration/test_offer_feed_projection.py and test_offer_feeds_stack.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from processors.contract.config import OfferPublished
from projections.api.feed_store import FeedEventRecord
from projections.api.offer_feed import Member, Standing, is_public
from projections.writers import feed
from projections.writers.feed import FeedItem
from tests.cart_given import AT, PROGRAM, offer

__all__ = ["AT", "PROGRAM", "FakeFeedStore", "copy", "item", "member", "published"]

_NEVER = datetime.max.replace(tzinfo=UTC)


def copy(locale: str, headline: str) -> dict[str, Any]:
    return {"locale": locale, "headline": headline, "short_description": f"{headline}."}


def published(offer_id: str, **definition: Any) -> OfferPublished:
    """An OfferPublished (JSON form fields overridden), MASS and automatic by default, live
    from a day before AT, never ending (`tests.cart_given.offer`): 100 points for 20.00 in
    one purchase."""
    defaults: dict[str, Any] = {
        "behaviours": [{"kind": "SPEND", "spend_min_cents": 2000,
                        "accumulation": "SINGLE_TRANSACTION"}],
        "reward": {"kind": "FLAT_POINTS", "points": 100},
    }  # fmt: skip
    event = offer(offer_id, **{**defaults, **definition})
    assert isinstance(event, OfferPublished)
    return event


def window(starts: timedelta, ends: timedelta | None = None, display: timedelta | None = None):
    """A schedule relative to AT (JSON form)."""
    return {
        "starts_at": (AT + starts).isoformat(),
        "ends_at": (AT + ends).isoformat() if ends is not None else None,
        "display_at": (AT + display).isoformat() if display is not None else None,
    }


def item(
    offer_id: str,
    *,
    ends_at: datetime | None = None,
    withdrawn_at: datetime | None = None,
    **definition: Any,
) -> FeedItem:
    """The feed's row of an offer as the API reads it (`ends_at`: after an extension)."""
    event = published(offer_id, **definition)
    return feed.item_of(event, ends_at=ends_at or event.schedule.ends_at, withdrawn_at=withdrawn_at)


def member(member_id: str = "M1", **changes: Any) -> Member:
    given: dict[str, Any] = {
        "member_id": member_id,
        "status": "ACTIVE",
        "merged_into": None,
        "program_ids": (PROGRAM,),
        "preferred_locale": None,
    }
    return Member(**{**given, **changes})


def targeted(*, control: bool = False, at: datetime = AT - timedelta(days=1), **more: Any):
    """A standing of a member targeted (once) at `at`."""
    return Standing(in_control_group=control, targeted_at=at, last_targeted_at=at, targetings=1,
                    **more)  # fmt: skip


@dataclass
class FakeFeedStore:
    """`FeedStore` in memory: the same selection as `PostgresFeedStore`'s SQL."""

    items: list[FeedItem] = field(default_factory=list)
    members: dict[str, Member] = field(default_factory=dict)
    standings: dict[tuple[str, str], Standing] = field(default_factory=dict)
    recorded: list[FeedEventRecord] = field(default_factory=list)

    async def market_items(self, market: str, at: datetime) -> list[FeedItem]:
        return [
            i for i in self.items if i.market == market and is_public(i) and at < i.visible_until
        ]

    async def member_items(
        self, member_id: str, at: datetime
    ) -> tuple[Member, list[tuple[FeedItem, Standing | None]]] | None:
        found = self.members.get(member_id)
        if found is None:
            return None
        rows = []
        for i in self.items:
            standing = self.standings.get((member_id, i.offer_id))
            targeted = standing is not None and standing.targeted_at is not None
            bought = standing is not None and bool(standing.issued)
            if (
                i.program_id in found.program_ids
                and at < i.visible_until
                and (bought if i.in_reward_store else (i.audience == "MASS" or targeted))
            ):
                rows.append((i, standing))
        return found, rows

    async def record(self, event: FeedEventRecord) -> bool:
        if any(e.event_id == event.event_id for e in self.recorded):
            return False
        self.recorded.append(event)
        return True
