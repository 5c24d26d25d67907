"""Patch Manager at the edge: a node's patch baseline evaluated against its inventory and
the store, turned into plan resources, installed by reconcile, and recorded as compliance.

`reconciler.patching` decides (pure): which baseline applies, which patches it approves
and why, each patch's SSM state. This module feeds it what only the store knows — when
plumb first saw each candidate version anywhere in the fleet (approveAfterDays and
approveUntilDate on apt), and each patch's state after the node's last Scan or Install
(FAILED and INSTALLED_PENDING_REBOOT persist until a later operation clears them) — and
turns the result into:

- plan resources `patches:<package>` (pending changes for missing approved patches,
  blocked outside the baseline's maintenance window), pointing at the baseline's manifest
  line that approved each patch;
- the `plumb:patch` step reconcile runs (with the baseline's rejected list and action);
- compliance items of type Patch (one per patch, with its state) and the node summary.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Mapping

from .. import patching
from ..kinds.node import Node
from ..kinds.patchbaseline import PatchBaseline
from ..model import Model
from ..plan import window_gate
from ..planmodel import Action, Classification, FieldChange, NodePlan, ResourcePlan, Source
from ..store import ComplianceItem, Store

COMPLIANCE_TYPE = "Patch"
PREFIX = "patch-baseline:"  # the `association` of a patch resource: which baseline it comes from


def association_of(baseline: PatchBaseline) -> str:
    return PREFIX + baseline.name


def baseline_for(model: Model, node: Node, inventory: Mapping | None) -> tuple[PatchBaseline | None, str]:
    os_name = patching.operating_system(inventory or {})
    if os_name is None:
        return None, "the node's operating system is not known yet (collect its inventory)"
    return patching.select_baseline(model.patch_baselines, node.labels, os_name)


def previous_states(store: Store, node: str) -> dict[str, tuple[str, str]]:
    """name → (state, version) after the node's last Scan or Install."""
    return {i.item_id: (i.details.get("State", ""), i.details.get("Version", ""))
            for i in store.compliance(COMPLIANCE_TYPE, node)}


def report_for(model: Model, node: Node, inventory: Mapping | None, store: Store, now: datetime,
               previous: Mapping[str, tuple[str, str]] | None = None) -> patching.PatchReport | None:
    """The node's patch report, or None when no baseline applies to it."""
    baseline, _ = baseline_for(model, node, inventory)
    if baseline is None:
        return None
    return evaluate(baseline, node.name, inventory, store, now, previous)


def evaluate(baseline: PatchBaseline, node: str, inventory: Mapping | None, store: Store, now: datetime,
             previous: Mapping[str, tuple[str, str]] | None = None) -> patching.PatchReport:
    """`baseline` evaluated on a node, with first-seen dates and previous states from the store."""
    keys = [f"{u.get('Name')}={v.get('Version')}" for u in _updates(inventory)
            for v in (u.get("Versions") or [{"Version": u.get("CandidateVersion")}])]
    first_seen = store.first_seen_anywhere("update", keys)
    if previous is None:
        previous = previous_states(store, node)
    return patching.evaluate(baseline, inventory or {}, first_seen=first_seen, now=now, previous=previous)


def _updates(inventory: Mapping | None) -> list:
    report = ((inventory or {}).get("Types") or {}).get("plumb:AvailableUpdate") or {}
    return list(report.get("Content") or ()) if report.get("Status") == "ok" else []


def with_patches(model: Model, node: Node, node_plan: NodePlan, inventory: Mapping | None, store: Store,
                 now: datetime, windows: Mapping) -> NodePlan:
    """The node's plan with its patch resources added (nothing when no baseline applies)."""
    if not model.patch_baselines or not node_plan.reachable:
        return node_plan
    baseline, _ = baseline_for(model, node, inventory)
    if baseline is None:
        return node_plan
    report = evaluate(baseline, node.name, inventory, store, now)
    resources = patch_resources(baseline, report, windows.get(baseline.maintenance_window)
                                if baseline.maintenance_window else None)
    if not resources:
        return node_plan
    installing = [r for r in resources if r.will_change]
    document = node_plan.document
    if installing:  # the corrective document a saved plan shows: its plumb:* steps, then the patches
        document = dict(document or {"schemaVersion": "2.2", "description": f"plumb: corrective changes for "
                                     f"{node.name}", "mainSteps": []})
        document["mainSteps"] = [*document["mainSteps"], install_step(baseline, installing)]
    return replace(node_plan, resources=node_plan.resources + resources, document=document)


