"""The realistic mix of the performance benchmark stays what it says: valid offers of mixed
kinds, each live and open to every member, and a stream with purchases, returns, redemptions
and activities that the worker's own code runs without a dead letter."""

from __future__ import annotations

from collections import Counter

from prometheus_client import REGISTRY

from loyalty.bench.mix import START, load, measure_codec_floor, measure_mix
from processors.base.topics import LEDGER
from processors.contract.offer_definition import OfferRewardKind


def test_the_mix_holds_offers_of_mixed_kinds_live_for_the_whole_load():
    config, enrolments, stream = load(members=20, events=400, offer_count=40)
    offers = [config.catalogue.get(f"MIX_{n:04d}") for n in range(40)]
    assert all(o is not None and o.schedule.starts_at < START for o in offers)
    kinds = Counter(o.reward.kind for o in offers if o is not None)
    assert OfferRewardKind.DISCOUNT in kinds
    assert len(kinds) >= 3
    assert len(enrolments) == 20
    counts = Counter(type(e).__name__ for e in stream)
    assert counts["TransactionCompleted"] > 300
    assert {"TransactionReturned", "PointsRedemptionRequested", "ActivityRecorded"} <= set(counts)


def _refused() -> float:
    failed = REGISTRY.get_sample_value("loyalty_rule_failures_total", {"agent": "members"})
    dead = sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "loyalty_dead_letters"
        for sample in metric.samples
        if sample.name == "loyalty_dead_letters_total"
    )
    return (failed or 0.0) + dead


async def test_the_mix_runs_through_the_batch_protocol_without_a_refusal():
    before = _refused()
    measured = await measure_mix(members=20, events=200, offer_count=40)
    assert measured.count == 200
    assert _refused() == before


async def test_the_mix_counts_what_it_sent_for_the_end_to_end_run_to_wait_for():
    sent: Counter[str] = Counter()
    await measure_mix(members=20, events=200, offer_count=40, sent=sent)
    purchases = sum(1 for e in load(20, 200, 40)[2] if type(e).__name__ == "TransactionCompleted")
    assert sent[LEDGER.name] >= purchases  # a purchase's own event, and the offers' awards


def test_the_codec_floor_runs_the_same_records():
    floor = measure_codec_floor(members=20, events=200, offer_count=40)
    assert floor.count == 200


async def test_the_mix_times_only_what_follows_the_members_history():
    sent: Counter[str] = Counter()
    measured = await measure_mix(members=10, events=60, offer_count=40, history=6, sent=sent)
    assert measured.count == 60
    assert "6 events of history each" in measured.note
    timed = load(10, 120, 40)[2][60:]
    purchases = sum(1 for e in timed if type(e).__name__ == "TransactionCompleted")
    whole: Counter[str] = Counter()
    await measure_mix(members=10, events=120, offer_count=40, sent=whole)  # the same stream
    assert purchases <= sent[LEDGER.name] < whole[LEDGER.name]  # the history's are not counted
    floor = measure_codec_floor(members=10, events=60, offer_count=40, history=6)
    assert floor.count == 60
