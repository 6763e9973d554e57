"""Promo codes that unlock an offer (ADR 37): the purchase's valid codes activate their offers
for that purchase, a use of one waits for the promotion's agent, which answers the member
with the offer's grant or denial; a code whose offer makes no use is refused and not counted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from processors.contract.config import PromotionCodesIssued
from processors.contract.internal import (
    OfferUseDenial,
    OfferUseDenied,
    OfferUseGranted,
    PromoCodeUseRequested,
)
from processors.contract.offer_definition import ActivationKind, DiscountKind, OfferActivation
from processors.contract.offers import PromoCodeRedeemed, PromoCodeRefusal, PromoCodeRefused
from processors.rules.codes import checkout, uses
from processors.rules.codes.promotions import Promotions
from processors.rules.offers import eligibility, limits
from processors.rules.offers.evaluate import evaluate_cart, on_anonymous_purchase, on_transaction
from tests.rules.given import T0
from tests.rules.offers.given_offers import (
    Member,
    discount,
    flat,
    item,
    offer,
    purchase,
    skus,
    spend,
    usage,
)

BY_CODE = OfferActivation(kind=ActivationKind.PROMOTION_CODE)


def promotion(offer_id: str = "BONUS", **changes: Any) -> Promotions:
    fields: dict[str, Any] = {
        "event_id": "issue-1", "occurred_at": T0 - timedelta(days=2), "promotion_id": "P1",
        "market": "CA", "codes": ["GO500", "GO501"], "offer_id": offer_id,
        "starts_at": T0 - timedelta(days=1), "ends_at": T0 + timedelta(days=30),
    }  # fmt: skip
    known = Promotions()
    known.apply(PromotionCodesIssued.model_validate(fields | changes))
    return known


def bonus(offer_id: str = "BONUS", **changes: Any) -> Any:
    """500 points on $20 or more, activated only by a code of a promotion naming it."""
    return offer(offer_id, spend(2000), reward=flat(500), activation=BY_CODE, **changes)


def shops_with_codes(member: Member, promotions: Promotions, tx: Any) -> list[Any]:
    """What the member's partition emits for the codes and the offers of one purchase."""
    judged = checkout.judge(tx, promotions, member.catalogue, member.state)
    evaluation = on_transaction(
        member.state, tx, member.catalogue, member.programs, member.ends, judged.unlocks
    )
    unused = checkout.unused(
        judged, tx, evaluation.events, member.state, member.catalogue, member.programs
    )
    return judged.events + evaluation.events + unused


def test_an_offer_activated_by_codes_gives_nothing_without_one():
    member = Member(bonus())
    assert member.buys(purchase("T1", cents=3000)).events == []


def test_a_valid_code_unlocks_the_offer_and_its_use_waits_for_the_code_s_count():
    member = Member(bonus())
    emitted = shops_with_codes(member, promotion(), purchase("T1", cents=3000, codes=["go500"]))

    (asked,) = emitted
    assert isinstance(asked, PromoCodeUseRequested)
    assert (asked.code, asked.member_id, asked.discount_cents) == ("GO500", "m1", 0)
    assert asked.offer_use is not None
    assert (asked.offer_use.offer_id, asked.offer_use.use_number) == ("BONUS", 1)
    assert asked.offer_use.points_requested == 500
    assert member.state.offers["BONUS"].pending[0].request_event_id == asked.event_id


def test_the_promotion_s_grant_completes_the_use_once_with_its_points():
    member = Member(bonus())
    (asked,) = shops_with_codes(member, promotion(), purchase("T1", cents=3000, codes=["GO500"]))

    redeemed, granted = uses.decide(None, asked).emitted

    assert isinstance(redeemed, PromoCodeRedeemed)
    assert isinstance(granted, OfferUseGranted)
    assert granted.request_event_id == asked.event_id
    completed = limits.on_granted(member.state, granted)
    assert [a.points for a in completed.awards] == [500]
    assert limits.on_granted(member.state, granted).events == []  # redelivered: nothing more


def test_a_refused_code_denies_the_use_and_leaves_the_offer_open_to_another_code():
    member = Member(bonus())
    (asked,) = shops_with_codes(member, promotion(), purchase("T1", cents=3000, codes=["GO500"]))
    spent = uses.PromotionUses(promotion_id="P1", uses=1)

    refused, denied = uses.decide(
        spent, asked.model_copy(update={"redemptions_total_max": 1})
    ).emitted

    assert isinstance(refused, PromoCodeRefused)
    assert refused.reason is PromoCodeRefusal.code_exhausted
    assert isinstance(denied, OfferUseDenied)
    assert denied.reason is OfferUseDenial.CODE_REFUSED
    limits.on_denied(member.state, denied)
    standing = member.state.offers["BONUS"]
    assert (standing.uses, standing.pending, standing.closed) == (0, [], False)
    (again,) = shops_with_codes(member, promotion(), purchase("T2", cents=3000, codes=["GO501"]))
    assert again.offer_use is not None
    assert again.offer_use.use_number == 1


def test_a_redelivered_code_use_gets_the_same_answers():
    member = Member(bonus())
    (asked,) = shops_with_codes(member, promotion(), purchase("T1", cents=3000, codes=["GO500"]))
    first = uses.decide(None, asked)
    again = uses.decide(first.state, asked)
    assert again.emitted == first.emitted
    assert again.state.uses == 1