def _source(baseline: PatchBaseline, pointer: str) -> Source:
    line, column = baseline.origin.key_at(pointer or "/spec")
    return Source(baseline.origin.file, line, column, pointer or "/spec")


def patch_resources(baseline: PatchBaseline, report: patching.PatchReport, window) -> tuple[ResourcePlan, ...]:
    """Plan resources for what Install would do (MISSING, FAILED) and what needs attention
    (INSTALLED_REJECTED, INSTALLED_PENDING_REBOOT); compliant patches stay in the report."""
    association = association_of(baseline)
    if report.unknown:
        return (ResourcePlan("patches:*", "patches", "*", association, _source(baseline, ""), Action.NOOP,
                             Classification.UNKNOWN, f"unknown: {report.unknown}"),)
    found = []
    for patch in report.patches:
        source = _source(baseline, patch.approval.pointer)
        address = f"patches:{patch.name}" + (f":{patch.arch}" if patch.arch not in ("", "all", "noarch") else "")
        if patch.state in ("MISSING", "FAILED"):
            again = " (the last install FAILED; trying again)" if patch.state == "FAILED" else ""
            reason = (f"{patch.state}: {patch.installed_version or 'not installed'} installed, {patch.version} "
                      f"approved{again}: {patch.approval.reason or patch.approval.rule}")
            change = FieldChange("version", patch.installed_version or None, patch.version)
            classification, reason, until = window_gate(window, Classification.PENDING_CHANGE, reason)
            found.append(ResourcePlan(address, "patches", patch.name, association, source, Action.UPDATE,
                                      classification, reason, (change,), severity=patch.severity,
                                      blocked_until=until, window=baseline.maintenance_window))
        elif patch.state in ("INSTALLED_REJECTED", "INSTALLED_PENDING_REBOOT"):
            why = ("installed although the baseline rejects it (rejectedPatchesAction BLOCK); plumb never removes "
                   "packages: remove it, or take it off rejectedPatches" if patch.state == "INSTALLED_REJECTED"
                   else "installed by plumb, waiting for a reboot (rebootOption NoReboot)")
            found.append(ResourcePlan(address, "patches", patch.name, association, source, Action.NOOP,
                                      Classification.IN_SYNC, f"{patch.state}: {patch.installed_version} {why}",
                                      severity=patch.severity, window=baseline.maintenance_window))
    return tuple(found)


def install_step(baseline: PatchBaseline, resources: list[ResourcePlan], reboot_option: str | None = None) -> dict:
    """The plumb:patch step that installs these patch resources at their approved versions."""
    return {"action": "plumb:patch", "name": f"patch_{baseline.name}"[:128],
            "inputs": {"operation": "Install",
                       "packages": [{"name": r.id, "version": r.changes[0].after} for r in resources],
                       "rejected": list(baseline.rejected_patches),
                       "rejectedPatchesAction": baseline.rejected_patches_action,
                       "rebootOption": reboot_option or baseline.reboot_option}}


@dataclass(frozen=True)
class Outcome:
    """What one Install did on a node: name → (state, version) as the agent reported it."""

    results: Mapping[str, tuple[str, str]]
    reboot_required: bool = False
    rebooting: bool = False


def compliance_items(node: str, report: patching.PatchReport, run_id: str, at: str) -> list[ComplianceItem]:
    """One item per patch (SSM's per-patch compliance), its state and why, in `details`."""
    items = []
    for patch in report.patches:
        items.append(ComplianceItem(
            node, COMPLIANCE_TYPE, patch.name, "COMPLIANT" if patch.compliant else "NON_COMPLIANT", patch.severity,
            run_id, at, f"{patch.name} {patch.version}".strip(),
            {"State": patch.state, "Version": patch.version, "InstalledVersion": patch.installed_version,
             "Baseline": report.baseline, "Rule": patch.approval.rule, "Reason": patch.approval.reason,
             "Security": patch.security, "Suite": patch.suite}))
    return items


def summary(report: patching.PatchReport) -> dict:
    return {"baseline": report.baseline, "operating_system": report.operating_system, "product": report.product,
            "severity": report.severity, **report.counts()}
