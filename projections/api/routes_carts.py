"""`POST /v1/carts/evaluate`: the POS asks what a cart would get, before it is paid.

The handler is an adapter around `processors.rules.offers.evaluate.evaluate_cart`, the same
rule the worker runs on a completed transaction (ADR 10), so a preview and the real checkout
cannot disagree on the same state and configuration. It:
1. checks the caller holds a till (POS) or staff token (`auth`);
2. fills what the cart leaves out: its time (the request's: the only clock read on this path)
   and its ids;
3. takes the configuration (programmes, offer catalogue) from the app's `ConfigSource`, and
   answers 503 while that is not caught up with the config topic;
4. for a member, rebuilds their offer state from Postgres (`cart_queries`), 404 if the member
   was never enrolled, 409 if they were merged into another; with the offer uses their
   code reservations hold for their baskets when the cart carries a code (ADR 37);
5. evaluates, and turns the evaluation into integers per line, per programme and per offer;
6. checks the cart's promo codes, with those linked to the member added as the worker adds
   them, with the worker's own rule (`rules.codes.checkout`: a code that unlocks an offer
   activates it for this cart, ADR 37) and, when the till asks
   (`reserve`), reserves them and waits for the promotion's agent (`code_checks`,
   docs/adr/0026-promo-code-api.md), then evaluates again without the offers whose code was
   not reserved; too many invalid codes from one caller answer 429;
7. when the till asks (`reserve`), reserves each use of a discount offer with a total-uses
   limit and evaluates again without those not reserved (`offer_reservations`,
   docs/adr/0030-discount-offer-total-uses.md).

Except for a reservation asked for, nothing is written: the pool's connections are read-only,
the rules work on a copy of the state, and the events the evaluation would emit are dropped
(docs/adr/0011-cart-evaluation.md).
Evaluation runs on the event loop's thread, between two steps of the config feed, so the
catalogue never changes under it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Request
from psycopg import AsyncConnection

from processors.contract.base import Event
from processors.contract.config import ProgramConfigured
from processors.contract.internal import PromoCodeUseRequested
from processors.contract.offers import OfferCompleted, OfferProgressed
from processors.contract.transactions import TransactionCompleted
from processors.rules.codes import checkout, link
from processors.rules.codes.promotions import normalised
from processors.rules.codes.uses import FORGOTTEN_AFTER
from processors.rules.ledger import policy
from processors.rules.member import Config
from processors.rules.offers import evaluate as offers
from processors.rules.offers.catalogue import Catalogue
from processors.rules.offers.discounts import DiscountOffer, basket_cents
from processors.rules.offers.state import MemberOffers
from processors.rules.rewards import till
from projections.api import cart_queries, code_checks, offer_reservations
from projections.api.auth import Principal, till_principal
from projections.api.cart_schemas import (
    CartEvaluation,
    CartRequest,
    OfferReservation,
    RewardCheck,
)
from projections.api.code_schemas import CodeCheck
from projections.api.errors import (
    ApiError,
    BadParameterError,
    MemberMergedError,
    NotFoundError,
    refusals,
)
from projections.api.throttle import Throttle, caller_keys

router = APIRouter(prefix="/v1/carts", tags=["carts"])


class ConfigSource(Protocol):
    """Where the API finds the configuration: a `processors.config_feed.ConfigFeed`, or any
    object with the same three members (tests pass a fixed one)."""

    @property
    def config(self) -> Config: ...

    @property
    def ready(self) -> asyncio.Event: ...

    @property
    def status(self) -> str: ...


@dataclass
class FixedConfig:
    """A configuration given whole, ready at once (tests, benchmarks without a broker)."""

    config: Config = field(default_factory=Config)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.ready.set()

    @property
    def status(self) -> str:
        return "fixed configuration"


@dataclass
class NoConfig:
    """No configuration at all: the cart endpoint answers 503 (an app built without one)."""

    config: Config = field(default_factory=Config)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def status(self) -> str:
        return "this API process was started without a config source"


class ConfigUnavailableError(ApiError):
    """503: the configuration is not known yet (the config feed is catching up, or failing)."""

    def __init__(self, reason: str) -> None:
        super().__init__(503, "config_unavailable", reason, headers={"Retry-After": "1"})


def _connection(request: Request) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
    # The statement pool (autocommit, read-only): each read here is one statement, so one
    # round trip, where the read pool's transaction added a BEGIN and a ROLLBACK.
    pool = request.app.state.statement_pool
    return pool.connection()  # type: ignore[no-any-return]


async def _find_member(request: Request, member_id: str) -> cart_queries.MemberRow | None:
    async with _connection(request) as conn:
        return await cart_queries.find_member(conn, member_id)


@router.post(
    "/evaluate",
    summary="Discounts and points preview for a cart; no state change",
    responses=refusals(
        400,
        401,
        403,
        404,
        409,
        414,
        429,
        503,
        described={
            400: "invalid_parameter: a malformed cart; `parameter` names the field (`lines.0.sku`, "
            "`transaction_id` when `reserve` is asked without one, or `currency` when the "
            "market's programmes keep another one)",
            403: "forbidden: cart evaluation needs a till (POS) or staff token",
            404: "not_found: the cart's member was never enrolled",
            409: "member_merged: the cart's member was merged into another; use the survivor",
            429: "too_many_requests: more invalid promo codes in the last minute from this "
            "member, token or address than allowed; retry after `Retry-After`",
            503: "config_unavailable: the offer configuration is not loaded yet; "
            "commands_unavailable: a reservation could not be written (evaluate again); or "
            "database_unavailable",
        },
    ),
)
async def evaluate_cart(
    request: Request,
    body: CartRequest,
    principal: Annotated[Principal, Depends(till_principal)],
) -> CartEvaluation:
    """What the cart would get at checkout: per-line discounts with the offer that gave each,
    cart-level discounts, the points it would earn per programme (base earn and each offer's
    award), the offers it would complete or move on, and whether each promo code applies.
    Nothing is recorded, unless `reserve` asks to reserve the promo codes and the uses of
    discount offers with a total-uses limit."""
    # The adapter's clock and ids: the rules never read either.
    now: datetime = request.app.state.clock()
    if body.reserve and body.transaction_id is None:
        raise BadParameterError(
            "transaction_id", "a reservation is for a basket: give its transaction_id"
        )
    throttle: Throttle = request.app.state.code_throttle
    address = request.client.host if request.client is not None else None
    keys = caller_keys(member_id=body.member_id, subject=principal.subject, address=address)
    if body.promo_codes:
        distinct = len({normalised(code) for code in body.promo_codes})
        if distinct > throttle.limit:
            raise BadParameterError(
                "promo_codes", f"at most {throttle.limit} distinct promo codes a cart"
            )
        throttle.check(keys, now, route="/v1/carts/evaluate", asking=distinct)
    cart = body.transaction(event_id=f"cart-{uuid.uuid4().hex}", occurred_at=now)
    source: ConfigSource = request.app.state.config_source
    if not source.ready.is_set():
        raise ConfigUnavailableError(f"the offer configuration is not loaded yet: {source.status}")
    config = source.config
    if not config.runs_in(cart.market):  # a typing error, or a market not configured yet
        raise BadParameterError("market", f"no programme or promotion runs in market {cart.market}")
    wrong = policy.currency_refusal(config.programs.values(), cart.market, cart.currency)
    if wrong is not None:  # as the worker refuses the purchase: a preview could not hold
        raise BadParameterError("currency", wrong)
    state = None
    if cart.member_id is not None:
        # The member's offers and the codes linked to them, read at once: two round trips
        # of wall time become one (a code linked to a member who is not there is not used).
        row, linked = await asyncio.gather(
            _find_member(request, cart.member_id),
            request.app.state.code_store.linked_codes(cart.member_id, cart.occurred_at),
        )
        if row is None:
            raise NotFoundError(f"no member '{cart.member_id}'")
        if row.status == "MERGED":
            instead = "evaluate the cart for the survivor"
            raise MemberMergedError(cart.member_id, row.merged_into, instead)
        state = cart_queries.member_offers(row, config.catalogue)
        # Codes linked to the member apply at their next checkout untyped, as the worker adds
        # them to the purchase (ADR 23): the till sees and reserves them too (ADR 37).
        cart = link.carrying(cart, linked)
        if cart.promo_codes:  # what the member's reservations hold, only a code can open
            since = now - FORGOTTEN_AFTER
            holding = await request.app.state.code_store.member_reservations(cart.member_id, since)
            cart_queries.with_held_uses(state, holding, config.promotions, cart.market)
    judged = checkout.judge(cart, config.promotions, config.catalogue, state)
    # Rewards and cart discount codes the till takes beside the offers: the cart's points are
    # judged net of those that apply, as the purchase it sends will be (ADR 11, addendum).
    held = await _rewards_held(request, cart, state)
    asking = _asking(judged.events)
    rewards = _reward_checks(cart, held, _left(cart, asking))
    taken = _taken(judged, [code.code for code in asking], rewards)
    evaluation = offers.evaluate_cart(state, cart, *_rules(config), judged.unlocks, taken)
    reservations: list[OfferReservation] = []
    if body.reserve and state is not None and evaluation.waiting:
        app = request.app
        reservations = await offer_reservations.reserve(
            app.state.code_store, app.state.command_sink, evaluation.waiting,
            transaction_id=cart.transaction_id, now=now, ttl=app.state.reservation_ttl,
            wait=app.state.decision_wait, wakeups=app.state.wakeups,
        )  # fmt: skip
        if offer_reservations.without_unreserved(state, reservations):
            evaluation = offers.evaluate_cart(state, cart, *_rules(config), judged.unlocks, taken)
    outcomes = checkout.outcomes(judged, cart, evaluation.code_uses, state, *_rules(config))
    checked = code_checks.check(outcomes)
    if body.transaction_id is not None:  # a basket a till may have reserved for
        checked = await code_checks.reserved_before_the_end(
            request.app.state.code_store, outcomes, checked
        )
    if not body.reserve and any(isinstance(c, PromoCodeUseRequested) for c in checked):
        checked = await code_checks.spent_already(request.app.state.code_store, checked, now)
    invalid = sum(
        1 for c in checked if isinstance(c, CodeCheck) and c.reason in code_checks.INVALID_CODE
    )
    throttle.count(keys, now, route="/v1/carts/evaluate", count=invalid)
    uses = [c for c in checked if isinstance(c, PromoCodeUseRequested)]
    reserved: dict[str, CodeCheck] = {}
    if body.reserve and uses:
        app = request.app
        reserved = await code_checks.reserve(
            app.state.code_store, app.state.command_sink, uses, now=now,
            ttl=app.state.reservation_ttl, wait=app.state.decision_wait,
            wakeups=app.state.wakeups, leases=app.state.code_leases, clock=app.state.clock,
        )  # fmt: skip
    unlocking = {u.code: u.offer_use.offer_id for u in uses if u.offer_use is not None}
    codes = [
        (
            c if isinstance(c, CodeCheck) else reserved.get(c.code) or code_checks.applies(c)
        ).model_copy(update={"offer_id": unlocking.get(c.code)})
        for c in checked
    ]
    # An offer a code unlocks applies only if its code was reserved (pending: not), as an
    # offer's use not reserved is left out (ADR 30): the till is never told more (ADR 37).
    unreserved = {
        u.offer_use.offer_id
        for u in uses
        if body.reserve and u.offer_use is not None and reserved[u.code].status != "reserved"
    }
    told = [c.code for c in codes if c.status in _APPLYING]
    applying = _taken(judged, told, rewards)
    if unreserved or applying != taken:
        kept = {o: u for o, u in judged.unlocks.items() if o not in unreserved}
        evaluation = offers.evaluate_cart(state, cart, *_rules(config), kept, applying)
    # The offers' discounts first, then the codes', then the rewards', as the worker books
    # them (`checkout.after_offers`): together never more than the basket.
    took = sum(discount.cents for discount in evaluation.discounts)
    codes, left = _after_offers(codes, basket_cents(cart.lines) - took)
    rewards = _reward_checks(cart, held, left)
    if judged.coupons:  # an offer's own coupon code: its offer's outcome, in the cart's order
        order = checkout.cart_order(cart)
        codes += code_checks.coupons(judged.coupons, evaluation.events)
        codes.sort(key=lambda c: order.get(c.code, len(order)))
    completed = {e.offer_id for e in evaluation.events if isinstance(e, OfferCompleted)}
    bought = till.bought_unused(state, cart, completed) if state is not None else []
    return answer(cart, evaluation).model_copy(
        update={
            "promo_codes": codes,
            "offer_reservations": reservations,
            "rewards": [reward_answer(check, cart) for check in [*rewards, *bought]],
        }
    )


_APPLYING = ("applies", "reserved")
"""A code's statuses whose discount the till takes."""


