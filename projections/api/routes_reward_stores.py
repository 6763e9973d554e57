"""Reward stores (seed 002, docs/adr/0033-reward-store-api.md): the member's eligible stores,
the offers one sells, and buying one with points.

- `GET /v1/reward-stores` and `GET /v1/reward-stores/{reward_store_id}/offers`: a store is
  configured (`RewardStoreConfigured`) and sells the live offers of its programme whose
  `reward_store` listing names it. The member's stores are those open now, of the member's
  market, whose eligibility the member's profile meets (`store.is_listed_for`), with their
  copy in the language asked. Each offer says whether the member may buy it, judged by the
  worker's own rule (`processors.rules.rewards.store.purchase_refusal` and its parts) on the
  member's state rebuilt from the projections (`reward_store_queries`).
- `POST /v1/reward-stores/{reward_store_id}/offers/{offer_id}/purchase` writes a
  `RewardStoreOfferPurchaseRequested` and answers with the worker's decision as the
  redemption endpoint does (ADR 22), through `member_requests.submit`: 201 with the issued
  offer, 409 with the original for a repeated key, 422 with the stable reason, 202 with the
  status URL (`GET /v1/members/{id}/reward-store-purchases/{key}`) when the decision takes
  longer than the wait.
- The instances bought, and the till's lock and redeem: `routes_issued_offers`.

Who: a member token acts for its own member (`member_id`, when given, must be it: 403
otherwise); a staff token names the member with `member_id` (400 without).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request

from processors.contract.common import Source
from processors.contract.config import OfferPublished, RewardStoreConfigured
from processors.contract.offer_definition import LocalizedCopy
from processors.contract.redemptions import RequestType, RewardStoreOfferPurchaseRequested
from processors.rules.arithmetic import derived_id
from processors.rules.ledger import requests
from processors.rules.member import Config
from processors.rules.rewards import store
from projections.api.auth import MemberId, Principal, Role, read_principal
from projections.api.claims import located
from projections.api.commands import CommandId
from projections.api.errors import (
    ApiError,
    BadParameterError,
    ErrorBody,
    ForbiddenError,
    NotFoundError,
    refusals,
)
from projections.api.identifiers import ApiId, OfferIdPath
from projections.api.locales import MemberLocaleQuery, for_member, pick
from projections.api.member_requests import ServiceOutcome, ServiceRecord, status, submit
from projections.api.reward_schemas import RewardCopy
from projections.api.reward_store_queries import Buyer, RewardStoreQueries
from projections.api.reward_store_schemas import (
    PURCHASE_EXAMPLE,
    PURCHASE_PENDING,
    PURCHASE_REJECTED,
    STORE_OFFERS_EXAMPLE,
    STORES_EXAMPLE,
    IssuedOffer,
    Purchase,
    RewardStores,
    RewardStoreSummary,
    StoreOffer,
    StoreOffers,
)
from projections.api.reward_store_schemas import Buyer as BuyerView
from projections.api.routes_carts import ConfigSource, ConfigUnavailableError
from projections.api.routes_issued_offers import documented, issued_one, issued_settled

router = APIRouter(tags=["reward stores"])

PAGE_DEFAULT, PAGE_MAX = 20, 100
_KIND = RequestType.REWARD_STORE_OFFER_PURCHASE


def buyer_id(principal: Principal, member_id: str | None) -> str:
    """Whom the caller acts for: a member token its own member, staff the `member_id` named."""
    if principal.role is Role.STAFF:
        if member_id is None:
            raise BadParameterError("member_id", "a staff token names the member (member_id)")
        return member_id
    if member_id is not None and member_id != principal.subject:
        raise ForbiddenError("a member token reads and buys only for its own member")
    return principal.subject


BuyerQuery = Annotated[
    ApiId | None,
    Query(description="The member: required with a staff token; a member token is its own."),
]
StorePath = Annotated[
    ApiId, Path(description="The reward store's id (1–128 printable ASCII).", examples=["CAFE"])
]


def purchase_request_id(member_id: str, command_id: str) -> str:
    """The RewardStoreOfferPurchaseRequested's event id: the same for every write of one key."""
    return derived_id("reward-store-offer-purchase-requested", member_id, command_id)


def status_url(member_id: str, command_id: str) -> str:
    """Where a purchase's state is read (both ids percent-encoded)."""
    return (
        f"/v1/members/{quote(member_id, safe='')}/reward-store-purchases/"
        f"{quote(command_id, safe='')}"
    )


