"""Checks across manifests, after each has passed its schema and its kind's own checks.

Pure: takes the Model (whose `assets` already hold the referenced files) and yields
diagnostics: duplicates, unresolved references (documents, windows, templates, parameters),
template syntax, patch group coverage, and the same resource claimed twice for a node.
"""

from __future__ import annotations

import posixpath
from typing import Iterator

from . import templating
from .diagnostics import Diagnostic, escape_pointer_token
from .kinds.association import Association
from .kinds.parameter import ParameterType
from .model import Model
from .references import find_parameter_references, walk_strings
from .schema import suggest
from .targets import matches

PATCH_GROUP_LABEL = "PatchGroup"


def check_model(model: Model) -> Iterator[Diagnostic]:
    yield from _duplicates(model)
    for assoc in model.associations:
        yield from _association_refs(model, assoc)
    for doc in model.documents:
        if not doc.origin.builtin:
            for pointer, text in walk_strings(doc.content, "/spec"):
                yield from _parameter_refs(model, doc.origin, pointer, text)
    yield from _baselines(model)
    yield from _conflicts(model)


def _duplicates(model: Model) -> Iterator[Diagnostic]:
    seen: dict[tuple[str, str], object] = {}
    for obj in model.objects():
        kind = type(obj).__name__
        key = (kind, getattr(obj, "key", obj.name))
        first = seen.setdefault(key, obj)
        if first is not obj:
            where = "a built-in document" if first.origin.builtin else first.origin.ref()
            yield obj.origin.diagnostic("/metadata/name", f"{kind} '{obj.name}' is already defined ({where})",
                                        code="duplicate")


def _association_refs(model: Model, assoc: Association) -> Iterator[Diagnostic]:
    origin = assoc.origin
    if assoc.maintenance_window and not model.window(assoc.maintenance_window):
        yield _unresolved(origin, "/spec/maintenanceWindow", "MaintenanceWindow", assoc.maintenance_window,
                          [w.name for w in model.maintenance_windows])
    if assoc.document is not None:
        yield from _document_ref(model, assoc)
    for pointer, text in walk_strings(assoc.parameters, "/spec/parameters"):
        yield from _parameter_refs(model, origin, pointer, text)
    for resource in assoc.resources:
        for pointer, text in walk_strings(resource.desired, resource.pointer):
            yield from _parameter_refs(model, origin, pointer, text)
        for field in ("template", "source"):
            if field in resource.desired:
                yield from _asset(model, assoc, f"{resource.pointer}/{field}", resource.desired[field],
                                  template=field == "template")
    if not any(matches(assoc.targets, n.name, n.labels) for n in model.nodes):
        yield origin.diagnostic("/spec/targets", "these targets match no Node in the manifests",
                                warning=True, code="no-targets",
                                hint="nodes registered later will still be matched")


def _document_ref(model: Model, assoc: Association) -> Iterator[Diagnostic]:
    ref, origin = assoc.document, assoc.origin
    doc = model.document(ref.name)
    if doc is None:
        yield _unresolved(origin, "/spec/document/name", "Document", ref.name, [d.name for d in model.documents])
        return
    for name, value in ref.parameters.items():
        pointer = f"/spec/document/parameters/{escape_pointer_token(name)}"
        param = doc.parameters.get(name)
        if param is None:
            close = suggest(name, list(doc.parameters))
            yield origin.diagnostic(pointer, f"document '{doc.name}' has no parameter '{name}'", key=True,
                                    hint=f"did you mean {close}?" if close else
                                    f"its parameters: {', '.join(doc.parameters) or 'none'}")
        elif param.allowed_values and isinstance(value, str) and not find_parameter_references(value) \
                and value not in param.allowed_values:
            yield origin.diagnostic(pointer, f"'{value}' is not allowed for '{name}'",
                                    expected="one of: " + ", ".join(param.allowed_values))
    for name, param in doc.parameters.items():
        if param.required and name not in ref.parameters:
            yield origin.diagnostic("/spec/document", f"document '{doc.name}' needs parameter '{name}' "
                                    "(it has no default)", code="missing-parameter")


def _parameter_refs(model: Model, origin, pointer: str, text: str) -> Iterator[Diagnostic]:
    for ref in find_parameter_references(text):
        param = model.parameter(ref.name)
        if param is None:
            yield _unresolved(origin, pointer, "Parameter", ref.name, [p.name for p in model.parameters],
                              what=f"{ref.text} names no Parameter")
        elif ref.secure and param.type is not ParameterType.SECURE_STRING:
            yield origin.diagnostic(pointer, f"{ref.text}: '{ref.name}' is a {param.type.value}, not a SecureString",
                                    hint=f"use {{{{ssm:{ref.name}}}}}")
        elif not ref.secure and param.type is ParameterType.SECURE_STRING:
            yield origin.diagnostic(pointer, f"{ref.text}: '{ref.name}' is a SecureString",
                                    hint=f"use {{{{ssm-secure:{ref.name}}}}} so it is handled as a secret")
        elif ref.label and ref.label not in param.labels:
            yield origin.diagnostic(pointer, f"{ref.text}: no manifest gives '{ref.name}' the label '{ref.label}'",
                                    warning=True, code="unknown-label",
                                    hint="fine if the label was set with `plumb param label`")


