"""Reconcile: apply a plan's corrective changes, verify them, and record everything.

For each association (manifest order) its changing resources are applied on its nodes
with the association's rate controls (SSM semantics), one agent session per node, while
holding the node's lease so two reconciles never act on one node at once. onChange
actions (restart/reload) run only for files whose step reported a change. Then every
touched node is observed again and re-planned: each resource is reported converged or
not; last-applied state, history events and Association compliance are recorded, each
tagged with the git revision and the manifest file:line it came from.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence

from ..compile import DesiredResource, Resolver, compile_node, facts_from_inventory, model_resolver
from ..kinds.base import thaw
from ..kinds.node import Node
from ..kinds.patchbaseline import PatchBaseline
from ..model import Model
from ..plan import observe as observe_resource
from ..plan import plan_node, step_for, step_name
from ..planmodel import PARAMETER_STORE, Classification, NodePlan, Plan, ResourcePlan
from ..ratecontrol import RateController
from ..scrub import Scrubber
from ..statuses import Details, command_outcome
from ..store import AppliedRecord, CommandRecord, ComplianceItem, ResourceEvent, StepRecord, Store
from ..store.sqlite import utcnow
from ..transport import TransportError, session_for
from . import patches
from .inventory import collect_one, request_for
from .planning import last_applied_of, windows_at

LEASE_SECONDS = 3600


@dataclass
class NodeOutcome:
    node: str
    applied: list[str] = field(default_factory=list)  # addresses whose step succeeded
    failed: dict[str, str] = field(default_factory=dict)  # address → why
    converged: dict[str, bool] = field(default_factory=dict)  # address → verified after apply
    error: str = ""  # the node could not be worked on (lease, transport)
    skipped: bool = False
    patch_results: dict[str, tuple[str, str]] = field(default_factory=dict)  # package → (state, version)
    reboot_required: bool = False
    rebooting: bool = False


@dataclass
class ReconcileResult:
    run_id: str
    plan: Plan
    outcomes: dict[str, NodeOutcome]
    final: dict[str, NodePlan]  # re-plan after apply, per touched node

    @property
    def ok(self) -> bool:
        return all(not o.error and not o.failed and all(o.converged.values()) for o in self.outcomes.values())


Event = Callable[[str, str, str], None]  # (kind, node, message)


async def reconcile(model: Model, nodes: Sequence[Node], plan: Plan, store: Store, *, now: datetime,
                    resolver: Resolver | None = None, ignore_windows: bool = False,
                    on_event: Event = lambda kind, node, message: None, parameters=None,
                    scrubber: Scrubber | None = None, reboot_option: str | None = None,
                    record_associations: bool = True) -> ReconcileResult:
    """Apply `plan`. `parameters` (an engine.paramsync.ParameterContext) writes the Parameter
    manifests first, so every node gets the values the plan was made with; `scrubber` masks
    the secrets handed out in this run in everything recorded or reported."""
    resolver = resolver or model_resolver(model)
    scrubber = scrubber if scrubber is not None else Scrubber()
    on_event = _scrubbed_events(on_event, scrubber)
    run_id = str(uuid.uuid4())
    owner = f"reconcile-{run_id}"
    by_name = {n.name: n for n in nodes}
    outcomes = {p.node: NodeOutcome(p.node) for p in plan.nodes if p.reachable}
    final: dict[str, NodePlan] = {}
    store_plan = next((p for p in plan.nodes if p.node == PARAMETER_STORE), None)
    if store_plan is not None and parameters is not None:
        final[PARAMETER_STORE] = _apply_parameters(parameters, store_plan, plan, outcomes[PARAMETER_STORE], now,
                                                   on_event)
    node_plans = [p for p in plan.nodes if p.node != PARAMETER_STORE]
    touched = [p for p in node_plans if p.reachable and p.changes]
    for association in [*model.associations, *(_Baseline(b) for b in model.patch_baselines)]:
        work = [(by_name[p.node], [r for r in p.changes if r.association == association.name])
                for p in touched]
        work = [(node, resources) for node, resources in work if resources]
        if work:
            run = _Run(store, owner, resolver, on_event, f"{run_id}/{association.name}", scrubber,
                       plan.git_revision, reboot_option)
            await _apply_association(model, association, work, run, outcomes)
    final.update(await _verify(model, [by_name[p.node] for p in node_plans if p.reachable], store, now, resolver,
                               ignore_windows, outcomes, on_event))
    _record(model, plan, final, outcomes, store, run_id, resolver, ignore_windows, scrubber, now,
            record_associations)
    return ReconcileResult(run_id, plan, outcomes, final)


@dataclass(frozen=True)
class _Baseline:
    """A patch baseline as the unit reconcile applies with rate controls (as an association)."""

    baseline: PatchBaseline

    @property
    def name(self) -> str:
        return patches.association_of(self.baseline)

    @property
    def targets(self) -> tuple:
        return tuple(f"PatchGroup={g}" for g in self.baseline.patch_groups) or ("default baseline",)

    @property
    def max_concurrency(self) -> str:
        return self.baseline.max_concurrency

    @property
    def max_errors(self) -> str:
        return self.baseline.max_errors


def _scrubbed_events(on_event: Event, scrubber: Scrubber) -> Event:
    def scrubbed(kind: str, node: str, message: str) -> None:
        on_event(kind, node, scrubber.text(message))
    return scrubbed


def _apply_parameters(parameters, store_plan: NodePlan, plan: Plan, outcome: NodeOutcome, now, on_event) -> NodePlan:
    """Write the Parameter manifests' changes, then plan the store again: did each converge?"""
    changing = [r.address for r in store_plan.changes]
    outcome.failed.update(parameters.apply(store_plan, plan.git_revision, on_event, plan.created_at))
    outcome.applied.extend(a for a in changing if a not in outcome.failed)
    after = parameters.plan(now)
    state = {r.address: r for r in after.resources}
    for address in outcome.applied:
        ok = address in state and state[address].classification is Classification.IN_SYNC \
            or (address not in state)
        outcome.converged[address] = ok
        if not ok:
            on_event("not-converged", PARAMETER_STORE, f"{address}: {state[address].reason}")
    return after


