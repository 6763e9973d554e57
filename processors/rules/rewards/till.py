"""A granted reward's token at the till: whether it applies to this basket and what it takes off.

One judgement for both callers: the cart evaluation (the till asks before the customer pays)
and the worker (the completed transaction uses the reward). In order, a token is refused:
`reward_unknown` (no granted reward has it), `reward_not_yours` (another member's, or an
anonymous cart's), `reward_used`, `reward_expired` (its expiry has come at the basket's time),
`min_spend_not_met` (the discount's lines stay below its least spend), `nothing_left` (the
basket's promo codes and the rewards before it already take all of it). Otherwise it applies:
the discount of the reward's version as granted (ADR 20), priced on the basket's lines before
any discount, the way a promo code's is (ADR 23), and at most what the codes and the rewards
before it left of the basket (`discounts.basket_cents`), so that together they never take
more than it (ADR 20, addendum); a reward without a discount applies with 0 (its code is
fulfilled outside the cart). Pure: the basket's time is the only time.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from processors.contract.offer_definition import DiscountTerms
from processors.contract.transactions import TransactionCompleted, TransactionLine
from processors.rules.offers.discounts import (
    DiscountOffer,
    PricedLine,
    discount_alone,
    discount_on,
    spend_on,
)
from processors.rules.offers.state import IssuedOffer, MemberOffers


@dataclass(frozen=True)
class Held:
    """What the till needs of a granted reward."""

    member_id: str
    granted_reward_id: str
    reward_id: str
    status: str  # ISSUED | REDEEMED | EXPIRED
    expires_at: datetime | None
    discount: DiscountTerms | None


@dataclass(frozen=True)
class TokenCheck:
    """A token's verdict for one basket."""

    token: str
    applies: bool
    discount_cents: int
    held: Held | None
    reason: str | None = None
    detail: str | None = None


def check(
    token: str,
    held: Held | None,
    *,
    member_id: str | None,
    lines: Sequence[TransactionLine],
    at: datetime,
    gross: bool,
    left: int | None = None,
    remaining: list[int] | None = None,
) -> TokenCheck:
    """The verdict on `token` (whose granted reward is `held`, None if none has it) for the
    basket of `member_id` (None: anonymous) made of `lines` at `at`. `gross`: the lines are a
    completed transaction's, whose till already took its discounts off. `left`: the cents of
    the basket the codes and the rewards before this one leave (None: all of it).
    `remaining`: what the rewards before this one left of each line (None: all of it), less
    what this one takes when it applies."""

    def refused(reason: str, detail: str) -> TokenCheck:
        return TokenCheck(token, False, 0, held, reason, detail)

    if held is None:
        return refused("reward_unknown", f"no granted reward has token {token}")
    if member_id is None or held.member_id != member_id:
        return refused("reward_not_yours", f"token {token} is another member's reward")
    if held.status == "MOVED":
        return refused("reward_not_yours", f"token {token} moved with a merge to its survivor")
    if held.status == "REDEEMED":
        return refused("reward_used", f"token {token}: the reward was already used")
    if held.status == "EXPIRED" or (held.expires_at is not None and held.expires_at <= at):
        return refused("reward_expired", f"token {token}: the reward expired at {held.expires_at}")
    offer = discount_of(held)
    if offer is None:
        return TokenCheck(token, True, 0, held)
    terms = offer.terms
    priced = [PricedLine.of(line, gross=gross) for line in lines]
    least = terms.spend_min_cents
    if least is not None:
        eligible = spend_on(priced, offer)
        if eligible < least:
            return refused(
                "min_spend_not_met",
                f"token {token}: {eligible} cents of eligible spend, {least} needed",
            )
    per_line = [] if remaining is None else discount_on(priced, offer, remaining)
    cents = discount_alone(priced, offer) if remaining is None else sum(per_line)
    if left is not None:
        cents = min(cents, max(left, 0))
    if cents <= 0 and discount_alone(priced, offer) > 0:  # kept: it gives something alone
        return refused(
            "nothing_left",
            f"token {token}: the promo codes and rewards before it already take what it would",
        )
    budget = cents
    for i, off in enumerate(per_line):  # what it takes, line by line, off what remains
        taken = min(off, budget)
        assert remaining is not None
        remaining[i] -= taken
        budget -= taken
    return TokenCheck(token, True, cents, held)


def check_in_order(
    held: Mapping[str, Held | None],
    *,
    member_id: str | None,
    lines: Sequence[TransactionLine],
    at: datetime,
    gross: bool,
    left: int,
) -> list[TokenCheck]:
    """`check` of each token of `held` in its order (the basket's), each taking at most what
    its promo codes and the rewards before it `left` of the basket."""
    checks = []
    remaining = [max(line.amount_cents + (line.discount_cents if gross else 0), 0)
                 for line in lines]  # fmt: skip
    for token, reward in held.items():
        verdict = check(token, reward, member_id=member_id, lines=lines, at=at, gross=gross,
                        left=left, remaining=remaining)  # fmt: skip
        left -= verdict.discount_cents
        checks.append(verdict)
    return checks


def discount_of(held: Held) -> DiscountOffer | None:
    """The discount a granted reward takes off a basket, priced alone; None when it gives none."""
    if held.discount is None:
        return None
    return DiscountOffer(held.reward_id, held.discount, None)


def bought_unused(
    offers: MemberOffers, tx: TransactionCompleted, completed: Collection[str]
) -> list[TokenCheck]:
    """The tokens `tx` carries of reward-store offers the member bought whose offer did not
    complete on it (`completed`: the offer ids that did; those are the cart's offers), each
    with why it gives nothing, so the till is never left guessing."""
    found = []
    for token in dict.fromkeys(tx.redemption_tokens):
        instance = offers.issued.get(token)
        if instance is not None and instance.offer_id not in completed:
            found.append(_gives_nothing(token, instance, tx.transaction_id, tx.occurred_at))
    return found


def _gives_nothing(
    token: str, instance: IssuedOffer, transaction_id: str, at: datetime
) -> TokenCheck:
    offer = instance.offer_id
    if not instance.applies_to(transaction_id, at):
        if instance.status == "LOCKED":
            detail = f"token {token}: offer {offer} is locked to another basket until " + (
                instance.locked_until.isoformat() if instance.locked_until else "it is released"
            )
            return TokenCheck(token, False, 0, None, "reward_locked", detail)
        detail = f"token {token}: offer {offer} bought in {instance.reward_store_id} was used"
        return TokenCheck(token, False, 0, None, "reward_used", detail)
    detail = (f"token {token}: offer {offer} gives nothing on this basket (its conditions are "
              "not met, or a better offer of its group applied)")  # fmt: skip
    return TokenCheck(token, False, 0, None, "offer_not_met", detail)
