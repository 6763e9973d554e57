"""Fuzz the front door's decoders with random and mutated payloads.

Every payload must come out as an admitted event or a dead letter with a reason: no crash, no
hang. Mutations start from the golden corpus (every event type, every version), so they reach
deep into the Avro bodies and the validation rules, not just the framing.

    .venv/bin/python scripts/fuzz_decoders.py --payloads 100000 --seed 1

Not part of the default test run (it takes a minute or two); prints a JSON summary and exits 1
on any unclassified failure or any payload slower than --hang-ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

from loyalty import contract as files
from processors.base.topics import CONTRACT_TOPICS
from processors.codec.avro import AvroCodec
from processors.contract.base import Event
from processors.contract.deadletter import DeadLettered
from processors.frontdoor import Delivered, Tombstone, admit


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        if choice < 0.35 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)  # flip a byte
        elif choice < 0.5 and data:
            del data[rng.randrange(len(data)) :]  # truncate
        elif choice < 0.65:
            at = rng.randrange(len(data) + 1)  # insert random bytes
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        elif choice < 0.8 and len(data) > 12:
            at = rng.randrange(10, len(data))  # huge varint: lengths and counts
            data[at:at] = b"\xff\xff\xff\xff\x0f"
        elif data:
            start = rng.randrange(len(data))  # duplicate a slice
            data[start:start] = data[start : start + rng.randint(1, 16)]
    return bytes(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payloads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hang-ms", type=float, default=200.0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    codec = AvroCodec.with_history()
    seeds = [path.read_bytes() for path in Path(files.GOLDEN_DIR).glob("*/*.avro")]
    topics = list(CONTRACT_TOPICS)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    slowest = 0.0
    started = time.perf_counter()
    for n in range(args.payloads):
        kind = rng.random()
        if kind < 0.1:
            value = rng.randbytes(rng.randint(0, 64))
        elif kind < 0.15:
            value = b"\xc3\x01" + rng.randbytes(rng.randint(0, 64))
        else:
            value = mutate(rng, rng.choice(seeds))
        topic = rng.choice(topics).name
        delivered = Delivered(topic, 0, n, rng.choice([None, b"M1", rng.randbytes(4)]), value, 0)
        t0 = time.perf_counter()
        try:
            result = admit(codec, delivered)
        except Exception as error:  # noqa: BLE001 - the point is to catch anything
            failures.append(f"payload {n}: {error!r} value={value[:40].hex()}")
            continue
        elapsed = (time.perf_counter() - t0) * 1000
        slowest = max(slowest, elapsed)
        if elapsed > args.hang_ms:
            failures.append(f"payload {n}: took {elapsed:.0f} ms value={value[:40].hex()}")
        if isinstance(result, DeadLettered):
            outcomes[f"dead_letter:{result.reason.value}"] += 1
        elif isinstance(result, Event | Tombstone):
            outcomes["admitted"] += 1
        else:
            failures.append(f"payload {n}: unclassified result {result!r}")
    summary = {
        "payloads": args.payloads,
        "seed": args.seed,
        "seconds": round(time.perf_counter() - started, 1),
        "slowest_ms": round(slowest, 2),
        "outcomes": dict(sorted(outcomes.items())),
        "failures": len(failures),
        "first_failures": failures[:10],
    }
    print(json.dumps(summary, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
