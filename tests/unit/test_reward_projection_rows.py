"""The reward and request-outcome projections before any database: what each event becomes
(the statements' idempotency and order independence on real Postgres:
tests/integration/test_reward_projection.py)."""

from __future__ import annotations

from datetime import timedelta

from psycopg.types.json import Jsonb

from processors.contract.common import Source
from processors.contract.outcomes import RejectionReason, RequestAccepted, RequestRejected
from processors.contract.redemptions import RequestType
from processors.contract.rewards import (
    RewardExpired,
    RewardGranted,
    RewardGrantReason,
    RewardRedeemed,
)
from projections import projection
from projections.writers import outcomes, performance, rewards
from tests.rules.given import T0
from tests.rules.test_rewards import codes, reward


def grant(granted_reward_id: str = "GR-1", code: str | None = "A1") -> RewardGranted:
    return RewardGranted(
        event_id=f"grant-{granted_reward_id}", occurred_at=T0, member_id="M1",
        granted_reward_id=granted_reward_id, reward_id="COFFEE",
        reason=RewardGrantReason.REDEMPTION, program_id="CA_MAIN", points_spent=100, code=code,
        redemption_token=code or granted_reward_id, expires_at=T0 + timedelta(days=30),
        cause_event_id="req-1", command_id="c1",
    )  # fmt: skip


def test_a_publication_is_one_upsert_with_its_copy_by_locale_and_the_whole_definition():
    published = reward("COFFEE", uses_code_stock=True, grants_total_max=50)

    [(statement, params)] = rewards.statements_of([published])

    assert statement.lstrip().startswith("INSERT INTO rewards")
    assert "ON CONFLICT (reward_id) DO UPDATE" in statement
    assert (params["reward_id"], params["points_cost"], params["uses_code_stock"]) == (
        "COFFEE", 100, True
    )  # fmt: skip
    assert params["grants_total_max"] == 50
    assert (params["event_id"], params["occurred_at"]) == (
        published.event_id,
        published.occurred_at,
    )
    copy = params["localized_copy"]
    assert isinstance(copy, Jsonb)
    assert sorted(copy.obj) == ["en", "fr"]
    assert copy.obj["fr"]["headline"] == "Un muffin gratuit"
    assert "locale" not in copy.obj["en"]
    assert params["definition"].obj["type"] == "RewardPublished"


def test_a_code_batch_stocks_its_codes_under_its_own_event_id():
    [(statement, params)] = rewards.statements_of([codes("COFFEE", "A1", "A2", batch="b7")])

    assert "INSERT INTO reward_codes" in statement
    assert "INSERT INTO reward_stock" in statement
    assert params == {
        "reward_id": "COFFEE", "event_id": "codes-COFFEE-b7", "occurred_at": T0,
        "codes": ["A1", "A2"],
    }  # fmt: skip


def test_a_grant_is_one_wallet_row_with_its_code_token_expiry_and_reason():
    [(statement, params)] = rewards.statements_of([grant()])

    assert "INSERT INTO member_rewards" in statement
    assert "ON CONFLICT (granted_reward_id) DO NOTHING" in statement
    assert params["reason"] == "REDEMPTION"
    assert (params["code"], params["redemption_token"]) == ("A1", "A1")
    assert params["expires_at"] == T0 + timedelta(days=30)
    assert (params["event_id"], params["command_id"]) == ("grant-GR-1", "c1")


