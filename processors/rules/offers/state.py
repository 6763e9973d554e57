"""What the offer rules keep about one member (docs/adr/0010-offer-engine.md): the member facts
offers need, per offer the progress of the current use and the uses completed, and what each
recent transaction contributed, so a return can be re-evaluated. Serialisable (pydantic) for
the processor's tables.

Bounded: purchases, completed uses and other causes are forgotten after the returns window
(`policy.RETURNS_ACCEPTED_DAYS`), judged on the newest business time seen, never on a clock;
accumulated progress keeps one dated contribution per cause of the current use only, pruned by
the behaviour's rolling window. Per-offer entries of offers that ended before the window are
dropped by `retention` (it knows the offers' ends; this state does not).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from processors.contract.enrolments import MemberProfile
from processors.contract.transactions import TransactionCompleted
from processors.rules.deferred import Deferred
from processors.rules.ledger.policy import returns_horizon
from processors.rules.selection import ProductHierarchy

TIER_ATTRIBUTE = "tier"
"""The profile attribute holding the member's programme tier (ProgramTier docstring)."""


class Contribution(BaseModel):
    """Progress one cause (a transaction, activity or redemption) added to the current use."""

    at: datetime
    value: Decimal
    cause: str  # transaction_id, or the event_id of an activity or redemption


class UseRecord(BaseModel):
    """A completed use, kept through the returns window so a return can re-price it."""

    number: int
    at: datetime
    completed_event_id: str
    program_id: str
    transaction_id: str | None = None
    progress: list[Decimal]  # per behaviour, when the use completed
    base: Decimal = Decimal(0)  # base points of the lines a multiplier covered
    tier_id: str | None = None  # the member's programme tier when it completed
    points_awarded: int = 0


class PendingUse(BaseModel):
    """A completed use of an offer with offer-level limits, waiting for the offer's agent
    (docs/adr/0014-offer-level-caps.md): what its OfferCompleted and award will say once it
    is granted, and where the award's ledger event comes from."""

    request_event_id: str
    record: UseRecord  # points_awarded: the points requested, lowered by returns meanwhile
    cause_event_id: str
    multiples: int = 1
    tier: int | None = None
    points_due: int = 0
    discount_cents: int = 0
    source: str | None = None
    store_id: str | None = None
    till_id: str | None = None
    transaction_number: str | None = None


class OfferProgress(BaseModel):
    """One member's standing on one offer."""

    uses: int = 0
    points_awarded: int = 0
    contributions: list[list[Contribution]] = Field(default_factory=list)  # per behaviour
    completed: list[UseRecord] = Field(default_factory=list)
    # Offer-level limits (ADR 14): uses waiting for the offer's agent, counted in `uses` and
    # `points_awarded` until it answers; `closed` once it denied one (its budget is spent).
    pending: list[PendingUse] = Field(default_factory=list)
    closed: bool = False

    def use_record(self, number: int) -> UseRecord | None:
        """A completed use, or a pending one (whose `points_awarded` a return may lower)."""
        found = next((use for use in self.completed if use.number == number), None)
        return found or next((p.record for p in self.pending if p.record.number == number), None)


class LineFacts(ProductHierarchy):
    """One purchased line, as much as a return needs to re-evaluate offers on it."""

    sku: str
    amount_cents: int
    quantity: Decimal
    returned_cents: int = 0
    returned_quantity: Decimal = Decimal(0)

    @property
    def kept_cents(self) -> int:
        return self.amount_cents - self.returned_cents

    @property
    def kept_quantity(self) -> Decimal:
        return self.quantity - self.returned_quantity


class PurchaseContribution(BaseModel):
    """What one purchase did for one offer: the use it counted towards (or completed), the
    lines each behaviour counted, its value per behaviour, and the lines a multiplier covered."""

    use: int
    lines: list[list[str]]
    values: list[Decimal]
    covered: list[str] = Field(default_factory=list)


