"""The Plan: what `plumb plan` found for every resource of every node, as plain frozen data.

Produced by `reconciler.plan` (pure), rendered by `reconciler.render.*` (pure), saved as
the plan artifact (`plumb plan --out`) and applied by the engine. Nothing here computes
a diff or does I/O; this module only defines the vocabulary and the summary arithmetic.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

FORMAT_VERSION = "1.0"


class Action(str, enum.Enum):
    """What applying the plan does to a resource (Terraform's closed set)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "delete": "-", "no-op": " "}[self.value]


class Classification(str, enum.Enum):
    """Desired (git) vs last-applied (store) vs observed (inventory)."""

    IN_SYNC = "in_sync"  # observed equals desired
    PENDING_CHANGE = "pending_change"  # desired moved (or new); the node still matches last-applied
    DRIFT = "drift"  # the node moved away from last-applied; desired did not change
    DRIFT_AND_CHANGE = "drift_and_change"  # both
    UNKNOWN = "unknown"  # could not observe: never guessed
    BLOCKED = "blocked"  # a change exists but may not be applied now (maintenance window)

    @property
    def drifted(self) -> bool:
        return self in (Classification.DRIFT, Classification.DRIFT_AND_CHANGE)

    @property
    def changing(self) -> bool:
        return self in (Classification.PENDING_CHANGE, Classification.DRIFT, Classification.DRIFT_AND_CHANGE)


class Digest(str):
    """The sha256 (hex) of a sensitive value, standing in for the value in a FieldChange.

    Renderers show it as `(sensitive, sha256:xxxxxxxx)` — the same marker the value itself
    would give — so a plan can say that a secret changed without ever holding the secret."""


PARAMETER_STORE = "(parameter store)"  # the NodePlan holding Parameter manifests' plans


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any
    sensitive: bool = False  # values must be shown redacted


@dataclass(frozen=True)
class Source:
    """Where a resource is declared: the manifest file, line, column and JSON pointer."""

    file: str
    line: int
    column: int
    pointer: str


@dataclass(frozen=True)
class ResourcePlan:
    address: str  # "files:/etc/motd"
    type: str  # packages | users | directories | files | sysctl | services
    id: str
    association: str
    source: Source
    action: Action
    classification: Classification
    reason: str  # why it changes, or why nothing happens ("in sync: sha256 matches")
    changes: tuple[FieldChange, ...] = ()
    content_diff: str = ""  # unified diff of text content (empty when sensitive or binary)
    sensitive: bool = False
    severity: str = "UNSPECIFIED"  # the association's complianceSeverity
    blocked_until: str = ""  # when blocked: when the next window opens (ISO-8601 UTC)
    window: str = ""  # the maintenance window that governs it
    triggers: tuple[str, ...] = ()  # onChange actions this change will run ("restart:nginx")

    @property
    def will_change(self) -> bool:
        return self.action is not Action.NOOP and self.classification.changing


@dataclass(frozen=True)
class NodePlan:
    node: str
    reachable: bool = True
    error: str = ""  # why the node could not be observed (unreachable, ...)
    inventory_fingerprint: str = ""
    inventory_time: str = ""
    resources: tuple[ResourcePlan, ...] = ()
    document: Mapping[str, Any] | None = None  # the corrective SSM document for this node

    @property
    def changes(self) -> tuple[ResourcePlan, ...]:
        return tuple(r for r in self.resources if r.will_change)


@dataclass(frozen=True)
class Summary:
    add: int = 0
    change: int = 0
    remove: int = 0
    drifted: int = 0
    unknown: int = 0
    blocked: int = 0
    unreachable: int = 0
    in_sync: int = 0

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.remove or self.drifted)

    def line(self) -> str:
        return (f"Plan: {self.add} to add, {self.change} to change, {self.remove} to remove; "
                f"{self.drifted} drifted, {self.unknown} unknown, {self.blocked} blocked, "
                f"{self.unreachable} unreachable")


@dataclass(frozen=True)
class Plan:
    format_version: str
    created_at: str
    manifests: str  # the manifests directory
    git_revision: str  # "" when the manifests are not in git; "+dirty" suffix when modified
    nodes: tuple[NodePlan, ...] = ()
    diagnostics: tuple[str, ...] = field(default=())  # compile problems, already rendered

    def summary(self) -> Summary:
        counts = dict.fromkeys(("add", "change", "remove", "drifted", "unknown", "blocked", "unreachable",
                                "in_sync"), 0)
        for node in self.nodes:
            if not node.reachable:
                counts["unreachable"] += 1
            for r in node.resources:
                if r.classification is Classification.UNKNOWN:
                    counts["unknown"] += 1
                elif r.classification is Classification.BLOCKED:
                    counts["blocked"] += 1
                elif r.classification is Classification.IN_SYNC:
                    counts["in_sync"] += 1
                if r.classification.drifted:
                    counts["drifted"] += 1
                if r.will_change:
                    key = {"create": "add", "update": "change", "delete": "remove"}[r.action.value]
                    counts[key] += 1
        return Summary(**counts)

    def exit_code(self, allow_unreachable: bool = False) -> int:
        """Terraform's --detailed-exitcode, aggregated over nodes: error 1, changes 2, else 0."""
        if self.diagnostics or (not allow_unreachable and any(not n.reachable for n in self.nodes)):
            return 1
        return 2 if self.summary().has_changes else 0
