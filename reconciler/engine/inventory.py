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
from ..references import find_parameter_references, walk_strings
from ..targets import matches
from ..transport import TransportError, for_each_node, session_for


@dataclass(frozen=True)
class CollectRequest:
    types: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    sysctl: tuple[str, ...] = ()
    content_paths: tuple[str, ...] = ()  # managed text files whose content plan may diff
    refresh_package_lists: bool = False  # apt-get update / dnf makecache first (plumb patch scan --refresh)

    def as_args(self) -> dict:
        args: dict = {}
        if self.refresh_package_lists:
            args["refreshPackageLists"] = True
        if self.content_paths:
            args["contentPaths"] = list(self.content_paths)
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
    """Default types plus what this node's associations manage (paths and sysctl keys).

    The text of managed files comes back too, for the plan's unified diffs, except for
    files that may hold a secret: their content never leaves the node.
    """
    files: list[str] = []
    sysctl: list[str] = []
    content: list[str] = []
    for assoc in model.associations:
        if not matches(assoc.targets, node.name, node.labels):
            continue
        secret_params = any(ref.secure for _, text in walk_strings(assoc.parameters)
                            for ref in find_parameter_references(text))
        for resource in assoc.resources:
            if resource.type in ("files", "directories") and resource.id not in files:
                files.append(resource.id)
                if resource.type == "files" and not secret_params and not _may_hold_secret(model, resource):
                    content.append(resource.id)
            elif resource.type == "sysctl" and resource.id not in sysctl:
                sysctl.append(resource.id)
    return CollectRequest(tuple(types), tuple(files), tuple(sysctl), tuple(content))


def _may_hold_secret(model: Model, resource) -> bool:
    texts = [v for _, v in walk_strings(resource.desired)]
    if "template" in resource.desired:
        texts.append(model.assets.get(resource.desired["template"], b"").decode("utf-8", "replace"))
    return any(ref.secure for text in texts for ref in find_parameter_references(text))


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
