"""Helpers shared by the Parameter Store tests (imported by name: tests/params is on sys.path)."""

from __future__ import annotations

import pytest

from reconciler.parameters import ParameterError

SECRET = "PLANTED-s3cr3t-Zq8wX1"  # a SecureString plaintext that must never be at rest or shown


def error_of(call, *args, **kwargs) -> ParameterError:
    """The ParameterError `call` raises; its str() is always "Code: message"."""
    with pytest.raises(ParameterError) as info:
        call(*args, **kwargs)
    assert str(info.value) == f"{info.value.code}: {info.value.message}"
    return info.value
