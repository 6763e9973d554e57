"""Promo codes (seed 001, ADR 23): generated codes checked without storing them, the
promotion a code belongs to (per market, case-insensitive, the latest terms), and a
promotion's uses counted exactly: per code, per member, in total, once per code and purchase."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from processors.contract.config import PATTERN_LETTERS, PromotionCodesIssued
from processors.contract.internal import PromoCodeUseRequested
from processors.contract.offers import PromoCodeRedeemed, PromoCodeRefusal, PromoCodeRefused
from processors.rules.codes import checkout, uses
from processors.rules.codes.generation import GeneratedCodes
from processors.rules.codes.promotions import Promotions
from tests.rules.given import T0, bought


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
    (asked,) = checkout.on_purchase(tx, promotions)
    assert isinstance(asked, PromoCodeUseRequested)
    assert (asked.code, asked.discount_cents, asked.promotion_id) == ("SAVE10", 1000, "P1")


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