def _asking(judged: Sequence[Event]) -> list[PromoCodeUseRequested]:
    """The codes the till would be told apply (`code_checks.check`), before any reservation."""
    return [e for e in judged if isinstance(e, PromoCodeUseRequested) and e.ended_at is None]


def _taken(
    judged: checkout.Judged, codes: Sequence[str], rewards: Sequence[till.TokenCheck]
) -> list[DiscountOffer]:
    """The discounts beside the offers' the till takes: those of the cart discount `codes`
    that apply, then those of the rewards that apply."""
    taken = [judged.discounts[code] for code in codes if code in judged.discounts]
    return taken + [
        offer
        for check in rewards
        if check.applies and check.held is not None and (offer := till.discount_of(check.held))
    ]


async def _rewards_held(
    request: Request, cart: TransactionCompleted, state: MemberOffers | None
) -> dict[str, till.Held | None]:
    """The granted rewards of the cart's redemption tokens, in its order (None: no granted
    reward has the token). A reward-store offer the member bought is an offer's token:
    `offers_applied` shows it."""
    bought = state.issued if state is not None else {}
    tokens = [t for t in dict.fromkeys(cart.redemption_tokens) if t not in bought]
    if not tokens:
        return {}
    async with _connection(request) as conn:
        held = await cart_queries.held_rewards(conn, tokens, cart.member_id)
    return {token: held.get(token) for token in tokens}


