"""A promotion's code uses, counted in arrival order by the agent keyed by the promotion
(DESIGN.md §2; docs/adr/0023-promo-codes.md): "the first 1,000 users" is exact whatever
partition the purchases came from. Pure: the state and one request in, the next state and the
answer out.

- The limits judged are those the request carries: per code, per member (across the
  promotion's codes; an anonymous customer is not limited per customer: each basket is its
  own), and in total.
- A use is answered once per code and transaction: a redelivered request gets the same answer,
  same id and content, and counts nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from processors.contract.base import Event
from processors.contract.internal import PromoCodeUseRequested
from processors.contract.offers import PromoCodeRedeemed, PromoCodeRefusal, PromoCodeRefused
from processors.rules.arithmetic import derived_id


class PromotionUses(BaseModel):
    """What the agent keeps about one promotion."""

    promotion_id: str
    uses: int = 0
    per_code: dict[str, int] = Field(default_factory=dict)
    per_member: dict[str, int] = Field(default_factory=dict)
    answers: dict[str, int | str] = Field(default_factory=dict)
    """code|transaction → the use number given, or the refusal's reason."""


@dataclass
class Decision:
    """The promotion's next state and the answer, in order."""

    state: PromotionUses
    emitted: list[Event] = field(default_factory=list)


def decide(state: PromotionUses | None, asked: PromoCodeUseRequested) -> Decision:
    """Count or refuse one use (see the module). Takes ownership of `state`."""
    state = state or PromotionUses(promotion_id=asked.promotion_id)
    key = f"{asked.code}|{asked.transaction_id}"
    if key in state.answers:
        return Decision(state, [_answer(asked, state.answers[key])])
    refusal = _refusal(state, asked)
    if refusal is not None:
        state.answers[key] = refusal.value
        return Decision(state, [_answer(asked, refusal.value)])
    state.uses += 1
    state.per_code[asked.code] = state.per_code.get(asked.code, 0) + 1
    if asked.member_id is not None:
        state.per_member[asked.member_id] = state.per_member.get(asked.member_id, 0) + 1
    state.answers[key] = state.uses
    return Decision(state, [_answer(asked, state.uses)])


def _refusal(state: PromotionUses, asked: PromoCodeUseRequested) -> PromoCodeRefusal | None:
    per_code = asked.redemptions_per_code_max
    if per_code is not None and state.per_code.get(asked.code, 0) >= per_code:
        return PromoCodeRefusal.code_exhausted
    total = asked.redemptions_total_max
    if total is not None and state.uses >= total:
        return PromoCodeRefusal.code_exhausted
    per_member = asked.redemptions_per_member_max
    member = asked.member_id
    if (
        per_member is not None
        and member is not None
        and state.per_member.get(member, 0) >= per_member
    ):
        return PromoCodeRefusal.code_limit_per_customer
    return None


_DETAIL = {
    PromoCodeRefusal.code_exhausted.value: "the code's or the promotion's uses are spent",
    PromoCodeRefusal.code_limit_per_customer.value: "this member's uses of the promotion are spent",
}


def _answer(asked: PromoCodeUseRequested, answer: int | str) -> Event:
    if isinstance(answer, str):
        return PromoCodeRefused(
            event_id=derived_id("CODE-REFUSED", asked.transaction_id, asked.code),
            occurred_at=asked.occurred_at,
            code=asked.code,
            promotion_id=asked.promotion_id,
            member_id=asked.member_id,
            transaction_id=asked.transaction_id,
            reason=PromoCodeRefusal(answer),
            detail=_DETAIL.get(answer, answer),
            cause_event_id=asked.cause_event_id,
        )
    return PromoCodeRedeemed(
        event_id=derived_id("CODE-REDEEMED", asked.transaction_id, asked.code),
        occurred_at=asked.occurred_at,
        code=asked.code,
        promotion_id=asked.promotion_id,
        member_id=asked.member_id,
        transaction_id=asked.transaction_id,
        transaction_number=asked.transaction_number,
        store_id=asked.store_id,
        discount_cents=asked.discount_cents,
        use_number=answer,
        cause_event_id=asked.cause_event_id,
    )
