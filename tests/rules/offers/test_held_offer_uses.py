"""A till's reservation of a code that unlocks an offer holds the offer's use for the basket in
the member's partition (ADR 37, item 5): the promotion's agent says so (`OfferUseHeld`,
`OfferUseHoldReleased`), the basket's own purchase gets the offer whatever the member's uses
or the offer's window say by then, and the member's other baskets see the use as taken while
the hold lasts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from processors.contract.internal import (
    OfferUseHeld,
    OfferUseHoldReleased,
    PromoCodeReservationReleased,
    PromoCodeReservationRequested,
    PromoCodeUseRequested,
)
from processors.contract.offers import (
    PromoCodeRefusal,
    PromoCodeRefused,
    PromoCodeReserved,
    PromoCodeUnreserved,
)
from processors.rules.codes import uses
from processors.rules.offers import held_uses
from tests.rules.given import T0
from tests.rules.offers.given_offers import Member, purchase, usage
from tests.rules.offers.test_code_unlocked_offers import bonus, promotion, shops_with_codes

UNTIL = T0 + timedelta(minutes=15)


def reserving(tx: str = "T1", code: str = "GO500", **changes: Any) -> PromoCodeReservationRequested:
    fields: dict[str, Any] = {
        "event_id": f"res-{tx}-{code}", "occurred_at": T0, "promotion_id": "P1", "code": code,
        "member_id": "m1", "transaction_id": tx, "reserved_until": UNTIL, "discount_cents": 0,
        "offer_id": "BONUS",
    }  # fmt: skip
    return PromoCodeReservationRequested.model_validate(fields | changes)


def releasing(tx: str = "T1", code: str = "GO500") -> PromoCodeReservationReleased:
    return PromoCodeReservationReleased(
        event_id=f"rel-{tx}", occurred_at=T0 + timedelta(minutes=2), promotion_id="P1",
        code=code, transaction_id=tx,
    )  # fmt: skip


def held(tx: str = "T1", code: str = "GO500", until: Any = UNTIL) -> OfferUseHeld:
    return OfferUseHeld(
        event_id=f"held-{tx}", occurred_at=T0, member_id="m1", offer_id="BONUS",
        transaction_id=tx, promotion_id="P1", code=code, held_until=until,
    )  # fmt: skip


# --- the promotion's agent ------------------------------------------------------------------


def test_a_member_s_reservation_of_an_offer_s_code_holds_the_offer_s_use_for_the_basket():
    decided = uses.decide(None, reserving())

    hold, reserved = decided.emitted
    assert isinstance(reserved, PromoCodeReserved)
    assert isinstance(hold, OfferUseHeld)
    assert (hold.member_id, hold.offer_id, hold.transaction_id, hold.code, hold.held_until) == (
        "m1", "BONUS", "T1", "GO500", UNTIL,
    )  # fmt: skip


def test_asking_again_extends_the_hold_with_the_reservation():
    later = UNTIL + timedelta(minutes=10)
    state = uses.decide(None, reserving()).state
    again = reserving(event_id="res-again", occurred_at=T0 + timedelta(minutes=5),
                      reserved_until=later)  # fmt: skip

    hold = uses.decide(state, again).emitted[0]

    assert isinstance(hold, OfferUseHeld)
    assert hold.held_until == later


def test_a_cart_discount_code_or_an_anonymous_basket_holds_no_offer_use():
    for asked in (reserving(offer_id=None), reserving(member_id=None)):
        (reserved,) = uses.decide(None, asked).emitted
        assert isinstance(reserved, PromoCodeReserved)


def test_releasing_the_reservation_gives_the_member_s_hold_back_once():
    state = uses.decide(None, reserving()).state

    unreserved, released = uses.decide(state, releasing()).emitted
    assert uses.decide(state, releasing()).emitted == []  # nothing reserved any more

    assert isinstance(unreserved, PromoCodeUnreserved)  # the code's, for the projections
    assert isinstance(released, OfferUseHoldReleased)
    assert (released.member_id, released.offer_id, released.transaction_id) == ("m1", "BONUS", "T1")


def test_a_lapsed_reservation_asked_again_and_refused_gives_the_hold_back():
    state = uses.decide(None, reserving(redemptions_total_max=1)).state
    other = PromoCodeUseRequested(
        event_id="use-m2", occurred_at=UNTIL + timedelta(minutes=1), promotion_id="P1",
        code="GO501", member_id="m2", transaction_id="T9", discount_cents=0,
        cause_event_id="tx-T9", redemptions_total_max=1,
    )  # fmt: skip
    state = uses.decide(state, other).state  # the lapsed reservation no longer holds the use
    again = reserving(
        event_id="res-again", occurred_at=UNTIL + timedelta(minutes=5),
        reserved_until=UNTIL + timedelta(minutes=20), redemptions_total_max=1,
    )  # fmt: skip

    released, refused = uses.decide(state, again).emitted

    assert isinstance(refused, PromoCodeRefused)
    assert refused.reason is PromoCodeRefusal.code_exhausted
    assert isinstance(released, OfferUseHoldReleased)


# --- the member's partition -----------------------------------------------------------------


def test_the_held_basket_gets_the_offer_after_its_promotion_ended_and_another_does_not():
    member = Member(bonus(usage=usage(uses_per_member_max=1)))
    promotions = promotion(ends_at=T0 + timedelta(hours=1))
    held_uses.hold(member.state, held(), purchased=False)
    after = T0 + timedelta(hours=2)  # the promotion ended, the hold lapsed: the till was told yes

    (asked,) = shops_with_codes(member, promotions, purchase("T1", cents=3000, at=after,
                                                             codes=["GO500"]))  # fmt: skip
    (refused,) = shops_with_codes(member, promotions, purchase("T2", cents=3000, at=after,
                                                               codes=["GO501"]))  # fmt: skip

    assert isinstance(asked, PromoCodeUseRequested)
    assert asked.offer_use is not None
    assert asked.offer_use.offer_id == "BONUS"
    assert isinstance(refused, PromoCodeRefused)
    assert refused.reason is PromoCodeRefusal.code_expired


def test_a_hold_is_honoured_for_the_code_reserved_only():
    member = Member(bonus())
    promotions = promotion(ends_at=T0 + timedelta(hours=1))
    held_uses.hold(member.state, held(code="GO501"), purchased=False)
    tx = purchase("T1", cents=3000, at=T0 + timedelta(hours=2), codes=["GO500"])

    (refused,) = shops_with_codes(member, promotions, tx)

    assert isinstance(refused, PromoCodeRefused)  # the till reserved GO501 for T1, not GO500
    assert refused.reason is PromoCodeRefusal.code_expired


def test_a_lapsed_hold_no_longer_refuses_other_baskets():
    member = Member(bonus(usage=usage(uses_per_member_max=1)))
    held_uses.hold(member.state, held(), purchased=False)
    tx = purchase("T2", cents=3000, at=UNTIL, codes=["GO501"])

    (asked,) = shops_with_codes(member, promotion(), tx)

    assert isinstance(asked, PromoCodeUseRequested)


def test_a_hold_after_its_basket_s_purchase_is_not_kept_and_a_lapsed_one_is_forgotten():
    state = Member(bonus()).state

    note = held_uses.hold(state, held("T1"), purchased=True)
    held_uses.hold(state, held("T2"), purchased=False)
    held_uses.hold(state, held("T3", until=UNTIL + timedelta(days=8)).model_copy(
        update={"occurred_at": UNTIL + timedelta(days=7)}), purchased=False)  # fmt: skip

    assert "already bought" in note
    assert [h.transaction_id for h in state.held.values()] == ["T3"]


def test_a_release_for_another_code_keeps_the_hold():
    state = Member(bonus()).state
    held_uses.hold(state, held(), purchased=False)
    released = OfferUseHoldReleased(
        event_id="rel", occurred_at=T0, member_id="m1", offer_id="BONUS", transaction_id="T1",
        promotion_id="P1", code="GO501",
    )  # fmt: skip

    held_uses.release(state, released)
    assert len(state.held) == 1
    held_uses.release(state, released.model_copy(update={"code": "GO500"}))
    assert state.held == {}


def test_a_purchase_uses_its_basket_s_hold_up_and_forgets_holds_lapsed_a_week_before():
    state = Member(bonus()).state
    for tx in ("T1", "T2", "T3"):
        held_uses.hold(state, held(tx), purchased=False)

    held_uses.used(state, "T1", T0)
    kept_after_t1 = sorted(h.transaction_id for h in state.held.values())
    held_uses.used(state, "T9", UNTIL + timedelta(days=7, seconds=1))

    assert kept_after_t1 == ["T2", "T3"]
    assert state.held == {}