def _queries(request: Request) -> RewardStoreQueries:
    queries: RewardStoreQueries = request.app.state.reward_store_queries
    return queries


def _config(request: Request) -> Config:
    source: ConfigSource = request.app.state.config_source
    if not source.ready.is_set():
        raise ConfigUnavailableError(f"the offer configuration is not loaded yet: {source.status}")
    return source.config


def sold_in(
    reward_store: RewardStoreConfigured, offers: list[OfferPublished]
) -> list[OfferPublished]:
    """The offers (for sale now) that `reward_store` sells: listed in it, of its programme."""
    return [
        offer
        for offer in offers
        if offer.reward_store is not None
        and offer.reward_store.reward_store_id == reward_store.reward_store_id
        and offer.program_id == reward_store.program_id
    ]


def _shown(asked: str | None, buyer: Buyer) -> str:
    """The listing's language: asked, else the member's own (`locales.for_member`)."""
    profile = buyer.offers.profile
    return for_member(asked, profile.preferred_locale if profile is not None else None)


async def _buyer(request: Request, member_id: str) -> Buyer:
    source: ConfigSource = request.app.state.config_source
    found = await _queries(request).buyer(member_id, source.config.catalogue)
    if found is None:
        raise NotFoundError(f"no member '{member_id}'")
    return found


def buyer_view(
    buyer: Buyer, offer: OfferPublished, reward_store: RewardStoreConfigured, at: datetime
) -> BuyerView:
    """What the member may do with a store's offer at `at`: the worker's rule, part by part."""
    assert offer.reward_store is not None
    ledger, offers = buyer.ledger, buyer.offers
    listing, category = offer.reward_store, reward_store.category
    refusal = store.purchase_refusal(
        ledger, offers, listing.reward_store_id, offer.offer_id, offer, reward_store, at
    )
    spend = requests.cannot_spend(
        ledger, [(offer.program_id, listing.points_cost)], category=category
    )
    return BuyerView(
        targeted=store.audience_refusal(ledger.programs, offers, offer, at) is None,
        uses_left=store.uses_left(offer, offers),
        balance=ledger.spendable(offer.program_id, category),
        affordable=spend is None,
        may_buy=refusal is None,
        refusal=refusal[0].value if refusal is not None else None,
        detail=refusal[1] if refusal is not None else None,
    )


def _store_offer(
    offer: OfferPublished,
    reward_store: RewardStoreConfigured,
    buyer: Buyer,
    locale: str,
    at: datetime,
) -> StoreOffer:
    assert offer.reward_store is not None
    return StoreOffer(
        offer_id=offer.offer_id, reward_store_id=offer.reward_store.reward_store_id,
        program_id=offer.program_id, market=offer.market, rank=offer.rank,
        points_cost=offer.reward_store.points_cost, starts_at=offer.schedule.starts_at,
        ends_at=offer.schedule.ends_at, uses_per_member_max=offer.usage.uses_per_member_max,
        copy=_copy(offer.localized_copy, locale), reward=offer.reward.model_dump(mode="json"),
        member=buyer_view(buyer, offer, reward_store, at),
    )  # fmt: skip


def _copy(localized: Sequence[LocalizedCopy], locale: str) -> RewardCopy:
    copies = {c.locale.value: c for c in localized}
    shown = copies[pick(copies, locale)]
    return RewardCopy(**shown.model_dump(mode="json"))


_READ_REFUSALS = {
    400: "invalid_parameter: a malformed id, or a staff token without member_id",
    401: "unauthorized: no valid bearer token",
    403: "forbidden: a member token naming another member",
    404: "not_found: no such member (never enrolled)",
    503: "config_unavailable (the offer configuration is not loaded yet) or "
    "database_unavailable; retry after `Retry-After`",
}