def _asset(model: Model, assoc: Association, pointer: str, path: str, template: bool) -> Iterator[Diagnostic]:
    if posixpath.isabs(path) or posixpath.normpath(path).split("/")[0] == "..":
        yield assoc.origin.diagnostic(pointer, f"'{path}' must be a path inside the manifests directory",
                                      code="bad-path", hint="paths are relative to the manifests directory")
        return
    data = model.assets.get(path)
    if data is None:
        yield assoc.origin.diagnostic(pointer, f"file '{path}' not found under the manifests directory",
                                      code="missing-file", hint="paths are relative to the manifests directory")
        return
    if not template:
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        yield assoc.origin.diagnostic(pointer, f"template '{path}' is not UTF-8 text",
                                      hint="use source: for binary files")
        return
    for problem in templating.syntax_problems(text, path):
        yield Diagnostic(f"template syntax error: {problem.message}", posixpath.join(model.root, path),
                         problem.line, 0, code="template",
                         hint=f"used by association '{assoc.name}' ({assoc.origin.ref(pointer)})")
    for ref in find_parameter_references(text):
        yield from _parameter_refs(model, assoc.origin, pointer, ref.text)


def _unresolved(origin, pointer, kind, name, known, what="") -> Diagnostic:
    close = suggest(name, known)
    hint = f"did you mean {close}?" if close else (f"defined: {', '.join(sorted(known))}" if known else
                                                    f"no {kind} is defined")
    return origin.diagnostic(pointer, what or f"no {kind} named '{name}'", code="unresolved", hint=hint)


def _baselines(model: Model) -> Iterator[Diagnostic]:
    claimed: dict[tuple[str, str], object] = {}
    defaults: dict[str, object] = {}
    node_groups = {n.labels.get(PATCH_GROUP_LABEL) for n in model.nodes} - {None}
    for baseline in model.patch_baselines:
        origin = baseline.origin
        if baseline.maintenance_window and not model.window(baseline.maintenance_window):
            yield _unresolved(origin, "/spec/maintenanceWindow", "MaintenanceWindow",
                              baseline.maintenance_window, [w.name for w in model.maintenance_windows])
        if baseline.default:
            first = defaults.setdefault(baseline.operating_system, baseline)
            if first is not baseline:
                yield origin.diagnostic("/spec/default", f"'{first.name}' ({first.origin.ref()}) is already the "
                                        f"default baseline for {baseline.operating_system}")
        for index, group in enumerate(baseline.patch_groups):
            first = claimed.setdefault((baseline.operating_system, group), baseline)
            if first is not baseline:
                yield origin.diagnostic(f"/spec/patchGroups/{index}",
                                        f"patch group '{group}' already has a {baseline.operating_system} baseline: "
                                        f"'{first.name}' ({first.origin.ref()})")
            elif group not in node_groups:
                yield origin.diagnostic(f"/spec/patchGroups/{index}", f"no Node has the label PatchGroup: {group}",
                                        warning=True, code="unused-patch-group")
    served = {group for (_, group) in claimed}
    for node in model.nodes:
        group = node.labels.get(PATCH_GROUP_LABEL)
        if group and group not in served and not defaults:
            yield node.origin.diagnostic(f"/metadata/labels/{PATCH_GROUP_LABEL}",
                                         f"no PatchBaseline serves patch group '{group}' and none is a default",
                                         warning=True, code="unserved-patch-group")


def _conflicts(model: Model) -> Iterator[Diagnostic]:
    """The same resource declared by two associations that target the same node."""
    clashes: dict[tuple, list] = {}
    for node in model.nodes:
        owners: dict[str, tuple] = {}
        for assoc in model.associations:
            if not matches(assoc.targets, node.name, node.labels):
                continue
            for resource in assoc.resources:
                first = owners.setdefault(resource.address, (assoc, resource))
                if first[0] is not assoc:
                    key = (assoc.name, resource.pointer, first[0].name)
                    clashes.setdefault(key, [assoc, resource, first, []])[3].append(node.name)
    for assoc, resource, (other, other_resource), nodes in clashes.values():
        yield assoc.origin.diagnostic(
            resource.pointer,
            f"{resource.address} is also managed by association '{other.name}' "
            f"({other.origin.ref(other_resource.pointer)}) on node(s) {', '.join(nodes)}",
            key=True, code="conflict", hint="one resource, one owner")
