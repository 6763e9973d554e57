"""Linking a physical promo code to a member (seed 001, "linkCode"; ADR 23): the code is then
applied by itself at the member's next checkout, without being typed.

1. `request` (the member's partition): a repeated command_id gets its first answer; refused at
   once, with a stable reason: `unknown_member`, `member_merged`, `unknown_code` (no promotion
   of the member's markets issued it), `invalid_request` (another mode), `code_not_yet_valid`
   (before its promotion starts), `code_expired` (after it ends, or the offer it unlocks is not
   live); else the promotion's agent is
   asked (`PromoCodeLinkClaimRequested`).
2. The agent (`uses.py`) links a single-use code to one member only, and refuses a code
   the member's next purchase would be refused: its uses or the promotion's spent or reserved
   (`code_already_linked`, `code_exhausted`), or the member's uses of the promotion
   (`limit_reached`).
3. `answered` (the member's partition): the link is kept, and the request answered.
At the member's next purchase made after the link every linked code is added to the codes it
carries, and the link is used up, whatever that purchase's answer for the code.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from processors.contract.base import Event
from processors.contract.internal import PromoCodeLinkAnswered, PromoCodeLinkClaimRequested
from processors.contract.outcomes import RejectionReason
from processors.contract.redemptions import PromoCodeLinkRequested
from processors.contract.transactions import TransactionCompleted
from processors.rules import identity
from processors.rules.arithmetic import derived_id
from processors.rules.codes.promotions import Promotions, normalised
from processors.rules.ledger import requests
from processors.rules.ledger.state import MemberLedger
from processors.rules.offers.catalogue import Catalogue, is_live

CLOCK_SKEW = timedelta(minutes=15)
"""How far before a link's time a purchase may be stamped and still be its next checkout."""


class PendingLink(BaseModel):
    """A link request waiting for the promotion's agent."""

    request: PromoCodeLinkRequested
    digest: str
    promotion_id: str
    code: str


class MemberCodes(BaseModel):
    """The member's linked codes (code → promotion) and link requests in flight."""

    linked: dict[str, str] = Field(default_factory=dict)
    # When each link was asked for (its answer's time): it applies to purchases made from
    # then on, as the till sees it (a link kept before this field: to the next purchase).
    linked_at: dict[str, datetime] = Field(default_factory=dict)
    pending: dict[str, PendingLink] = Field(default_factory=dict)  # by command_id


def request(
    ledger: MemberLedger | None,
    codes: MemberCodes,
    asked: PromoCodeLinkRequested,
    promotions: Promotions,
    markets: list[str],
    catalogue: Catalogue,
) -> list[Event]:
    """Step 1 (see the module)."""
    repeated = requests.repeat(ledger, asked)
    if repeated is not None:
        return repeated.emitted
    waiting = codes.pending.get(asked.command_id)
    if waiting is not None:
        identity.check("command_id", asked.command_id, waiting.digest, asked, identity.REQUEST)
        return []
    code = normalised(asked.code)
    terms = next((t for m in markets if (t := promotions.find(code, m)) is not None), None)
    refusal: tuple[RejectionReason, str] | None = None
    if ledger is None or ledger.status == "UNKNOWN":
        refusal = RejectionReason.unknown_member, "no such member"
    elif ledger.status == "MERGED":
        refusal = RejectionReason.member_merged, f"merged into {ledger.merged_into}"
    elif terms is None:
        refusal = RejectionReason.unknown_code, "no promotion of the member's markets has it"
    elif terms.mode is not asked.mode:
        refusal = RejectionReason.invalid_request, f"the code's mode is {terms.mode.value}"
    elif asked.occurred_at < terms.starts_at:
        starts = terms.starts_at.isoformat()
        refusal = RejectionReason.code_not_yet_valid, f"{terms.promotion_id} starts {starts}"
    elif not asked.occurred_at < terms.ends_at:
        window = f"{terms.starts_at.isoformat()} to {terms.ends_at.isoformat()}"
        refusal = RejectionReason.code_expired, f"{terms.promotion_id} runs {window}"
    elif terms.offer_id is not None and not _offer_live(catalogue, terms.offer_id, asked):
        # As the checkout refuses the code then (`checkout._offer_refusal`): never linked to
        # be refused at the member's next purchase.
        refusal = RejectionReason.code_expired, f"offer {terms.offer_id} is not live"
    if refusal is not None:
        return [requests.reply(ledger, asked, reason=refusal[0], detail=refusal[1])]
    assert terms is not None
    codes.pending[asked.command_id] = PendingLink(
        request=asked, digest=identity.digest(asked, identity.REQUEST),
        promotion_id=terms.promotion_id, code=code,
    )  # fmt: skip
    claim = PromoCodeLinkClaimRequested(
        event_id=derived_id("CODE-LINK", asked.member_id, asked.command_id),
        occurred_at=asked.occurred_at, promotion_id=terms.promotion_id, code=code,
        member_id=asked.member_id, command_id=asked.command_id,
        redemptions_per_code_max=terms.redemptions_per_code_max,
        redemptions_per_member_max=terms.redemptions_per_member_max,
        redemptions_total_max=terms.redemptions_total_max,
    )  # fmt: skip
    return [claim]


def _offer_live(catalogue: Catalogue, offer_id: str, asked: PromoCodeLinkRequested) -> bool:
    offer = catalogue.get(offer_id)
    return offer is not None and is_live(offer, asked.occurred_at)


def answered(
    ledger: MemberLedger | None, codes: MemberCodes, answer: PromoCodeLinkAnswered
) -> list[Event]:
    """Step 3 (see the module), once."""
    pending = codes.pending.pop(answer.command_id, None)
    if pending is None:
        return []  # a redelivered answer
    asked = pending.request
    if not answer.linked:
        reason = answer.refusal or RejectionReason.UNKNOWN
        detail = f"code {pending.code}: {reason.value.replace('_', ' ')}"
        return [requests.reply(ledger, asked, reason=reason, detail=detail)]
    codes.linked[pending.code] = pending.promotion_id
    codes.linked_at[pending.code] = asked.occurred_at
    detail = f"code {pending.code} applies by itself at the next checkout"
    return [requests.reply(ledger, asked, discount_cents=None, detail=detail)]


def with_linked(codes: MemberCodes | None, purchase: TransactionCompleted) -> TransactionCompleted:
    """The purchase with the member's linked codes added (each once), those links used up. A
    purchase made well before a link was asked for (a late upload, a backdated basket) neither
    carries nor uses it: the link waits for the next purchase made after it, as the till's
    view of the links does (`projections.api.code_store`), so the two agree. `CLOCK_SKEW`
    lets a till's clock run a little behind the API's."""
    if codes is None or not codes.linked:
        return purchase
    due = [
        code for code in codes.linked
        if (at := codes.linked_at.get(code)) is None or at - CLOCK_SKEW <= purchase.occurred_at
    ]  # fmt: skip
    for code in due:
        del codes.linked[code]
        codes.linked_at.pop(code, None)
    return carrying(purchase, due)


def carrying(purchase: TransactionCompleted, linked: Iterable[str]) -> TransactionCompleted:
    """The purchase (or a till's cart) with the `linked` codes added after those typed, each
    code once: what the member's next checkout carries without the codes being typed."""
    typed = {normalised(c) for c in purchase.promo_codes}
    extra = [code for code in dict.fromkeys(normalised(c) for c in linked) if code not in typed]
    if not extra:
        return purchase
    return purchase.model_copy(update={"promo_codes": [*purchase.promo_codes, *extra]})
