"""Document associations in the plan, and SSM's trigger: a referenced parameter's new version
makes what used it apply again, and the plan says which parameter moved."""

from __future__ import annotations

from pathlib import Path

from reconciler.compile import Resolved, ResolveError, compile_node
from reconciler.loader import load
from reconciler.plan import LastApplied, plan_node
from reconciler.planmodel import Action, Classification

MANIFESTS = """
apiVersion: plumb.dev/v1
kind: Node
metadata: {name: n1, labels: {role: app}}
---
apiVersion: plumb.dev/v1
kind: Parameter
metadata: {name: /app/users}
spec: {type: StringList, value: [alice, bob]}
---
apiVersion: plumb.dev/v1
kind: Parameter
metadata: {name: /app/pw}
spec: {type: SecureString, sealedValue: "plumb-sealed:v1:AAAA"}
---
apiVersion: plumb.dev/v1
kind: Document
metadata: {name: greet}
spec:
  schemaVersion: "2.2"
  parameters:
    users: {type: StringList}
    pw: {type: String, default: ""}
  mainSteps:
    - action: aws:runShellScript
      name: hello
      inputs: {runCommand: ["echo {{ users }}"]}
---
apiVersion: plumb.dev/v1
kind: Association
metadata: {name: greeter}
spec:
  targets: [{key: tag:role, values: [app]}]
  document:
    name: greet
    parameters:
      users: "{{ssm:/app/users}}"
---
apiVersion: plumb.dev/v1
kind: Association
metadata: {name: secretive}
spec:
  targets: [{key: tag:role, values: [app]}]
  document:
    name: greet
    parameters:
      users: [x]
      pw: "{{ssm-secure:/app/pw}}"
"""


def _model(tmp_path: Path):
    (tmp_path / "m.yaml").write_text(MANIFESTS)
    result = load(tmp_path)
    assert result.ok, [d.render() for d in result.diagnostics]
    return result.model


def _resolver(versions):
    def resolve(body, secure):
        if body == "/app/users":
            return Resolved("alice,bob" if versions["/app/users"] == 1 else "alice,bob,carol", "/app/users",
                            versions["/app/users"], "StringList")
        if body == "/app/pw":
            return Resolved("hunter2-secret", "/app/pw", versions["/app/pw"], "SecureString")
        raise ResolveError(f"ParameterNotFound: {body}")
    return resolve


def _compile(model, versions):
    return compile_node(model, model.node("n1"), {}, _resolver(versions))


def test_stringlist_reference_arrives_as_items_and_secrets_mark_the_resource(tmp_path):
    model = _model(tmp_path)
    desired = _compile(model, {"/app/users": 1, "/app/pw": 1})
    by = {r.address: r for r in desired.resources}
    greeter, secretive = by["documents:greeter"], by["documents:secretive"]
    assert list(greeter.spec["parameters"]["users"]) == ["alice", "bob"]
    assert greeter.references == ("/app/users:1",) and not greeter.sensitive
    assert secretive.sensitive and secretive.references == ("/app/pw:1",)


def test_never_run_then_in_sync_then_rerun_when_the_reference_moves(tmp_path):
    model = _model(tmp_path)
    desired = _compile(model, {"/app/users": 1, "/app/pw": 1})
    first = {r.address: r for r in plan_node(desired, {}, {}, {}).resources}
    assert first["documents:greeter"].action is Action.CREATE
    assert "has not run on this node" in first["documents:greeter"].reason

    greeter = next(r for r in desired.resources if r.address == "documents:greeter")
    last = {"documents:greeter": LastApplied(greeter.desired_hash(), "", "2026-11-23T00:00:00Z", "abc",
                                             greeter.references)}
    again = {r.address: r for r in plan_node(desired, {}, last, {}).resources}
    assert again["documents:greeter"].classification is Classification.IN_SYNC

    moved = _compile(model, {"/app/users": 2, "/app/pw": 1})
    after = {r.address: r for r in plan_node(moved, {}, last, {}).resources}
    r = after["documents:greeter"]
    assert (r.action, r.classification) == (Action.UPDATE, Classification.PENDING_CHANGE)
    assert "/app/users changed (version 1 -> 2) since it last ran" in r.reason


def test_saved_plan_step_for_a_secret_document_holds_no_parameters(tmp_path):
    model = _model(tmp_path)
    plan = plan_node(_compile(model, {"/app/users": 1, "/app/pw": 1}), {}, {}, {})
    steps = {s["name"]: s for s in plan.document["mainSteps"]}
    secret_step = steps["documents_secretive"]
    assert secret_step["action"] == "plumb:runDocument" and "parameters" not in secret_step["inputs"]
    assert "hunter2-secret" not in repr(plan)
    assert steps["documents_greeter"]["inputs"]["parameters"]["users"] == ["alice", "bob"]
