"""An in-memory `RewardStore` for the reward routes' unit tests, with the rows a test gives it
(the Postgres one is exercised on the real stack: tests/integration/test_rewards_api.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from projections.api.reward_store import (
    CatalogueReward,
    GrantedReward,
    MemberStanding,
    Outcome,
    RedemptionRecord,
    WalletCursor,
    WalletPage,
)
from tests.cart_given import AT

COPY = {
    "en": {"headline": "A free muffin", "short_description": "Any muffin, on us."},
    "fr": {"headline": "Un muffin gratuit", "short_description": "Le muffin de votre choix."},
}


def catalogue_reward(reward_id: str = "MUFFIN", **changes: Any) -> CatalogueReward:
    fields: dict[str, Any] = {
        "reward_id": reward_id, "program_id": "CA_REWARDS", "market": "CA", "points_cost": 500,
        "uses_code_stock": False, "available_from": AT - timedelta(days=1),
        "available_until": None, "granted_valid_days": 30, "grants_per_member_max": None,
        "grants_total_max": None, "localized_copy": COPY, "discount": None,
    }  # fmt: skip
    return CatalogueReward(**(fields | changes))


def granted(granted_reward_id: str, member_id: str = "M1", **changes: Any) -> GrantedReward:
    fields: dict[str, Any] = {
        "granted_reward_id": granted_reward_id, "member_id": member_id, "reward_id": "MUFFIN",
        "reason": "REDEMPTION", "program_id": "CA_REWARDS", "points_spent": 500,
        "code": f"CODE-{granted_reward_id}", "redemption_token": f"CODE-{granted_reward_id}",
        "expires_at": AT + timedelta(days=30), "granted_at": AT, "command_id": "c1",
        "offer_id": None, "challenge_id": None, "status": "ISSUED", "closed_at": None,
    }  # fmt: skip
    return GrantedReward(**(fields | changes))


def accepted(command_id: str, *granted_ids: str, points: int = 500) -> Outcome:
    return Outcome(
        command_id=command_id, request_event_id=f"req-{command_id}", accepted=True, reason=None,
        detail=None, points_debited=points, ledger_event_log_id=f"LE-{command_id}",
        granted_reward_ids=tuple(granted_ids), decided_at=AT,
    )  # fmt: skip


def rejected(command_id: str, reason: str, detail: str) -> Outcome:
    return Outcome(
        command_id=command_id, request_event_id=f"req-{command_id}", accepted=False,
        reason=reason, detail=detail, points_debited=0, ledger_event_log_id=None,
        granted_reward_ids=(), decided_at=AT,
    )  # fmt: skip


class FakeRewardStore:
    """Rows held in dicts; every method does what the Postgres store's SQL does."""

    def __init__(self) -> None:
        self.rewards: list[CatalogueReward] = []
        self.standings: dict[str, MemberStanding] = {}
        self.wallets: dict[str, list[GrantedReward]] = {}
        self.outcomes: dict[tuple[str, str], Outcome] = {}
        self.records: dict[tuple[str, str], RedemptionRecord] = {}
        self.looks = 0  # how many times `outcome` was asked

    # --- what tests give it --------------------------------------------------------------

    def grant(self, *rows: GrantedReward) -> None:
        for row in rows:
            self.wallets.setdefault(row.member_id, []).append(row)

    def decide(self, member_id: str, outcome: Outcome, *grants: GrantedReward) -> None:
        """What the worker and the projector do: the outcome, and the grants it names."""
        self.outcomes[(member_id, outcome.command_id)] = outcome
        self.grant(*grants)

    # --- RewardStore -----------------------------------------------------------------------

    async def catalogue(self, market: str, at: datetime) -> list[CatalogueReward]:
        return sorted(
            (r for r in self.rewards if r.market == market and r.available_from <= at
             and (r.available_until is None or at < r.available_until)),
            key=lambda r: (r.points_cost, r.reward_id),
        )  # fmt: skip

    async def standing(self, member_id: str) -> MemberStanding:
        return self.standings.get(member_id, MemberStanding(member_id, is_known=False))

    async def wallet(
        self, member_id: str, *, limit: int, after: WalletCursor | None, status: str | None
    ) -> WalletPage | None:
        if member_id not in self.wallets and member_id not in self.standings:
            return None
        rows = sorted(self.wallets.get(member_id, []),
                      key=lambda g: (g.granted_at, g.granted_reward_id), reverse=True)  # fmt: skip
        rows = [g for g in rows if status is None or g.status == status]
        if after is not None:
            rows = [g for g in rows if (g.granted_at, g.granted_reward_id) < after]
        return WalletPage(rewards=rows[:limit], has_more=len(rows) > limit)

    async def outcome(self, member_id: str, command_id: str) -> Outcome | None:
        self.looks += 1
        return self.outcomes.get((member_id, command_id))

    async def granted(self, member_id: str, ids: Sequence[str]) -> list[GrantedReward]:
        return [g for g in self.wallets.get(member_id, []) if g.granted_reward_id in ids]

    async def record(self, member_id: str, command_id: str) -> RedemptionRecord | None:
        return self.records.get((member_id, command_id))

    async def claim(self, record: RedemptionRecord) -> RedemptionRecord | None:
        key = (record.member_id, record.command_id)
        if key in self.records:
            return self.records[key]
        self.records[key] = record
        return None

    async def reclaim(
        self, member_id: str, command_id: str, seen_claimed_at: datetime, at: datetime
    ) -> bool:
        found = self.records.get((member_id, command_id))
        if found is None or found.written_at is not None or found.claimed_at != seen_claimed_at:
            return False
        self.records[(member_id, command_id)] = dataclasses.replace(found, claimed_at=at)
        return True

    async def written(self, member_id: str, command_id: str, at: datetime) -> None:
        found = self.records.get((member_id, command_id))
        if found is not None and found.written_at is None:
            self.records[(member_id, command_id)] = dataclasses.replace(found, written_at=at)

    async def release(self, member_id: str, command_id: str) -> None:
        found = self.records.get((member_id, command_id))
        if found is not None and found.written_at is None:
            del self.records[(member_id, command_id)]
