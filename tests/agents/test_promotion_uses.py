"""The promotion-uses agent stores each reservation as a part of the promotion's entry: a
batch writes what changed, not every reservation kept, and a promotion read back from its
changelog counts the same reservations (docs/adr/0017-worker-runtime.md, addendum)."""

from __future__ import annotations

from datetime import datetime, timedelta

from processors.agents.promotion_uses import ANSWER, LEASE, LINK, RESERVATION, PromotionUsesAgent
from processors.contract.internal import (
    PromoCodeLeaseRequested,
    PromoCodeLinkAnswered,
    PromoCodeLinkClaimRequested,
    PromoCodeReservationRequested,
    PromoCodeUseRequested,
)
from processors.contract.offers import (
    PromoCodeLeaseAnswered,
    PromoCodeRedeemed,
    PromoCodeRefusal,
    PromoCodeRefused,
)
from processors.frontdoor import Delivered
from processors.rules.codes import uses
from processors.rules.holds import FORGOTTEN_AT_ONCE
from processors.runtime.table import APPLIED, JOURNAL, part_key, partition_of
from tests.agents.harness import CHANGELOG, CODEC, Harness, record
from tests.rules.given import T0

LIMIT = 60


def reserve(tx: str, offset: int) -> Delivered:
    return record(PromoCodeReservationRequested(
        event_id=f"res-{tx}", occurred_at=T0, promotion_id="P1", code="SHARED", member_id=None,
        transaction_id=tx, reserved_until=T0 + timedelta(minutes=15), discount_cents=100,
        redemptions_total_max=LIMIT,
    ), offset)  # fmt: skip


def purchase(tx: str, offset: int) -> Delivered:
    return record(PromoCodeUseRequested(
        event_id=f"use-{tx}", occurred_at=T0 + timedelta(minutes=1), promotion_id="P1",
        code="SHARED", member_id=None, transaction_id=tx, discount_cents=100,
        cause_event_id=f"tx-{tx}", redemptions_total_max=LIMIT,
    ), offset)  # fmt: skip


JOURNALED = part_key("P1", JOURNAL).encode()
APPLIED_PART = part_key("P1", APPLIED).encode()  # the last input decided (ADR 17, addendum)


def changelog(h: Harness) -> list[bytes | None]:
    return [key for topic, _, key, _ in h.sent() if topic == CHANGELOG]


async def test_a_batch_writes_the_promotion_and_only_the_reservations_it_changed():
    h = Harness(PromotionUsesAgent(), partitions=4)
    await h.run(*(reserve(f"tx-{n:02d}", n) for n in range(50)))
    written = changelog(h)
    assert written[0] == written[-1] == JOURNALED  # the whole change set first, deleted last
    assert written[-3:-1] == [APPLIED_PART, b"P1"]  # the parts kept before their entry
    assert len(written) == 54
    await h.run(reserve("tx-50", 50))
    assert changelog(h) == [
        JOURNALED,
        part_key("P1", RESERVATION + "SHARED|tx-50").encode(),
        APPLIED_PART,
        JOURNALED,
    ]
    await h.run(purchase("tx-07", 51))  # commits its reservation: the answer, then the part gone
    assert changelog(h) == [
        JOURNALED,
        part_key("P1", ANSWER + "SHARED|tx-07").encode(),
        APPLIED_PART,
        part_key("P1", RESERVATION + "SHARED|tx-07").encode(),
        JOURNALED,
    ]
    assert h.table.parts("P1").keys() - {APPLIED} == {
        RESERVATION + f"SHARED|tx-{n:02d}" for n in range(51) if n != 7
    } | {ANSWER + "SHARED|tx-07"}


