"""The benchmarks' HTTP load: an open-loop schedule of requests sent at fixed instants whatever
the answers do (no coordinated omission), the API process's readiness and its CPU time. Every
bench that loads the API (`redeem`, `codes`, `feed`) plans its requests and calls `open_loop`;
what a request means (its outcome, whether it counts) is the bench's `classify`. Requests go
out through aiohttp, or `LeanClient` (`lean=True`), half the generator's CPU where it shares the
cores with the API it measures."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from loyalty.bench.report import BenchReport, Latencies, verdict

Classify = Callable[[str, int, bytes], str]
"""(kind, HTTP status or 0 for no answer, body) -> the answer's outcome, e.g. "201"."""


def by_status(kind: str, status: int, body: bytes) -> str:
    """The default outcome: the HTTP status ("0": no answer within the timeout)."""
    return str(status)


@dataclass(frozen=True)
class Planned:
    """One request of a schedule, `at` seconds after the run's start."""

    at: float
    kind: str
    method: str
    path: str
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class LoadResult:
    """What one open-loop run measured: latencies of the counted answers by kind, every
    answer's outcome by kind, the bytes of the counted answers."""

    latencies: dict[str, Latencies]
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    scheduled: int = 0
    seconds: float = 0.0
    lag_max_ms: float = 0.0
    """The furthest behind schedule a request was sent (the generator's own saturation)."""

    def uncounted(self, kind: str, counted: Collection[str]) -> int:
        answers = self.outcomes.get(kind, {})
        return sum(n for outcome, n in answers.items() if outcome not in counted)

    def context(self) -> dict[str, Any]:
        """The run's figures for a report's context."""
        return {
            "latency_ms": {k: t.summary() for k, t in self.latencies.items() if t.seconds},
            "outcomes": self.outcomes,
            "achieved_requests_per_s": round(self.scheduled / self.seconds, 1),
            "generator_lag_max_ms": round(self.lag_max_ms, 1),
        }


