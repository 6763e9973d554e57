"""`POST /v1/members/{id}/redemptions` and `GET …/redemptions/{key}` in-process, with a
recording command sink that plays the worker (it puts an outcome in the in-memory store when
told to): the request written, the bounded wait, 201/422/409/202, one key one body, the same
key twenty times at once, and a write that failed or was never confirmed (the real worker and
projector: tests/integration/test_rewards_api.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from processors.contract.base import Event
from processors.contract.common import Source
from processors.contract.redemptions import RewardRedemptionRequested
from processors.rules import identity
from processors.rules.arithmetic import derived_id
from projections.api.app import create_app
from projections.api.auth import Role, issue_token
from projections.api.claims import UNWRITTEN_RECLAIM_AFTER
from projections.api.commands import CommandUnavailableError
from projections.api.reward_store import RedemptionRecord
from tests.cart_given import AT
from tests.rewards_given import FakeRewardStore, accepted, granted, rejected

SECRET = "unit-test-secret-for-the-redemption-routes-long-enough"
NO_DATABASE = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"
PATH = "/v1/members/M1/redemptions"
BODY = {"reward_id": "MUFFIN", "program_id": "CA_REWARDS", "quantity": 1}
# Long enough never to run out in a test that expects a decision; the 202 tests use SHORT.
LONG, SHORT = 30.0, 0.05


class Worker:
    """A command sink that records what it is given and, like the worker and the projector
    behind it, may put the request's outcome in the store (`answer`)."""

    def __init__(self, store: FakeRewardStore) -> None:
        self.store = store
        self.sent: list[Event] = []
        self.answer: Callable[[RewardRedemptionRequested], None] | None = None
        self.failure: str | None = None

    async def send(self, event: Event) -> None:
        if self.failure is not None:
            raise CommandUnavailableError(self.failure)
        await asyncio.sleep(0)  # others may come in meanwhile
        self.sent.append(event)
        if self.answer is not None:
            assert isinstance(event, RewardRedemptionRequested)
            self.answer(event)


def grants(worker: Worker, *codes: str) -> None:
    """The worker grants one reward per code to every request."""

    def answer(event: RewardRedemptionRequested) -> None:
        ids = [f"GR-{event.command_id}-{n}" for n in range(len(codes))]
        worker.store.decide(
            event.member_id,
            accepted(event.command_id, *ids),
            *(granted(i, event.member_id, code=c, redemption_token=c, command_id=event.command_id)
              for i, c in zip(ids, codes, strict=True)),
        )  # fmt: skip

    worker.answer = answer


def refuses(worker: Worker, reason: str, detail: str) -> None:
    def answer(event: RewardRedemptionRequested) -> None:
        worker.store.decide(event.member_id, rejected(event.command_id, reason, detail))

    worker.answer = answer


@pytest.fixture
def store() -> FakeRewardStore:
    return FakeRewardStore()


@pytest.fixture
def worker(store) -> Worker:
    return Worker(store)


def app_for(store: FakeRewardStore, worker: Worker, wait: float = LONG):  # type: ignore[no-untyped-def]
    return create_app(
        dsn=NO_DATABASE, api_secret=SECRET, clock=lambda: AT, command_sink=worker,
        reward_store=store, decision_wait_s=wait, decision_poll_s=0.001,
    )  # fmt: skip


@pytest.fixture
def client(store, worker) -> Iterator[TestClient]:
    with TestClient(app_for(store, worker)) as running:
        yield running


def headers(key: str | None = "k1", subject: str = "M1", role: Role = Role.MEMBER) -> dict:
    found = {"Authorization": f"Bearer {issue_token(SECRET, subject, role, now=datetime.now(UTC))}"}
    if key is not None:
        found["Idempotency-Key"] = key
    return found


# --- decided within the wait ------------------------------------------------------------------


def test_a_granted_redemption_is_201_with_the_codes_and_the_request_is_written_once(client, worker):
    grants(worker, "MUF-1")

    response = client.post(PATH, json=BODY, headers=headers("k1"))

    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/v1/members/M1/redemptions/k1"
    body = response.json()
    assert (body["status"], body["points_debited"], body["ledger_event_log_id"]) == (
        "accepted",
        500,
        "LE-k1",
    )
    [grant] = body["granted_rewards"]
    assert (grant["code"], grant["redemption_token"], grant["status"]) == (
        "MUF-1",
        "MUF-1",
        "ISSUED",
    )
    assert grant["expires_at"] == "2026-04-01T10:00:00Z"
    event_id = derived_id("reward-redemption-requested", "M1", "k1")
    assert worker.sent == [
        RewardRedemptionRequested(
            event_id=event_id, occurred_at=AT, command_id="k1", member_id="M1",
            reward_id="MUFFIN", program_id="CA_REWARDS", quantity=1, source=Source.APP,
        )
    ]  # fmt: skip
    assert body["request_event_id"] == "req-k1"  # the outcome's word for it


