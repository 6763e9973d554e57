"""The demo feed behind the README's run command: a small, deterministic stream of member
enrolments and store transactions, produced to the contract's input topics on the real broker
and read back, so a newcomer sees events flow.

It grows with the engine: as processors land, the demo starts them and shows what they emit.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from loyalty.settings import Settings
from loyalty.topics import ENROLMENTS, TRANSACTIONS

CATALOGUE = [
    ("SKU-COFFEE-1KG", "GROCERY", "COFFEE", "Brûlerie", 1899),
    ("SKU-MILK-2L", "GROCERY", "DAIRY", "Laiterie", 549),
    ("SKU-SHAMPOO", "HEALTH_BEAUTY", "HAIR", "Belle", 1249),
    ("SKU-FUEL-REG", "FUEL", "REGULAR", "Gas", 165),
    ("SKU-BREAD", "GROCERY", "BAKERY", "Boulange", 399),
]
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def demo_events(members: int, *, seed: int = 7) -> Iterator[tuple[str, str, dict[str, object]]]:
    """(topic, key, event) triples in business-time order: enrolments, then transactions."""
    rng = random.Random(seed)
    for n in range(members):
        member_id = f"M{n:05d}"
        yield (
            ENROLMENTS.name,
            member_id,
            {
                "type": "MemberEnrolled",
                "event_id": f"enrol-{member_id}",
                "member_id": member_id,
                "program_id": "CA-MAIN",
                "market": "CA",
                "occurred_at": (START + timedelta(minutes=n)).isoformat(),
            },
        )
    for t in range(members * 3):
        member_id = f"M{rng.randrange(members):05d}"
        lines = []
        for line_no, (sku, category, subcategory, brand, price) in enumerate(
            rng.sample(CATALOGUE, k=rng.randint(1, 3))
        ):
            quantity = rng.randint(1, 3)
            lines.append({"line_id": str(line_no + 1), "sku": sku, "category": category,
                          "subcategory": subcategory, "brand": brand, "quantity": str(quantity),
                          "unit_price_cents": price, "amount_cents": price * quantity})  # fmt: skip
        yield (
            TRANSACTIONS.name,
            member_id,
            {
                "type": "TransactionCompleted",
                "event_id": f"tx-{t:06d}",
                "transaction_id": f"T{t:06d}",
                "member_id": member_id,
                "market": "CA",
                "currency": "CAD",
                "source": "INSTORE",
                "store": {
                    "store_id": f"S{rng.randint(1, 9):03d}",
                    "country": "CA",
                    "province": "QC",
                },
                "occurred_at": (START + timedelta(days=1, minutes=7 * t)).isoformat(),
                "lines": lines,
            },
        )


async def run_demo(settings: Settings, *, members: int, seconds: float, console: Console) -> int:
    """Produce the demo stream, consume it back from the broker and show a summary; returns
    how many events made the round trip."""
    bootstrap = settings.bootstrap_servers
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
            for topic, key, event in demo_events(members, seed=7 + round_no):
                event["event_id"] = f"{event['event_id']}-r{round_no}"
                await producer.send(topic, json.dumps(event).encode(), key=key.encode())
                sent += 1
            await producer.flush()
            round_no += 1
            if time.monotonic() >= deadline:
                break
        console.print(f"produced {sent} demo events to {ENROLMENTS.name} and {TRANSACTIONS.name}")
        received = await _read_back(consumer, sent, console)
    finally:
        await asyncio.gather(producer.stop(), consumer.stop())
    return received


async def _read_back(consumer: AIOKafkaConsumer, expected: int, console: Console) -> int:
    by_type: dict[str, int] = {}
    spend_cents = 0
    received = 0
    shown = 0
    give_up = time.monotonic() + 30
    while received < expected and time.monotonic() < give_up:
        for records in (await consumer.getmany(timeout_ms=500)).values():
            for record in records:
                event = json.loads(record.value)
                received += 1
                by_type[event["type"]] = by_type.get(event["type"], 0) + 1
                spend_cents += sum(line["amount_cents"] for line in event.get("lines", []))
                if shown < 5:
                    shown += 1
                    console.print(
                        f"  {record.topic}[{record.partition}]@{record.offset}"
                        f" key={record.key.decode()} {event['type']}"
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
