"""The plan as a pull-request comment in GitHub-flavoured Markdown (`plumb plan --markdown F`).

Called by the CLI; CI posts the file on the pull request. A title with the summary line,
call-outs for drift and unreachable nodes, a table per node (drift rows first), file diffs
in ```diff blocks inside <details>, and a footer with the git revision. The comment stays
under `limit` characters (GitHub's limit is 65,536): when the plan is longer, whole rows
and diffs are left out from the end and a note says how many. Values go through `redact`.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, replace

from reconciler.planmodel import Classification, NodePlan, Plan, ResourcePlan
from reconciler.render import redact

LIMIT = 65_000
_NOTE_RESERVE = 400  # room kept for the truncation note
_NAMES_SHOWN = 10  # nodes named in a call-out before "and N more"
_ORDER = {Classification.DRIFT: 0, Classification.DRIFT_AND_CHANGE: 0, Classification.PENDING_CHANGE: 1,
          Classification.BLOCKED: 2, Classification.UNKNOWN: 3, Classification.IN_SYNC: 4}
_LABEL = {Classification.DRIFT: "**drift**", Classification.DRIFT_AND_CHANGE: "**drift** + change",
          Classification.PENDING_CHANGE: "pending change", Classification.BLOCKED: "blocked",
          Classification.UNKNOWN: "unknown", Classification.IN_SYNC: "in sync"}


_NOUNS = ("resource", "file diff", "unreachable node", "manifest problem")  # what a chunk can hold


@dataclass(frozen=True)
class _Chunk:
    text: str
    item: str = ""  # one of _NOUNS when the chunk is one item the reader would miss; "" for headings


def render(plan: Plan, *, limit: int = LIMIT) -> str:
    """The comment, at most `limit` characters, ending in a newline."""
    head, footer = _head(plan), _footer(plan)
    nodes = sorted(plan.nodes, key=lambda n: n.node)
    chunks = [c for n in nodes if not _in_sync(n) for c in _node(n, plan)]
    chunks += _in_sync_line([n for n in nodes if _in_sync(n)]) + _diffs(plan) + _problems(plan)
    kept, left = _fit(chunks, limit - len(head) - len(footer) - _NOTE_RESERVE)
    return head + "".join(c.text for c in kept) + _truncation_note(left, limit) + footer


def _head(plan: Plan) -> str:
    summary = plan.summary()
    lines = [f"### plumb plan · {summary.line()}"]
    drifted = sorted({n.node for n in plan.nodes for r in n.resources if r.classification.drifted})
    if drifted:
        lines += ["", "> [!WARNING]", f"> **{_count(summary.drifted, 'resource')} changed outside plumb** "
                  f"(drift) on {_names(drifted)}. They are listed first; reconciling puts them back."]
    unreachable = sorted(n.node for n in plan.nodes if not n.reachable)
    if unreachable:
        lines += ["", "> [!CAUTION]", f"> **{_count(len(unreachable), 'node')} unreachable**: "
                  f"{_names(unreachable)}. Their resources could not be planned."]
    if not summary.has_changes and not plan.diagnostics:
        lines += ["", _quiet(plan)]
    return "\n".join(lines) + "\n"


def _quiet(plan: Plan) -> str:
    summary = plan.summary()
    if summary.unknown or summary.blocked or summary.unreachable:
        return "**No changes to apply now**, but not everything is known to match (see below)."
    return "**No changes.** Every node matches the manifests."


def _node(node: NodePlan, plan: Plan) -> list[_Chunk]:
    if not node.reachable:
        text = f"\n#### {_esc(node.node)}: unreachable\n\n> {_esc(node.error or 'no reason given')}\n"
        return [_Chunk(text, "unreachable node")]
    s = replace(plan, nodes=(node,)).summary()
    seen = f"inventory {node.inventory_time} · " if node.inventory_time else ""
    header = (f"\n#### {_esc(node.node)}\n\n<sub>{seen}{s.add} to add, {s.change} to change, {s.remove} to "
              f"remove, {s.drifted} drifted, {s.unknown} unknown, {s.blocked} blocked, {s.in_sync} in sync</sub>\n")
    shown = sorted((r for r in node.resources if r.classification is not Classification.IN_SYNC),
                   key=lambda r: (_ORDER[r.classification], r.address, r.association))
    table = "\n| | Resource | Classification | Reason | Source |\n|:-:|---|---|---|---|\n"
    return [_Chunk(header + table)] + [_Chunk(_row(r), "resource") for r in shown]


def _in_sync(node: NodePlan) -> bool:
    return node.reachable and all(r.classification is Classification.IN_SYNC for r in node.resources)


def _in_sync_line(nodes: list[NodePlan]) -> list[_Chunk]:
    """Nodes with nothing to report share one line, so a large quiet fleet stays short."""
    if not nodes:
        return []
    resources = sum(len(n.resources) for n in nodes)
    text = (f"\n**In sync** ({_count(resources, 'resource')} on {_count(len(nodes), 'node')}): "
            f"{_names([n.node for n in nodes])}.\n")
    return [_Chunk(text)]


def _row(r: ResourcePlan) -> str:
    symbol = "?" if r.classification is Classification.UNKNOWN else r.action.symbol.strip()
    label = _LABEL[r.classification]
    if r.classification is Classification.BLOCKED:
        label += f" by {_code(r.window or '(unnamed)')}" + (f" until {r.blocked_until}" if r.blocked_until else "")
    reason = [_esc(r.reason)] + [_code(redact.field_line(c, r)) for c in redact.shown_changes(r)]
    if r.triggers:
        reason.append("then runs " + ", ".join(_code(t) for t in r.triggers))
    if r.sensitive and redact.content(r):
        reason.append(_code(redact.content(r)))
    cells = [_code(symbol) if symbol else "", _code(r.address) + f" <sub>{_esc(r.association)}</sub>", label,
             "<br>".join(reason), _code(f"{r.source.file}:{r.source.line}")]
    return "| " + " | ".join(_cell(c) for c in cells) + " |\n"


def _diffs(plan: Plan) -> list[_Chunk]:
    chunks = []
    for node in sorted(plan.nodes, key=lambda n: n.node):
        for r in sorted(node.resources, key=lambda r: (_ORDER[r.classification], r.address, r.association)):
            if r.content_diff and not r.sensitive and r.classification is not Classification.IN_SYNC:
                chunks.append(_Chunk(_details(node.node, r, redact.content(r)), "file diff"))
    return ([_Chunk("\n#### File diffs\n")] + chunks) if chunks else []


def _details(node: str, r: ResourcePlan, diff: str) -> str:
    fence = "`" * max(3, _longest_run(diff, "`") + 1)
    title = f"<code>{html.escape(node)}</code> · <code>{html.escape(r.address)}</code>"
    return f"\n<details><summary>{title}</summary>\n\n{fence}diff\n{diff.rstrip()}\n{fence}\n\n</details>\n"


def _problems(plan: Plan) -> list[_Chunk]:
    if not plan.diagnostics:
        return []
    items = [_Chunk(f"- {_code(d)}\n", "manifest problem") for d in plan.diagnostics]
    return [_Chunk("\n#### Problems in the manifests\n\n")] + items


def _fit(chunks: list[_Chunk], budget: int) -> tuple[list[_Chunk], list[_Chunk]]:
    """Keep chunks in order while they fit; everything after the first that does not is left out."""
    used = 0
    for index, chunk in enumerate(chunks):
        used += len(chunk.text)
        if used > budget:
            return chunks[:index], chunks[index:]
    return chunks, []


def _truncation_note(left: list[_Chunk], limit: int) -> str:
    counts = Counter(c.item for c in left if c.item)
    parts = [_count(counts[noun], noun) for noun in _NOUNS if counts[noun]]
    if not parts:
        return ""
    return (f"\n> [!NOTE]\n> **Truncated:** {', '.join(parts)} left out to keep this comment under "
            f"{limit:,} characters. Run `plumb plan` (or `plumb plan --output json`) for the full plan.\n")


def _footer(plan: Plan) -> str:
    revision = f"<code>{html.escape(plan.git_revision)}</code>" if plan.git_revision else "a tree not in git"
    return (f"\n---\n<sub>plumb plan of <code>{html.escape(plan.manifests)}</code> at {revision} · "
            f"format {html.escape(plan.format_version)} · planned {html.escape(plan.created_at)}</sub>\n")


def _names(names: list[str]) -> str:
    shown = ", ".join(_code(n) for n in names[:_NAMES_SHOWN])
    return shown + (f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else "")


def _code(text: str) -> str:
    """An inline code span that survives backticks in the text."""
    text = text.replace("\n", " ")
    ticks = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def _esc(text: str) -> str:
    """Plain text for Markdown: no HTML, no accidental emphasis or links."""
    return re.sub(r"([\\`*_\[\]#])", r"\\\1", html.escape(text, quote=False)).replace("\n", " ")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _longest_run(text: str, char: str) -> int:
    return max((len(m) for m in re.findall(f"{re.escape(char)}+", text)), default=0)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
