"""`plumb agent status|stop` as a user runs them, against the resident agent on a real sshd."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from procs import alive

from .conftest import free_port

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0


@pytest.fixture
def env(sshd, tmp_path):
    nodes = [
        {"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": "ssh-1"}, "spec": sshd.spec()},
        {"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": "dead"},
         "spec": {"address": "127.0.0.1", "port": free_port(), "connectTimeoutSeconds": 3}},
    ]
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "nodes.yaml").write_text(yaml.safe_dump_all(nodes))
    return {**os.environ, "PLUMB_MANIFESTS": str(tmp_path / "manifests"),
            "PLUMB_STATE": f"sqlite:///{tmp_path}/state.db"}


def plumb(env, *args):
    return subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, capture_output=True,
                          text=True, timeout=180, cwd=REPO)


def current_agents(result) -> list[dict]:
    (node,) = [n for n in json.loads(result.stdout)["nodes"] if n["node"] == "ssh-1"]
    return [agent for agent in node["agents"] if agent["current"]]


def test_status_shows_the_running_agent_and_stop_ends_it(env):
    assert plumb(env, "inventory", "collect", "-n", "ssh-1").returncode == 0   # starts it
    status = plumb(env, "agent", "status", "-n", "ssh-1", "--output", "json")
    assert status.returncode == 0, status.stderr
    (agent,) = current_agents(status)
    assert agent["state"] == "running" and agent["pid"] > 0 and agent["started_at"].endswith("Z")
    assert agent["socket"].endswith(f"plumb-agent-{agent['version_hash']}.sock")

    text = plumb(env, "agent", "status", "-n", "ssh-1")
    assert f"ssh-1: agent {agent['version_hash']} (current) running, pid {agent['pid']}" in text.stdout

    stop = plumb(env, "agent", "stop", "-n", "ssh-1")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert f"(current) stopping, pid {agent['pid']}" in stop.stdout
    deadline = time.monotonic() + DEADLINE
    while alive(agent["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(agent["pid"])
    assert current_agents(plumb(env, "agent", "status", "-n", "ssh-1", "--output", "json")) == []

    again = plumb(env, "inventory", "collect", "-n", "ssh-1")          # the next session restarts it
    assert again.returncode == 0
    (restarted,) = current_agents(plumb(env, "agent", "status", "-n", "ssh-1", "--output", "json"))
    assert restarted["pid"] != agent["pid"]


def test_a_killed_agent_shows_as_a_stale_socket(env):
    assert plumb(env, "inventory", "collect", "-n", "ssh-1").returncode == 0
    (agent,) = current_agents(plumb(env, "agent", "status", "-n", "ssh-1", "--output", "json"))
    os.kill(agent["pid"], signal.SIGKILL)
    deadline = time.monotonic() + DEADLINE
    while alive(agent["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    (stale,) = current_agents(plumb(env, "agent", "status", "-n", "ssh-1", "--output", "json"))
    assert stale["state"] == "stale" and stale["detail"]
    assert "nobody answers on its socket" in plumb(env, "agent", "status", "-n", "ssh-1").stdout


def test_an_unreachable_node_fails_and_the_others_are_still_reported(env):
    result = plumb(env, "agent", "status", "--output", "json")
    assert result.returncode == 1
    by_node = {n["node"]: n for n in json.loads(result.stdout)["nodes"]}
    assert by_node["dead"]["reason"] == "unreachable" and not by_node["dead"]["ok"]
    assert by_node["ssh-1"]["ok"]
