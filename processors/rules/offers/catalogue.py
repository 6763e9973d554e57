"""The offers known to the engine, indexed so that an input looks only at offers that can
apply to it (docs/adr/0010-offer-engine.md).

Built from `loyalty.config.v1` in log order: `publish` replaces a definition (and opens it
again if it was closed), `extend` moves an end date (whether it may is `schedule`'s decision,
never this module's), `withdraw` retires an offer, `close` records that the engine closed it
(its total uses or budget spent): from then on it is no longer offered (`is_offered`), while a
purchase is still judged on it by the offer's agent, which answers every later use "spent".
A retired definition stays readable through `definition`, so a return can still take back
what the offer awarded. Liveness is `starts_at <= t < ends_at` in business time.

Indexes, per market: product keys (sku, gtin, subcategory, brand, category) for behaviours
that select products, "whole basket" for transaction behaviours that do not, activity kind,
and points redemption. Candidates come back sorted by (rank, offer_id), so evaluation never
depends on the order offers were published in. Per offer, built once per definition: each
behaviour's compiled selection, and whether a purchase alone decides that the offer is met
(`reach`), so that a basket that cannot reach its thresholds is passed over unjudged
(docs/adr/0031-hot-path-mechanics.md).
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.config import OfferPublished
from processors.contract.offer_definition import ActivationKind, BehaviourKind, BehaviourOperator
from processors.contract.transactions import TransactionLine
from processors.rules.offers.products import PRODUCT_KEYS, Selector, compile_behaviours
from processors.rules.offers.progress import is_accumulated, threshold

TRANSACTION_BEHAVIOURS = frozenset(
    {BehaviourKind.SPEND, BehaviourKind.QUANTITY, BehaviourKind.VISITS}
)
"""Behaviours a purchase makes progress on."""

ActivityKey = tuple[ActivityKind, str | None]
Key = TypeVar("Key")


@dataclass
class _MarketIndex:
    by_product: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    whole_basket: set[str] = field(default_factory=set)
    # Whole-basket offers a purchase alone decides, by the least spend or quantity of the
    # whole basket one of their behaviours needs, ascending: a basket holding less is cut.
    by_least: dict[BehaviourKind, list[tuple[Decimal, str]]] = field(default_factory=dict)
    by_activity: dict[ActivityKey, set[str]] = field(default_factory=dict)
    redemption: set[str] = field(default_factory=set)
    by_coupon: dict[str, set[str]] = field(default_factory=dict)

    def keys_of(
        self, offer: OfferPublished, selectors: Sequence[Selector | None], reach: Reach | None
    ) -> None:
        coupon = offer.activation.coupon_code
        if offer.activation.kind is ActivationKind.COUPON_CODE and coupon is not None:
            self.by_coupon.setdefault(coupon.upper(), set()).add(offer.offer_id)
        least = _least(reach)
        for behaviour, selector in zip(offer.behaviours, selectors, strict=True):
            if behaviour.kind in TRANSACTION_BEHAVIOURS:
                index_key = selector.index_key if selector is not None else None
                if index_key is None and least is None:
                    self.whole_basket.add(offer.offer_id)
                elif index_key is None:
                    assert least is not None
                    entries = self.by_least.setdefault(least[0], [])
                    if (least[1], offer.offer_id) not in entries:
                        insort(entries, (least[1], offer.offer_id))
                else:
                    key, values = index_key
                    for value in values:
                        self.by_product.setdefault((key, value), set()).add(offer.offer_id)
            elif behaviour.kind is BehaviourKind.ACTIVITY and behaviour.activity_kind is not None:
                activity = (behaviour.activity_kind, behaviour.activity_custom_name)
                self.by_activity.setdefault(activity, set()).add(offer.offer_id)
            elif behaviour.kind is BehaviourKind.POINTS_REDEMPTION:
                self.redemption.add(offer.offer_id)

    def drop(self, offer_id: str) -> None:
        _discard(self.by_product, offer_id)
        _discard(self.by_activity, offer_id)
        _discard(self.by_coupon, offer_id)
        self.whole_basket.discard(offer_id)
        self.redemption.discard(offer_id)
        for kind, entries in self.by_least.items():
            self.by_least[kind] = [e for e in entries if e[1] != offer_id]

    def within_reach(self, lines: Sequence[TransactionLine] | None) -> set[str]:
        """The offers `by_least` holds that a basket of `lines` may meet (every one without
        `lines`): its whole spend before any discount, or its whole quantity, reaches what
        they need."""
        ids: set[str] = set()
        for kind, entries in self.by_least.items():
            if lines is None:
                cut = len(entries)
            elif kind is BehaviourKind.SPEND:
                spend = Decimal(sum(line.amount_cents + line.discount_cents for line in lines))
                cut = bisect_right(entries, spend, key=_first)
            else:
                quantity = sum((line.quantity for line in lines), Decimal(0))
                cut = bisect_right(entries, quantity, key=_first)
            ids.update(offer_id for _, offer_id in entries[:cut])
        return ids


def _first(entry: tuple[Decimal, str]) -> Decimal:
    return entry[0]


def _least(reach: Reach | None) -> tuple[BehaviourKind, Decimal] | None:
    """A whole-basket spend or quantity an offer a purchase alone decides cannot be met
    without (its behaviours must all be met, or it has one); None when there is none."""
    if reach is None or (len(reach.needs) > 1 and reach.operator is not BehaviourOperator.ALL):
        return None
    for selector, kind, needed in reach.needs:
        if selector is None and kind in _MEASURED and needed is not None:
            return kind, needed
    return None


_MEASURED = frozenset({BehaviourKind.SPEND, BehaviourKind.QUANTITY})


@dataclass(frozen=True)
class Reach:
    """What a purchase must hold to meet an offer it alone decides (no behaviour keeps
    progress across causes): per behaviour, its compiled selection, its kind and its threshold
    (None: never met), combined by `operator` (`progress.is_met`'s rule)."""

    needs: tuple[tuple[Selector | None, BehaviourKind, Decimal | None], ...]
    operator: BehaviourOperator

    def __reduce__(self) -> tuple[type[Reach], tuple[object, ...]]:
        # Copied and pickled through its constructor (the console's preview copies the whole
        # configuration): compiled (ADR 41), a frozen dataclass refuses the field-by-field
        # rebuild `copy` and `pickle` otherwise use.
        return (Reach, (self.needs, self.operator))


def _discard(index: dict[Key, set[str]], offer_id: str) -> None:
    # Republishing and withdrawing are rare next to evaluations: a scan is fine here.
    for key in [k for k, ids in index.items() if offer_id in ids]:
        index[key].discard(offer_id)
        if not index[key]:
            del index[key]


def is_live(offer: OfferPublished, at: datetime) -> bool:
    """True when behaviour at `at` counts towards the offer (DESIGN.md §5.10)."""
    return offer.schedule.starts_at <= at < offer.schedule.ends_at


class Catalogue:
    """The published offers, with indexes by market, product, activity and redemption."""

    def __init__(self, offers: Iterable[OfferPublished] = ()) -> None:
        self._offers: dict[str, OfferPublished] = {}
        self._retired: dict[str, OfferPublished] = {}
        self._closed: dict[str, datetime] = {}
        self._selectors: dict[str, tuple[Selector | None, ...]] = {}
        self._reach: dict[str, Reach] = {}
        self._markets: dict[str, _MarketIndex] = {}
        for offer in offers:
            self.publish(offer)

    def __len__(self) -> int:
        return len(self._offers)

    def publish(self, offer: OfferPublished) -> None:
        """Add an offer, or replace an earlier definition of it as a whole."""
        self._unindex(offer.offer_id)
        self._retired.pop(offer.offer_id, None)
        self._closed.pop(offer.offer_id, None)
        self._offers[offer.offer_id] = offer
        selectors = compile_behaviours(offer)
        self._selectors[offer.offer_id] = selectors
        if not any(is_accumulated(b) for b in offer.behaviours):
            needs = tuple(
                (selector, b.kind, threshold(b))
                for b, selector in zip(offer.behaviours, selectors, strict=True)
            )
            self._reach[offer.offer_id] = Reach(needs, offer.behaviour_operator)
        index = self._markets.setdefault(offer.market, _MarketIndex())
        index.keys_of(offer, selectors, self._reach.get(offer.offer_id))

    def extend(self, offer_id: str, ends_at: datetime) -> None:
        """Move a live offer's end (DESIGN.md §5.11): `schedule` decides whether it may."""
        offer = self._offers.get(offer_id)
        if offer is None:
            return
        schedule = offer.schedule.model_copy(update={"ends_at": ends_at})
        self._offers[offer_id] = offer.model_copy(update={"schedule": schedule})

    def withdraw(self, offer_id: str) -> None:
        """Retire an offer: nothing counts towards it any more; what it awarded stands."""
        offer = self._offers.get(offer_id)
        if offer is None:
            return
        self._unindex(offer_id)
        del self._offers[offer_id]
        self._retired[offer_id] = offer

    def close(self, offer_id: str, at: datetime) -> None:
        """Record that the engine closed the offer at `at` (business time)."""
        if offer_id in self._offers:
            self._closed.setdefault(offer_id, at)

    def closed_at(self, offer_id: str) -> datetime | None:
        """When the engine closed the offer; None while it is open."""
        return self._closed.get(offer_id)

    def is_offered(self, offer_id: str, at: datetime) -> bool:
        """False once the offer was closed at or before `at`: what is shown or previewed (the
        feeds, cart evaluation) leaves it out."""
        closed = self._closed.get(offer_id)
        return closed is None or at < closed

    def get(self, offer_id: str) -> OfferPublished | None:
        """The offer's current definition; None when unknown or withdrawn."""
        return self._offers.get(offer_id)

    def definition(self, offer_id: str) -> OfferPublished | None:
        """The offer's last definition, withdrawn or not (returns re-price past awards)."""
        return self._offers.get(offer_id) or self._retired.get(offer_id)

    def selectors(self, offer_id: str) -> tuple[Selector | None, ...]:
        """Each behaviour's compiled product selection (None: every line)."""
        selectors = self._selectors.get(offer_id)
        if selectors is None:
            offer = self.definition(offer_id)
            selectors = compile_behaviours(offer) if offer is not None else ()
        return selectors

    def reach(self, offer_id: str) -> Reach | None:
        """What a purchase must hold to meet the live offer when no behaviour of it keeps
        progress across causes (visits and activities always do): one purchase alone meets it
        or does not, and a plan of it that is not met keeps nothing. None for the others."""
        return self._reach.get(offer_id)

    def for_transaction(
        self,
        market: str,
        at: datetime,
        lines: Sequence[TransactionLine],
        *,
        within_reach: bool = False,
    ) -> list[OfferPublished]:
        """Offers live at `at` in `market` that select a line of the basket or the whole
        basket: candidates only, each still to be judged. `within_reach`: less the
        whole-basket offers the basket alone decides and cannot meet (its whole spend or
        quantity below what they need), which evaluating it passes over; targeting, decided
        on any behaviour towards an offer, asks for every candidate."""
        index = self._markets.get(market)
        if index is None:
            return []
        ids = index.whole_basket | index.within_reach(lines if within_reach else None)
        for line in lines:
            for key in PRODUCT_KEYS:
                value = getattr(line, key)
                if value is not None:
                    ids |= index.by_product.get((key, value), set())
        return self._live(ids, at)

    def for_activity(
        self, markets: Collection[str], at: datetime, activity: ActivityRecorded
    ) -> list[OfferPublished]:
        """Offers live at `at` in the member's markets with a behaviour on this activity."""
        custom = activity.custom_name if activity.kind is ActivityKind.CUSTOM else None
        ids: set[str] = set()
        for market in markets:
            index = self._markets.get(market)
            if index is not None:
                ids |= index.by_activity.get((activity.kind, custom), set())
        return self._live(ids, at)

    def for_redemption(self, markets: Collection[str], at: datetime) -> list[OfferPublished]:
        """Offers live at `at` in these markets with a points-redemption behaviour."""
        ids: set[str] = set()
        for market in markets:
            index = self._markets.get(market)
            if index is not None:
                ids |= index.redemption
        return self._live(ids, at)

    def for_coupon(self, market: str, at: datetime, code: str) -> list[OfferPublished]:
        """Offers live at `at` in `market` that `code` (as codes compare: upper-cased)
        activates: their own coupon code (`ActivationKind.COUPON_CODE`)."""
        index = self._markets.get(market)
        if index is None:
            return []
        return self._live(index.by_coupon.get(code, set()), at)

    def for_sale(self, at: datetime) -> list[OfferPublished]:
        """Offers live at `at` that a reward store sells (seed 002), by rank then id; a closed
        one is sold no more."""
        sold = (
            i
            for i, o in self._offers.items()
            if o.reward_store is not None and self.is_offered(i, at)
        )
        return self._live(sold, at)

    def _live(self, ids: Iterable[str], at: datetime) -> list[OfferPublished]:
        offers = [self._offers[i] for i in ids if is_live(self._offers[i], at)]
        return sorted(offers, key=lambda offer: (offer.rank, offer.offer_id))

    def _unindex(self, offer_id: str) -> None:
        offer = self._offers.get(offer_id)
        if offer is not None and offer.market in self._markets:
            self._markets[offer.market].drop(offer_id)
        self._selectors.pop(offer_id, None)
        self._reach.pop(offer_id, None)
