"""The `Node` kind: a managed machine, how to reach it, and its labels (what targets match).

The node's name doubles as its instance id for `InstanceIds` targets; its labels are the
tags matched by `tag:<key>` and `tag-key` targets.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterator

from ..diagnostics import Diagnostic
from .base import Manifest, Meta, Origin

KIND = "Node"
SCHEMA = "node"
AGENT_DIRECTORY = "~/.cache/plumb"   # on the node: $XDG_CACHE_HOME/plumb, else ~/.cache/plumb


class Transport(enum.Enum):
    SSH = "ssh"
    LOCAL = "local"


@dataclass(frozen=True)
class Node:
    meta: Meta
    origin: Origin
    transport: Transport = Transport.SSH
    address: str = ""
    port: int = 22
    user: str = ""
    identity_file: str = ""
    known_hosts_file: str = ""
    host_key_checking: bool = True
    connect_timeout_seconds: int = 15
    become: str = "none"
    python: str = "python3"
    description: str = ""
    resident_agent: bool = True
    agent_idle_timeout_seconds: int = 3600
    agent_directory: str = AGENT_DIRECTORY

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def labels(self):
        return self.meta.labels

    @property
    def host(self) -> str:
        """Where to connect: the address, or the node's name when none is given."""
        return self.address or self.name


def build(manifest: Manifest) -> Node:
    spec = manifest.spec
    return Node(
        meta=manifest.meta,
        origin=manifest.origin,
        transport=Transport(spec.get("transport", "ssh")),
        address=spec.get("address", ""),
        port=spec.get("port", 22),
        user=spec.get("user", ""),
        identity_file=spec.get("identityFile", ""),
        known_hosts_file=spec.get("knownHostsFile", ""),
        host_key_checking=spec.get("hostKeyChecking", True),
        connect_timeout_seconds=spec.get("connectTimeoutSeconds", 15),
        become=spec.get("become", "none"),
        python=spec.get("python", "python3"),
        description=spec.get("description", ""),
        # The local transport's agent follows the controller's environment (APT_CONFIG, PATH,
        # ...) only when started per session; a resident one keeps the environment it had.
        resident_agent=spec.get("agent", {}).get("resident", spec.get("transport", "ssh") == "ssh"),
        agent_idle_timeout_seconds=spec.get("agent", {}).get("idleTimeoutSeconds", 3600),
        agent_directory=spec.get("agent", {}).get("directory", AGENT_DIRECTORY),
    )


_SSH_ONLY = ("address", "port", "user", "identityFile", "knownHostsFile", "hostKeyChecking")


def check(node: Node) -> Iterator[Diagnostic]:
    """Checks beyond the schema: fields that mean nothing for the local transport."""
    if node.transport is Transport.LOCAL:
        spec = node.origin.source.values
        for field in _SSH_ONLY:
            if f"/spec/{field}" in spec:
                yield node.origin.diagnostic(
                    f"/spec/{field}", f"'{field}' has no meaning with transport: local",
                    key=True, hint="remove it, or use transport: ssh")
    if not node.host_key_checking:
        yield node.origin.diagnostic(
            "/spec/hostKeyChecking", "host key checking is disabled for this node",
            warning=True, code="insecure",
            hint="anyone on the network path can impersonate it; prefer a knownHostsFile")
