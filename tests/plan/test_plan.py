"""The pure planner: three-way classification, comparisons, windows and the corrective document."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from reconciler.compile import compile_node, model_resolver
from reconciler.loader import load
from reconciler.plan import LastApplied, observe, plan_node
from reconciler.planmodel import Action, Classification
from reconciler.windows import state

MANIFESTS = """
apiVersion: plumb.dev/v1
kind: Node
metadata: {name: n1, labels: {role: app}}
---
apiVersion: plumb.dev/v1
kind: Parameter
metadata: {name: /app/greeting}
spec: {type: String, value: hello}
---
apiVersion: plumb.dev/v1
kind: MaintenanceWindow
metadata: {name: weekly}
spec: {schedule: "cron(0 2 ? * SUN *)", duration: 3, cutoff: 1}
---
apiVersion: plumb.dev/v1
kind: Association
metadata: {name: app}
spec:
  targets: [{key: tag:role, values: [app]}]
  parameters: {who: "{{ node.name }}"}
  state:
    packages:
      nginx: {version: ">=1.22"}
      telnet: {ensure: absent}
    directories:
      /srv/app: {mode: "750", owner: root}
    files:
      /srv/app/motd:
        content: "{{ssm:/app/greeting}} {{ params.who }}\\n"
        mode: "0644"
        onChange: [{restart: app}]
    sysctl:
      vm.swappiness: 10
    services:
      app: {ensure: running, enabled: true}
---
apiVersion: plumb.dev/v1
kind: Association
metadata: {name: windowed}
spec:
  targets: [{key: tag:role, values: [app]}]
  maintenanceWindow: weekly
  state:
    files:
      /srv/app/windowed: {content: "w\\n"}
