"""SSM Command documents (schemaVersion 2.2) on the node: parse, validate parameters, substitute.

Owns the document model the executor runs: `parse_document()` turns the raw dict into
frozen `Document`/`Step`/`ParamDef` values (or raises `DocumentError` with statusDetails
"InvalidDocument"), `resolve_parameters()` checks the caller's values against the
definitions ("InvalidParameters"), `substitute()` applies SSM's `{{ name }}` rules to
non-shell inputs and `precondition_holds()` evaluates `StringEquals`. Called by
`agent.executor`; the shell-aware substitution lives in `agent.shellquote`.

Substitution follows the SSM agent (parameters.go): a string that is exactly `{{ p }}`
becomes the value with its type; `{{ p }}` inside a longer string is replaced by the value
stringified (lists JSON-marshalled) with `$$` collapsed to `$` (the agent uses Go's
regexp template expansion; we keep only the `$$` rule, not its loss of `$name`); one
pass, no re-expansion; recursion through lists and map values. `{{ssm:...}}` references
never match (the controller resolves them) and undeclared `{{ name }}` stay as they are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

SCHEMA_VERSION = "2.2"
PLATFORM_TYPE = "Linux"
INVALID_DOCUMENT = "InvalidDocument"
INVALID_PARAMETERS = "InvalidParameters"

PARAM_NAME = re.compile(r"^[a-zA-Z0-9]+$")
REF = re.compile(r"\{\{\s*([a-zA-Z0-9]+)\s*\}\}")
EXACT_REF = re.compile(r"^\{\{\s*([a-zA-Z0-9]+)\s*\}\}$")

Value = Union[str, List[str]]

_TOP_KEYS = {"schemaVersion", "description", "parameters", "mainSteps"}
_STEP_KEYS = {"action", "name", "inputs", "precondition", "description",
              "onFailure", "onSuccess", "finallyStep"}
_SHARED_INPUTS = ("onFailure", "onSuccess", "finallyStep")
_PARAM_KEYS = {"type", "description", "default", "allowedValues", "allowedPattern",
               "displayType", "minItems", "maxItems", "minChars", "maxChars",
               "interpolationType"}
_INT_KEYS = ("minItems", "maxItems", "minChars", "maxChars")


class DocumentError(ValueError):
    """The request cannot run: `details` is the SSM statusDetails, str(self) the message."""

    def __init__(self, details: str, message: str) -> None:
        super().__init__(message)
        self.details = details


@dataclass(frozen=True)
class ParamDef:
    name: str
    type: str
    default: Optional[Value]
    allowed_values: Optional[Tuple[str, ...]]
    allowed_pattern: Optional[str]
    min_items: Optional[int]
    max_items: Optional[int]
    min_chars: Optional[int]
    max_chars: Optional[int]
    env_var: bool


@dataclass(frozen=True)
class Step:
    index: int
    name: str
    action: str
    inputs: Mapping[str, Any]
    precondition: Optional[Tuple[Any, Any]]
    on_failure: Optional[str]
    on_success: Optional[str]
    finally_step: bool


@dataclass(frozen=True)
class Document:
    parameters: Tuple[ParamDef, ...]
    steps: Tuple[Step, ...]

    def param(self, name: str) -> Optional[ParamDef]:
        return next((p for p in self.parameters if p.name == name), None)


def _bad(message: str) -> DocumentError:
    return DocumentError(INVALID_DOCUMENT, message)


# ---------------------------------------------------------------- document structure

def parse_document(raw: Any) -> Document:
    if not isinstance(raw, dict):
        raise _bad("document: expected a JSON object (an SSM Command document)")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise _bad("document: unknown top-level field(s) %s; allowed: %s"
                   % (", ".join(unknown), ", ".join(sorted(_TOP_KEYS))))
    version = raw.get("schemaVersion")
    if isinstance(version, float):
        version = repr(version)
    if version != SCHEMA_VERSION:
        raise _bad("document: schemaVersion %r is not supported; this agent runs Command "
                   "documents with schemaVersion \"2.2\"" % (raw.get("schemaVersion"),))
    params = _parse_parameters(raw.get("parameters") or {})
    names = {p.name for p in params}
    steps = _parse_steps(raw.get("mainSteps"), names)
    return Document(parameters=params, steps=steps)


def _parse_parameters(raw: Any) -> Tuple[ParamDef, ...]:
    if not isinstance(raw, dict):
        raise _bad("parameters: expected a map of name -> definition")
    return tuple(_parse_param(name, spec) for name, spec in raw.items())


def _parse_param(name: str, spec: Any) -> ParamDef:
    where = "parameters.%s" % name
    if not PARAM_NAME.match(str(name)):
        raise _bad("%s: parameter names must match ^[a-zA-Z0-9]+$" % where)
    if not isinstance(spec, dict):
        raise _bad("%s: expected a map with at least 'type'" % where)
    unknown = sorted(set(spec) - _PARAM_KEYS)
    if unknown:
        raise _bad("%s: unknown field(s) %s" % (where, ", ".join(unknown)))
    ptype = spec.get("type")
    if ptype not in ("String", "StringList"):
        raise _bad("%s.type: Command documents accept only String and StringList, got %r"
                   % (where, ptype))
    for key in _INT_KEYS:
        if key in spec and (not isinstance(spec[key], int) or isinstance(spec[key], bool)
                            or spec[key] < 0):
            raise _bad("%s.%s: expected a non-negative integer" % (where, key))
    return ParamDef(
        name=name, type=ptype,
        default=_parse_default(where, ptype, spec),
        allowed_values=_parse_allowed_values(where, spec.get("allowedValues")),
        allowed_pattern=_parse_pattern(where, spec.get("allowedPattern")),
        min_items=spec.get("minItems"), max_items=spec.get("maxItems"),
        min_chars=spec.get("minChars"), max_chars=spec.get("maxChars"),
        env_var=_parse_interpolation(where, spec.get("interpolationType")),
    )


def _parse_default(where: str, ptype: str, spec: Mapping[str, Any]) -> Optional[Value]:
    if "default" not in spec:
        return None
    try:
        return _coerce(ptype, spec["default"])
    except TypeError as err:
        raise _bad("%s.default: %s" % (where, err))


def _parse_allowed_values(where: str, raw: Any) -> Optional[Tuple[str, ...]]:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise _bad("%s.allowedValues: expected a list of strings" % where)
    return tuple(raw)


def _parse_pattern(where: str, raw: Any) -> Optional[str]:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _bad("%s.allowedPattern: expected a string" % where)
    try:
        re.compile(raw)
    except re.error as err:
        raise _bad("%s.allowedPattern: invalid regular expression: %s" % (where, err))
    return raw


def _parse_interpolation(where: str, raw: Any) -> bool:
    if raw in (None, ""):
        return False
    if raw != "ENV_VAR":
        raise _bad("%s.interpolationType: only ENV_VAR is supported, got %r" % (where, raw))
    return True


def _parse_steps(raw: Any, names: set) -> Tuple[Step, ...]:
    if not isinstance(raw, list) or not raw:
        raise _bad("mainSteps: expected a non-empty list of steps")
    steps = tuple(_parse_step(i, s, names) for i, s in enumerate(raw))
    seen = set()
    for step in steps:
        if step.name in seen:
            raise _bad("mainSteps[%d].name: duplicate step name %r" % (step.index, step.name))
        seen.add(step.name)
        if step.finally_step and step.index != len(steps) - 1:
            raise _bad("mainSteps[%d]: finallyStep must be the last step" % step.index)
    return steps


def _parse_step(index: int, raw: Any, names: set) -> Step:
    where = "mainSteps[%d]" % index
    if not isinstance(raw, dict):
        raise _bad("%s: expected a map with action, name and inputs" % where)
    unknown = sorted(set(raw) - _STEP_KEYS)
    if unknown:
        raise _bad("%s: unknown field(s) %s" % (where, ", ".join(unknown)))
    for key in ("action", "name"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise _bad("%s.%s: expected a non-empty string" % (where, key))
    inputs = raw.get("inputs", {})
    if not isinstance(inputs, dict):
        raise _bad("%s.inputs: expected a map" % where)
    shared = _shared_inputs(where, raw, inputs)
    return Step(
        index=index, name=raw["name"], action=raw["action"],
        inputs={k: v for k, v in inputs.items() if k not in _SHARED_INPUTS},
        precondition=_parse_precondition(where, raw.get("precondition"), names),
        on_failure=shared["onFailure"], on_success=shared["onSuccess"],
        finally_step=bool(shared["finallyStep"]),
    )


def _shared_inputs(where: str, step: Mapping[str, Any],
                   inputs: Mapping[str, Any]) -> Dict[str, Any]:
    """onFailure/onSuccess/finallyStep: SSM puts them in `inputs`; the step level works too."""
    allowed = {"onFailure": ("exit", "successAndExit"), "onSuccess": ("exit",),
               "finallyStep": (True, False, "true", "false")}
    out: Dict[str, Any] = {}
    for key, values in allowed.items():
        found = [src[key] for src in (inputs, step) if key in src]
        if len(found) == 2 and found[0] != found[1]:
            raise _bad("%s: %s is given twice with different values" % (where, key))
        value = found[0] if found else None
        if value is not None and value not in values:
            raise _bad("%s.inputs.%s: expected one of %s, got %r"
                       % (where, key, ", ".join(map(str, values)), value))
        out[key] = value in (True, "true") if key == "finallyStep" else value
    return out


def _parse_precondition(where: str, raw: Any, names: set) -> Optional[Tuple[Any, Any]]:
    if raw is None:
        return None
    operands = raw.get("StringEquals") if isinstance(raw, dict) and len(raw) == 1 else None
    if not isinstance(operands, list) or len(operands) != 2 \
            or not all(isinstance(o, str) for o in operands):
        raise _bad("%s.precondition: only {StringEquals: [left, right]} with two strings "
                   "is supported" % where)
    left = operands[0]
    ref = EXACT_REF.match(left)
    if left != "platformType" and not ref:
        raise _bad("%s.precondition: the left operand must be platformType or a "
                   "{{ parameter }} reference, got %r" % (where, left))
    for name in REF.findall(left + " " + operands[1]):
        if name not in names:
            raise _bad("%s.precondition: references undeclared parameter %r" % (where, name))
    return operands[0], operands[1]


# ---------------------------------------------------------------- parameter values

def _coerce(ptype: str, raw: Any) -> Value:
    """Accept SSM's list-of-strings wire form and plain strings; anything else is a TypeError."""
    if ptype == "String":
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if not isinstance(raw, str):
            raise TypeError("expected a string (String parameter), got %s" % _kind(raw))
        return raw
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise TypeError("expected a list of strings (StringList parameter), got %s" % _kind(raw))
    return list(raw)


