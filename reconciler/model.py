"""The loaded, validated model: every manifest of a directory as frozen dataclasses.

Built by `reconciler.loader`; read by everything downstream (checks, compile, plan).
`assets` holds the templates and source files the manifests reference, read once by the
loader so that later stages stay pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping

from .kinds.association import Association
from .kinds.base import EMPTY
from .kinds.document import Document
from .kinds.maintenancewindow import MaintenanceWindow
from .kinds.node import Node
from .kinds.parameter import Parameter, normalise_name
from .kinds.patchbaseline import PatchBaseline


@dataclass(frozen=True)
class Model:
    root: str
    nodes: tuple[Node, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    documents: tuple[Document, ...] = ()
    associations: tuple[Association, ...] = ()
    patch_baselines: tuple[PatchBaseline, ...] = ()
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    assets: Mapping[str, bytes] = field(default_factory=lambda: EMPTY)  # path relative to root → bytes

    def objects(self) -> Iterator:
        yield from self.nodes
        yield from self.parameters
        yield from self.documents
        yield from self.associations
        yield from self.patch_baselines
        yield from self.maintenance_windows

    def node(self, name: str) -> Node | None:
        return next((n for n in self.nodes if n.name == name), None)

    def document(self, name: str) -> Document | None:
        return next((d for d in self.documents if d.name == name), None)

    def parameter(self, name: str) -> Parameter | None:
        key = normalise_name(name)
        return next((p for p in self.parameters if p.key == key), None)

    def patch_baseline(self, name: str) -> PatchBaseline | None:
        return next((b for b in self.patch_baselines if b.name == name), None)

    def window(self, name: str) -> MaintenanceWindow | None:
        return next((w for w in self.maintenance_windows if w.name == name), None)

    def counts(self) -> dict[str, int]:
        return {
            "Node": len(self.nodes),
            "Parameter": len(self.parameters),
            "Document": sum(not d.origin.builtin for d in self.documents),
            "Association": len(self.associations),
            "PatchBaseline": len(self.patch_baselines),
            "MaintenanceWindow": len(self.maintenance_windows),
        }
