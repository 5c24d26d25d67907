"""End-to-end fixtures: a real OpenSSH server on 127.0.0.1, and Node objects to reach it.

The `sshd` fixture starts `/usr/sbin/sshd -D -e` with its own host key, client key,
authorized_keys and known_hosts in a temporary directory, on a free port, once per test
session (`start_sshd` makes others, e.g. with forwarding refused). Nodes are built the way the controller builds them: a manifest file loaded
through `reconciler.loader.load`.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from reconciler.loader import load

SSHD = "/usr/sbin/sshd"
START_TIMEOUT = 15.0


@dataclass(frozen=True)
class SSHServer:
    host: str
    port: int
    user: str
    dir: Path
    client_key: Path
    known_hosts: Path
    host_key_line: str      # "ssh-ed25519 AAAA..." of the server
    process: subprocess.Popen

    def spec(self, **extra) -> dict:
        """A Node spec that reaches this server with keys and host keys checked."""
        return {"address": self.host, "port": self.port, "user": self.user,
                "identityFile": str(self.client_key),
                "knownHostsFile": str(self.known_hosts), "connectTimeoutSeconds": 5, **extra}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "plumb-e2e",
                    "-f", str(path)], check=True)
    kind, key = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {key}"


def _sshd_config(dir: Path, port: int) -> str:
    return "\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {dir / 'host_key'}",
        f"AuthorizedKeysFile {dir / 'authorized_keys'}", f"PidFile {dir / 'sshd.pid'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        "StrictModes no", "PermitRootLogin prohibit-password", "LogLevel ERROR",
        "MaxSessions 50", "MaxStartups 100:30:200", "",
    ])


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within {START_TIMEOUT:g}s")


@contextlib.contextmanager
def start_sshd(dir: Path, *extra_config: str) -> Iterator[SSHServer]:
    """An sshd on a free port with its own keys in `dir`; extra sshd_config lines appended."""
    if not os.path.exists(SSHD):
        pytest.skip("openssh-server is not installed (.ci/run installs it)")
    host_key_line = keygen(dir / "host_key")
    (dir / "authorized_keys").write_text(keygen(dir / "client_key") + "\n")
    port = free_port()
    (dir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key_line}\n")
    (dir / "sshd_config").write_text(_sshd_config(dir, port) + "".join(f"{line}\n" for line in extra_config))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = open(dir / "sshd.log", "wb")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(dir / "sshd_config")],
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process)
        yield SSHServer("127.0.0.1", port, getpass.getuser(), dir, dir / "client_key",
                        dir / "known_hosts", host_key_line, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory) -> Iterator[SSHServer]:
    with start_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def make_node(tmp_path):
    """make_node(name, **spec) -> reconciler.kinds.node.Node, loaded from a manifest."""
    counter = iter(range(1_000_000))

    def make(name: str, **spec):
        folder = tmp_path / f"manifests-{next(counter)}"
        folder.mkdir()
        manifest = {"apiVersion": "plumb.dev/v1", "kind": "Node",
                    "metadata": {"name": name}, "spec": spec}
        (folder / f"{name}.yaml").write_text(json.dumps(manifest))
        result = load(folder)
        assert result.ok, [str(d) for d in result.errors]
        (node,) = result.model.nodes
        return node

    return make


@pytest.fixture
def run():
    """run(coroutine) -> its result, on a fresh event loop (no pytest-asyncio needed)."""
    return asyncio.run