@dataclass
class _Run:
    """What every node task of one association's run shares; the run is kept as a command record."""

    store: Store
    owner: str
    resolver: Resolver
    on_event: Event
    command_id: str
    scrubber: Scrubber = field(default_factory=Scrubber)
    revision: str = ""
    reboot_option: str | None = None  # overrides the baselines' rebootOption (plumb patch install)


async def _apply_association(model, association, work, run: _Run, outcomes):
    run.store.create_command(CommandRecord(
        run.command_id, f"plumb-reconcile:{association.name}", "", {}, [str(t) for t in association.targets],
        association.max_concurrency, association.max_errors, utcnow(), status="InProgress",
        status_details="InProgress"), [node.name for node, _ in work])
    control = RateController.from_strings(len(work), association.max_concurrency, association.max_errors)
    pending = list(work)
    running: set[asyncio.Task] = set()
    results: dict[str, Details] = {}
    while pending or running:
        while pending and control.may_start():
            control.started()
            node, resources = pending.pop(0)
            running.add(asyncio.create_task(
                _apply_node(model, node, resources, run, outcomes[node.name], control, results)))
        if not running:
            break
        done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    for node, resources in pending:  # MaxErrors exceeded: not attempted
        outcome = outcomes[node.name]
        for r in resources:
            outcome.failed[r.address] = f"not applied: association {association.name} exceeded maxErrors"
        results[node.name] = Details.TERMINATED
        run.store.update_invocation(run.command_id, node.name, status="Failed", status_details="Terminated",
                                    message="not run: the association exceeded maxErrors", finished_at=utcnow())
        run.on_event("terminated", node.name, f"{association.name}: not applied (maxErrors exceeded)")
    status, details = command_outcome([results[node.name] for node, _ in work], control.stopped)
    run.store.finish_command(run.command_id, status.value, details, utcnow())


