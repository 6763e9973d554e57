"""Targeting kinds and timings (DESIGN.md §5.17; seed 003 "Offer targeting"; ADR 13): who is
in an offer's audience, decided when, recorded by OfferTargeted."""

from datetime import date, timedelta

from processors.contract.activities import ActivityKind
from processors.contract.common import Source
from processors.contract.enrolments import MemberProfile, MemberProfileUpdated
from processors.contract.offer_definition import (
    TargetingAttribute as A,
)
from processors.contract.offer_definition import (
    TargetingCriterion,
    TargetingKind,
    TargetingTiming,
)
from processors.rules.offers.state import MemberOffers, PurchaseFacts
from processors.rules.offers.targeting import holds
from tests.rules.given import T0, day
from tests.rules.offers.given_offers import STARTS, item, purchase
from tests.rules.offers.given_targeting import Engine, audience, criteria, targeting

STATIC = TargetingTiming.STATIC


def member_with(**facts: object) -> MemberOffers:
    return MemberOffers(member_id="m1", programs=["CA_MAIN"], **facts)  # type: ignore[arg-type]


def test_mass_reaches_every_member_of_the_programme_without_a_decision():
    engine = Engine()
    engine.publish()
    engine.enrol("m1")
    engine.buy("m1", "T1")
    assert (engine.points("m1"), engine.targeted()) == (100, [])


def test_profile_criteria_city_province_postal_code_birthday_gender():
    state = member_with(
        profile=MemberProfile(
            city="Montréal",
            province="QC",
            postal_code="H2X 1Y4",
            birth_date=date(1990, 3, 14),
            gender="F",
        )
    )
    checks = [
        (A.CITY, ["montréal"], True), (A.CITY, ["Laval"], False),
        (A.PROVINCE, ["QC"], True), (A.PROVINCE, ["ON"], False),
        (A.POSTAL_CODE_PREFIX, ["h2x"], True), (A.POSTAL_CODE_PREFIX, ["H3"], False),
        (A.BIRTHDAY_MONTH, ["3"], True), (A.BIRTHDAY_MONTH, ["4"], False),
        (A.GENDER, ["f"], True), (A.GENDER, ["M"], False),
    ]  # fmt: skip
    got = [holds(TargetingCriterion(attribute=a, values=v), state, T0) for a, v, _ in checks]
    assert got == [want for _, _, want in checks]


def test_segments_and_scores_are_profile_attributes():
    state = member_with(profile=MemberProfile(attributes={"rfm": "champions", "tier": "GOLD"}),
                        tier="GOLD")  # fmt: skip
    rfm = TargetingCriterion(attribute=A.PROFILE_ATTRIBUTE, key="rfm", values=["champions"])
    other = TargetingCriterion(attribute=A.PROFILE_ATTRIBUTE, key="rfm", values=["at_risk"])
    tier = TargetingCriterion(attribute=A.TIER, values=["GOLD"])
    assert [holds(c, state, T0) for c in (rfm, other, tier)] == [True, False, True]


def test_age_and_days_since_enrolment():
    state = member_with(profile=MemberProfile(birth_date=date(2000, 3, 3)),
                        enrolled_at=T0 - timedelta(days=30))  # fmt: skip
    age = TargetingCriterion(attribute=A.AGE_YEARS, min_value=26)  # 26 on 2026-03-03
    tenure = TargetingCriterion(attribute=A.DAYS_SINCE_ENROLMENT, min_value=30, max_value=30)
    assert [holds(age, state, T0), holds(tenure, state, T0)] == [False, True]


