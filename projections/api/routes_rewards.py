"""`GET /v1/rewards` (the catalogue) and `GET /v1/members/{id}/rewards` (the wallet).

The catalogue is anonymous or member-scoped: without a token it is what anyone sees; with a
member token (or `member_id` with a staff token) each reward also says whether that member
is eligible and can afford it. A member token reads only its own view (403 for another
`member_id`), as everywhere (`auth`). Only rewards for sale now are listed:
`available_from <= now < available_until`, with a points cost, in the market asked for.

Copy: the language asked for (`locale`, e.g. `fr` or `fr-CA`: its language part), else
English, which every reward has (the contract requires en and fr), else the first locale
there is (`locales.pick`, shared with the offer feeds). Stock: `out` when nothing is left,
`low` when fewer than `LOW_STOCK_BELOW` are, else `available` (also when the reward has no
limit).

Owns the endpoints' behaviour; the SQL is the `RewardStore`'s.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from processors.contract.enrolments import MemberProfile
from processors.contract.offer_definition import TargetingCriterion
from processors.rules.offers import targeting
from processors.rules.offers.state import TIER_ATTRIBUTE, MemberOffers
from projections.api.auth import MemberId, Principal, Role, read_optional_principal
from projections.api.errors import (
    BadParameterError,
    ForbiddenError,
    NotFoundError,
    UnauthorizedError,
    refusals,
)
from projections.api.identifiers import ApiId
from projections.api.locales import MarketQuery, MemberLocaleQuery, for_member, pick
from projections.api.reward_schemas import (
    Catalogue,
    CatalogueReward,
    GrantedStatus,
    MemberView,
    RewardCopy,
    Stock,
    StockState,
    Wallet,
    WalletPageInfo,
    WalletReward,
)
from projections.api.reward_store import CatalogueReward as CatalogueRow
from projections.api.reward_store import (
    GrantedReward,
    MemberStanding,
    RewardStore,
    WalletCursor,
)
from projections.api.views import parse_instant

router = APIRouter(tags=["rewards"])

LOW_STOCK_BELOW = 10
"""A reward with fewer than this many codes or grants left shows as `low`."""
WALLET_PAGE_DEFAULT, WALLET_PAGE_MAX = 20, 100

_CURSOR_SEPARATOR = "|"


def copy_in(localized: dict[str, dict[str, Any]], locale: str) -> RewardCopy:
    """The copy in `locale`'s language, else in English, else in the first locale there is."""
    shown = pick(localized, locale)
    return RewardCopy(locale=shown, **localized[shown])


def stock_of(reward: CatalogueRow) -> Stock:
    """What is left of the reward for everyone: its codes, its total grants, the smaller."""
    left = []
    if reward.uses_code_stock:
        left.append(reward.codes_stocked - reward.codes_given)
    if reward.grants_total_max is not None:
        left.append(reward.grants_total_max - reward.grants)
    if not left:
        return Stock(state="available", remaining=None)
    remaining = max(0, min(left))
    state: StockState = (
        "out" if remaining == 0 else "low" if remaining < LOW_STOCK_BELOW else "available"
    )
    return Stock(state=state, remaining=remaining)


def member_view(reward: CatalogueRow, standing: MemberStanding, now: datetime) -> MemberView:
    """Whether the member may buy the reward (active, its programme and market, its profile
    criteria: `redeem.unmet`'s rule on what the projection knows) and whether their balance
    covers it."""
    balance = (standing.balances or {}).get(reward.program_id, 0)
    eligible = (
        standing.status == "ACTIVE"
        and reward.program_id in standing.program_ids
        and (not standing.markets or reward.market in standing.markets)
        and _meets_profile_criteria(reward, standing, now)
    )
    return MemberView(eligible=eligible, affordable=balance >= reward.points_cost, balance=balance)


def _meets_profile_criteria(reward: CatalogueRow, standing: MemberStanding, now: datetime) -> bool:
    criteria = [TargetingCriterion.model_validate(c) for c in reward.eligibility or ()]
    if not criteria:
        return True
    profile = MemberProfile.model_validate(standing.profile) if standing.profile else None
    facts = MemberOffers(
        member_id=standing.member_id, markets=list(standing.markets),
        programs=list(standing.program_ids), profile=profile,
        tier=profile.attributes.get(TIER_ATTRIBUTE) if profile is not None else None,
    )  # fmt: skip
    return targeting.meets_on_profile(criteria, facts, now)


def viewer(principal: Principal | None, member_id: str | None) -> str | None:
    """Whose view the catalogue is: the member token's own, staff's `member_id`, or nobody."""
    if principal is None:
        if member_id is not None:
            raise UnauthorizedError("a member's view of the catalogue needs a bearer token")
        return None
    if principal.role is Role.STAFF:
        return member_id
    if member_id is not None and member_id != principal.subject:
        raise ForbiddenError("a member token reads only its own member's data")
    return principal.subject


ViewerQuery = Annotated[
    ApiId | None,
    Query(
        description="Staff only: whose view (eligible, affordable). A member token always "
        "gets its own."
    ),
]
CursorQuery = Annotated[str | None, Query(description="`page.next_cursor` of the previous page.")]
StatusQuery = Annotated[GrantedStatus | None, Query(description="Only rewards in this state.")]