async def test_the_state_cache_weighs_a_promotion_by_its_entry_and_its_reservations():
    h = Harness(PromotionUsesAgent(), partitions=4)
    await h.run(*(reserve(f"tx-{n:02d}", n) for n in range(50)))
    parts = sum(len(value) for value in h.table.parts("P1").values())
    entry = h.table.get("P1")
    assert entry is not None
    assert parts > 40 * len(entry)  # the reservations are most of it
    assert h.batches.cache.stored_bytes == len(entry) + parts
    await h.run(purchase("tx-07", 51))  # a reservation committed: its part gone
    left = sum(len(value) for value in h.table.parts("P1").values())
    assert h.batches.cache.stored_bytes == len(h.table.get("P1") or b"") + left < len(entry) + parts


async def test_a_promotion_read_back_from_its_table_counts_every_stored_reservation():
    h = Harness(PromotionUsesAgent(), partitions=4)
    await h.run(*(reserve(f"tx-{n:02d}", n) for n in range(LIMIT - 1)))
    h.batches.cache.clear()  # read back from the table, as after a restart
    await h.run(reserve("tx-last", 100), reserve("tx-over", 101))
    refused = [e for e in h.outputs() if isinstance(e, PromoCodeRefused)]
    assert [e.transaction_id for e in refused] == ["tx-over"]  # 59 stored + 1: the limit


def test_a_reservation_left_by_a_commit_cut_short_is_dropped_on_load():
    agent = PromotionUsesAgent()
    state = uses.PromotionUses(promotion_id="P1", uses=1, answers={"SHARED|tx-1": 1})
    part = uses.Reservation(code="SHARED", member_id=None, until=T0 + timedelta(minutes=15))
    loaded = agent.load_parted(
        "P1", state.model_dump_json().encode(),
        {RESERVATION + "SHARED|tx-1": part.model_dump_json().encode()},
    )  # fmt: skip
    assert loaded.reservations == {}
    stored = agent.dump(loaded)
    assert stored.parts == {RESERVATION + "SHARED|tx-1": None}  # its tombstone written next


def test_an_entry_stored_with_its_reservations_inline_moves_them_to_parts():
    agent = PromotionUsesAgent()
    kept = uses.Reservation(code="SHARED", member_id="m1", until=T0 + timedelta(minutes=15))
    old = uses.PromotionUses(promotion_id="P1", reservations={"SHARED|tx-1": kept})
    loaded = agent.load("P1", old.model_dump_json().encode())
    assert loaded.reserved(T0, "SHARED", "m1") == (1, 1, 1)
    stored = agent.dump(loaded)
    assert b"tx-1" not in stored.entry
    assert stored.parts == {RESERVATION + "SHARED|tx-1": kept.model_dump_json().encode()}


async def test_an_upgraded_entry_writes_its_reservations_as_parts_before_it_drops_them():
    # A process that dies between the two writes must not leave an entry without reservations
    # and no part holding them: the parts go first.
    h = Harness(PromotionUsesAgent(), partitions=4)
    kept = uses.Reservation(code="SHARED", member_id=None, until=T0 + timedelta(minutes=15))
    old = uses.PromotionUses(promotion_id="P1", reservations={"SHARED|tx-1": kept})
    h.table.load(partition_of(b"P1", 4), [(b"P1", old.model_dump_json().encode())])
    await h.run(reserve("tx-2", 0))
    part = part_key("P1", RESERVATION + "SHARED|tx-1").encode()
    written = changelog(h)
    assert written.index(part) < written.index(b"P1")


def use(tx: str, offset: int, member: str | None = None, code: str = "SHARED") -> Delivered:
    return record(PromoCodeUseRequested(
        event_id=f"use-{tx}", occurred_at=T0 + timedelta(minutes=1), promotion_id="P1",
        code=code, member_id=member, transaction_id=tx, discount_cents=100,
        cause_event_id=f"tx-{tx}", redemptions_total_max=LIMIT, redemptions_per_member_max=2,
    ), offset)  # fmt: skip


