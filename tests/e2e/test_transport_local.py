"""The local transport and the agent session through it: the same path as over SSH."""

from __future__ import annotations

import glob
import shutil
import os

import pytest

from reconciler.transport import (AgentSession, TransportError, for_each_node, session_for,
                                  transport_for)
from reconciler.transport.local import LocalTransport

from .test_transport_ssh import HELLO_DOCUMENT


def _interpreter(version: str) -> str | None:
    """A python of exactly this minor version on this machine (pyenv, /usr/bin), if any."""
    for pattern in (f"/root/.pyenv/versions/{version}.*/bin/python{version}",
                    f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[-1]
    return None


@pytest.fixture
def local_node(make_node):
    return make_node("laptop", transport="local")


def test_local_nodes_get_the_local_transport(local_node):
    transport = transport_for(local_node)
    assert isinstance(transport, LocalTransport) and transport.describe() == "local"


def test_run_returns_status_streams_and_feeds_stdin(local_node, run):
    async def scenario():
        async with transport_for(local_node) as local:
            failed = await local.run(["sh", "-c", "cat; echo err >&2; exit 3"], stdin=b"in\n")
            missing = await local.run(["plumb-no-such-command"])
            return failed, missing

    failed, missing = run(scenario())
    assert (failed.exit_status, failed.stdout, failed.stderr) == (3, b"in\n", b"err\n")
    assert missing.exit_status == 127, "as a shell would say"


def test_put_replaces_by_rename_with_its_mode(local_node, run, tmp_path):
    target = tmp_path / "a" / "b" / "file"

    async def scenario():
        async with transport_for(local_node) as local:
            await local.put(b"one", str(target), 0o600)
            inode = target.stat().st_ino
            await local.put(b"two", str(target), 0o644)
            return inode

    inode = run(scenario())
    assert target.read_bytes() == b"two" and target.stat().st_mode & 0o777 == 0o644
    assert target.stat().st_ino != inode and os.listdir(target.parent) == ["file"]


def test_timeout_raises_timeout(local_node, run):
    async def scenario():
        async with transport_for(local_node) as local:
            return await local.run(["sleep", "30"], timeout=2)

    with pytest.raises(TransportError) as caught:
        run(scenario())
    assert caught.value.reason.value == "timeout"
    assert str(caught.value).startswith("laptop (local): `sleep 30` did not finish")


def test_session_says_hello_collects_and_executes(local_node, run, tmp_path):
    events = []

    async def scenario():
        async with AgentSession(transport_for(local_node), directory=str(tmp_path)) as agent:
            inventory = await agent.collect(types=["AWS:InstanceInformation"])
            result = await agent.execute({"document": HELLO_DOCUMENT, "parameters": {}},
                                         on_event=events.append)
            return agent.info, inventory, result

    info, inventory, result = run(scenario())
    assert info["pid"] != os.getpid() and "execute" in info["ops"]
    assert inventory["Types"]["AWS:InstanceInformation"]["Status"] == "ok"
    assert result["status"] == "Success"
    assert [e["event"] for e in events][-1] == "invocation_finished"


def test_session_uploads_once_into_the_xdg_cache(local_node, run, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    async def open_once():
        async with session_for(local_node) as agent:
            return agent.uploaded, agent.agent_path

    first, path = run(open_once())
    mtime = os.stat(path).st_mtime_ns
    second, same = run(open_once())
    assert (first, second, same) == (True, False, path)
    assert os.path.dirname(path) == str(tmp_path / "xdg" / "plumb")
    assert os.stat(path).st_mtime_ns == mtime


def test_an_agent_error_answer_leaves_the_session_usable(local_node, run, tmp_path):
    async def scenario():
        async with AgentSession(transport_for(local_node), directory=str(tmp_path)) as agent:
            with pytest.raises(TransportError) as caught:
                await agent.collect(types=["Nope:Type"])
            return caught.value, await agent.hello()

    error, hello = run(scenario())
    assert error.reason.value == "agent_failed" and "unknown inventory type" in str(error)
    assert hello["agentVersion"]


def test_a_request_past_its_timeout_raises_timeout_and_ends_the_session(local_node, run,
                                                                         tmp_path):
    slow = dict(HELLO_DOCUMENT, mainSteps=[{
        "action": "aws:runShellScript", "name": "slow", "inputs": {"runCommand": ["sleep 30"]}}])

    async def scenario():
        async with AgentSession(transport_for(local_node), directory=str(tmp_path)) as agent:
            with pytest.raises(TransportError) as timed_out:
                await agent.execute({"document": slow, "parameters": {}}, timeout=2)
            with pytest.raises(TransportError) as after:
                await agent.hello()
            return timed_out.value, after.value

    timed_out, after = run(scenario())
    assert timed_out.reason.value == "timeout" and "'execute'" in str(timed_out)
    assert after.reason.value == "agent_failed" and "timed out" in str(after)


def test_a_missing_python_is_a_clear_agent_failure(make_node, run):
    node = make_node("laptop", transport="local", python="/nonexistent/python3")

    async def scenario():
        async with session_for(node):
            pass

    with pytest.raises(TransportError) as caught:
        run(scenario())
    assert caught.value.reason.value == "agent_failed"
    assert "/nonexistent/python3 was not found" in str(caught.value)


def test_a_python_older_than_3_9_is_refused(make_node, run, tmp_path):
    old = _interpreter("3.8") or _interpreter("3.7") or _interpreter("3.6")
    if old is None:
        pytest.skip("no python < 3.9 on this machine")

    async def scenario():
        agent = AgentSession(transport_for(make_node("laptop", transport="local")),
                             python=old, directory=str(tmp_path))
        async with agent:
            pass

    with pytest.raises(TransportError) as caught:
        run(scenario())
    assert caught.value.reason.value == "agent_failed" and "needs Python >= 3.9" in str(caught.value)


def test_the_agent_runs_on_python_3_9(local_node, run, tmp_path):
    python39 = _interpreter("3.9")
    if python39 is None:
        pytest.skip("no python3.9 on this machine")

    async def scenario():
        agent = AgentSession(transport_for(local_node), python=python39, directory=str(tmp_path))
        async with agent:
            result = await agent.execute({"document": HELLO_DOCUMENT, "parameters": {}})
            return agent.info, result

    info, result = run(scenario())
    assert info["python"].startswith("3.9.") and result["status"] == "Success"


def test_for_each_node_returns_results_and_errors_per_node(make_node, run):
    nodes = [make_node("good-1", transport="local"),
             make_node("bad-1", transport="local", python="/nonexistent/python3"),
             make_node("good-2", transport="local")]

    async def hello(node):
        async with session_for(node) as agent:
            return agent.info["agentVersion"]

    good, bad, also_good = run(for_each_node(nodes, hello))
    assert isinstance(bad, TransportError) and bad.reason.value == "agent_failed"
    assert isinstance(good, str) and isinstance(also_good, str)


def test_become_sudo_runs_the_agent_under_sudo_n(make_node, run, tmp_path):
    if shutil.which("sudo") and os.geteuid() != 0:
        pytest.skip("sudo may ask for a password here")
    node = make_node("laptop", transport="local", become="sudo")

    async def scenario():
        async with AgentSession(transport_for(node), become="sudo", directory=str(tmp_path)) as agent:
            return agent.info

    if shutil.which("sudo"):
        assert run(scenario())["pid"] > 0
        return
    with pytest.raises(TransportError) as caught:
        run(scenario())
    assert caught.value.reason.value == "agent_failed" and "sudo" in str(caught.value)
