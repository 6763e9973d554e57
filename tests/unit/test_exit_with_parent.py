"""A process `Services` starts never outlives whoever started it (loyalty/services.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from loyalty.services import EXIT_WITH_PARENT

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from loyalty.services import EXIT_WITH_PARENT, exit_with_parent
    exit_with_parent(poll_seconds=0.05)
    print(os.environ.get(EXIT_WITH_PARENT, "taken"), flush=True)
    time.sleep(120)
    """
)

# A parent that starts the child the way `Services` does (own session, its pid in the
# environment), reports the child's pid and first line, and, unless told to stay, dies.
PARENT = textwrap.dedent(
    """
    import os, subprocess, sys, time
    env = {**os.environ, %r: str(os.getpid())}
    child = subprocess.Popen([sys.executable, "-c", %r], env=env, stdout=subprocess.PIPE,
                             start_new_session=True, text=True)
    print(child.pid, child.stdout.readline().strip(), flush=True)
    if sys.argv[1] == "stay":
        time.sleep(120)
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose: it has exited and waits for its reaper (init).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def start_parent(mode: str) -> tuple[subprocess.Popen[str], int, str]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT % (EXIT_WITH_PARENT, CHILD), mode],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert parent.stdout is not None
    pid, first_line = parent.stdout.readline().split()
    return parent, int(pid), first_line


def wait_until_gone(pid: int, bound_seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + bound_seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_a_child_stops_once_its_parent_is_gone_and_does_not_pass_the_watch_on():
    parent, child, inherited = start_parent("die")
    parent.wait(timeout=30)

    assert wait_until_gone(child), "the orphaned child kept running"
    # Taken out of its environment: its own children (uvicorn's workers) watch nobody.
    assert inherited == "taken"


def test_a_child_keeps_running_while_its_parent_lives():
    parent, child, _ = start_parent("stay")
    try:
        time.sleep(0.5)  # ten polls of the child's watch
        assert alive(child)
    finally:
        parent.kill()
        parent.wait(timeout=30)
    assert wait_until_gone(child)