class PurchaseRecord(Deferred):
    """A purchase seen: kept for idempotency, and, when it touched offers, for returns.

    Once kept it changes only when a return is applied to it (its id joins `return_ids`):
    `revision` counts those, so a copy stored at the same revision is this record
    (`member.dump_state` reuses it). Stored, its lines and contributions are read only when
    asked for (`Deferred`): a return of it, or the till's copy; every purchase reads the
    records' times and offer ids (`offer_ids`)."""

    DEFERRED = ("lines", "offers")
    KEYS_OF = "offers"

    at: datetime
    province: str | None = None
    lines: dict[str, LineFacts] = Field(default_factory=dict)
    offers: dict[str, PurchaseContribution] = Field(default_factory=dict)
    return_ids: list[str] = Field(default_factory=list)

    @property
    def revision(self) -> tuple[int, int]:
        return len(self.return_ids), 0

    def offer_ids(self) -> Iterable[str]:
        """The offers this purchase counted towards, its contributions read or not."""
        return self.deferred_keys()


class PurchaseFacts(BaseModel):
    """One purchase as purchase-history targeting sees it (ADR 13): when, how much, by
    category. Kept for the returns window like the purchases themselves."""

    at: datetime
    transaction_id: str
    amount_cents: int
    category_cents: dict[str, int] = Field(default_factory=dict)


class TargetingDecision(BaseModel):
    """Whether the member is in an offer's audience, held out or not, and when that was
    decided (static: once; dynamic: at the latest behaviour)."""

    targeted: bool
    in_control: bool = False
    at: datetime
    announced: bool = False  # OfferTargeted emitted for this offer


class TriggerFire(BaseModel):
    """One time a trigger targeted the member: from `at` until `valid_until` (None: the
    offer's end), for one use."""

    at: datetime
    cause: str
    valid_until: datetime | None = None


class LoadOutcome(BaseModel):
    """The answer to one load-to-card request, kept to answer a repeated command_id alike."""

    at: datetime
    offer_id: str
    request_event_id: str
    outcome_event_id: str
    reason: str | None = None  # a RejectionReason value; None: accepted
    detail: str | None = None
    digest: str | None = None  # of the request's body (rules.identity); None: kept before


class IssuedOffer(BaseModel):
    """One instance of a reward-store offer a member bought (seed 002): it applies to one
    transaction that carries its id, once; a lock reserves it for one transaction a while."""

    issued_offer_id: str
    offer_id: str
    reward_store_id: str
    points: int
    issued_at: datetime
    # ISSUED | LOCKED | REDEEMED (used at once) | USED (applied) | MOVED (by a merge)
    status: str = "ISSUED"
    transaction_id: str | None = None  # the transaction it is locked to or redeemed for
    locked_until: datetime | None = None

    def applies_to(self, transaction_id: str, at: datetime) -> bool:
        """True when a transaction `transaction_id` carrying it at `at` gets its benefit: an
        instance free (never locked, or its lock lapsed), or locked or redeemed for that very
        transaction (a till told yes is never overruled, even after the lock lapsed)."""
        if self.status == "ISSUED":
            return True
        if self.status in ("LOCKED", "REDEEMED") and self.transaction_id == transaction_id:
            return True
        return self.status == "LOCKED" and self.locked_until is not None and at >= self.locked_until


class HeldUse(BaseModel):
    """One use of an offer held for one of the member's baskets: a till reserved the promo
    code that unlocks it (docs/adr/0037-codes-that-unlock-an-offer.md; `offers.held_uses`)."""

    offer_id: str
    transaction_id: str
    promotion_id: str
    code: str
    until: datetime