def test_a_use_and_an_expiry_close_an_issued_reward():
    used = RewardRedeemed(
        event_id="used-1", occurred_at=T0 + timedelta(days=1), member_id="M1",
        granted_reward_id="GR-1", reward_id="COFFEE", code="A1", cause_event_id="tx-1",
        source=Source.INSTORE, transaction_id="T9", store_id="S1", till_id="3",
        discount_cents=425,
    )  # fmt: skip
    expired = RewardExpired(
        event_id="expired-2", occurred_at=T0 + timedelta(days=31), member_id="M1",
        granted_reward_id="GR-2", reward_id="COFFEE", expires_at=T0 + timedelta(days=30),
        cause_event_id="day-1",
    )  # fmt: skip

    [(closing, redeemed), (_, lapsed)] = rewards.statements_of([used, expired])

    assert "AND status = 'ISSUED'" in closing
    assert redeemed == {
        "status": "REDEEMED", "granted_reward_id": "GR-1", "member_id": "M1",
        "occurred_at": T0 + timedelta(days=1), "event_id": "used-1", "source": "INSTORE",
        "transaction_id": "T9", "store_id": "S1", "till_id": "3", "discount_cents": 425,
    }  # fmt: skip
    assert (lapsed["status"], lapsed["granted_reward_id"], lapsed["source"]) == (
        "EXPIRED", "GR-2", None
    )  # fmt: skip


def test_statements_keep_the_log_order():
    events = [reward("COFFEE"), codes("COFFEE", "A1"), grant(), reward("COFFEE", points_cost=90)]
    applied = [params["event_id"] for _, params in rewards.statements_of(events)]
    assert applied == [e.event_id for e in events]


def accepted_outcome(command: str = "c1", event_id: str = "out-1") -> RequestAccepted:
    return RequestAccepted(
        event_id=event_id, occurred_at=T0, member_id="M1", command_id=command,
        request_type=RequestType.REWARD_REDEMPTION, request_event_id=f"req-{command}",
        points_debited=200, ledger_event_log_id="LE-1", granted_reward_ids=["GR-1", "GR-2"],
    )  # fmt: skip


def test_an_outcome_is_one_row_per_member_command_and_kind_the_first_holding():
    refused = RequestRejected(
        event_id="out-2", occurred_at=T0, member_id="M1", command_id="c2",
        request_type=RequestType.REWARD_REDEMPTION, request_event_id="req-c2",
        reason=RejectionReason.out_of_stock, detail="reward COFFEE: out of codes",
    )  # fmt: skip
    load = accepted_outcome("c1", "out-3").model_copy(
        update={"request_type": RequestType.OFFER_LOAD, "granted_reward_ids": []}
    )

    rows = outcomes.rows_of([accepted_outcome(), refused, accepted_outcome(event_id="x"), load])

    assert rows == [
        ("M1", "c1", "REWARD_REDEMPTION", "out-1", "req-c1", True, None, None, 200, None,
         "LE-1", ["GR-1", "GR-2"], None, T0),
        ("M1", "c2", "REWARD_REDEMPTION", "out-2", "req-c2", False, "out_of_stock",
         "reward COFFEE: out of codes", 0, None, None, [], None, T0),
        ("M1", "c1", "OFFER_LOAD", "out-3", "req-c1", True, None, None, 200, None, "LE-1", [],
         None, T0),
    ]  # fmt: skip


def test_the_projection_routes_rewards_and_outcomes_to_their_writers_and_owns_their_tables():
    assert set(rewards.TABLES) | set(outcomes.TABLES) <= set(projection.TABLES)
    assert "redemption_requests" not in projection.TABLES  # the API's own, never rebuilt
    assert not set(rewards.EVENTS) & set(performance.PASSED_OVER)


def return_answers() -> tuple[RequestRejected, RequestAccepted]:
    """A return refused before its purchase arrived, then sent again and applied (ADR 43)."""
    refused = RequestRejected(
        event_id="out-r1", occurred_at=T0, member_id="M1", command_id="R1",
        request_type=RequestType.RETURN, request_event_id="ret-1",
        reason=RejectionReason.unknown_transaction, detail="no purchase T1 is known",
    )  # fmt: skip
    applied = accepted_outcome("R1", "out-r2").model_copy(
        update={"request_type": RequestType.RETURN, "granted_reward_ids": []}
    )
    return refused, applied


def test_a_refusal_gives_way_to_a_later_answer_under_another_event_id():
    refused, applied = return_answers()
    rows = outcomes.rows_of([refused, refused, applied, refused])
    assert [(r[3], r[5]) for r in rows] == [("out-r2", True)]  # an answer given holds