async def test_a_use_writes_its_answer_alone_however_many_the_promotion_has():
    # A shared code used by 100,000 customers rewrote 100,000 answers on each batch.
    h = Harness(PromotionUsesAgent(), partitions=4)
    await h.run(*(use(f"tx-{n:02d}", n, member=f"m{n}") for n in range(40)))
    assert changelog(h)[-2] == b"P1"  # the entry, written once
    await h.run(use("tx-40", 40, member="m40"))
    answer = part_key("P1", ANSWER + "SHARED|tx-40").encode()
    assert changelog(h) == [JOURNALED, answer, APPLIED_PART, JOURNALED]
    await h.run(use("tx-40", 41, member="m40"))  # sent again: answered again, nothing stored
    assert changelog(h) == []


async def test_a_promotion_read_back_counts_its_uses_from_their_answers():
    h = Harness(PromotionUsesAgent(), partitions=4)
    await h.run(*(use(f"tx-{n:02d}", n, member="m1" if n < 2 else None) for n in range(LIMIT - 1)))
    h.batches.cache.clear()  # read back from the table, as after a restart
    h.sent()
    await h.run(
        use("tx-01", 100, member="m1"),  # redelivered: the same answer
        use("tx-m1", 101, member="m1"),  # a third use for m1: over their limit of 2
        use("tx-last", 102),  # the 60th use
        use("tx-over", 103),  # one over the total
    )  # fmt: skip
    answers = {e.transaction_id: e for e in h.outputs()}
    assert isinstance(answers["tx-01"], PromoCodeRedeemed)
    assert answers["tx-01"].use_number == 2
    assert answers["tx-m1"].reason == PromoCodeRefusal.code_limit_per_customer  # type: ignore[union-attr]
    assert isinstance(answers["tx-last"], PromoCodeRedeemed)
    assert answers["tx-last"].use_number == LIMIT
    assert answers["tx-over"].reason == PromoCodeRefusal.code_exhausted  # type: ignore[union-attr]
    state = PromotionUsesAgent().load_parted("P1", h.table.get("P1") or b"", h.table.parts("P1"))
    assert (state.uses, state.per_code, state.per_member) == (LIMIT, {"SHARED": LIMIT}, {"m1": 2})


def test_an_entry_that_kept_its_answers_inline_counts_them_with_the_new_ones():
    agent = PromotionUsesAgent()
    old = uses.PromotionUses(
        promotion_id="P1", uses=2, per_code={"SHARED": 2}, per_member={"m1": 2},
        answers={"SHARED|tx-1": 1, "SHARED|tx-2": 2, "SHARED|tx-3": "code_limit_per_customer"},
    )  # fmt: skip
    raw = old.model_dump_json(exclude={"reservations"}).encode()
    loaded = agent.load_parted(
        "P1", raw, {ANSWER + "SHARED|tx-4": b'[3, "SHARED", "m2"]', LINK + "ONE": b'"m9"'}
    )
    assert (loaded.uses, loaded.per_member, loaded.links) == (3, {"m1": 2, "m2": 1}, {"ONE": "m9"})
    stored = agent.dump(loaded)
    assert stored.entry == raw
    assert stored.parts == {}


async def test_a_link_is_stored_on_its_own_and_read_back():
    h = Harness(PromotionUsesAgent(), partitions=4)
    claim = PromoCodeLinkClaimRequested(
        event_id="link-1", occurred_at=T0, promotion_id="P1", code="ONE", member_id="m1",
        command_id="c1", redemptions_per_code_max=1,
    )  # fmt: skip
    await h.run(record(claim, 0))
    assert part_key("P1", LINK + "ONE").encode() in changelog(h)
    h.batches.cache.clear()
    other = claim.model_copy(update={"event_id": "link-2", "member_id": "m2", "command_id": "c2"})
    await h.run(record(other, 1))
    [answer] = h.outputs()
    assert isinstance(answer, PromoCodeLinkAnswered)
    assert not answer.linked


