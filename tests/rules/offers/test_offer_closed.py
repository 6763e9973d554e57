"""A spent offer closes (ADR 14, docs/adr/0029-gaps-closed.md): the grant that spends its total
uses or budget also emits OfferClosed for the config topic; every copy of the configuration
then stops offering it (cart evaluation leaves it out) and refuses to extend it as completed
(DESIGN.md §5.11), while a purchase is still judged on it by its agent. Publishing the offer
again opens it."""

from datetime import timedelta

from processors.contract.config import OfferClosed, OfferClosure, OfferEndDateExtended
from processors.contract.offer_definition import RewardStoreListing
from processors.contract.offers import OfferBudgetExhausted
from processors.rules.member import Config
from processors.rules.offers import budget
from processors.rules.offers.evaluate import evaluate_cart, on_transaction
from processors.rules.offers.schedule import ExtensionRefusal
from tests.rules.given import T0, program
from tests.rules.offers.given_offers import ENDS, Member, offer, purchase, usage
from tests.rules.offers.test_budget import asked, run

CAPPED = offer("FIRST2", usage=usage(uses_total_max=2))


def closing(at=T0) -> OfferClosed:
    return OfferClosed(
        event_id="closed-1",
        occurred_at=at,
        offer_id="FIRST2",
        reason=OfferClosure.BUDGET_EXHAUSTED,
        cause_event_id="spent-1",
    )


def configured(*events) -> Config:
    config = Config()
    for event in (program(offer_end_date_extension_enabled=True), CAPPED, *events):
        assert config.apply(event) == "", event
    return config


def test_the_grant_that_spends_the_offer_closes_it_once():
    _, out = run(*(asked(f"m{n}", uses_total_max=2) for n in range(4)))
    (spent,) = [e for e in out if isinstance(e, OfferBudgetExhausted)]
    (closed,) = [e for e in out if isinstance(e, OfferClosed)]
    assert out.index(closed) == out.index(spent) + 1
    assert (closed.offer_id, closed.occurred_at) == ("FIRST2", spent.occurred_at)
    assert (closed.reason, closed.cause_event_id) == (OfferClosure.BUDGET_EXHAUSTED, spent.event_id)
    assert closed == budget.closed(spent)


def test_a_closed_offer_is_left_out_of_cart_evaluation_from_its_closing_on():
    config = configured(closing())
    member = Member(CAPPED)
    before = evaluate_cart(member.state, purchase("T0", cents=1000, at=T0 - timedelta(hours=1)),
                           config.catalogue, config.programs)  # fmt: skip
    after = evaluate_cart(member.state, purchase("T1", cents=1000, at=T0),
                          config.catalogue, config.programs)  # fmt: skip
    assert [e.offer_id for e in before.events] == ["FIRST2"]
    assert after.events == []
    assert after.awards == []


def test_a_purchase_is_still_judged_on_a_closed_offer_by_its_agent():
    # The till may hold a reservation made before the offer closed: only the agent knows.
    config = configured(closing())
    member = Member(CAPPED)
    evaluation = on_transaction(
        member.state, purchase("T1", cents=1000), config.catalogue, config.programs, config.end_of
    )
    assert [type(e).__name__ for e in evaluation.events] == ["OfferUseRequested"]


def test_extending_a_closed_offer_is_refused_as_completed():
    extension = OfferEndDateExtended(
        event_id="ext-1",
        occurred_at=T0,
        offer_id="FIRST2",
        ends_at=ENDS + timedelta(days=30),
        requested_by="alice",
    )
    assert configured().apply(extension) == ""
    note = configured(closing()).apply(extension)
    assert note == f"extension of FIRST2 refused: {ExtensionRefusal.OFFER_COMPLETED.explained()}"


def test_publishing_the_offer_again_opens_it():
    config = configured(closing(), offer("FIRST2", usage=usage(uses_total_max=5), event_id="v2"))
    assert config.catalogue.closed_at("FIRST2") is None
    assert config.catalogue.is_offered("FIRST2", T0)


def test_closing_an_offer_the_catalogue_does_not_hold_changes_nothing():
    config = Config()
    assert "ignored" in config.apply(closing())
    assert config.catalogue.closed_at("FIRST2") is None


def test_a_closed_reward_store_offer_is_sold_no_more():
    listing = RewardStoreListing(reward_store_id="CAFE", points_cost=300)
    config = Config()
    for event in (
        program(),
        offer("FIRST2", usage=usage(uses_total_max=2), reward_store=listing),
        closing(),
    ):
        config.apply(event)
    assert [o.offer_id for o in config.catalogue.for_sale(T0 - timedelta(hours=1))] == ["FIRST2"]
    assert config.catalogue.for_sale(T0) == []
