"""`plumb agent status|stop`: the resident agents running on nodes.

An SSH node keeps its agent running between sessions (docs/manifests.md#node). `status`
shows, per node, each resident agent found in its agent directory (any plumb version; the
one this controller ships is marked current); `stop` asks them to end once what they run
has finished. Neither uploads nor starts anything. Exits 1 when a node could not be asked.
"""

from __future__ import annotations

import asyncio
import sys

import click

from .cli import EXIT_ERROR, EXIT_OK, Options, _echo_json, main, shared_options
from .cli_ops import _model, _nodes, with_targets
from .engine.agents import NodeAgents, resident_agents
from .progress import Progress
from .termstyle import Style


@main.group("agent")
def agent_group():
    """The agents kept running on nodes between sessions."""


@agent_group.command("status")
@with_targets
@click.option("--limit", default=64, show_default=True, help="Nodes in flight at once.")
@shared_options
def agent_status(options: Options, targets, names, limit):
    """Which resident agents run on the nodes (all nodes unless --targets/--node)."""
    _agents(options, targets, names, limit, stop=False)


@agent_group.command("stop")
@with_targets
@click.option("--other-versions", is_flag=True,
              help="Only the agents of other plumb versions (left running by an upgrade).")
@click.option("--limit", default=64, show_default=True, help="Nodes in flight at once.")
@shared_options
def agent_stop(options: Options, targets, names, other_versions, limit):
    """Ask the nodes' resident agents to end once what they run has finished.

    The next session to a node starts its agent again (unless its Node says
    agent: {resident: false})."""
    _agents(options, targets, names, limit, stop=True, keep_current=other_versions)


def _agents(options: Options, targets, names, limit: int, stop: bool, keep_current: bool = False) -> None:
    nodes = _nodes(_model(options), targets, names)
    progress = Progress(len(nodes), "nodes", enabled=options.output == "text")
    style = Style.for_stream(sys.stderr)

    def on_result(report: NodeAgents) -> None:
        word = style.red("failed") if not report.ok else style.green("asked")
        progress.finished(f"{word} {report.node}", "failed" if not report.ok else "asked")

    for _ in nodes:
        progress.started()
    reports = asyncio.run(resident_agents(nodes, stop=stop, keep_current=keep_current, limit=limit,
                                          on_result=on_result))
    progress.close()
    failed = [report for report in reports if not report.ok]
    if options.output == "json":
        _echo_json({"format_version": "1.0", "nodes": [
            {"node": r.node, "ok": r.ok, "error": r.error or None, "reason": r.reason or None,
             "resident": r.resident, "forwarding_refused": r.refused,
             "agents": [a.as_json() for a in r.agents]} for r in reports]})
    else:
        for report in reports:
            for line in _lines(report, stop):
                click.echo(line)
        counted = sum(a.state == ("stopped" if stop else "running") for r in reports for a in r.agents)
        click.echo(f"Agents: {counted} resident {'stopped' if stop else 'running'} on "
                   f"{len(reports) - len(failed)} nodes, {len(failed)} failed.")
    sys.exit(EXIT_ERROR if failed else EXIT_OK)


def _lines(report: NodeAgents, stop: bool) -> list[str]:
    if report.error:
        return [f"{report.node}: {report.error}"]
    if not report.agents:
        why = "" if report.resident else " (spec.agent.resident is false: started per session)"
        if report.refused:
            why = (" (its SSH server refuses the channel to the agent's socket, noted on the node within "
                   "the hour: sessions start the agent per session; allow AllowStreamLocalForwarding, or "
                   "set agent: {resident: false})")
        return [f"{report.node}: no resident agent{why}"]
    lines = []
    for agent in report.agents:
        label = f"agent {agent.version_hash}" + (" (current)" if agent.current else " (another plumb version)") + (
            " as root via sudo" if agent.sudo else "")
        if agent.state == "failed":
            lines.append(f"{report.node}: {label}, pid {agent.pid}: not stopped: {agent.detail}")
            continue
        if agent.state == "stale":
            lines.append(f"{report.node}: {label}: nobody answers on its socket ({agent.detail})")
            continue
        verb = "stopping" if agent.state == "stopped" else "running"
        since = f", since {agent.started_at}" if agent.started_at else ""
        lines.append(f"{report.node}: {label} {verb}, pid {agent.pid}, Python {agent.python}{since}")
    return lines
