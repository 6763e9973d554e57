"""The demo feed behind the README's run command: a small, deterministic stream of member
enrolments and store transactions, produced to the contract's input topics on the real broker
and read back, so a newcomer sees events flow.

It grows with the engine: as processors land, the demo starts them and shows what they emit.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from loyalty.settings import Settings
from loyalty.topics import ENROLMENTS, TRANSACTIONS
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.common import Source, Store
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.transactions import TransactionCompleted, TransactionLine

CATALOGUE = [
    ("SKU-COFFEE-1KG", "GROCERY", "COFFEE", "Brûlerie", 1899),
    ("SKU-MILK-2L", "GROCERY", "DAIRY", "Laiterie", 549),
    ("SKU-SHAMPOO", "HEALTH_BEAUTY", "HAIR", "Belle", 1249),
    ("SKU-FUEL-REG", "FUEL", "REGULAR", "Gas", 165),
    ("SKU-BREAD", "GROCERY", "BAKERY", "Boulange", 399),
]
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def demo_events(members: int, *, seed: int = 7) -> Iterator[Event]:
    """Contract events in business-time order: enrolments, then purchases."""
    rng = random.Random(seed)
    for n in range(members):
        member_id = f"M{n:05d}"
        yield MemberEnrolled(
            event_id=f"enrol-{member_id}",
            occurred_at=START + timedelta(minutes=n),
            member_id=member_id,
            market="CA",
            program_ids=["CA_REWARDS"],
            source=Source.APP,
            profile=MemberProfile(first_name=f"Demo {n}", province="QC", country="CA"),
        )
    for t in range(members * 3):
        lines = []
        for line_no, (sku, category, subcategory, brand, price) in enumerate(
            rng.sample(CATALOGUE, k=rng.randint(1, 3))
        ):
            quantity = rng.randint(1, 3)
            lines.append(
                TransactionLine(line_id=str(line_no + 1), sku=sku, category=category,
                                subcategory=subcategory, brand=brand, quantity=Decimal(quantity),
                                unit_price_cents=price, amount_cents=price * quantity)
            )  # fmt: skip
        yield TransactionCompleted(
            event_id=f"tx-{t:06d}",
            occurred_at=START + timedelta(days=1, minutes=7 * t),
            transaction_id=f"T{t:06d}",
            member_id=f"M{rng.randrange(members):05d}",
            market="CA",
            currency="CAD",
            source=Source.INSTORE,
            store=Store(store_id=f"S{rng.randint(1, 9):03d}", country="CA", province="QC"),
            lines=lines,
        )


async def run_demo(settings: Settings, *, members: int, seconds: float, console: Console) -> int:
    """Produce the demo stream, consume it back from the broker and show a summary; returns
    how many events made the round trip."""
    bootstrap = settings.bootstrap_servers
    codec = AvroCodec()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    consumer = AIOKafkaConsumer(
        ENROLMENTS.name,
        TRANSACTIONS.name,
        bootstrap_servers=bootstrap,
        group_id=f"demo-viewer-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await asyncio.gather(producer.start(), consumer.start())
    try:
        # Wait for the assignment, so "latest" starts before the first demo record is written.
        while not consumer.assignment():
            await asyncio.sleep(0.1)
        for partition in consumer.assignment():
            await consumer.position(partition)
        deadline = time.monotonic() + seconds
        sent = 0
        round_no = 0
        while True:
            for event in demo_events(members, seed=7 + round_no):
                event = event.model_copy(update={"event_id": f"{event.event_id}-r{round_no}"})
                await producer.send(
                    event.topic, codec.encode(event), key=event.partition_key().encode()
                )
                sent += 1
            await producer.flush()
            round_no += 1
            if time.monotonic() >= deadline:
                break
        console.print(f"produced {sent} demo events to {ENROLMENTS.name} and {TRANSACTIONS.name}")
        received = await _read_back(consumer, codec, sent, console)
    finally:
        await asyncio.gather(producer.stop(), consumer.stop())
    return received


async def _read_back(
    consumer: AIOKafkaConsumer, codec: AvroCodec, expected: int, console: Console
) -> int:
    by_type: dict[str, int] = {}
    spend_cents = 0
    received = 0
    shown = 0
    give_up = time.monotonic() + 30
    while received < expected and time.monotonic() < give_up:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for record in records:
                event = codec.decode(record.value)
                name = type(event).__name__
                received += 1
                by_type[name] = by_type.get(name, 0) + 1
                if isinstance(event, TransactionCompleted):
                    spend_cents += sum(line.amount_cents for line in event.lines)
                if shown < 5:
                    shown += 1
                    console.print(
                        f"  {record.topic}[{record.partition}]@{record.offset}"
                        f" key={record.key.decode()} {name}"
                    )
    table = Table(title="demo stream read back from the broker")
    table.add_column("event type")
    table.add_column("count", justify="right")
    for name, count in sorted(by_type.items()):
        table.add_row(name, str(count))
    table.add_row("total spend", f"{spend_cents // 100:,}.{spend_cents % 100:02d} CAD")
    console.print(table)
    console.print(f"round trip: {received}/{expected} events")
    return received
