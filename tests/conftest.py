"""Shared test helpers: `tests/` on sys.path (for `aptrepo`), its fixture for every test, and
the end of the resident agents a test run started."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Iterator

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from aptrepo import plumbtest_packages  # noqa: E402,F401  (a fixture: purges plumbtest-* packages)
from procs import resident_agents  # noqa: E402


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
