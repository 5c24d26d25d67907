"""Fixtures for the document executor tests (helpers live in executor_support.py)."""

from __future__ import annotations

import pytest

from executor_support import execute


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (real timeouts)")


@pytest.fixture
def run_request(tmp_path):
    """run_request(document, parameters, **request) -> Run, with a per-test workDir."""
    def run(document, parameters=None, **request):
        request = dict(request, document=document, parameters=parameters or {})
        request.setdefault("workDir", str(tmp_path / "work"))
        return execute(request)
    return run