async def _apply_node(model, node, resources: list[ResourcePlan], run: _Run, outcome, control, results):
    store, on_event = run.store, run.on_event
    store.update_invocation(run.command_id, node.name, status="InProgress", status_details="InProgress",
                            started_at=utcnow())
    holder = store.acquire_lease(node.name, run.owner, LEASE_SECONDS)
    if holder is not None:
        outcome.error = f"another reconcile holds this node: {holder}"
        _finish(run, node, control, results, Details.UNDELIVERABLE, outcome.error, acknowledged=False)
        on_event("locked", node.name, outcome.error)
        return
    details, message, acknowledged = Details.FAILED, "", False
    try:
        document, documents = _document(model, node, resources, run.resolver, store)
        session = session_for(node)
        try:
            await session.open()
            control.acknowledged()
            acknowledged = True
            record = _step_recorder(run, node)
            changed = await _run_document(session, document, resources, outcome, on_event, node, record)
            await _run_handlers(session, resources, changed, outcome, on_event, node, record)
            for wanted in documents:
                await _run_association_document(model, session, wanted, run, node, outcome, record)
            installing = [r for r in resources if r.type == "patches"]
            if installing:
                await _run_patches(model, session, installing, run, node, outcome, record)
            details = Details.FAILED if outcome.failed else Details.SUCCESS
        finally:
            await session.close()
    except TransportError as exc:
        message = outcome.error = str(exc)
        for r in resources:
            outcome.failed.setdefault(r.address, str(exc))
        on_event("failed", node.name, str(exc))
        details = Details.FAILED if acknowledged else Details.UNDELIVERABLE
    except _ApplyError as exc:
        message = str(exc)
        for r in resources:
            outcome.failed.setdefault(r.address, str(exc))
        on_event("failed", node.name, str(exc))
    finally:
        store.release_lease(node.name, run.owner)
    _finish(run, node, control, results, details, message, acknowledged)


def _finish(run: _Run, node, control, results, details: Details, message: str, acknowledged: bool) -> None:
    run.store.update_invocation(run.command_id, node.name, status=details.status.value, status_details=details.value,
                                message=message, finished_at=utcnow())
    results[node.name] = details
    control.finished(details, acknowledged=acknowledged)


def _step_recorder(run: _Run, node):
    clean = run.scrubber

    def record(event: dict) -> None:
        run.store.add_step(run.command_id, node.name, StepRecord(
            event.get("step", ""), event.get("action", ""), event.get("status", ""), event.get("exitCode"),
            clean.text(event.get("stdout", "")), clean.text(event.get("stderr", "")),
            clean.text(event.get("fullStdout")), clean.text(event.get("fullStderr")),
            event.get("changed"), clean.value(event.get("details") or {}), event.get("startedAt", ""),
            event.get("finishedAt", "")))
    return record


