"""`plumb node register|list|deregister`: registered nodes are checked like Node manifests and
matched by targets like any node."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml


def _plumb(tmp_path, *args):
    env = {**os.environ, "PLUMB_MANIFESTS": str(tmp_path / "m"), "PLUMB_STATE": f"sqlite:///{tmp_path}/state.db",
           "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)


def _manifests(tmp_path):
    (tmp_path / "m").mkdir()
    docs = [{"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": "git-node", "labels": {"role": "db"}},
             "spec": {"transport": "local"}},
            {"apiVersion": "plumb.dev/v1", "kind": "Association", "metadata": {"name": "web-motd"},
             "spec": {"targets": [{"key": "tag:role", "values": ["web"]}],
                      "state": {"files": {str(tmp_path / "motd"): {"content": "hello web\n"}}}}}]
    (tmp_path / "m" / "fleet.yaml").write_text(yaml.safe_dump_all(docs))


def test_registered_nodes_are_targeted_listed_and_forgotten(tmp_path):
    _manifests(tmp_path)
    done = _plumb(tmp_path, "node", "register", "web-local", "--transport", "local", "-l", "role=web")
    assert done.returncode == 0, done.stderr
    listed = json.loads(_plumb(tmp_path, "node", "list", "--output", "json").stdout)["nodes"]
    assert [(n["name"], n["registered"], n["labels"]) for n in listed] == [
        ("git-node", False, {"role": "db"}), ("web-local", True, {"role": "web"})]
    plan = _plumb(tmp_path, "plan", "--targets", "tag:role=web", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "node web-local" in plan.stdout and f"+ files:{tmp_path}/motd" in plan.stdout
    assert _plumb(tmp_path, "reconcile", "--node", "web-local").returncode == 0
    assert (tmp_path / "motd").read_text() == "hello web\n"
    assert _plumb(tmp_path, "node", "deregister", "web-local").returncode == 0
    gone = _plumb(tmp_path, "plan", "--node", "web-local")
    assert gone.returncode != 0 and "no Node named 'web-local'" in gone.stderr


def test_bad_registrations_are_refused_with_located_errors(tmp_path):
    _manifests(tmp_path)
    bad = _plumb(tmp_path, "node", "register", "bad_name!")
    assert bad.returncode == 1 and "/metadata/name" in bad.stderr and "was not registered" in bad.stderr
    clash = _plumb(tmp_path, "node", "register", "git-node", "--transport", "local")
    assert clash.returncode == 1 and "is declared in" in clash.stderr
    label = _plumb(tmp_path, "node", "register", "x1", "-l", "nolabel")
    assert label.returncode == 2 and "is not key=value" in label.stderr


def test_agent_options_are_registered_and_checked(tmp_path):
    _manifests(tmp_path)
    done = _plumb(tmp_path, "node", "register", "edge-1", "--address", "10.0.0.9", "--no-resident-agent",
                  "--agent-idle-timeout", "600", "--agent-directory", "/var/lib/plumb-agent", "--output", "json")
    assert done.returncode == 0, done.stderr
    spec = yaml.safe_load(json.loads(done.stdout)["manifest"])["spec"]
    assert spec["agent"] == {"resident": False, "idleTimeoutSeconds": 600, "directory": "/var/lib/plumb-agent"}
    bad = _plumb(tmp_path, "node", "register", "edge-2", "--agent-directory", "relative/dir")
    assert bad.returncode == 1 and "/spec/agent/directory" in bad.stderr and "was not registered" in bad.stderr
