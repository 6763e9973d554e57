"""The worker's runtime on the real broker: it reads every version of every event it
consumes, dead-letters every bad record once where it was, the audit sees what it has not run,
and a stall turns /healthz unhealthy."""

from __future__ import annotations

import asyncio
import io
import json
import random
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import fastavro
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from loyalty import stack
from loyalty.audit import audit, read_topic, uncommitted
from loyalty.producing import publish_events
from loyalty.services import Services
from processors.app import consumer_groups
from processors.base.settings import Settings
from processors.codec.avro import AvroCodec
from processors.codec.framing import frame_single_object
from processors.codec.schemas import expanded, named_types
from processors.contract.activities import ActivityKind
from processors.contract.catalogue import all_events
from processors.contract.deadletter import DeadLettered
from processors.contract.enrolments import MemberEnrolled
from tests.rules.given import T0, activity, bought, day, enrolled, program, redeem

pytestmark = pytest.mark.integration
GOLDEN = Path("tests/golden")


async def until(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.5)
    return bool(await predicate())


def all_committed(settings: Settings) -> Callable[[], Awaitable[bool]]:
    """For `until`: whether the worker's groups have committed every record there is."""

    async def committed() -> bool:
        return await uncommitted(settings) == 0

    return committed


async def run_a_worker_until_all_is_committed(settings: Settings, log_dir) -> None:  # type: ignore[no-untyped-def]
    """Start a worker, wait until its groups have committed every record there is, stop it."""
    services = Services(settings, log_dir)
    worker = services.start("worker", "worker")
    try:
        assert await until(all_committed(settings), 120), worker.log_tail()
    finally:
        services.stop()


