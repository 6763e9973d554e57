"""A state stored in parts, cut short by a crash after any prefix of its batch's changelog
writes (ADR 17, addendum: the journal): the redelivered batch leaves the same state, and sends
the same answers when nothing of the first run was saved, none when its journal was (its
answers were acknowledged before it was written: the inputs a saved state holds are not
decided again). Found in review: without the journal, a crash between an answer's part and a
release's tombstone made a redelivered reservation refused after its till was told yes,
renumbered uses, and regranted a lease with other uses than the API had acted on."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from processors.agents.offer_uses import OfferUses
from processors.agents.promotion_uses import PromotionUsesAgent
from processors.contract.internal import (
    OfferUseRequested,
    OfferUseReservationReleased,
    OfferUseReservationRequested,
    PromoCodeLeaseRequested,
    PromoCodeReservationReleased,
    PromoCodeReservationRequested,
    PromoCodeUseRequested,
)
from processors.frontdoor import Delivered
from processors.runtime.table import JOURNAL, partition_of
from tests.agents.harness import CHANGELOG, Harness, record
from tests.rules.given import T0

PARTITIONS = 4


def at(seconds: int) -> object:
    return T0 + timedelta(seconds=seconds)


def use(tx: str, seconds: int, limit: int) -> PromoCodeUseRequested:
    return PromoCodeUseRequested(
        event_id=f"use-{tx}", occurred_at=at(seconds), promotion_id="P1", code="SHARED",
        member_id=None, transaction_id=tx, discount_cents=100, cause_event_id=f"tx-{tx}",
        redemptions_total_max=limit,
    )  # fmt: skip


def reserve(tx: str, seconds: int, limit: int) -> PromoCodeReservationRequested:
    return PromoCodeReservationRequested(
        event_id=f"res-{tx}", occurred_at=at(seconds), promotion_id="P1", code="SHARED",
        member_id=None, transaction_id=tx, reserved_until=at(seconds + 900),
        discount_cents=100, redemptions_total_max=limit,
    )  # fmt: skip


def leased(tx: str, seconds: int, limit: int, lease_id: str) -> PromoCodeReservationRequested:
    return reserve(tx, seconds, limit).model_copy(update={"lease_id": lease_id})


def release(tx: str, seconds: int) -> PromoCodeReservationReleased:
    return PromoCodeReservationReleased(
        event_id=f"rel-{tx}", occurred_at=at(seconds), promotion_id="P1", code="SHARED",
        transaction_id=tx,
    )  # fmt: skip


def lease(lease_id: str, seconds: int, limit: int) -> PromoCodeLeaseRequested:
    return PromoCodeLeaseRequested(
        event_id=lease_id, occurred_at=at(seconds), promotion_id="P1", code="SHARED",
        holder="api-1", uses_wanted=50, leased_until=at(seconds + 20),
        redemptions_total_max=limit,
    )  # fmt: skip


SCENARIOS = {
    # 5 of 6 taken; b told reserved, c gives its use back, u takes it.
    "reserve-release-use": (
        [*(use(f"a{n}", 0, 6) for n in range(4)), reserve("c", 0, 6)],
        [reserve("b", 1, 6), release("c", 2), use("u", 3, 6)],
    ),
    # Two uses numbered in arrival order, whatever their keys sort as.
    "numbers": ([use(f"a{n}", 0, 100) for n in range(4)], [use("t3", 1, 100), use("t1", 2, 100)]),
    # A use, a release, a use: never redeemed and refused.
    "use-release-use": (
        [*(use(f"a{n}", 0, 6) for n in range(4)), reserve("c", 0, 6)],
        [use("zz", 1, 6), release("c", 2), use("aa", 3, 6)],
    ),
    # A lease and a use after it: the lease answered alike.
    "lease-then-use": (
        [use(f"a{n}", 0, 20) for n in range(10)], [lease("L1", 0, 20), use("u", 1, 20)]
    ),
    # A use of a lease, its basket released: the lease's use spent once.
    "lease-use-release": (
        [use(f"a{n}", 0, 20) for n in range(5)],
        [lease("L1", 0, 20), leased("b", 1, 20, "L1"), release("b", 2), reserve("c", 3, 20)],
    ),
    # A basket reserved then cancelled in one batch, its use then taken: redelivered after
    # the save, its reservation was answered anew against the released state (refused).
    "reserve-and-release": (
        [use(f"a{n}", 0, 3) for n in range(2)],
        [reserve("b", 1, 3), release("b", 2), use("u", 3, 3)],
    ),
    # A promotion's very first batch.
    "first-batch": ([], [reserve("b", 0, 3), use("u", 1, 3), lease("L1", 2, 3), release("b", 3)]),
}  # fmt: skip


def records(events: list, first: int) -> list[Delivered]:  # type: ignore[type-arg]
    return [record(event, first + n) for n, event in enumerate(events)]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_a_batch_cut_short_anywhere_is_redelivered_with_the_same_answers(scenario):  # type: ignore[no-untyped-def]
    await cut_everywhere(PromotionUsesAgent, "P1", *SCENARIOS[scenario])


async def cut_everywhere(agent: Any, key: str, before: list, batch: list) -> None:  # type: ignore[type-arg]
    """Run `before`, then `batch`; then for every prefix of the batch's changelog writes, a
    fresh process with that prefix redelivered the batch: the same state (journal gone), and
    the same answers if nothing was saved, none if the journal was."""
    h = Harness(agent(), partitions=PARTITIONS)
    if before:
        await h.run(*records(before, 0))
    history = [(k, value) for topic, value, k, _ in h.sent() if topic == CHANGELOG]
    await h.run(*records(batch, 100))
    sent = h.sent()
    answers = [event.model_dump() for event in h_outputs(sent)]
    writes = [(k, value) for topic, value, k, _ in sent if topic == CHANGELOG]
    assert len(writes) >= 3  # a journal, its parts, the entry, the journal gone
    final = stored(agent, h, key)
    for cut in range(len(writes) + 1):
        again = Harness(agent(), partitions=PARTITIONS)
        for k, value in history + writes[:cut]:
            again.table.load(partition_of(k.split(b"\x1f")[0], PARTITIONS), [(k, value)])
        await again.run(*records(batch, 100))
        resent = [e.model_dump() for e in again.outputs()]
        assert resent == (answers if cut == 0 else []), cut
        assert stored(agent, again, key) == final, cut
        assert JOURNAL not in again.table.parts(key), cut  # its writes completed


def stored(agent: Any, h: Harness, key: str) -> dict:  # type: ignore[type-arg]
    entry, parts, _ = h.table.parted(key)
    assert entry is not None
    return agent().load_parted(key, entry, parts).model_dump()  # type: ignore[no-any-return]


def h_outputs(sent: list) -> list:  # type: ignore[type-arg]
    from tests.agents.harness import CODEC

    return [CODEC.decode(value) for topic, value, _, _ in sent if topic != CHANGELOG]


class Failing:
    """The harness's producer, but changelog writes past the first `land` are never
    acknowledged (the broker fails among a batch's writes)."""

    def __init__(self, inner: Any, land: int) -> None:
        self.inner, self.land, self.landed = inner, land, []  # type: ignore[var-annotated]

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None,
                   partition: int | None = None) -> Any:  # fmt: skip
        future = await self.inner.send(topic, value, key=key, partition=partition)
        if topic != CHANGELOG:
            return future
        if self.land <= 0:
            failed = asyncio.get_running_loop().create_future()
            failed.set_exception(KafkaTimeoutError())
            return failed
        self.land -= 1
        self.landed.append((key, value))
        return future


