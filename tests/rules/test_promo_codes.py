"""Promo codes (seed 001, ADR 23): generated codes checked without storing them, the
promotion a code belongs to (per market, case-insensitive, the latest terms), and a
promotion's uses counted exactly: per code, per member, in total, once per code and purchase."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from processors.codec.json_form import from_json_object
from processors.contract.config import PATTERN_LETTERS, OfferPublished, PromotionCodesIssued
from processors.contract.internal import (
    PromoCodeReservationReleased,
    PromoCodeReservationRequested,
    PromoCodeUseRequested,
)
from processors.contract.offers import (
    OfferCompleted,
    PromoCodeRedeemed,
    PromoCodeRefusal,
    PromoCodeRefused,
    PromoCodeReserved,
    PromoCodeUnreserved,
)
from processors.rules.codes import checkout, uses
from processors.rules.codes.generation import GeneratedCodes
from processors.rules.codes.promotions import Promotions
from processors.rules.offers.catalogue import Catalogue
from processors.simulation import Simulation
from tests.rules.given import PROGRAM, T0, bought, enrolled, program


def issue(promotion_id: str = "P1", event_id: str = "i1", **changes: Any) -> PromotionCodesIssued:
    fields: dict[str, Any] = {
        "event_id": event_id, "occurred_at": T0 - timedelta(days=1), "promotion_id": promotion_id,
        "market": "CA", "codes": ["SAVE10"], "discount": {"kind": "AMOUNT_OFF_CART",
        "amount_off_cents": 1000}, "starts_at": T0 - timedelta(days=1),
        "ends_at": T0 + timedelta(days=30),
    }  # fmt: skip
    return PromotionCodesIssued.model_validate(fields | changes)


def use(code: str, tx: str, member: str | None = "m1", **limits: int) -> PromoCodeUseRequested:
    return PromoCodeUseRequested(
        event_id=f"use-{tx}-{code}", occurred_at=T0, promotion_id="P1", code=code,
        member_id=member, transaction_id=tx, discount_cents=100, cause_event_id=f"tx-{tx}",
        **limits,
    )  # fmt: skip


def test_generated_codes_are_distinct_fit_their_pattern_and_are_checked_without_a_list():
    codes = GeneratedCodes("P1", "i1", "SPRING-####-??", 2000)
    issued = list(codes)
    assert len(set(issued)) == 2000
    assert all(c in codes for c in issued)
    assert all(len(c) == 14 and c.startswith("SPRING-") for c in issued)
    assert list(GeneratedCodes("P1", "i1", "SPRING-####-??", 2000)) == issued  # a replay
    assert not set(issued) & set(GeneratedCodes("P1", "i2", "SPRING-####-??", 2000))


def test_a_guessed_code_is_rarely_valid():
    codes = GeneratedCodes("P1", "i1", "SP-####-??", 1000)  # a space 576 times the count
    rng = random.Random(7)
    guesses = ["SP-" + "".join(rng.choices("0123456789", k=4)) + "-"
               + "".join(rng.choices(PATTERN_LETTERS, k=2)) for _ in range(20_000)]  # fmt: skip
    assert sum(g in codes for g in guesses) < 20_000 / 100


def test_a_code_is_found_case_insensitively_in_its_market_with_the_latest_terms():
    promotions = Promotions()
    promotions.apply(issue())
    promotions.apply(issue(event_id="i2", codes=["MORE1"], redemptions_total_max=5))
    found = promotions.find("save10", "CA")
    assert found is not None
    assert found.redemptions_total_max == 5  # the latest issue's terms govern every code
    assert promotions.find("SAVE10", "US") is None
    assert promotions.find("SAVE11", "CA") is None


def test_an_issue_sent_again_under_its_id_with_other_terms_replaces_them():
    # The config topic is compacted by event id: the latest record of an id is what a process
    # started later reads, so every process takes it (a user's trial saw the first kept).
    promotions = Promotions()
    promotions.apply(issue())
    assert promotions.apply(issue()) == "promotion codes already issued"
    ended = issue(ends_at=T0 - timedelta(hours=1))
    assert "sent again with other terms" in promotions.apply(ended)
    found = promotions.find("SAVE10", "CA")
    assert found is not None
    assert found.ends_at == T0 - timedelta(hours=1)


def test_a_generated_code_is_found_by_its_generator():
    promotions = Promotions()
    promotions.apply(issue(codes=[], code_pattern="GEN-#####", code_count=100))
    some = GeneratedCodes("P1", "i1", "GEN-#####", 100).code(42)
    found = promotions.find(some.lower(), "CA")
    assert found is not None
    assert found.promotion_id == "P1"


def test_a_purchase_asks_once_per_distinct_code_with_the_discount_it_gives():
    promotions = Promotions()
    promotions.apply(issue())
    tx = bought("m1", "T1", cents=5000).model_copy(update={"promo_codes": ["save10", "SAVE10"]})
    (asked,) = checkout.judge(tx, promotions, Catalogue()).events
    assert isinstance(asked, PromoCodeUseRequested)
    assert (asked.code, asked.discount_cents, asked.promotion_id) == ("SAVE10", 1000, "P1")


def test_one_code_of_a_promotion_per_purchase_and_the_codes_never_take_more_than_the_basket():
    # Found by a user's trial: three single-use codes of one $5-off promotion took $15 off a
    # $10 basket, each priced alone and each counted.
    promotions = Promotions()
    promotions.apply(issue(codes=["SAVE10", "SAVE11"]))
    promotions.apply(issue("P2", "i2", codes=["TEN2"]))
    tx = bought("m1", "T1", cents=1500).model_copy(
        update={"promo_codes": ["SAVE10", "save11", "TEN2"]}
    )
    first, second, other = checkout.judge(tx, promotions, Catalogue()).events
    assert isinstance(first, PromoCodeUseRequested)
    assert (first.code, first.discount_cents) == ("SAVE10", 1000)
    assert isinstance(second, PromoCodeRefused)
    assert (second.code, second.reason) == ("SAVE11", PromoCodeRefusal.code_not_applicable)
    assert second.detail == "code SAVE10 of this purchase is promotion P1's already"
    assert isinstance(other, PromoCodeUseRequested)
    assert (other.code, other.discount_cents) == ("TEN2", 500)  # what the first one left


def test_uses_are_counted_per_code_in_total_and_per_member_once_per_purchase():
    state = None
    answers = []
    for code, tx, member in [("A", "T1", "m1"), ("A", "T2", "m2"), ("A", "T3", "m3"),
                             ("B", "T4", "m1"), ("B", "T5", None), ("B", "T6", None)]:  # fmt: skip
        limits = {"redemptions_per_code_max": 2, "redemptions_per_member_max": 1,
                  "redemptions_total_max": 4}  # fmt: skip
        decided = uses.decide(state, use(code, tx, member, **limits))
        state = decided.state
        (answer,) = decided.emitted
        answers.append(answer.reason.value if isinstance(answer, PromoCodeRefused) else "ok")
    assert answers == ["ok", "ok", PromoCodeRefusal.code_exhausted.value,
                       PromoCodeRefusal.code_limit_per_customer.value, "ok", "ok"]  # fmt: skip
    again = uses.decide(state, use("B", "T6", None, redemptions_total_max=4))
    assert isinstance(again.emitted[0], PromoCodeRedeemed)
    assert again.emitted[0].use_number == 4  # the same answer, nothing counted
    assert again.state.uses == 4


def reserve(code: str, tx: str, until_minutes: int, at_minutes: int = 0, **limits: int):  # type: ignore[no-untyped-def]
    return PromoCodeReservationRequested(
        event_id=f"res-{tx}-{at_minutes}", occurred_at=T0 + timedelta(minutes=at_minutes),
        promotion_id="P1", code=code, member_id=None, transaction_id=tx,
        reserved_until=T0 + timedelta(minutes=until_minutes), discount_cents=100, **limits,
    )  # fmt: skip


def at(request: Any, minutes: int) -> Any:
    return request.model_copy(update={"occurred_at": T0 + timedelta(minutes=minutes)})


def kinds(decision: uses.Decision) -> list[str]:
    return [
        e.reason.value if isinstance(e, PromoCodeRefused) else type(e).__name__
        for e in decision.emitted
    ]


def test_reservations_count_against_the_limit_while_they_last():
    one = {"redemptions_per_code_max": 2}
    state = uses.decide(None, reserve("A", "T1", 15, **one)).state
    state = uses.decide(state, reserve("A", "T2", 15, **one)).state
    assert kinds(uses.decide(state, reserve("A", "T3", 15, **one))) == ["code_exhausted"]
    assert kinds(uses.decide(state, at(use("A", "T9", None, **one), 5))) == ["code_exhausted"]
    assert kinds(uses.decide(state, at(use("A", "T1", None, **one), 5))) == ["PromoCodeRedeemed"]
    # T2's reservation lapses at +15: a purchase without one may have the second use.
    assert kinds(uses.decide(state, at(use("A", "T8", None, **one), 20))) == ["PromoCodeRedeemed"]


def test_a_till_told_yes_is_never_overruled_even_after_the_reservation_lapsed():
    one = {"redemptions_per_code_max": 1}
    state = uses.decide(None, reserve("A", "T1", 15, **one)).state
    state = uses.decide(state, at(use("A", "T2", None, **one), 30)).state  # T1 lapsed: T2 uses
    late = uses.decide(state, at(use("A", "T1", None, **one), 31))  # T1's purchase lands late
    assert kinds(late) == ["PromoCodeRedeemed"]
    assert late.state.uses == 2


def test_a_released_reservation_is_given_back_and_asking_again_extends_it():
    one = {"redemptions_per_code_max": 1}
    state = uses.decide(None, reserve("A", "T1", 15, **one)).state
    extended = uses.decide(state, reserve("A", "T1", 40, at_minutes=10, **one))
    (answer,) = extended.emitted
    assert isinstance(answer, PromoCodeReserved)
    assert answer.reserved_until == T0 + timedelta(minutes=40)
    released = PromoCodeReservationReleased(
        event_id="rel-T1", occurred_at=T0, promotion_id="P1", code="A", transaction_id="T1"
    )
    gave_back = uses.decide(extended.state, released)
    (unreserved,) = gave_back.emitted  # the projections stop counting it now, not at +40
    assert isinstance(unreserved, PromoCodeUnreserved)
    assert (unreserved.code, unreserved.transaction_id, unreserved.promotion_id) == (
        "A",
        "T1",
        "P1",
    )
    state = gave_back.state
    assert kinds(uses.decide(state, reserve("A", "T2", 15, **one))) == ["PromoCodeReserved"]
    assert uses.decide(state, released).emitted == []  # nothing held any more: nothing ended


def test_a_release_of_a_lapsed_reservation_ends_nothing_that_still_counted():
    state = uses.decide(None, reserve("A", "T1", 15)).state
    late = PromoCodeReservationReleased(
        event_id="rel-T1", occurred_at=T0 + timedelta(minutes=20), promotion_id="P1", code="A",
        transaction_id="T1",
    )  # fmt: skip
    assert uses.decide(state, late).emitted == []


def test_a_basket_held_for_one_member_is_judged_afresh_for_another():
    # Found by a user's trial: member m2, whose one use of the promotion was spent, was told
    # "reserved" on a basket another member had reserved, and its purchase then used the code.
    once = {"redemptions_per_member_max": 1}
    state = uses.decide(None, at(use("A", "T0", "m2", **once), 1)).state  # m2's one use
    held = reserve("A", "T1", 15, **once).model_copy(update={"member_id": "m1"})
    state = uses.decide(state, held).state
    for_m2 = held.model_copy(update={"member_id": "m2", "event_id": "res-T1-m2"})
    assert kinds(uses.decide(state, for_m2)) == ["code_limit_per_customer"]
    assert state.reservations["A|T1"].member_id == "m1"  # the basket keeps what it held
    again = uses.decide(state, held.model_copy(update={"event_id": "res-T1-again"}))
    assert kinds(again) == ["PromoCodeReserved"]


def test_an_anonymous_basket_the_till_then_names_a_member_for_is_the_member_s():
    once = {"redemptions_per_member_max": 1}
    state = uses.decide(None, reserve("A", "T1", 15, **once)).state  # anonymous
    named = reserve("A", "T1", 20, at_minutes=2, **once).model_copy(update={"member_id": "m1"})
    decided = uses.decide(state, named)
    assert kinds(decided) == ["PromoCodeReserved"]
    assert decided.state.reservations["A|T1"].member_id == "m1"
    other = reserve("A", "T2", 20, at_minutes=3, **once).model_copy(update={"member_id": "m1"})
    assert kinds(uses.decide(decided.state, other)) == ["code_limit_per_customer"]


def test_a_lapsed_reservation_asked_again_is_asked_anew():
    one = {"redemptions_per_code_max": 1}
    state = uses.decide(None, reserve("A", "T1", 15, **one)).state
    state = uses.decide(state, at(use("A", "T2", **one), 20)).state
    again = uses.decide(state, reserve("A", "T1", 45, at_minutes=30, **one))
    assert kinds(again) == ["code_exhausted"]  # T2 took the use once T1's had lapsed
    committed = uses.decide(again.state, at(use("A", "T1", **one), 31))
    assert kinds(committed) == ["code_exhausted"]  # the till was told no at last: nothing kept


def coupon_offer(offer_id: str = "COUPON_SAVE20", code: str = "SAVE20") -> OfferPublished:
    """A live offer of its own coupon code (activation COUPON_CODE): $20 for 200 points."""
    copy_text = {"headline": offer_id, "short_description": offer_id}
    offer = from_json_object({
        "type": "OfferPublished", "event_id": f"offer-{offer_id}",
        "occurred_at": (T0 - timedelta(days=2)).isoformat(), "offer_id": offer_id,
        "program_id": PROGRAM, "market": "CA", "rank": 5,
        "localized_copy": [{"locale": "en", **copy_text}, {"locale": "fr", **copy_text}],
        "schedule": {"starts_at": (T0 - timedelta(days=1)).isoformat(), "ends_at": None},
        "targeting": {"kind": "MASS", "timing": "STATIC"},
        "activation": {"kind": "COUPON_CODE", "coupon_code": code},
        "behaviours": [{"kind": "SPEND", "spend_min_cents": 2000,
                        "accumulation": "SINGLE_TRANSACTION"}],
        "reward": {"kind": "FLAT_POINTS", "points": 200}, "usage": {},
    })  # fmt: skip
    assert isinstance(offer, OfferPublished)
    return offer


def test_an_offers_own_coupon_code_is_the_offers_not_an_unknown_promotion_code():
    """Found by trying it as a user: the coupon that activates an offer was refused
    `code_unknown` beside the very award it gave, and counted as a guess at the till."""
    catalogue = Catalogue([coupon_offer()])
    tx = bought("m1", "T1", cents=2500).model_copy(update={"promo_codes": ["save20", "NOPE1"]})

    judged = checkout.judge(tx, Promotions(), catalogue)

    assert judged.coupons == {"SAVE20": ["COUPON_SAVE20"]}
    (refusal,) = judged.events  # only the code nothing issued
    assert isinstance(refusal, PromoCodeRefused)
    assert (refusal.code, refusal.reason) == ("NOPE1", PromoCodeRefusal.code_unknown)
    catalogue.withdraw("COUPON_SAVE20")  # an offer no longer live activates nothing
    (gone,) = checkout.judge(tx.model_copy(update={"promo_codes": ["SAVE20"]}), Promotions(),
                             catalogue).events  # fmt: skip
    assert isinstance(gone, PromoCodeRefused)
    assert gone.reason is PromoCodeRefusal.code_unknown


def test_a_purchase_with_an_offers_coupon_gets_the_award_and_no_code_refusal():
    sim = Simulation()
    sim.run([program(), coupon_offer()])
    sim.feed(enrolled("m1"))

    out = sim.feed(bought("m1", "T1", cents=2500).model_copy(update={"promo_codes": ["save20"]}))

    assert [e.offer_id for e in out if isinstance(e, OfferCompleted)] == ["COUPON_SAVE20"]
    assert not [e for e in out if isinstance(e, PromoCodeRefused | PromoCodeUseRequested)]


def test_a_code_takes_only_what_the_offers_discounts_leave_and_the_worker_books_that():
    # Found by a user's trial: the worker booked a code's whole $20 beside an offer's 15 %
    # on a $10 basket (PromoCodeRedeemed, promo_code_performance), as the till was told.
    from processors.contract.transactions import TransactionCompleted
    from processors.rules.offers.evaluate import evaluate_cart
    from tests.cart_given import AT, cart, config_events

    big = issue("BIG", "big-1", codes=["BIG53"], starts_at=AT - timedelta(days=1),
                discount={"kind": "AMOUNT_OFF_CART", "amount_off_cents": 5300})  # fmt: skip
    sim = Simulation()
    sim.run([*config_events(), big])
    basket = from_json_object({"type": "TransactionCompleted", "event_id": "tx-BIG",
                               "source": "INSTORE", **cart(promo_codes=["BIG53"])})  # fmt: skip
    assert isinstance(basket, TransactionCompleted)
    # What the till was told the offers take (an anonymous basket: mass discount offers).
    told = evaluate_cart(None, basket, sim.config.catalogue, sim.config.programs)
    offers_took = sum(discount.cents for discount in told.discounts)
    out = sim.feed(basket)
    (asked,) = [e for e in out if isinstance(e, PromoCodeUseRequested)]
    assert offers_took > 200
    assert asked.discount_cents == 5500 - offers_took  # what the offers left of 55.00


def test_a_members_code_takes_only_what_the_offers_discounts_leave():
    from processors.contract.transactions import TransactionCompleted
    from tests.cart_given import AT, cart, config_events, enrolment

    big = issue("BIG", "big-1", codes=["BIG53"], starts_at=AT - timedelta(days=1),
                discount={"kind": "AMOUNT_OFF_CART", "amount_off_cents": 5300})  # fmt: skip
    sim = Simulation()
    sim.run([*config_events(), big, enrolment("m7")])
    fields = cart("m7", promo_codes=["BIG53"])
    basket = from_json_object(
        {"type": "TransactionCompleted", "event_id": "tx-BIG7", "source": "INSTORE", **fields}
    )
    assert isinstance(basket, TransactionCompleted)
    out = sim.feed(basket)
    offers_took = sum(e.discount_cents for e in out if isinstance(e, OfferCompleted))
    (asked,) = [e for e in out if isinstance(e, PromoCodeUseRequested)]
    assert offers_took > 200
    assert asked.discount_cents == 5500 - offers_took
