"""Where the API's command endpoints put the requests they accept: a `CommandSink`.

A command endpoint (load an offer to card, later redeem, transfer, ...) decides nothing about
the member: it checks what it can know, builds the request event of `loyalty.redemptions.v1`
and hands it to the sink, and the worker answers on `loyalty.outcomes.v1`
(docs/adr/0016-command-endpoints.md). `send` returns only once the broker has acknowledged the
event, so a 202 always means "written"; any failure to write is a `CommandUnavailableError`
(503 with the reason), never a silent 202. A 503 may still hide a write that landed late, which
is why every command carries the client's `Idempotency-Key` as its `command_id`: retrying with
the same key is safe.

`KafkaCommandSink` is the real sink: one idempotent `AIOKafkaProducer` (acks=all) per API
process, started and stopped with the app. Tests pass a recording fake; an app built without
a sink gets `NoCommands`, which refuses every command with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Annotated, Literal, Protocol, runtime_checkable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from fastapi import Depends, Header
from pydantic import BaseModel, ConfigDict, Field

from processors.base.logs import get_logger
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from projections.api.errors import ApiError, BadParameterError
from projections.api.identifiers import ID_MAX_LENGTH, is_identifier, printable_ascii_pattern

log = get_logger(__name__)


class CommandUnavailableError(ApiError):
    """503: the request could not be written; retry it with the same Idempotency-Key."""

    def __init__(self, reason: str) -> None:
        super().__init__(503, "commands_unavailable", reason, headers={"Retry-After": "1"})


IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_LENGTH = ID_MAX_LENGTH


def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias=IDEMPOTENCY_KEY,
            description="Required: 1–128 printable ASCII characters chosen by the client, new "
            "for each request and the same on a retry; it becomes the command's `command_id`.",
            json_schema_extra={"pattern": printable_ascii_pattern(IDEMPOTENCY_KEY_MAX_LENGTH)},
        ),
    ] = None,
) -> str:
    """The request's `Idempotency-Key` header, the command id; 400 with the reason otherwise.

    Checked here rather than by FastAPI so that each way of getting it wrong says so; the rule
    is the command id's, `identifiers.ApiId`."""
    if key is None:
        raise BadParameterError(
            IDEMPOTENCY_KEY,
            f"missing {IDEMPOTENCY_KEY} header: a command needs a key chosen by the client, "
            "the same on every retry of the request",
        )
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        raise BadParameterError(
            IDEMPOTENCY_KEY,
            f"the {IDEMPOTENCY_KEY} must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters long "
            f"(got {len(key)})",
        )
    if not is_identifier(key):
        raise BadParameterError(
            IDEMPOTENCY_KEY, f"the {IDEMPOTENCY_KEY} must be printable ASCII characters only"
        )
    return key


CommandId = Annotated[str, Depends(idempotency_key)]
"""A route parameter: the command id, from a valid `Idempotency-Key` header."""


class CommandAccepted(BaseModel):
    """The 202 body: the request is written; its outcome comes later on `outcome_topic`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str = Field(description="The Idempotency-Key: what the outcome will carry.")
    event_id: str = Field(
        description="The request event's id, derived from the member and the command id: the "
        "same on every retry."
    )
    status: Literal["accepted_for_processing"] = Field(
        default="accepted_for_processing",
        description="Written, not yet decided: the worker accepts or rejects it.",
    )
    outcome_topic: str = Field(
        description="Where the RequestAccepted or RequestRejected for `command_id` appears."
    )


class CommandSink(Protocol):
    """Writes request events for the worker to decide."""

    async def send(self, event: Event) -> None:
        """Write `event` to its topic keyed as the contract says; return once acknowledged.

        Raises `CommandUnavailableError`, with the reason, when it cannot."""
        ...


@runtime_checkable
class ManagedSink(Protocol):
    """A sink with resources held for the app's lifetime (the app's lifespan calls these)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class NoCommands:
    """No sink at all: every command answers 503 (an app built without one)."""

    async def send(self, event: Event) -> None:
        raise CommandUnavailableError("this API process was started without a command sink")


ProducerFactory = Callable[[], AIOKafkaProducer]


class KafkaCommandSink:
    """Produces commands to Kafka with an idempotent producer, waiting for acks=all.

    `topic_of` maps a contract topic name to the deployment's (its prefix). `start` never
    fails the app: with the broker down it records why, and the next `send` tries again, so
    the API serves its reads meanwhile and answers commands 503 until the broker is back.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        topic_of: Callable[[str], str] = lambda name: name,
        codec: AvroCodec | None = None,
        timeout_s: float = 10.0,
        producer_factory: ProducerFactory | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic_of = topic_of
        self.codec = codec or AvroCodec()
        self.timeout_s = timeout_s
        self._factory = producer_factory or self._new_producer
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self.last_error: str | None = None

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=int(self.timeout_s * 1000),
        )

    async def start(self) -> None:
        """Connect the producer, or note why not (the next `send` retries)."""
        await self._connected()

    async def stop(self) -> None:
        """Flush what was sent and close the producer."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send(self, event: Event) -> None:
        producer = await self._connected()
        if producer is None:
            raise CommandUnavailableError(f"the broker cannot be reached: {self.last_error}")
        topic = self.topic_of(event.topic)
        try:
            delivery = await producer.send(
                topic, self.codec.encode(event), key=event.partition_key().encode()
            )
            # Shielded: on a timeout the write may still land; the command id makes that safe.
            await asyncio.wait_for(asyncio.shield(delivery), timeout=self.timeout_s)
        except TimeoutError:
            self.last_error = f"no acknowledgement from the broker within {self.timeout_s:g} s"
            raise CommandUnavailableError(
                f"{self.last_error}: the request may or may not have been written; retry with "
                "the same Idempotency-Key"
            ) from None
        except KafkaError as error:
            self.last_error = f"{type(error).__name__}: {error}"
            raise CommandUnavailableError(
                f"the broker refused the request ({self.last_error}); retry with the same "
                "Idempotency-Key"
            ) from None

    async def _connected(self) -> AIOKafkaProducer | None:
        if self._producer is not None:
            return self._producer
        async with self._starting:
            if self._producer is not None:
                return self._producer
            producer = self._factory()
            try:
                await asyncio.wait_for(producer.start(), timeout=self.timeout_s)
            except (KafkaError, TimeoutError, OSError) as error:
                self.last_error = f"{type(error).__name__}: {error}".rstrip(": ")
                log.warning(
                    "commands.producer_unavailable", bootstrap=self.bootstrap, error=self.last_error
                )
                with contextlib.suppress(Exception):
                    await producer.stop()
                return None
            self._producer = producer
            self.last_error = None
            log.info("commands.producer_started", bootstrap=self.bootstrap)
            return producer
