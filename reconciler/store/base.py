"""The Store interface and the records it keeps. Implementations: `sqlite` (now), PostgreSQL (later).

Records are plain frozen dataclasses so the engine and the CLI never see SQL rows.
Timestamps are ISO-8601 UTC strings (`2026-11-22T23:59:00Z`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Iterable


class StoreError(Exception):
    pass


@dataclass(frozen=True)
class InventorySnapshot:
    node: str
    captured_at: str  # the agent's CaptureTime
    stored_at: str
    fingerprint: str  # sha256 over the per-type content hashes
    document: dict  # the agent's inventory document (validated against inventory.schema.json)
    snapshot_id: int = 0


@dataclass(frozen=True)
class StepRecord:
    name: str
    action: str
    status: str
    response_code: int | None = None
    stdout: str = ""  # capped at 24,000 characters with SSM's marker
    stderr: str = ""  # capped at 8,000 characters
    full_stdout: str | None = None  # only when capped
    full_stderr: str | None = None
    changed: bool | None = None
    details: dict = field(default_factory=dict)
    started_at: str = ""
    finished_at: str = ""


@dataclass(frozen=True)
class InvocationRecord:
    command_id: str
    node: str
    status: str  # InvocationStatus value
    status_details: str
    response_code: int | None = None
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    steps: tuple[StepRecord, ...] = ()


@dataclass(frozen=True)
class CommandRecord:
    command_id: str
    document_name: str
    document_hash: str
    parameters: dict  # as given (references unresolved; never decrypted secrets)
    targets: list  # as given, e.g. ["tag:role=web"]
    max_concurrency: str
    max_errors: str
    requested_at: str
    status: str = "Pending"
    status_details: str = "Pending"
    finished_at: str = ""
    target_count: int = 0
    invocations: tuple[InvocationRecord, ...] = ()


@dataclass(frozen=True)
class AppliedRecord:
    """Last-applied state of one resource on one node, with its provenance."""

    node: str
    address: str
    desired_hash: str
    observed_hash: str
    applied_at: str
    git_revision: str
    association: str
    source: str  # manifest file:line


@dataclass(frozen=True)
class ResourceEvent:
    """One line of a resource's history: drift_detected | changed | corrected | failed."""

    node: str
    address: str
    event: str
    at: str
    git_revision: str
    association: str
    source: str
    detail: str = ""


@dataclass(frozen=True)
class ComplianceItem:
    node: str
    compliance_type: str  # Association | Patch | Custom:...
    item_id: str
    status: str  # COMPLIANT | NON_COMPLIANT
    severity: str
    execution_id: str
    execution_time: str
    title: str = ""
    details: dict = field(default_factory=dict)


class Store(abc.ABC):
    """Everything the controller persists. Every write is durable when the call returns."""

    # --- inventory ---------------------------------------------------------------------
    @abc.abstractmethod
    def save_inventory(self, node: str, document: dict) -> InventorySnapshot: ...

    @abc.abstractmethod
    def latest_inventory(self, node: str) -> InventorySnapshot | None: ...

    def latest_inventories(self, nodes: Iterable[str]) -> dict[str, InventorySnapshot]:
        """`latest_inventory` of many nodes at once: node → snapshot (nodes with none are left out)."""
        found = {}
        for node in nodes:
            snapshot = self.latest_inventory(node)
            if snapshot is not None:
                found[node] = snapshot
        return found

    @abc.abstractmethod
    def inventory_nodes(self) -> list[tuple[str, str]]:
        """(node, captured_at of its latest snapshot), by node name."""

    @abc.abstractmethod
    def first_seen(self, node: str, kind: str, key: str) -> str | None:
        """When plumb first observed e.g. ("update", "openssl=3.0.13-1") on a node."""

    # --- Run Command -------------------------------------------------------------------
    @abc.abstractmethod
    def create_command(self, command: CommandRecord, nodes: Iterable[str]) -> None:
        """Record a command and one Pending invocation per node, atomically."""

    @abc.abstractmethod
    def update_invocation(self, command_id: str, node: str, *, status: str, status_details: str,
                          response_code: int | None = None, message: str = "", started_at: str = "",
                          finished_at: str = "") -> None: ...

    @abc.abstractmethod
    def add_step(self, command_id: str, node: str, step: StepRecord) -> None: ...

    @abc.abstractmethod
    def finish_command(self, command_id: str, status: str, status_details: str, finished_at: str) -> None: ...

    @abc.abstractmethod
    def get_command(self, command_id: str) -> CommandRecord | None: ...

    @abc.abstractmethod
    def list_commands(self, limit: int = 20) -> list[CommandRecord]: ...

    # --- reconcile ---------------------------------------------------------------------
    @abc.abstractmethod
    def last_applied(self, node: str) -> dict[str, AppliedRecord]: ...

    def last_applied_by_node(self, nodes: Iterable[str]) -> dict[str, dict[str, AppliedRecord]]:
        """`last_applied` of many nodes at once: node → address → record (every node given is a key)."""
        return {node: self.last_applied(node) for node in nodes}

    @abc.abstractmethod
    def record_applied(self, records: Iterable[AppliedRecord], events: Iterable[ResourceEvent] = ()) -> None:
        """Last-applied state and its history events, in one transaction."""

    @abc.abstractmethod
    def record_events(self, events: Iterable[ResourceEvent]) -> None: ...

    @abc.abstractmethod
    def resource_events(self, node: str, limit: int = 1000) -> list[ResourceEvent]: ...

    @abc.abstractmethod
    def put_compliance(self, node: str, compliance_type: str, items: Iterable[ComplianceItem]) -> None:
        """Replace the node's items of that type (SSM's UploadType COMPLETE) and keep history."""

    @abc.abstractmethod
    def compliance(self, compliance_type: str | None = None) -> list[ComplianceItem]: ...

    @abc.abstractmethod
    def acquire_lease(self, node: str, owner: str, ttl_seconds: int) -> str | None:
        """Take the node for `owner`; returns None on success, else who holds it."""

    @abc.abstractmethod
    def release_lease(self, node: str, owner: str) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
