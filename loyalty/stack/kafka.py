"""The local Apache Kafka broker: jars from Maven Central, one KRaft node, started by the JDK.

Owns the broker's files under `<stack_dir>/kafka` and the jar cache under
`<cache_dir>/kafka/<version>`. Never touches a broker it did not start.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from loyalty.stack import processes
from loyalty.stack.errors import StackError
from processors.base.logs import get_logger
from processors.base.settings import REPO_ROOT, Settings
from processors.base.topics import CONTRACT_TOPICS
from processors.runtime.topics import ensure_topics as ensure_topics

log = get_logger(__name__)

POM = REPO_ROOT / "scripts" / "kafka" / "pom.xml"
LOG4J_CONFIG = REPO_ROOT / "scripts" / "kafka" / "log4j2.properties"
HEALTH_TOPIC = "__loyalty_health"


@dataclass(frozen=True)
class KafkaPaths:
    """Where the local broker keeps its files."""

    home: Path
    libs: Path

    @classmethod
    def of(cls, settings: Settings) -> KafkaPaths:
        return cls(
            home=settings.stack_dir / "kafka",
            libs=settings.cache_dir / "kafka" / settings.kafka_version / "libs",
        )

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    @property
    def stdout_log(self) -> Path:
        return self.logs / "stdout.log"


def fetch_jars(settings: Settings) -> Path:
    """Resolve the broker's jars with Maven into the cache (once per version) and return it."""
    paths = KafkaPaths.of(settings)
    complete = paths.libs / ".complete"
    if complete.exists():
        return paths.libs
    for tool in ("mvn", "java"):
        if shutil.which(tool) is None:
            raise StackError(f"{tool} is not installed; run scripts/bootstrap.sh first")
    staging = paths.libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    log.info("kafka.fetching_jars", version=settings.kafka_version, into=str(paths.libs))
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            f"-Dkafka.version={settings.kafka_version}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
        raise StackError(
            f"Maven could not resolve Kafka {settings.kafka_version}:\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    shutil.rmtree(paths.libs, ignore_errors=True)
    staging.rename(paths.libs)
    complete.write_text(settings.kafka_version + "\n")
    return paths.libs


def _server_properties(settings: Settings, paths: KafkaPaths) -> str:
    host, port, cport = settings.kafka_host, settings.kafka_port, settings.kafka_controller_port
    return "\n".join(
        [
            "# Written by `loyalty stack up`: one combined broker+controller in KRaft mode.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{cport}",
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={paths.data}",
            f"num.partitions={settings.partitions}",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            # One node: no reason to wait for more group members before the first assignment.
            "group.initial.rebalance.delay.ms=0",
            # Every topic is created on purpose, with its partitions and policy
            # (processors.base.topics).
            "auto.create.topics.enable=false",
            "log.retention.hours=-1",
            "",
        ]
    )


def is_running(settings: Settings) -> bool:
    """True if the broker this stack started is alive."""
    paths = KafkaPaths.of(settings)
    return processes.is_running(processes.read_pid(paths.pid_file), str(paths.home))


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64, as `kafka-storage random-uuid`
    makes one, and like it never starting with "-": the storage tool would read such an id
    as an option (1 fresh stack in 64 failed to format before)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def start(settings: Settings) -> bool:
    """Start the broker unless ours already runs; True if it was started now."""
    paths = KafkaPaths.of(settings)
    if is_running(settings):
        return False
    if processes.port_is_open(settings.kafka_host, settings.kafka_port):
        raise StackError(
            f"port {settings.kafka_port} is taken by a process this stack did not start; "
            "set LOYALTY_KAFKA_PORT (and LOYALTY_KAFKA_CONTROLLER_PORT) to free ports"
        )
    libs = fetch_jars(settings)
    paths.logs.mkdir(parents=True, exist_ok=True)
    paths.properties.write_text(_server_properties(settings, paths))
    classpath = f"{libs}/*"
    java = shutil.which("java") or "java"
    if not (paths.data / "meta.properties").exists():
        cluster_id = new_cluster_id()
        formatted = subprocess.run(
            [java, "-cp", classpath, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
             f"-Dkafka.logs.dir={paths.logs}", "kafka.tools.StorageTool", "format",
             "-t", cluster_id, "-c", str(paths.properties)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if formatted.returncode != 0:
            raise StackError(
                f"formatting Kafka storage failed:\n{formatted.stdout}{formatted.stderr}"
            )
    heap = settings.kafka_heap
    processes.start_detached(
        [java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
         "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
         f"-Dkafka.logs.dir={paths.logs}", "-cp", classpath, "kafka.Kafka",
         str(paths.properties)],
        log_file=paths.stdout_log, pid_file=paths.pid_file, cwd=paths.home,
    )  # fmt: skip
    return True


def stop(settings: Settings) -> bool:
    """Stop the broker this stack started; True if one was running."""
    paths = KafkaPaths.of(settings)
    pid = processes.read_pid(paths.pid_file)
    if not processes.is_running(pid, str(paths.home)):
        paths.pid_file.unlink(missing_ok=True)
        return False
    assert pid is not None
    processes.stop(pid, grace_seconds=30)
    paths.pid_file.unlink(missing_ok=True)
    return True


async def check_round_trip(bootstrap: str, *, timeout: float = 90.0) -> float:
    """Prove the broker works: produce one record to a health topic and consume it back.

    Returns the seconds it took. Raises StackError if the broker does not answer in time.
    """
    started = time.monotonic()
    deadline = started + timeout
    host, _, port = bootstrap.rpartition(":")
    # Wait for the listener first: aiokafka logs every refused connection at ERROR.
    while not processes.port_is_open(host, int(port)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            await ensure_topics(bootstrap, {HEALTH_TOPIC: (1, {"retention.ms": "3600000"})})
            await _produce_and_consume(bootstrap)
            return time.monotonic() - started
        except Exception as error:  # noqa: BLE001 - any failure means "not healthy yet"
            last_error = error
            await asyncio.sleep(0.5)
    raise StackError(f"Kafka at {bootstrap} is not healthy after {timeout:.0f}s: {last_error!r}")


async def _produce_and_consume(bootstrap: str) -> None:
    marker = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await producer.start()
    try:
        metadata = await producer.send_and_wait(HEALTH_TOPIC, marker)
    finally:
        await producer.stop()
    # A group commit as well: it proves the group coordinator works and creates
    # __consumer_offsets now rather than under the first real consumer.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=HEALTH_TOPIC, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(HEALTH_TOPIC, metadata.partition)
        consumer.assign([partition])
        consumer.seek(partition, metadata.offset)
        record = await asyncio.wait_for(consumer.getone(), timeout=10)
        if record.value != marker:
            raise StackError("health record read back does not match what was written")
        await consumer.commit({partition: record.offset + 1})
    finally:
        await consumer.stop()


def contract_topics(settings: Settings) -> dict[str, tuple[int, dict[str, str]]]:
    """Every contract topic with its partition count and config, as `ensure_topics` wants."""
    return {
        settings.topic(spec.name): (spec.partitions(settings.partitions), dict(spec.config))
        for spec in CONTRACT_TOPICS
    }
