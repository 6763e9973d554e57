"""The member offer state the cart preview rebuilds from the projection's rows, and what the
rules make of it (no database: the rows are given as `find_member` returns them)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from processors.rules.offers.evaluate import evaluate_cart
from projections.api.cart_queries import MemberRow, Standing, member_offers
from tests.cart_given import AT, config, offer, single

CONFIG = config()


def row(**changes) -> MemberRow:
    fields = {
        "member_id": "M1",
        "status": "ACTIVE",
        "merged_into": None,
        "markets": ["CA"],
        "program_ids": ["MAIN"],
        "profile": {"first_name": "Ada", "attributes": {"tier": "GOLD"}},
        "uses": [],
        "progress": [],
        "returned": {},
    }
    return MemberRow(**{**fields, **changes})


def spend_progress(cents: int, use_number: int = 1) -> tuple:
    item = {"behaviour_index": 0, "metric": "SPEND_CENTS", "progress": f"{cents}.000",
            "threshold": "10000.000"}  # fmt: skip
    return ("ACCUMULATE_100", use_number, [item], AT - timedelta(days=1))


def priced(state, config=CONFIG):
    from processors.contract.transactions import TransactionCompleted
    from tests.cart_given import cart

    body = cart("M1")
    tx = TransactionCompleted(event_id="e-cart", source="INSTORE", **body)
    return evaluate_cart(state, tx, config.catalogue, config.programs)


def test_the_member_facts_come_from_the_members_row():
    state = member_offers(row(), CONFIG.catalogue)
    assert (state.markets, state.programs, state.tier) == (["CA"], ["MAIN"], "GOLD")
    assert state.profile is not None
    assert state.profile.first_name == "Ada"


def test_points_awarded_are_net_of_what_returns_took_back():
    state = member_offers(
        row(uses=[("BONUS_100_OVER_20", 3, 300)], returned={"BONUS_100_OVER_20": 100}),
        CONFIG.catalogue,
    )
    standing = state.offers["BONUS_100_OVER_20"]
    assert (standing.uses, standing.points_awarded) == (3, 200)


def test_accumulated_progress_becomes_one_contribution_of_the_use_in_progress():
    state = member_offers(row(progress=[spend_progress(6000)]), CONFIG.catalogue)
    [[contribution]] = state.offers["ACCUMULATE_100"].contributions
    assert contribution.value == Decimal(6000)
    assert contribution.at == AT - timedelta(days=1)


def test_progress_of_a_use_completed_since_is_stale_and_ignored():
    state = member_offers(
        row(uses=[("ACCUMULATE_100", 1, 500)], progress=[spend_progress(9000, use_number=1)]),
        CONFIG.catalogue,
    )
    assert state.offers["ACCUMULATE_100"].contributions == []


def test_a_member_with_enough_progress_completes_the_accumulated_offer_in_the_cart():
    fresh = priced(member_offers(row(), CONFIG.catalogue))
    close = priced(member_offers(row(progress=[spend_progress(6000)]), CONFIG.catalogue))

    assert fresh.base_points == {"MAIN": 49}
    assert sorted((a.offer_id, a.points) for a in fresh.awards) == [("BONUS_100_OVER_20", 100)]
    assert sorted((a.offer_id, a.points) for a in close.awards) == [
        ("ACCUMULATE_100", 500),
        ("BONUS_100_OVER_20", 100),
    ]


def test_a_member_who_used_up_an_offer_does_not_get_it_again():
    limited = config()
    limited.apply(
        offer(
            "ONCE_50",
            behaviours=[single("SPEND", spend_min_cents=1000)],
            reward={"kind": "FLAT_POINTS", "points": 50},
            usage={"uses_per_member_max": 1},
        )
    )
    never_used = priced(member_offers(row(), limited.catalogue), limited)
    used = priced(member_offers(row(uses=[("ONCE_50", 1, 50)]), limited.catalogue), limited)
    assert "ONCE_50" in {a.offer_id for a in never_used.awards}
    assert "ONCE_50" not in {a.offer_id for a in used.awards}


def test_a_member_outside_the_programme_gets_neither_its_offers_nor_its_base_earn():
    outsider = priced(member_offers(row(program_ids=[]), CONFIG.catalogue))
    assert (outsider.discounts, outsider.awards, outsider.base_points) == ([], [], {})


def standing(offer_id: str, *, loaded: bool = False, targeted: bool = False,
             control: bool = False, fires: int = 0) -> list:  # fmt: skip
    """A `member_offer_standings` row as `find_member`'s JSON gives it."""
    at = (AT - timedelta(days=2)).isoformat()
    ids = [f"targeted-{offer_id}-{n}" for n in range(fires or (1 if targeted else 0))]
    return [offer_id, control if targeted else None, at if targeted else None,
            at if targeted else None, ids, at if loaded else None]  # fmt: skip


