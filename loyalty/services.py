"""The engine's long-running processes (worker, projector, API) as child processes, for the
demo and the end-to-end tests: started with the right environment, logs to files, stopped
cleanly (SIGTERM, then SIGKILL after a grace period), and never outliving whoever started
them (`EXIT_WITH_PARENT`: a test run killed mid-way leaves no worker behind eating the CPU)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from processors.base.settings import Settings

EXIT_WITH_PARENT = "LOYALTY_EXIT_WITH_PARENT"
"""Set by `Services` to its own pid: the child stops (SIGTERM to itself) once that process is
gone. Each child runs in its own session, so nothing else would stop it."""


def exit_with_parent(poll_seconds: float = 1.0) -> None:
    """In a process `Services` started: watch the parent named by `EXIT_WITH_PARENT` and send
    this process SIGTERM (its ordinary, graceful stop) once the parent is gone. The variable is
    taken out of the environment so that this process's own children (uvicorn's workers) do not
    watch a parent that is not theirs. Does nothing when the variable is not set."""
    parent = os.environ.pop(EXIT_WITH_PARENT, None)
    if parent is None or not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(poll_seconds)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def free_port(wanted: int = 0) -> int:
    """A TCP port free on 127.0.0.1 now: `wanted` if it is (0: any)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", wanted))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Service:
    """One `loyalty <command>` child process."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    http_port: int | None = None  # a worker's /metrics and /healthz

    def url(self, path: str) -> str:
        assert self.http_port is not None
        return f"http://127.0.0.1:{self.http_port}{path}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no flush, no commit."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of its log, for failure messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Services:
    """Start and stop a set of `loyalty` commands as one unit."""

    settings: Settings
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    running: list[Service] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP": self.settings.bootstrap_servers,
            "DATABASE_URL": self.settings.dsn,
            "LOYALTY_PARTITIONS": str(self.settings.partitions),
            "LOYALTY_LOG_FORMAT": "json",
            "LOYALTY_TOPIC_PREFIX": self.settings.topic_prefix,
            EXIT_WITH_PARENT: str(os.getpid()),
            **self.extra_env,
        }

    def start(self, name: str, *args: str) -> Service:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        service = Service(
            name, [sys.executable, "-m", "loyalty.cli", *args], self.log_dir / f"{name}.log"
        )
        env = self.env()
        # Several workers and projectors may share this host: a port each.
        variable = {"worker": "LOYALTY_WORKER_HTTP_PORT", "project": "LOYALTY_PROJECTOR_HTTP_PORT",
                    "api": "LOYALTY_API_METRICS_PORT"}  # fmt: skip
        if args and args[0] in variable:
            port = self.extra_env.get(variable[args[0]]) or str(free_port())
            env[variable[args[0]]] = port
            service.http_port = int(port)
        with service.log_path.open("ab") as log:
            service.process = subprocess.Popen(
                service.argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.running.append(service)
        return service

    def stop(self, grace_seconds: float = 20.0) -> None:
        for service in reversed(self.running):
            if service.alive():
                assert service.process is not None
                os.killpg(service.process.pid, signal.SIGTERM)
        for service in reversed(self.running):
            if service.process is None:
                continue
            try:
                service.process.wait(timeout=grace_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait(timeout=10)
        self.running.clear()
