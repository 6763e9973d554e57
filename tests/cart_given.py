"""Given data for the cart evaluation tests: one programme, four offers, one basket.

The basket (`cart()`) is chips 2 × 3.50 (SNACKS) and a grocery line of 48.00, 55.00 in all.
What the offers make of it, worked by hand (DESIGN.md §5.3, §5.9):
- SNACKS_10PCT, 10 % off the snacks it selects: 70 off the chips (item discounts first);
- CART_5_OFF_50, 5.00 off a cart of 50.00 or more (judged before discounts): 500 over what
  remains, 630 and 4800, pro-rata by largest remainder: 58 and 442;
- the net basket is 572 + 4358 = 4930: base earn 1 point per dollar, half-up once: 49;
- BONUS_100_OVER_20, 100 points for 20.00 of net spend: 100 (members only);
- ACCUMULATE_100, 500 points once 100.00 is spent across visits: 4930 of progress, or a
  completion for a member already at 60.00 or more.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from processors.codec.json_form import from_json_object
from processors.contract.base import Event
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.rules.member import Config

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
PROGRAM = "MAIN"


def program() -> Event:
    return from_json_object(
        {
            "type": "ProgramConfigured",
            "event_id": "program-MAIN",
            "occurred_at": (AT - timedelta(days=60)).isoformat(),
            "program_id": PROGRAM,
            "name": "Main programme",
            "market": "CA",
            "currency": "CAD",
            "time_zone": "America/Toronto",
            "categories": ["REGULAR"],
            "points_per_currency_unit": "1",
            "expiry": {"kind": "NONE"},
        }
    )


def offer(offer_id: str, **fields: Any) -> Event:
    """An OfferPublished of MAIN, MASS, automatic, live from a day before AT, never ending."""
    copy_text = {"headline": offer_id.replace("_", " "), "short_description": offer_id}
    return from_json_object(
        {
            "type": "OfferPublished",
            "event_id": f"offer-{offer_id}",
            "occurred_at": (AT - timedelta(days=30)).isoformat(),
            "offer_id": offer_id,
            "program_id": PROGRAM,
            "market": "CA",
            "localized_copy": [{"locale": "en", **copy_text}, {"locale": "fr", **copy_text}],
            "rank": 5,
            "schedule": {"starts_at": (AT - timedelta(days=1)).isoformat(), "ends_at": None},
            "targeting": {"kind": "MASS", "timing": "STATIC"},
            "activation": {"kind": "AUTOMATIC"},
            "usage": {},
            **fields,
        }
    )


def single(kind: str, **fields: Any) -> dict[str, Any]:
    """A behaviour met in one transaction."""
    return {"kind": kind, "accumulation": "SINGLE_TRANSACTION", **fields}


def discount(kind: str, **fields: Any) -> dict[str, Any]:
    """A DISCOUNT reward."""
    return {"kind": "DISCOUNT", "discount": {"kind": kind, **fields}}


def offers() -> list[Event]:
    return [
        offer(
            "SNACKS_10PCT",
            behaviours=[single("QUANTITY", quantity_min="1", products={"categories": ["SNACKS"]})],
            reward=discount("PERCENT_OFF_ITEMS", percent_off="10"),
        ),
        offer(
            "CART_5_OFF_50",
            behaviours=[single("SPEND", spend_min_cents=5000)],
            reward=discount("AMOUNT_OFF_CART", amount_off_cents=500),
        ),
        offer(
            "BONUS_100_OVER_20",
            behaviours=[single("SPEND", spend_min_cents=2000)],
            reward={"kind": "FLAT_POINTS", "points": 100},
        ),
        offer(
            "ACCUMULATE_100",
            behaviours=[{"kind": "SPEND", "spend_min_cents": 10000, "accumulation": "ACCUMULATED"}],
            reward={"kind": "FLAT_POINTS", "points": 500},
        ),
    ]


def config_events() -> list[Event]:
    return [program(), *offers()]


def config() -> Config:
    built = Config()
    for event in config_events():
        built.apply(event)
    return built


def enrolment(member_id: str, **profile: Any) -> MemberEnrolled:
    return MemberEnrolled(
        event_id=f"enrol-{member_id}",
        occurred_at=AT - timedelta(days=10),
        member_id=member_id,
        market="CA",
        program_ids=[PROGRAM],
        source="APP",
        profile=MemberProfile(first_name="Ada", province="ON", **profile),
    )


def line(line_id: str, sku: str, category: str, quantity: int, unit_cents: int) -> dict[str, Any]:
    return {"line_id": line_id, "sku": sku, "category": category, "quantity": str(quantity),
            "unit_price_cents": unit_cents, "amount_cents": quantity * unit_cents}  # fmt: skip


def cart(member_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """The basket as a POS would post it (JSON), at AT."""
    body: dict[str, Any] = {
        "occurred_at": AT.isoformat().replace("+00:00", "Z"),
        "transaction_id": "CART-1",
        "market": "CA",
        "currency": "CAD",
        "store": {"store_id": "S1", "country": "CA", "province": "ON"},
        "till_id": "T1",
        "lines": [line("1", "CHIPS", "SNACKS", 2, 350), line("2", "GROCERY", "FOOD", 1, 4800)],
    }
    if member_id is not None:
        body["member_id"] = member_id
    return {**body, **changes}
