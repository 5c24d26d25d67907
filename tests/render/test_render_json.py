"""The machine view: Terraform-like shape, separate change and drift arrays, deterministic."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

from reconciler.render import render_json

ITEM_KEYS = ["node", "address", "type", "id", "association", "source", "action", "classification", "reason",
             "changes", "content_diff", "sensitive", "severity", "blocked_until", "window", "triggers"]


def test_top_level_keys_in_fixed_order(mixed):
    doc = json.loads(render_json(mixed))
    assert list(doc) == ["format_version", "created_at", "manifests", "git_revision", "summary",
                         "resource_changes", "resource_drift", "nodes", "diagnostics"]
    assert doc["format_version"] == mixed.format_version
    assert doc["summary"] == asdict(mixed.summary())


def test_resource_changes_hold_exactly_what_will_change(mixed):
    doc = json.loads(render_json(mixed))
    expected = sorted((n.node, r.address) for n in mixed.nodes for r in n.resources if r.will_change)
    assert [(i["node"], i["address"]) for i in doc["resource_changes"]] == expected
    assert all(list(item) == ITEM_KEYS for item in doc["resource_changes"])


def test_resource_drift_holds_exactly_the_drifted(mixed):
    doc = json.loads(render_json(mixed))
    assert {(i["node"], i["address"]) for i in doc["resource_drift"]} == {
        ("web-1", "files:/etc/ssh/sshd_config"), ("web-1", "files:/etc/plumb/db.env")}
    assert {i["classification"] for i in doc["resource_drift"]} == {"drift", "drift_and_change"}


def test_items_carry_source_changes_and_window(mixed):
    doc = json.loads(render_json(mixed))
    sshd = next(i for i in doc["resource_drift"] if i["address"] == "files:/etc/ssh/sshd_config")
    assert sshd["source"] == {"file": "manifests/associations/harden-ssh.yaml", "line": 18, "column": 9,
                              "pointer": "/spec/state/files/~1etc~1ssh~1sshd_config"}
    assert sshd["changes"] == [{"field": "mode", "before": "0644", "after": "0600", "sensitive": False}]
    assert sshd["triggers"] == ["restart:sshd"] and sshd["severity"] == "HIGH"
    blocked = next(r for n in doc["nodes"] if n["node"] == "web-2" for r in n["resources"]
                   if r["classification"] == "blocked")
    assert (blocked["window"], blocked["blocked_until"]) == ("sunday-night", "2026-11-23T02:00:00Z")


def test_nodes_list_every_resource_with_reasons_and_counts(mixed):
    doc = json.loads(render_json(mixed))
    assert [n["node"] for n in doc["nodes"]] == ["db-1", "web-1", "web-2"]
    web1 = doc["nodes"][1]
    assert len(web1["resources"]) == 7 and all(r["reason"] for r in web1["resources"])
    assert "in sync: running and enabled" in [r["reason"] for r in web1["resources"]]
    assert web1["counts"]["in_sync"] == 1 and web1["counts"]["drifted"] == 2
    assert doc["nodes"][0]["reachable"] is False and "Connection refused" in doc["nodes"][0]["error"]


def test_output_does_not_depend_on_input_order(mixed):
    shuffled = replace(mixed, nodes=tuple(replace(n, resources=n.resources[::-1]) for n in mixed.nodes[::-1]))
    assert render_json(shuffled) == render_json(mixed)


def test_nested_values_are_emitted_with_sorted_keys(build):
    from reconciler.planmodel import Action, Classification, FieldChange
    r = build.resource("sysctl:x", Classification.PENDING_CHANGE, Action.UPDATE, "r",
                       changes=(FieldChange("value", {"b": 1, "a": [2, 3]}, {"z": None, "a": 1}),))
    doc = json.loads(render_json(build.plan(build.node("n", r))))
    change = doc["resource_changes"][0]["changes"][0]
    assert list(change["before"]) == ["a", "b"] and list(change["after"]) == ["a", "z"]
