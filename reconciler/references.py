"""Parameter Store references inside text: `{{ssm:/path}}`, `{{ssm:/path:3}}`,
`{{ssm:/path:label}}` and `{{ssm-secure:/path}}`, and document parameter references
`{{ name }}`. Pure functions: finding, not resolving (resolution needs the store).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

# The SSM agent's own pattern (parameterstore.go), extended with ssm-secure.
_SSM_REF = re.compile(r"\{\{ *(?P<scheme>ssm|ssm-secure):(?P<body>[/\w.:-]+) *\}\}")
_DOC_PARAM = re.compile(r"\{\{\s*(?P<name>[A-Za-z0-9_]+)\s*\}\}")


@dataclass(frozen=True)
class ParameterReference:
    name: str  # parameter name as written (leading / kept)
    selector: str  # "" (latest), a version number, or a label
    secure: bool
    text: str  # the whole `{{...}}` token

    @property
    def version(self) -> int | None:
        return int(self.selector) if self.selector.isdigit() else None

    @property
    def label(self) -> str:
        return "" if not self.selector or self.selector.isdigit() else self.selector


def _split_selector(body: str) -> tuple[str, str]:
    if ":" in body:
        name, selector = body.rsplit(":", 1)
        return name, selector
    return body, ""


def find_parameter_references(text: str) -> list[ParameterReference]:
    found = []
    for match in _SSM_REF.finditer(text):
        name, selector = _split_selector(match["body"])
        found.append(ParameterReference(name, selector, match["scheme"] == "ssm-secure", match[0]))
    return found


def find_document_parameters(text: str) -> list[str]:
    """Names used as `{{ name }}` (not `{{ssm:...}}`) in a text."""
    return [m["name"] for m in _DOC_PARAM.finditer(text)]


def walk_strings(value: Any, pointer: str = "") -> Iterator[tuple[str, str]]:
    """Every string inside a nested value, with its JSON pointer (keys included as text)."""
    from .diagnostics import escape_pointer_token

    if isinstance(value, str):
        yield pointer, value
    elif hasattr(value, "items"):
        for key, item in value.items():
            yield from walk_strings(item, f"{pointer}/{escape_pointer_token(key)}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from walk_strings(item, f"{pointer}/{index}")
