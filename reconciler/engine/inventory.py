"""Inventory collection: open one agent session per node, collect, store the snapshot.

What to collect for a node: every default type, plus the files, directories and sysctl
keys that the associations targeting it manage (so that planning has them).
Many nodes are collected at once, bounded; one node's failure never stops the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ..kinds.node import Node
from ..model import Model
from ..store import InventorySnapshot, Store
from ..targets import matches
from ..transport import TransportError, for_each_node, session_for


@dataclass(frozen=True)
class CollectRequest:
    types: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    sysctl: tuple[str, ...] = ()

    def as_args(self) -> dict:
        args: dict = {}
        if self.types:
            args["types"] = list(self.types)
        if self.files:
            args["files"] = list(self.files)
        if self.sysctl:
            args["sysctl"] = list(self.sysctl)
        return args


@dataclass(frozen=True)
class CollectResult:
    node: str
    snapshot: InventorySnapshot | None = None
    error: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.snapshot is not None


def request_for(model: Model, node: Node, types: Sequence[str] = ()) -> CollectRequest:
    """Default types plus what this node's associations manage (paths and sysctl keys)."""
    files: list[str] = []
    sysctl: list[str] = []
    for assoc in model.associations:
        if not matches(assoc.targets, node.name, node.labels):
            continue
        for resource in assoc.resources:
            if resource.type in ("files", "directories") and resource.id not in files:
                files.append(resource.id)
            elif resource.type == "sysctl" and resource.id not in sysctl:
                sysctl.append(resource.id)
    return CollectRequest(tuple(types), tuple(files), tuple(sysctl))


async def collect_one(node: Node, request: CollectRequest) -> dict:
    """The inventory document of one node (raises TransportError)."""
    session = session_for(node)
    try:
        await session.open()
        return await session.collect(**request.as_args())
    finally:
        await session.close()


async def collect(model: Model, nodes: Sequence[Node], store: Store, *, types: Sequence[str] = (),
                  limit: int = 64, on_result: Callable[[CollectResult], None] | None = None) -> list[CollectResult]:
    """Collect and store inventory for `nodes`; one CollectResult per node, in node order."""

    async def one(node: Node) -> CollectResult:
        try:
            document = await collect_one(node, request_for(model, node, types))
        except TransportError as exc:
            result = CollectResult(node.name, error=str(exc), reason=exc.reason)
        else:
            result = CollectResult(node.name, snapshot=store.save_inventory(node.name, document))
        if on_result:
            on_result(result)
        return result

    outcomes = await for_each_node(nodes, one, limit=limit)
    return [outcome if isinstance(outcome, CollectResult) else
            CollectResult(node.name, error=str(outcome), reason=getattr(outcome, "reason", "agent_failed"))
            for node, outcome in zip(nodes, outcomes)]