class LeanClient:
    """HTTP/1.1 keep-alive connections to one origin, one request at a time each: what an
    open-loop schedule needs and no more (the status, and the body by its Content-Length).
    About half aiohttp's CPU a request (docs/performance.md, "The 1,000 requests/s target"):
    where the generator shares the cores with the API it measures, that is CPU the API gets
    back."""

    def __init__(self, base_url: str, limit: int) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self._host = f"Host: {self.host}:{self.port}\r\n"
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(limit)

    async def request(self, planned: Planned, timeout_s: float) -> tuple[int, bytes]:
        """(status, body) of `planned`; (0, b"") when no answer came within `timeout_s`."""
        async with self._slots:
            conn = self._kept()
            try:
                async with asyncio.timeout(timeout_s):
                    if conn is None:
                        conn = await asyncio.open_connection(self.host, self.port)
                    reader, writer = conn
                    data = b"" if planned.body is None else json.dumps(planned.body).encode()
                    lines = [f"{planned.method} {planned.path} HTTP/1.1\r\n", self._host]
                    lines += [f"{name}: {value}\r\n" for name, value in planned.headers.items()]
                    if planned.body is not None:
                        lines.append(
                            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                        )
                    writer.write("".join(lines).encode() + b"\r\n" + data)
                    head = (await reader.readuntil(b"\r\n\r\n")).lower()
                    status = int(head[9:12])
                    if b"\r\ntransfer-encoding:" in head:  # the API's routes never stream
                        raise ValueError("only an answer with a Content-Length is read")
                    at = head.find(b"\r\ncontent-length:")
                    length = 0 if at < 0 else int(head[at + 17 : head.index(b"\r\n", at + 2)])
                    body = await reader.readexactly(length) if length else b""
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
                if conn is not None:
                    conn[1].close()
                return 0, b""
            if b"\r\nconnection: close" in head:
                writer.close()
            else:
                self._idle.append(conn)
            return status, body

    def _kept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """An idle connection the server has not closed meanwhile (its keep-alive timeout)."""
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def open_loop(
    base_url: str, schedule: Sequence[Planned], *, counted: Collection[str] = ("200",),
    classify: Classify = by_status, timeout_s: float = 30.0, measured: bool = True,
    lean: bool = False,
) -> LoadResult:  # fmt: skip
    """Send every planned request at its instant, each whether or not earlier ones were
    answered; a latency runs from the scheduled instant (or from the send, when a request
    went out before it) to the answer and is kept when the answer's outcome is in `counted`.
    `measured=False` (a warm-up) keeps nothing. `lean`: send with `LeanClient` rather than
    aiohttp (JSON bodies, answers with a Content-Length)."""
    planned = sorted(schedule, key=lambda p: p.at)
    kinds = dict.fromkeys(p.kind for p in planned)
    result = LoadResult({kind: Latencies(kind) for kind in kinds})
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    lag = 0.0
    start = loop.time() + 0.2

    async def one(request: Planned, due: float) -> None:
        if client is not None:
            status, body = await client.request(request, timeout_s)
        else:
            try:
                async with session.request(
                    request.method, request.path, json=request.body, headers=request.headers
                ) as response:
                    body, status = await response.read(), response.status
            except (aiohttp.ClientError, TimeoutError):  # an outcome of its own, not a latency
                body, status = b"", 0
        done = loop.time()
        if not measured:
            return
        outcome = classify(request.kind, status, body)
        counts = result.outcomes.setdefault(request.kind, {})
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome in counted:
            result.latencies[request.kind].add(done - due, time.time())
            result.bytes[request.kind] = result.bytes.get(request.kind, 0) + len(body)

    client = LeanClient(base_url, limit=256) if lean else None
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        tasks: set[asyncio.Task[None]] = set()
        for request in planned:
            due = start + request.at
            wait = due - loop.time()
            if wait > 0.0005:
                await asyncio.sleep(wait)
            now = loop.time()
            lag = max(lag, now - due)
            # From the scheduled instant (a late send counts its lateness), or from the send
            # when it went out early (up to half a millisecond): never from after the send.
            task = asyncio.create_task(one(request, min(due, now)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    if client is not None:
        client.close()
    result.scheduled, result.seconds, result.lag_max_ms = len(planned), elapsed, lag * 1000
    return result


async def wait_until_ready(base_url: str, api: Any) -> None:
    """Until the API answers `GET /healthz` (its process alive meanwhile)."""
    deadline = time.monotonic() + 90
    async with aiohttp.ClientSession(base_url) as session:
        while time.monotonic() < deadline:
            if not api.alive():
                raise RuntimeError(f"the API process exited:\n{api.log_tail()}")
            try:
                async with session.get("/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"the API never became ready:\n{api.log_tail()}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of a process and its children, the API's workers
    (Linux), or None where /proc is absent."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            child = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(child[1]) == pid:
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_ms_each(before: float | None, after: float | None, requests: int) -> float | None:
    """A process's CPU milliseconds a request between two `cpu_seconds` readings."""
    if before is None or after is None or requests <= 0:
        return None
    return round((after - before) / requests * 1000, 2)


def fill_round_trips(
    report: BenchReport, trips: LoadResult, cpu_ms: float | None, *, kinds: Collection[str],
    notes: Mapping[str, str], target: str, p99_max_ms: float,
    each: Mapping[str, str] | None = None,
) -> None:  # fmt: skip
    """A round-trip bench's figures into `report`: every kind's latencies, the API's CPU a
    request, and the worst p99 of `kinds` judged against `p99_max_ms` beside healthz's (and,
    for each kind `each` names, its own p99 judged under the name it gives)."""
    report.context |= trips.context()
    latency: dict[str, dict[str, float]] = report.context["latency_ms"]  # type: ignore[assignment]
    worst = max((latency[k]["p99_ms"] for k in kinds if k in latency), default=None)
    healthz = latency.get("healthz", {}).get("p99_ms")
    report.context |= {
        "api_cpu_ms_per_request": cpu_ms,
        "worst_p99_ms": worst,
        "within_target": worst is not None and worst <= p99_max_ms,
    }
    for times in trips.latencies.values():
        if times.seconds:
            report.add_latencies(times, "requests", notes[times.name])
    baseline = f"healthz p99 {healthz} ms, same schedule" if healthz else ""
    report.judge(verdict(target, worst, at_most=p99_max_ms, unit="ms", baseline=baseline))
    for kind, name in (each or {}).items():
        own = latency.get(kind, {}).get("p99_ms")
        report.judge(verdict(name, own, at_most=p99_max_ms, unit="ms", baseline=baseline))