async def _run_patches(model, session, resources: list[ResourcePlan], run: _Run, node, outcome, record):
    """Install approved patches with the baseline's rejected list; each patch's own result."""
    baseline = model.patch_baseline(resources[0].association[len(patches.PREFIX):])
    step = patches.install_step(baseline, resources, run.reboot_option)
    by_name = {r.id: r for r in resources}
    reported: list[dict] = []

    def on_agent(event: dict) -> None:
        if event.get("event") == "step_finished":
            record(event)
            details = event.get("details") or {}
            reported.extend(details.get("patches") or ())
            outcome.reboot_required = bool(details.get("rebootRequired"))
            outcome.rebooting = bool(details.get("rebooting"))
            if not details.get("patches") and event.get("status") != "Success":
                why = details.get("error") or event.get("stderr") or event.get("status")
                for r in resources:
                    outcome.failed[r.address] = run.scrubber.text(str(why).strip()[:500])

    await session.execute({"document": {"schemaVersion": "2.2", "mainSteps": [step]}, "parameters": {}},
                          on_event=on_agent)
    for result in reported:
        resource = by_name.get(result.get("name"))
        if resource is None:
            continue
        state, version = result.get("state", "FAILED"), result.get("version", "")
        pending = state == "INSTALLED" and outcome.reboot_required and not outcome.rebooting
        outcome.patch_results[resource.id] = ("INSTALLED_PENDING_REBOOT" if pending else state, version)
        if state == "INSTALLED":
            outcome.applied.append(resource.address)
            run.on_event("applied", node.name, f"~ {resource.address} {version}")
        else:
            outcome.failed[resource.address] = run.scrubber.text(f"{version}: {result.get('message') or state}")
            run.on_event("failed", node.name, f"{resource.address}: {outcome.failed[resource.address]}")
    if outcome.rebooting:
        run.on_event("reboot", node.name, "rebooting: a reboot is required after installing patches")


async def _run_association_document(model, session, wanted: DesiredResource, run: _Run, node, outcome, record):
    """Run a document association's document on the node; record it as applied as soon as it
    succeeded, so a crash after this point does not run it again."""
    doc = model.document(wanted.spec["document"])
    failures: list[str] = []

    def on_agent(event: dict) -> None:
        if event.get("event") == "step_finished":
            record(event)
            if event.get("status") not in ("Success", "Skipped"):
                failures.append(f"step {event.get('step')}: {event.get('status')}"
                                + (f" (exit {event['exitCode']})" if event.get("exitCode") is not None else ""))

    result = await session.execute({"document": thaw(wanted.spec["content"]), "parameters": thaw(wanted.spec["parameters"]),
                                    "invocationId": f"{run.command_id}:{node.name}"}, on_event=on_agent)
    status = result.get("status", "Failed")
    if status != "Success" or failures:
        why = "; ".join(failures) or run.scrubber.text(result.get("message") or status)
        outcome.failed[wanted.address] = f"document {doc.name}: {why}"
        run.on_event("failed", node.name, f"{wanted.address}: {outcome.failed[wanted.address]}")
        return
    outcome.applied.append(wanted.address)
    at = utcnow()
    source = f"{wanted.source.file}:{wanted.source.line}"
    run.store.record_applied([AppliedRecord(node.name, wanted.address, wanted.desired_hash(), "", at, run.revision,
                                            wanted.association, source, wanted.references)])
    run.on_event("applied", node.name, f"ran {wanted.address} (document {doc.name})")


class _ApplyError(Exception):
    pass


def _document(model, node, resources: list[ResourcePlan], resolver, store) -> tuple[dict, list[DesiredResource]]:
    """The corrective steps for these resources, with secret contents rendered now (never
    stored), and the document associations to run (their parameters resolved now too)."""
    wanted = {r.address for r in resources}
    snapshot = store.latest_inventory(node.name)
    desired = compile_node(model, node, facts_from_inventory(snapshot.document if snapshot else None), resolver)
    if desired.diagnostics:
        raise _ApplyError(desired.diagnostics[0].render())
    steps, documents = [], []
    for resource in desired.resources:
        if resource.address not in wanted:
            continue
        if resource.type == "documents":
            documents.append(resource)
            continue
        step = step_for(resource)
        if resource.sensitive and "contentSha256" in step["inputs"]:
            inputs = dict(step["inputs"])
            del inputs["contentSha256"]
            inputs["contentBase64"] = base64.b64encode(bytes(resource.spec["content"])).decode()
            step = {**step, "inputs": inputs}
        steps.append(step)
    return {"schemaVersion": "2.2", "description": f"plumb reconcile on {node.name}", "mainSteps": steps}, documents


