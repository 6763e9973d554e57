"""Linking a physical promo code to a member (seed 001 "linkCode", ADR 23), through the
simulator: the code then applies by itself at the member's next checkout, once; a single-use
code links to one member only; refusals are named."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from processors.contract.config import OfferWithdrawn
from processors.contract.offers import PromoCodeRedeemed, PromoCodeRefused
from processors.contract.outcomes import RejectionReason, RequestAccepted, RequestRejected
from processors.contract.redemptions import PromoCodeLinkRequested
from processors.simulation import Simulation
from tests.rules.given import T0, bought, enrolled, program
from tests.rules.offers.test_code_unlocked_offers import bonus
from tests.rules.test_promo_codes import issue


def engine(**promotion: Any) -> Simulation:
    sim = Simulation()
    single = {"codes": ["PRINT-001", "PRINT-002"], "redemptions_per_code_max": 1}
    sim.run([program(), issue(**(single | promotion))])
    for member in ("m1", "m2"):
        sim.feed(enrolled(member))
    return sim


def link(member: str, code: str, command: str = "k1", **changes: Any) -> PromoCodeLinkRequested:
    fields: dict[str, Any] = {
        "event_id": f"link-{member}-{command}", "occurred_at": T0, "command_id": command,
        "member_id": member, "code": code, "mode": "DISCOUNT", "source": "APP",
    }  # fmt: skip
    return PromoCodeLinkRequested(**(fields | changes))


def outcome(out: list) -> RequestAccepted | RequestRejected:  # type: ignore[type-arg]
    (only,) = [e for e in out if isinstance(e, RequestAccepted | RequestRejected)]
    return only


def reason(out: list) -> RejectionReason:  # type: ignore[type-arg]
    answer = outcome(out)
    assert isinstance(answer, RequestRejected), answer
    return answer.reason


def test_a_linked_code_applies_by_itself_at_the_next_checkout_once():
    sim = engine()
    assert isinstance(outcome(sim.feed(link("m1", "print-001"))), RequestAccepted)
    first = sim.feed(bought("m1", "T1", cents=5000))
    used = [e for e in first if isinstance(e, PromoCodeRedeemed)]
    assert [(u.member_id, u.code, u.discount_cents) for u in used] == [("m1", "PRINT-001", 1000)]
    later = sim.feed(bought("m1", "T2", cents=5000))
    assert not any(isinstance(e, PromoCodeRedeemed | PromoCodeRefused) for e in later)


def test_a_single_use_code_links_to_one_member_only_and_no_one_else_may_use_it():
    sim = engine()
    sim.feed(link("m1", "PRINT-001"))
    assert reason(sim.feed(link("m2", "PRINT-001"))) is RejectionReason.code_already_linked
    typed = bought("m2", "T9", cents=5000).model_copy(update={"promo_codes": ["PRINT-001"]})
    refused = [e.reason.value for e in sim.feed(typed) if isinstance(e, PromoCodeRefused)]
    assert refused == ["code_exhausted"]


def test_link_refusals_are_named():
    sim = engine()
    assert reason(sim.feed(link("m1", "NOPE-999"))) is RejectionReason.unknown_code
    late = link("m1", "PRINT-002", "k2", occurred_at=T0 + timedelta(days=60))
    assert reason(sim.feed(late)) is RejectionReason.code_expired
    voucher = link("m1", "PRINT-002", "k3", mode="PAYMENT_VOUCHER")
    assert reason(sim.feed(voucher)) is RejectionReason.invalid_request
    assert reason(sim.feed(link("nobody", "PRINT-002", "k4"))) is RejectionReason.unknown_member


def test_a_code_before_its_promotion_starts_is_not_yet_valid_not_expired():
    # Found by a user's trial: a code of a promotion starting next month was refused expired.
    sim = engine()
    early = link("m1", "PRINT-002", "k5", occurred_at=T0 - timedelta(days=2))
    assert reason(sim.feed(early)) is RejectionReason.code_not_yet_valid


def test_a_code_the_next_purchase_would_refuse_is_not_linked():
    # Found by a user's trial: a member whose one use of the promotion was spent, and a code
    # whose promotion had no use left, were both linked (201) and then refused at checkout.
    sim = engine(codes=["SHARED-1", "SHARED-2"], redemptions_per_code_max=None,
                 redemptions_per_member_max=1, redemptions_total_max=2)  # fmt: skip
    sim.feed(bought("m1", "T1", cents=5000).model_copy(update={"promo_codes": ["SHARED-1"]}))
    assert reason(sim.feed(link("m1", "SHARED-2"))) is RejectionReason.limit_reached
    sim.feed(bought("m2", "T2", cents=5000).model_copy(update={"promo_codes": ["SHARED-1"]}))
    sim.feed(enrolled("m3"))
    assert reason(sim.feed(link("m3", "SHARED-2", "k2"))) is RejectionReason.code_exhausted


def test_a_repeated_link_request_gets_its_first_answer():
    sim = engine()
    first = outcome(sim.feed(link("m1", "PRINT-001")))
    assert sim.feed(link("m1", "PRINT-001").model_copy(update={"event_id": "again"})) == [first]


def test_a_code_whose_offer_was_withdrawn_is_not_linked():
    # Found by a user's trial: the link was accepted (201) though every checkout refuses the
    # code then ("offer ... is not live").
    sim = Simulation()
    sim.run([program(), bonus(), issue(offer_id="BONUS", discount=None, codes=["GO500"])])
    sim.feed(enrolled("m1"))
    assert isinstance(outcome(sim.feed(link("m1", "GO500"))), RequestAccepted)
    sim.run([OfferWithdrawn(event_id="wd-1", occurred_at=T0 - timedelta(hours=1),
                            offer_id="BONUS", requested_by="mia")])  # fmt: skip
    refused = outcome(sim.feed(link("m1", "GO500", "k2")))
    assert isinstance(refused, RequestRejected)
    assert (refused.reason, refused.detail) == (
        RejectionReason.code_expired, "offer BONUS is not live"
    )  # fmt: skip


def test_a_purchase_made_before_the_link_neither_carries_nor_uses_it():
    # Found by a user's trial: a purchase stamped before the link used the link up in the
    # worker while the till (which reads links by time) kept offering the code.
    sim = engine()
    sim.feed(link("m1", "PRINT-001", occurred_at=T0 + timedelta(hours=1)))
    earlier = sim.feed(bought("m1", "T1", cents=5000))  # made at T0, before the link
    assert not any(isinstance(e, PromoCodeRedeemed | PromoCodeRefused) for e in earlier)
    later = bought("m1", "T2", cents=5000).model_copy(
        update={"occurred_at": T0 + timedelta(hours=2)}
    )
    used = [e for e in sim.feed(later) if isinstance(e, PromoCodeRedeemed)]
    assert [(u.code, u.transaction_id) for u in used] == [("PRINT-001", "T2")]


def test_a_till_clock_a_little_behind_still_makes_the_next_checkout():
    sim = engine()
    sim.feed(link("m1", "PRINT-001", occurred_at=T0 + timedelta(minutes=5)))
    used = [e for e in sim.feed(bought("m1", "T1", cents=5000)) if isinstance(e, PromoCodeRedeemed)]
    assert [u.code for u in used] == ["PRINT-001"]  # 5 minutes early: within CLOCK_SKEW
