"""Operator commands of the CLI: `plumb inventory collect|show`, `plumb run`, `plumb command list|show`.

Split from cli.py to keep each module readable; registered on the same `main` group.
"""

from __future__ import annotations

import asyncio
import re
import sys

import click

from .cli import EXIT_ERROR, EXIT_OK, Options, _echo_json, _print_diagnostics, main, shared_options
from .compile import ResolveError
from .docparams import InvalidParameters, expand_references, inline_references, parse_cli_parameters, resolve
from .engine.paramsync import ParameterContext
from .engine import inventory as inventory_engine
from .engine import runcommand
from .engine.planning import observe
from .loader import load, registered_nodes, with_registered
from .progress import Progress
from .statuses import Details
from .store import open_store
from .targets import TargetSyntaxError, parse_cli_target, select_nodes
from .termstyle import Style


def _model(options: Options):
    """The manifests' model, with the nodes registered in the state store (`plumb node register`)."""
    result = load(options.manifests)
    if not result.ok:
        _print_diagnostics(result.diagnostics)
        raise click.ClickException(f"{len(result.errors)} error(s) in {options.manifests}; nothing was done")
    with open_store(options.state) as store:
        registered = store.registered_nodes()
    if not registered:
        return result.model
    nodes, problems = registered_nodes((name, text) for name, text, _, _ in registered)
    model, clashes = with_registered(result.model, nodes)
    if problems or clashes:
        _print_diagnostics(problems + clashes)
    return model


def _nodes(model, targets, names):
    try:
        parsed = [parse_cli_target(t) for t in targets]
        chosen = select_nodes(model.nodes, parsed, names)
    except TargetSyntaxError as exc:
        raise click.UsageError(str(exc)) from None
    if not chosen:
        raise click.ClickException("no node matches the given --targets/--node")
    return chosen


target_options = [
    click.option("--targets", "-t", "targets", multiple=True, metavar="TARGET",
                 help="tag:role=web, InstanceIds=web-1, or SSM's Key=tag:role,Values=web (repeatable, ANDed)."),
    click.option("--node", "-n", "names", multiple=True, metavar="NAME", help="Only this node (repeatable)."),
]


def observe_with_progress(options: Options, model, nodes, store, *, offline: bool = False,
                          refresh_package_lists: bool = False) -> dict:
    """engine.planning.observe, with a progress line per node on a terminal (quiet with --output json)."""
    progress = Progress(len(nodes), "nodes observed", enabled=options.output == "text" and not offline)
    for _ in nodes:
        progress.started()
    observed = asyncio.run(observe(model, nodes, store, offline=offline, refresh_package_lists=refresh_package_lists))
    for name, (snapshot, error) in observed.items():
        progress.finished(f"observed {name}" if snapshot else f"unreachable {name}: {error}",
                          "ok" if snapshot else "unreachable")
    progress.close()
    return observed


def with_targets(func):
    for option in reversed(target_options):
        func = option(func)
    return func


@main.group()
def inventory():
    """Collect and show what agents observe on nodes."""


@inventory.command("collect")
@with_targets
@click.option("--types", "types", multiple=True, metavar="TYPE", help="Only these inventory types (repeatable).")
@click.option("--limit", default=64, show_default=True, help="Nodes in flight at once.")
@shared_options
def inventory_collect(options: Options, targets, names, types, limit):
    """Collect inventory from nodes and keep it in the state store.

    Besides the default types, each node reports the files, directories and sysctl keys
    its associations manage. Exits 1 if any node could not be collected.
    """
    model = _model(options)
    nodes = _nodes(model, targets, names)
    progress = Progress(len(nodes), "nodes", enabled=options.output == "text")
    style = Style.for_stream(sys.stderr)

    def on_result(result):
        if result.ok:
            types_ok = sum(t.get("Status") == "ok" for t in result.snapshot.document["Types"].values())
            unknown = [n for n, t in result.snapshot.document["Types"].items() if t.get("Status") != "ok"]
            line = f"{style.green('collected')} {result.node}: {types_ok} types" + (
                f" ({len(unknown)} unknown: {', '.join(unknown)})" if unknown else "")
            progress.finished(line, "collected")
        else:
            progress.finished(f"{style.red('failed')}    {result.node}: {result.error}", "failed")

    with open_store(options.state) as store:
        for _ in nodes:
            progress.started()
        results = asyncio.run(inventory_engine.collect(model, nodes, store, types=types, limit=limit,
                                                       on_result=on_result))
    progress.close()
    failed = [r for r in results if not r.ok]
    if options.output == "json":
        _echo_json({"format_version": "1.0", "nodes": [
            {"node": r.node, "ok": r.ok, "error": r.error or None, "reason": r.reason or None,
             "capture_time": r.snapshot.captured_at if r.ok else None,
             "fingerprint": r.snapshot.fingerprint if r.ok else None} for r in results]})
    else:
        click.echo(f"Inventory: {len(results) - len(failed)} collected, {len(failed)} failed.")
    sys.exit(EXIT_ERROR if failed else EXIT_OK)


