"""The plan as SARIF 2.1.0 (`plumb plan --sarif FILE`): code-scanning annotations on the
manifest lines whose resources drift, change, cannot be observed or are blocked.

Called by the CLI; the file is uploaded by CI (e.g. github/codeql-action/upload-sarif).
One result per drifted, changing, unknown or blocked resource per node, located at the
resource's declaration (`uriBaseId` %SRCROOT%, the repository root), with a fingerprint
stable per node and address so an alert survives unrelated edits. Unreachable nodes are
results too, and make the invocation unsuccessful. Values go through `redact`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from reconciler.planmodel import Action, Classification, NodePlan, Plan, ResourcePlan
from reconciler.render import redact

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_ROOT = "%SRCROOT%"

# id -> (level, short description, full description, help)
RULES: dict[str, tuple[str, str, str, str]] = {
    "plumb/drift": (
        "error", "A resource changed outside plumb",
        "The node no longer matches what plumb last applied: someone or something changed it out of band.",
        "Find out who changed the node and why. `plumb reconcile` puts it back to the manifest; if the "
        "change was intended, commit it to the manifest instead."),
    "plumb/pending-change": (
        "warning", "Applying the manifests will change this resource",
        "The manifests moved (a new commit) and the node still matches what was last applied.",
        "Review the change; `plumb reconcile` applies it after merge."),
    "plumb/unknown": (
        "error", "The resource could not be observed",
        "The agent could not observe this resource, so plumb cannot say whether it matches; it does not guess.",
        "Check the node's inventory collectors (`plumb inventory show NODE`) and the reason given."),
    "plumb/blocked": (
        "note", "A change is blocked by a maintenance window",
        "A change exists for this resource but may not be applied until its maintenance window opens.",
        "Wait for the window, or apply now with `plumb reconcile --ignore-windows`."),
    "plumb/unreachable": (
        "error", "The node could not be reached",
        "plumb could not collect the node's inventory, so none of its resources were planned.",
        "Check the node's address, credentials and network path, then plan again."),
}
_RULE_INDEX = {rule: index for index, rule in enumerate(RULES)}
_VERB = {Action.CREATE: "will be created", Action.UPDATE: "will be updated",
         Action.DELETE: "will be removed", Action.NOOP: "needs no action"}


def render(plan: Plan) -> str:
    """The plan as a SARIF log, indented JSON ending in a newline."""
    return json.dumps(log(plan), indent=2, ensure_ascii=False) + "\n"


def log(plan: Plan) -> dict[str, Any]:
    """The SARIF log as plain JSON data (already redacted)."""
    nodes = sorted(plan.nodes, key=lambda n: n.node)
    results = [res for n in nodes for res in _node_results(n, plan)]
    run = {
        "tool": {"driver": {"name": "plumb", "rules": [_rule(rule) for rule in RULES]}},
        "automationDetails": {"id": "plumb/plan/"},
        "invocations": [_invocation(plan)],
        "results": results,
        "properties": {"gitRevision": plan.git_revision, "manifests": plan.manifests,
                       "createdAt": plan.created_at, "summary": plan.summary().line()},
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def _rule(rule: str) -> dict[str, Any]:
    level, short, full, help_text = RULES[rule]
    return {
        "id": rule,
        "name": rule.split("/", 1)[1].title().replace("-", ""),
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": level},
    }


def _invocation(plan: Plan) -> dict[str, Any]:
    notes = [f"{n.node}: unreachable: {n.error}" for n in plan.nodes if not n.reachable]
    notes += list(plan.diagnostics)
    return {
        "executionSuccessful": not notes,
        "toolExecutionNotifications": [{"level": "error", "message": {"text": t}} for t in sorted(notes)],
    }


def _node_results(node: NodePlan, plan: Plan) -> list[dict[str, Any]]:
    results = [] if node.reachable else [_unreachable(node, plan)]
    for r in sorted(node.resources, key=lambda r: (r.address, r.association)):
        rule = _rule_for(r)
        if rule:
            results.append(_result(rule, _message(node.node, r), _location(r), node.node, r.address,
                                   _properties(node.node, r)))
    return results


def _rule_for(r: ResourcePlan) -> str:
    kind = r.classification
    if kind.drifted:
        return "plumb/drift"
    if kind is Classification.UNKNOWN:
        return "plumb/unknown"
    if kind is Classification.BLOCKED:
        return "plumb/blocked"
    return "plumb/pending-change" if r.will_change else ""


def _message(node: str, r: ResourcePlan) -> str:
    kind = r.classification
    if kind.drifted:
        what = f"changed outside plumb (drift) and {_VERB[r.action]}"
    elif kind is Classification.UNKNOWN:
        what = "could not be observed"
    elif kind is Classification.BLOCKED:
        what = f"has a change blocked by window {r.window or '(unnamed)'}"
        what += f" until {r.blocked_until}" if r.blocked_until else ""
    else:
        what = _VERB[r.action]
    text = f"{node}: {r.address} ({r.association}) {what}: {r.reason}"
    changes = [redact.field_line(c, r) for c in redact.shown_changes(r)]
    content = redact.content(r) if r.sensitive else ""
    return text + "".join(f"\n{line}" for line in changes + ([content] if content else []))


def _unreachable(node: NodePlan, plan: Plan) -> dict[str, Any]:
    # NodePlan does not say where the node is declared, so the location is the manifests directory
    location = {"physicalLocation": {"artifactLocation": _artifact(plan.manifests.rstrip("/") + "/")}}
    message = f"{node.node}: unreachable, nothing planned: {node.error or 'no reason given'}"
    return _result("plumb/unreachable", message, location, node.node, "", {"node": node.node})


def _result(rule: str, message: str, location: dict, node: str, address: str,
            properties: dict) -> dict[str, Any]:
    return {
        "ruleId": rule,
        "ruleIndex": _RULE_INDEX[rule],
        "level": RULES[rule][0],
        "message": {"text": message},
        "locations": [location],
        "partialFingerprints": {"plumbResource/v1": fingerprint(node, address)},
        "properties": properties,
    }


def _location(r: ResourcePlan) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": _artifact(r.source.file)}
    if r.source.line >= 1:
        physical["region"] = {"startLine": r.source.line, "startColumn": max(r.source.column, 1)}
    logical = {"name": r.address, "fullyQualifiedName": f"{r.association}/{r.address}", "kind": "resource"}
    return {"physicalLocation": physical, "logicalLocations": [logical]}


def _artifact(path: str) -> dict[str, str]:
    path = path.replace("\\", "/")
    if path.startswith("/"):
        return {"uri": "file://" + quote(path)}
    return {"uri": quote(path.removeprefix("./")), "uriBaseId": _ROOT}


def _properties(node: str, r: ResourcePlan) -> dict[str, Any]:
    return {"node": node, "address": r.address, "association": r.association, "action": r.action.value,
            "classification": r.classification.value, "severity": r.severity, "pointer": r.source.pointer}


def fingerprint(node: str, address: str) -> str:
    """Stable identity of a finding: the same node and address give the same value in every plan."""
    return hashlib.sha256(f"{node}\0{address}".encode("utf-8")).hexdigest()[:32]
