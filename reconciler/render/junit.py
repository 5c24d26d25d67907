"""The plan as JUnit XML (`plumb plan --junit FILE`), for CI test reports.

Called by the CLI. One testsuite per node, one testcase per resource (classname = node,
name = address). A drifted or changing resource is a `<failure>` when `fail_on_change`
(the default, as Ansible's junit callback), else a passing case with a `<system-out>`
note; unknown is an `<error>`; blocked is `<skipped>`; an unreachable node is one
testcase with an `<error>`. Manifest diagnostics form a last suite of errors. Suite
attributes count their cases. Values and diffs go through `redact`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from reconciler.planmodel import Classification, NodePlan, Plan, ResourcePlan
from reconciler.render import redact

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")  # not allowed in XML 1.0
_OUTCOMES = {"failure": "failures", "error": "errors", "skipped": "skipped"}  # child tag -> count attribute


def render(plan: Plan, *, fail_on_change: bool = True) -> str:
    """The plan as a JUnit XML document ending in a newline."""
    root = ET.Element("testsuites", name="plumb plan")
    for node in sorted(plan.nodes, key=lambda n: n.node):
        root.append(_suite(node, plan, fail_on_change))
    if plan.diagnostics:
        root.append(_diagnostics(plan))
    _tally(root, root.iter("testcase"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _suite(node: NodePlan, plan: Plan, fail_on_change: bool) -> ET.Element:
    suite = _el(None, "testsuite", name=node.node, hostname=node.node)
    props = _el(suite, "properties")
    for name, value in (("git_revision", plan.git_revision), ("inventory_time", node.inventory_time),
                        ("inventory_fingerprint", node.inventory_fingerprint)):
        _el(props, "property", name=name, value=value)
    if not node.reachable:
        case = _el(suite, "testcase", classname=node.node, name="reachable", time="0")
        _el(case, "error", node.error, message=node.error or "unreachable", type="unreachable")
    for r in sorted(node.resources, key=lambda r: (r.address, r.association)):
        suite.append(_case(node.node, r, fail_on_change))
    _tally(suite, suite.iter("testcase"))
    return suite


def _case(node: str, r: ResourcePlan, fail_on_change: bool) -> ET.Element:
    case = _el(None, "testcase", classname=node, name=r.address, file=r.source.file,
               line=str(r.source.line), time="0")
    kind = r.classification
    if kind is Classification.UNKNOWN:
        _el(case, "error", _body(r), message=r.reason, type=kind.value)
    elif kind is Classification.BLOCKED:
        until = f" until {r.blocked_until}" if r.blocked_until else ""
        _el(case, "skipped", message=f"blocked by window {r.window or '(unnamed)'}{until}: {r.reason}")
    elif r.will_change or kind.drifted:
        if fail_on_change:
            _el(case, "failure", _body(r), message=r.reason, type=kind.value)
        else:
            _el(case, "system-out", f"{kind.value}: {r.reason}\n{_body(r)}")
    return case


def _diagnostics(plan: Plan) -> ET.Element:
    suite = _el(None, "testsuite", name="manifests")
    for number, text in enumerate(plan.diagnostics, 1):
        case = _el(suite, "testcase", classname="manifests", name=f"diagnostic {number}", time="0")
        _el(case, "error", text, message=text, type="diagnostic")
    _tally(suite, suite.iter("testcase"))
    return suite


def _body(r: ResourcePlan) -> str:
    symbol = "?" if r.classification is Classification.UNKNOWN else r.action.symbol.strip()
    lines = [f"{symbol} {r.address} ({r.association}, {r.source.file}:{r.source.line})".lstrip(), r.reason]
    lines += [redact.field_line(c, r) for c in redact.shown_changes(r)]
    if r.triggers:
        lines.append("then runs: " + ", ".join(r.triggers))
    diff = redact.content(r)
    return "\n".join(lines + ([diff] if diff else []))


def _tally(element: ET.Element, cases) -> None:
    cases = list(cases)
    element.set("tests", str(len(cases)))
    for outcome, attribute in _OUTCOMES.items():
        element.set(attribute, str(sum(case.find(outcome) is not None for case in cases)))
    element.set("time", "0")


def _el(parent: ET.Element | None, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    """An element whose text and attributes hold only characters XML 1.0 allows."""
    clean = {k: _NOT_XML.sub("\ufffd", v) for k, v in attrs.items()}
    element = ET.Element(tag, clean) if parent is None else ET.SubElement(parent, tag, clean)
    if text:
        element.text = _NOT_XML.sub("\ufffd", text)
    return element
