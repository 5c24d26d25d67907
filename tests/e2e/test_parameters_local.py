"""Parameter manifests reconciled into the store, as a user runs plumb, on the local node.

Drift from `plumb param put`, unmanaged parameters, policies (Expiration deletes,
ExpirationNotification is reported and kept in the history), a manifest the store would
refuse, references by version and label, SSM's StringList rule for documents, and a
document association that runs again when a parameter it uses changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml


def _git(cwd, *args):
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@x"})


def _param(name, value, type_="String", **spec):
    return {"apiVersion": "plumb.dev/v1", "kind": "Parameter", "metadata": {"name": name},
            "spec": {"type": type_, "value": value, **spec}}


class Fleet:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.manifests = tmp / "repo" / "manifests"
        self.manifests.mkdir(parents=True)
        self.root = tmp / "node"
        self.env = {**os.environ, "PLUMB_MANIFESTS": str(self.manifests), "PLUMB_STATE": f"sqlite:///{tmp}/state.db",
                    "PLUMB_KEY_DIR": str(tmp / "keys"), "NO_COLOR": "1", "XDG_CACHE_HOME": str(tmp / "cache")}

    def plumb(self, *args, stdin=None):
        return subprocess.run([sys.executable, "-m", "reconciler", *args], env=self.env, capture_output=True,
                              text=True, timeout=180, cwd=self.tmp, input=stdin)

    def write(self, users=("alice", "bob"), greeting="hello", extra=()):
        soon = (datetime.now(timezone.utc) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        docs = [
            {"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": "local"},
             "spec": {"transport": "local"}},
            _param("/app/greeting", greeting, labels=["stable"]),
            _param("/app/users", list(users), "StringList"),
            _param("/app/tuning", "initial", managed=False),
            _param("/app/cert-pin", "abc123", tier="Advanced", policies=[
                {"type": "Expiration", "attributes": {"timestamp": soon}},
                {"type": "ExpirationNotification", "attributes": {"before": "5", "unit": "Days"}}]),
            {"apiVersion": "plumb.dev/v1", "kind": "Document", "metadata": {"name": "write-users"},
             "spec": {"schemaVersion": "2.2", "parameters": {"users": {"type": "StringList"},
                                                              "out": {"type": "String"}},
                      "mainSteps": [{"action": "aws:runShellScript", "name": "write",
                                     "inputs": {"runCommand": ['mkdir -p "$(dirname {{ out }})"',
                                                               'printf "%s\\n" {{ users }} > {{ out }}']}}]}},
            {"apiVersion": "plumb.dev/v1", "kind": "Association", "metadata": {"name": "users-doc"},
             "spec": {"targets": [{"key": "InstanceIds", "values": ["local"]}],
                      "document": {"name": "write-users", "parameters": {
                          "users": "{{ssm:/app/users}}", "out": str(self.root / "users.txt")}}}},
            {"apiVersion": "plumb.dev/v1", "kind": "Association", "metadata": {"name": "greeting-file"},
             "spec": {"targets": [{"key": "InstanceIds", "values": ["local"]}],
                      "state": {"files": {str(self.root / "greeting.txt"): {
                          "content": "latest={{ssm:/app/greeting}} stable={{ssm:/app/greeting:stable}}\n"}}}}},
            *extra,
        ]
        (self.manifests / "fleet.yaml").write_text(yaml.safe_dump_all(docs))
        if not (self.manifests.parent / ".git").exists():
            _git(self.manifests.parent, "init", "-q")
        _git(self.manifests.parent, "add", ".")
        _git(self.manifests.parent, "commit", "-qm", "fleet")


@pytest.fixture
def fleet(tmp_path):
    return Fleet(tmp_path)


def test_parameters_reconcile_drift_unmanaged_and_policies(fleet):
    fleet.write()
    first = fleet.plumb("plan", "--detailed-exitcode")
    assert first.returncode == 2, first.stdout + first.stderr
    assert "+ parameters:/app/users" in first.stdout
    assert "ExpirationNotification: expires at" in first.stdout
    applied = fleet.plumb("reconcile")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert (fleet.root / "users.txt").read_text() == "alice\nbob\n"  # StringList items, not "alice,bob"
    assert (fleet.root / "greeting.txt").read_text() == "latest=hello stable=hello\n"
    assert fleet.plumb("plan", "--detailed-exitcode").returncode == 0

    history = fleet.plumb("drift", "history", "(parameter store)")
    assert "notification" in history.stdout or "ExpirationNotification" in history.stdout, history.stdout

    # Changes outside git: drift on a managed parameter, none on an unmanaged one.
    assert fleet.plumb("param", "put", "/app/greeting", "hi there", "--overwrite").returncode == 0
    assert fleet.plumb("param", "put", "/app/tuning", "tuned-by-ops", "--overwrite").returncode == 0
    drift = fleet.plumb("plan", "--detailed-exitcode", "--output", "json")
    assert drift.returncode == 2
    data = json.loads(drift.stdout)
    drifted = [d["address"] for d in data["resource_drift"]]
    assert drifted == ["parameters:/app/greeting"], data["resource_drift"]
    assert fleet.plumb("reconcile").returncode == 0
    got = json.loads(fleet.plumb("param", "get", "/app/greeting", "--output", "json").stdout)["Parameter"]
    assert (got["Value"], got["Version"]) == ("hello", 3)
    assert json.loads(fleet.plumb("param", "get", "/app/tuning", "--output", "json").stdout)["Parameter"]["Value"] \
        == "tuned-by-ops"

    # A new value in git: the document runs again, and the plan says which parameter moved.
    fleet.write(users=("alice", "bob", "carol"))
    moved = fleet.plumb("plan", "--detailed-exitcode")
    assert moved.returncode == 2
    assert "/app/users changed (version 1 -> 2) since it last ran" in moved.stdout, moved.stdout
    assert fleet.plumb("reconcile").returncode == 0
    assert (fleet.root / "users.txt").read_text() == "alice\nbob\ncarol\n"
    assert fleet.plumb("plan", "--detailed-exitcode").returncode == 0


def test_expired_parameters_are_deleted_and_refused_manifests_apply_nothing(fleet):
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expired = _param("/app/old", "x", tier="Advanced", policies=[{"type": "Expiration",
                                                                 "attributes": {"timestamp": past}}])
    fleet.write()
    assert fleet.plumb("reconcile").returncode == 0
    assert fleet.plumb("param", "put", "/app/old", "x", "--type", "String", "--tier", "Advanced").returncode == 0
    fleet.write(extra=[expired])
    plan = fleet.plumb("plan", "--detailed-exitcode")
    assert plan.returncode == 2
    assert f"- parameters:/app/old" in plan.stdout and f"expired at {past}" in plan.stdout
    assert fleet.plumb("reconcile").returncode == 0
    gone = fleet.plumb("param", "get", "/app/old")
    assert gone.returncode == 1 and "ParameterNotFound" in gone.stderr

    # The store would refuse this manifest (a type cannot change): a located error, nothing applied.
    assert fleet.plumb("param", "put", "/app/kind", "a", "--type", "String").returncode == 0
    fleet.write(greeting="changed", extra=[_param("/app/kind", ["a", "b"], "StringList")])
    refused = fleet.plumb("plan", "--detailed-exitcode")
    assert refused.returncode == 1
    assert "fleet.yaml:" in refused.stderr and "HierarchyTypeMismatchException" in refused.stderr, refused.stderr
    assert fleet.plumb("reconcile").returncode == 1
    got = json.loads(fleet.plumb("param", "get", "/app/greeting", "--output", "json").stdout)["Parameter"]
    assert got["Value"] == "hello"  # nothing was applied


def test_run_command_resolves_versions_labels_and_secrets_from_the_store(fleet):
    fleet.write()
    assert fleet.plumb("secret", "keygen").returncode == 0
    assert fleet.plumb("reconcile").returncode == 0
    assert fleet.plumb("param", "put", "/app/greeting", "v2", "--overwrite").returncode == 0
    assert fleet.plumb("param", "put", "/app/pw", "--type", "SecureString", stdin="pa55-word-xyz\n").returncode == 0
    run = fleet.plumb("run", "AWS-RunShellScript", "--node", "local", "-p",
                      "commands=echo {{ssm:/app/greeting}} {{ssm:/app/greeting:1}} {{ssm:/app/greeting:stable}} "
                      "{{ssm-secure:/app/pw}}", "--output", "json")
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    stdout = record["invocations"][0]["steps"][0]["stdout"]
    assert stdout.startswith("v2 hello hello (sensitive, sha256:")
    assert "pa55-word-xyz" not in run.stdout
    assert record["parameters"]["commands"][0].endswith("{{ssm-secure:/app/pw}}")  # kept as given
    missing = fleet.plumb("run", "AWS-RunShellScript", "--node", "local", "-p", "commands=echo {{ssm:/app/greeting:9}}")
    assert missing.returncode == 1 and "ParameterVersionNotFound" in missing.stderr


def test_references_inside_a_documents_steps_arrive_as_data_never_as_code(fleet):
    pwned = fleet.tmp / "pwned"
    hostile = f"$(touch {pwned}); `touch {pwned}` ' \" done"
    out = fleet.root / "hostile.txt"
    doc = {"apiVersion": "plumb.dev/v1", "kind": "Document", "metadata": {"name": "uses-ref"},
           "spec": {"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "echo",
                    "inputs": {"runCommand": [f'mkdir -p {fleet.root}',
                                              f'printf "%s\\n" {{{{ssm:/app/hostile}}}} > {out}']}}]}}
    assoc = {"apiVersion": "plumb.dev/v1", "kind": "Association", "metadata": {"name": "hostile-doc"},
             "spec": {"targets": [{"key": "InstanceIds", "values": ["local"]}], "document": {"name": "uses-ref"}}}
    fleet.write(extra=[_param("/app/hostile", hostile), doc, assoc])
    applied = fleet.plumb("reconcile")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert out.read_text() == hostile + "\n" and not pwned.exists()
    out.unlink()
    run = fleet.plumb("run", "uses-ref", "--node", "local")
    assert run.returncode == 0, run.stdout + run.stderr
    assert out.read_text() == hostile + "\n" and not pwned.exists()
    # The document runs again when the parameter it references changes.
    fleet.write(extra=[_param("/app/hostile", hostile + " v2"), doc, assoc])
    plan = fleet.plumb("plan")
    assert "/app/hostile changed (version 1 -> 2)" in plan.stdout, plan.stdout