@router.get(
    "/v1/reward-stores",
    response_model=RewardStores,
    summary="The reward stores the member may buy in",
    responses={
        **refusals(400, 401, 403, 404, 414, 503, described=_READ_REFUSALS),
        200: documented("The member's eligible stores, by id.", STORES_EXAMPLE),
    },
)
async def read_reward_stores(
    request: Request,
    principal: Annotated[Principal, Depends(read_principal)],
    member_id: BuyerQuery = None,
    locale: MemberLocaleQuery = None,
) -> RewardStores:
    """Configured stores open now, of the member's market, whose eligibility the member's
    profile meets: copy in the language asked, and how many offers the member is targeted by
    and may buy now."""
    whose = buyer_id(principal, member_id)
    now: datetime = request.app.state.clock()
    config = _config(request)
    buyer = await _buyer(request, whose)
    locale = _shown(locale, buyer)
    if buyer.ledger.status != "ACTIVE":
        return RewardStores(member_id=whose, locale=locale, reward_stores=[])
    for_sale = config.catalogue.for_sale(now)
    stores = []
    for reward_store in sorted(config.reward_stores.values(), key=lambda s: s.reward_store_id):
        if not store.is_listed_for(reward_store, buyer.offers, now):
            continue
        views = [
            (o, buyer_view(buyer, o, reward_store, now)) for o in sold_in(reward_store, for_sale)
        ]
        targeted = [(o, v) for o, v in views if v.targeted]
        stores.append(
            RewardStoreSummary(
                reward_store_id=reward_store.reward_store_id,
                market=reward_store.market,
                program_id=reward_store.program_id,
                category=reward_store.category.value,
                copy=_copy(reward_store.localized_copy, locale),
                available_until=reward_store.available_until,
                offers_for_member=len(targeted),
                offers_member_may_buy=sum(1 for _, v in targeted if v.may_buy),
                cheapest_points_cost=min(
                    (o.reward_store.points_cost for o, _ in targeted if o.reward_store),
                    default=None,
                ),
            )
        )
    return RewardStores(member_id=whose, locale=locale, reward_stores=stores)


@router.get(
    "/v1/reward-stores/{reward_store_id}/offers",
    response_model=StoreOffers,
    summary="The offers a reward store sells now, as the member sees them",
    responses={
        **refusals(
            400, 401, 403, 404, 414, 503,
            described=_READ_REFUSALS | {
                404: "not_found: no such member, or no such reward store (never configured, "
                "or withdrawn)",
            },
        ),
        200: documented("Its offers for sale now in the member's markets, by rank, each with "
                      "whether the member may buy it (a store the member may not buy in, or "
                      "closed, says why on each offer).",
                      STORE_OFFERS_EXAMPLE),
    },
)  # fmt: skip
async def read_store_offers(
    request: Request,
    reward_store_id: StorePath,
    principal: Annotated[Principal, Depends(read_principal)],
    member_id: BuyerQuery = None,
    locale: MemberLocaleQuery = None,
) -> StoreOffers:
    """Copy in the language asked, price, live window, and for the member: targeted, uses
    left, affordable, and whether a purchase would be accepted (else the reason)."""
    whose = buyer_id(principal, member_id)
    now: datetime = request.app.state.clock()
    config = _config(request)
    reward_store = config.reward_stores.get(reward_store_id)
    if reward_store is None or reward_store.withdrawn:
        raise NotFoundError(f"no reward store '{reward_store_id}'")
    buyer = await _buyer(request, whose)
    shown = _shown(locale, buyer)
    sold = [
        offer
        for offer in sold_in(reward_store, config.catalogue.for_sale(now))
        if offer.market in buyer.markets
    ]
    return StoreOffers(
        reward_store_id=reward_store_id,
        member_id=whose,
        locale=shown,
        offers=[_store_offer(offer, reward_store, buyer, shown, now) for offer in sold],
    )


def purchase_body(
    record: ServiceRecord, outcome: ServiceOutcome | None, issued: IssuedOffer | None
) -> Purchase:
    """The purchase as the API shows it: pending without an outcome."""
    asked = record.request
    return Purchase(
        command_id=record.command_id,
        member_id=record.member_id,
        request_event_id=record.request_event_id,
        status="pending" if outcome is None else "accepted" if outcome.accepted else "rejected",
        status_url=status_url(record.member_id, record.command_id),
        reward_store_id=asked["reward_store_id"],
        offer_id=asked["offer_id"],
        issued_offer=issued,
        ledger_event_log_id=outcome.ledger_event_log_id if outcome is not None else None,
        reason=outcome.reason if outcome is not None else None,
        detail=outcome.detail if outcome is not None else None,
        decided_at=outcome.decided_at if outcome is not None else None,
    )


_LOCATION = {"Location": {"description": "The status URL.", "schema": {"type": "string"}}}