async def test_a_batch_retried_in_process_after_a_failed_save_writes_its_changes_again():
    # Found in review: the local copy kept nothing of a failed save; retried with part of its
    # records, the batch overwrote a journal whose writes had not all landed, and the
    # redelivered rest refused a basket its till had been told "reserved".
    before, batch = [*(use(f"a{n}", 0, 6) for n in range(4)), reserve("c", 0, 6)], [
        reserve("x", 1, 6), release("c", 2), reserve("y", 3, 6), release("x", 4), use("u", 5, 6)
    ]  # fmt: skip
    h = Harness(PromotionUsesAgent(), partitions=PARTITIONS)
    await h.run(*records(before, 0))
    history = [(key, value) for topic, value, key, _ in h.sent() if topic == CHANGELOG]
    failing = Failing(h.producer, land=2)  # the journal and one part land, then a failure
    h.batches.producer = failing  # type: ignore[assignment]
    with pytest.raises(KafkaTimeoutError):
        await h.run(*records(batch, 100))
    told = {e.transaction_id: type(e).__name__ for e in h.outputs()}
    assert told["y"] == "PromoCodeReserved"
    failing.land = 1_000
    await h.run(*records(batch[:1], 100))  # the runner's retry, fetched with its first record
    again = Harness(PromotionUsesAgent(), partitions=PARTITIONS)  # then a restart
    for key, value in history + failing.landed:
        again.table.load(partition_of(key.split(b"\x1f")[0], PARTITIONS), [(key, value)])
    await again.run(*records(batch[1:], 101))
    assert again.outputs() == []  # all of it was told before the journal was written
    state = PromotionUsesAgent().load_parted("P1", *again.table.parted("P1")[:2])  # type: ignore[arg-type]
    assert "SHARED|y" in state.reservations  # still reserved for the basket told so
    assert isinstance(state.answers["SHARED|u"], int)  # and u redeemed


