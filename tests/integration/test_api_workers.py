"""`loyalty api --workers 2`: two processes answer on one port, each with its own pools and
decision listener, and the internal metrics port serves the sum of both processes' counters
(prometheus_client's multiprocess mode)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from loyalty.bench.openloop import wait_until_ready
from loyalty.services import Services, free_port
from processors.base.settings import Settings

pytestmark = pytest.mark.integration

REQUESTS = 40


def _spawned_by(pid: int) -> list[int]:
    """The processes `pid` spawned with multiprocessing (uvicorn's workers)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            spawned = b"multiprocessing.spawn" in (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == pid and spawned:
            found.append(int(proc.name))
    return found


async def test_two_workers_answer_on_one_port_and_their_metrics_are_summed(
    stack_settings: Settings, database_url: str, tmp_path
):
    port = free_port()
    settings = stack_settings.model_copy(update={"database_url": database_url})
    services = Services(settings, tmp_path)
    api = services.start("api", "api", "--port", str(port), "--workers", "2")
    base_url = f"http://127.0.0.1:{port}"
    try:
        await wait_until_ready(base_url, api)

        # Separate connections, so the kernel may hand them to either worker.
        async def one() -> int:
            async with httpx.AsyncClient(base_url=base_url) as http:
                return (await http.get("/v1/offers", params={"market": "CA"})).status_code

        answers = await asyncio.gather(*(one() for _ in range(REQUESTS)))
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{api.http_port}/metrics")).text
        assert api.process is not None
        workers = _spawned_by(api.process.pid)
    finally:
        services.stop()
    assert answers == [200] * REQUESTS
    assert len(workers) >= 2
    served = next(line for line in metrics.splitlines()
                  if line.startswith("loyalty_api_requests_total{")
                  and 'route="/v1/offers"' in line)  # fmt: skip
    assert float(served.rsplit(" ", 1)[1]) == REQUESTS
