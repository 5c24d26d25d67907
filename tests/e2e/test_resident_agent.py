"""The resident agent over a real sshd: started once, reached through a direct-streamlocal
channel afterwards, replaced when stale, given up for a per-session agent where the server
refuses forwarding, and a connection cut mid-document still ends as connection_lost."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
import uuid

import pytest

from procs import alive, children_of, pids_where, resident_agents
from e2e.conftest import start_sshd
from reconciler.engine.agents import resident_agents as agents_on_nodes
from reconciler.transport import session_for, transport_for
from reconciler.transport import session as session_module
from reconciler.transport.session import AgentSession

DOCUMENT = {"schemaVersion": "2.2", "description": "resident", "mainSteps": [
    {"action": "aws:runShellScript", "name": "hi", "inputs": {"runCommand": ["echo hi"]}}]}
DEADLINE = 30.0


@pytest.fixture
def cache():
    """A short agent directory (a Unix socket path has a 107-byte limit)."""
    path = tempfile.mkdtemp(prefix="pr-", dir="/tmp")
    yield path
    for pid in resident_agents():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if path.encode() in handle.read():
                    os.kill(pid, signal.SIGTERM)
        except OSError:
            pass


@pytest.fixture(autouse=True)
def fresh_memo():
    """Each test starts as a new controller process would: nothing learned yet."""
    session_module._RESIDENT.clear()
    yield
    session_module._RESIDENT.clear()


def _wait_until(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {DEADLINE:g}s: {what}")


async def _open(node, cache, **options):
    agent = session_for(node, directory=cache, **options)
    await agent.open()
    return agent


def test_an_ssh_node_gets_a_resident_agent_and_later_sessions_run_no_command(
        sshd, make_node, run, cache):
    node = make_node("web-1", **sshd.spec())
    commands = []

    async def scenario():
        first = await _open(node, cache)
        inventory = await first.collect(types=["AWS:File"], files=["/etc/hostname"])
        result = await first.execute({"document": DOCUMENT, "parameters": {}})
        await first.close()
        second = session_for(node, directory=cache)
        started = second.transport.start
        second.transport.start = lambda argv: commands.append(argv) or started(argv)
        await second.open()
        again = await second.collect(types=["AWS:File"], files=["/etc/hostname"])
        await second.close()
        return first, second, inventory, again, result

    first, second, inventory, again, result = run(scenario())
    assert (first.mode, second.mode) == ("resident", "resident")
    assert first.info["resident"] is True and first.info["pid"] == second.info["pid"]
    assert commands == [], "the second session connects to the socket: no command at all"
    assert result["status"] == "Success"
    assert inventory["Types"]["AWS:File"]["Content"] == again["Types"]["AWS:File"]["Content"]
    assert alive(first.info["pid"]), "the agent outlives its sessions"
    socket_path = os.path.join(cache, os.path.basename(first.agent_path)[:-4] + ".sock")
    assert oct(os.stat(socket_path).st_mode & 0o777) == "0o600"


def test_the_resident_agent_answers_as_the_per_session_agent_does(sshd, make_node, run, cache):
    node = make_node("web-1", **sshd.spec())
    ask = {"types": ["AWS:File", "AWS:Application", "AWS:InstanceInformation"],
           "files": ["/etc/hostname", "/etc/passwd"], "packages": ["bash", "coreutils"]}

    async def both():
        answers = []
        for resident in (True, False):
            agent = await _open(node, cache, resident=resident)
            answers.append((agent.mode, await agent.collect(**ask)))
            await agent.close()
        return answers

    (mode_a, a), (mode_b, b) = run(both())
    assert (mode_a, mode_b) == ("resident", "session")
    for kind in ("AWS:File", "AWS:Application"):
        assert a["Types"][kind] == b["Types"][kind]
    assert a["Types"]["AWS:InstanceInformation"]["Status"] == "ok"


def test_a_stale_socket_gets_a_new_agent(sshd, make_node, run, cache):
    node = make_node("web-1", **sshd.spec())

    async def pid_of_new_session():
        agent = await _open(node, cache)
        pid = agent.info["pid"]
        await agent.close()
        return pid

    old = run(pid_of_new_session())
    os.kill(old, signal.SIGKILL)          # its socket file stays behind
    _wait_until(lambda: not alive(old), "the killed agent is gone")
    new = run(pid_of_new_session())       # the remembered socket refuses: relaunch, restart
    assert new != old and alive(new)


def test_a_server_that_refuses_forwarding_gets_the_per_session_agent(
        make_node, run, cache, tmp_path_factory):
    with start_sshd(tmp_path_factory.mktemp("sshd-nofwd"), "AllowStreamLocalForwarding no") as server:
        node = make_node("locked-1", **server.spec())

        async def session(fresh: bool):
            if fresh:    # as a new controller process: nothing remembered in memory
                session_module._RESIDENT.clear()
            agent = session_for(node, directory=cache)
            commands = []
            started = agent.transport.start
            agent.transport.start = lambda argv: commands.append(argv[-2]) or started(argv)
            await agent.open()
            inventory = await agent.collect(types=["AWS:File"], files=["/etc/hostname"])
            await agent.close()
            return agent.mode, agent.fallback, inventory["Types"]["AWS:File"]["Status"], commands

        first = run(session(fresh=True))
        same_process = run(session(fresh=False))
        new_process = run(session(fresh=True))
        _wait_until(lambda: not [n for n in os.listdir(cache) if n.endswith(".sock")],
                    "the resident agent nobody can reach ends")
        (report,) = run(agents_on_nodes([node], directory=cache))
    mode, why, status, commands = first
    assert (mode, status) == ("session", "ok")
    assert "refuses the channel to the resident agent's socket" in why
    # upload (the first launcher finds no agent), start the resident agent, learn the refusal:
    # the launcher that notes it starts the per-session agent
    assert commands == ["resident", "resident", "refused"]
    assert same_process[0] == "session" and same_process[3] == ["serve"], "remembered in this process"
    assert new_process[0] == "session" and "noted on the node" in new_process[1]
    assert new_process[3] == ["resident"], "one command, as a per-session agent always took"
    assert report.ok and report.refused and report.agents == [], "plumb agent status says why"


def test_a_connection_cut_mid_document_is_lost_and_the_step_is_stopped(
        sshd, make_node, run, cache):
    marker = f"plumb-e2e-{uuid.uuid4().hex}"
    document = dict(DOCUMENT, mainSteps=[{
        "action": "aws:runShellScript", "name": "wait",
        "inputs": {"runCommand": ["sleep 300"]}}])
    node = make_node("web-1", **sshd.spec())

    async def scenario():
        warm = await _open(node, cache)   # the resident agent runs before the cut session
        await warm.close()
        agent = await _open(node, cache)
        task = asyncio.ensure_future(agent.execute(
            {"document": document, "parameters": {}, "workDir": os.path.join(cache, marker)},   # on the step's command line
            timeout=60))
        await _until_async(lambda: _pids_with(marker), "the step is running")
        for pid in children_of(sshd.process.pid):   # this session's connection is the only one
            os.kill(pid, signal.SIGKILL)
        try:
            await task
        except Exception as err:  # noqa: BLE001 - the error is what we look at
            return err, agent.info["pid"]
        raise AssertionError("the document finished although its connection was cut")

    error, agent_pid = run(scenario())
    assert error.reason.value == "connection_lost"
    assert str(error).startswith("web-1 (127.0.0.1:")
    _wait_until(lambda: not _pids_with(marker), "the cancelled step's process is killed")
    assert alive(agent_pid), "the resident agent itself carries on"


def test_idle_agent_ends_by_itself(sshd, make_node, run, cache):
    node = make_node("web-1", **sshd.spec())

    async def once():
        agent = AgentSession(transport_for(node), directory=cache, resident=True,
                             idle_timeout=1, close_transport=True)
        await agent.open()
        pid = agent.info["pid"]
        await agent.close()
        return pid

    pid = run(once())
    _wait_until(lambda: not alive(pid), "the idle agent exits")
    assert not [name for name in os.listdir(cache) if name.endswith(".sock")]


# ---------------------------------------------------------------- helpers

def _pids_with(marker: str) -> list[int]:
    return pids_where(lambda argv: any(marker.encode() in arg for arg in argv))


async def _until_async(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {DEADLINE:g}s: {what}")


def test_where_no_socket_can_be_made_the_session_agent_serves(run, tmp_path):
    """A directory too deep for a Unix socket path (107 bytes): the per-session agent, and why."""
    from reconciler.transport.local import LocalTransport

    deep = tmp_path / ("d" * 60) / ("e" * 60)

    async def scenario():
        agent = AgentSession(LocalTransport("local"), directory=str(deep), resident=True)
        async with agent:
            inventory = await agent.collect(types=["AWS:File"], files=["/etc/hostname"])
            return agent.mode, agent.fallback, inventory["Types"]["AWS:File"]["Status"]

    mode, why, status = run(scenario())
    assert (mode, status) == ("session", "ok")
    assert "the resident agent did not start: failed cannot listen" in why and "too long" in why


def test_an_agent_that_ends_as_a_session_connects_is_started_again(run, cache):
    """The race of an idle timeout: the socket accepts, then the agent is gone. The session
    starts over once and gets a new agent."""
    import socket
    import threading

    from reconciler.transport.local import LocalTransport

    def session():
        return AgentSession(LocalTransport("local"), directory=cache, resident=True)

    async def pid_of_new_session():
        agent = session()
        async with agent:
            return agent.info["pid"], agent.mode

    old, _ = run(pid_of_new_session())
    path = next(os.path.join(cache, n) for n in os.listdir(cache) if n.endswith(".sock"))
    os.kill(old, signal.SIGKILL)
    _wait_until(lambda: not alive(old), "the old agent is gone")
    os.unlink(path)
    ending = socket.socket(socket.AF_UNIX)       # accepts one connection, then ends, like an agent
    ending.bind(path)                            # whose idle time ran out as we connected
    ending.listen(1)

    def accept_then_end():
        conn, _ = ending.accept()
        conn.close()
        ending.close()

    threading.Thread(target=accept_then_end, daemon=True).start()
    new, mode = run(pid_of_new_session())        # the path is remembered: straight to the socket
    assert mode == "resident" and new != old and alive(new)


def test_two_stops_at_once_both_succeed(run, cache):
    """Two controllers asking one agent to shut down: whichever it answers last sees it end."""
    from reconciler.transport.local import LocalTransport

    async def scenario():
        first = AgentSession(LocalTransport("local"), directory=cache, resident=True)
        await first.open()
        path = next(os.path.join(cache, n) for n in os.listdir(cache) if n.endswith(".sock"))
        pid = first.info["pid"]
        second = AgentSession(LocalTransport("local"))
        await second.attach(path)
        await asyncio.gather(first.shutdown(), second.shutdown())
        return pid

    pid = run(scenario())
    _wait_until(lambda: not alive(pid), "the agent ends")


def test_a_nodes_agent_directory_is_where_its_agent_lives(sshd, make_node, run, cache):
    """spec.agent.directory: one per node where homes are shared; status looks there too."""
    node = make_node("web-1", **sshd.spec(agent={"directory": cache}))

    async def scenario():
        agent = session_for(node)
        async with agent:
            pid = agent.info["pid"]
        (report,) = await agents_on_nodes([node])
        return agent.agent_path, pid, report

    path, pid, report = run(scenario())
    assert os.path.dirname(path) == cache
    assert [(a.pid, a.current, os.path.dirname(a.socket)) for a in report.agents] == [(pid, True, cache)]


def test_stopping_other_versions_leaves_the_current_agent(make_node, run, cache):
    """After an upgrade: `plumb agent stop --other-versions` ends the agents the old plumb left."""
    import subprocess
    import sys
    from pathlib import Path

    node = make_node("local", transport="local", agent={"resident": True, "directory": cache})
    old_socket = os.path.join(cache, "plumb-agent-00000000000000aa.sock")   # "another version"
    started = subprocess.run([sys.executable, "-m", "agent.serve", "--listen", old_socket],
                             cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60)
    old_pid = int(started.stdout.split()[-1])

    async def scenario():
        agent = session_for(node)
        async with agent:
            current_pid = agent.info["pid"]
        (report,) = await agents_on_nodes([node], stop=True, keep_current=True)
        return current_pid, {a.version_hash: (a.state, a.current) for a in report.agents}

    current_pid, states = run(scenario())
    assert states["00000000000000aa"] == ("stopped", False)
    assert [state for state, current in states.values() if current] == ["running"]
    _wait_until(lambda: not alive(old_pid), "the other version's agent ends")
    assert alive(current_pid)
