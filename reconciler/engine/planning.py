"""Planning at the edge: observe the nodes, read the store, then call the pure planner.

Observe first (one agent session per node, bounded concurrency), then compile and plan
each node with the last-applied state from the store and the windows' state at `now`.
With `offline=True` nothing is contacted: the stored inventory is used and its age shown.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Sequence

from .. import windows as window_state
from ..compile import Compiler, Resolver, facts_from_inventory, model_resolver
from ..kinds.node import Node
from ..model import Model
from ..plan import LastApplied, Planner, unreachable
from ..planmodel import FORMAT_VERSION, NodePlan, Plan
from ..store import Store
from ..transport import TransportError, for_each_node
from . import gitinfo
from .inventory import collect_one, request_for
from .paramsync import ParameterContext
from .patches import with_patches


def windows_at(model: Model, now: datetime, ignore: bool = False) -> dict:
    if ignore:
        return {}
    return {w.name: window_state.state(w, now) for w in model.maintenance_windows}


async def observe(model: Model, nodes: Sequence[Node], store: Store, *, offline: bool, limit: int = 64,
                  refresh_package_lists: bool = False) -> dict:
    """node name → (inventory document | None, error). Fresh inventory is stored as a snapshot."""
    if offline:
        snapshots = store.latest_inventories(node.name for node in nodes)
        found = {}
        for node in nodes:
            snapshot = snapshots.get(node.name)
            found[node.name] = (snapshot, "" if snapshot else "no stored inventory (offline plan)")
        return found

    async def one(node: Node):
        request = request_for(model, node)
        if refresh_package_lists:
            request = replace(request, refresh_package_lists=True)
        document = await collect_one(node, request)
        return store.save_inventory(node.name, document)

    results = await for_each_node(nodes, one, limit=limit)
    return {node.name: (r, "") if not isinstance(r, TransportError) else (None, str(r))
            for node, r in zip(nodes, results)}


def last_applied_of(store: Store, node: str) -> dict[str, LastApplied]:
    """The node's last-applied records as the planner reads them: the store's AppliedRecords have
    LastApplied's fields and are passed as they are (at fleet scale a copy of each costs more than
    the plan itself)."""
    return store.last_applied(node)


_CHUNK = 500  # nodes whose last-applied records are read from the store in one query


def build_plan(model: Model, nodes: Sequence[Node], observed: dict, store: Store, *, now: datetime,
               resolver: Resolver | None = None, ignore_windows: bool = False,
               parameters: NodePlan | None = None) -> Plan:
    """The plan of these nodes; `parameters` (the Parameter Store's own plan, see
    engine.paramsync) comes first, as reconcile writes parameters before touching nodes."""
    nodes = list(nodes)
    compiler = Compiler(model, resolver or model_resolver(model))
    planner = Planner(shared=compiler.shares)
    windows = windows_at(model, now, ignore_windows)
    node_plans: list[NodePlan] = [parameters] if parameters is not None else []
    problems: list[str] = []
    for start in range(0, len(nodes), _CHUNK):
        chunk = nodes[start:start + _CHUNK]
        applied = store.last_applied_by_node(n.name for n in chunk if observed[n.name][0] is not None)
        for node in chunk:
            snapshot, error = observed[node.name]
            if snapshot is None:
                node_plans.append(unreachable(node.name, error))
                continue
            desired = compiler.compile(node, facts_from_inventory(snapshot.document))
            problems.extend(d.render() for d in desired.diagnostics)
            planned = planner.plan_node(desired, snapshot.document, applied[node.name], windows,
                                        fingerprint=snapshot.fingerprint, inventory_time=snapshot.captured_at)
            node_plans.append(with_patches(model, node, planned, snapshot.document, store, now, windows))
    return Plan(FORMAT_VERSION, now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), model.root,
                gitinfo.revision(model.root), tuple(node_plans), tuple(problems))


def plan_everything(model: Model, nodes: Sequence[Node], observed: dict, store: Store, *, now: datetime,
                    key_dir=None, ignore_windows: bool = False):
    """(plan, ParameterContext): the Parameter Store's plan first, then every node, with
    `{{ssm:...}}` resolved as reconcile will see it (git's parameters written first)."""
    context = ParameterContext(model, store, key_dir)
    parameters = context.plan(now) if model.parameters else None
    plan = build_plan(model, nodes, observed, store, now=now, resolver=context.resolver(),
                      ignore_windows=ignore_windows, parameters=parameters)
    if context.problems:
        plan = replace(plan, diagnostics=tuple(context.problems) + plan.diagnostics)
    return plan, context
