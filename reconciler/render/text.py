"""The human view of a Plan, as `plumb plan` prints it on a terminal (Terraform-like).

Called by the CLI, which decides `color` (from NO_COLOR and isatty) and `verbose`; this
module only turns a Plan into a string. Per node: a header, then the resources changed
outside plumb (drift), the planned changes, the blocked and the unknown ones (with
`verbose`, also the in-sync ones with their reasons), and an Ansible-like recap line.
The last line is always `Summary.line()`. Values and diffs go through `redact`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from reconciler.planmodel import Action, Classification, NodePlan, Plan, ResourcePlan, Summary
from reconciler.render import redact

_ANSI = {"green": "32", "yellow": "33", "red": "31", "magenta": "35", "bold": "1", "dim": "2"}
_ACTION_COLOR = {Action.CREATE: "green", Action.UPDATE: "yellow", Action.DELETE: "red"}
_Paint = Callable[[str, str], str]

# (title, colour of the title, which resources): the order in which a node's groups are shown
_SECTIONS = (
    ("Changed outside plumb (drift):", "magenta", lambda r: r.classification.drifted),
    ("Planned changes:", "bold", lambda r: r.classification is Classification.PENDING_CHANGE),
    ("Blocked (a change exists but may not be applied now):", "bold",
     lambda r: r.classification is Classification.BLOCKED),
    ("Unknown (could not be observed; plumb does not guess):", "bold",
     lambda r: r.classification is Classification.UNKNOWN),
)
_IN_SYNC = ("In sync:", "dim", lambda r: r.classification is Classification.IN_SYNC)


def render(plan: Plan, *, color: bool = False, verbose: bool = False) -> str:
    """The whole plan as text ending in a newline; its last line is `Summary.line()`."""
    paint = _painter(color)
    summary = plan.summary()
    blocks = [_heading(plan)]
    blocks += [_node(n, plan, paint, verbose) for n in sorted(plan.nodes, key=lambda n: n.node)]
    if plan.diagnostics:
        blocks.append("\n".join(["Problems in the manifests:"]
                                + [f"  {paint('red', 'Error:')} {d}" for d in plan.diagnostics]))
    verdict = _verdict(plan, summary)
    if verdict:
        blocks.append(verdict)
    return "\n\n".join(blocks + [summary.line()]) + "\n"


def _painter(color: bool) -> _Paint:
    if not color:
        return lambda name, text: text
    return lambda name, text: f"\033[{_ANSI[name]}m{text}\033[0m"


def _heading(plan: Plan) -> str:
    revision = f"git {plan.git_revision}" if plan.git_revision else "not in git"
    return f"plumb plan of {plan.manifests or 'manifests'} ({revision}), planned {plan.created_at}"


def _node(node: NodePlan, plan: Plan, paint: _Paint, verbose: bool) -> str:
    if not node.reachable:
        lines = [paint("bold", f"node {node.node}") + " " + paint("red", "(unreachable)"),
                 f"  error: {redact.printable(node.error or 'no reason given')}"]
        lines += _sections(node, paint, verbose)
        return "\n".join(lines + [f"  {node.node}: unreachable"])
    seen = f" (inventory {node.inventory_time})" if node.inventory_time else ""
    lines = [paint("bold", f"node {node.node}") + seen]
    groups = _sections(node, paint, verbose)
    in_sync = sum(r.classification is Classification.IN_SYNC for r in node.resources)
    lines += groups or [f"  No changes: {_count(in_sync, 'resource')} in sync."]
    return "\n".join(lines + [_recap(node, plan)])


def _sections(node: NodePlan, paint: _Paint, verbose: bool) -> list[str]:
    lines = []
    for title, tint, wanted in _SECTIONS + ((_IN_SYNC,) if verbose else ()):
        chosen = sorted((r for r in node.resources if wanted(r)), key=lambda r: (r.address, r.association))
        if chosen:
            lines.append("  " + paint(tint, title))
            lines += [line for r in chosen for line in _resource(r, paint)]
    return lines


def _resource(r: ResourcePlan, paint: _Paint) -> list[str]:
    where = f"{r.source.file}:{r.source.line}"
    lines = [f"  {_symbol(r, paint)} {r.address}  ({r.association}, {where})"]
    details = [_blocked(r)] if r.classification is Classification.BLOCKED else []
    details.append(redact.printable(r.reason or "no reason given"))
    details += [redact.printable(redact.field_line(c, r)) for c in redact.shown_changes(r)]
    if r.triggers:
        details.append("then runs: " + ", ".join(r.triggers))
    lines += ["      " + d for d in details]
    diff = redact.content(r)
    lines += ["        " + _diff_line(line, paint) for line in diff.splitlines()]
    return lines


def _symbol(r: ResourcePlan, paint: _Paint) -> str:
    if r.classification is Classification.UNKNOWN:
        return "?"
    tint = _ACTION_COLOR.get(r.action)
    return paint(tint, r.action.symbol) if tint else r.action.symbol


def _blocked(r: ResourcePlan) -> str:
    text = f"blocked by window {r.window}" if r.window else "blocked"
    return text + (f" until {r.blocked_until}" if r.blocked_until else "")


def _diff_line(line: str, paint: _Paint) -> str:
    line = redact.printable(line)
    if line.startswith(("+++", "---")):
        return paint("bold", line)
    if line.startswith("+"):
        return paint("green", line)
    if line.startswith("-"):
        return paint("red", line)
    return paint("dim", line) if line.startswith("@@") else line


def _recap(node: NodePlan, plan: Plan) -> str:
    s = replace(plan, nodes=(node,)).summary()
    return (f"  {node.node}: {s.add} to add, {s.change} to change, {s.remove} to remove, "
            f"{s.drifted} drifted, {s.unknown} unknown, {s.blocked} blocked")


def _verdict(plan: Plan, summary: Summary) -> str:
    """Say plainly when there is nothing to do, and why "nothing" may not mean "all in sync"."""
    if summary.has_changes or plan.diagnostics:
        return ""
    if not plan.nodes:
        return "No changes. No node is targeted by the manifests."
    caveats = [_count(summary.blocked, "change") + " blocked by a maintenance window" if summary.blocked else "",
               _count(summary.unknown, "resource") + " could not be observed" if summary.unknown else "",
               _count(summary.unreachable, "node") + " unreachable" if summary.unreachable else ""]
    caveats = [c for c in caveats if c]
    if not caveats:
        return "No changes. Every node matches the manifests."
    return "No changes to apply now, but not everything is known to match: " + "; ".join(caveats) + "."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
