"""The resident agents on nodes: which are running, and stopping them (`plumb agent`).

For each node, the agent directory is listed for resident agents' sockets (of any plumb
version: an upgrade leaves the old one running until its idle timeout), each is asked for
its hello and, when stopping, to shut down once what it runs has finished. Nothing is
uploaded or started. Many nodes at once, bounded; one node's failure never stops the others.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .. import agentpack
from ..kinds.node import Node
from ..transport import AgentSession, Reason, TransportError, for_each_node, session_for

_SOCKET = re.compile(r"^plumb-agent-([0-9a-f]{16})(-sudo)?\.sock$")


@dataclass(frozen=True)
class ResidentAgent:
    socket: str
    version_hash: str          # the agent's content hash (16 hex), from its socket's name
    current: bool              # the agent this controller ships
    sudo: bool
    state: str                 # "running", "stopped" (by this request), "failed" (would not
                               # stop: `detail` says why) or "stale" (nobody listens)
    pid: int = 0
    agent_version: str = ""
    python: str = ""
    started_at: str = ""
    detail: str = ""

    def as_json(self) -> dict:
        return {"socket": self.socket, "version_hash": self.version_hash, "current": self.current,
                "sudo": self.sudo, "state": self.state, "pid": self.pid or None,
                "agent_version": self.agent_version or None, "python": self.python or None,
                "started_at": self.started_at or None, "detail": self.detail or None}


@dataclass
class NodeAgents:
    node: str
    agents: list[ResidentAgent] = field(default_factory=list)
    error: str = ""
    reason: str = ""
    resident: bool = True      # the node's spec.agent.resident
    refused: bool = False      # the node notes that its SSH server refuses the channel to the socket

    @property
    def ok(self) -> bool:
        return not self.error and all(agent.state != "failed" for agent in self.agents)


async def resident_agents(nodes: Sequence[Node], *, stop: bool = False, keep_current: bool = False,
                          limit: int = 64,
                          on_result: Callable[[NodeAgents], None] | None = None,
                          directory: str | None = None) -> list[NodeAgents]:
    """Each node's resident agents; with `stop`, each running one is asked to shut down
    (with `keep_current`, only those of other plumb versions).
    `directory`: the agent directory on the nodes (default: each node's own)."""
    current = agentpack.agent_filename(agentpack.agent_zipapp()[1])[len("plumb-agent-"):-len(".pyz")]

    async def one(node: Node) -> NodeAgents:
        session = session_for(node, **({"directory": directory} if directory else {}))
        report = NodeAgents(node.name, resident=node.resident_agent)
        try:
            sockets, report.refused = await session.resident_sockets()
            for path in sockets:
                report.agents.append(await _one_agent(session, path, current, stop, keep_current))
        finally:
            await session.close()
        if on_result is not None:
            on_result(report)
        return report

    results = await for_each_node(nodes, one, limit=limit)
    reports = []
    for node, result in zip(nodes, results):
        if isinstance(result, TransportError):
            report = NodeAgents(node.name, error=str(result), reason=result.reason.value,
                                resident=node.resident_agent)
            if on_result is not None:
                on_result(report)
            reports.append(report)
        else:
            reports.append(result)
    return reports


async def _one_agent(owner: AgentSession, path: str, current: str, stop: bool,
                     keep_current: bool) -> ResidentAgent:
    match = _SOCKET.match(posixpath.basename(path))
    version, sudo = (match.group(1), bool(match.group(2))) if match else ("?", False)
    stop = stop and not (keep_current and version == current)
    base = {"socket": path, "version_hash": version, "current": version == current, "sudo": sudo}
    session = AgentSession(owner.transport)   # shares the node's connection
    try:
        info = await session.attach(path)
    except TransportError as err:
        if err.reason not in (Reason.COMMAND_FAILED, Reason.AGENT_FAILED):
            raise
        await session.close()   # nobody listens, or the agent ended as we asked (stopping)
        return ResidentAgent(state="stale", detail=err.message, **base)
    state, detail = "stopped" if stop else "running", ""
    try:
        if stop:
            await session.shutdown()
    except TransportError as err:
        if err.reason is not Reason.AGENT_FAILED:
            raise
        state, detail = "failed", err.message   # e.g. an agent too old to know `shutdown`
    finally:
        await session.close()
    return ResidentAgent(state=state, detail=detail, pid=int(info.get("pid", 0)),
                         agent_version=str(info.get("agentVersion", "")),
                         python=str(info.get("python", "")),
                         started_at=str(info.get("startedAt", "")), **base)
