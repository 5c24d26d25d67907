"""Loading a manifests directory into a validated Model, with every problem at once.

The edge where manifests meet the program: reads every `*.yaml`/`*.yml` (and SSM
`*.json` documents) under a directory, recursively and multi-document; wraps raw SSM
Command documents as `Document`s named after their file; validates each manifest against
its kind's schema, builds the frozen dataclasses, reads the templates they reference, and
runs the kind and cross-manifest checks. Never raises on bad input: it returns diagnostics.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Iterable

from . import checks, kinds, schema
from .diagnostics import Diagnostic, Severity, sorted_diagnostics
from .kinds.base import Manifest, Origin
from .model import Model
from .yamlsource import SourceDocument, parse_documents

MANIFEST_SUFFIXES = (".yaml", ".yml")
DOCUMENT_SUFFIXES = (".json",)
API_VERSION = "plumb.dev/v1"


@dataclass(frozen=True)
class LoadResult:
    model: Model
    diagnostics: list[Diagnostic]
    files: int

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


def load(root: str | os.PathLike) -> LoadResult:
    """Load and check every manifest under `root` (a directory, or a single file)."""
    root_text = os.fspath(root)
    path = Path(root_text)
    if not path.exists():
        return LoadResult(Model(root_text), [Diagnostic(f"no such file or directory: {root_text}",
                                                         root_text, code="not-found")], 0)
    files = [path] if path.is_file() else _manifest_files(path)
    base = path.parent if path.is_file() else path
    diagnostics: list[Diagnostic] = []
    manifests: list[Manifest] = list(_builtin_manifests())
    for file in files:
        shown = _display(root_text, path, file)
        manifests.extend(_load_file(file, shown, diagnostics))
    built = _build_all(manifests, diagnostics)
    assets = _read_assets(built.get("Association", []), base)
    model = Model(
        root=root_text if path.is_dir() else str(path.parent),
        nodes=tuple(built.get("Node", ())),
        parameters=tuple(built.get("Parameter", ())),
        documents=tuple(built.get("Document", ())),
        associations=tuple(built.get("Association", ())),
        patch_baselines=tuple(built.get("PatchBaseline", ())),
        maintenance_windows=tuple(built.get("MaintenanceWindow", ())),
        assets=MappingProxyType(assets),
    )
    diagnostics.extend(checks.check_model(model))
    return LoadResult(model, sorted_diagnostics(diagnostics), len(files))


def _manifest_files(root: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(MANIFEST_SUFFIXES + DOCUMENT_SUFFIXES) and not name.startswith("."):
                found.append(Path(dirpath) / name)
    return found


def _display(root_text: str, root: Path, file: Path) -> str:
    if root.is_file():
        return root_text
    return posixpath.join(root_text, file.relative_to(root).as_posix())


def _load_file(file: Path, shown: str, diagnostics: list[Diagnostic]) -> list[Manifest]:
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        diagnostics.append(Diagnostic(f"not UTF-8 text (byte {exc.start})", shown, code="encoding"))
        return []
    except OSError as exc:
        diagnostics.append(Diagnostic(f"cannot read: {exc.strerror}", shown, code="io"))
        return []
    documents, problems = parse_documents(text, shown)
    diagnostics.extend(problems)
    is_json = file.suffix in DOCUMENT_SUFFIXES
    manifests = []
    for doc in documents:
        manifest = _classify(doc, file, shown, is_json, diagnostics)
        if manifest is not None:
            manifests.append(manifest)
    return manifests


def _classify(doc: SourceDocument, file: Path, shown: str, is_json: bool,
              diagnostics: list[Diagnostic]) -> Manifest | None:
    value = doc.value
    if value is None:
        return None  # an empty document (a stray `---`)
    if not isinstance(value, dict):
        if not is_json:
            pos = doc.source.value_at("")
            diagnostics.append(Diagnostic("a manifest must be a mapping with apiVersion, kind, metadata and spec",
                                          shown, pos.line, pos.column, code="not-a-manifest"))
        return None
    if "schemaVersion" in value and "apiVersion" not in value and "kind" not in value:
        return _raw_document(doc, file, shown)
    if is_json and "apiVersion" not in value and "kind" not in value:
        return None  # some other JSON file (a schema, a lock file): not ours
    return Manifest(str(value.get("kind", "")), value, Origin(shown, doc.source))


def _raw_document(doc: SourceDocument, file: Path, shown: str) -> Manifest:
    """A raw SSM Command document, accepted unchanged, named after its file."""
    name = file.name.rsplit(".", 1)[0]
    wrapped = {"apiVersion": API_VERSION, "kind": "Document", "metadata": {"name": name}, "spec": doc.value}
    return Manifest("Document", wrapped, Origin(shown, doc.source.rebased("/spec")))


def _builtin_manifests():
    folder = resources.files("reconciler").joinpath("builtin")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        shown = f"<builtin>/{entry.name}"
        documents, problems = parse_documents(entry.read_text(encoding="utf-8"), shown)
        assert not problems, problems
        for doc in documents:
            yield Manifest(doc.value["kind"], doc.value, Origin(shown, doc.source, builtin=True))


def _build_all(manifests: list[Manifest], diagnostics: list[Diagnostic]) -> dict[str, list]:
    built: dict[str, list] = {}
    for manifest in manifests:
        module = kinds.module_for(manifest.kind)
        if module is None:
            diagnostics.append(_unknown_kind(manifest))
            continue
        problems = schema.validate(manifest.value, module.SCHEMA, manifest.origin.source)
        if problems:
            diagnostics.extend(problems)
            continue
        obj = module.build(manifest)
        diagnostics.extend(module.check(obj))
        built.setdefault(manifest.kind, []).append(obj)
    return built


def _unknown_kind(manifest: Manifest) -> Diagnostic:
    origin = manifest.origin
    if "kind" not in manifest.value:
        return origin.diagnostic("", "missing required field 'kind'", expected="one of: " + ", ".join(kinds.KIND_NAMES))
    close = schema.suggest(manifest.kind, list(kinds.KIND_NAMES))
    return origin.diagnostic("/kind", f"unknown kind {schema.describe(manifest.value['kind'])}",
                             expected="one of: " + ", ".join(kinds.KIND_NAMES),
                             hint=f"did you mean {close}?" if close else "")


def _read_assets(associations, base: Path) -> dict[str, bytes]:
    """The templates and source files the associations name (the checks report missing ones)."""
    assets: dict[str, bytes] = {}
    root = base.resolve()
    for assoc in associations:
        for resource in assoc.resources:
            for field in ("template", "source"):
                rel = resource.desired.get(field)
                if rel is None or rel in assets or posixpath.isabs(rel):
                    continue
                resolved = (base / rel).resolve()
                if not resolved.is_relative_to(root):  # also a symlink pointing outside
                    continue
                try:
                    assets[rel] = resolved.read_bytes()
                except OSError:
                    continue
    return assets


REGISTERED = "<registered>"  # the "file" of nodes registered with `plumb node register`


def registered_nodes(manifests: Iterable[tuple[str, str]]) -> tuple[list, list[Diagnostic]]:
    """Nodes registered in the state store (name, Node manifest as YAML/JSON text) → (nodes, problems),
    checked exactly as Node manifests in git are."""
    diagnostics: list[Diagnostic] = []
    found: list[Manifest] = []
    for name, text in manifests:
        shown = f"{REGISTERED}/{name}"
        documents, problems = parse_documents(text, shown)
        diagnostics.extend(problems)
        for doc in documents:
            if isinstance(doc.value, dict) and doc.value.get("kind") == "Node":
                found.append(Manifest("Node", doc.value, Origin(shown, doc.source)))
            else:
                diagnostics.append(Diagnostic("a registered node must be one Node manifest", shown, code="registered"))
    built = _build_all(found, diagnostics)
    return list(built.get("Node", ())), diagnostics


def with_registered(model: Model, nodes) -> tuple[Model, list[Diagnostic]]:
    """The model with registered nodes added; a name also declared in git keeps git's Node (a warning)."""
    declared = {n.name: n for n in model.nodes}
    added, problems = [], []
    for node in nodes:
        if node.name in declared:
            origin = declared[node.name].origin
            problems.append(Diagnostic(f"node '{node.name}' is registered and also declared in {origin.file}:"
                                       f"{origin.line}; the manifest wins", node.origin.file, code="registered",
                                       hint=f"plumb node deregister {node.name}", severity=Severity.WARNING))
            continue
        added.append(node)
    return replace(model, nodes=model.nodes + tuple(added)), problems