def health(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


async def test_every_recorded_version_of_every_event_the_worker_reads_is_admitted(
    isolated, tmp_path
):  # type: ignore[no-untyped-def]
    codec = AvroCodec.with_history()
    consumed = {spec.name for _, specs in consumer_groups(isolated).values() for spec in specs}
    records = []
    for folder in sorted(GOLDEN.iterdir()):
        for golden in sorted(folder.glob("*.avro")):
            raw = golden.read_bytes()
            event = codec.decode(raw)
            if event.topic in consumed:
                records.append((isolated.topic(event.topic), event.partition_key().encode(), raw))
    versions = {(topic, raw[:10]) for topic, _, raw in records}
    assert len(versions) >= 20  # every input event, with the older versions among them
    # The programmes the recorded enrolments join exist (an enrolment into an unknown one is
    # refused, ADR 19): configured first, the recorded configuration after them.
    joined = {p for _, _, raw in records if isinstance(e := codec.decode(raw), MemberEnrolled)
              for p in e.program_ids}  # fmt: skip
    await publish_events(isolated, [program(p, event_id=f"cfg-{p}") for p in sorted(joined)])
    producer = AIOKafkaProducer(bootstrap_servers=isolated.bootstrap_servers)
    await producer.start()
    try:
        for topic, key, raw in records:
            await producer.send_and_wait(topic, raw, key=key)
    finally:
        await producer.stop()
    await run_a_worker_until_all_is_committed(isolated, tmp_path)
    dead = [
        codec.decode(value)
        for _, value in await read_topic(
            isolated.bootstrap_servers, isolated.topic("loyalty.deadletter.v1"), 8
        )
    ]
    refused = [(d.event_type, d.reason.value, d.error[:120]) for d in dead
               if isinstance(d, DeadLettered)]  # fmt: skip
    assert refused == []


async def test_the_audit_lists_records_the_engine_has_not_run(isolated, tmp_path):  # type: ignore[no-untyped-def]
    config = program("AUDIT", event_id="cfg-audit")
    members = [f"a-{n}" for n in range(5)]
    events = [enrolled(m, programs=["AUDIT"]) for m in members]
    events += [bought(m, f"{m}-T", cents=1000, at=T0) for m in members]
    # Found by a user's trial to be unaccounted: a purchase sent again under another event
    # id (booked once), and one that earns nothing (now booked with a 0-point entry).
    events += [
        bought("a-0", "a-0-T", cents=1000, at=T0).model_copy(update={"event_id": "resent"}),
        bought("a-1", "a-1-CHEAP", cents=40, at=T0),
    ]
    await publish_events(isolated, [config, *events])
    before = await audit(isolated)
    assert len(before.unaccounted) == 12  # nothing has run them yet
    services = Services(isolated, tmp_path)
    worker = services.start("worker", "worker")
    try:

        async def accounted() -> bool:
            return (await audit(isolated)).ok

        assert await until(accounted, 120), worker.log_tail()
    finally:
        services.stop()
    after = await audit(isolated)
    assert after.records == 12
    # Purchases are cited by their ledger events, enrolments by their answers (ADR 28).
    assert (after.accounted["cited by a ledger event"], after.accounted["answered"]) == (6, 5)
    assert after.accounted["a purchase booked already, sent again"] == 1


async def test_a_partition_that_stops_advancing_turns_health_unhealthy_and_back(isolated, tmp_path):  # type: ignore[no-untyped-def]
    config = program("STALL", event_id="cfg-stall")
    await publish_events(isolated, [config, enrolled("s-1", programs=["STALL"])])
    services = Services(isolated, tmp_path, extra_env={"LOYALTY_STALL_SECONDS": "3"})
    worker = services.start("worker", "worker")
    try:

        async def healthy() -> bool:
            return health(worker.url("/healthz"))[0] == 200

        async def stalled() -> bool:
            status, body = health(worker.url("/healthz"))
            return status == 503 and any("has not committed" in p for p in body["problems"])

        assert await until(healthy, 60), worker.log_tail()
        # The ledger topic goes away: the purchase's batch cannot send its outputs, is run
        # again and again, and its partition's commit stops.
        ledger = isolated.topic("loyalty.ledger.v1")
        admin = AIOKafkaAdminClient(bootstrap_servers=isolated.bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics([ledger])
        finally:
            await admin.close()
        await publish_events(isolated, [bought("s-1", "S-T1", cents=1000, at=T0)])
        assert await until(stalled, 30), health(worker.url("/healthz"))
        await asyncio.to_thread(
            stack.up, isolated
        )  # the topic is back: the batch goes through, the partition moves
        assert await until(healthy, 120), (health(worker.url("/healthz")), worker.log_tail())
        assert await uncommitted(isolated) == 0
    finally:
        services.stop()


async def test_records_taken_during_failing_batches_are_run_once_each_when_it_passes(
    isolated, tmp_path
):  # type: ignore[no-untyped-def]
    # The runner takes records while a batch runs (runner._fetch): those taken after a batch
    # that fails must come again with it, on its partitions and on the others, none lost.
    members = [f"rt-{n}" for n in range(24)]
    await publish_events(isolated, [program(), *(enrolled(m) for m in members)])
    services = Services(isolated, tmp_path)
    worker = services.start("worker", "worker")
    try:
        assert await until(all_committed(isolated), 120), worker.log_tail()
        ledger = isolated.topic("loyalty.ledger.v1")
        admin = AIOKafkaAdminClient(bootstrap_servers=isolated.bootstrap_servers)
        await admin.start()
        try:
            await admin.delete_topics([ledger])  # every purchase's batch fails, again and again
        finally:
            await admin.close()
        first = [bought(m, f"RT-A-{m}", cents=1000, at=T0) for m in members]
        await publish_events(isolated, first)
        await asyncio.sleep(2)
        then = [bought(m, f"RT-B-{m}", cents=2000, at=T0) for m in members]
        await publish_events(isolated, then)  # taken while the first ones fail
        await asyncio.sleep(1)
        await asyncio.to_thread(stack.up, isolated)  # the topic is back
        assert await until(all_committed(isolated), 180), worker.log_tail()
    finally:
        services.stop()
    codec = AvroCodec.with_history()
    records = await read_topic(isolated.bootstrap_servers, ledger, isolated.partitions)
    earned = [codec.decode(value) for _, value in records]
    causes = sorted(e.cause_event_id for e in earned if e.cause_event_id.startswith("tx-RT-"))
    assert causes == sorted(p.event_id for p in first + then)  # each once, none lost


async def test_a_bad_config_or_clock_record_is_dead_lettered_once_where_it_was(isolated, tmp_path):  # type: ignore[no-untyped-def]
    codec = AvroCodec.with_history()
    config_topic, clock_topic = (
        isolated.topic(n) for n in ("loyalty.config.v1", "loyalty.clock.v1")
    )
    producer = AIOKafkaProducer(bootstrap_servers=isolated.bootstrap_servers)
    await producer.start()
    try:
        bad_config = await producer.send_and_wait(config_topic, b"not avro", key=b"P1")
        bad_clock = await producer.send_and_wait(clock_topic, b"not a day", key=b"CA")
    finally:
        await producer.stop()
    await run_a_worker_until_all_is_committed(isolated, tmp_path)
    dead = [codec.decode(v) for _, v in await read_topic(
        isolated.bootstrap_servers, isolated.topic("loyalty.deadletter.v1"), 8)]  # fmt: skip
    where = sorted((d.original_topic, d.original_offset, d.reason.value) for d in dead
                   if isinstance(d, DeadLettered))  # fmt: skip
    assert where == sorted([
        (config_topic, bad_config.offset, "NOT_FRAMED"),
        (clock_topic, bad_clock.offset, "NOT_FRAMED"),
    ])  # fmt: skip
    ticks = await read_topic(
        isolated.bootstrap_servers, isolated.topic("loyalty.internal.clock-ticks.v1"), 8
    )
    assert ticks == []  # refused before it is copied anywhere


def _invalid(codec: AvroCodec, event) -> bytes:  # type: ignore[no-untyped-def]
    """`event` as valid Avro of its current schema whose content breaks the contract (an
    empty event_id): it decodes, and fails validation."""
    schema = fastavro.parse_schema(expanded(event.avro_name(), named_types(all_events())))
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, {**event.model_dump(mode="python"), "event_id": ""})
    return frame_single_object(codec.fingerprint_of(type(event)), body.getvalue())


async def test_k_malformed_records_on_every_input_topic_are_k_dead_letters_and_the_rest_runs(
    isolated, tmp_path
):  # type: ignore[no-untyped-def]
    codec = AvroCodec.with_history()
    valid = [
        program("MALF", event_id="cfg-malf"),
        enrolled("k1", programs=["MALF"]),
        bought("k1", "K-T1", cents=2500),
        activity("k1", ActivityKind.LOGIN),
        redeem("k1", 5, "k-c1", MALF=5),
        day(T0.date()),
    ]
    rng = random.Random(11)
    bad: list[tuple[str, bytes, bytes, str]] = []  # topic, key, value, expected reason
    for event in valid:
        encoded = codec.encode(event)
        key = event.partition_key().encode()
        bad += [
            (event.topic, key, b"\x07" + rng.randbytes(40), "NOT_FRAMED"),
            (event.topic, key, encoded[: 10 + (len(encoded) - 10) // 2], "MALFORMED"),
            (
                event.topic,
                key,
                frame_single_object(rng.randbytes(8), encoded[10:]),
                "UNKNOWN_SCHEMA",
            ),
            (event.topic, key, _invalid(codec, event), "INVALID"),
        ]
    rng.shuffle(bad)
    producer = AIOKafkaProducer(bootstrap_servers=isolated.bootstrap_servers, acks="all")
    await producer.start()
    where: dict[tuple[str, int, int], tuple[bytes, str]] = {}
    try:
        await publish_events(isolated, valid[:1], codec)  # the programme first
        for topic, key, value, reason in bad:
            sent = await producer.send_and_wait(isolated.topic(topic), value, key=key)
            where[(sent.topic, sent.partition, sent.offset)] = (value, reason)
    finally:
        await producer.stop()
    await publish_events(isolated, valid[1:], codec)
    await run_a_worker_until_all_is_committed(isolated, tmp_path)  # every group's lag is 0

    dead = [codec.decode(v) for _, v in await read_topic(
        isolated.bootstrap_servers, isolated.topic("loyalty.deadletter.v1"), 8)]  # fmt: skip
    got = {
        (d.original_topic, d.original_partition, d.original_offset): (d.original_value,
                                                                      d.reason.value)
        for d in dead if isinstance(d, DeadLettered)
    }  # fmt: skip
    assert len(dead) == len(bad) == 24
    assert got == where
    ledger = [codec.decode(v) for _, v in await read_topic(
        isolated.bootstrap_servers, isolated.topic("loyalty.ledger.v1"), 8)]  # fmt: skip
    booked = {e.event_type.value for e in ledger if e.member_id == "k1"}
    assert {"CUSTOMER_REGISTRATION", "TRANSACTION_ADD"} <= booked
    outcomes = [codec.decode(v) for _, v in await read_topic(
        isolated.bootstrap_servers, isolated.topic("loyalty.outcomes.v1"), 8)]  # fmt: skip
    # The request and the enrolment are both answered (ADR 28), in either order: two topics.
    assert sorted(o.command_id for o in outcomes) == ["enrol-k1", "k-c1"]
    ticks = await read_topic(
        isolated.bootstrap_servers, isolated.topic("loyalty.internal.clock-ticks.v1"), 8
    )
    assert len(ticks) == isolated.partitions  # the valid day reached every partition
