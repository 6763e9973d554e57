"""Saved audiences defined by a query (seed 003, "Audience targeting -- audiences";
docs/adr/0029-gaps-closed.md): defined once (AudienceDefined), named by several offers
(AUDIENCE_LIST + audience_id), judged like an offer's own criteria at the moment targeting is
decided; an audience id is a query or an uploaded list, whichever came last."""

from datetime import timedelta

from processors.contract.config import AudienceDefined
from processors.contract.offer_definition import TargetingAttribute as A
from processors.contract.offer_definition import TargetingCriterion, TargetingKind
from processors.contract.offer_definition import TargetingTiming as Timing
from tests.rules.given import T0
from tests.rules.offers.given_offers import STARTS
from tests.rules.offers.given_targeting import Engine, audience, targeting

IN_QUEBEC = [TargetingCriterion(attribute=A.PROVINCE, values=["QC"])]


def defined(audience_id: str, criteria: list[TargetingCriterion], n: int = 1) -> AudienceDefined:
    return AudienceDefined(
        event_id=f"aud-{audience_id}-{n}",
        occurred_at=T0 - timedelta(days=20),
        audience_id=audience_id,
        name="Quebec members",
        criteria=criteria,
    )


def saved(audience_id: str = "QUEBEC", timing: Timing = Timing.DYNAMIC):
    return targeting(TargetingKind.AUDIENCE_LIST, timing, audience_id=audience_id)


def test_one_saved_audience_serves_several_offers():
    engine = Engine()
    engine.feed(defined("QUEBEC", IN_QUEBEC))
    engine.publish("OFFER_A", targeting=saved())
    engine.publish("OFFER_B", targeting=saved())
    engine.enrol("m1", province="QC")
    engine.enrol("m2", province="ON")
    engine.buy("m1", "T1")
    engine.buy("m2", "T2")
    assert engine.points("m1") == 200  # both offers
    assert engine.points("m2") == 0
    assert sorted(engine.targeted()) == [("m1", "OFFER_A", False), ("m1", "OFFER_B", False)]


def test_a_static_offer_judges_the_saved_query_as_of_its_publication():
    engine = Engine()
    engine.feed(defined("QUEBEC", IN_QUEBEC))
    engine.enrol("m1", province="QC")
    engine.publish(targeting=saved(timing=Timing.STATIC))
    engine.enrol("m3", at=STARTS, province="QC")  # after the publication: not in the audience
    engine.buy("m1", "T1")
    engine.buy("m3", "T3")
    assert (engine.points("m1"), engine.points("m3")) == (100, 0)


def test_an_audience_id_is_a_query_or_a_list_whichever_came_last():
    engine = Engine()
    engine.feed(audience("QUEBEC", "m2"))
    engine.feed(defined("QUEBEC", IN_QUEBEC))
    audiences = engine.sim.config.audiences
    assert audiences.query("QUEBEC") == tuple(IN_QUEBEC)
    assert "QUEBEC" not in audiences.members
    engine.feed(audience("QUEBEC", "m2", upload="U2"))
    assert audiences.query("QUEBEC") is None
    assert audiences.members["QUEBEC"] == {"m2"}
