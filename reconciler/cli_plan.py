"""`plumb plan` and `plumb reconcile`: the heart of the CLI contract.

plan: observe, plan, render (text, JSON, JUnit, SARIF, Markdown), optionally save the
artifact; `--detailed-exitcode` gives Terraform's 0 / 2 / 1 aggregated over nodes.
reconcile: apply a fresh plan, or exactly a saved one (refused when the manifests or any
node changed since), verify, record; exit 0 only when every change converged.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import click

from . import render
from .cli import EXIT_ERROR, EXIT_OK, Options, _echo_json, main, shared_options
from .cli_ops import _model, _nodes, observe_with_progress, with_targets
from .engine import artifact, gitinfo
from .engine.paramsync import ParameterContext
from .engine.planning import observe, plan_everything
from .planmodel import PARAMETER_STORE
from .engine.reconcile import now_utc, reconcile
from .progress import Progress
from .store import open_store
from .termstyle import Style


def _color(stream) -> bool:
    return Style.for_stream(stream).enabled


def _plan(options: Options, model, nodes, store, *, offline: bool, ignore_windows: bool = False):
    observed = observe_with_progress(options, model, nodes, store, offline=offline)
    return plan_everything(model, nodes, observed, store, now=now_utc(), key_dir=options.key_dir,
                           ignore_windows=ignore_windows)


@main.command("plan")
@with_targets
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Save the plan artifact (for reconcile --plan).")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 nothing to do, 2 changes or drift, 1 error.")
@click.option("--allow-unreachable", is_flag=True, help="An unreachable node is not an error.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write JUnit XML here.")
@click.option("--sarif", type=click.Path(dir_okay=False), help="Also write SARIF (manifest file:line findings).")
@click.option("--markdown", type=click.Path(dir_okay=False), help="Also write a Markdown pull-request comment.")
@click.option("--offline", is_flag=True, help="Contact no node: plan from the stored inventory.")
@click.option("--verbose", "-v", is_flag=True, help="Also list in-sync resources with their reason.")
@shared_options
def plan_command(options: Options, targets, names, out, detailed_exitcode, allow_unreachable, junit, sarif,
                 markdown, offline, verbose):
    """Show exactly what reconcile would change on each node, and what drifted.

    Every resource is compared three ways: desired (git) vs last applied (store) vs
    observed (inventory): in sync, pending change, drift, drift and change, unknown
    (could not observe: never guessed) or blocked (maintenance window).
    """
    model = _model(options)
    nodes = _nodes(model, targets, names)
    with open_store(options.state) as store:
        plan, _ = _plan(options, model, nodes, store, offline=offline)
    _write_reports(plan, junit, sarif, markdown)
    if out:
        Path(out).write_text(artifact.to_json(plan, gitinfo.digest(model.root)), encoding="utf-8")
    if options.output == "json":
        click.echo(render.render_json(plan), nl=False)
    else:
        for problem in plan.diagnostics:
            click.echo(problem, err=True)
        click.echo(render.render_text(plan, color=_color(sys.stdout), verbose=verbose), nl=False)
        if out:
            click.echo(f"Saved the plan to {out}; apply exactly it with: plumb reconcile --plan {out}")
    code = plan.exit_code(allow_unreachable)
    if not detailed_exitcode and code == 2:
        code = EXIT_OK
    sys.exit(code)


def _write_reports(plan, junit, sarif, markdown) -> None:
    for path, text in ((junit, lambda: render.render_junit(plan)), (sarif, lambda: render.render_sarif(plan)),
                       (markdown, lambda: render.render_markdown(plan))):
        if path:
            Path(path).write_text(text(), encoding="utf-8")


@main.command("reconcile")
@with_targets
@click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False),
              help="Apply exactly this saved plan (refused if the manifests or a node changed since).")
@click.option("--ignore-windows", is_flag=True, help="Apply outside maintenance windows (recorded as such).")
@click.option("--allow-unreachable", is_flag=True, help="An unreachable node is not an error.")
@click.option("--watch", is_flag=True,
              help="Keep running: each association on its schedule, and all of them when the manifests change.")
@click.option("--git-pull", nargs=2, metavar="REMOTE BRANCH", default=None,
              help="With --watch: git pull --ff-only REMOTE BRANCH before each cycle.")
@click.option("--metrics-address", envvar="PLUMB_METRICS_ADDRESS", default="127.0.0.1:9464", show_default=True,
              help="With --watch: serve Prometheus metrics on HOST:PORT ('' disables).")
@click.option("--debounce", type=float, default=2.0, show_default=True,
              help="With --watch: seconds of quiet after a manifest change before a cycle.")
@click.option("--tick", type=float, default=30.0, show_default=True,
              help="With --watch: seconds between schedule checks.")
@click.option("--max-cycles", type=int, default=None, hidden=True)
@shared_options
def reconcile_command(options: Options, targets, names, plan_file, ignore_windows, allow_unreachable, watch,
                      git_pull, metrics_address, debounce, tick, max_cycles):
    """Make the nodes match the manifests, then verify and record the result.

    Applies each association's changes with its rate controls, honours maintenance
    windows (blocked items say when the next window opens), runs onChange actions only
    when their file changed, re-observes what it touched and reports whether it
    converged. Exits 0 when everything converged, 1 otherwise.

    With --watch it keeps running (a level-based loop): every association runs on its
    own schedule and all of them when the manifests change (watched, debounced); nodes
    that keep failing are backed off; SIGTERM stops it cleanly; Prometheus metrics are
    served on --metrics-address.
    """
    if watch:
        if plan_file:
            raise click.UsageError("--plan applies one saved plan; it cannot be combined with --watch")
        from .watch import WatchOptions, run_watch

        sys.exit(run_watch(WatchOptions(
            manifests=options.manifests, state=options.state, targets=tuple(targets), nodes=tuple(names),
            git_pull=tuple(git_pull) if git_pull else None, metrics_address=metrics_address,
            debounce_seconds=debounce, tick_seconds=tick, ignore_windows=ignore_windows,
            allow_unreachable=allow_unreachable, output=options.output, max_cycles=max_cycles,
            debug=options.debug, key_dir=options.key_dir)))
    model = _model(options)
    with open_store(options.state) as store:
        if plan_file:
            plan, nodes, parameters = _saved_plan(options, model, store, plan_file)
        else:
            nodes = _nodes(model, targets, names)
            plan, parameters = _plan(options, model, nodes, store, offline=False, ignore_windows=ignore_windows)
        if plan.diagnostics:
            for problem in plan.diagnostics:
                click.echo(problem, err=True)
            raise click.ClickException("the plan has errors; nothing was applied")
        progress = Progress(sum(bool(p.changes) for p in plan.nodes), "nodes", enabled=options.output == "text")
        result = asyncio.run(reconcile(model, nodes, plan, store, now=now_utc(), ignore_windows=ignore_windows,
                                       on_event=reconcile_renderer(progress), parameters=parameters,
                                       resolver=parameters.resolver(), scrubber=parameters.scrubber))
        progress.close()
    unreachable = [p.node for p in plan.nodes if not p.reachable]
    ok = result.ok and (allow_unreachable or not unreachable)
    if options.output == "json":
        _echo_json(_result_json(result))
    else:
        _print_result(result, unreachable)
    sys.exit(EXIT_OK if ok else EXIT_ERROR)


def _saved_plan(options, model, store, plan_file):
    try:
        plan, digest = artifact.from_json(Path(plan_file).read_text(encoding="utf-8"))
    except artifact.ArtifactError as exc:
        raise click.ClickException(f"{plan_file}: {exc}") from None
    current_digest = gitinfo.digest(model.root)
    if digest != current_digest or plan.git_revision != gitinfo.revision(model.root):
        raise click.ClickException(
            f"the manifests changed since {plan_file} was made (revision {plan.git_revision or 'none'}, now "
            f"{gitinfo.revision(model.root) or 'none'}); make a new plan. Nothing was applied.")
    nodes = [model.node(p.node) for p in plan.nodes if p.node != PARAMETER_STORE]
    if any(n is None for n in nodes):
        raise click.ClickException(f"{plan_file} names nodes that are no longer in the manifests")
    observed = asyncio.run(observe(model, nodes, store, offline=False))
    parameters = ParameterContext(model, store, options.key_dir)
    moved = []
    for node_plan in plan.nodes:
        if node_plan.node == PARAMETER_STORE:
            if parameters.plan(now_utc()).inventory_fingerprint != node_plan.inventory_fingerprint:
                moved.append(f"{PARAMETER_STORE} (a parameter changed)")
            continue
        snapshot, error = observed[node_plan.node]
        now = snapshot.fingerprint if snapshot else f"unreachable: {error}"
        if node_plan.reachable and now != node_plan.inventory_fingerprint:
            moved.append(f"{node_plan.node} ({'inventory changed' if snapshot else now})")
    if moved:
        raise click.ClickException(f"these nodes changed since {plan_file} was made: {', '.join(moved)}; "
                                   "make a new plan. Nothing was applied.")
    return plan, nodes, parameters


def reconcile_renderer(progress: Progress):
    style = Style.for_stream(sys.stderr)
    colours = {"applied": style.green, "handler": style.green, "failed": style.red, "not-converged": style.red,
               "locked": style.yellow, "terminated": style.yellow}

    def on_event(kind: str, node: str, message: str) -> None:
        progress.note(f"{colours.get(kind, str)(kind):<14} {node}: {message}")

    return on_event


def _result_json(result) -> dict:
    return {
        "format_version": "1.0", "run_id": result.run_id, "ok": result.ok,
        "git_revision": result.plan.git_revision,
        "nodes": [{"node": o.node, "applied": o.applied, "failed": o.failed, "converged": o.converged,
                   "error": o.error or None} for o in result.outcomes.values()],
        "after": json.loads(render.render_json(_after_plan(result))),
    }


def _after_plan(result):
    from dataclasses import replace

    nodes = tuple(result.final.get(p.node, p) for p in result.plan.nodes)
    return replace(result.plan, nodes=nodes)


def _print_result(result, unreachable) -> None:
    applied = sum(len(o.applied) for o in result.outcomes.values())
    failed = sum(len(o.failed) for o in result.outcomes.values())
    not_converged = sum(not ok for o in result.outcomes.values() for ok in o.converged.values())
    after = _after_plan(result).summary()
    style = Style.for_stream(sys.stdout)
    for outcome in result.outcomes.values():
        if outcome.error:
            click.echo(style.red(f"{outcome.node}: {outcome.error}"))
    line = (f"Reconcile: {applied} applied, {failed} failed, {not_converged} not converged; "
            f"{len(unreachable)} unreachable. After: {after.line()}")
    click.echo(style.green(line) if result.ok and not unreachable else style.red(line))