async def _run_document(session, document, resources, outcome, on_event, node, record) -> set[str]:
    """Run the steps; returns the step names that reported a change."""
    names = {step_name(r.address): r for r in resources}
    changed: set[str] = set()

    def on_agent(event: dict) -> None:
        if event.get("event") != "step_finished":
            return
        record(event)
        resource = names.get(event.get("step"))
        if resource is None:
            return
        if event.get("status") == "Success":
            outcome.applied.append(resource.address)
            if event.get("changed"):
                changed.add(event["step"])
            on_event("applied", node.name, f"{resource.action.symbol} {resource.address}"
                     + ("" if event.get("changed") else " (already in place)"))
        else:
            why = (event.get("details") or {}).get("error") or event.get("stderr") or event.get("status")
            outcome.failed[resource.address] = str(why).strip()[:500]
            on_event("failed", node.name, f"{resource.address}: {outcome.failed[resource.address]}")

    if document["mainSteps"]:
        await session.execute({"document": document, "parameters": {}}, on_event=on_agent)
    return changed


async def _run_handlers(session, resources, changed: set[str], outcome, on_event, node, record) -> None:
    """onChange actions of the files that changed, each service once, restart winning over reload."""
    wanted: dict[str, str] = {}
    for resource in resources:
        if step_name(resource.address) in changed:
            for trigger in resource.triggers:
                verb, _, service = trigger.partition(":")
                if wanted.get(service) != "restart":
                    wanted[service] = verb
    if not wanted:
        return
    steps = [{"action": "plumb:service", "name": f"onChange_{verb}_{service}"[:128],
              "inputs": {"name": service, "ensure": "restarted" if verb == "restart" else "reloaded"}}
             for service, verb in wanted.items()]

    def on_agent(event: dict) -> None:
        if event.get("event") == "step_finished":
            record(event)
            ok = event.get("status") == "Success"
            on_event("handler" if ok else "failed", node.name, f"{event.get('step')}: {event.get('status')}")
            if not ok:
                outcome.failed[f"handler:{event.get('step')}"] = str((event.get("details") or {}).get("error")
                                                                     or event.get("stderr") or "failed")

    await session.execute({"document": {"schemaVersion": "2.2", "mainSteps": steps}, "parameters": {}},
                          on_event=on_agent)


async def _verify(model, nodes, store, now, resolver, ignore_windows, outcomes, on_event) -> dict[str, NodePlan]:
    """Observe the touched nodes again and re-plan them: did each change converge?"""
    touched = [n for n in nodes if outcomes[n.name].applied or outcomes[n.name].failed]
    final: dict[str, NodePlan] = {}
    windows = windows_at(model, now, ignore_windows)
    for node in touched:
        try:
            document = await collect_one(node, request_for(model, node))
        except TransportError as exc:
            outcomes[node.name].error = outcomes[node.name].error or f"could not verify: {exc}"
            continue
        snapshot = store.save_inventory(node.name, document)
        desired = compile_node(model, node, facts_from_inventory(document), resolver)
        replanned = plan_node(desired, document, last_applied_of(store, node.name), windows,
                              fingerprint=snapshot.fingerprint, inventory_time=snapshot.captured_at)
        replanned = patches.with_patches(model, node, replanned, document, store, now, windows)
        final[node.name] = replanned
        state = {r.address: r for r in replanned.resources}
        for address in outcomes[node.name].applied:
            if address.startswith("documents:"):  # its run's status is its result: nothing to observe
                outcomes[node.name].converged[address] = True
                continue
            if address.startswith("patches:") and address not in state:  # installed: compliant, nothing to do
                outcomes[node.name].converged[address] = True
                continue
            ok = state.get(address) is not None and state[address].classification is Classification.IN_SYNC
            outcomes[node.name].converged[address] = ok
            if not ok:
                on_event("not-converged", node.name, f"{address}: {state[address].reason if address in state else 'gone'}")
    return final


