"""`POST /v1/offer-feed/events`: what the app saw on the offers page, for the analysts (seed
000, "Impacted Metrics": offers page visits, offer click rate; docs/adr/0025-offer-feeds.md).

Anonymous, or with a member token (the event is that member's; a staff token is refused:
staff are not the app's audience, and their views would skew the figures). Recorded once per
`event_id`, the app's own, so a retry is safe: 204 each time. What is kept is the API's own
table (`offer_feed_events`), read by the views `offers_page_visits`, `offer_click_rates` and
`offer_feed_engagement`; nothing goes to Kafka (the ADR says why).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from projections.api.auth import Principal, Role, read_optional_principal
from projections.api.errors import ForbiddenError, refusals
from projections.api.feed_schemas import FeedEventRequest
from projections.api.feed_store import FeedEventRecord, FeedStore
from projections.api.throttle import Throttle, caller_keys

router = APIRouter(tags=["offers"])

ROUTE = "/v1/offer-feed/events"


@router.post(
    ROUTE,
    status_code=204,
    summary="Record an offers page view or an offer click seen by the app",
    responses=refusals(
        400,
        401,
        403,
        414,
        429,
        503,
        described={
            400: "invalid_parameter: a malformed body (an OFFER_CLICKED without its offer_id, "
            "a PAGE_VIEWED with one, an id that is not an id); `parameter` names it",
            401: "unauthorized: an Authorization header that holds no valid token (send none "
            "for an anonymous visitor)",
            403: "forbidden: a staff token (app events are a member's or anonymous)",
            429: "too_many_requests: more app events in the last minute from this member (or "
            "this address, anonymously) than allowed; retry after `Retry-After`",
            503: "database_unavailable: retry after `Retry-After` with the same event_id",
        },
    ),
)
async def record_feed_event(
    request: Request,
    event: FeedEventRequest,
    principal: Annotated[Principal | None, Depends(read_optional_principal)],
) -> Response:
    """Keep what the app saw, for the analysts' views (`offers_page_visits`,
    `offer_click_rates`, `offer_feed_engagement`). 204 whether it is new or a retry."""
    store: FeedStore = request.app.state.feed_store
    if principal is not None and principal.role is Role.STAFF:
        raise ForbiddenError("app events are recorded with a member token, or with none")
    now = request.app.state.clock()
    member_id = principal.subject if principal is not None else None
    address = request.client.host if request.client is not None and member_id is None else None
    keys = caller_keys(member_id=member_id, subject=None, address=address)
    throttle: Throttle = request.app.state.feed_event_throttle
    throttle.check(keys, now, route=ROUTE)
    throttle.count(keys, now, route=ROUTE)
    record = FeedEventRecord(
        event_id=event.event_id,
        kind=event.kind.value,
        market=event.market,
        member_id=member_id,
        offer_id=event.offer_id,
        offer_ids=tuple(event.offer_ids),
        locale=event.locale,
        received_at=now,
    )
    await store.record(record)
    return Response(status_code=204)
