"""`loyalty offers publish` against the real broker: offer files in, OfferPublished out on the
config topic, keyed by offer_id, decoding back to the offers the files define."""

import asyncio
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from click.testing import CliRunner

from loyalty.cli import main
from processors.codec.avro import AvroCodec
from processors.offer_files import load_offer_files

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "offers"


async def read_all(bootstrap: str, topic: str, want: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[tuple[bytes, bytes]] = []
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        deadline = asyncio.get_running_loop().time() + 20
        while len(records) < want and asyncio.get_running_loop().time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=300)).values():
                records += [(r.key, r.value) for r in batch]
    finally:
        await consumer.stop()
    return records


def test_publish_produces_each_offer_keyed_by_offer_id_and_it_decodes_back_equal(
    config_topic, stack_settings, tmp_path
):
    # Two files: YAML with an uploaded product list beside it, and JSON with two offers.
    for name in ("fuel.yaml", "fuel-skus.csv", "multipliers.json"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    files = [tmp_path / "fuel.yaml", tmp_path / "multipliers.json"]
    before = datetime.now(UTC).replace(microsecond=0)

    result = CliRunner().invoke(main, ["offers", "publish", *map(str, files)])

    assert result.exit_code == 0, result.output
    assert f"published 3 offer(s) to {config_topic}" in result.stderr
    records = asyncio.run(read_all(stack_settings.bootstrap_servers, config_topic, 3))
    codec = AvroCodec()
    published = [codec.decode(value) for _, value in records]
    assert [key.decode() for key, _ in records] == [e.offer_id for e in published]
    occurred_at = published[0].occurred_at
    assert before <= occurred_at <= datetime.now(UTC)
    expected = load_offer_files(files, published_at=occurred_at).events
    assert published == expected
    assert [e.offer_id for e in published] == [
        "FUEL_300_PER_FILL_DEC26",
        "SNACKS_3X_DEC26",
        "GOLD_TIER_BONUS_DEC26",
    ]
    assert published[0].behaviours[0].products.skus == [
        "FUEL-REGULAR-87",
        "FUEL-MIDGRADE-89",
        "FUEL-PREMIUM-91",
        "FUEL-DIESEL",
    ]
    for event in published:
        assert f"as {event.event_id}" in result.stdout
