"""The local PostgreSQL server: Debian's binaries, our own data directory and port.

Owns one cluster created by `initdb` for this stack. It never starts, stops or changes a
cluster it did not create (Debian's own `main` cluster on 5432 is left alone).

PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres` user
and its data directory lives where that user can reach it (a clone in a private temporary
folder would not be), under /var/lib/postgresql/loyalty-stack/<id of this stack>.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from loyalty.stack import processes
from loyalty.stack.errors import StackError
from processors.base.logs import get_logger
from processors.base.settings import Settings

log = get_logger(__name__)

MIN_VERSION = 15


@dataclass(frozen=True)
class PostgresPaths:
    """Where the local server keeps its files."""

    home: Path  # the folder the server's user owns: data, socket and log live here
    state_file: Path  # in the stack dir: remembers `home`, so `down` finds it

    @classmethod
    def of(cls, settings: Settings) -> PostgresPaths:
        state_file = settings.stack_dir / "postgres.json"
        if os.geteuid() == 0:
            stack_id = hashlib.sha256(str(settings.stack_dir.resolve()).encode()).hexdigest()[:12]
            home = Path("/var/lib/postgresql/loyalty-stack") / stack_id
        else:
            home = settings.stack_dir / "postgres"
        return cls(home=home, state_file=state_file)

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def socket_dir(self) -> Path:
        return self.home


def bin_dir() -> Path:
    """The newest installed PostgreSQL (>= 15) server binaries, installing Debian's if missing."""
    found = _find_bin_dir()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        log.info("postgres.installing", package="postgresql")
        subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=False)
        found = _find_bin_dir()
    if found is None:
        raise StackError(
            f"PostgreSQL {MIN_VERSION}+ server binaries not found; "
            "install Debian's `postgresql` package (scripts/bootstrap.sh does it)"
        )
    return found


def _find_bin_dir() -> Path | None:
    candidates = []
    for path in Path("/usr/lib/postgresql").glob("*/bin"):
        try:
            version = int(path.parent.name)
        except ValueError:
            continue
        if version >= MIN_VERSION and (path / "postgres").exists():
            candidates.append((version, path))
    return max(candidates)[1] if candidates else None


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(_as_server_user(argv), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"{what} failed:\n{result.stdout}{result.stderr}")


def _prepare_home(paths: PostgresPaths) -> None:
    paths.home.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(paths.home, "postgres", "postgres")


def is_running(settings: Settings) -> bool:
    """True if the server of this stack is up (its postmaster answers on our port)."""
    paths = _recorded_paths(settings)
    if not (paths.data / "postmaster.pid").exists():
        return False
    result = subprocess.run(
        [str(bin_dir() / "pg_isready"), "-h", str(paths.socket_dir),
         "-p", str(settings.postgres_port)],
        capture_output=True, check=False,
    )  # fmt: skip
    return result.returncode == 0


def start(settings: Settings) -> bool:
    """Create (once) and start this stack's cluster unless it runs; True if started now."""
    paths = PostgresPaths.of(settings)
    settings.stack_dir.mkdir(parents=True, exist_ok=True)
    paths.state_file.write_text(
        json.dumps({"home": str(paths.home), "port": settings.postgres_port})
    )
    if is_running(settings):
        return False
    binaries = bin_dir()
    _prepare_home(paths)
    if not (paths.data / "PG_VERSION").exists():
        _run(
            [str(binaries / "initdb"), "-D", str(paths.data), "-U", "postgres", "-E", "UTF8",
             "--locale=C.UTF-8", "--auth-local=trust", "--auth-host=scram-sha-256"],
            "initdb",
        )  # fmt: skip
    if processes.port_is_open(settings.postgres_host, settings.postgres_port):
        raise StackError(
            f"port {settings.postgres_port} is taken by a server this stack did not start; "
            "set LOYALTY_POSTGRES_PORT to a free port"
        )
    options = " ".join(
        [
            f"-p {settings.postgres_port}",
            f"-k {paths.socket_dir}",
            f"-c listen_addresses={settings.postgres_host}",
            "-c max_connections=200",
            "-c shared_buffers=256MB",
        ]
    )
    _run(
        [str(binaries / "pg_ctl"), "-D", str(paths.data), "-l", str(paths.log_file),
         "-o", options, "-w", "-t", "60", "start"],
        "pg_ctl start",
    )  # fmt: skip
    _ensure_role_and_database(settings, paths)
    return True


def _ensure_role_and_database(settings: Settings, paths: PostgresPaths) -> None:
    """Create the application role (allowed to create test databases) and its database."""
    admin = f"host={paths.socket_dir} port={settings.postgres_port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        role = settings.postgres_user
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(settings.postgres_password)
                )
            )
        database = settings.postgres_db
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists is None:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(role)
                )
            )


def stop(settings: Settings) -> bool:
    """Stop this stack's server (fast shutdown); True if it was running."""
    paths = _recorded_paths(settings)
    if not (paths.data / "postmaster.pid").exists():
        return False
    _run(
        [str(bin_dir() / "pg_ctl"), "-D", str(paths.data), "-m", "fast", "-w", "stop"],
        "pg_ctl stop",
    )
    return True


def purge(settings: Settings) -> None:
    """Delete this stack's cluster (data, log); the server must be stopped."""
    shutil.rmtree(_recorded_paths(settings).home, ignore_errors=True)


def _recorded_paths(settings: Settings) -> PostgresPaths:
    paths = PostgresPaths.of(settings)
    try:
        home = Path(json.loads(paths.state_file.read_text())["home"])
    except (OSError, ValueError, KeyError):
        return paths
    return PostgresPaths(home=home, state_file=paths.state_file)


def log_file(settings: Settings) -> Path:
    """The server's log file."""
    return _recorded_paths(settings).log_file


def check_select_one(dsn: str, *, timeout: float = 60.0) -> float:
    """Prove the database answers `SELECT 1` over TCP with the app's credentials; seconds taken."""
    started = time.monotonic()
    deadline = started + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                if conn.execute("SELECT 1").fetchone() == (1,):
                    return time.monotonic() - started
        except psycopg.Error as error:
            last_error = error
        time.sleep(0.3)
    raise StackError(f"Postgres is not healthy after {timeout:.0f}s: {last_error!r}")
