"""The SSH transport and the agent session against a real OpenSSH server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid

import pytest

from reconciler.transport import AgentSession, TransportError, for_each_node, transport_for
from reconciler.transport.ssh import SSHTransport

from .conftest import free_port, keygen

HELLO_DOCUMENT = {
    "schemaVersion": "2.2", "description": "say hi",
    "mainSteps": [{"action": "aws:runShellScript", "name": "hi",
                   "inputs": {"runCommand": ["echo hi"]}}],
}


async def _raises(coroutine) -> TransportError:
    with pytest.raises(TransportError) as caught:
        await coroutine
    return caught.value


async def _connect_error(node) -> TransportError:
    transport = transport_for(node)
    try:
        return await _raises(transport.connect())
    finally:
        await transport.close()


# ---------------------------------------------------------------- commands and files

def test_run_returns_status_and_both_streams(sshd, make_node, run):
    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec())) as ssh:
            return await ssh.run(["sh", "-c", "echo out; echo err >&2; exit 3"])

    result = run(scenario())
    assert (result.exit_status, result.stdout, result.stderr) == (3, b"out\n", b"err\n")


def test_run_passes_arguments_literally_through_the_remote_shell(sshd, make_node, run):
    tricky = ["a b", "it's", "$HOME", "`id`", "; echo pwned", "*"]

    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec())) as ssh:
            return await ssh.run(["printf", "%s\\n", *tricky])

    assert run(scenario()).stdout.decode().splitlines() == tricky


def test_run_feeds_stdin(sshd, make_node, run):
    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec())) as ssh:
            return await ssh.run(["cat"], stdin=b"line one\nline two\n")

    assert run(scenario()).stdout == b"line one\nline two\n"


def test_put_writes_a_new_file_by_rename_with_its_mode(sshd, make_node, run, tmp_path):
    target = tmp_path / "deep" / "dir" / "file.bin"

    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec())) as ssh:
            await ssh.put(b"first", str(target), 0o600)
            first_inode = target.stat().st_ino
            await ssh.put(b"second\x00bytes", str(target), 0o640)
            return first_inode

    first_inode = run(scenario())
    assert target.read_bytes() == b"second\x00bytes"
    assert target.stat().st_mode & 0o777 == 0o640
    assert target.stat().st_ino != first_inode, "replaced by rename, not rewritten in place"
    assert os.listdir(target.parent) == ["file.bin"], "no temporary file left behind"


def test_one_connection_serves_every_call(sshd, make_node, run):
    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec())) as ssh:
            first = await ssh.run(["sh", "-c", "echo $SSH_CONNECTION"])
            second = await ssh.run(["sh", "-c", "echo $SSH_CONNECTION"])
            return first.stdout, second.stdout

    first, second = run(scenario())
    assert first == second, "same client port: the same TCP connection"


# ---------------------------------------------------------------- the agent session

def test_agent_session_says_hello_collects_and_executes(sshd, make_node, run, tmp_path):
    events = []

    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec())) as ssh:
            async with AgentSession(ssh, directory=str(tmp_path / "cache")) as agent:
                inventory = await agent.collect(types=["AWS:InstanceInformation"])
                result = await agent.execute({"document": HELLO_DOCUMENT, "parameters": {}},
                                             on_event=events.append)
                return agent.info, inventory, result

    info, inventory, result = run(scenario())
    assert info["python"].startswith("3.") and info["pid"] > 0 and info["agentVersion"]
    assert isinstance(inventory, dict) and "AWS:InstanceInformation" in inventory["Types"]
    assert result["status"] == "Success"
    assert [e["event"] for e in events] == [
        "step_started", "step_output", "step_finished", "invocation_finished"]
    assert events[1]["data"] == "hi\n"


def test_agent_is_uploaded_once_then_reused(sshd, make_node, run, tmp_path):
    node = make_node("web-1", **sshd.spec())
    cache = tmp_path / "cache"

    async def open_once():
        async with transport_for(node) as ssh:
            async with AgentSession(ssh, directory=str(cache)) as agent:
                return agent.uploaded, agent.agent_path

    uploaded, path = run(open_once())
    before = os.stat(path)
    again, same_path = run(open_once())
    after = os.stat(path)
    assert (uploaded, again, same_path) == (True, False, path)
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)
    assert os.path.basename(path).startswith("plumb-agent-") and path.endswith(".pyz")


def test_agent_lands_in_the_users_cache_by_default(sshd, make_node, run):
    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec())) as ssh:
            async with AgentSession(ssh) as agent:
                home = (await ssh.run(["sh", "-c", 'printf %s "$HOME"'])).stdout.decode()
                return agent.agent_path, home

    path, home = run(scenario())
    assert os.path.dirname(path) == f"{home}/.cache/plumb"


# ---------------------------------------------------------------- failures, by reason

def test_closed_port_is_unreachable(make_node, run):
    port = free_port()
    error = run(_connect_error(make_node("db-9", address="127.0.0.1", port=port,
                                         connectTimeoutSeconds=3)))
    assert error.reason.value == "unreachable"
    assert str(error).startswith(f"db-9 (127.0.0.1:{port}): unreachable")
    assert "refused" in str(error)


def test_unknown_host_key_is_refused(sshd, make_node, run, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    error = run(_connect_error(make_node("web-1", **sshd.spec(knownHostsFile=str(empty)))))
    assert error.reason.value == "host_key_unknown"
    assert "host key is unknown" in str(error) and f"[127.0.0.1]:{sshd.port}" in str(error)


def test_changed_host_key_is_refused_and_says_how_to_fix_it(sshd, make_node, run, tmp_path):
    other = keygen(tmp_path / "other_host_key")
    changed = tmp_path / "known_hosts"
    changed.write_text(f"[127.0.0.1]:{sshd.port} {other}\n")
    error = run(_connect_error(make_node("web-1", **sshd.spec(knownHostsFile=str(changed)))))
    assert error.reason.value == "host_key_changed"
    assert str(error).startswith(f"web-1 (127.0.0.1:{sshd.port}): host key has changed")
    assert "ssh-keygen -R" in str(error)


def test_host_key_checking_off_connects_without_known_hosts(sshd, make_node, run, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    node = make_node("web-1", **sshd.spec(knownHostsFile=str(empty), hostKeyChecking=False))

    async def scenario():
        async with transport_for(node) as ssh:
            return await ssh.run(["echo", "in"])

    assert run(scenario()).stdout == b"in\n"


def test_a_key_the_node_does_not_accept_fails_authentication(sshd, make_node, run, tmp_path):
    keygen(tmp_path / "stranger")
    node = make_node("web-1", **sshd.spec(identityFile=str(tmp_path / "stranger")))
    error = run(_connect_error(node))
    assert error.reason.value == "auth_failed"
    assert "authentication failed" in str(error)


def test_a_command_past_its_timeout_raises_timeout(sshd, make_node, run):
    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec())) as ssh:
            error = await _raises(ssh.run(["sleep", "30"], timeout=2))
            still = await ssh.run(["echo", "still here"])
            return error, still

    error, still = run(scenario())
    assert error.reason.value == "timeout" and "sleep 30" in str(error)
    assert still.stdout == b"still here\n", "the connection survives a command's timeout"


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def _pids_running(marker: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if marker.encode() in cmdline.read():
                    pids.append(int(entry))
        except (OSError, ValueError):
            continue
    return pids


async def _kill_connection_running(marker: str, sshd_pid: int) -> None:
    """Kill the sshd process serving the connection whose command line holds `marker`
    (the child of our sshd that the marked command descends from)."""
    for _ in range(200):
        for pid in _pids_running(marker):
            while _ppid(pid) not in (sshd_pid, 0, 1):
                pid = _ppid(pid)
            if _ppid(pid) == sshd_pid:
                os.kill(pid, signal.SIGKILL)
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no process with {marker} appeared under sshd {sshd_pid}")


def test_a_connection_killed_mid_command_is_connection_lost(sshd, make_node, run):
    marker = f"plumb-e2e-{uuid.uuid4().hex}"

    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec())) as ssh:
            killer = asyncio.ensure_future(_kill_connection_running(marker, sshd.process.pid))
            error = await _raises(ssh.run(["sh", "-c", f"echo {marker}; sleep 30"], timeout=20))
            await killer
            return error, await ssh.run(["echo", "back"])

    error, after = run(scenario())
    assert error.reason.value == "connection_lost"
    assert str(error).startswith(f"web-1 (127.0.0.1:{sshd.port}): connection lost")
    assert after.stdout == b"back\n", "the next call opens a new connection"


def test_a_connection_killed_mid_document_is_connection_lost(sshd, make_node, run, tmp_path):
    marker = f"plumb-e2e-{uuid.uuid4().hex}"   # in the work directory: on sh's command line
    document = dict(HELLO_DOCUMENT, mainSteps=[{
        "action": "aws:runShellScript", "name": "wait", "inputs": {"runCommand": ["sleep 30"]}}])

    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec())) as ssh:
            async with AgentSession(ssh, directory=str(tmp_path / "cache")) as agent:
                killer = asyncio.ensure_future(
                    _kill_connection_running(marker, sshd.process.pid))
                request = {"document": document, "parameters": {},
                           "workDir": str(tmp_path / marker)}
                error = await _raises(agent.execute(request, timeout=20))
                await killer
                return error

    assert run(scenario()).reason.value == "connection_lost"


# ---------------------------------------------------------------- many nodes

def test_for_each_node_keeps_going_past_a_bad_node(sshd, make_node, run):
    nodes = [make_node("web-1", **sshd.spec()),
             make_node("dead-1", address="127.0.0.1", port=free_port(), connectTimeoutSeconds=3),
             make_node("web-2", **sshd.spec())]

    async def hostname(node):
        async with transport_for(node) as ssh:
            return (await ssh.run(["echo", node.name])).stdout.decode().strip()

    good, dead, also_good = run(for_each_node(nodes, hostname, limit=2))
    assert (good, also_good) == ("web-1", "web-2")
    assert isinstance(dead, TransportError) and dead.reason.value == "unreachable"


def test_describe_names_user_host_and_port(sshd, make_node):
    transport = transport_for(make_node("web-1", **sshd.spec()))
    assert isinstance(transport, SSHTransport)
    assert transport.describe() == f"ssh {sshd.user}@127.0.0.1:{sshd.port}"


def test_become_sudo_without_sudo_is_a_clear_agent_failure(sshd, make_node, run, tmp_path):
    if shutil.which("sudo"):
        pytest.skip("sudo is installed here; this checks the message when it is not")

    async def scenario():
        async with transport_for(make_node("web-1", **sshd.spec(become="sudo"))) as ssh:
            agent = AgentSession(ssh, become="sudo", directory=str(tmp_path / "cache"))
            return await _raises(agent.open())

    error = run(scenario())
    assert error.reason.value == "agent_failed"
    assert "the agent exited (status 127) during 'hello'" in str(error) and "sudo" in str(error)
