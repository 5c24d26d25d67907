#!/usr/bin/env python3
"""Transport benchmark: what one inventory cycle costs over SSH, against the connection floor.

Starts ONE OpenSSH server on 127.0.0.1 (its own host key, client key, known_hosts and
config in a temporary directory, as tests/e2e/conftest.py does) and reaches it as N
separate Nodes (host-001, host-002, ...), each with its own managed directory of small
files and its own agent cache directory. For N = 1, 10, 50, 100 it measures

  (a) floor     transport_for(node) (the project's SSHTransport) + `true`, then close;
  (b) targeted  session_for(node) + AgentSession.collect(files=<its 20 files>,
                packages=<3 installed packages>, types=[AWS:File, AWS:Application]);
  (c) full      session_for(node) + AgentSession.collect() (every default type);

every pass with all N nodes through for_each_node (the engine's fan-out, its default
limit unless --limit). Then one LOCAL `python3 -m agent collect` (the cold first run and
the median of 5 warm runs) and the agent's peak resident memory.

Prints figures and asserts nothing. See bench/README.md for what each figure means.
Run from anywhere: `python3 bench/transport.py [--max-hosts N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Awaitable, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from reconciler import agentpack  # noqa: E402
from reconciler.kinds.node import Node  # noqa: E402
from reconciler.loader import load  # noqa: E402
from reconciler.transport import (DEFAULT_LIMIT, TransportError, for_each_node,  # noqa: E402
                                  session_for, transport_for)

SSHD = "/usr/sbin/sshd"
SIZES = (1, 10, 50, 100)
FILES_PER_HOST = 20
CANDIDATE_PACKAGES = ("bash", "coreutils", "openssl", "curl", "dpkg", "tar", "gzip", "rpm")
TARGETED_TYPES = ["AWS:File", "AWS:Application"]
LOCAL_RUNS = 5
PHASE_RUNS = 5
TARGET_LOCAL_MS = 300
TARGET_MEMORY_MB = 30
TARGET_RATIO = 1.5
TICK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 15.0
COLLECT_TIMEOUT = 300.0


# ---------------------------------------------------------------------------- the server

@dataclass
class Server:
    dir: Path
    port: int
    process: subprocess.Popen
    log: object

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "plumb-bench",
                    "-f", str(path)], check=True)
    kind, key = path.with_suffix(".pub").read_text().split()[:2]
    return f"{kind} {key}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sshd(dir: Path, login_profile: bool = False) -> Server:
    """One sshd on 127.0.0.1. Unless `login_profile`, its sessions get SHLVL=1, which makes
    the account's bash skip ~/.bashrc (bash sources it for sshd only at shell level 1): N
    aliases of one machine would otherwise run one account's profile N times at once, and
    a profile that takes a machine-wide lock (`pyenv rehash` does) serializes them all,
    which N separate nodes would not."""
    host_key = keygen(dir / "host_key")
    (dir / "authorized_keys").write_text(keygen(dir / "client_key") + "\n")
    port = free_port()
    (dir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
    (dir / "sshd_config").write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {dir / 'host_key'}",
        f"AuthorizedKeysFile {dir / 'authorized_keys'}", f"PidFile {dir / 'sshd.pid'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
        "StrictModes no", "PermitRootLogin prohibit-password", "LogLevel ERROR",
        "UseDNS no", "MaxSessions 100", "MaxStartups 1000:100:1000",
        *([] if login_profile else ["SetEnv SHLVL=1"]), "",
    ]))
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    log = open(dir / "sshd.log", "wb")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(dir / "sshd_config")],
                               stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            log.close()
            raise SystemExit(f"sshd exited with status {process.returncode}: "
                             f"{(dir / 'sshd.log').read_text().strip()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"sshd did not listen on 127.0.0.1:{port}")
            time.sleep(0.05)
    return Server(dir, port, process, log)


# ---------------------------------------------------------------------------- CPU accounting

def proc_stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    return text[text.rindex(")") + 2:].split()   # fields from 3 (state) on


def tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` plus every child it has reaped (cutime/cstime are recursive
    over waited-for descendants): for sshd's master, all finished connections, with their
    shells, agents and the commands those ran."""
    fields = proc_stat(pid)
    return sum(int(fields[index]) for index in (11, 12, 13, 14)) / TICK


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(proc_stat(int(entry))[1]) == pid:
                    found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def wait_idle(pid: int, timeout: float = 20.0) -> bool:
    """Wait until sshd's master has no connection process left (all reaped)."""
    deadline = time.monotonic() + timeout
    while children_of(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------- nodes

def make_nodes(root: Path, server: Server, count: int, python: str) -> list[Node]:
    manifests = root / "manifests"
    manifests.mkdir()
    for index in range(1, count + 1):
        name = f"host-{index:03d}"
        managed = root / "managed" / name
        managed.mkdir(parents=True)
        for number in range(FILES_PER_HOST):
            (managed / f"file-{number:02d}.conf").write_text(f"# {name} file {number}\nkey = {number}\n")
        spec = {"address": "127.0.0.1", "port": server.port, "user": getpass.getuser(),
                "identityFile": str(server.dir / "client_key"),
                "knownHostsFile": str(server.dir / "known_hosts"),
                "connectTimeoutSeconds": 60, "python": python}
        manifest = {"apiVersion": "plumb.dev/v1", "kind": "Node",
                    "metadata": {"name": name}, "spec": spec}
        (manifests / f"{name}.yaml").write_text(json.dumps(manifest))
    result = load(manifests)
    if not result.ok:
        raise SystemExit("; ".join(str(d) for d in result.errors))
    return sorted(result.model.nodes, key=lambda node: node.name)


def installed_packages(count: int = 3) -> list[str]:
    """Three packages that are installed here (the node is this machine)."""
    for tool, argv in (("dpkg-query", ["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n"]),
                       ("rpm", ["rpm", "-qa", "--queryformat", "%{NAME} ii\n"])):
        if shutil.which(tool):
            out = subprocess.run([*argv, *([] if tool == "rpm" else CANDIDATE_PACKAGES)],
                                 capture_output=True, text=True).stdout
            names = [line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["ii"]]
            preferred = [name for name in CANDIDATE_PACKAGES if name in names]
            return (preferred or names)[:count]
    return list(CANDIDATE_PACKAGES[:count])


# ---------------------------------------------------------------------------- passes

@dataclass
class Figures:
    label: str
    hosts: int
    wall: float
    controller_cpu: float
    node_cpu: float | None
    per_host: list[float]
    errors: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def percentile(self, q: float) -> float:
        ordered = sorted(self.per_host)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Bench:
    def __init__(self, root: Path, server: Server, nodes: list[Node], packages: list[str],
                 limit: int) -> None:
        self.root, self.server, self.nodes = root, server, nodes
        self.packages, self.limit = packages, limit
        self.sshd = server.process.pid
        # worked out before any pass, so that the passes time only the transport and agent
        self.caches = {node.name: str(root / "agent-cache" / node.name) for node in nodes}
        self.files = {node.name: sorted(str(path) for path in (root / "managed" / node.name).iterdir())
                      for node in nodes}
        self.agents: set[int] = set()   # pids of the nodes' resident agents
        self.modes: dict[str, int] = {}  # how sessions reached their agent: resident / session

    def node_cpu(self) -> float:
        """sshd's finished connections (everything they ran) plus the resident agents, which
        run detached from sshd (their own session, reparented), with what they ran."""
        total = tree_cpu(self.sshd)
        for pid in list(self.agents):
            try:
                total += tree_cpu(pid)
            except OSError:
                self.agents.discard(pid)   # ended: its CPU left the sum, so do not trust this pass
                raise
        return total

    def note_session(self, session) -> None:
        self.modes[session.mode or "?"] = self.modes.get(session.mode or "?", 0) + 1
        if session.mode == "resident":
            self.agents.add(int(session.info["pid"]))

    def stop_agents(self) -> None:
        for pid in self.agents:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    def cache_dir(self, node: Node) -> str:
        return self.caches[node.name]

    def files_of(self, node: Node) -> list[str]:
        return self.files[node.name]

    async def measure(self, label: str, nodes: list[Node],
                      fn: Callable[[Node, dict], Awaitable[None]]) -> Figures:
        idle = await asyncio.to_thread(wait_idle, self.sshd)
        node_before = self.node_cpu()
        cpu_before, wall_before = self_cpu(), time.perf_counter()
        per_host: dict[str, float] = {}
        extra: dict = {}

        async def timed(node: Node) -> None:
            started = time.perf_counter()
            await fn(node, extra)
            per_host[node.name] = time.perf_counter() - started

        results = await for_each_node(nodes, timed, limit=self.limit)
        wall, cpu = time.perf_counter() - wall_before, self_cpu() - cpu_before
        reaped = await asyncio.to_thread(wait_idle, self.sshd)
        # an agent started during the pass counts whole (it had used nothing before)
        # an agent started during the pass counts whole: it used nothing before
        node_cpu = self.node_cpu() - node_before if idle and reaped else None
        errors = [str(result) for result in results if isinstance(result, TransportError)]
        return Figures(label, len(nodes), wall, cpu, node_cpu, list(per_host.values()), errors, extra)

    async def floor(self, node: Node, extra: dict) -> None:
        transport = transport_for(node)
        try:
            result = await transport.run(["true"], timeout=COLLECT_TIMEOUT)
            if not result.ok:
                raise TransportError("command_failed", f"{node.name}: true exited {result.exit_status}")
        finally:
            await transport.close()

    async def targeted(self, node: Node, extra: dict) -> None:
        async with session_for(node, directory=self.cache_dir(node)) as session:
            document = await session.collect(files=self.files_of(node), packages=self.packages,
                                             types=TARGETED_TYPES, timeout=COLLECT_TIMEOUT)
            if session.uploaded:
                extra["uploads"] = extra.get("uploads", 0) + 1
            extra["python"] = session.info.get("python", "?")
            self.note_session(session)
            if session.fallback:
                extra["fallback"] = session.fallback
        check(node, document, TARGETED_TYPES, files=FILES_PER_HOST, packages=len(self.packages))

    async def targeted_new_process(self, node: Node, extra: dict) -> None:
        """(b) as the first session of a new controller process: nothing learned about where
        the node's resident agent listens, so one launcher command finds it first."""
        session_for(node, directory=self.cache_dir(node)).forget_resident()
        await self.targeted(node, extra)

    async def full(self, node: Node, extra: dict) -> None:
        async with session_for(node, directory=self.cache_dir(node)) as session:
            document = await session.collect(timeout=COLLECT_TIMEOUT)
            self.note_session(session)
            hwm = vm_hwm_kib(int(session.info.get("pid", 0)))   # the node is this machine
            if hwm:
                extra["hwm"] = max(extra.get("hwm", 0), hwm)
        unknown = {name for name, report in document["Types"].items() if report["Status"] != "ok"}
        extra.setdefault("unknown", set()).update(unknown)


    async def phases(self, node: Node) -> dict[str, float]:
        """Wall seconds of each step of one targeted collect, alone: the transport's connect,
        run (the session's probe), start (the agent process) and every request by op."""
        session = session_for(node, directory=self.cache_dir(node))
        spent: dict[str, float] = {}

        def timed(name, method):
            async def wrapper(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return await method(*args, **kwargs)
                finally:
                    key = name(*args) if callable(name) else name
                    spent[key] = spent.get(key, 0.0) + time.perf_counter() - started
            return wrapper

        transport = session.transport
        transport.run = timed("probe", transport.run)
        transport.put = timed("upload", transport.put)
        transport.start = timed("launcher", transport.start)
        transport.open_stream = timed("socket", transport.open_stream)
        session.request = timed(lambda op, *rest: op, session.request)
        started = time.perf_counter()
        await timed("connect", transport.connect)()
        async with session:
            await session.collect(files=self.files_of(node), packages=self.packages,
                                  types=TARGETED_TYPES, timeout=COLLECT_TIMEOUT)
            closing = time.perf_counter()
        spent["exit+close"] = time.perf_counter() - closing
        spent["total"] = time.perf_counter() - started
        return spent


def check(node: Node, document: dict, types: list[str], files: int, packages: int) -> None:
    """A pass only counts if it observed what it asked for."""
    reports = document.get("Types", {})
    for name in types:
        if reports.get(name, {}).get("Status") != "ok":
            raise TransportError("agent_failed", f"{node.name}: {name} is "
                                 f"{reports.get(name, {}).get('Reason', 'missing')}")
    got = (len(reports["AWS:File"]["Content"]), len(reports["AWS:Application"]["Content"]))
    if got != (files, packages):
        raise TransportError("agent_failed", f"{node.name}: got {got[0]} files and {got[1]} "
                             f"packages, expected {files} and {packages}")


# ---------------------------------------------------------------------------- local figures

def local_collect(python: str, apt_cache_dir: str) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-m", "agent", "collect", "--apt-cache-dir", apt_cache_dir],
                   cwd=REPO, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def local_figures(root: Path, python: str) -> dict:
    """Cold (first run, apt's binary cache not built yet) and warm (median of 5) local collects."""
    apt_cache = root / "apt-cache"            # fresh: the first run builds pkgcache.bin
    cold = local_collect(python, str(apt_cache))
    warm = [local_collect(python, str(apt_cache)) for _ in range(LOCAL_RUNS)]
    return {"python": python, "cold": cold, "warm": statistics.median(warm), "runs": warm}


def serve_memory(root: Path, python: str) -> dict:
    """Peak resident memory (VmHWM) of `python3 plumb-agent.pyz serve` over a full collect,
    and the largest command it ran (wait4's ru_maxrss of the whole tree)."""
    data, digest = agentpack.agent_zipapp()
    path = root / agentpack.agent_filename(digest)
    path.write_bytes(data)
    process = subprocess.Popen([python, str(path), "serve"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    process.stdin.write(b'{"id":1,"op":"collect","args":{}}\n')
    process.stdin.flush()
    answer = json.loads(process.stdout.readline())
    hwm = vm_hwm_kib(process.pid)
    process.stdin.write(b'{"id":2,"op":"exit"}\n')
    process.stdin.close()
    _, _, usage = os.wait4(process.pid, 0)
    process.returncode = 0
    process.stdout.close()
    types = answer.get("result", {}).get("Types", {})
    unknown = sorted(name for name, report in types.items() if report["Status"] != "ok")
    return {"hwm_kib": hwm, "tree_maxrss_kib": usage.ru_maxrss, "unknown": unknown}


# ---------------------------------------------------------------------------- report

def ms(seconds: float | None) -> str:
    return "   n/a" if seconds is None else f"{seconds * 1000:6.0f}"


def table(rows: list[Figures]) -> list[str]:
    head = (f"{'N':>4}  {'pass':<12} {'wall ms':>8} {'host p50':>9} {'host p95':>9} "
            f"{'ctl CPU ms':>10} {'ctl/host':>9} {'node CPU ms':>11} {'node/host':>10}  errors")
    lines = [head, "-" * len(head)]
    for row in rows:
        node = ms(row.node_cpu)
        node_each = ms(row.node_cpu / row.hosts) if row.node_cpu is not None else "   n/a"
        lines.append(
            f"{row.hosts:>4}  {row.label:<12} {ms(row.wall):>8} {ms(row.percentile(0.5)):>9} "
            f"{ms(row.percentile(0.95)):>9} {ms(row.controller_cpu):>10} "
            f"{ms(row.controller_cpu / row.hosts):>9} {node:>11} {node_each:>10}  {len(row.errors)}")
    return lines


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


async def run_bench(args: argparse.Namespace, root: Path, server: Server) -> None:
    sizes = [size for size in SIZES if size <= args.max_hosts] or [args.max_hosts]
    if args.max_hosts not in sizes and args.max_hosts > sizes[-1]:
        sizes.append(args.max_hosts)
    nodes = make_nodes(root, server, max(sizes), args.python)
    packages = installed_packages()
    bench = Bench(root, server, nodes, packages, args.limit)
    try:
        await _run_passes(args, bench, nodes, sizes, packages, server)
    finally:
        bench.stop_agents()


async def _run_passes(args, bench, nodes, sizes, packages, server) -> None:
    openssh = subprocess.run([SSHD, "-V"], capture_output=True, text=True).stderr.strip().split(",")[0]

    print(f"plumb transport bench: {os.cpu_count()} CPUs, {openssh}, asyncssh {version('asyncssh')}, "
          f"controller Python {platform.python_version()}, node python {args.python!r}, "
          f"for_each_node limit {args.limit}")
    print(f"one sshd on 127.0.0.1:{server.port} as {max(sizes)} Nodes; each host: "
          f"{FILES_PER_HOST} files, packages {' '.join(packages)}; login shell profile "
          f"{'sourced' if args.login_profile else 'skipped (SHLVL=1)'}")

    warm = await bench.measure("warm-up", nodes, bench.targeted)
    print(f"warm-up (not in the table): targeted collect on all {len(nodes)} hosts, "
          f"{warm.extra.get('uploads', 0)} agent uploads ({len(agentpack.agent_zipapp()[0])} "
          f"bytes each), {warm.wall:.1f} s, {len(warm.errors)} errors")
    for error in warm.errors[:3]:
        print("  ", error)

    steps = [await bench.phases(nodes[0]) for _ in range(PHASE_RUNS)]
    order = ["connect", "probe", "upload", "launcher", "socket", "hello", "collect", "exit", "exit+close", "total"]
    names = [name for name in order if name in steps[0]] + sorted(set(steps[0]) - set(order))
    print(f"agents: {', '.join(f'{count} sessions {mode}' for mode, count in sorted(bench.modes.items()))}"
          + (f" (per-session because: {warm.extra['fallback']})" if warm.extra.get("fallback") else ""))
    print(f"one targeted collect alone, by step (wall ms, median of {PHASE_RUNS}; the steady "
          f"state: the resident agent is running and its socket known): " + ", ".join(
              f"{name} {statistics.median(step.get(name, 0.0) for step in steps) * 1000:.0f}"
              for name in names))
    print(f"node agent: Python {warm.extra.get('python', '?')} (`{args.python}` as the node's "
          f"login shell finds it)")

    rows: list[Figures] = []
    hwm = 0
    unknown: set = set()
    for size in sizes:
        chosen = nodes[:size]
        for label, fn in (("(a) floor", bench.floor), ("(b) targeted", bench.targeted),
                          ("(b1) new proc", bench.targeted_new_process), ("(c) full", bench.full)):
            if label == "(c) full" and args.skip_full:
                continue
            row = await bench.measure(label, chosen, fn)
            rows.append(row)
            hwm = max(hwm, row.extra.get("hwm", 0))
            unknown |= row.extra.get("unknown", set())
            for error in row.errors[:2]:
                print(f"   {label} N={size}: {error}")
    print()
    print("\n".join(table(rows)))
    print()

    by = {(row.label, row.hosts): row for row in rows}
    top = max(sizes)
    floor, targeted = by.get(("(a) floor", top)), by.get(("(b) targeted", top))
    if floor and targeted:
        ratio = targeted.wall / floor.wall
        cpu_ratio = targeted.controller_cpu / floor.controller_cpu if floor.controller_cpu else float("nan")
        node_ratio = (targeted.node_cpu / floor.node_cpu
                      if targeted.node_cpu and floor.node_cpu else float("nan"))
        print(f"(b)/(a) at N={top}: wall {ratio:.2f}x (target <= {TARGET_RATIO}x: "
              f"{verdict(ratio <= TARGET_RATIO)}); controller CPU {cpu_ratio:.2f}x; "
              f"node-side CPU {node_ratio:.2f}x")
        first = by.get(("(b1) new proc", top))
        if first:
            print(f"(b1)/(a) at N={top} (the first session of a new controller process: one "
                  f"launcher command per node to find the socket): wall {first.wall / floor.wall:.2f}x")
    if hwm:
        print(f"agent peak RSS over SSH (max VmHWM of the serve processes during (c)): "
              f"{hwm / 1024:.1f} MB (target < {TARGET_MEMORY_MB} MB: {verdict(hwm / 1024 < TARGET_MEMORY_MB)})")
    if unknown:
        print(f"types unknown in (c) (expected on this machine): {', '.join(sorted(unknown))}")
    print("node CPU = CPU of sshd's finished connections with everything they ran (shell, launcher, "
          "per-session agent, its commands), from sshd's cutime/cstime, plus the resident agents' "
          "own CPU and their commands' (they run detached from sshd); RUSAGE_CHILDREN would see "
          "neither (they are not this process's children)")


def local_report(root: Path, args: argparse.Namespace) -> None:
    print()
    pythons = [shutil.which("python3") or "python3"]
    if os.path.realpath(sys.executable) != os.path.realpath(pythons[0]):
        pythons.append(sys.executable)
    for index, python in enumerate(pythons):
        shown = python if index == 0 else f"{python} (the interpreter itself)"
        figures = local_figures(root / f"local-{index}", python)
        print(f"local `{shown} -m agent collect` (all default types): cold first run "
              f"{figures['cold'] * 1000:.0f} ms, warm median of {LOCAL_RUNS} "
              f"{figures['warm'] * 1000:.0f} ms (target < {TARGET_LOCAL_MS} ms: "
              f"{verdict(figures['warm'] * 1000 < TARGET_LOCAL_MS)}); runs "
              + " ".join(f"{run * 1000:.0f}" for run in figures["runs"]))
    memory = serve_memory(root, pythons[0])
    if memory["hwm_kib"]:
        print(f"local agent peak RSS (VmHWM of `python3 plumb-agent.pyz serve` after a full collect): "
              f"{memory['hwm_kib'] / 1024:.1f} MB (target < {TARGET_MEMORY_MB} MB: "
              f"{verdict(memory['hwm_kib'] / 1024 < TARGET_MEMORY_MB)}); largest process of its "
              f"tree (a command it ran, e.g. apt-cache): {memory['tree_maxrss_kib'] / 1024:.1f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-hosts", type=int, default=max(SIZES), metavar="N",
                        help="largest number of hosts (runs 1, 10, 50, 100 up to N; default 100)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"for_each_node's limit on nodes in flight (default {DEFAULT_LIMIT}, the engine's)")
    parser.add_argument("--python", default="python3",
                        help="the Nodes' spec.python (default python3, as a manifest's default)")
    parser.add_argument("--login-profile", action="store_true",
                        help="let the account's shell profile run at every login (see start_sshd)")
    parser.add_argument("--skip-full", action="store_true", help="skip pass (c), the full collect")
    parser.add_argument("--skip-local", action="store_true", help="skip the local collect and memory figures")
    args = parser.parse_args()
    if args.max_hosts < 1 or args.limit < 1:
        parser.error("--max-hosts and --limit must be >= 1")
    if not os.path.exists(SSHD):
        raise SystemExit(f"{SSHD} not found: install openssh-server")

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    root = Path(tempfile.mkdtemp(prefix="plumb-bench-"))
    server = None
    try:
        (root / "sshd").mkdir()
        server = start_sshd(root / "sshd", args.login_profile)
        asyncio.run(run_bench(args, root, server))
        if not args.skip_local:
            local_report(root, args)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