def _reward_checks(
    cart: TransactionCompleted, held: dict[str, till.Held | None], left: int
) -> list[till.TokenCheck]:
    """The till's judgement of each of the cart's rewards, in its order (ADR 20), at the
    basket's time as the worker judges it, each taking at most what the codes the till takes
    and the rewards before it `left` of the basket."""
    return till.check_in_order(
        held,
        member_id=cart.member_id,
        lines=cart.lines,
        at=cart.occurred_at,
        gross=False,
        left=left,
    )


def _after_offers(codes: list[CodeCheck], left: int) -> tuple[list[CodeCheck], int]:
    """The codes the till takes (applying or reserved), each at most what the offers and the
    codes before it `left` of the basket (`checkout.spend_after`), and what they all leave."""
    taking = [n for n, c in enumerate(codes) if c.status in _APPLYING]
    spent, left = checkout.spend_after([codes[n].discount_cents for n in taking], left)
    capped = list(codes)
    for n, cents in zip(taking, spent, strict=True):
        if cents != capped[n].discount_cents:
            capped[n] = capped[n].model_copy(update={"discount_cents": cents})
    return capped, left


def _left(cart: TransactionCompleted, codes: Sequence[PromoCodeUseRequested | CodeCheck]) -> int:
    """What the cart discount `codes` the till takes leave of the basket for its rewards."""
    return basket_cents(cart.lines) - sum(code.discount_cents for code in codes)


