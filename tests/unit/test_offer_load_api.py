"""`POST /v1/members/{id}/offers/{offer}/load` in-process, with a recording command sink: who
may call it, the Idempotency-Key, what the API refuses itself, the event it writes and the
202; and `KafkaCommandSink` turning every failure to write into a 503 (the worker's decisions
on the real stack: tests/integration/test_offer_load_api.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaConnectionError, NotEnoughReplicasError
from fastapi.testclient import TestClient

from processors.contract.base import Event
from processors.contract.common import Source
from processors.contract.config import OfferWithdrawn
from processors.contract.redemptions import OfferLoadRequested
from processors.rules.arithmetic import derived_id
from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.commands import CommandUnavailableError, KafkaCommandSink
from projections.api.routes_carts import FixedConfig, NoConfig
from tests.cart_given import AT, config, offer, single

SECRET = "unit-test-secret-for-the-offer-load-api-long-enough"
NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
LOAD_ME = "LOAD_ME_200"
PATH = f"/v1/members/M1/offers/{LOAD_ME}/load"


class Recording:
    """A command sink that keeps what it is given (or fails, when told to)."""

    def __init__(self, failure: str | None = None) -> None:
        self.sent: list[Event] = []
        self.failure = failure

    async def send(self, event: Event) -> None:
        if self.failure is not None:
            raise CommandUnavailableError(self.failure)
        self.sent.append(event)


def configuration(*extra: Event):  # type: ignore[no-untyped-def]
    built = config()
    for event in (
        offer(
            LOAD_ME,
            activation={"kind": "LOAD_TO_CARD"},
            behaviours=[single("SPEND", spend_min_cents=2000)],
            reward={"kind": "FLAT_POINTS", "points": 200},
        ),
        *extra,
    ):
        built.apply(event)
    return FixedConfig(built)


def client_for(sink=None, source=None) -> TestClient:  # type: ignore[no-untyped-def]
    app = create_app(
        dsn=NO_DATABASE,
        api_secret=SECRET,
        clock=lambda: AT,
        config_source=configuration() if source is None else source,
        command_sink=Recording() if sink is None else sink,
        outcome_topic="p.loyalty.outcomes.v1",
    )
    return TestClient(app)


@pytest.fixture
def sink() -> Recording:
    return Recording()


@pytest.fixture
def client(sink) -> Iterator[TestClient]:
    with client_for(sink) as running:
        yield running


def headers(
    key: str | None = "cmd-1", role: Role = Role.MEMBER, subject: str = "M1"
) -> dict[str, str]:
    token = issue_token(SECRET, subject, role, now=datetime.now(UTC))
    found = {"Authorization": f"Bearer {token}"}
    if key is not None:
        found["Idempotency-Key"] = key
    return found


# --- accepted for processing ------------------------------------------------------------------


def test_a_member_loading_an_offer_gets_202_and_the_request_is_written(client, sink):
    response = client.post(PATH, headers=headers("cmd-1"))

    assert response.status_code == 202, response.text
    event_id = derived_id("offer-load-requested", "M1", "cmd-1")
    assert response.json() == {
        "command_id": "cmd-1",
        "event_id": event_id,
        "status": "accepted_for_processing",
        "outcome_topic": "p.loyalty.outcomes.v1",
    }
    assert sink.sent == [
        OfferLoadRequested(
            event_id=event_id,
            occurred_at=AT,
            command_id="cmd-1",
            member_id="M1",
            offer_id=LOAD_ME,
            source=Source.APP,
        )
    ]
    assert sink.sent[0].partition_key() == "M1"


def test_a_retry_with_the_same_key_writes_the_same_event_id(client, sink):
    first = client.post(PATH, headers=headers("same-key"))
    again = client.post(PATH, headers=headers("same-key"))
    other = client.post(PATH, headers=headers("another-key"))

    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json() == again.json()
    assert [e.event_id for e in sink.sent] == [first.json()["event_id"]] * 2 + [
        other.json()["event_id"]
    ]
    assert other.json()["event_id"] != first.json()["event_id"]


def test_one_key_used_by_two_members_makes_two_requests(client, sink):
    mine = client.post(PATH, headers=headers("k"))
    theirs = client.post(
        f"/v1/members/M2/offers/{LOAD_ME}/load", headers=headers("k", subject="M2")
    )
    assert mine.json()["event_id"] != theirs.json()["event_id"]


def test_staff_may_load_for_any_member(client, sink):
    response = client.post(
        "/v1/members/M9/offers/LOAD_ME_200/load", headers=headers(role=Role.STAFF, subject="cc")
    )
    assert response.status_code == 202
    assert [(e.member_id, e.offer_id) for e in sink.sent] == [("M9", LOAD_ME)]


# --- who may ask ------------------------------------------------------------------------------


def test_without_a_token_the_answer_is_401_and_nothing_is_written(client, sink):
    response = client.post(PATH, headers={"Idempotency-Key": "k"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert sink.sent == []


def test_a_member_token_may_not_load_for_another_member(client, sink):
    response = client.post(PATH, headers=headers(subject="M2"))
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert sink.sent == []


# --- the Idempotency-Key ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (None, "missing Idempotency-Key header"),
        ("", "1 to 128 characters long (got 0)"),
        ("k" * 129, "1 to 128 characters long (got 129)"),
        ("caf\u00e9", "printable ASCII"),
        ("tab\there", "printable ASCII"),
    ],
)
def test_a_missing_or_invalid_key_is_a_400_with_the_reason(client, sink, key, reason):
    if key is not None and not key.isascii():
        # httpx refuses non-ASCII header values itself; send the raw bytes.
        sent = headers(None)
        response = client.post(PATH, headers=[*sent.items(), ("Idempotency-Key", key.encode())])
    else:
        response = client.post(PATH, headers=headers(key))
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_parameter"
    assert body["parameter"] == "Idempotency-Key"
    assert reason in body["reason"]
    assert sink.sent == []


def test_a_key_of_128_printable_characters_is_taken_as_is(client, sink):
    key = "a b~" * 32
    response = client.post(PATH, headers=headers(key))
    assert response.status_code == 202
    assert sink.sent[0].command_id == key


def test_the_token_is_checked_before_the_key(client):
    assert client.post(PATH, headers={}).status_code == 401


# --- what the API refuses itself --------------------------------------------------------------


def test_an_unknown_offer_is_404(client, sink):
    response = client.post("/v1/members/M1/offers/NO_SUCH_OFFER/load", headers=headers())
    assert response.status_code == 404
    assert response.json() == {
        "error": "unknown_offer",
        "reason": "no live offer 'NO_SUCH_OFFER' (never published, or withdrawn)",
    }
    assert sink.sent == []


def test_a_withdrawn_offer_is_404():
    withdrawn = OfferWithdrawn(
        event_id="withdraw", occurred_at=AT, offer_id=LOAD_ME, requested_by="ops"
    )
    sink = Recording()
    with client_for(sink, configuration(withdrawn)) as client:
        response = client.post(PATH, headers=headers())
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_offer"
    assert sink.sent == []


def test_an_offer_that_is_not_load_to_card_is_422(client, sink):
    response = client.post("/v1/members/M1/offers/SNACKS_10PCT/load", headers=headers())
    assert response.status_code == 422
    assert response.json() == {
        "error": "not_load_to_card",
        "reason": "offer 'SNACKS_10PCT' is activated AUTOMATIC, not LOAD_TO_CARD: there is "
        "nothing to load",
    }
    assert sink.sent == []


def test_until_the_configuration_is_loaded_the_answer_is_503():
    sink = Recording()
    with client_for(sink, NoConfig()) as client:
        response = client.post(PATH, headers=headers())
    assert response.status_code == 503
    assert response.json()["error"] == "config_unavailable"
    assert response.headers["retry-after"] == "1"
    assert sink.sent == []


def test_a_member_id_the_contract_refuses_is_a_400(client, sink):
    response = client.post(
        "/v1/members/M%7F1/offers/LOAD_ME_200/load",
        headers=headers(role=Role.STAFF, subject="cc"),
    )
    assert response.status_code == 400
    assert response.json()["parameter"] == "member_id"
    assert sink.sent == []


# --- the broker -------------------------------------------------------------------------------


def test_a_sink_that_cannot_write_makes_a_503_never_a_202():
    with client_for(Recording(failure="the broker cannot be reached: down")) as client:
        response = client.post(PATH, headers=headers())
    assert response.status_code == 503
    assert response.json() == {
        "error": "commands_unavailable",
        "reason": "the broker cannot be reached: down",
    }
    assert response.headers["retry-after"] == "1"


def test_an_app_without_a_sink_refuses_commands_with_503():
    app = create_app(
        dsn=NO_DATABASE, api_secret=SECRET, clock=lambda: AT, config_source=configuration()
    )
    with TestClient(app) as client:
        response = client.post(PATH, headers=headers())
    assert response.status_code == 503
    assert "without a command sink" in response.json()["reason"]


def test_an_unreachable_broker_is_a_503_with_the_reason_and_the_app_still_starts():
    sink = KafkaCommandSink("127.0.0.1:9", timeout_s=2)
    with client_for(sink) as client:
        assert sink.last_error is not None  # start noted it, and did not fail the app
        response = client.post(PATH, headers=headers())
    assert response.status_code == 503
    assert response.json()["error"] == "commands_unavailable"
    assert "the broker cannot be reached" in response.json()["reason"]


class FakeProducer:
    """Stands in for AIOKafkaProducer: starts, and acknowledges (or not) what it is sent."""

    def __init__(self, ack: object = None) -> None:
        self.ack = ack  # None: acknowledge; an exception: fail with it; "never": hang
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.started = self.stopped = 0

    async def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        self.stopped += 1

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        self.sent.append((topic, value, key))
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if isinstance(self.ack, BaseException):
            delivery.set_exception(self.ack)
        elif self.ack is None:
            delivery.set_result(None)
        return delivery


def request_event() -> OfferLoadRequested:
    return OfferLoadRequested(
        event_id="e1", occurred_at=AT, command_id="c1", member_id="M1", offer_id=LOAD_ME,
        source=Source.APP,
    )  # fmt: skip


async def test_the_kafka_sink_writes_to_the_prefixed_topic_keyed_by_member():
    producer = FakeProducer()
    sink = KafkaCommandSink(
        "b:1", topic_of=lambda name: f"p.{name}", producer_factory=lambda: producer
    )  # type: ignore[arg-type,return-value]
    await sink.start()
    await sink.send(request_event())
    await sink.stop()
    [(topic, value, key)] = producer.sent
    assert (topic, key) == ("p.loyalty.redemptions.v1", b"M1")
    assert sink.codec.decode(value) == request_event()
    assert (producer.started, producer.stopped) == (1, 1)


@pytest.mark.parametrize(
    ("ack", "reason"),
    [
        (NotEnoughReplicasError(), "the broker refused the request (NotEnoughReplicasError"),
        ("never", "no acknowledgement from the broker within 0.05 s"),
    ],
)
async def test_the_kafka_sink_reports_a_missing_acknowledgement(ack, reason):
    producer = FakeProducer(ack)
    sink = KafkaCommandSink("b:1", timeout_s=0.05, producer_factory=lambda: producer)  # type: ignore[arg-type,return-value]
    with pytest.raises(CommandUnavailableError) as refused:
        await sink.send(request_event())
    assert reason in refused.value.reason
    assert "same Idempotency-Key" in refused.value.reason


async def test_the_kafka_sink_retries_connecting_at_the_next_send():
    class DownOnce(FakeProducer):
        async def start(self) -> None:
            raise KafkaConnectionError("Unable to bootstrap from [('b', 1)]")

    made = [DownOnce(), FakeProducer()]
    sink = KafkaCommandSink("b:1", producer_factory=lambda: made.pop(0))  # type: ignore[arg-type,return-value]
    await sink.start()
    assert sink.last_error is not None
    assert "KafkaConnectionError" in sink.last_error
    await sink.send(request_event())
    assert sink.last_error is None
