"""Reports from the state store: `plumb compliance` and `plumb drift history NODE`."""

from __future__ import annotations

import sys
from collections import Counter, defaultdict

import click

from .cli import EXIT_OK, Options, _echo_json, main, shared_options
from .store import open_store
from .termstyle import Style

SEVERITY_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED")


@main.command("compliance")
@click.option("--type", "compliance_type", metavar="TYPE", help="Association, Patch or Custom:<name>.")
@shared_options
def compliance_command(options: Options, compliance_type):
    """Compliance as last recorded by reconcile: summary by association, node and severity."""
    with open_store(options.state) as store:
        items = store.compliance(compliance_type)
    summary = _summary(items)
    if options.output == "json":
        _echo_json({"format_version": "1.0", "type": compliance_type, **summary,
                    "items": [{"node": i.node, "type": i.compliance_type, "id": i.item_id, "status": i.status,
                               "severity": i.severity, "execution_id": i.execution_id,
                               "execution_time": i.execution_time, "title": i.title, "details": i.details}
                              for i in items]})
        sys.exit(EXIT_OK)
    if not items:
        click.echo("No compliance recorded yet: run `plumb reconcile`.")
        sys.exit(EXIT_OK)
    style = Style.for_stream(sys.stdout)
    if compliance_type == "Patch":
        _print_patch_states(items, style)
    total = summary["totals"]
    click.echo(f"Compliance{' (' + compliance_type + ')' if compliance_type else ''}: "
               f"{total['COMPLIANT']} compliant, {total['NON_COMPLIANT']} non-compliant")
    sections = (("By association", "by_item"), ("By node", "by_node"), ("By severity", "by_severity"))
    if compliance_type == "Patch":  # one item per package: the per-node states above say it better
        sections = sections[1:]
    for title, key in sections:
        click.echo(f"\n{title}:")
        for name, counts in summary[key].items():
            line = f"  {name:<32} {counts['COMPLIANT']:>4} compliant  {counts['NON_COMPLIANT']:>4} non-compliant"
            click.echo(style.red(line) if counts["NON_COMPLIANT"] else line)
    bad = [i for i in items if i.status != "COMPLIANT"]
    if bad:
        click.echo("\nNon-compliant:")
        for i in sorted(bad, key=lambda i: (SEVERITY_ORDER.index(i.severity) if i.severity in SEVERITY_ORDER else 9,
                                            i.node, i.item_id)):
            reasons = "; ".join(i.details.get("not_in_sync", [])[:3]) or \
                f"{i.details.get('State', '')} {i.details.get('InstalledVersion') or '-'} -> " \
                f"{i.details.get('Version', '')}" * bool(i.details.get("State"))
            click.echo(style.red(f"  {i.severity:<12} {i.node:<20} {i.item_id:<28} {reasons}"))
    sys.exit(EXIT_OK)


PATCH_STATES = ("INSTALLED", "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED", "MISSING",
                "FAILED", "NOT_APPLICABLE")


def _print_patch_states(items, style) -> None:
    """SSM's per-node patch summary: counts by state, and the worst non-compliant severity."""
    by_node: dict[str, list] = defaultdict(list)
    for item in items:
        by_node[item.node].append(item)
    click.echo("Patch states by node:")
    for node, mine in by_node.items():
        states = Counter(i.details.get("State", "") for i in mine)
        bad = [i.severity for i in mine if i.status != "COMPLIANT"]
        worst = min(bad, key=lambda s: SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else 9) if bad else ""
        baseline = next((i.details.get("Baseline") for i in mine if i.details.get("Baseline")), "")
        counts = ", ".join(f"{state} {states[state]}" for state in PATCH_STATES if states[state])
        line = f"  {node:<20} {baseline:<20} {counts}" + (f"; severity {worst}" if worst else "")
        click.echo(style.red(line) if bad else line)
    click.echo("")


def _summary(items) -> dict:
    totals: Counter = Counter()
    groups = {"by_item": defaultdict(Counter), "by_node": defaultdict(Counter), "by_severity": defaultdict(Counter)}
    for item in items:
        totals[item.status] += 1
        groups["by_item"][item.item_id][item.status] += 1
        groups["by_node"][item.node][item.status] += 1
        groups["by_severity"][item.severity][item.status] += 1
    order = {"by_severity": lambda k: SEVERITY_ORDER.index(k) if k in SEVERITY_ORDER else 9}
    result = {"totals": {"COMPLIANT": totals["COMPLIANT"], "NON_COMPLIANT": totals["NON_COMPLIANT"]}}
    for key, table in groups.items():
        result[key] = {name: {"COMPLIANT": c["COMPLIANT"], "NON_COMPLIANT": c["NON_COMPLIANT"]}
                       for name, c in sorted(table.items(), key=lambda kv: order.get(key, str)(kv[0]))}
    return result


@main.group("drift")
def drift_group():
    """Drift over time, from what reconcile recorded."""


@drift_group.command("history")
@click.argument("node")
@shared_options
def drift_history(options: Options, node):
    """When each resource of NODE drifted and when it was corrected (with git revision and manifest line)."""
    with open_store(options.state) as store:
        events = store.resource_events(node)
    periods = _periods(events)
    if options.output == "json":
        _echo_json({"format_version": "1.0", "node": node, "periods": periods,
                    "events": [e.__dict__ for e in events]})
        sys.exit(EXIT_OK)
    if not events:
        click.echo(f"No history for node '{node}' yet: run `plumb reconcile`.")
        sys.exit(EXIT_OK)
    click.echo(f"Drift history of {node}:")
    for p in periods:
        end = f"corrected {p['corrected_at']} (git {p['git_revision'][:12] or 'none'})" if p["corrected_at"] \
            else "NOT corrected yet"
        click.echo(f"  {p['address']:<40} drifted {p['detected_at']}, {end}  [{p['source']}]")
        if p["detail"]:
            click.echo(f"      {p['detail']}")
    notices = [e for e in events if e.event == "notification"]
    if notices:
        click.echo("Notifications (parameter policies):")
        for e in notices:
            click.echo(f"  {e.at}  {e.address:<40} {e.detail}")
    changes = [e for e in events if e.event in ("changed", "failed")]
    if changes:
        click.echo("Changes applied from git:")
        for e in changes:
            click.echo(f"  {e.at}  {e.event:<8} {e.address:<40} git {e.git_revision[:12] or 'none'}  [{e.source}]")
    sys.exit(EXIT_OK)


def _periods(events) -> list[dict]:
    """Pair each drift_detected with the next corrected (or failed) event of the same resource."""
    open_: dict[str, dict] = {}
    periods: list[dict] = []
    for e in events:
        if e.event == "drift_detected":
            period = {"address": e.address, "detected_at": e.at, "corrected_at": "", "git_revision": "",
                      "source": e.source, "association": e.association, "detail": e.detail}
            open_[e.address] = period
            periods.append(period)
        elif e.event == "corrected" and e.address in open_:
            period = open_.pop(e.address)
            period["corrected_at"], period["git_revision"] = e.at, e.git_revision
    return periods