def gated() -> object:
    """The catalogue with an offer loaded to card and an offer for an audience list."""
    given = config()
    for offer_id, fields in (
        ("LOADED_40", {"activation": {"kind": "LOAD_TO_CARD"}}),
        ("LISTED_30", {"targeting": {"kind": "AUDIENCE_LIST", "timing": "STATIC",
                                     "audience_id": "VIP"}}),
    ):  # fmt: skip
        given.apply(
            offer(
                offer_id,
                behaviours=[single("SPEND", spend_min_cents=500)],
                reward={"kind": "FLAT_POINTS", "points": 40},
                **fields,
            )
        )
    return given


def test_an_offer_loaded_to_card_or_targeted_applies_as_the_worker_would_apply_it():
    """Found by trying it as a user: an offer the member had loaded to card (their feed said
    `loaded`) gave nothing in the cart preview, while the worker paid it for the purchase."""
    given = gated()
    nothing = priced(member_offers(row(), given.catalogue), given)
    standings = [Standing.of(standing("LOADED_40", loaded=True)),
                 Standing.of(standing("LISTED_30", targeted=True))]  # fmt: skip
    held = priced(member_offers(row(standings=standings), given.catalogue), given)
    held_out = priced(
        member_offers(
            row(standings=[Standing.of(standing("LISTED_30", targeted=True, control=True))]),
            given.catalogue,
        ),
        given,
    )

    applied = {a.offer_id for a in held.awards}
    assert not {"LOADED_40", "LISTED_30"} & {a.offer_id for a in nothing.awards}
    assert {"LOADED_40", "LISTED_30"} <= applied
    assert "LISTED_30" not in {a.offer_id for a in held_out.awards}  # control: paid nothing


def test_a_triggered_offer_applies_while_its_latest_fire_is_valid_and_has_a_use_left():
    given = config()
    given.apply(
        offer(
            "TRIGGERED_25",
            behaviours=[single("SPEND", spend_min_cents=500)],
            reward={"kind": "FLAT_POINTS", "points": 25},
            targeting={
                "kind": "MASS",
                "timing": "TRIGGERED",
                "trigger_activity_kind": "LOGIN",
                "trigger_fires_per_member_max": 2,
                "trigger_valid_days": 7,
            },
        )
    )

    def paid(**changes) -> bool:
        held = row(**changes)
        return "TRIGGERED_25" in {a.offer_id for a in priced(member_offers(held, given.catalogue),
                                                             given).awards}  # fmt: skip

    fired = [Standing.of(standing("TRIGGERED_25", targeted=True, fires=2))]
    assert not paid()
    assert paid(standings=fired)
    assert paid(standings=fired, uses=[("TRIGGERED_25", 1, 25)])  # one fire left
    assert not paid(standings=fired, uses=[("TRIGGERED_25", 2, 50)])  # each fire used
    stale = [Standing.of(standing("TRIGGERED_25", targeted=True, fires=1))]
    stale = [s.__class__(**{**s.__dict__, "last_targeted_at": AT - timedelta(days=8)})
             for s in stale]  # fmt: skip
    assert not paid(standings=stale)  # the fire's seven days are over
