"""`plumb patch scan|install` and `plumb patch baseline show`: Patch Manager from the terminal.

Scan observes the nodes (never changing them), evaluates each node's patch baseline and
records Patch compliance. Install applies the missing approved patches with the
baseline's rate controls, inside its maintenance window unless --ignore-windows, then
re-observes and records the result. `baseline show` explains, for one node, which patches
a baseline approves there and why (which rule, which date).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timezone

import click

from .cli import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, Options, _echo_json, main, shared_options
from .cli_ops import _model, _nodes, observe_with_progress, with_targets
from .cli_plan import reconcile_renderer
from .engine import patches
from .engine.planning import windows_at
from .engine.reconcile import now_utc, reconcile
from .planmodel import FORMAT_VERSION, NodePlan, Plan
from .progress import Progress
from .store import open_store
from .store.sqlite import utcnow
from .termstyle import Style


@main.group("patch")
def patch_group():
    """Patch Manager: scan nodes against their patch baselines, install approved patches."""


@patch_group.command("scan")
@with_targets
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 all compliant, 2 a node misses patches, 1 error.")
@click.option("--refresh", is_flag=True,
              help="Refresh each node's package lists first (apt-get update / dnf makecache), as SSM's Scan does.")
@shared_options
def patch_scan(options: Options, targets, names, detailed_exitcode, refresh):
    """Scan: compare each node with its patch baseline and record Patch compliance. Never changes a node.

    The updates a node can install come from its package manager's local data; --refresh
    runs `apt-get update` (dnf: `makecache`) on each node first, which changes nothing but
    the package lists. Without it, new versions appear when the nodes' lists are refreshed
    by other means (cron, unattended-upgrades, your mirror tooling).
    """
    model = _model(options)
    nodes = _nodes(model, targets, names)
    now, at, run_id = now_utc(), utcnow(), f"scan-{utcnow()}"
    results, failed = [], False
    with open_store(options.state) as store:
        observed = observe_with_progress(options, model, nodes, store, refresh_package_lists=refresh)
        for node in nodes:
            snapshot, error = observed[node.name]
            if snapshot is None:
                failed = True
                results.append({"node": node.name, "error": f"unreachable: {error}"})
                continue
            baseline, why = patches.baseline_for(model, node, snapshot.document)
            if baseline is None:
                results.append({"node": node.name, "baseline": None, "why": why})
                continue
            report = patches.report_for(model, node, snapshot.document, store, now)
            if report.unknown:
                failed = True
                results.append({"node": node.name, "baseline": baseline.name, "why": why, "error": report.unknown})
                continue
            store.put_compliance(node.name, patches.COMPLIANCE_TYPE,
                                 patches.compliance_items(node.name, report, run_id, at))
            results.append({"node": node.name, "baseline": baseline.name, "why": why, **patches.summary(report),
                            "missing": [_patch_json(p) for p in report.missing],
                            "non_compliant": [_patch_json(p) for p in report.patches if not p.compliant]})
    if options.output == "json":
        _echo_json({"format_version": FORMAT_VERSION, "operation": "Scan", "nodes": results})
    else:
        _print_scan(results)
    if failed:
        sys.exit(EXIT_ERROR)
    missing = any(r.get("non_compliant") for r in results)
    sys.exit(EXIT_CHANGES if detailed_exitcode and missing else EXIT_OK)


def _patch_json(patch) -> dict:
    return {"name": patch.name, "state": patch.state, "installed_version": patch.installed_version,
            "version": patch.version, "severity": patch.severity, "security": patch.security, "suite": patch.suite,
            "rule": patch.approval.rule, "reason": patch.approval.reason}


def _print_scan(results) -> None:
    style = Style.for_stream(sys.stdout)
    for r in results:
        if r.get("error"):
            click.echo(style.red(f"{r['node']}: {r['error']}"))
            continue
        if r.get("baseline") is None:
            click.echo(f"{r['node']}: no patch baseline applies ({r['why']})")
            continue
        bad = r["non_compliant"]
        head = (f"{r['node']}: baseline {r['baseline']} ({r['why']}): "
                f"{'NON_COMPLIANT, severity ' + r['severity'] if bad else 'COMPLIANT'}")
        click.echo(style.red(head) if bad else style.green(head))
        counts = ", ".join(f"{k[:-5]} {v}" for k, v in r.items() if k.endswith("Count") and v)
        click.echo(f"  {counts or 'nothing to report'}")
        for p in bad:
            arrow = f" -> {p['version']}" if p["version"] != p["installed_version"] else ""
            click.echo(f"  {p['state']:<24} {p['name']} {p['installed_version'] or '-'}{arrow}  "
                       f"[{p['severity']}] {p['rule']}")


@patch_group.command("install")
@with_targets
@click.option("--ignore-windows", is_flag=True, help="Install outside the baselines' maintenance windows (recorded).")
@click.option("--reboot-option", type=click.Choice(["RebootIfNeeded", "NoReboot"]), default=None,
              help="Override the baselines' rebootOption.")
@shared_options
def patch_install(options: Options, targets, names, ignore_windows, reboot_option):
    """Install: the missing approved patches of each node, with its baseline's rate controls and window.

    RebootIfNeeded reboots a node only when it says a reboot is required after the install
    (/var/run/reboot-required); NoReboot leaves such patches INSTALLED_PENDING_REBOOT.
    Exits 0 when every patch installed, 1 otherwise.
    """
    model = _model(options)
    nodes = _nodes(model, targets, names)
    now = now_utc()
    windows = windows_at(model, now, ignore_windows)
    with open_store(options.state) as store:
        observed = observe_with_progress(options, model, nodes, store)
        node_plans = []
        for node in nodes:
            snapshot, error = observed[node.name]
            if snapshot is None:
                node_plans.append(NodePlan(node.name, reachable=False, error=error))
                continue
            empty = NodePlan(node.name, True, "", snapshot.fingerprint, snapshot.captured_at)
            node_plans.append(patches.with_patches(model, node, empty, snapshot.document, store, now, windows))
        plan = Plan(FORMAT_VERSION, now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), model.root, "",
                    tuple(node_plans))
        progress = Progress(sum(bool(p.changes) for p in plan.nodes), "nodes", enabled=options.output == "text")
        result = asyncio.run(reconcile(
            model, nodes, plan, store, now=now, ignore_windows=ignore_windows, reboot_option=reboot_option,
            record_associations=False, on_event=reconcile_renderer(progress)))
        progress.close()
    rows = []
    for node_plan in plan.nodes:
        outcome = result.outcomes.get(node_plan.node)
        blocked = [r for r in node_plan.resources if r.classification.value == "blocked"]
        rows.append({"node": node_plan.node, "error": node_plan.error or (outcome.error if outcome else ""),
                     "installed": {r.split(":", 1)[1]: outcome.patch_results.get(r.split(":", 1)[1], ("", ""))[1]
                                   for r in (outcome.applied if outcome else [])},
                     "failed": dict(outcome.failed) if outcome else {},
                     "blocked": {r.id: r.reason for r in blocked},
                     "reboot_required": bool(outcome and outcome.reboot_required),
                     "rebooting": bool(outcome and outcome.rebooting)})
    if options.output == "json":
        _echo_json({"format_version": FORMAT_VERSION, "operation": "Install", "run_id": result.run_id,
                    "nodes": rows})
    else:
        for row in rows:
            line = (f"{row['node']}: {len(row['installed'])} installed, {len(row['failed'])} failed, "
                    f"{len(row['blocked'])} blocked" + (" (rebooting)" if row["rebooting"] else
                                                       " (reboot required)" if row["reboot_required"] else ""))
            click.echo(line)
            for name, why in row["failed"].items():
                click.echo(f"  FAILED {name}: {why}")
            for name, why in row["blocked"].items():
                click.echo(f"  blocked {name}: {why}")
            if row["error"]:
                click.echo(f"  error: {row['error']}")
    ok = all(not r["failed"] and not r["error"] for r in rows)
    sys.exit(EXIT_OK if ok else EXIT_ERROR)


@patch_group.group("baseline")
def baseline_group():
    """Patch baselines."""


@baseline_group.command("show")
@click.argument("name")
@click.option("--node", "node_name", required=True, help="Explain the baseline on this node (its stored inventory).")
@click.option("--all", "show_all", is_flag=True, help="Also list installed packages with no newer version.")
@shared_options
def baseline_show(options: Options, name, node_name, show_all):
    """Which patches baseline NAME approves on a node, and why (which rule, which date).

    Uses the node's latest stored inventory (`plumb inventory collect` or `plumb patch scan`
    refresh it). Dates are the first time plumb saw each version anywhere in the fleet,
    counted in whole UTC days: Debian and Ubuntu publish no release dates SSM could use.
    """
    model = _model(options)
    baseline = model.patch_baseline(name)
    if baseline is None:
        known = ", ".join(b.name for b in model.patch_baselines) or "none"
        raise click.ClickException(f"no PatchBaseline named '{name}' (known: {known})")
    node = model.node(node_name)
    if node is None:
        raise click.ClickException(f"no Node named '{node_name}'")
    with open_store(options.state) as store:
        snapshot = store.latest_inventory(node_name)
        if snapshot is None:
            raise click.ClickException(f"no inventory of {node_name} yet: run `plumb patch scan --node {node_name}`")
        report = patches.evaluate(baseline, node_name, snapshot.document, store, now_utc())
    selected, why = patches.baseline_for(model, node, snapshot.document)
    applies = selected is not None and selected.name == baseline.name
    data = {"format_version": FORMAT_VERSION, "baseline": baseline.name, "node": node_name,
            "inventory_time": snapshot.captured_at, "applies_to_node": applies,
            "selected": selected.name if selected else None, "why": why, **patches.summary(report),
            "unknown": report.unknown or None, "patches": [_patch_json(p) for p in report.patches]}
    if options.output == "json":
        _echo_json(data)
        sys.exit(EXIT_OK)
    click.echo(f"Baseline {baseline.name} ({baseline.operating_system}) on {node_name}, inventory of "
               f"{snapshot.captured_at}")
    click.echo(f"  {'applies to this node' if applies else 'does NOT apply to this node'}: {why}")
    if report.unknown:
        click.echo(f"  cannot evaluate: {report.unknown}")
        sys.exit(EXIT_ERROR)
    click.echo("  Approval dates: the first time plumb saw each version anywhere in the fleet, in whole UTC days.")
    shown = [p for p in report.patches if show_all or p.available or not p.compliant or p.state == "NOT_APPLICABLE"]
    for p in shown:
        click.echo(f"  {p.state:<24} {p.name} {p.installed_version or '-'}"
                   + (f" -> {p.version}" if p.version != p.installed_version else "")
                   + (f" (newest available {p.available})" if p.available and p.available != p.version else "")
                   + f"  [{p.severity}]")
        click.echo(f"      {p.approval.reason or p.approval.rule}")
    hidden = len(report.patches) - len(shown)
    if hidden:
        click.echo(f"  ... and {hidden} installed package(s) with no newer version (--all lists them)")
    sys.exit(EXIT_OK)
