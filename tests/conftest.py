"""Shared test helpers: `tests/` on sys.path (for `aptrepo`), and its fixture for every test."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from aptrepo import plumbtest_packages  # noqa: E402,F401  (a fixture: purges plumbtest-* packages)
