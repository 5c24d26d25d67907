"""Fixtures of the Parameter Store tests: a real SQLite file, a real key pair, the service."""

from __future__ import annotations

import pytest

from reconciler import secrets
from reconciler.parameters import ParameterService, PutRequest
from reconciler.store import open_store


@pytest.fixture
def key_dir(tmp_path):
    directory = tmp_path / "keys"
    secrets.keygen(directory)
    return directory


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path}/state.db"


@pytest.fixture
def store(db_url):
    with open_store(db_url) as s:
        yield s


@pytest.fixture
def service(store, key_dir):
    return ParameterService(store, key_dir)


@pytest.fixture
def put(service):
    """put("/a", "v", type="String", overwrite=True, ...) → the resulting ParameterVersion."""

    def _put(name, value=None, type="String", by="test", source="cli", now=None, revision="", **fields):
        return service.put(PutRequest(name, type, value=value, **fields), by=by, source=source, now=now,
                           revision=revision)

    return _put

