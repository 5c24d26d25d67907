"""The manifest kinds. One kind = one module = one schema with the same stem.

Each module defines KIND (the manifest `kind`), SCHEMA (the stem of
`schemas/<stem>.schema.json`), a frozen dataclass, `build(manifest)` (validated value →
dataclass) and `check(obj)` (rules beyond the schema, yielding diagnostics).
"""

from __future__ import annotations

from types import ModuleType

from . import association, document, maintenancewindow, node, parameter, patchbaseline

MODULES: tuple[ModuleType, ...] = (node, parameter, document, association, patchbaseline, maintenancewindow)
BY_KIND: dict[str, ModuleType] = {m.KIND: m for m in MODULES}
KIND_NAMES: tuple[str, ...] = tuple(BY_KIND)


def module_for(kind: str) -> ModuleType | None:
    return BY_KIND.get(kind)


def for_schema(stem: str) -> ModuleType | None:
    return next((m for m in MODULES if m.SCHEMA == stem), None)