def _kind(raw: Any) -> str:
    if isinstance(raw, list):
        return "a list with %d item(s) of %s" % (
            len(raw), ", ".join(sorted({type(v).__name__ for v in raw})) or "nothing")
    return "null" if raw is None else type(raw).__name__


def resolve_parameters(doc: Document, given: Any) -> Dict[str, Value]:
    """Effective values (given, else default) for every declared parameter, validated."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise DocumentError(INVALID_PARAMETERS, "parameters: expected a map of name -> value")
    declared = {p.name for p in doc.parameters}
    errors = ["%s: unknown parameter (declared: %s)" % (n, ", ".join(sorted(declared)) or "none")
              for n in sorted(set(given) - declared)]
    values: Dict[str, Value] = {}
    for param in doc.parameters:
        try:
            values[param.name] = _effective(param, given)
            errors.extend(check_value(param, values[param.name]))
        except (TypeError, KeyError) as err:
            errors.append("%s: %s" % (param.name, err.args[0]))
    if errors:
        raise DocumentError(INVALID_PARAMETERS, "invalid parameters: " + "; ".join(errors))
    return values


def _effective(param: ParamDef, given: Mapping[str, Any]) -> Value:
    if param.name in given:
        return _coerce(param.type, given[param.name])
    if param.default is None:
        raise KeyError("required parameter is missing (no default)")
    return list(param.default) if isinstance(param.default, list) else param.default


def check_value(param: ParamDef, value: Value) -> List[str]:
    """Every way `value` breaks the definition, as messages (empty when valid)."""
    items = value if isinstance(value, list) else [value]
    errors = []
    if isinstance(value, list):
        errors += _bounds(param.name, "items", len(value), param.min_items, param.max_items)
    for item in items:
        errors += _check_item(param, item)
    return errors


def _check_item(param: ParamDef, item: str) -> List[str]:
    name, errors = param.name, []
    if "\x00" in item:
        errors.append("%s: value contains a NUL character" % name)
    try:
        item.encode("utf-8")
    except UnicodeEncodeError:
        errors.append("%s: value is not valid Unicode (lone surrogate)" % name)
    if param.allowed_values is not None and item not in param.allowed_values:
        errors.append("%s: value %r is not one of the allowedValues %s"
                      % (name, _short(item), list(param.allowed_values)))
    if param.allowed_pattern is not None and not re.fullmatch(param.allowed_pattern, item):
        errors.append("%s: value %r does not match allowedPattern %r"
                      % (name, _short(item), param.allowed_pattern))
    errors += _bounds(name, "characters", len(item), param.min_chars, param.max_chars)
    return errors


def _bounds(name: str, what: str, n: int, low: Optional[int], high: Optional[int]) -> List[str]:
    if low is not None and n < low:
        return ["%s: %d %s, fewer than the minimum %d" % (name, n, what, low)]
    if high is not None and n > high:
        return ["%s: %d %s, more than the maximum %d" % (name, n, what, high)]
    return []


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------- substitution

def stringify(value: Value) -> str:
    """SSM's embedding form: strings as they are, anything else JSON-marshalled."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def substitute(obj: Any, values: Mapping[str, Value]) -> Any:
    """Replace `{{ name }}` references in strings, recursively through lists and map values."""
    if isinstance(obj, str):
        return _substitute_string(obj, values)
    if isinstance(obj, list):
        return [substitute(v, values) for v in obj]
    if isinstance(obj, dict):
        return {k: substitute(v, values) for k, v in obj.items()}
    return obj


def _substitute_string(text: str, values: Mapping[str, Value]) -> Any:
    exact = EXACT_REF.match(text)
    if exact and exact.group(1) in values:
        value = values[exact.group(1)]
        return list(value) if isinstance(value, list) else value

    def embed(match: "re.Match[str]") -> str:
        if match.group(1) not in values:
            return match.group(0)
        return stringify(values[match.group(1)]).replace("$$", "$")

    return REF.sub(embed, text)


def precondition_holds(pre: Optional[Tuple[Any, Any]], values: Mapping[str, Value]) -> bool:
    if pre is None:
        return True
    left = PLATFORM_TYPE if pre[0] == "platformType" else substitute(pre[0], values)
    return left == substitute(pre[1], values)