def test_a_refused_redemption_is_422_with_the_workers_stable_reason(client, worker):
    refuses(worker, "out_of_stock", "reward MUFFIN: out of codes")

    response = client.post(PATH, json=BODY, headers=headers())

    assert response.status_code == 422
    assert response.json() == {"error": "out_of_stock", "reason": "reward MUFFIN: out of codes"}


def test_a_repeated_key_with_the_same_body_is_409_with_the_original_and_writes_nothing(
    client, worker
):
    grants(worker, "MUF-1")
    first = client.post(PATH, json=BODY, headers=headers("k1"))
    worker.answer = None

    again = client.post(PATH, json=BODY, headers=headers("k1"))

    assert (first.status_code, again.status_code) == (201, 409)
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    assert len(worker.sent) == 1


def test_a_repeat_of_a_refused_redemption_is_409_with_the_refusal(client, worker):
    refuses(worker, "insufficient_points", "CA_REWARDS: balance 100 < 500 requested")
    client.post(PATH, json=BODY, headers=headers())

    again = client.post(PATH, json=BODY, headers=headers())

    assert again.status_code == 409
    body = again.json()
    assert (body["status"], body["reason"]) == ("rejected", "insufficient_points")
    assert body["granted_rewards"] == []
    assert len(worker.sent) == 1


def test_a_key_used_again_with_another_body_is_422_and_writes_nothing(client, worker):
    grants(worker, "MUF-1")
    client.post(PATH, json=BODY, headers=headers("k1"))

    response = client.post(PATH, json=BODY | {"quantity": 2}, headers=headers("k1"))

    assert response.status_code == 422
    assert response.json()["error"] == "idempotency_key_reused"
    assert response.json()["parameter"] == "Idempotency-Key"
    assert len(worker.sent) == 1


def test_the_same_key_is_another_request_for_another_member(client, worker, store):
    grants(worker, "MUF-1")
    mine = client.post(PATH, json=BODY, headers=headers("k1"))
    theirs = client.post("/v1/members/M2/redemptions", json=BODY, headers=headers("k1", "M2"))
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert [e.member_id for e in worker.sent] == ["M1", "M2"]


async def test_the_same_key_twenty_times_at_once_is_one_write_one_201_and_nineteen_409(
    store, worker
):
    grants(worker, "MUF-1")
    transport = httpx.ASGITransport(app=app_for(store, worker))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        answers = await asyncio.gather(
            *(http.post(PATH, json=BODY, headers=headers("same")) for _ in range(20))
        )

    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 19
    assert len(worker.sent) == 1
    assert {a.json()["granted_rewards"][0]["code"] for a in answers} == {"MUF-1"}


# --- not decided within the wait --------------------------------------------------------------


def test_without_a_decision_in_time_the_answer_is_202_with_the_status_url(store, worker):
    with TestClient(app_for(store, worker, wait=SHORT)) as client:
        response = client.post(PATH, json=BODY, headers=headers("slow/key?1"))
        later = client.get(response.headers["location"], headers=headers(None))
        grants(worker, "MUF-1")
        worker.answer(worker.sent[0])  # type: ignore[misc]  # the worker decides, late
        decided = client.get(response.headers["location"], headers=headers(None))
        repeated = client.post(PATH, json=BODY, headers=headers("slow/key?1"))

    assert response.status_code == 202
    assert response.headers["location"] == "/v1/members/M1/redemptions/slow%2Fkey%3F1"
    body = response.json()
    assert (body["status"], body["reward_id"], body["granted_rewards"]) == ("pending", "MUFFIN", [])
    assert store.looks > 1  # it waited, looking more than once
    assert (later.status_code, later.json()["status"]) == (202, "pending")
    assert (decided.status_code, decided.json()["status"]) == (200, "accepted")
    assert decided.json()["granted_rewards"][0]["code"] == "MUF-1"
    assert repeated.status_code == 409
    assert len(worker.sent) == 1


def test_an_acceptance_waits_for_its_grants_to_be_in_the_wallet(store, worker):
    def outcome_only(event: RewardRedemptionRequested) -> None:
        store.decide(event.member_id, accepted(event.command_id, "GR-1"))

    worker.answer = outcome_only
    with TestClient(app_for(store, worker, wait=SHORT)) as client:
        response = client.post(PATH, json=BODY, headers=headers())
        pending = client.get(f"{PATH}/k1", headers=headers(None))
        store.grant(granted("GR-1"))
        done = client.get(f"{PATH}/k1", headers=headers(None))

    assert (response.status_code, pending.status_code, done.status_code) == (202, 202, 200)


def test_a_wait_of_zero_looks_once_and_answers(store, worker):
    with TestClient(app_for(store, worker, wait=0)) as client:
        response = client.post(PATH, json=BODY, headers=headers())
    assert response.status_code == 202
    assert store.looks == 1


# --- GET …/redemptions/{key} ------------------------------------------------------------------


