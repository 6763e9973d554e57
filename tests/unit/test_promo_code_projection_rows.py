"""The promo code projection before any database: what each event becomes (the statements on
real Postgres: tests/integration/test_promo_code_api.py)."""

from __future__ import annotations

from datetime import timedelta

from processors.contract.config import CodeIssuer, CodeIssuerKind, PromotionCodesIssued
from processors.contract.internal import OfferUseDenial
from processors.contract.offers import (
    OfferUseReservationAnswered,
    PromoCodeRedeemed,
    PromoCodeRefusal,
    PromoCodeRefused,
    PromoCodeReserved,
    PromoCodeUnreserved,
)
from projections import projection
from projections.writers import codes, offer_reservations, offers, performance
from tests.rules.given import T0


def issued(**changes: object) -> PromotionCodesIssued:
    return PromotionCodesIssued.model_validate({
        "event_id": "holi-1", "occurred_at": T0, "promotion_id": "HOLI", "market": "CA",
        "codes": ["HOLIMAN100", "HOLIWOMAN"], "redemptions_per_code_max": 1000,
        "discount": {"kind": "AMOUNT_OFF_CART", "amount_off_cents": 500},
        "starts_at": T0, "ends_at": T0 + timedelta(days=30), **changes,
    })  # fmt: skip


def redeemed(member_id: str | None, tx: str, use: int) -> PromoCodeRedeemed:
    return PromoCodeRedeemed(
        event_id=f"used-{tx}", occurred_at=T0, code="HOLIMAN100", promotion_id="HOLI",
        member_id=member_id, transaction_id=tx, transaction_number="0981", store_id="0412",
        discount_cents=500, use_number=use, cause_event_id=f"tx-{tx}",
    )  # fmt: skip


def test_an_issue_is_the_promotions_terms_its_issue_and_its_uploaded_codes():
    rows = codes.rows_of([issued()])
    [promotion] = rows.promotions
    assert promotion[:4] == ("HOLI", None, "CA", "DISCOUNT")
    assert promotion[8] == 1000
    assert rows.issues == [("holi-1", "HOLI", "CA", None, None, 2, T0, None, None, None)]
    assert [c[1] for c in rows.codes] == ["HOLIMAN100", "HOLIWOMAN"]


def test_generated_codes_are_never_stored_only_their_generator():
    rows = codes.rows_of([issued(codes=[], code_pattern="HOLI-####-??", code_count=10)])
    assert rows.codes == []
    assert rows.issues[0][3:6] == ("HOLI-####-??", 10, 0)


def test_a_use_keeps_member_or_anonymous_transaction_store_time_and_discount():
    rows = codes.rows_of([redeemed("M1", "T1", 1), redeemed(None, "T2", 2)])
    assert [(r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows.uses] == [
        ("M1", "T1", "0981", "0412", 500, 1),
        (None, "T2", "0981", "0412", 500, 2),
    ]


def test_a_reservation_and_a_refusal_are_rows_of_their_own():
    reserved = PromoCodeReserved(
        event_id="r1", occurred_at=T0, code="HOLIMAN100", promotion_id="HOLI", member_id=None,
        transaction_id="T3", reserved_until=T0 + timedelta(minutes=15), discount_cents=500,
    )  # fmt: skip
    refused = PromoCodeRefused(
        event_id="x1", occurred_at=T0, code="NOPE", member_id="M1", transaction_id="T4",
        reason=PromoCodeRefusal.code_unknown, detail="no promotion", cause_event_id="req-9",
    )  # fmt: skip
    rows = codes.rows_of([reserved, refused])
    assert list(rows.reservations.values()) == [
        ["HOLIMAN100", "T3", "HOLI", None, 500, T0, T0 + timedelta(minutes=15), None]
    ]
    assert rows.refusals[0][5:8] == ("code_unknown", "no promotion", "req-9")


def _reserved(n: int, minutes: int = 0) -> PromoCodeReserved:
    return PromoCodeReserved(
        event_id=f"r{n}", occurred_at=T0 + timedelta(minutes=minutes), code="HOLIMAN100",
        promotion_id="HOLI", member_id="M1", transaction_id="T3",
        reserved_until=T0 + timedelta(minutes=minutes + 15), discount_cents=500,
    )  # fmt: skip


def _unreserved(n: int, minutes: int) -> PromoCodeUnreserved:
    return PromoCodeUnreserved(
        event_id=f"u{n}", occurred_at=T0 + timedelta(minutes=minutes), code="HOLIMAN100",
        promotion_id="HOLI", member_id="M1", transaction_id="T3",
    )  # fmt: skip


def test_a_release_in_the_batch_of_its_reservation_is_the_rows_released_at():
    rows = codes.rows_of([_reserved(1), _reserved(2, minutes=5), _unreserved(1, minutes=7)])
    (row,) = rows.reservations.values()
    assert row[5:] == [T0, T0 + timedelta(minutes=20), T0 + timedelta(minutes=7)]
    assert rows.releases == {}


def test_a_release_of_an_earlier_batch_s_reservation_is_an_update_and_asking_again_clears_it():
    alone = codes.rows_of([_unreserved(1, minutes=7)])
    assert (alone.reservations, alone.releases) == (
        {},
        {("HOLIMAN100", "T3"): T0 + timedelta(minutes=7)},
    )
    again = codes.rows_of([_unreserved(1, minutes=7), _reserved(2, minutes=9)])
    assert again.releases == {}
    assert next(iter(again.reservations.values()))[7] is None  # live again


def test_the_code_events_are_this_writers_and_no_longer_passed_over():
    assert not set(codes.EVENTS) & set(offers.PASSED_OVER + performance.PASSED_OVER)
    assert set(codes.TABLES) <= set(projection.TABLES)


HOLIMAN = CodeIssuer(kind=CodeIssuerKind.INFLUENCER, issuer_id="holiman", name="Holi Man")


def test_an_issue_and_its_uses_keep_who_issued_the_codes_and_a_use_its_spend():
    rows = codes.rows_of([
        issued(issuer=HOLIMAN),
        redeemed("M1", "T1", 1).model_copy(update={"issuer": HOLIMAN, "spend_cents": 4200}),
    ])  # fmt: skip
    assert rows.issues[0][7:] == ("INFLUENCER", "holiman", "Holi Man")
    assert rows.uses[0][11:] == (4200, "INFLUENCER", "holiman")


def test_an_answer_to_a_till_s_offer_reservation_is_a_row_by_its_request():
    answered = OfferUseReservationAnswered(
        event_id="a1", occurred_at=T0, member_id="M1", offer_id="TENOFF", transaction_id="T5",
        request_event_id="req-5", reserved=False, discount_cents=300,
        reason=OfferUseDenial.USES_SPENT,
    )  # fmt: skip
    assert offer_reservations.rows_of([answered]) == [
        ("req-5", "TENOFF", "M1", "T5", False, None, 300, "USES_SPENT", T0)
    ]
    assert set(offer_reservations.TABLES) <= set(projection.TABLES)
