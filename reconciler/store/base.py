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
    references: tuple[str, ...] = ()  # Parameter Store versions it was rendered with ("/a/b:3")


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


@dataclass(frozen=True)
class ParameterVersion:
    """One version of a Parameter Store parameter. A SecureString's value is only ever kept
    sealed (for the controller's key); `digest` is the sha256 of the plaintext, which is what
    redaction markers show (first 8 hex digits) so a change stays visible."""

    name: str  # normalised: always starts with "/"
    version: int
    type: str  # String | StringList | SecureString
    value: str | None  # plain text (StringList: comma-joined); None for SecureString
    sealed_value: str | None  # SecureString only: plumb-sealed:v1:...
    digest: str  # sha256 hex of the plaintext value
    description: str = ""
    tier: str = "Standard"
    allowed_pattern: str = ""
    data_type: str = "text"
    policies: tuple = ()  # SSM policy objects as plain dicts: {"Type", "Version", "Attributes"}
    labels: tuple[str, ...] = ()  # the labels currently attached to this version, sorted
    modified_at: str = ""
    modified_by: str = ""  # e.g. "reconcile git:1a2b3c4 manifests/parameters/web.yaml:5" or "cli root@host"
    source: str = "cli"  # "git" (written by reconcile from a manifest) | "cli"


@dataclass(frozen=True)
class ParameterRecord:
    """A parameter as it is now: its latest version, plus what reconcile last wrote from git."""

    latest: ParameterVersion
    created_at: str
    applied_hash: str = ""  # parameters.state_hash() of what reconcile last wrote from git; "" if never
    applied_at: str = ""
    applied_revision: str = ""

    @property
    def name(self) -> str:
        return self.latest.name


@dataclass(frozen=True)
class ParameterWrite:
    """One atomic change to one parameter, computed by `reconciler.parameters` (SSM's rules)
    and carried out by a store as a single transaction.

    The store checks `expected_version` first (0: the parameter must not exist) and raises
    ParameterConflict if it does not hold, so two writers never interleave (SSM's TooManyUpdates).
    """

    name: str
    expected_version: int
    new_version: ParameterVersion | None = None  # a new value (version = expected_version + 1)
    metadata: ParameterVersion | None = None  # metadata-only change: description, tier, ... of the latest
    evict: tuple[int, ...] = ()  # versions to drop from history (oldest first)
    labels: tuple[tuple[str, int], ...] = ()  # (label, version): attach, moving it off any other version;
    #                                            (label, 0): remove the label (UnlabelParameterVersion)
    applied_hash: str | None = None  # set the record's applied_hash/at/revision (a write from git)
    applied_at: str = ""
    applied_revision: str = ""
    delete: bool = False  # remove the parameter and its whole history


class ParameterConflict(StoreError):
    """The parameter changed between reading and writing it (SSM: TooManyUpdates)."""


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

    @abc.abstractmethod
    def first_seen_anywhere(self, kind: str, keys: Iterable[str]) -> dict[str, str]:
        """key → when plumb first observed it on any node (keys never seen are left out)."""

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
    def compliance(self, compliance_type: str | None = None, node: str | None = None) -> list[ComplianceItem]: ...

    @abc.abstractmethod
    def acquire_lease(self, node: str, owner: str, ttl_seconds: int) -> str | None:
        """Take the node for `owner`; returns None on success, else who holds it."""

    @abc.abstractmethod
    def release_lease(self, node: str, owner: str) -> None: ...

    # --- registered nodes ----------------------------------------------------------------
    @abc.abstractmethod
    def register_node(self, name: str, manifest: str, by: str) -> None:
        """Keep a Node manifest (YAML text) for `name`, replacing an earlier registration."""

    @abc.abstractmethod
    def deregister_node(self, name: str) -> bool:
        """Forget a registered node; False when there was none."""

    @abc.abstractmethod
    def registered_nodes(self) -> list[tuple[str, str, str, str]]:
        """(name, manifest text, registered_at, registered_by) of every registered node, by name."""

    # --- the watch loop's schedule state -------------------------------------------------
    @abc.abstractmethod
    def watch_state(self, scope: str) -> tuple[str, dict[str, tuple[str, str | None]]] | None:
        """(manifests digest, {association: (first_seen, last_run or None)}) the watch loop
        with this scope (its targets) saved last, as ISO 8601 UTC times; None if none."""

    @abc.abstractmethod
    def save_watch_state(self, scope: str, digest: str,
                         histories: dict[str, tuple[str, str | None]]) -> None:
        """Replace the schedule state of the watch loop with this scope."""

    # --- Parameter Store -----------------------------------------------------------------
    @abc.abstractmethod
    def parameter(self, name: str) -> ParameterRecord | None:
        """The parameter (name normalised with a leading "/"), or None."""

    @abc.abstractmethod
    def parameters(self, prefix: str = "/") -> list[ParameterRecord]:
        """Every parameter whose name starts with `prefix`, by name."""

    @abc.abstractmethod
    def parameter_history(self, name: str) -> list[ParameterVersion]:
        """Every version kept (at most 100 unless labelled ones block eviction), oldest first."""

    @abc.abstractmethod
    def write_parameter(self, write: ParameterWrite) -> None:
        """Carry out one ParameterWrite in one transaction, or raise ParameterConflict."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