def test_a_key_never_used_is_404(client):
    response = client.get(f"{PATH}/never", headers=headers(None))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_an_outcome_of_a_request_written_elsewhere_is_read_too(client, store):
    store.decide("M1", rejected("pos-1", "reward_expired", "reward MUFFIN ended"))
    response = client.get(f"{PATH}/pos-1", headers=headers(None))
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["reward_id"]) == ("rejected", None)


def test_a_member_reads_only_its_own_redemptions(client, store):
    store.decide("M2", rejected("k", "reward_expired", "ended"))
    assert client.get("/v1/members/M2/redemptions/k", headers=headers(None)).status_code == 403


# --- writing ----------------------------------------------------------------------------------


def test_a_request_that_cannot_be_written_is_503_and_a_retry_writes_it(client, worker, store):
    worker.failure = "the broker cannot be reached: down"
    failed = client.post(PATH, json=BODY, headers=headers())
    worker.failure = None
    grants(worker, "MUF-1")
    retried = client.post(PATH, json=BODY, headers=headers())

    assert failed.status_code == 503
    assert failed.json()["error"] == "commands_unavailable"
    assert retried.status_code == 201  # the claim was released: the retry is the first
    assert len(worker.sent) == 1


def test_a_claim_never_confirmed_as_written_is_written_again_by_one_repeat(client, worker, store):
    event_id = derived_id("reward-redemption-requested", "M1", "k1")
    asked = RewardRedemptionRequested(
        event_id=event_id, occurred_at=AT, command_id="k1", member_id="M1", reward_id="MUFFIN",
        program_id="CA_REWARDS", quantity=1, source=Source.APP,
    )  # fmt: skip
    then = AT - UNWRITTEN_RECLAIM_AFTER
    store.records[("M1", "k1")] = RedemptionRecord(
        member_id="M1", command_id="k1", body_digest=identity.digest(asked, identity.REQUEST),
        request_event_id=event_id, reward_id="MUFFIN", program_id="CA_REWARDS", quantity=1,
        received_at=then, claimed_at=then,
    )  # fmt: skip
    grants(worker, "MUF-1")

    response = client.post(PATH, json=BODY, headers=headers("k1"))

    assert response.status_code == 409  # a repeat: the key was claimed first by another call
    assert [e.event_id for e in worker.sent] == [event_id]
    assert store.records[("M1", "k1")].written_at == AT


def test_a_claim_being_written_now_is_not_written_twice(store, worker):
    then = AT - timedelta(seconds=1)
    asked = RewardRedemptionRequested(
        event_id="x", occurred_at=AT, command_id="k1", member_id="M1", reward_id="MUFFIN",
        program_id="CA_REWARDS", quantity=1, source=Source.APP,
    )  # fmt: skip
    store.records[("M1", "k1")] = RedemptionRecord(
        member_id="M1", command_id="k1", body_digest=identity.digest(asked, identity.REQUEST),
        request_event_id="x", reward_id="MUFFIN", program_id="CA_REWARDS", quantity=1,
        received_at=then, claimed_at=then,
    )  # fmt: skip
    with TestClient(app_for(store, worker, wait=SHORT)) as client:
        response = client.post(PATH, json=BODY, headers=headers("k1"))
    assert response.status_code == 202
    assert worker.sent == []
    assert dataclasses.asdict(store.records[("M1", "k1")])["written_at"] is None


# --- who may ask, and what they must send -----------------------------------------------------


def test_staff_may_redeem_for_any_member(client, worker):
    grants(worker, "MUF-1")
    response = client.post(
        "/v1/members/M7/redemptions", json=BODY, headers=headers("k", "cc", Role.STAFF)
    )
    assert response.status_code == 201
    assert worker.sent[0].member_id == "M7"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("sent_headers", "status", "error"),
    [
        ({"Idempotency-Key": "k"}, 401, "unauthorized"),
        (headers("k", "M2"), 403, "forbidden"),
        (headers(None), 400, "invalid_parameter"),
    ],
)
def test_a_token_for_this_member_and_a_key_are_required(
    client, worker, sent_headers, status, error
):
    response = client.post(PATH, json=BODY, headers=sent_headers)
    assert (response.status_code, response.json()["error"]) == (status, error)
    assert worker.sent == []


@pytest.mark.parametrize(
    ("body", "parameter"),
    [
        ({"program_id": "CA_REWARDS"}, "reward_id"),
        (BODY | {"quantity": 0}, "quantity"),
        (BODY | {"quantity": 101}, "quantity"),
        (BODY | {"quantity": "2"}, "quantity"),  # found by a user: it redeemed two
        (BODY | {"quantity": 2.0}, "quantity"),
        (BODY | {"reward_id": "M\x001"}, "reward_id"),
        (BODY | {"points": 5}, "points"),
    ],
)
def test_a_body_without_a_valid_reward_programme_or_quantity_is_400(
    client, worker, body, parameter
):
    response = client.post(PATH, json=body, headers=headers())
    assert response.status_code == 400, response.text
    assert response.json()["parameter"] == parameter
    assert worker.sent == []
