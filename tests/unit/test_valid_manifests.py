"""The example fleet and the valid corpus load cleanly into frozen dataclasses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reconciler.kinds.association import Resource
from reconciler.kinds.node import Transport
from reconciler.kinds.parameter import ParameterType
from reconciler.loader import load

REPO = Path(__file__).resolve().parents[2]
VALID = REPO / "tests" / "fixtures" / "valid"


def test_example_fleet_is_valid_without_warnings():
    result = load(str(REPO / "manifests"))
    assert result.diagnostics == []
    counts = result.model.counts()
    assert counts["Node"] >= 3 and counts["Association"] >= 3


def test_example_fleet_has_what_the_readme_promises():
    model = load(str(REPO / "manifests")).model
    local = model.node("localhost")
    assert local.transport is Transport.LOCAL
    roles = {n.labels.get("role") for n in model.nodes}
    assert {"web", "db"} <= roles
    types = {r.type for a in model.associations for r in a.resources}
    assert {"packages", "files", "services"} <= types
    assert any("template" in r.desired for a in model.associations for r in a.resources)
    assert any(p.type is ParameterType.SECURE_STRING for p in model.parameters)
    assert any(b.operating_system == "DEBIAN" for b in model.patch_baselines)
    assert model.maintenance_windows and any(not d.origin.builtin for d in model.documents)


def test_what_targets_localhost_only_touches_the_demo_directory():
    model = load(str(REPO / "manifests")).model
    local = model.node("localhost")
    from reconciler.targets import matches

    for assoc in model.associations:
        if matches(assoc.targets, local.name, local.labels):
            assert assoc.document is None
            for resource in assoc.resources:
                assert resource.type in ("files", "directories"), resource
                assert resource.id.startswith("/tmp/plumb-demo"), resource


def test_valid_corpus_loads_every_kind_and_field():
    result = load(str(VALID))
    assert result.diagnostics == []
    model = result.model
    app = model.node("app-1")
    assert (app.address, app.port, app.user, app.become) == ("192.0.2.10", 2202, "deploy", "sudo")
    assert model.node("app-2").labels["zone"] == "b"
    features = model.parameter("/staging/app/features")
    assert features.type is ParameterType.STRING_LIST and features.value == "search,checkout"
    assert model.parameter("/staging-flat-name") is model.parameter("staging-flat-name")
    assoc = next(a for a in model.associations if a.name == "app-state")
    assert assoc.parameters["replicas"] == 3 and assoc.parameters["debug"] is False
    assert [r.type for r in assoc.resources] == sorted(
        [r.type for r in assoc.resources],
        key=("packages", "users", "directories", "files", "sysctl", "services").index)
    sysctl = {r.id: r.desired for r in assoc.resources if r.type == "sysctl"}
    assert sysctl["net.ipv4.ip_forward"]["value"] == "1"
    assert model.assets["assets/logo.txt"].startswith(b"not really")


def test_raw_ssm_document_is_named_after_its_file_and_keeps_its_content():
    model = load(str(VALID)).model
    doc = model.document("yaml-raw-doc")
    assert doc is not None and doc.content["schemaVersion"] == "2.2"
    assert doc.parameters["format"].allowed_values == ("+%F", "+%s")
    assert doc.origin.at("/spec/mainSteps/0/name")[0] == 11  # positions point into the raw file


def test_raw_json_document_in_example_fleet():
    model = load(str(REPO / "manifests")).model
    doc = model.document("rotate-app-logs")
    assert doc.origin.file.endswith("rotate-app-logs.json")


def test_loaded_objects_are_frozen():
    model = load(str(VALID)).model
    for obj in model.objects():
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.meta = None  # type: ignore[misc]
    assoc = model.associations[0]
    with pytest.raises(TypeError):
        assoc.parameters["x"] = 1  # type: ignore[index]
    assert isinstance(assoc.resources, tuple) and isinstance(assoc.resources[0], Resource)


def test_resource_pointers_locate_manifest_lines():
    model = load(str(REPO / "manifests")).model
    assoc = next(a for a in model.associations if a.name == "web-nginx")
    nginx_conf = next(r for r in assoc.resources if r.id == "/etc/nginx/conf.d/app.conf")
    line, _ = assoc.origin.key_at(nginx_conf.pointer)
    text = Path(REPO / assoc.origin.file).read_text().splitlines()[line - 1]
    assert "/etc/nginx/conf.d/app.conf:" in text


def test_a_single_file_can_be_validated(tmp_path):
    (tmp_path / "one.yaml").write_text("apiVersion: plumb.dev/v1\nkind: Node\nmetadata: {name: n1}\n")
    result = load(str(tmp_path / "one.yaml"))
    assert result.ok and result.model.node("n1")


def test_missing_directory_is_a_diagnostic(tmp_path):
    result = load(str(tmp_path / "nope"))
    assert not result.ok and "no such file or directory" in result.errors[0].message


def test_unrelated_json_files_are_ignored(tmp_path):
    (tmp_path / "package.json").write_text('{"name": "x"}')
    (tmp_path / "n.yaml").write_text("apiVersion: plumb.dev/v1\nkind: Node\nmetadata: {name: n1}\n")
    assert load(str(tmp_path)).ok
