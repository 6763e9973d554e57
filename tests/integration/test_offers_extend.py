"""`loyalty offers extend` against the real broker: checked against the offer and programme
the config topic holds, refused with the rule broken, else published (DESIGN.md §5.11)."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from loyalty.cli import main
from loyalty.producing import publish_events
from processors.base.settings import get_settings
from processors.codec.avro import AvroCodec
from processors.contract.config import OfferClosed, OfferClosure, OfferEndDateExtended
from processors.contract.offer_definition import OfferSchedule
from tests.integration.test_offers_publish import read_all
from tests.rules.given import program
from tests.rules.offers.given_offers import offer, spend

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


def live(starts: timedelta, ends: timedelta) -> OfferSchedule:
    return OfferSchedule(starts_at=NOW + starts, ends_at=NOW + ends, display_at=None)


def publish(*events) -> None:
    asyncio.run(publish_events(get_settings(), list(events), AvroCodec()))


def extend(offer_id: str, ends_at: str):
    args = ["offers", "extend", offer_id, "--ends-at", ends_at, "--by", "alice"]
    return CliRunner().invoke(main, [*args, "--reason", "more time"])


def test_a_live_offer_of_an_enabled_programme_is_extended_and_published(
    config_topic, stack_settings
):
    publish(
        program(offer_end_date_extension_enabled=True),
        offer("LIVE_OFFER", spend(1000), schedule=live(-timedelta(days=2), timedelta(days=5))),
    )  # fmt: skip
    new_end = (NOW + timedelta(days=20)).replace(microsecond=0)

    result = extend("LIVE_OFFER", new_end.isoformat())

    assert result.exit_code == 0, result.output
    records = asyncio.run(read_all(stack_settings.bootstrap_servers, config_topic, 3))
    extended = [AvroCodec().decode(value) for _, value in records][-1]
    assert isinstance(extended, OfferEndDateExtended)
    assert (extended.offer_id, extended.ends_at, extended.requested_by) == (
        "LIVE_OFFER",
        new_end,
        "alice",
    )


def test_refusals_name_the_rule_broken_and_publish_nothing(config_topic, stack_settings):
    publish(
        program(),  # the feature is off by default
        offer("OFF_OFFER", spend(1000), schedule=live(-timedelta(days=2), timedelta(days=5))),
        program("ON_PROG", offer_end_date_extension_enabled=True),
        offer("SOON_OVER", spend(1000), program_id="ON_PROG",
              schedule=live(-timedelta(days=2), timedelta(hours=3))),
    )  # fmt: skip
    later = (NOW + timedelta(days=30)).isoformat()

    disabled = extend("OFF_OFFER", later)
    last_minute = extend("SOON_OVER", later)
    earlier = extend("SOON_OVER", (NOW + timedelta(hours=1)).isoformat())
    unknown = extend("NO_SUCH_OFFER", later)

    assert disabled.exit_code == 1
    assert "FEATURE_DISABLED" in disabled.output
    assert "WITHIN_24_HOURS" in last_minute.output
    assert "NOT_LATER" in earlier.output or "WITHIN_24_HOURS" in earlier.output
    assert "no offer NO_SUCH_OFFER" in unknown.output
    records = asyncio.run(read_all(stack_settings.bootstrap_servers, config_topic, 5))
    assert len(records) == 4  # nothing but what the test published


def test_an_offer_the_engine_closed_is_refused_as_completed(config_topic, stack_settings):
    # Its total uses were spent: the offer's agent published OfferClosed (ADR 29).
    publish(
        program(offer_end_date_extension_enabled=True),
        offer("SPENT_OFFER", spend(1000), schedule=live(-timedelta(days=2), timedelta(days=5))),
        OfferClosed(event_id="closed-spent", occurred_at=NOW - timedelta(hours=1),
                    offer_id="SPENT_OFFER", reason=OfferClosure.BUDGET_EXHAUSTED,
                    cause_event_id="spent-1"),
    )  # fmt: skip

    result = extend("SPENT_OFFER", (NOW + timedelta(days=20)).isoformat())

    assert result.exit_code == 1
    assert "OFFER_COMPLETED" in result.output
    records = asyncio.run(read_all(stack_settings.bootstrap_servers, config_topic, 3))
    assert len(records) == 3  # nothing published
