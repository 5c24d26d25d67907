"""How the controller reaches nodes: pick a transport for a Node, open agent sessions,
and fan work out over many nodes at once.

The engine and CLI call `transport_for()` / `session_for()` and `for_each_node()`; the
pieces live in `base` (the interface and `TransportError`), `local`, `ssh` and `session`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Iterable, TypeVar

from ..kinds.node import Node
from ..kinds.node import Transport as TransportKind
from .base import CommandResult, Process, Reason, Transport, TransportError
from .local import LocalTransport
from .session import AgentSession

DEFAULT_LIMIT = 64

__all__ = [
    "AgentSession", "CommandResult", "Process", "Reason", "Transport", "TransportError",
    "DEFAULT_LIMIT", "for_each_node", "session_for", "transport_for",
]

T = TypeVar("T")


def transport_for(node: Node) -> Transport:
    """The transport a node's manifest asks for; nothing is connected yet."""
    if node.transport is TransportKind.LOCAL:
        return LocalTransport(node.name)
    from .ssh import SSHTransport  # asyncssh is imported only for SSH nodes

    return SSHTransport(
        node.name, node.host, port=node.port, user=node.user,
        identity_file=node.identity_file, known_hosts_file=node.known_hosts_file,
        host_key_checking=node.host_key_checking,
        connect_timeout=float(node.connect_timeout_seconds),
    )


def session_for(node: Node, **options: Any) -> AgentSession:
    """An unopened agent session on its own transport, closed along with the session."""
    options.setdefault("resident", node.resident_agent)
    options.setdefault("idle_timeout", node.agent_idle_timeout_seconds)
    options.setdefault("directory", node.agent_directory)
    return AgentSession(transport_for(node), python=node.python, become=node.become,
                        close_transport=True, **options)


async def for_each_node(nodes: Iterable[Node], fn: Callable[[Node], Awaitable[T]],
                        limit: int = DEFAULT_LIMIT) -> list[T | TransportError]:
    """Run `fn(node)` for every node, at most `limit` at once.

    Returns, in the order of `nodes`, what `fn` returned or the TransportError it raised
    for each (`zip(nodes, results)` pairs them up); one node's failure never stops the
    others. Any other exception is a bug: it is raised, but only once every node has
    finished, so no node's work is cut off halfway.
    """
    gate = asyncio.Semaphore(limit)

    async def one(node: Node) -> T | TransportError:
        async with gate:
            try:
                return await fn(node)
            except TransportError as err:
                return err

    results = await asyncio.gather(*(one(node) for node in nodes), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, TransportError):
            raise result
    return results
