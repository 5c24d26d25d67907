"""What every kind shares: where an object came from (`Origin`), its metadata, and `freeze()`.

Kind modules build frozen dataclasses from *validated* manifest values; the `Origin` they
carry lets any later stage (plan, SARIF, drift history) point back at the manifest line of
any field by JSON pointer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from ..diagnostics import Diagnostic, Severity
from ..yamlsource import SourceMap

EMPTY: Mapping = MappingProxyType({})


def freeze(value: Any) -> Any:
    """Deep read-only copy: dicts become MappingProxyType, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Plain JSON-able copy of a frozen value (for documents sent to agents, plan files)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Origin:
    """The manifest an object came from, and the positions of its fields."""

    file: str
    source: SourceMap
    builtin: bool = False

    @property
    def line(self) -> int:
        return self.source.value_at("").line

    def at(self, pointer: str) -> tuple[int, int]:
        """(line, column) of the field at `pointer` (or its nearest ancestor)."""
        pos = self.source.value_at(pointer)
        return pos.line, pos.column

    def key_at(self, pointer: str) -> tuple[int, int]:
        pos = self.source.key_at(pointer)
        return pos.line, pos.column

    def diagnostic(self, pointer: str, message: str, *, key: bool = False,
                   warning: bool = False, **extra) -> Diagnostic:
        """A diagnostic located at the field (or, with key=True, at its key)."""
        line, column = self.key_at(pointer) if key else self.at(pointer)
        severity = Severity.WARNING if warning else Severity.ERROR
        return Diagnostic(message, self.file, line, column, pointer, severity=severity, **extra)

    def ref(self, pointer: str = "") -> str:
        """`file:line` of a field, for messages that mention another object."""
        return f"{self.file}:{self.at(pointer)[0]}"


@dataclass(frozen=True)
class Meta:
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: EMPTY)

    @classmethod
    def from_value(cls, metadata: Mapping) -> "Meta":
        return cls(
            name=metadata["name"],
            labels=freeze(metadata.get("labels", {})),
            annotations=freeze(metadata.get("annotations", {})),
        )


@dataclass(frozen=True)
class Manifest:
    """One validated manifest document, before it is turned into its kind's dataclass."""

    kind: str
    value: Mapping[str, Any]
    origin: Origin

    @property
    def spec(self) -> Mapping[str, Any]:
        return self.value.get("spec") or {}

    @property
    def meta(self) -> Meta:
        return Meta.from_value(self.value["metadata"])