def _record(model, plan, final, outcomes, store, run_id, resolver, ignore_windows, scrubber: Scrubber, now,
            record_associations: bool = True) -> None:
    """Last-applied state, history events and Association compliance, per node."""
    at = utcnow()
    revision = plan.git_revision
    for node_plan in plan.nodes:
        if not node_plan.reachable or node_plan.node == PARAMETER_STORE:  # parameters record their own
            continue
        current = final.get(node_plan.node, node_plan)
        outcome = outcomes[node_plan.node]
        records, events = [], []
        before = {r.address: r for r in node_plan.resources}
        node = model.node(node_plan.node)
        snapshot = store.latest_inventory(node_plan.node)  # read once per node: it is large
        inventory = snapshot.document if snapshot else None
        desired = {d.address: d for d in compile_node(model, node, facts_from_inventory(inventory),
                                                       resolver).resources} if node else {}
        for resource in current.resources:
            source = f"{resource.source.file}:{resource.source.line}"
            planned = before.get(resource.address)
            if (resource.classification is Classification.IN_SYNC and resource.address in desired
                    and resource.type != "documents"):  # a document's record is written when it runs
                wanted = desired[resource.address]
                observed_hash = observe_resource(wanted, inventory).projection_hash()
                records.append(AppliedRecord(node_plan.node, resource.address, wanted.desired_hash(),
                                             observed_hash, at, revision, resource.association, source,
                                             wanted.references))
            if planned is not None and planned.will_change:
                kind = ("corrected" if planned.classification.drifted else "changed") \
                    if outcome.converged.get(resource.address) else "failed"
                detail = scrubber.text(outcome.failed.get(resource.address, planned.reason))
                if ignore_windows and planned.window:
                    detail += f" (applied with --ignore-windows outside window {planned.window})"
                if planned.classification.drifted:
                    events.append(ResourceEvent(node_plan.node, resource.address, "drift_detected",
                                                plan.created_at, revision, resource.association, source,
                                                planned.reason))
                events.append(ResourceEvent(node_plan.node, resource.address, kind, at, revision,
                                            resource.association, source, detail))
        store.record_applied(records, events)
        if record_associations:
            store.put_compliance(node_plan.node, "Association", _compliance(model, current, outcome, run_id, at))
        if node is not None and model.patch_baselines:
            _record_patches(model, node, outcome, inventory, store, run_id, at, now)


def _record_patches(model, node, outcome: NodeOutcome, inventory, store, run_id, at, now) -> None:
    """Patch compliance after this run: every patch's state, with what this Install reported
    (FAILED, INSTALLED_PENDING_REBOOT) carried into the next scans."""
    previous = patches.previous_states(store, node.name)
    previous.update(outcome.patch_results)
    report = patches.report_for(model, node, inventory, store, now, previous)
    if report is not None and not report.unknown:
        store.put_compliance(node.name, patches.COMPLIANCE_TYPE, patches.compliance_items(node.name, report, run_id,
                                                                                         at))


def _compliance(model, node_plan: NodePlan, outcome: NodeOutcome, run_id: str, at: str) -> list[ComplianceItem]:
    items = []
    for association in model.associations:
        mine = [r for r in node_plan.resources if r.association == association.name]
        if not mine:
            continue
        bad = [r for r in mine if r.classification is not Classification.IN_SYNC]
        status = "NON_COMPLIANT" if bad or any(a in outcome.failed for a in (r.address for r in mine)) else "COMPLIANT"
        items.append(ComplianceItem(
            node_plan.node, "Association", association.name, status, association.compliance_severity, run_id, at,
            f"{association.name} ({association.origin.ref()})",
            {"resources": len(mine), "not_in_sync": [f"{r.address}: {r.classification.value}" for r in bad][:50]}))
    return items


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