"""
SUNDAY_0230 = datetime(2026, 11, 29, 2, 30, tzinfo=timezone.utc)
MONDAY = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
MOTD = b"hello n1\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inventory(**overrides):
    files = {
        "/srv/app": {"Path": "/srv/app", "Exists": True, "FileType": "directory", "Mode": "0750", "Owner": "root",
                     "Group": "root"},
        "/srv/app/motd": {"Path": "/srv/app/motd", "Exists": True, "FileType": "file", "Mode": "0644",
                          "Owner": "root", "Group": "root", "Sha256": sha(MOTD), "Content": MOTD.decode()},
        "/srv/app/windowed": {"Path": "/srv/app/windowed", "Exists": True, "FileType": "file", "Mode": "0644",
                              "Owner": "root", "Group": "root", "Sha256": sha(b"w\n")},
    }
    files.update(overrides.pop("files", {}))
    doc = {"Types": {
        "AWS:InstanceInformation": {"Status": "ok", "Content": [{"ComputerName": "n1"}]},
        "AWS:Application": {"Status": "ok", "Content": [{"Name": "nginx", "Version": "1.22.1-9",
                                                         "PackageManager": "apt"}]},
        "AWS:File": {"Status": "ok", "Content": [f for f in files.values() if f is not None]},
        "plumb:Sysctl": {"Status": "ok", "Content": [{"Key": "vm.swappiness", "Exists": True, "Value": "10"}]},
        "AWS:Service": {"Status": "ok", "Content": [{"Name": "app", "Status": "running", "StartType": "enabled"}]},
    }}
    for type_name, value in overrides.items():
        doc["Types"][type_name.replace("_", ":", 1)] = value
    return doc


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("m")
    (folder / "all.yaml").write_text(MANIFESTS)
    result = load(str(folder))
    assert result.ok, [d.render() for d in result.errors]
    return result.model


@pytest.fixture(scope="module")
def desired(model):
    compiled = compile_node(model, model.node("n1"), {"ComputerName": "n1"}, model_resolver(model))
    assert not compiled.diagnostics
    return compiled


def plan(desired, model, inv, last=None, now=SUNDAY_0230):
    windows = {w.name: state(w, now) for w in model.maintenance_windows}
    return {r.address: r for r in plan_node(desired, inv, last or {}, windows).resources}


def test_compile_renders_parameters_templates_and_references(desired):
    motd = next(r for r in desired.resources if r.id == "/srv/app/motd")
    assert bytes(motd.spec["content"]) == MOTD and motd.on_change == ("restart:app",)
    assert [r.type for r in desired.resources][:3] == ["packages", "packages", "directories"]
    assert motd.source.line > 0 and motd.source.pointer == "/spec/state/files/~1srv~1app~1motd"


def test_everything_in_sync_has_reasons(desired, model):
    result = plan(desired, model, inventory())
    assert all(r.classification is Classification.IN_SYNC for r in result.values()), {
        a: (r.classification, r.reason) for a, r in result.items()}
    assert all(r.reason for r in result.values())
    assert "satisfies >=1.22" in result["packages:nginx"].reason


def test_never_applied_change_is_pending(desired, model):
    inv = inventory(files={"/srv/app/motd": {"Path": "/srv/app/motd", "Exists": False}})
    motd = plan(desired, model, inv)["files:/srv/app/motd"]
    assert (motd.action, motd.classification) == (Action.CREATE, Classification.PENDING_CHANGE)
    assert motd.triggers == ("restart:app",) and "+hello n1" in motd.content_diff


def _last_applied(desired, inv):
    return {r.address: LastApplied(r.desired_hash(), observe(r, inv).projection_hash(), "2026-11-20T00:00:00Z")
            for r in desired.resources}


def test_out_of_band_change_is_drift(desired, model):
    clean = inventory()
    last = _last_applied(desired, clean)
    edited = inventory(files={"/srv/app/motd": {**clean["Types"]["AWS:File"]["Content"][1], "Sha256": sha(b"x"),
                                                "Content": "x", "Mode": "0600"}})
    motd = plan(desired, model, edited, last)["files:/srv/app/motd"]
    assert (motd.action, motd.classification) == (Action.UPDATE, Classification.DRIFT)
    assert {c.field for c in motd.changes} == {"content", "mode"}
    assert "-x" in motd.content_diff and "+hello n1" in motd.content_diff


def test_desired_change_is_pending_and_both_is_drift_and_change(desired, model):
    clean = inventory()
    last = _last_applied(desired, clean)
    moved = {a: LastApplied("old-desired", l.observed_hash, l.applied_at) for a, l in last.items()}
    nginx_old = inventory(AWS_Application={"Status": "ok", "Content": [{"Name": "nginx", "Version": "1.18.0-6"}]})
    assert plan(desired, model, nginx_old, moved)["packages:nginx"].classification is Classification.DRIFT_AND_CHANGE
    # desired moved, node still as last applied:
    old = {"packages:nginx": LastApplied("old-desired", observe(
        next(r for r in desired.resources if r.id == "nginx"), nginx_old).projection_hash())}
    result = plan(desired, model, nginx_old, old)["packages:nginx"]
    assert result.classification is Classification.PENDING_CHANGE and result.action is Action.UPDATE


def test_unknown_is_never_guessed(desired, model):
    inv = inventory(AWS_Service={"Status": "unknown", "Reason": "systemd is not running on this node"})
    svc = plan(desired, model, inv)["services:app"]
    assert svc.classification is Classification.UNKNOWN and "systemd is not running" in svc.reason
    missing = inventory(files={"/srv/app/motd": None})
    assert plan(desired, model, missing)["files:/srv/app/motd"].classification is Classification.UNKNOWN
    assert all(r.classification is Classification.UNKNOWN for r in plan(desired, model, None).values())


def test_window_blocks_changes_outside_and_says_when(desired, model):
    inv = inventory(files={"/srv/app/windowed": {"Path": "/srv/app/windowed", "Exists": False}})
    blocked = plan(desired, model, inv, now=MONDAY)["files:/srv/app/windowed"]
    assert blocked.classification is Classification.BLOCKED
    assert blocked.blocked_until == "2026-11-29T02:00:00Z" and "until 2026-11-29T02:00:00Z" in blocked.reason
    assert plan(desired, model, inv)["files:/srv/app/windowed"].classification is Classification.PENDING_CHANGE


@pytest.mark.parametrize("installed,constraint_ok", [("1.22.1-9", True), ("1.22", True), ("1.21.9", False),
                                                     ("1:1.0", True), ("1.22~rc1", False)])
def test_package_minimum_versions_use_debian_ordering(desired, model, installed, constraint_ok):
    inv = inventory(AWS_Application={"Status": "ok", "Content": [{"Name": "nginx", "Version": installed}]})
    nginx = plan(desired, model, inv)["packages:nginx"]
    assert (nginx.classification is Classification.IN_SYNC) is constraint_ok


def test_absent_package_installed_is_a_delete(desired, model):
    inv = inventory(AWS_Application={"Status": "ok", "Content": [{"Name": "nginx", "Version": "1.22"},
                                                                 {"Name": "telnet", "Version": "0.17"}]})
    assert plan(desired, model, inv)["packages:telnet"].action is Action.DELETE


def test_service_and_sysctl_drift(desired, model):
    inv = inventory(AWS_Service={"Status": "ok", "Content": [{"Name": "app", "Status": "stopped",
                                                              "StartType": "enabled"}]},
                    plumb_Sysctl={"Status": "ok", "Content": [{"Key": "vm.swappiness", "Exists": True,
                                                               "Value": "60"}]})
    result = plan(desired, model, inv)
    assert [c.field for c in result["services:app"].changes] == ["state"]
    assert result["sysctl:vm.swappiness"].changes[0].before == "60"


def test_corrective_document_has_steps_only_for_changes(desired, model):
    inv = inventory(files={"/srv/app/motd": {"Path": "/srv/app/motd", "Exists": False}})
    windows = {w.name: state(w, SUNDAY_0230) for w in model.maintenance_windows}
    node_plan = plan_node(desired, inv, {}, windows)
    steps = node_plan.document["mainSteps"]
    assert [s["action"] for s in steps] == ["plumb:file"]
    assert steps[0]["inputs"]["path"] == "/srv/app/motd" and steps[0]["inputs"]["contentBase64"]
    assert plan_node(desired, inventory(), {}, windows).document is None


def test_secret_contents_never_reach_the_plan(tmp_path):
    text = MANIFESTS.replace("{{ssm:/app/greeting}} {{ params.who }}\\n", "{{ssm-secure:/app/greeting}}")
    text = text.replace("spec: {type: String, value: hello}", "spec: {type: SecureString, sealedValue: 'plumb-sealed:v1:AAAA'}")
    (tmp_path / "m.yaml").write_text(text)
    result = load(str(tmp_path))
    assert result.ok, [d.render() for d in result.errors]
    model = result.model
    compiled = compile_node(model, model.node("n1"), {}, lambda body, secure: "s3cr3t-value")
    motd = next(r for r in compiled.resources if r.id == "/srv/app/motd")
    assert motd.sensitive
    node_plan = plan_node(compiled, inventory(), {}, {})
    assert "s3cr3t" not in repr(node_plan)
    step = node_plan.document["mainSteps"][0]
    assert "contentBase64" not in step["inputs"] and step["inputs"]["contentSha256"] == sha(b"s3cr3t-value")


def test_template_errors_are_located_diagnostics(tmp_path):
    (tmp_path / "m.yaml").write_text(MANIFESTS.replace("{{ params.who }}", "{{ params.nope }}"))
    model = load(str(tmp_path)).model
    compiled = compile_node(model, model.node("n1"), {}, model_resolver(model))
    (problem,) = compiled.diagnostics
    assert "'dict object' has no attribute 'nope'" in problem.message
    assert problem.file.endswith("m.yaml") and problem.line > 0
    assert all(r.id != "/srv/app/motd" for r in compiled.resources)