def test_purchase_history_aggregates_over_the_lookback():
    history = [
        PurchaseFacts(at=T0 - timedelta(days=40), transaction_id="old", amount_cents=9000),
        PurchaseFacts(at=T0 - timedelta(days=10), transaction_id="a", amount_cents=3000,
                      category_cents={"DAIRY": 1000}),
        PurchaseFacts(at=T0 - timedelta(days=2), transaction_id="b", amount_cents=2001,
                      category_cents={"DAIRY": 500}),
    ]  # fmt: skip
    state = member_with(history=history, first_purchase_at=T0 - timedelta(days=40),
                        last_purchase_at=T0 - timedelta(days=2))  # fmt: skip

    def value(attribute: A, **kw: object) -> bool:
        return holds(TargetingCriterion(attribute=attribute, lookback_days=30, **kw), state, T0)  # type: ignore[arg-type]

    assert value(A.SPEND_CENTS, min_value=5001, max_value=5001)
    assert value(A.TRANSACTION_COUNT, min_value=2, max_value=2)
    assert value(A.AVERAGE_ORDER_CENTS, min_value=2501, max_value=2501)  # 2500.5 half-up
    assert value(A.CATEGORY_SPEND_CENTS, key="DAIRY", min_value=1500, max_value=1500)
    first = TargetingCriterion(attribute=A.DAYS_SINCE_FIRST_PURCHASE, min_value=40, max_value=40)
    last = TargetingCriterion(attribute=A.DAYS_SINCE_LAST_PURCHASE, max_value=2)
    assert holds(first, state, T0)
    assert holds(last, state, T0)
    # As of 5 days ago the last purchase was the one 10 days ago.
    assert not holds(last, state, T0 - timedelta(days=5))


def test_digital_engagement_and_communications_history():
    state = member_with(app_downloaded_at=T0 - timedelta(days=3),
                        logins=[T0 - timedelta(days=20), T0 - timedelta(days=1)],
                        email_clicks=[T0 - timedelta(days=50), T0 - timedelta(days=5)])  # fmt: skip
    download = TargetingCriterion(attribute=A.DAYS_SINCE_APP_DOWNLOAD, max_value=7)
    login = TargetingCriterion(attribute=A.DAYS_SINCE_LAST_LOGIN, max_value=1)
    click = TargetingCriterion(attribute=A.DAYS_SINCE_LAST_EMAIL_CLICK, max_value=7)
    clicks = TargetingCriterion(attribute=A.EMAIL_CLICK_COUNT, lookback_days=30, min_value=2)
    assert [holds(c, state, T0) for c in (download, login, click, clicks)] == [
        True, True, True, False]  # fmt: skip


def test_a_member_without_the_fact_never_matches():
    state = member_with()
    tests = [
        TargetingCriterion(attribute=A.CITY, values=["Laval"]),
        TargetingCriterion(attribute=A.DAYS_SINCE_LAST_LOGIN, max_value=1000),
        TargetingCriterion(attribute=A.AVERAGE_ORDER_CENTS, lookback_days=30, min_value=0),
    ]
    assert [holds(c, state, T0) for c in tests] == [False, False, False]


def test_the_engine_keeps_purchase_and_engagement_facts_from_the_member_s_inputs():
    engine = Engine()
    engine.publish(targeting=criteria(
        TargetingCriterion(attribute=A.CATEGORY_SPEND_CENTS, key="DAIRY", lookback_days=30,
                           min_value=2000)))  # fmt: skip
    engine.enrol("m1")
    engine.feed(purchase("T1", item("1", 1500, category="DAIRY"), at=T0 - timedelta(hours=5)))
    assert engine.points("m1") == 0
    assert engine.targeted() == []
    # Dynamic: judged as of the purchase, the purchase included (1500 + 1000 dairy).
    engine.feed(purchase("T2", item("1", 1000, category="DAIRY"), at=T0))
    assert engine.targeted() == [("m1", "OFFER_T", False)]
    assert engine.points("m1") == 100


def test_dynamic_lets_a_member_qualify_during_the_offer():
    engine = Engine()
    engine.publish(targeting=criteria(
        TargetingCriterion(attribute=A.DAYS_SINCE_APP_DOWNLOAD, max_value=30)))  # fmt: skip
    engine.enrol("m1")
    engine.buy("m1", "T1", at=T0)
    engine.act("m1", ActivityKind.APP_DOWNLOAD, at=T0 + timedelta(hours=1))
    engine.buy("m1", "T2", at=T0 + timedelta(hours=2))
    assert engine.points("m1") == 100
    assert engine.targeted() == [("m1", "OFFER_T", False)]