_POST_RESPONSES: dict[int | str, Any] = {
    **refusals(
        400, 401, 403, 414, 503,
        described={
            400: "invalid_parameter: missing or invalid Idempotency-Key, a malformed store or "
            "offer id, or a staff token without member_id",
            403: "forbidden: a member token naming another member",
            503: "commands_unavailable (the request could not be written: retry with the same "
            "key) or database_unavailable; retry after `Retry-After`",
        },
    ),
    201: {**documented("Accepted: the points are debited and the offer is issued to the member.",
                     PURCHASE_EXAMPLE, Purchase), "headers": _LOCATION},
    202: {**documented("Written, not decided within the wait: read `status_url` (also in "
                     "`Location`) later.", PURCHASE_PENDING, Purchase), "headers": _LOCATION},
    409: {**documented("A repeat of a key already used with the same body: the original outcome "
                     "(accepted or rejected); nothing was written again.", PURCHASE_REJECTED,
                     Purchase), "headers": _LOCATION},
    422: documented(
        "Refused, nothing debited: `error` is the worker's stable reason (insufficient_points, "
        "not_eligible, limit_reached, offer_not_live, unknown_offer, unknown_member, "
        "member_merged) and `reason` its detail; or idempotency_key_reused: the key was used "
        "for another purchase by this member.",
        {"error": "insufficient_points", "reason": "CA_REWARDS: balance 120 < 300 requested"},
        ErrorBody,
    ),
}  # fmt: skip


@router.post(
    "/v1/reward-stores/{reward_store_id}/offers/{offer_id}/purchase",
    status_code=201,
    response_model=Purchase,
    summary="Buy a reward store's offer with points; waits a bounded time for the decision",
    responses=_POST_RESPONSES,
)
async def purchase_offer(
    request: Request,
    reward_store_id: StorePath,
    offer_id: OfferIdPath,
    command_id: CommandId,
    principal: Annotated[Principal, Depends(read_principal)],
    member_id: BuyerQuery = None,
) -> Any:
    """Spend the member's points on one instance of the offer. Retrying with the same
    Idempotency-Key is safe: it never writes twice, and answers 409 with the original."""
    whose = buyer_id(principal, member_id)
    app = request.app
    event = RewardStoreOfferPurchaseRequested(
        event_id=purchase_request_id(whose, command_id),
        occurred_at=app.state.clock(),
        command_id=command_id,
        member_id=whose,
        reward_store_id=reward_store_id,
        offer_id=offer_id,
        source=Source.APP,
    )
    submitted = await submit(
        app, _KIND, event, member_id=whose, command_id=command_id, outcome_command_id=command_id
    )
    outcome = submitted.outcome
    issued = None
    if outcome is not None and outcome.accepted:
        issued = await issued_settled(request, _KIND, whose, command_id)
    answer = purchase_body(submitted.record, outcome, issued)
    if outcome is None:
        return located(202, answer, answer.status_url)
    if submitted.repeat:
        return located(409, answer, answer.status_url)
    if not outcome.accepted:
        reason = outcome.reason or "UNKNOWN"
        raise ApiError(422, reason, outcome.detail or reason)
    return located(201, answer, answer.status_url)


@router.get(
    "/v1/members/{member_id}/reward-store-purchases/{command_id}",
    response_model=Purchase,
    summary="A reward-store purchase's state: decided (200) or not yet (202)",
    responses={
        **refusals(
            400, 401, 403, 404, 414, 503,
            described={
                403: "forbidden: a member token on another member's path",
                404: "not_found: this member never used that key for a purchase",
                503: "database_unavailable: retry after `Retry-After`",
            },
        ),
        200: documented("Decided: accepted (with the issued offer) or rejected (with the reason).",
                      PURCHASE_EXAMPLE),
        202: documented("Written, not decided yet: ask again.", PURCHASE_PENDING, Purchase),
    },
)  # fmt: skip
async def read_purchase(
    request: Request,
    member_id: MemberId,
    command_id: Annotated[ApiId, Path(description="The Idempotency-Key the purchase used.")],
) -> Any:
    record, outcome = await status(request.app, _KIND, member_id, command_id)
    if record is None:
        raise NotFoundError(f"member {member_id} never used key '{command_id}' for a purchase")
    issued = None
    if outcome is not None and outcome.accepted:
        issued = await issued_one(request, member_id, command_id=command_id)
    answer = purchase_body(record, outcome, issued)
    return located(202 if outcome is None else 200, answer, answer.status_url)