def _store(request: Request) -> RewardStore:
    store: RewardStore = request.app.state.reward_store
    return store


@router.get(
    "/v1/rewards",
    summary="The reward catalogue of a market, as anyone or as one member sees it",
    responses=refusals(
        400,
        401,
        403,
        414,
        503,
        described={
            401: "unauthorized: an Authorization header that holds no valid token, or "
            "`member_id` without a token",
            403: "forbidden: a member token asking for another member's view",
            503: "database_unavailable: retry after `Retry-After`",
        },
    ),
)
async def read_catalogue(
    request: Request,
    market: MarketQuery,
    principal: Annotated[Principal | None, Depends(read_optional_principal)],
    locale: MemberLocaleQuery = None,
    member_id: ViewerQuery = None,
) -> Catalogue:
    """Rewards for sale now in `market`: copy, cost, availability and stock; for a member,
    also whether they are eligible and can afford each."""
    whose = viewer(principal, member_id)
    store = _store(request)
    now: datetime = request.app.state.clock()
    rows = await store.catalogue(market, now)
    standing = await store.standing(whose) if whose is not None else None
    preferred = (standing.profile or {}).get("preferred_locale") if standing else None
    locale = for_member(locale, preferred if isinstance(preferred, str) else None)
    rewards = [
        CatalogueReward(
            reward_id=row.reward_id,
            program_id=row.program_id,
            market=row.market,
            points_cost=row.points_cost,
            copy=copy_in(row.localized_copy, locale),
            available_from=row.available_from,
            available_until=row.available_until,
            granted_valid_days=row.granted_valid_days,
            grants_per_member_max=row.grants_per_member_max,
            uses_code_stock=row.uses_code_stock,
            discount=row.discount,
            stock=stock_of(row),
            member=member_view(row, standing, now) if standing is not None else None,
        )
        for row in rows
    ]
    return Catalogue(market=market, locale=locale, member_id=whose, rewards=rewards)


def wallet_reward(row: GrantedReward, now: datetime) -> WalletReward:
    """A wallet row as the API shows it."""
    usable = row.status == "ISSUED" and (row.expires_at is None or now < row.expires_at)
    return WalletReward(
        granted_reward_id=row.granted_reward_id,
        reward_id=row.reward_id,
        status=row.status,  # type: ignore[arg-type]  # the table's CHECK holds it to these four
        is_usable=usable,
        reason=row.reason,
        code=row.code,
        redemption_token=row.redemption_token,
        expires_at=row.expires_at,
        granted_at=row.granted_at,
        closed_at=row.closed_at,
        program_id=row.program_id,
        points_spent=row.points_spent,
        command_id=row.command_id,
        offer_id=row.offer_id,
        challenge_id=row.challenge_id,
    )


def encode_wallet_cursor(last: GrantedReward) -> str:
    """The opaque cursor of the page after `last`."""
    raw = f"{last.granted_at.isoformat()}{_CURSOR_SEPARATOR}{last.granted_reward_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_wallet_cursor(cursor: str) -> WalletCursor:
    """Where a cursor continues; 400 for anything this API did not issue."""
    refusal = BadParameterError("cursor", "is not a cursor returned by this API (use next_cursor)")
    if not cursor or len(cursor) > 400:
        raise refusal
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise refusal from None
    at, separator, granted_reward_id = raw.partition(_CURSOR_SEPARATOR)
    if not separator or not granted_reward_id or not granted_reward_id.isprintable():
        raise refusal
    try:
        return parse_instant("cursor", at), granted_reward_id
    except BadParameterError:
        raise refusal from None


@router.get(
    "/v1/members/{member_id}/rewards",
    summary="The member's granted rewards (the wallet), newest first",
    responses=refusals(
        400,
        401,
        403,
        404,
        414,
        503,
        described={
            403: "forbidden: a member token on another member's path",
            404: "not_found: no such member (never enrolled, nothing granted)",
            503: "database_unavailable: retry after `Retry-After`",
        },
    ),
)
async def read_wallet(
    request: Request,
    member_id: MemberId,
    limit: Annotated[
        int, Query(ge=1, le=WALLET_PAGE_MAX, description="Rewards per page, at most 100.")
    ] = WALLET_PAGE_DEFAULT,
    cursor: CursorQuery = None,
    status: StatusQuery = None,
) -> Wallet:
    """One page of the member's rewards with status, code or token, expiry and why each was
    granted (keyset pagination: stable while rewards are added)."""
    after = decode_wallet_cursor(cursor) if cursor is not None else None
    page = await _store(request).wallet(member_id, limit=limit, after=after, status=status)
    if page is None:
        raise NotFoundError(f"no member '{member_id}'")
    now: datetime = request.app.state.clock()
    rewards = [wallet_reward(row, now) for row in page.rewards]
    next_cursor = encode_wallet_cursor(page.rewards[-1]) if page.has_more else None
    return Wallet(
        member_id=member_id,
        page=WalletPageInfo(limit=limit, has_more=page.has_more, next_cursor=next_cursor),
        rewards=rewards,
    )
