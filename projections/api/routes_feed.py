"""`GET /v1/offers` (a market's offers, for anyone) and `GET /v1/members/{id}/offers` (the
offers a member sees).

The feeds (issue #14, docs/adr/0025-offer-feeds.md):
- anonymous: no token is read; the market's mass offers displayable now, without anything
  personal. `Cache-Control: public` for at most a minute, and never past the moment the answer
  changes (an offer displayed or ended, a `days_left` ticking down), so a CDN never shows an
  offer before its display date or after its end;
- personalised: the member's token, or staff (401, 403 on another member's path, as
  everywhere: `auth`); 404 for a member never enrolled, 409 `member_merged` for a member
  merged into another. `Cache-Control: private, no-cache`: only the member's device keeps it,
  and revalidates it;
- anonymous, in process: the answer is the same for every visitor of a market and language,
  so it is kept, and Postgres asked again only once the projector notified a change of the
  market's offers (`MarketFeeds.current`, `wakeups`);
- personalised, in process: a member's answer is kept until the projector notifies a change
  of the member's rows or of any offer, or time alone changes it (`MemberFeeds.current`);
- both: an `ETag` of the bytes sent, and 304 without a body when `If-None-Match` names it;
  copy in the language asked for (`locales`), the member's preferred one by default.

Owns the endpoints' behaviour; what is shown is `offer_feed`'s, the SQL the `FeedStore`'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import Counter

from projections.api import caching, offer_feed
from projections.api.auth import MemberId
from projections.api.errors import MemberMergedError, NotFoundError, refusals
from projections.api.feed_schemas import MarketFeed, MemberFeed
from projections.api.feed_store import FeedStore
from projections.api.locales import (
    DEFAULT_LOCALE,
    LocaleQuery,
    MarketQuery,
    MemberLocaleQuery,
    for_member,
)
from projections.api.wakeups import Wakeups

router = APIRouter(tags=["offers"])

MEMBER_FEEDS = Counter(
    "loyalty_api_member_feeds_total",
    "Member feed answers by where they came from: `kept` (this process's memory, MemberFeeds) "
    "or `read` (Postgres, then built): the share kept is what LOYALTY_API_MEMBER_FEEDS_MIB buys.",
    ["answer"],
)

_NOT_MODIFIED: dict[int | str, Any] = {
    304: {"description": "Not Modified: `If-None-Match` names the ETag of the answer; no body."}
}


def _store(request: Request) -> FeedStore:
    store: FeedStore = request.app.state.feed_store
    return store


def _fragments(request: Request) -> offer_feed.Fragments:
    fragments: offer_feed.Fragments = request.app.state.feed_fragments
    return fragments


@router.get(
    "/v1/offers",
    summary="The offers anyone sees in a market (non-personalised)",
    response_model=MarketFeed,
    responses={
        **_NOT_MODIFIED,
        **refusals(
            400,
            414,
            503,
            described={
                400: "invalid_parameter: `market` or `locale` is malformed",
                503: "database_unavailable: retry after `Retry-After`",
            },
        ),
    },
)
async def read_market_feed(
    request: Request,
    market: MarketQuery,
    locale: LocaleQuery = DEFAULT_LOCALE,
    if_none_match: caching.IfNoneMatch = None,
) -> Response:
    """The market's mass offers displayable now, by rank: copy in the language asked for,
    reward, behaviours, activation, window and days left. No token is read."""
    now: datetime = request.app.state.clock()
    feeds: offer_feed.MarketFeeds = request.app.state.market_feeds
    wakeups: Wakeups = request.app.state.wakeups
    # Postgres is asked only when the market may have changed since the answer was built.
    made = feeds.current(market, locale, now) if wakeups.listening else None
    if made is None:
        seen = feeds.generation(market)
        items = await _store(request).market_items(market, now)
        made = feeds.answer(items, market, locale, now, _fragments(request), seen=seen)
    return caching.answer(
        made.body,
        etag=made.etag,
        if_none_match=if_none_match,
        cache_control=caching.public(int((made.until - now).total_seconds())),
    )


@router.get(
    "/v1/members/{member_id}/offers",
    summary="The offers a member sees, with their progress, in their language",
    response_model=MemberFeed,
    responses={
        **_NOT_MODIFIED,
        **refusals(
            400,
            401,
            403,
            404,
            409,
            414,
            503,
            described={
                403: "forbidden: a member token on another member's path",
                404: "not_found: no such member (never enrolled)",
                409: "member_merged: the member was merged into another; read the survivor's",
                503: "database_unavailable: retry after `Retry-After`",
            },
        ),
    },
)
async def read_member_feed(
    request: Request,
    member_id: MemberId,
    locale: MemberLocaleQuery = None,
    if_none_match: caching.IfNoneMatch = None,
) -> Response:
    """The offers targeted to the member and displayable now (mass offers of their
    programmes included, offers they are held out of as control left out), by rank: each with
    its activation state, progress towards each behaviour, uses and points left under its
    caps, days left and reward."""
    now: datetime = request.app.state.clock()
    feeds: offer_feed.MemberFeeds = request.app.state.member_feeds
    wakeups: Wakeups = request.app.state.wakeups
    # Postgres is asked only when something the answer was built from may have changed.
    following = wakeups.listening
    made = feeds.current(member_id, locale, now) if following else None
    MEMBER_FEEDS.labels("read" if made is None else "kept").inc()
    if made is None:
        with feeds.reading(member_id) as reading:
            found = await _store(request).member_items(member_id, now)
            if found is None:
                raise NotFoundError(f"no member '{member_id}'")
            member, rows = found
            if member.status == "MERGED":
                instead = "read the survivor's offers"
                raise MemberMergedError(member_id, member.merged_into, instead)
            shown_in = for_member(locale, member.preferred_locale)
            made = feeds.answer(member, rows, locale, shown_in, now, _fragments(request),
                                reading=reading if following else None)  # fmt: skip
    return caching.answer(
        made.body, etag=made.etag, if_none_match=if_none_match, cache_control=caching.PRIVATE
    )