def test_static_list_audience_is_decided_at_publication_for_members_who_never_act():
    engine = Engine()
    engine.enrol("m1")
    engine.enrol("m2")
    engine.feed(audience("VIP", "m1", "m9"))
    engine.publish(targeting=targeting(TargetingKind.AUDIENCE_LIST, STATIC, audience_id="VIP"))
    assert engine.targeted() == [("m1", "OFFER_T", False)]
    targeted = next(e for e in engine.outputs if type(e).__name__ == "OfferTargeted")
    assert targeted.cause_event_id == "pub-OFFER_T"
    engine.buy("m1", "T1")
    engine.buy("m2", "T2")
    assert (engine.points("m1"), engine.points("m2")) == (100, 0)


def test_a_listed_member_who_enrols_later_is_decided_at_the_first_behaviour_with_the_same_event():
    engine = Engine()
    engine.feed(audience("VIP", "m9"))
    engine.publish(targeting=targeting(TargetingKind.AUDIENCE_LIST, STATIC, audience_id="VIP"))
    engine.enrol("m9", at=T0 - timedelta(hours=2))
    engine.buy("m9", "T1")
    assert engine.targeted() == [("m9", "OFFER_T", False)]
    assert engine.points("m9") == 100


def test_an_audience_upload_counts_once_all_its_parts_arrived_and_replaces_the_previous():
    engine = Engine()
    engine.feed(audience("VIP", "m1"))
    engine.feed(audience("VIP", "m2", part=2, parts=2, upload="U2"))
    assert engine.sim.config.audiences.members["VIP"] == {"m1"}
    engine.feed(audience("VIP", "m3", part=1, parts=2, upload="U2"))
    assert engine.sim.config.audiences.members["VIP"] == {"m2", "m3"}


def test_static_criteria_are_judged_as_of_publication():
    engine = Engine()
    engine.enrol("m1", province="QC")
    engine.enrol("m2", province="ON")
    engine.publish(targeting=criteria(
        TargetingCriterion(attribute=A.PROVINCE, values=["QC"]), timing=STATIC))  # fmt: skip
    engine.enrol("m3", at=STARTS, province="QC")  # after the publication: not in the audience
    for member in ("m1", "m2", "m3"):
        engine.buy(member, f"T{member}")
    assert [engine.points(m) for m in ("m1", "m2", "m3")] == [100, 0, 0]
    assert engine.targeted() == [("m1", "OFFER_T", False)]


def test_static_decision_stays_when_facts_change_later():
    engine = Engine()
    engine.enrol("m1", province="QC")
    engine.publish(targeting=criteria(
        TargetingCriterion(attribute=A.PROVINCE, values=["QC"]), timing=STATIC))  # fmt: skip
    engine.feed(MemberProfileUpdated(event_id="p1", occurred_at=T0 - timedelta(hours=3),
                                     member_id="m1", source=Source.APP,
                                     profile=MemberProfile(province="ON")))  # fmt: skip
    engine.buy("m1", "T1")
    assert engine.points("m1") == 100


def test_delayed_static_is_decided_on_the_first_day_at_or_after_targeting_at():
    engine = Engine()
    engine.enrol("m1", province="QC")
    at = T0 - timedelta(days=3)
    delayed = criteria(TargetingCriterion(attribute=A.PROVINCE, values=["QC"]),
                       timing=TargetingTiming.DELAYED_STATIC, targeting_at=at)  # fmt: skip
    engine.publish(targeting=delayed, at=T0 - timedelta(days=20))
    engine.feed(day(date(2026, 2, 26)))  # before targeting_at
    assert engine.targeted() == []
    engine.feed(day(date(2026, 2, 28)))  # the first day after it
    assert engine.targeted() == [("m1", "OFFER_T", False)]
    engine.feed(day(date(2026, 3, 1)))
    assert len(engine.targeted()) == 1
    engine.buy("m1", "T1")
    assert engine.points("m1") == 100
