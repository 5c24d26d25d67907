"""JUnit XML: a suite per node, a case per resource, outcomes by classification, valid XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from reconciler.planmodel import Action, Classification as C
from reconciler.render import render_junit


def suites(xml: str) -> dict[str, ET.Element]:
    return {s.get("name"): s for s in ET.fromstring(xml).iter("testsuite")}


def outcome(case: ET.Element) -> str:
    return next((child.tag for child in case if child.tag in ("failure", "error", "skipped", "system-out")), "pass")


def test_output_parses_and_suite_counts_match_their_cases(plans):
    for plan in plans.values():
        for fail in (True, False):
            root = ET.fromstring(render_junit(plan, fail_on_change=fail))
            for element in [root, *root.iter("testsuite")]:
                cases = list(element.iter("testcase"))
                assert int(element.get("tests")) == len(cases)
                for tag, attribute in (("failure", "failures"), ("error", "errors"), ("skipped", "skipped")):
                    assert int(element.get(attribute)) == sum(c.find(tag) is not None for c in cases)


def test_one_suite_per_node_and_one_case_per_resource(mixed):
    found = suites(render_junit(mixed))
    assert sorted(found) == ["db-1", "web-1", "web-2"]
    web1 = found["web-1"]
    assert [c.get("classname") for c in web1.iter("testcase")] == ["web-1"] * 7
    assert "files:/etc/ssh/sshd_config" in [c.get("name") for c in web1.iter("testcase")]


def test_outcome_follows_classification(mixed):
    cases = {(s, c.get("name")): c for s, suite in suites(render_junit(mixed)).items() for c in suite.iter("testcase")}
    assert outcome(cases["web-1", "files:/etc/ssh/sshd_config"]) == "failure"
    assert outcome(cases["web-1", "packages:nginx"]) == "failure"
    assert outcome(cases["web-1", "sysctl:net.ipv4.ip_forward"]) == "error"
    assert outcome(cases["web-1", "services:nginx"]) == "pass"
    skipped = cases["web-2", "packages:nginx"].find("skipped")
    assert "blocked by window sunday-night until 2026-11-23T02:00:00Z" in skipped.get("message")


def test_failure_has_reason_as_message_and_changes_as_body(mixed):
    case = next(c for c in ET.fromstring(render_junit(mixed)).iter("testcase")
                if c.get("name") == "files:/etc/ssh/sshd_config")
    failure = case.find("failure")
    assert failure.get("message").startswith("changed outside plumb")
    assert 'mode: "0644" -> "0600"' in failure.text and "+PermitRootLogin no" in failure.text


def test_changes_are_notes_when_fail_on_change_is_off(mixed):
    root = ET.fromstring(render_junit(mixed, fail_on_change=False))
    assert root.get("failures") == "0"
    case = next(c for c in root.iter("testcase") if c.get("name") == "files:/etc/ssh/sshd_config")
    assert outcome(case) == "system-out" and case.find("system-out").text.startswith("drift:")


def test_unreachable_node_is_one_errored_case(mixed):
    db = suites(render_junit(mixed))["db-1"]
    (case,) = db.iter("testcase")
    assert case.find("error").get("type") == "unreachable"
    assert "Connection refused" in case.find("error").get("message")


def test_text_that_xml_cannot_hold_is_replaced(build):
    r = build.resource("files:/bin/blob", C.DRIFT, Action.UPDATE, "binary\x00\x1b edit",
                       content_diff="-\x01old\n+new\x0b\n")
    xml = render_junit(build.plan(build.node("n", r)))
    failure = ET.fromstring(xml).find(".//failure")
    assert "\ufffd" in failure.get("message") and "\x00" not in xml and "\x01" not in xml


def test_diagnostics_are_errors_in_their_own_suite(build):
    root = ET.fromstring(render_junit(build.plan(diagnostics=("manifests/a.yaml:1:1: error: bad",))))
    assert root.get("errors") == "1"
    assert suites(ET.tostring(root, encoding="unicode"))["manifests"].find(".//error").get("message").endswith("bad")
