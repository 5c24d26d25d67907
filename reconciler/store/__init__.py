"""The state store: what plumb has observed, done and decided, kept across runs.

`open_store(url)` returns a `Store` for `sqlite:///path` (the embedded default) and, in a
later release, `postgresql://...`. Callers (CLI, engine) talk to the `Store` interface only.
"""

from __future__ import annotations

from .base import (AppliedRecord, CommandRecord, ComplianceItem, InventorySnapshot, InvocationRecord, ParameterConflict,
                   ParameterRecord, ParameterVersion, ParameterWrite, ResourceEvent, StepRecord, Store, StoreError)


def open_store(url: str) -> Store:
    if url.startswith("sqlite://"):
        from .sqlite import SQLiteStore

        return SQLiteStore.open(url)
    if url.startswith(("postgresql://", "postgres://")):
        raise StoreError("the PostgreSQL store is not available yet; use sqlite:///path/state.db")
    raise StoreError(f"unsupported state URL '{url}': expected sqlite:///path/to/state.db")


__all__ = ["open_store", "Store", "StoreError", "CommandRecord", "InvocationRecord", "StepRecord",
           "InventorySnapshot", "AppliedRecord", "ResourceEvent", "ComplianceItem", "ParameterVersion",
           "ParameterRecord", "ParameterWrite", "ParameterConflict"]
