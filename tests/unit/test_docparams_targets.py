"""Run Command parameters are checked on the controller before any node is contacted; targets select nodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.docparams import InvalidParameters, parse_cli_parameters, resolve
from reconciler.loader import load
from reconciler.targets import Target, TargetSyntaxError, parse_cli_target, select_nodes

REPO = Path(__file__).resolve().parents[2]
MODEL = load(str(REPO / "manifests")).model


def test_cli_parameters_repeat_and_json():
    assert parse_cli_parameters(["commands=uptime", "commands=df -h", "x=a=b"]) == {
        "commands": ["uptime", "df -h"], "x": ["a=b"]}
    assert parse_cli_parameters(['{"commands": ["a", "b"], "workingDirectory": "/tmp"}']) == {
        "commands": ["a", "b"], "workingDirectory": ["/tmp"]}
    with pytest.raises(InvalidParameters, match="expected name=value"):
        parse_cli_parameters(["oops"])


def test_resolve_fills_defaults_and_shapes_types():
    doc = MODEL.document("AWS-RunShellScript")
    resolved = resolve(doc, {"commands": ["uptime"]})
    assert resolved == {"commands": ["uptime"], "workingDirectory": "", "executionTimeout": "3600"}


@pytest.mark.parametrize("given,message", [
    ({}, "'commands' is required"),
    ({"commands": ["x"], "workingDir": ["/"]}, "did you mean workingDirectory?"),
    ({"commands": ["x"], "executionTimeout": ["0"]}, "does not match"),
    ({"commands": ["x"], "workingDirectory": ["/a", "/b"]}, "is a String: give one value"),
    ({"commands": ["{{ssm:/prod/web/port}}"]}, "Parameter Store reference .* was not resolved"),
])
def test_resolve_refuses_bad_parameters(given, message):
    with pytest.raises(InvalidParameters, match=message):
        resolve(MODEL.document("AWS-RunShellScript"), given)


def test_allowed_values_are_enforced():
    doc = MODEL.document("harden-sshd")
    with pytest.raises(InvalidParameters, match="not one of"):
        resolve(doc, {"permitRootLogin": ["yes"], "allowUsers": ["a"]})


@pytest.mark.parametrize("text,target", [
    ("tag:role=web", Target("tag:role", ("web",))),
    ("tag:role=web,db", Target("tag:role", ("web", "db"))),
    ("Key=tag:env,Values=prod", Target("tag:env", ("prod",))),
    ("InstanceIds=web-1,web-2", Target("InstanceIds", ("web-1", "web-2"))),
    ("tag-key=PatchGroup", Target("tag-key", ("PatchGroup",))),
])
def test_cli_targets(text, target):
    assert parse_cli_target(text) == target


def test_bad_cli_targets_are_explained():
    with pytest.raises(TargetSyntaxError, match="expected tag:<key>="):
        parse_cli_target("role=web")
    with pytest.raises(TargetSyntaxError, match="no values"):
        parse_cli_target("tag:role=")


def test_select_nodes_by_targets_and_names():
    web = select_nodes(MODEL.nodes, [parse_cli_target("tag:role=web")])
    assert [n.name for n in web] == ["web-1", "web-2"]
    prod_db = select_nodes(MODEL.nodes, [parse_cli_target("tag:env=prod"), parse_cli_target("tag:role=db")])
    assert [n.name for n in prod_db] == ["db-1"]
    assert [n.name for n in select_nodes(MODEL.nodes, names=["localhost"])] == ["localhost"]
    assert len(select_nodes(MODEL.nodes, [parse_cli_target("InstanceIds=*")])) == len(MODEL.nodes)
    with pytest.raises(TargetSyntaxError, match="no Node named 'web-9'"):
        select_nodes(MODEL.nodes, names=["web-9"])
