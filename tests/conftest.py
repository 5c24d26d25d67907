"""Shared test helpers: `tests/` on sys.path (for `aptrepo`), its fixture for every test, and
the end of the resident agents a test run started."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from aptrepo import plumbtest_packages  # noqa: E402,F401  (a fixture: purges plumbtest-* packages)


@pytest.fixture(scope="session", autouse=True)
def _stop_resident_agents() -> Iterator[None]:
    """Resident agents the tests started (SSH nodes get one by default) outlive their
    sessions by design; end the ones this test run started, once it is over."""
    before = set(resident_agents())
    yield
    for pid in set(resident_agents()) - before:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


def resident_agents() -> list[int]:
    """Pids of running resident agents (`... serve --listen ...`)."""
    return pids_where(lambda argv: b"serve" in argv and b"--listen" in argv)


def pids_where(test: Callable[[list[bytes]], bool]) -> list[int]:
    """Pids of the processes whose argv (as bytes) passes `test`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if test(argv):
            pids.append(int(entry))
    return pids
