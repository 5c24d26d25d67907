"""JSON Schemas of the kinds, and validation that speaks to humans: the one home of jsonschema.

Schemas live in `schemas/` (shipped in the wheel as `reconciler.schemas`). `validate()`
runs Draft 2020-12 validation and turns every error into a located `Diagnostic` with the
field's pointer, what was expected, and for a misspelled key a suggestion. `bundled()`
returns a self-contained schema (shared definitions inlined) for editors.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import jsonschema
from referencing import Registry, Resource

from .diagnostics import Diagnostic, escape_pointer_token, pointer_of
from .yamlsource import SourceMap

COMMON = "common"
BASE_URI = "https://plumb.dev/schemas/v1/"

_TYPE_WORDS = {
    "string": "a string", "integer": "a whole number", "number": "a number",
    "boolean": "true or false", "array": "a list", "object": "a mapping", "null": "nothing",
}


def _schema_dir() -> Path:
    """`reconciler/schemas/` in an installed wheel; the repository's `schemas/` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "schemas", here.parent / "schemas"):
        if (candidate / f"{COMMON}.schema.json").is_file():
            return candidate
    raise FileNotFoundError(f"plumb's JSON Schemas are missing (looked in {here / 'schemas'})")


@lru_cache(maxsize=None)
def load(stem: str) -> dict:
    """The schema `schemas/<stem>.schema.json` as stored."""
    text = _schema_dir().joinpath(f"{stem}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def stems() -> list[str]:
    """Every schema stem that ships (kinds, common, inventory, ...)."""
    names = [p.name for p in _schema_dir().iterdir() if p.name.endswith(".schema.json")]
    return sorted(n[: -len(".schema.json")] for n in names)


@lru_cache(maxsize=None)
def _validator(stem: str):
    registry = Registry()
    for name in stems():
        registry = registry.with_resource(BASE_URI + f"{name}.schema.json",
                                          Resource.from_contents(load(name)))
    cls = jsonschema.validators.validator_for(load(stem))
    return cls(load(stem), registry=registry)


def bundled(stem: str) -> dict:
    """A self-contained copy of a kind's schema: `common` definitions inlined as `#/$defs`."""
    schema = copy.deepcopy(load(stem))
    common_defs = copy.deepcopy(load(COMMON)["$defs"])
    own_defs = schema.setdefault("$defs", {})
    clash = set(own_defs) & set(common_defs)
    assert not clash, f"{stem}: $defs names clash with common: {clash}"
    own_defs.update(common_defs)
    return _rewrite_refs(schema)


def _rewrite_refs(node):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(f"{COMMON}.schema.json#"):
                value = value[len(f"{COMMON}.schema.json"):]
            out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def validate(instance: Any, stem: str, source: SourceMap) -> list[Diagnostic]:
    """All schema errors of `instance` against `<stem>.schema.json`, as diagnostics."""
    found: list[Diagnostic] = []
    for error in _validator(stem).iter_errors(instance):
        found.extend(_explain(error, source))
    return _without_echoes(found)


def _without_echoes(found: list[Diagnostic]) -> list[Diagnostic]:
    """Drop "missing 'targets'" when "unknown field 'Targets': did you mean targets?" says it all."""
    unknown = {(d.pointer.rsplit("/", 1)[0], d.hint.split("?")[0].removeprefix("did you mean "))
               for d in found if d.code == "schema-unknown-field" and d.hint}
    return [d for d in found if not (d.code == "schema-missing" and (d.pointer, d.expected) in unknown)]


# --- turning jsonschema errors into diagnostics -------------------------------------------

def _explain(error, source: SourceMap) -> Iterator[Diagnostic]:
    error = _deepest(error)
    pointer = pointer_of(error.absolute_path)
    handler = _HANDLERS.get(error.validator, _generic)
    yield from handler(error, pointer, source)


def _deepest(error):
    """For oneOf/anyOf, the branch error that got furthest into the value, if any did."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return error
    deeper = [e for e in error.context if len(e.absolute_path) > len(error.absolute_path)]
    if deeper:
        return _deepest(max(deeper, key=lambda e: len(e.absolute_path)))
    return error


def _at(source: SourceMap, pointer: str, message: str, *, key=False, code="schema", **extra) -> Diagnostic:
    pos = source.key_at(pointer) if key else source.value_at(pointer)
    return Diagnostic(message, source.file, pos.line, pos.column, pointer, code=code, **extra)


def _expected(schema: dict, fallback: str) -> str:
    return schema.get("x-expected") if isinstance(schema, dict) and schema.get("x-expected") else fallback


def describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    return repr(value)


def _type_words(types) -> str:
    types = [types] if isinstance(types, str) else list(types)
    words = [_TYPE_WORDS.get(t, t) for t in types]
    return " or ".join(words)


def _yaml_hint(source: SourceMap, pointer: str, wanted, instance) -> str:
    """Explain YAML 1.1 surprises: `0644` read as 420, `on` read as true."""
    wanted = [wanted] if isinstance(wanted, str) else wanted
    pos = source.value_at(pointer)
    if isinstance(instance, (bool, int, float)) and "string" in wanted and pos.text is not None and not pos.quoted:
        return f'YAML read `{pos.text}` as a {"boolean" if pos.text.lower() in _BOOL_WORDS else "number"}; quote it: "{pos.text}"'
    return ""


_BOOL_WORDS = {"yes", "no", "on", "off", "true", "false", "y", "n"}


def _type(error, pointer, source):
    wanted = error.validator_value
    yield _at(source, pointer, f"{describe(error.instance)} is not {_type_words(wanted)}",
              expected=_expected(error.schema, _type_words(wanted)),
              hint=_yaml_hint(source, pointer, wanted, error.instance))


def _enum(error, pointer, source):
    options = error.validator_value
    shown = ", ".join(str(o) for o in options)
    hint = ""
    if isinstance(error.instance, str):
        close = _suggest(error.instance, [str(o) for o in options])
        hint = f"did you mean {close}?" if close else ""
    if not hint:
        types = {"string" if isinstance(o, str) else "other" for o in options}
        if types == {"string"}:
            hint = _yaml_hint(source, pointer, "string", error.instance)
    yield _at(source, pointer, f"{describe(error.instance)} is not allowed here",
              expected=_expected(error.schema, f"one of: {shown}"), hint=hint)


def _const(error, pointer, source):
    yield _at(source, pointer, f"{describe(error.instance)} is not allowed here",
              expected=_expected(error.schema, json.dumps(error.validator_value)),
              hint=_yaml_hint(source, pointer, "string", error.instance))


def _pattern(error, pointer, source):
    yield _at(source, pointer, f"{describe(error.instance)} is not of the required form",
              expected=_expected(error.schema, f"a string matching {error.validator_value}"))


def _required(error, pointer, source):
    instance = error.instance if isinstance(error.instance, dict) else {}
    for name in error.validator_value:
        if name in instance:
            continue
        hint = ""
        close = _suggest(name, list(instance))
        if close:
            hint = f"found '{close}': did you mean {name}?"
        yield _at(source, pointer, f"missing required field '{name}'", hint=hint, expected=name,
                  code="schema-missing")


def _additional(error, pointer, source):
    if error.validator_value is not False or not isinstance(error.instance, dict):
        yield from _generic(error, pointer, source)
        return
    allowed = list(error.schema.get("properties", {}))
    patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
    for key in error.instance:
        if key in allowed or any(p.search(key) for p in patterns):
            continue
        child = f"{pointer}/{escape_pointer_token(key)}"
        close = _suggest(key, allowed)
        hint = f"did you mean {close}?" if close else ""
        if close and close.lower() == key.lower():
            hint += " (plumb uses SSM's field names in lowerCamelCase)"
        yield _at(source, child, f"unknown field '{key}'", key=True,
                  expected="one of: " + ", ".join(allowed), hint=hint, code="schema-unknown-field")


def _property_names(error, pointer, source):
    key = error.instance
    child = f"{pointer}/{escape_pointer_token(key)}"
    yield _at(source, child, f"the key {describe(key)} is not allowed here", key=True,
              expected=_expected(error.schema, "a valid key"))


def _bounds(error, pointer, source):
    words = {
        "minItems": "at least {} item(s)", "maxItems": "at most {} item(s)",
        "minLength": "at least {} character(s)", "maxLength": "at most {} character(s)",
        "minimum": "at least {}", "maximum": "at most {}",
        "exclusiveMinimum": "more than {}", "exclusiveMaximum": "less than {}",
        "minProperties": "at least {} entr(ies)", "maxProperties": "at most {} entr(ies)",
    }
    expected = words[error.validator].format(error.validator_value)
    if error.validator == "maxProperties" and isinstance(error.instance, dict):
        message = f"has {len(error.instance)} entries: " + ", ".join(error.instance)
    elif isinstance(error.instance, (list, dict, str)):
        message = f"has {len(error.instance)}"
    else:
        message = f"{describe(error.instance)} is out of range"
    yield _at(source, pointer, message, expected=_expected(error.schema, expected))


def _unique(error, pointer, source):
    yield _at(source, pointer, "has duplicate entries", expected="each entry once")


def _one_of(error, pointer, source):
    yield _at(source, pointer, f"{describe(error.instance)} is not allowed here",
              expected=_expected(error.schema, _branch_words(error.validator_value)),
              hint=_yaml_hint(source, pointer, "string", error.instance))


def _branch_words(branches) -> str:
    words = []
    for branch in branches:
        if isinstance(branch, dict) and "type" in branch:
            words.append(_type_words(branch["type"]))
    return " or ".join(words) or "a different value"


def _generic(error, pointer, source):
    yield _at(source, pointer, error.message)


def _false_schema(error, pointer, source):
    yield _at(source, pointer, "this field is not allowed here")


_HANDLERS = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "pattern": _pattern,
    "required": _required,
    "additionalProperties": _additional,
    "propertyNames": _property_names,
    "uniqueItems": _unique,
    "oneOf": _one_of,
    "anyOf": _one_of,
    "false": _false_schema,
    **{k: _bounds for k in ("minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum",
                            "exclusiveMinimum", "exclusiveMaximum", "minProperties", "maxProperties")},
}


def _suggest(word: str, options: list[str]) -> str:
    """The closest option to a misspelled word, case-insensitively ('' if none is close)."""
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.75)
    return lowered[close[0]] if close else ""


suggest = _suggest