class MemberOffers(BaseModel):
    """Everything the offer rules know about one member."""

    member_id: str
    markets: list[str] = Field(default_factory=list)
    programs: list[str] = Field(default_factory=list)
    tier: str | None = None
    profile: MemberProfile | None = None
    offers: dict[str, OfferProgress] = Field(default_factory=dict)
    purchases: dict[str, PurchaseRecord] = Field(default_factory=dict)
    causes: dict[str, datetime] = Field(default_factory=dict)  # activities, redemptions seen
    # Activities seen, event_id → (when, digest of the body): counted once (rules.identity).
    activities: dict[str, tuple[datetime, str]] = Field(default_factory=dict)
    newest_at: datetime | None = None
    # Targeting facts and decisions (ADR 13); history lists are pruned like the purchases.
    enrolled_at: datetime | None = None
    history: list[PurchaseFacts] = Field(default_factory=list)
    first_purchase_at: datetime | None = None
    last_purchase_at: datetime | None = None
    app_downloaded_at: datetime | None = None
    logins: list[datetime] = Field(default_factory=list)
    email_clicks: list[datetime] = Field(default_factory=list)
    targeting: dict[str, TargetingDecision] = Field(default_factory=dict)
    triggers: dict[str, list[TriggerFire]] = Field(default_factory=dict)
    loaded: dict[str, datetime] = Field(default_factory=dict)  # offer id → when loaded
    loads: dict[str, LoadOutcome] = Field(default_factory=dict)  # command id → answer
    issued: dict[str, IssuedOffer] = Field(default_factory=dict)  # reward-store offers bought
    held: dict[str, HeldUse] = Field(default_factory=dict)  # offer|basket → use held (`held_uses`)

    def presented(self, offer_id: str, tx: TransactionCompleted) -> IssuedOffer | None:
        """The instance of `offer_id` the transaction carries and may use, if any (one per
        transaction: the one locked or redeemed for it first)."""
        carried = [self.issued[t] for t in tx.redemption_tokens if t in self.issued]
        usable = [
            i for i in carried
            if i.offer_id == offer_id and i.applies_to(tx.transaction_id, tx.occurred_at)
        ]  # fmt: skip
        usable.sort(key=lambda i: (i.transaction_id != tx.transaction_id, i.issued_offer_id))
        return usable[0] if usable else None

    def horizon(self) -> datetime | None:
        """The oldest business time still remembered (None: nothing seen yet)."""
        if self.newest_at is None:
            return None
        return returns_horizon(self.newest_at)

    def see(self, at: datetime) -> bool:
        """Move the newest time seen to `at` and forget what fell out of the window; False
        when `at` itself is older than the window (the input is then ignored)."""
        horizon = self.horizon()
        if horizon is not None and at < horizon:
            return False
        if self.newest_at is None or at > self.newest_at:
            self.newest_at = at
            self._forget()
        return True

    def progress_of(self, offer_id: str, behaviours: int) -> OfferProgress:
        """The member's progress on an offer, created empty on first use."""
        progress = self.offers.get(offer_id)
        if progress is None:
            progress = self.offers[offer_id] = OfferProgress()
        while len(progress.contributions) < behaviours:
            progress.contributions.append([])
        return progress

    def offer_ids(self) -> set[str]:
        """Every offer the member has a per-offer entry for (decision, fires, load, standing)."""
        return set(self.targeting) | set(self.triggers) | set(self.loaded) | set(self.offers)

    def forget_offer(self, offer_id: str) -> None:
        """Drop every per-offer entry of one offer (`retention` decides which, and when)."""
        self.targeting.pop(offer_id, None)
        self.triggers.pop(offer_id, None)
        self.loaded.pop(offer_id, None)
        self.offers.pop(offer_id, None)

    def _forget(self) -> None:
        horizon = self.horizon()
        assert horizon is not None
        self.purchases = {k: p for k, p in self.purchases.items() if p.at >= horizon}
        self.causes = {k: at for k, at in self.causes.items() if at >= horizon}
        self.activities = {k: v for k, v in self.activities.items() if v[0] >= horizon}
        for progress in self.offers.values():
            progress.completed = [use for use in progress.completed if use.at >= horizon]
        self.history = [p for p in self.history if p.at >= horizon]
        # The latest login and email click stay: "days since" needs them however old.
        self.logins = [at for at in self.logins[:-1] if at >= horizon] + self.logins[-1:]
        self.email_clicks = [
            at for at in self.email_clicks[:-1] if at >= horizon
        ] + self.email_clicks[-1:]
        self.loads = {k: o for k, o in self.loads.items() if o.at >= horizon}
