"""Diagnostics: the one shape in which every problem with the user's input is reported.

A Diagnostic points into the user's file (file:line:column plus the JSON pointer of the
field), says what is wrong, what was expected and, where we can guess, what they meant.
The loader, the schema validator and the semantic checks all produce them; the CLI renders
them (text or JSON). Nothing here does I/O.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    """One located problem. `line` and `column` are 1-based; 0 means "unknown"."""

    message: str
    file: str = ""
    line: int = 0
    column: int = 0
    pointer: str = ""
    expected: str = ""
    hint: str = ""
    code: str = "invalid"
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def location(self) -> str:
        """`file:line:column`, leaving out what is unknown."""
        parts = [self.file or "<input>"]
        if self.line:
            parts.append(str(self.line))
            if self.column:
                parts.append(str(self.column))
        return ":".join(parts)

    def render(self) -> str:
        """One line for a terminal: `web.yaml:14:7: error: /spec/x: message (expected ...); hint`."""
        text = f"{self.location()}: {self.severity.value}: "
        if self.pointer:
            text += f"{self.pointer}: "
        text += self.message
        if self.expected:
            text += f" (expected {self.expected})"
        if self.hint:
            text += f"; {self.hint}"
        return text

    def to_dict(self) -> dict:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    def sort_key(self) -> tuple:
        return (self.file, self.line, self.column, self.pointer, self.message)


def sorted_diagnostics(diagnostics) -> list[Diagnostic]:
    """Stable, file-ordered, de-duplicated list (the same problem found twice is shown once)."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


def escape_pointer_token(token) -> str:
    """RFC 6901 escaping of one reference token."""
    return str(token).replace("~", "~0").replace("/", "~1")


def pointer_of(path) -> str:
    """JSON pointer for a sequence of keys/indexes; the root is ``""``."""
    return "".join("/" + escape_pointer_token(p) for p in path)


def parent_pointer(pointer: str) -> str:
    return pointer.rsplit("/", 1)[0] if pointer else ""


class ManifestError(Exception):
    """Raised at an edge to stop a command because its input has errors (carries them all)."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        super().__init__(f"{sum(d.is_error for d in diagnostics)} error(s) in the manifests")
