"""The `Document` kind: an SSM Command document (schemaVersion 2.2).

`spec` *is* the SSM document content, so a raw SSM JSON/YAML document dropped into the
manifests tree is accepted unchanged (the loader wraps it and names it after its file).
This module owns the document-level rules the schema cannot express: parameter names,
unique step names, declared `{{ parameters }}`, and where `{{ssm-secure:...}}` may appear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from ..diagnostics import Diagnostic, escape_pointer_token
from ..references import find_document_parameters, find_parameter_references, walk_strings
from .base import Manifest, Meta, Origin, freeze

KIND = "Document"
SCHEMA = "document"

PARAMETER_NAME = re.compile(r"^[a-zA-Z0-9]+$")  # the SSM agent drops any other name
RESERVED_PREFIXES = ("aws", "amazon", "amzn", "AWSEC2", "AWSConfigRemediation", "AWSSupport")
SUPPORTED_ACTIONS = frozenset({
    "aws:runShellScript", "plumb:package", "plumb:file", "plumb:directory",
    "plumb:service", "plumb:user", "plumb:sysctl",
})
OTHER_PLATFORM_ACTIONS = frozenset({"aws:runPowerShellScript", "aws:applications", "aws:psModule",
                                    "aws:updateAgent"})


@dataclass(frozen=True)
class DocumentParameter:
    name: str
    type: str  # String | StringList
    default: Any = None  # None: required
    description: str = ""
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str = ""

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class Document:
    meta: Meta
    origin: Origin
    content: Mapping[str, Any]  # the SSM document, frozen
    parameters: Mapping[str, DocumentParameter]

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def steps(self) -> tuple:
        return self.content["mainSteps"]


def build(manifest: Manifest) -> Document:
    spec = manifest.spec
    params = {
        name: DocumentParameter(
            name=name,
            type=p["type"],
            default=freeze(p.get("default")),
            description=p.get("description", ""),
            allowed_values=tuple(p.get("allowedValues", ())),
            allowed_pattern=p.get("allowedPattern", ""),
        )
        for name, p in (spec.get("parameters") or {}).items()
    }
    return Document(manifest.meta, manifest.origin, freeze(dict(spec)), freeze(params))


def check(doc: Document) -> Iterator[Diagnostic]:
    if doc.origin.builtin:
        return
    origin = doc.origin
    if doc.name.startswith(RESERVED_PREFIXES):
        yield origin.diagnostic("/metadata/name", f"document names cannot start with {', '.join(RESERVED_PREFIXES)}",
                                hint="these prefixes are reserved for built-in documents")
    for name, param in doc.parameters.items():
        pointer = f"/spec/parameters/{escape_pointer_token(name)}"
        if not PARAMETER_NAME.match(name):
            yield origin.diagnostic(pointer, f"document parameter name '{name}' must be alphanumeric",
                                    key=True, expected="letters and digits only (^[a-zA-Z0-9]+$)")
        yield from _check_parameter(origin, pointer, param)
    yield from _check_steps(doc)


def _check_parameter(origin: Origin, pointer: str, param: DocumentParameter) -> Iterator[Diagnostic]:
    if param.allowed_pattern:
        try:
            re.compile(param.allowed_pattern)
        except re.error as exc:
            yield origin.diagnostic(f"{pointer}/allowedPattern", f"invalid regular expression: {exc}")
            return
    if isinstance(param.default, str) and param.type == "StringList" and not param.default.startswith("{{"):
        yield origin.diagnostic(f"{pointer}/default", "the default of a StringList parameter must be a list")
    defaults = [param.default] if isinstance(param.default, str) else list(param.default or ())
    for value in defaults:
        if find_parameter_references(value):
            for ref in find_parameter_references(value):
                if ref.secure:
                    yield origin.diagnostic(f"{pointer}/default",
                                            "{{ssm-secure:...}} is not allowed in a document's parameters",
                                            hint="SSM only resolves SecureString references inside step inputs")
            continue
        if param.allowed_values and value not in param.allowed_values:
            yield origin.diagnostic(f"{pointer}/default", f"the default '{value}' is not in allowedValues")
        elif param.allowed_pattern and not re.fullmatch(param.allowed_pattern, value):
            yield origin.diagnostic(f"{pointer}/default",
                                    f"the default '{value}' does not match allowedPattern")


def _check_steps(doc: Document) -> Iterator[Diagnostic]:
    origin = doc.origin
    seen: dict[str, int] = {}
    steps = doc.steps
    for index, step in enumerate(steps):
        pointer = f"/spec/mainSteps/{index}"
        name = step["name"]
        if name in seen:
            yield origin.diagnostic(f"{pointer}/name", f"step name '{name}' is already used by step {seen[name]}",
                                    expected="unique step names")
        seen.setdefault(name, index)
        action = step["action"]
        if action not in SUPPORTED_ACTIONS and action not in OTHER_PLATFORM_ACTIONS:
            yield origin.diagnostic(f"{pointer}/action", f"plumb's agent does not run '{action}'",
                                    expected="one of: " + ", ".join(sorted(SUPPORTED_ACTIONS)))
        if step.get("finallyStep") and index != len(steps) - 1:
            yield origin.diagnostic(f"{pointer}/finallyStep", "only the last step can be a finallyStep")
        for sub, text in walk_strings(step.get("inputs", {}), f"{pointer}/inputs"):
            for used in find_document_parameters(text):
                if used not in doc.parameters:
                    yield origin.diagnostic(sub, f"'{{{{ {used} }}}}' names no parameter of this document",
                                            hint=_declared_hint(doc))
        condition = step.get("precondition", {}).get("StringEquals")
        if condition and condition[0] != "platformType" and not find_document_parameters(condition[0]):
            yield origin.diagnostic(f"{pointer}/precondition/StringEquals/0",
                                    "the left operand must be platformType or a {{ parameter }}")


def _declared_hint(doc: Document) -> str:
    names = ", ".join(doc.parameters) or "none"
    return f"declared parameters: {names}"
