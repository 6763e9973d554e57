"""An engine for targeting, activation and trigger tests: the member composition through the
simulator (config, ticks and days routed as the worker routes them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from processors.contract.activities import ActivityKind, ActivityRecorded
from processors.contract.base import Event
from processors.contract.common import Source
from processors.contract.config import AudienceUploaded, OfferPublished
from processors.contract.enrolments import MemberEnrolled, MemberProfile
from processors.contract.offer_definition import (
    Behaviour,
    OfferTargeting,
    TargetingCriterion,
    TargetingKind,
    TargetingTiming,
)
from processors.contract.offers import OfferCompleted, OfferTargeted
from processors.contract.redemptions import OfferLoadRequested
from processors.simulation import Simulation
from tests.rules.given import PROGRAM, T0, program
from tests.rules.offers.given_offers import STARTS, offer, purchase


def targeting(kind: TargetingKind, timing: TargetingTiming, **fields: Any) -> OfferTargeting:
    return OfferTargeting(kind=kind, timing=timing, **fields)


def criteria(*tests: TargetingCriterion, timing: TargetingTiming = TargetingTiming.DYNAMIC,
             **fields: Any) -> OfferTargeting:  # fmt: skip
    return targeting(TargetingKind.CRITERIA, timing, criteria=list(tests), **fields)


def audience(audience_id: str, *members: str, part: int = 1, parts: int = 1,
             upload: str = "U1") -> AudienceUploaded:  # fmt: skip
    return AudienceUploaded(
        event_id=f"aud-{audience_id}-{upload}-{part}",
        occurred_at=STARTS - timedelta(days=2),
        audience_id=audience_id,
        upload_id=upload,
        part_number=part,
        part_count=parts,
        member_ids=list(members),
        source_file_name="list.csv",
    )


class Engine:
    """A simulated engine with one programme; every output kept."""

    def __init__(self) -> None:
        self.sim = Simulation()
        self.outputs: list[Event] = []
        self.feed(program())

    def feed(self, *events: Event) -> list[Event]:
        out = [o for e in events for o in self.sim.feed(e)]
        self.outputs += out
        return out

    def publish(self, offer_id: str = "OFFER_T", *behaviours: Behaviour,
                at: datetime | None = None, **changes: Any) -> OfferPublished:  # fmt: skip
        published = offer(offer_id, *behaviours, **changes)
        if at is not None:
            published = published.model_copy(update={"occurred_at": at})
        self.feed(published)
        return published

    def enrol(self, member: str, at: datetime = T0 - timedelta(days=10), **profile: Any) -> None:
        self.feed(
            MemberEnrolled(
                event_id=f"enrol-{member}", occurred_at=at, member_id=member, market="CA",
                program_ids=[PROGRAM], source=Source.APP, profile=MemberProfile(**profile),
            )
        )  # fmt: skip

    def buy(self, member: str, tx: str, cents: int = 1000, at: datetime = T0, **kw: Any) -> None:
        self.feed(purchase(tx, cents=cents, at=at, member=member, **kw))

    def act(self, member: str, kind: ActivityKind, at: datetime = T0, n: str = "1",
            custom: str | None = None) -> None:  # fmt: skip
        self.feed(
            ActivityRecorded(
                event_id=f"act-{member}-{kind.value}-{n}", occurred_at=at, member_id=member,
                kind=kind, custom_name=custom, source=Source.APP,
            )
        )  # fmt: skip

    def load(self, member: str, offer_id: str = "OFFER_T", command: str = "C1",
             at: datetime = T0 - timedelta(hours=1)) -> list[Event]:  # fmt: skip
        return self.feed(
            OfferLoadRequested(
                event_id=f"load-{command}", occurred_at=at, command_id=command,
                member_id=member, offer_id=offer_id, source=Source.APP,
            )
        )  # fmt: skip

    def targeted(self) -> list[tuple[str, str, bool]]:
        return [
            (e.member_id, e.offer_id, e.in_control_group)
            for e in self.outputs
            if isinstance(e, OfferTargeted)
        ]

    def completed(self) -> list[OfferCompleted]:
        return [e for e in self.outputs if isinstance(e, OfferCompleted)]

    def points(self, member: str) -> int:
        return sum(e.points_awarded for e in self.completed() if e.member_id == member)
