"""A realistic load for the worker's own code (issue #16): many members, a catalogue of live
offers of mixed kinds, baskets of 1-30 lines, and returns, redemptions and activities among
the purchases, generated from a seed so every run measures the same records.

The offers are the examples in `examples/offers/` (spend tiers, multipliers, fuel litres,
item and cart discounts), copied under new ids until the catalogue holds `offers` of them,
each live for the whole load and open to every member (mass, dynamic, automatic); baskets
draw half of their lines from the product categories those offers name.

`python -m loyalty.bench.mix --members 100000 --events 100000` prints the pure path's rate on
this mix (the batch protocol, no Kafka); `--profile FILE` writes a cProfile of the timed part,
`--pyinstrument FILE` its call tree as text; `--history N` gives each member N events first,
untimed, so the timed ones meet the state a regular shopper has.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from loyalty.bench.pure import AckedAtOnce, as_delivered
from loyalty.bench.report import Measurement
from processors.agents.members import Members
from processors.base.settings import REPO_ROOT
from processors.base.tuning import tune_gc
from processors.codec.avro import AvroCodec
from processors.codec.json_form import from_json_object
from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.base import Event
from processors.contract.common import PointsCategory, Source, Store
from processors.contract.config import (
    ExpiryPolicy,
    ExpiryPolicyKind,
    OfferPublished,
    PointsRedemptionRule,
    ProgramConfigured,
)
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.redemptions import PointsRedemptionRequested, ProgramAllocation
from processors.contract.transactions import (
    ReturnedLine,
    TransactionCompleted,
    TransactionLine,
    TransactionReturned,
)
from processors.frontdoor import FrontDoor
from processors.offer_files import find_offer_files, load_offer_files
from processors.rules.member import Config
from processors.runtime.batch import Batches
from processors.runtime.table import Table

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PROGRAM_ID = "CA_REWARDS"
CATEGORIES = ("GROCERY", "BAKERY", "DAIRY", "HOME", "BEAUTY", "SNACKS", "DRINKS", "FUEL")


def program() -> ProgramConfigured:
    return ProgramConfigured(
        event_id="mix-program", occurred_at=START - timedelta(days=30), program_id=PROGRAM_ID,
        name="Mix", market="CA", currency="CAD", time_zone="America/Toronto",
        categories=[PointsCategory.REGULAR], points_per_currency_unit=Decimal("1"),
        expiry=ExpiryPolicy(kind=ExpiryPolicyKind.DAYS_AFTER_EARN, days=365),
        points_redemption=PointsRedemptionRule(points_per_block=100, cents_per_block=100),
    )  # fmt: skip


def offers(count: int) -> list[OfferPublished]:
    """`count` live offers copied from the examples (see the module): one in ten on the whole
    basket, in two stacking groups; the others each on one product category of their own
    (`CAT000`...), as most offers of a real catalogue are."""
    files = load_offer_files(
        find_offer_files([REPO_ROOT / "examples" / "offers"]), published_at=START
    )
    templates = [o for o in files.events if isinstance(o, OfferPublished)]
    assert templates, "examples/offers/ holds the templates"
    out = []
    for n in range(count):
        data: dict[str, Any] = templates[n % len(templates)].model_dump(mode="json")
        basket = n % 10 == 0 and all(b["kind"] == "SPEND" for b in data["behaviours"])
        data.update(
            type="OfferPublished", event_id=f"mix-offer-{n}", offer_id=f"MIX_{n:04d}",
            occurred_at=(START - timedelta(days=2)).isoformat(), rank=1 + n % 9,
            program_id=PROGRAM_ID, stacking_group=f"BASKET{n % 2}" if basket else None,
            targeting={"kind": "MASS", "timing": "DYNAMIC"},
            activation={"kind": "AUTOMATIC"},
        )  # fmt: skip
        data["schedule"] = {"starts_at": (START - timedelta(days=1)).isoformat(),
                            "ends_at": (START + timedelta(days=365)).isoformat()}  # fmt: skip
        for behaviour in data["behaviours"]:
            behaviour["products"] = None if basket else {"categories": [f"CAT{n:03d}"]}
        discount = (data.get("reward") or {}).get("discount")
        if discount and discount.get("products"):
            discount["products"] = None if basket else {"categories": [f"CAT{n:03d}"]}
        out.append(from_json_object(data))
    return out  # type: ignore[return-value]


def _products(catalogue: list[OfferPublished]) -> list[tuple[str, str]]:
    """(sku, category) pairs the offers name, for half of the basket lines."""
    named = {
        (f"SKU-{category}-{k}", category)
        for offer in catalogue
        for behaviour in offer.behaviours
        if behaviour.products is not None
        for category in behaviour.products.categories
        for k in range(5)
    }
    return sorted(named) or [("SKU-1", "GROCERY")]


def load(
    members: int, events: int, offer_count: int, seed: int = 16
) -> tuple[Config, list[Event], list[Event]]:
    """The configuration, the enrolments, and `events` member events (purchases with 5 %
    returns, 2 % redemptions and 3 % activities among them)."""
    rng = random.Random(seed)
    catalogue = offers(offer_count)
    config = Config()
    for event in [program(), *catalogue]:
        config.apply(event)
    named = _products(catalogue)
    ids = [f"MX{m:07d}" for m in range(members)]
    enrolments: list[Event] = [
        MemberEnrolled(
            event_id=f"mix-enrol-{m}",
            occurred_at=START,
            member_id=m,
            market="CA",
            program_ids=[PROGRAM_ID],
            source=Source.APP,
            profile=MemberProfile(first_name="Mix"),
        )
        for m in ids
    ]
    stream: list[Event] = []
    bought: list[TransactionCompleted] = []
    for n in range(events):
        at = START + timedelta(seconds=n)
        roll = rng.random()
        member = rng.choice(ids)
        if roll < 0.05 and bought:
            tx = rng.choice(bought)
            line = rng.choice(tx.lines)
            stream.append(TransactionReturned(
                event_id=f"mix-ret-{n}", occurred_at=max(at, tx.occurred_at), return_id=f"R{n}",
                transaction_id=tx.transaction_id, member_id=tx.member_id, market="CA",
                currency="CAD", source=Source.INSTORE, store=tx.store,
                lines=[ReturnedLine(line_id=line.line_id, quantity=line.quantity,
                                    amount_cents=line.amount_cents)],
            ))  # fmt: skip
        elif roll < 0.07:
            stream.append(PointsRedemptionRequested(
                event_id=f"mix-red-{n}", occurred_at=at, command_id=f"C{n}", member_id=member,
                allocations=[ProgramAllocation(program_id=PROGRAM_ID, points=100)],
                source=Source.APP,
            ))  # fmt: skip
        elif roll < 0.10:
            kind = rng.choice((ActivityKind.FIRST_LOGIN, ActivityKind.PROFILE_COMPLETED,
                               ActivityKind.EMAIL_CLICKED))  # fmt: skip
            activity = ActivityRecorded(event_id=f"mix-act-{n}", occurred_at=at,
                                        member_id=member, kind=kind, source=Source.APP)  # fmt: skip
            stream.append(activity)
        else:
            lines = []
            for i in range(rng.randint(1, 30)):
                if rng.random() < 0.5:
                    sku, category = rng.choice(named)
                else:
                    sku, category = f"SKU-{rng.randint(1, 5000)}", rng.choice(CATEGORIES)
                quantity = Decimal(rng.randint(1, 3))
                price = rng.randint(99, 4999)
                lines.append(TransactionLine(
                    line_id=str(i + 1), sku=sku, category=category, quantity=quantity,
                    unit_price_cents=price, amount_cents=price * int(quantity),
                ))  # fmt: skip
            tx = TransactionCompleted(
                event_id=f"mix-tx-{n}", occurred_at=at, transaction_id=f"T{n}",
                member_id=member, market="CA", currency="CAD", source=Source.INSTORE,
                store=Store(store_id=f"S{rng.randint(1, 40)}", province="ON"), lines=lines,
            )  # fmt: skip
            bought.append(tx)
            stream.append(tx)
    return config, enrolments, stream


def _with_history(
    members: int, events: int, offer_count: int, history: int
) -> tuple[Config, list[Event], list[Event]]:
    """`load`'s configuration, the untimed part (the enrolments, then `history` events a
    member on average) and the `events` to time."""
    config, enrolments, stream = load(members, events + history * members, offer_count)
    return config, enrolments + stream[: history * members], stream[history * members :]


async def measure_mix(
    *,
    members: int,
    events: int,
    offer_count: int = 200,
    batch: int = 2000,
    partitions: int = 8,
    history: int = 0,
    timed: Callable[[], AbstractContextManager[object]] = nullcontext,
    sent: Counter[str] | None = None,
) -> Measurement:
    """Enrol `members` and give them `history` events each on average (untimed: the state a
    member has when its next purchase comes), then time `events` through the batch protocol,
    no Kafka; `timed` wraps the timed part alone (a profiler), `sent` counts what the timed
    part sent to each topic (the end-to-end run waits for as many ledger events)."""
    tune_gc()
    codec = AvroCodec()
    config, enrolments, stream = _with_history(members, events, offer_count, history)
    producer = AckedAtOnce()
    table = Table("ledgers_by_member", "bench.changelog", partitions)
    batches = Batches(Members(config), codec=codec, door=FrontDoor(codec, producer),
                      producer=producer, topic_name=str, table=table)  # fmt: skip

    async def run(records: list[Any]) -> None:
        for start in range(0, len(records), batch):
            await batches.run_batch(records[start : start + batch])

    await run(as_delivered(codec, enrolments, partitions))
    stream_records = as_delivered(codec, stream, partitions)
    started, cpu = time.perf_counter(), time.process_time()
    before = Counter(producer.by_topic)
    saved_before = producer.bytes_by_topic[table.changelog]
    with timed():
        await run(stream_records)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    saved = (producer.bytes_by_topic[table.changelog] - saved_before) / max(events, 1)
    if sent is not None:
        sent.update(producer.by_topic - before)
    return Measurement(
        "pure path, realistic mix", "events", events, seconds,
        f"{members:,} members{f' with {history} events of history each' if history else ''}, "
        f"{offer_count} live offers, baskets of 1-30 lines, 5 % returns, 2 % redemptions, "
        f"3 % activities; {cpu:.2f} s CPU; state saved {saved / 1024:.1f} KiB an event",
    )  # fmt: skip


def measure_codec_floor(
    *, members: int, events: int, offer_count: int = 200, history: int = 0
) -> Measurement:
    """The pure path's floor on the same records: each decoded and validated at the front
    door, then encoded again, and nothing else (what any worker of this contract pays)."""
    codec = AvroCodec()
    _, _, stream = _with_history(members, events, offer_count, history)
    records = as_delivered(codec, stream, 8)
    started, cpu = time.perf_counter(), time.process_time()
    for record in records:
        codec.encode(codec.decode(record.value))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Measurement(
        "  baseline: decode → validate → encode, same records", "events", events, seconds,
        f"the contract edge alone, no rules, no state; {cpu:.2f} s CPU",
    )  # fmt: skip


@contextmanager
def _cprofile(path: Path) -> Iterator[object]:
    import cProfile

    # CPU time, not wall time: on a shared machine the wall clock counts other processes.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        yield profiler
    finally:
        profiler.disable()
        profiler.dump_stats(path)


@contextmanager
def _pyinstrument(path: Path) -> Iterator[object]:
    from pyinstrument import Profiler  # a developer's tool: `pip install pyinstrument`

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        yield profiler
    finally:
        profiler.stop()
        path.write_text(profiler.output_text(unicode=True, show_all=False))


def main() -> None:  # pragma: no cover - a developer's tool
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--offers", type=int, default=200)
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="events a member has had before the timed ones, on average",
    )
    parser.add_argument("--batch", type=int, default=2000, help="records a batch")
    parser.add_argument("--profile", type=Path, default=None, help="a cProfile of the timed part")
    parser.add_argument("--pyinstrument", type=Path, default=None, help="its call tree, as text")
    args = parser.parse_args()
    timed: Callable[[], AbstractContextManager[object]] = nullcontext
    if args.profile is not None:
        timed = partial(_cprofile, args.profile)
    elif args.pyinstrument is not None:
        timed = partial(_pyinstrument, args.pyinstrument)
    sizes = {"members": args.members, "events": args.events, "offer_count": args.offers}
    m = asyncio.run(measure_mix(**sizes, batch=args.batch, history=args.history, timed=timed))
    print(f"{m.name}: {m.count} {m.unit} in {m.seconds:.2f} s = {m.rate:,.0f}/s ({m.note})")
    floor = measure_codec_floor(**sizes, history=args.history)
    print(f"{floor.name.strip()}: {floor.rate:,.0f}/s ({floor.note}); mix / baseline = "
          f"{m.rate / floor.rate:.3f}")  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    main()
