"""`loyalty bench-codes`' open-loop schedule: the reservations at the rate asked, alternating a
fresh single-use code and the shared one, and `/healthz` probing at its share of that rate."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

from loyalty.bench.codes import PATTERN, SHARED, schedule
from processors.rules.codes.generation import GeneratedCodes

CODES = GeneratedCodes("BENCH-UNIQUE", "bench-codes-unique", PATTERN, 1_000)


def test_reservations_keep_the_rate_and_healthz_probes_at_its_share():
    planned = schedule("token", CODES, first=0, rate=200.0, seconds=3.0, run="r",
                       healthz_share=0.25)  # fmt: skip

    kinds = Counter(p.kind for p in planned)
    assert kinds == {"unique": 300, "shared": 300, "healthz": 150}
    healthz = sorted(p.at for p in planned if p.kind == "healthz")
    assert healthz[0] > 0
    assert healthz[-1] < 3.0
    assert {round(b - a, 6) for a, b in pairwise(healthz)} == {0.02}


def test_each_unique_reservation_has_a_code_of_its_own_and_the_shared_one_repeats():
    planned = schedule("token", CODES, first=10, rate=100.0, seconds=2.0, run="r",
                       healthz_share=1.0)  # fmt: skip

    codes = [p.body["promo_codes"][0] for p in planned if p.kind == "unique"]
    assert len(set(codes)) == len(codes) == 100
    assert codes[0] == CODES.code(10)
    assert {p.body["promo_codes"][0] for p in planned if p.kind == "shared"} == {SHARED}
    assert len({p.body["transaction_id"] for p in planned if p.body}) == 200
    assert sum(p.kind == "healthz" for p in planned) == 200
