"""The machine view of a Plan (`plumb plan --output json`), shaped like Terraform's JSON plan.

Called by the CLI. Top level: `format_version`, `created_at`, `manifests`,
`git_revision`, `summary`, then `resource_changes` (every resource that will change) and
`resource_drift` (every drifted resource) as separate arrays, `nodes` (every resource of
every node, in-sync ones with their reasons) and `diagnostics`. Consumers ignore unknown
fields; a minor `format_version` bump only adds fields. Output is deterministic: keys in
a fixed order, nodes and resources sorted by name and address. Values go through `redact`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import Any

from reconciler.planmodel import NodePlan, Plan, ResourcePlan
from reconciler.render import redact


def render(plan: Plan) -> str:
    """The plan as an indented JSON document ending in a newline."""
    return json.dumps(document(plan), indent=2, ensure_ascii=False) + "\n"


def document(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON data (already redacted)."""
    nodes = sorted(plan.nodes, key=lambda n: n.node)
    pairs = [(n, r) for n in nodes for r in _sorted(n.resources)]
    return {
        "format_version": plan.format_version,
        "created_at": plan.created_at,
        "manifests": plan.manifests,
        "git_revision": plan.git_revision,
        "summary": asdict(plan.summary()),
        "resource_changes": [_resource(r, n.node) for n, r in pairs if r.will_change],
        "resource_drift": [_resource(r, n.node) for n, r in pairs if r.classification.drifted],
        "nodes": [_node(n, plan) for n in nodes],
        "diagnostics": list(plan.diagnostics),
    }


def _node(node: NodePlan, plan: Plan) -> dict[str, Any]:
    return {
        "node": node.node,
        "reachable": node.reachable,
        "error": node.error,
        "inventory_fingerprint": node.inventory_fingerprint,
        "inventory_time": node.inventory_time,
        "counts": asdict(replace(plan, nodes=(node,)).summary()),
        "resources": [_resource(r) for r in _sorted(node.resources)],
    }


def _resource(r: ResourcePlan, node: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"node": node} if node is not None else {}
    item.update({
        "address": r.address,
        "type": r.type,
        "id": r.id,
        "association": r.association,
        "source": asdict(r.source),
        "action": r.action.value,
        "classification": r.classification.value,
        "reason": r.reason,
        "changes": [redact.change_record(c, r) for c in sorted(r.changes, key=lambda c: c.field)],
        "content_diff": redact.content(r),
        "sensitive": r.sensitive,
        "severity": r.severity,
        "blocked_until": r.blocked_until,
        "window": r.window,
        "triggers": list(r.triggers),
    })
    return item


def _sorted(resources) -> list[ResourcePlan]:
    return sorted(resources, key=lambda r: (r.address, r.association))