# --- an offer's total uses (the offer-uses agent's state, stored in parts the same way) -------


def grant(member: str, seconds: int, limit: int, points: int = 100, tx: str | None = None):  # type: ignore[no-untyped-def]
    return OfferUseRequested(
        event_id=f"req-{member}-{seconds}", occurred_at=at(seconds), offer_id="OFFER1",
        member_id=member, use_number=1, program_id="CA_MAIN", points_due=points,
        points_requested=points, uses_total_max=limit, cause_event_id=f"tx-{member}",
        completed_event_id=f"done-{member}", transaction_id=tx,
    )  # fmt: skip


def hold(member: str, tx: str, seconds: int, limit: int) -> OfferUseReservationRequested:
    return OfferUseReservationRequested(
        event_id=f"hold-{tx}", occurred_at=at(seconds), offer_id="OFFER1", member_id=member,
        transaction_id=tx, reserved_until=at(seconds + 900), discount_cents=500,
        uses_total_max=limit,
    )  # fmt: skip


def unhold(tx: str, seconds: int) -> OfferUseReservationReleased:
    return OfferUseReservationReleased(
        event_id=f"unhold-{tx}", occurred_at=at(seconds), offer_id="OFFER1", transaction_id=tx
    )


OFFER_SCENARIOS = {
    # 3 of 5 granted; a basket reserves, another is released, a discount use commits one.
    "reserve-release-commit": (
        [*(grant(f"m{n}", 0, 5) for n in range(3)), hold("h1", "t1", 0, 5)],
        [hold("h2", "t2", 1, 5), unhold("t1", 2), grant("h2", 3, 5, points=0, tx="t2"),
         grant("late", 4, 5)],
    ),
    # The grants that spend the offer, and one denied after.
    "spent": ([grant("m0", 0, 3)], [grant("m1", 1, 3), grant("m2", 2, 3), grant("m3", 3, 3)]),
    # An offer's very first batch.
    "first-batch": ([], [hold("h1", "t1", 0, 2), grant("m1", 1, 2), unhold("t1", 2),
                         grant("m2", 3, 2)]),
}  # fmt: skip


@pytest.mark.parametrize("scenario", list(OFFER_SCENARIOS))
async def test_an_offers_batch_cut_short_anywhere_is_redelivered_with_the_same_answers(scenario):  # type: ignore[no-untyped-def]
    await cut_everywhere(OfferUses, "OFFER1", *OFFER_SCENARIOS[scenario])