@inventory.command("show")
@click.argument("node")
@click.option("--type", "type_name", metavar="TYPE", help="Show the entries of one type, e.g. AWS:Application.")
@shared_options
def inventory_show(options: Options, node, type_name):
    """Show the latest stored inventory of NODE."""
    with open_store(options.state) as store:
        snapshot = store.latest_inventory(node)
    if snapshot is None:
        raise click.ClickException(f"no inventory stored for node '{node}'; run `plumb inventory collect --node {node}`")
    types = snapshot.document["Types"]
    if type_name and type_name not in types:
        raise click.ClickException(f"node '{node}' has no inventory of type {type_name}; it has: {', '.join(types)}")
    if options.output == "json":
        data = types[type_name] if type_name else snapshot.document
        _echo_json({"node": node, "capture_time": snapshot.captured_at, "fingerprint": snapshot.fingerprint,
                    **({"type": type_name, **data} if type_name else {"inventory": data})})
        return
    click.echo(f"Node {node}: captured {snapshot.captured_at}, fingerprint {snapshot.fingerprint[:12]}")
    if type_name:
        _print_entries(types[type_name])
        return
    for name, data in types.items():
        status = data.get("Status")
        count = len(data.get("Content") or [])
        click.echo(f"  {name:<26} {status:<8} {count if status == 'ok' else data.get('Reason', '')}")


def _print_entries(data: dict) -> None:
    if data.get("Status") != "ok":
        click.echo(f"  unknown: {data.get('Reason', '')}")
        return
    entries = data.get("Content") or []
    if len(entries) == 1:
        for key, value in entries[0].items():
            click.echo(f"  {key}: {value}")
        return
    columns = [k for k in entries[0] if not isinstance(entries[0][k], (list, dict))][:6] if entries else []
    widths = {c: min(40, max(len(c), *(len(str(e.get(c, ""))) for e in entries))) for c in columns}
    click.echo("  " + "  ".join(c.ljust(widths[c]) for c in columns))
    for entry in entries:
        click.echo("  " + "  ".join(str(entry.get(c, ""))[:40].ljust(widths[c]) for c in columns))


@main.command("run")
@click.argument("document")
@with_targets
@click.option("--parameters", "-p", "parameters", multiple=True, metavar="NAME=VALUE",
              help="A document parameter (repeat a name for a StringList), or a JSON object.")