def _rules(config: Config) -> tuple[Catalogue, dict[str, ProgramConfigured]]:
    return config.catalogue, config.programs


def reward_answer(check: till.TokenCheck, cart: TransactionCompleted) -> RewardCheck:
    """A token's judgement (`till.check`) as the answer shows it: a reward that is not the cart
    member's is not described."""
    held = check.held
    mine = held is not None and held.member_id == cart.member_id
    return RewardCheck(
        token=check.token, status="applies" if check.applies else "refused",
        granted_reward_id=held.granted_reward_id if mine and held else None,
        reward_id=held.reward_id if mine and held else None,
        discount_cents=check.discount_cents, reason=check.reason, detail=check.detail,
    )  # fmt: skip


def answer(cart: TransactionCompleted, evaluation: offers.CartEvaluation) -> CartEvaluation:
    """The evaluation as the response body: integers per line, per programme, per offer.

    Built as plain values and validated once, as a whole: a model built per line, discount and
    behaviour cost ~4 µs each, ~120 a cart (0.9 ms of a 12-line cart, half the rule's own)."""
    by_line: dict[str, list[dict[str, Any]]] = {line.line_id: [] for line in cart.lines}
    cart_totals: dict[str, int] = {}
    for discount in evaluation.discounts:
        by_line[discount.line_id].append(
            {"offer_id": discount.offer_id, "cents": discount.cents,
             "cart_level": discount.cart_level}
        )  # fmt: skip
        if discount.cart_level:
            cart_totals[discount.offer_id] = cart_totals.get(discount.offer_id, 0) + discount.cents
    lines = []
    for line in cart.lines:
        item = sum(d["cents"] for d in by_line[line.line_id] if not d["cart_level"])
        shared = sum(d["cents"] for d in by_line[line.line_id] if d["cart_level"])
        lines.append(
            {
                "line_id": line.line_id,
                "sku": line.sku,
                "amount_cents": line.amount_cents,
                "item_discount_cents": item,
                "cart_discount_cents": shared,
                "net_amount_cents": line.amount_cents - item - shared,
                "discounts": by_line[line.line_id],
            }
        )
    offer_points: dict[str, int] = {}
    for award in evaluation.awards:
        offer_points[award.program_id] = offer_points.get(award.program_id, 0) + award.points
    points = []
    for program_id in sorted(evaluation.base_points.keys() | offer_points.keys()):
        base, bonus = evaluation.base_points.get(program_id, 0), offer_points.get(program_id, 0)
        points.append(
            {
                "program_id": program_id,
                "base_points": base,
                "offer_points": bonus,
                "total_points": base + bonus,
            }
        )
    before = sum(line.amount_cents for line in cart.lines)
    discount_total = sum(d.cents for d in evaluation.discounts)
    return CartEvaluation.model_validate(
        {
            "member_id": cart.member_id,
            "transaction_id": cart.transaction_id,
            "occurred_at": cart.occurred_at,
            "market": cart.market,
            "currency": cart.currency,
            "lines": lines,
            "cart_discounts": [{"offer_id": o, "cents": c} for o, c in cart_totals.items()],
            "total_before_cents": before,
            "total_discount_cents": discount_total,
            "total_after_cents": before - discount_total,
            "points": points,
            "total_points": sum(p["total_points"] for p in points),
            "offers_applied": [
                {
                    "offer_id": event.offer_id,
                    "program_id": event.program_id,
                    "use_number": event.use_number,
                    "multiples": event.multiples,
                    "tier": event.tier,
                    "points": event.points_awarded,
                    "discount_cents": event.discount_cents,
                }
                for event in evaluation.events
                if isinstance(event, OfferCompleted)
            ],
            "offers_progressed": [
                {
                    "offer_id": event.offer_id,
                    "use_number": event.use_number,
                    "progress": [
                        {
                            "behaviour_index": p.behaviour_index,
                            "metric": p.metric.value,
                            "progress": str(p.progress),
                            "threshold": str(p.threshold),
                        }
                        for p in event.progress
                    ],
                }
                for event in evaluation.events
                if isinstance(event, OfferProgressed)
            ],
        }
    )
