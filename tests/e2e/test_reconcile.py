"""plan → reconcile → plan, as a user runs it, on this machine locally and over a real sshd.

Each node manages its own directory (both are this machine). The manifests live in a
real git repository so every change is tagged with its revision.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _git(cwd, *args):
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@x"})


def _association(name, node, root, files=2):
    state = {"directories": {str(root): {"mode": "0755"}},
             "files": {str(root / f"f{i}.conf"): {"content": f"setting{i} = {{{{ params.value }}}}\n", "mode": "0644"}
                       for i in range(files)}}
    return {"apiVersion": "plumb.dev/v1", "kind": "Association", "metadata": {"name": name},
            "spec": {"targets": [{"key": "InstanceIds", "values": [node]}], "parameters": {"value": "one"},
                     "state": state}}


@pytest.fixture
def world(sshd, tmp_path):
    manifests = tmp_path / "repo" / "manifests"
    manifests.mkdir(parents=True)
    local_root, ssh_root = tmp_path / "node-local", tmp_path / "node-ssh"
    docs = [
        {"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": "local"}, "spec": {"transport": "local"}},
        {"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": "ssh-1"}, "spec": sshd.spec()},
        _association("local-files", "local", local_root),
        _association("ssh-files", "ssh-1", ssh_root),
    ]
    (manifests / "fleet.yaml").write_text(yaml.safe_dump_all(docs))
    _git(manifests.parent, "init", "-q")
    _git(manifests.parent, "add", ".")
    _git(manifests.parent, "commit", "-qm", "fleet")
    env = {**os.environ, "PLUMB_MANIFESTS": str(manifests), "PLUMB_STATE": f"sqlite:///{tmp_path}/state.db",
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "NO_COLOR": "1"}
    return {"env": env, "manifests": manifests, "local": local_root, "ssh": ssh_root, "tmp": tmp_path}


def plumb(world, *args, timeout=180):
    return subprocess.run([sys.executable, "-m", "reconciler", *args], env=world["env"], capture_output=True,
                          text=True, timeout=timeout, cwd=world["tmp"])


def test_plan_reconcile_drift_and_restore(world):
    first = plumb(world, "plan", "--detailed-exitcode")
    assert first.returncode == 2, first.stdout + first.stderr
    assert "Plan: 6 to add, 0 to change, 0 to remove; 0 drifted" in first.stdout

    applied = plumb(world, "reconcile")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "6 applied, 0 failed, 0 not converged" in applied.stdout
    for root in (world["local"], world["ssh"]):
        assert (root / "f0.conf").read_text() == "setting0 = one\n"
        assert oct((root / "f1.conf").stat().st_mode & 0o777) == "0o644"

    clean = plumb(world, "plan", "--detailed-exitcode")
    assert clean.returncode == 0, clean.stdout
    assert "No changes." in clean.stdout

    # out-of-band changes on both nodes
    (world["ssh"] / "f0.conf").write_text("setting0 = hacked\n")
    os.chmod(world["local"] / "f1.conf", 0o600)
    drift = plumb(world, "plan", "--detailed-exitcode", "--sarif", str(world["tmp"] / "plan.sarif"),
                  "--junit", str(world["tmp"] / "plan.xml"), "--output", "json")
    assert drift.returncode == 2
    report = json.loads(drift.stdout)
    drifted = {(d["node"], d["address"]): d for d in report["resource_drift"]}
    assert set(drifted) == {("ssh-1", f"files:{world['ssh']}/f0.conf"), ("local", f"files:{world['local']}/f1.conf")}
    source = drifted[("ssh-1", f"files:{world['ssh']}/f0.conf")]["source"]
    lines = (world["manifests"] / "fleet.yaml").read_text().splitlines()
    assert source["file"].endswith("fleet.yaml") and f"{world['ssh']}/f0.conf" in lines[source["line"] - 1]
    sarif = json.loads((world["tmp"] / "plan.sarif").read_text())
    regions = [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in sarif["runs"][0]["results"]]
    assert source["line"] in regions

    restored = plumb(world, "reconcile")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert (world["ssh"] / "f0.conf").read_text() == "setting0 = one\n"
    assert oct((world["local"] / "f1.conf").stat().st_mode & 0o777) == "0o644"
    again = plumb(world, "reconcile")
    assert "0 applied, 0 failed" in again.stdout and again.returncode == 0
    assert plumb(world, "plan", "--detailed-exitcode").returncode == 0

    history = json.loads(plumb(world, "drift", "history", "ssh-1", "--output", "json").stdout)
    (period,) = history["periods"]
    assert period["corrected_at"] and len(period["git_revision"]) == 40
    compliance = json.loads(plumb(world, "compliance", "--output", "json").stdout)
    assert compliance["totals"] == {"COMPLIANT": 2, "NON_COMPLIANT": 0}


def test_pending_change_from_a_new_commit(world):
    assert plumb(world, "reconcile").returncode == 0
    text = (world["manifests"] / "fleet.yaml").read_text().replace("value: one", "value: two")
    (world["manifests"] / "fleet.yaml").write_text(text)
    _git(world["manifests"].parent, "commit", "-qam", "two")
    plan = plumb(world, "plan", "--detailed-exitcode", "--output", "json")
    assert plan.returncode == 2
    data = json.loads(plan.stdout)
    assert data["resource_drift"] == []
    assert {c["classification"] for c in data["resource_changes"]} == {"pending_change"}
    assert plumb(world, "reconcile").returncode == 0
    assert (world["ssh"] / "f1.conf").read_text() == "setting1 = two\n"


def test_saved_plan_applies_exactly_and_refuses_when_things_moved(world):
    out = world["tmp"] / "plan.json"
    assert plumb(world, "plan", "--out", str(out)).returncode == 0
    saved = json.loads(out.read_text())
    assert saved["format_version"] and len(saved["git_revision"]) == 40
    assert {n["node"]: bool(n["inventory_fingerprint"]) for n in saved["nodes"]} == {"local": True, "ssh-1": True}
    assert saved["nodes"][0]["document"]["mainSteps"]

    (world["ssh"].parent / "node-ssh").mkdir(exist_ok=True)  # a node changed since the plan
    refused = plumb(world, "reconcile", "--plan", str(out))
    assert refused.returncode == 1 and "changed since" in refused.stderr and "ssh-1" in refused.stderr
    assert not (world["local"] / "f0.conf").exists(), "nothing may be applied"

    assert plumb(world, "plan", "--out", str(out)).returncode == 0
    (world["manifests"] / "extra.yaml").write_text("# a comment\n")
    refused = plumb(world, "reconcile", "--plan", str(out))
    assert refused.returncode == 1 and "manifests changed" in refused.stderr
    (world["manifests"] / "extra.yaml").unlink()

    applied = plumb(world, "reconcile", "--plan", str(out))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (world["local"] / "f0.conf").exists() and (world["ssh"] / "f0.conf").exists()


def test_sigkill_at_any_point_loses_nothing_and_the_next_run_resumes(world, tmp_path):
    many = yaml.safe_dump(_association("many-files", "local", tmp_path / "many", files=150))
    (world["manifests"] / "many.yaml").write_text(many)
    _git(world["manifests"].parent, "add", ".")
    _git(world["manifests"].parent, "commit", "-qm", "many")
    state = tmp_path / "state.db"
    for delay in (0.5, 1.5, 3.0):
        process = subprocess.Popen([sys.executable, "-m", "reconciler", "reconcile"], env=world["env"],
                                   cwd=world["tmp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        if state.exists():
            db = sqlite3.connect(state)
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            db.close()
    resumed = plumb(world, "reconcile")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert len(list((tmp_path / "many").iterdir())) == 150
    assert plumb(world, "plan", "--detailed-exitcode").returncode == 0


def test_two_reconciles_never_act_on_one_node_at_once(world, tmp_path):
    import sqlite3 as sql

    assert plumb(world, "inventory", "collect", "-n", "local").returncode == 0
    db = sql.connect(tmp_path / "state.db")
    holder = subprocess.Popen(["sleep", "60"])
    try:
        db.execute("INSERT INTO leases VALUES ('local', 'other-run', ?, ?, '2026-01-01T00:00:00Z', "
                   "'2999-01-01T00:00:00Z')", (holder.pid, os.uname().nodename))
        db.commit()
        blocked = plumb(world, "reconcile", "-n", "local")
        assert blocked.returncode == 1
        assert "another reconcile holds this node: other-run" in blocked.stdout + blocked.stderr
        assert not (world["local"] / "f0.conf").exists()
    finally:
        holder.kill()
        holder.wait()
    assert plumb(world, "reconcile", "-n", "local").returncode == 0, "a dead holder's lease is taken over"