@click.option("--max-concurrency", default="50", show_default=True, help="Nodes at once: a number or a percentage.")
@click.option("--max-errors", default="0", show_default=True, help="Failures tolerated before stopping.")
@shared_options
def run_command(options: Options, document, targets, names, parameters, max_concurrency, max_errors):
    """Run Command: run DOCUMENT on the targeted nodes, with SSM's rate controls.

    Example: plumb run AWS-RunShellScript -t tag:role=web -p commands='uptime'
    Exits 0 when every invocation succeeded, 1 otherwise (also when some nodes could not
    be reached, although SSM would still call such a command Success).
    """
    for value, pattern, name in ((max_concurrency, r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$", "--max-concurrency"),
                                 (max_errors, r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$", "--max-errors")):
        if not re.match(pattern, value):
            raise click.BadParameter(f"'{value}' is not a number or a percentage", param_hint=name)
    model = _model(options)
    doc = model.document(document)
    if doc is None:
        known = ", ".join(sorted(d.name for d in model.documents))
        raise click.ClickException(f"no Document named '{document}' (known: {known})")
    nodes = _nodes(model, targets, names)
    with open_store(options.state) as store:
        context = ParameterContext(model, store, options.key_dir, layered=False)
        try:
            given = parse_cli_parameters(parameters)
            expanded, secret, _ = expand_references(doc, given, lambda ref: _resolve_reference(context, ref))
            resolved = resolve(doc, expanded, sensitive=secret)
            content, inlined, _, _ = inline_references(doc.content, lambda ref: _resolve_reference(context, ref))
        except InvalidParameters as exc:
            raise click.ClickException(f"InvalidParameters: {exc}") from None
        request = runcommand.RunRequest(doc, resolved, nodes, list(targets) + [f"InstanceIds={n}" for n in names],
                                        max_concurrency, max_errors, recorded_parameters=given,
                                        scrubber=context.scrubber, content=content if inlined else None)
        request.parameters.update(inlined)
        progress = Progress(len(nodes), "invocations", enabled=options.output == "text")
        command_id = asyncio.run(runcommand.run(request, store, _run_renderer(progress, options)))
        record = store.get_command(command_id)
    progress.close()
    if options.output == "json":
        _echo_json(_command_json(record))
    else:
        _print_command(record)
    # SSM calls a command Success even when some nodes were Undeliverable; a pipeline wants to know.
    sys.exit(EXIT_OK if all(i.status == "Success" for i in record.invocations) else EXIT_ERROR)


def _resolve_reference(context: ParameterContext, ref):
    """A `{{ssm:...}}` in a run-time parameter, resolved now (SSM: at SendCommand time, no fallback)."""
    try:
        return context.resolve(ref.name + (f":{ref.selector}" if ref.selector else ""), ref.secure)
    except ResolveError as exc:
        raise InvalidParameters(str(exc)) from None


def _run_renderer(progress: Progress, options: Options):
    style = Style.for_stream(sys.stderr)

    def on_event(event: runcommand.Event) -> None:
        if event.kind == "started":
            progress.started()
        elif event.kind in ("finished", "terminated"):
            ok = event.details is Details.SUCCESS
            label = style.green(event.details.value) if ok else style.red(event.details.value)
            if event.kind == "terminated":
                progress.note(f"{label} {event.node}: {event.message}")
                return
            progress.finished(f"{label} {event.node}" + (f": {event.message}" if event.message and not ok else ""),
                              event.details.value)

    return on_event


def _command_json(record) -> dict:
    return {
        "format_version": "1.0", "command_id": record.command_id, "document": record.document_name,
        "document_hash": record.document_hash, "parameters": record.parameters, "targets": record.targets,
        "max_concurrency": record.max_concurrency, "max_errors": record.max_errors, "status": record.status,
        "status_details": record.status_details, "requested_at": record.requested_at,
        "finished_at": record.finished_at, "target_count": record.target_count,
        "invocations": [{
            "node": i.node, "status": i.status, "status_details": i.status_details,
            "response_code": i.response_code, "message": i.message, "started_at": i.started_at,
            "finished_at": i.finished_at,
            "steps": [{"name": s.name, "action": s.action, "status": s.status, "response_code": s.response_code,
                       "stdout": s.stdout, "stderr": s.stderr, "changed": s.changed, "details": s.details}
                      for s in i.steps],
        } for i in record.invocations],
    }


def _print_command(record) -> None:
    style = Style.for_stream(sys.stdout)
    for invocation in record.invocations:
        ok = invocation.status == "Success"
        head = f"── {invocation.node}: {invocation.status_details}"
        if invocation.response_code is not None:
            head += f" (exit {invocation.response_code})"
        click.echo(style.green(head) if ok else style.red(head))
        if invocation.message and not ok:
            click.echo(f"   {invocation.message}")
        for step in invocation.steps:
            for stream, text in (("", step.stdout), ("stderr: ", step.stderr)):
                for line in text.splitlines():
                    click.echo(f"   {stream}{line}")
    counts: dict[str, int] = {}
    for invocation in record.invocations:
        counts[invocation.status_details] = counts.get(invocation.status_details, 0) + 1
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    click.echo(f"Command {record.command_id}: {record.status_details} ({summary})")


@main.group("command")
def command_group():
    """Look at Run Command invocations kept in the state store."""


@command_group.command("list")
@click.option("--limit", default=20, show_default=True)
@shared_options
def command_list(options: Options, limit):
    """The most recent commands."""
    with open_store(options.state) as store:
        records = store.list_commands(limit)
    if options.output == "json":
        _echo_json([{k: v for k, v in _command_json(r).items() if k != "invocations"} for r in records])
        return
    for r in records:
        click.echo(f"{r.command_id}  {r.requested_at}  {r.document_name:<24} {r.status_details:<12} {r.target_count} node(s)")


@command_group.command("show")
@click.argument("command_id")
@shared_options
def command_show(options: Options, command_id):
    """One command with every invocation, step and output."""
    with open_store(options.state) as store:
        record = store.get_command(command_id)
    if record is None:
        raise click.ClickException(f"no command {command_id} in {options.state}")
    if options.output == "json":
        _echo_json(_command_json(record))
    else:
        _print_command(record)