async def test_a_use_from_a_lease_stores_its_reservation_before_the_lease_and_reads_back():
    h = Harness(PromotionUsesAgent(), partitions=4)
    asked = PromoCodeLeaseRequested(
        event_id="L1", occurred_at=T0, promotion_id="P1", code="SHARED", holder="api-1",
        uses_wanted=10, leased_until=T0 + timedelta(seconds=20), redemptions_total_max=LIMIT,
    )  # fmt: skip
    await h.run(record(asked, 0))
    [answer] = h.outputs()
    assert isinstance(answer, PromoCodeLeaseAnswered)
    assert answer.uses_granted == 10
    from_lease = reserve("tx-1", 1).value  # the same request, taken from the lease
    event = PromoCodeReservationRequested.model_validate({
        **CODEC.decode(from_lease).model_dump(), "lease_id": "L1",
        "occurred_at": T0 + timedelta(seconds=1),
    })  # fmt: skip
    await h.run(record(event, 1))
    assert changelog(h) == [
        JOURNALED,
        part_key("P1", RESERVATION + "SHARED|tx-1").encode(),
        part_key("P1", LEASE + "L1").encode(),
        APPLIED_PART,
        JOURNALED,
    ]
    h.batches.cache.clear()  # read back: 1 reserved, 9 still set aside
    state = PromotionUsesAgent().load_parted("P1", h.table.get("P1") or b"", h.table.parts("P1"))
    assert state.leases["L1"].used == 1
    assert state.leased(T0 + timedelta(seconds=2), "SHARED") == (9, 9)


async def test_a_batch_saves_a_promotion_every_so_many_inputs_so_its_journal_stays_small():
    # Found in review: a journal holds a batch's whole change set in one record; 2,000
    # reservations made 340 KiB, 10,000 would pass the broker's 1 MiB limit for good.
    h = Harness(PromotionUsesAgent(), partitions=4)
    h.batches.journal_inputs_max = 2
    await h.run(*(reserve(f"tx-{n}", n) for n in range(5)))
    written = changelog(h)
    assert written.count(JOURNALED) == 6  # three saves: 2 + 2 + 1, each journal written and gone
    state = PromotionUsesAgent().load_parted("P1", h.table.get("P1") or b"", h.table.parts("P1"))
    assert len(state.reservations) == 5


async def test_a_batch_saves_a_promotion_once_so_many_parts_changed():
    h = Harness(PromotionUsesAgent(), partitions=4)
    h.batches.journal_parts_max = 3  # each reservation is one part
    await h.run(*(reserve(f"tx-{n}", n) for n in range(7)))
    assert changelog(h).count(JOURNALED) == 6  # three saves: 3 + 3 + 1


def held(tx: str, offset: int, at: datetime) -> Delivered:
    return record(PromoCodeReservationRequested(
        event_id=f"res-{tx}", occurred_at=at, promotion_id="P1", code="SHARED", member_id=None,
        transaction_id=tx, reserved_until=at + timedelta(minutes=15), discount_cents=100,
    ), offset)  # fmt: skip


async def test_a_quiet_promotion_forgets_its_lapsed_reservations_a_bounded_number_at_a_time():
    # Found in review: a rush of abandoned baskets, then a week of quiet: the next input forgot
    # every lapsed reservation at once, in one journal record that could pass the broker's
    # record size limit, and the partition would stall for good.
    h = Harness(PromotionUsesAgent(), partitions=4)
    lapsed = 2 * FORGOTTEN_AT_ONCE + 500
    await h.run(*(held(f"tx-{n}", n, T0) for n in range(lapsed)))
    week = T0 + uses.FORGOTTEN_AFTER + timedelta(hours=1)
    h.sent()
    sizes, kept = [], []
    agent = PromotionUsesAgent()
    for n in range(3):
        await h.run(held(f"late-{n}", lapsed + n, week))
        sizes += [len(value) for topic, value, key, _ in h.sent()
                  if topic == CHANGELOG and key == JOURNALED and value is not None]  # fmt: skip
        kept.append(len(agent.load_parted("P1", h.table.get("P1") or b"",
                                          h.table.parts("P1")).reservations))  # fmt: skip
    assert kept == [1 + 1500, 2 + 500, 3]  # 1,000, 1,000, then the last 500
    assert len(sizes) == 3
    assert max(sizes) < 40_000, sizes  # ~31 bytes a part gone