def test_a_code_whose_offer_does_not_complete_is_refused_and_not_counted():
    member = Member(bonus())
    emitted = shops_with_codes(member, promotion(), purchase("T1", cents=1500, codes=["GO500"]))

    (refused,) = emitted
    assert isinstance(refused, PromoCodeRefused)
    assert refused.reason is PromoCodeRefusal.code_min_spend_not_met
    assert "BONUS" in refused.detail


def test_a_member_who_used_the_offer_up_is_refused_per_customer():
    member = Member(bonus(usage=usage(uses_per_member_max=1)))
    (asked,) = shops_with_codes(member, promotion(), purchase("T1", cents=3000, codes=["GO500"]))
    limits.on_granted(member.state, uses.decide(None, asked).emitted[1])  # type: ignore[arg-type]

    (refused,) = shops_with_codes(member, promotion(), purchase("T2", cents=3000, codes=["GO501"]))
    assert isinstance(refused, PromoCodeRefused)
    assert refused.reason is PromoCodeRefusal.code_limit_per_customer


def test_codes_of_an_offer_that_is_not_live_or_has_its_own_cap_are_refused_before_any_offer():
    ended = bonus(schedule=bonus().schedule.model_copy(update={"ends_at": T0}))
    capped = bonus(usage=usage(uses_total_max=10))
    tx = purchase("T1", cents=3000, codes=["GO500"])

    (expired,) = checkout.judge(tx, promotion(), Member(ended).catalogue).events
    (unsupported,) = checkout.judge(tx, promotion(), Member(capped).catalogue).events

    assert isinstance(expired, PromoCodeRefused)
    assert expired.reason is PromoCodeRefusal.code_expired
    assert isinstance(unsupported, PromoCodeRefused)
    assert unsupported.reason is PromoCodeRefusal.code_not_supported


def test_two_codes_for_one_offer_on_one_purchase_count_only_the_first():
    member = Member(bonus())
    tx = purchase("T1", cents=3000, codes=["GO501", "GO500"])
    judged = checkout.judge(tx, promotion(), member.catalogue)

    assert list(judged.unlocks) == ["BONUS"]
    assert judged.unlocks["BONUS"].code == "GO501"
    (second,) = judged.events
    assert isinstance(second, PromoCodeRefused)
    assert (second.code, second.reason) == ("GO500", PromoCodeRefusal.code_not_applicable)


def test_an_anonymous_customer_s_code_counts_for_a_discount_offer_but_not_for_points():
    free = offer(
        "FREE_B",
        spend(1000, products=skus("B")),
        reward=discount(DiscountKind.FREE_ITEM, free_units=1, products=skus("B")),
        activation=BY_CODE,
    )
    member = Member(free, bonus())
    lines = [item("1", 1200, "B", discount_cents=0), item("2", 3000, "A")]
    tx = purchase("T1", *lines, codes=["GO500", "FREE1"], member=None)
    promotions = promotion()
    promotions.apply(
        PromotionCodesIssued.model_validate(
            promotion("FREE_B").terms["P1"].model_dump()
            | {"event_id": "issue-2", "promotion_id": "P2", "codes": ["FREE1"]}
        )
    )
    judged = checkout.judge(tx, promotions, member.catalogue, member.state)

    used = on_anonymous_purchase(tx, member.catalogue, member.programs, judged.unlocks).uses
    (refused,) = checkout.unused(judged, tx, used, None, member.catalogue, member.programs)

    (free_use,) = used
    assert (free_use.code, free_use.member_id, free_use.discount_cents) == ("FREE1", None, 1200)
    assert (refused.code, refused.reason) == ("GO500", PromoCodeRefusal.code_not_applicable)
    assert uses.decide(None, free_use).emitted[1:] == []  # nobody's use to answer


def test_a_cart_shows_an_unlocked_offer_as_granted_and_names_its_code_s_use():
    member = Member(bonus())
    cart = purchase("C1", cents=3000, codes=["GO500"])
    judged = checkout.judge(cart, promotion(), member.catalogue)

    preview = evaluate_cart(member.state, cart, member.catalogue, member.programs, judged.unlocks)

    assert [a.points for a in preview.awards] == [500]
    (code_use,) = preview.code_uses
    assert code_use.code == "GO500"
    assert member.state.offers == {}  # a preview changes nothing
    without = evaluate_cart(member.state, cart, member.catalogue, member.programs)
    assert without.awards == []
    assert without.code_uses == []


def test_a_control_member_s_code_is_not_used_and_says_why():
    half_held_out = bonus().targeting.model_copy(update={"control_share_percent": 50})
    # The hold-out is a stable hash of (offer, member): take an offer that holds m1 out.
    ids = (f"CTRL_{n}" for n in range(50))
    offer_id = next(
        i for i in ids
        if eligibility.held_out(bonus(offer_id=i, targeting=half_held_out), Member().state, T0)
    )  # fmt: skip
    member = Member(bonus(offer_id=offer_id, targeting=half_held_out))

    emitted = shops_with_codes(
        member, promotion(offer_id), purchase("T1", cents=3000, codes=["GO500"])
    )

    refused = [e for e in emitted if isinstance(e, PromoCodeRefused)]
    assert [(r.reason, "control group" in r.detail) for r in refused] == [
        (PromoCodeRefusal.code_not_applicable, True)
    ]
    assert not [e for e in emitted if isinstance(e, PromoCodeUseRequested)]
