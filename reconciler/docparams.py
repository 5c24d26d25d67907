"""Run-time parameters of a Command document: parse `k=v` from the CLI and validate them.

SSM refuses a SendCommand with bad parameters before anything runs (InvalidParameters);
so do we: this check happens on the controller, before any node is contacted. (The agent
checks again on the node.) Pure functions.
"""

from __future__ import annotations

import json
import re
from typing import Iterable, Mapping

from .kinds.base import thaw
from .kinds.document import Document
from .references import find_parameter_references
from .schema import suggest


class InvalidParameters(ValueError):
    pass


def parse_cli_parameters(items: Iterable[str]) -> dict[str, list[str]]:
    """`-p commands=uptime -p commands='df -h'` or `-p '{"commands": ["uptime"]}'` → name → values."""
    values: dict[str, list[str]] = {}
    for item in items:
        if item.lstrip().startswith("{"):
            try:
                data = json.loads(item)
            except json.JSONDecodeError as exc:
                raise InvalidParameters(f"cannot read parameters JSON: {exc}") from None
            for name, value in data.items():
                values.setdefault(name, []).extend(value if isinstance(value, list) else [value])
            continue
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidParameters(f"cannot read parameter '{item}': expected name=value")
        values.setdefault(name.strip(), []).append(value)
    for name, vals in values.items():
        if not all(isinstance(v, str) for v in vals):
            raise InvalidParameters(f"parameter '{name}': values must be strings")
    return values


def whole_reference(param, text: str):
    """SSM's StringList rule: the reference when a StringList document parameter is given exactly
    one `{{ssm:...}}` (which then passes its items, if it names a StringList), else None."""
    refs = find_parameter_references(text)
    if param is not None and param.type == "StringList" and len(refs) == 1 and text.strip() == refs[0].text:
        return refs[0]
    return None


def expand_references(document: Document, given: Mapping[str, list[str]], resolve) -> tuple[dict, bool, set]:
    """Replace `{{ssm:...}}` / `{{ssm-secure:...}}` in run-time values by what they resolve to.

    `resolve(reference)` returns an object with `.value`, `.type` and `.ref` (compile.Resolved)
    and raises on a missing parameter, version or label (SSM has no fallback). SSM's StringList
    rule: a StringList document parameter given exactly one reference to a StringList parameter
    receives its items. Returns (values, whether a secret was used, the versions used)."""
    expanded: dict[str, list[str]] = {}
    secret, used = False, set()
    for name, values in given.items():
        param = document.parameters.get(name)
        out: list[str] = []
        for value in values:
            refs = find_parameter_references(value)
            if not refs:
                out.append(value)
                continue
            found = [resolve(ref) for ref in refs]
            used.update(f.ref for f in found)
            secret = secret or any(ref.secure or f.type == "SecureString" for ref, f in zip(refs, found))
            if whole_reference(param, value) is not None and found[0].type == "StringList":
                out.extend(found[0].value.split(","))
                continue
            for ref, f in zip(refs, found):
                value = value.replace(ref.text, f.value)
            out.append(value)
        expanded[name] = out
    return expanded, secret, used


def resolve(document: Document, given: Mapping[str, list[str]], sensitive: bool = False) -> dict[str, str | list[str]]:
    """Defaults filled in, types shaped (String → str, StringList → list); InvalidParameters if wrong.
    With `sensitive`, no value is quoted in an error (it may hold a secret)."""
    problems = []
    for name in given:
        if name not in document.parameters:
            close = suggest(name, list(document.parameters))
            problems.append(f"'{name}' is not a parameter of {document.name}"
                            + (f" (did you mean {close}?)" if close else
                               f" (its parameters: {', '.join(document.parameters) or 'none'})"))
    resolved: dict[str, str | list[str]] = {}
    for name, param in document.parameters.items():
        if name in given:
            values = given[name]
        elif param.default is not None:
            values = [param.default] if isinstance(param.default, str) else list(param.default)
        else:
            problems.append(f"'{name}' is required by {document.name}")
            continue
        if param.type == "String":
            if len(values) != 1:
                problems.append(f"'{name}' is a String: give one value, not {len(values)}")
                continue
            resolved[name] = values[0]
        else:
            resolved[name] = list(values)
        problems.extend(_check_values(name, param, values, sensitive))
    if problems:
        raise InvalidParameters("; ".join(problems))
    return resolved


def _check_values(name, param, values, sensitive: bool) -> list[str]:
    problems = []
    for value in values:
        shown = "the value (sensitive)" if sensitive else f"'{value}'"
        if find_parameter_references(value):
            problems.append(f"'{name}': the Parameter Store reference {value} was not resolved")
        elif param.allowed_values and value not in param.allowed_values:
            problems.append(f"'{name}': {shown} is not one of {', '.join(param.allowed_values)}")
        elif param.allowed_pattern and not re.fullmatch(param.allowed_pattern, value):
            problems.append(f"'{name}': {shown} does not match {param.allowed_pattern}")
    return problems


INLINE_PREFIX = "plumbSsm"


def inline_references(content, resolve) -> tuple[dict, dict[str, str], bool, set]:
    """Take `{{ssm:...}}` / `{{ssm-secure:...}}` out of a document's step inputs.

    SSM splices the value into the text; plumb instead turns each reference into a document
    parameter of its own (`{{ plumbSsm0 }}`) declared on the document and given the resolved
    value, so the agent treats it as data like any parameter — never as shell code. Returns
    (content with the references replaced and the parameters declared, their values,
    whether a secret was used, the parameter versions used). Pure, given `resolve`."""
    content = thaw(content)
    names: dict[str, str] = {}
    values: dict[str, str] = {}
    secret, used = False, set()

    def rewrite(value):
        nonlocal secret
        if isinstance(value, str):
            for ref in find_parameter_references(value):
                if ref.text not in names:
                    found = resolve(ref)
                    names[ref.text] = name = f"{INLINE_PREFIX}{len(names)}"
                    values[name] = found.value
                    used.add(found.ref)
                    secret = secret or ref.secure or found.type == "SecureString"
                value = value.replace(ref.text, "{{ " + names[ref.text] + " }}")
            return value
        if isinstance(value, dict):
            return {k: rewrite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        return value

    for step in content.get("mainSteps", ()):
        if "inputs" in step:
            step["inputs"] = rewrite(step["inputs"])
    if names:
        declared = dict(content.get("parameters") or {})
        declared.update({name: {"type": "String", "description": "a Parameter Store reference, resolved by plumb"}
                         for name in values})
        content["parameters"] = declared
    return content, values, secret, used
