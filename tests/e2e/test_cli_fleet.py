"""The CLI as a new user meets it, on a fleet of this machine (local), a real sshd, and broken nodes.

Nodes: `local` (local transport), `ssh-1` (the test's sshd on 127.0.0.1), `dead` (a closed
port), `badkey` (known_hosts holds a different key). Every test runs real `plumb`
processes against a real SQLite state file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from procs import children_of, pids_where

from .conftest import free_port, keygen

REPO = Path(__file__).resolve().parents[2]
PROBE_TYPES = ("AWS:Application", "plumb:User", "plumb:Group", "AWS:Network", "plumb:AvailableUpdate")


def _node(name, spec, labels=None):
    return {"apiVersion": "plumb.dev/v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"fleet": "e2e", **(labels or {})}}, "spec": spec}


@pytest.fixture
def fleet(sshd, tmp_path):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    wrong = keygen(tmp_path / "other_host_key")
    bad_known = tmp_path / "bad_known_hosts"
    bad_known.write_text(f"[127.0.0.1]:{sshd.port} {wrong}\n")
    nodes = [
        _node("local", {"transport": "local"}, {"role": "app"}),
        _node("ssh-1", sshd.spec(), {"role": "app"}),
        _node("dead", {"address": "127.0.0.1", "port": free_port(), "connectTimeoutSeconds": 3}),
        _node("badkey", sshd.spec(knownHostsFile=str(bad_known))),
    ]
    documents = [{
        "apiVersion": "plumb.dev/v1", "kind": "Document", "metadata": {"name": "slow-over-ssh"},
        "spec": {"schemaVersion": "2.2",
                 "parameters": {"seconds": {"type": "String", "default": "30"},
                                "marker": {"type": "String", "default": "none"},
                                "timeout": {"type": "String", "default": "3600"}},
                 "mainSteps": [{"action": "aws:runShellScript", "name": "wait", "inputs": {
                     "timeoutSeconds": "{{ timeout }}",
                     "runCommand": ['if [ -n "$SSH_CONNECTION" ]; then sh -c \'sleep "$1"\' {{ marker }} {{ seconds }}; fi',
                                    "echo finished"]}}]},
    }]
    (manifests / "fleet.yaml").write_text(yaml.safe_dump_all(nodes + documents))
    env = {**os.environ, "PLUMB_MANIFESTS": str(manifests), "PLUMB_STATE": f"sqlite:///{tmp_path}/state.db",
           "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return env


def plumb(env, *args, timeout=180):
    return subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_collect_reports_each_broken_node_and_carries_on(fleet):
    result = plumb(fleet, "inventory", "collect", "--output", "json")
    assert result.returncode == 1
    by_node = {n["node"]: n for n in json.loads(result.stdout)["nodes"]}
    assert by_node["local"]["ok"] and by_node["ssh-1"]["ok"]
    assert by_node["dead"]["reason"] == "unreachable" and "dead (127.0.0.1:" in by_node["dead"]["error"]
    assert by_node["badkey"]["reason"] == "host_key_changed"
    assert "ssh-keygen -R" in by_node["badkey"]["error"]
    text = plumb(fleet, "inventory", "collect", "--node", "dead")
    assert text.returncode == 1 and "failed" in text.stderr and "Inventory: 0 collected, 1 failed." in text.stdout


def test_local_and_ssh_inventories_of_this_machine_agree(fleet):
    assert plumb(fleet, "inventory", "collect", "-n", "local", "-n", "ssh-1").returncode == 0
    shown = {}
    for name in ("local", "ssh-1"):
        result = plumb(fleet, "inventory", "show", name, "--output", "json")
        assert result.returncode == 0, result.stderr
        shown[name] = json.loads(result.stdout)["inventory"]["Types"]
    for type_name in PROBE_TYPES:
        assert shown["local"][type_name]["Status"] == "ok", type_name
        assert shown["local"][type_name]["Content"] == shown["ssh-1"][type_name]["Content"], type_name
    info = [shown[n]["AWS:InstanceInformation"]["Content"][0] for n in ("local", "ssh-1")]
    for key in ("ComputerName", "PlatformName", "PlatformVersion", "KernelVersion", "Architecture"):
        assert info[0][key] == info[1][key]


def test_inventory_show_text_and_one_type(fleet):
    plumb(fleet, "inventory", "collect", "-n", "ssh-1")
    summary = plumb(fleet, "inventory", "show", "ssh-1")
    assert summary.returncode == 0 and "AWS:Application" in summary.stdout
    one = plumb(fleet, "inventory", "show", "ssh-1", "--type", "AWS:InstanceInformation")
    assert "ComputerName:" in one.stdout
    missing = plumb(fleet, "inventory", "show", "nope")
    assert missing.returncode == 1 and "no inventory stored for node 'nope'" in missing.stderr


def test_run_command_over_ssh_and_locally_with_broken_nodes(fleet):
    result = plumb(fleet, "run", "AWS-RunShellScript", "-t", "tag:fleet=e2e", "-p", "commands=echo hi from $(basename $0)",
                   "-p", "commands=printf '%s\\n' done", "--max-concurrency", "4", "--output", "json")
    assert result.returncode == 1, "two nodes were unreachable"
    record = json.loads(result.stdout)
    assert record["status"] == "Success", "SSM: Undeliverable alone does not fail a command"
    by_node = {i["node"]: i for i in record["invocations"]}
    for name in ("local", "ssh-1"):
        assert by_node[name]["status_details"] == "Success"
        assert by_node[name]["steps"][0]["stdout"] == "hi from _script.sh\ndone\n"
    assert by_node["dead"]["status_details"] == "Undeliverable"
    assert "dead (127.0.0.1:" in by_node["dead"]["message"]
    assert by_node["badkey"]["status_details"] == "Undeliverable"
    assert "host key" in by_node["badkey"]["message"]
    stored = plumb(fleet, "command", "show", record["command_id"], "--output", "json")
    assert json.loads(stored.stdout)["invocations"] == record["invocations"]
    listed = plumb(fleet, "command", "list")
    assert record["command_id"] in listed.stdout


def test_run_text_output_shows_each_nodes_output(fleet):
    result = plumb(fleet, "run", "AWS-RunShellScript", "-n", "ssh-1", "-p", "commands=echo hello")
    assert result.returncode == 0, result.stderr
    assert "── ssh-1: Success (exit 0)" in result.stdout and "   hello" in result.stdout
    assert "Success ssh-1" in result.stderr


def test_execution_timeout_is_timed_out_and_the_local_node_carries_on(fleet):
    result = plumb(fleet, "run", "slow-over-ssh", "-n", "local", "-n", "ssh-1", "-p", "timeout=5",
                   "-p", "seconds=60", "--max-errors", "1", "--output", "json")
    record = json.loads(result.stdout)
    by_node = {i["node"]: i for i in record["invocations"]}
    assert by_node["ssh-1"]["status"] == "TimedOut"
    assert by_node["ssh-1"]["status_details"] == "ExecutionTimedOut"
    assert by_node["local"]["status_details"] == "Success"
    assert by_node["local"]["steps"][0]["stdout"] == "finished\n"
    assert result.returncode == 1


def _kill_sshd_child_running(marker: str, sshd_pid: int, deadline: float) -> bool:
    """Once a process with `marker` runs, kill the SSH connection it runs for: the sshd child
    it descends from (a per-session agent), or, when it runs under the node's resident agent
    (detached from sshd), every connection of our sshd, the run's only one at that moment."""
    while time.monotonic() < deadline:
        for pid in pids_where(lambda argv: any(marker.encode() in arg for arg in argv)):
            parent, resident = pid, False
            while parent not in (0, 1) and _ppid(parent) != sshd_pid:
                resident = resident or b"--listen" in _cmdline(parent)
                parent = _ppid(parent)
            if parent not in (0, 1):
                victims = [parent]
            elif resident:
                victims = children_of(sshd_pid)
            else:
                continue   # the local node's step
            for victim in victims:
                os.kill(victim, 9)
            if victims:
                return True
        time.sleep(0.05)
    return False


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def _ppid(pid: int) -> int:
    try:
        return int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def test_connection_killed_mid_command_fails_that_node_only(fleet, sshd):
    marker = f"plumb-e2e-{uuid.uuid4().hex}"
    killed = {}
    killer = threading.Thread(target=lambda: killed.setdefault(
        "ok", _kill_sshd_child_running(marker, sshd.process.pid, time.monotonic() + 60)))
    killer.start()
    result = plumb(fleet, "run", "slow-over-ssh", "-n", "local", "-n", "ssh-1", "-p", f"marker={marker}",
                   "--max-errors", "1", "--output", "json")
    killer.join()
    assert killed.get("ok"), "the test could not find the SSH session to kill"
    by_node = {i["node"]: i for i in json.loads(result.stdout)["invocations"]}
    assert by_node["ssh-1"]["status_details"] == "Failed"
    assert "connection lost" in by_node["ssh-1"]["message"]
    assert "may have partly run" in by_node["ssh-1"]["message"]
    assert by_node["local"]["status_details"] == "Success"


def test_max_errors_terminates_the_rest(fleet):
    result = plumb(fleet, "run", "AWS-RunShellScript", "-n", "local", "-n", "ssh-1", "-p", "commands=exit 3",
                   "--max-concurrency", "1", "--max-errors", "0", "--output", "json")
    record = json.loads(result.stdout)
    details = sorted(i["status_details"] for i in record["invocations"])
    assert details == ["Failed", "Terminated"]
    assert record["status"] == "Failed" and result.returncode == 1


def test_invalid_parameters_contact_no_node(fleet):
    result = plumb(fleet, "run", "AWS-RunShellScript", "-n", "ssh-1", "-p", "comands=uptime")
    assert result.returncode == 1
    assert "InvalidParameters" in result.stderr and "did you mean commands?" in result.stderr
    assert "Command " not in result.stdout
