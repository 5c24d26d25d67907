"""YAML with positions: the one home of pyyaml in the controller.

`parse_documents(text, file)` turns a (multi-document) YAML or JSON text into plain
values (dict/list/str/int/float/bool/None) together with a `SourceMap` giving the line and
column of every value and key by JSON pointer, so that any later check can point into the
user's file. It never raises: syntax errors, duplicate keys, non-string keys, unknown tags
and absurd nesting all come back as diagnostics.

Deliberate differences from `yaml.safe_load`:
- timestamps stay strings (`2024-01-01` is a date *string* in every manifest field);
- a duplicate key in one mapping is an error, not a silent overwrite;
- the original text of each scalar is remembered, so `mode: 0644` (which YAML 1.1 reads as
  the number 420) can be explained to the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import yaml

from .diagnostics import Diagnostic, escape_pointer_token

MAX_DEPTH = 200
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


class _Loader(yaml.SafeLoader):
    """SafeLoader without the implicit timestamp type."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based
    text: str | None = None  # original scalar text, when the value is a scalar
    quoted: bool = False


@dataclass(frozen=True)
class SourceMap:
    """Positions of values and keys of one document, by JSON pointer."""

    file: str
    values: Mapping[str, Position] = field(default_factory=dict)
    keys: Mapping[str, Position] = field(default_factory=dict)

    def value_at(self, pointer: str) -> Position:
        """Position of the value at `pointer`, or of its nearest ancestor that has one."""
        return _nearest(self.values, pointer)

    def key_at(self, pointer: str) -> Position:
        """Position of the key naming `pointer` (falls back to the value's position)."""
        return self.keys.get(pointer) or self.value_at(pointer)

    def rebased(self, prefix: str) -> "SourceMap":
        """The same positions with every pointer moved under `prefix` (e.g. `/spec`)."""
        return SourceMap(
            self.file,
            MappingProxyType({prefix + p: v for p, v in self.values.items()}),
            MappingProxyType({prefix + p: v for p, v in self.keys.items()}),
        )


def _nearest(table: Mapping[str, Position], pointer: str) -> Position:
    while True:
        if pointer in table:
            return table[pointer]
        if not pointer:
            return Position(0, 0)
        pointer = pointer.rsplit("/", 1)[0]


@dataclass(frozen=True)
class SourceDocument:
    """One YAML document of a file: its value and where each part of it came from."""

    value: Any
    source: SourceMap
    index: int  # 0-based position of the document in its file

    @property
    def line(self) -> int:
        return self.source.value_at("").line


class _Walker:
    """Turns a composed node tree into plain values, recording positions and problems."""

    def __init__(self, file: str, loader: _Loader):
        self.file = file
        self.loader = loader
        self.values: dict[str, Position] = {}
        self.keys: dict[str, Position] = {}
        self.diagnostics: list[Diagnostic] = []

    def error(self, mark, pointer: str, message: str, **extra) -> None:
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        self.diagnostics.append(
            Diagnostic(message, self.file, line, column, pointer, code="yaml", **extra)
        )

    def walk(self, node, pointer: str = "", depth: int = 0):
        mark = node.start_mark
        if depth > MAX_DEPTH:
            self.error(mark, pointer, f"nesting deeper than {MAX_DEPTH} levels")
            return None
        if not isinstance(node, yaml.ScalarNode) and node.tag not in _COLLECTION_TAGS:
            self.error(mark, pointer, f"unsupported YAML tag {node.tag}", hint="manifests use plain YAML")
            return None
        if isinstance(node, yaml.MappingNode):
            self.values[pointer] = Position(mark.line + 1, mark.column + 1)
            return self._mapping(node, pointer, depth)
        if isinstance(node, yaml.SequenceNode):
            self.values[pointer] = Position(mark.line + 1, mark.column + 1)
            return [
                self.walk(item, f"{pointer}/{i}", depth + 1) for i, item in enumerate(node.value)
            ]
        quoted = node.style in ("'", '"')
        self.values[pointer] = Position(mark.line + 1, mark.column + 1, node.value, quoted)
        return self._scalar(node, pointer)

    def _scalar(self, node, pointer: str):
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.error(node.start_mark, pointer, f"cannot read this value: {_problem(exc)}")
        except (ValueError, OverflowError) as exc:
            self.error(node.start_mark, pointer, f"cannot read this value: {exc}")
        return None

    def _mapping(self, node, pointer: str, depth: int) -> dict:
        try:
            self.loader.flatten_mapping(node)  # resolves `<<` merge keys
        except yaml.YAMLError as exc:
            self.error(node.start_mark, pointer, f"invalid merge key: {_problem(exc)}")
        result: dict = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, pointer)
            if key is None:
                continue
            child = f"{pointer}/{escape_pointer_token(key)}"
            if key in result:
                first = self.keys[child]
                self.error(
                    key_node.start_mark, child,
                    f"duplicate key '{key}' (first defined at line {first.line})",
                    hint="YAML would silently keep only the last one",
                )
                continue
            mark = key_node.start_mark
            self.keys[child] = Position(mark.line + 1, mark.column + 1, str(key))
            result[key] = self.walk(value_node, child, depth + 1)
        return result

    def _key(self, key_node, pointer: str):
        if not isinstance(key_node, yaml.ScalarNode):
            self.error(key_node.start_mark, pointer, "a mapping key must be a plain string")
            return None
        key = self._scalar(key_node, pointer)
        if key is None and key_node.value not in ("", "~", "null", "Null", "NULL"):
            return None
        if not isinstance(key, str):
            # YAML 1.1 turns `on:`, `yes:`, `1:` into booleans and numbers; manifests want text.
            key = key_node.value
        return key


def _problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return f"{context}: {problem}" if context and context not in problem else problem


def parse_documents(text: str, file: str) -> tuple[list[SourceDocument], list[Diagnostic]]:
    """All documents of a YAML/JSON text, with positions; problems as diagnostics."""
    documents: list[SourceDocument] = []
    diagnostics: list[Diagnostic] = []
    loader = None
    index = 0
    try:
        loader = _Loader(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            walker = _Walker(file, loader)
            try:
                value = walker.walk(node)
            except RecursionError:
                walker.error(node.start_mark, "", "nesting is too deep to read")
                value = None
            diagnostics.extend(walker.diagnostics)
            source = SourceMap(file, MappingProxyType(walker.values), MappingProxyType(walker.keys))
            documents.append(SourceDocument(value, source, index))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        diagnostics.append(
            Diagnostic(f"YAML syntax error: {_problem(exc)}", file, line, column, code="yaml-syntax")
        )
    except yaml.YAMLError as exc:  # reader errors (bad characters) and the like
        mark = getattr(exc, "position", None)
        diagnostics.append(
            Diagnostic(f"cannot read this file as YAML: {exc}", file,
                       code="yaml-syntax", line=_line_of(text, mark))
        )
    except RecursionError:
        diagnostics.append(Diagnostic("nesting is too deep to read", file, code="yaml-syntax"))
    finally:
        if loader is not None:
            loader.dispose()
    return documents, diagnostics


def _line_of(text: str, offset) -> int:
    if not isinstance(offset, int):
        return 0
    return text.count("\n", 0, offset) + 1


def dump(value) -> str:
    """Block-style YAML for values shown to users (`plumb schema --format yaml`)."""
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True)
