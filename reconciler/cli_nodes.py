"""`plumb node register|deregister|list`: nodes that are not (yet) Node manifests in git.

A registered node is a Node manifest kept in the state store — the same fields, checked by
the same schema and rules — so a fleet can grow without a commit per machine (SSM's managed
instances registered with an activation). Targets match its labels like any node's; a Node
manifest in git with the same name wins, with a warning.
"""

from __future__ import annotations

import sys

import click

from .cli import EXIT_ERROR, EXIT_OK, Options, _echo_json, _print_diagnostics, main, shared_options, who
from .cli_ops import _model
from .loader import REGISTERED, registered_nodes
from .store import open_store
from .yamlsource import dump


@main.group("node")
def node_group():
    """Nodes registered in the state store, beside the Node manifests in git."""


def _labels(items) -> dict[str, str]:
    labels = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{item}' is not key=value", param_hint="--label")
        labels[key] = value
    return labels


@node_group.command("register")
@click.argument("name")
@click.option("--address", help="Host name or IP address to reach it (default: NAME).")
@click.option("--port", type=int, help="SSH port (default 22).")
@click.option("--user", help="SSH user.")
@click.option("--identity-file", help="SSH private key.")
@click.option("--known-hosts-file", help="known_hosts file holding its host key.")
@click.option("--transport", type=click.Choice(["ssh", "local"]), default="ssh", show_default=True)
@click.option("--become", type=click.Choice(["none", "sudo"]), help="Run the agent through sudo.")
@click.option("--python", "python_", help="Python 3 on the node (default python3).")
@click.option("--label", "-l", "labels", multiple=True, metavar="KEY=VALUE",
              help="A label (what tag:KEY targets match); repeatable.")
@click.option("--description")
@click.option("--resident-agent/--no-resident-agent", "resident", default=None,
              help="Keep the agent running on the node between sessions (default: yes over ssh).")
@click.option("--agent-idle-timeout", type=int, metavar="SECONDS",
              help="A resident agent ends after this long without a session (default 3600).")
@click.option("--agent-directory", metavar="PATH", help="Where the agent lives on the node (default ~/.cache/plumb).")
@shared_options
def node_register(options: Options, name, address, port, user, identity_file, known_hosts_file, transport, become,
                  python_, labels, description, resident, agent_idle_timeout, agent_directory):
    """Register NAME (or replace its registration): a Node manifest kept in the state store."""
    spec = {"transport": transport}
    for key, value in (("address", address), ("port", port), ("user", user), ("identityFile", identity_file),
                       ("knownHostsFile", known_hosts_file), ("become", become), ("python", python_),
                       ("description", description)):
        if value is not None:
            spec[key] = value
    agent = {key: value for key, value in (("resident", resident), ("idleTimeoutSeconds", agent_idle_timeout),
                                           ("directory", agent_directory)) if value is not None}
    if agent:
        spec["agent"] = agent
    metadata = {"name": name}
    if labels:
        metadata["labels"] = _labels(labels)
    text = dump({"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": metadata, "spec": spec})
    nodes, problems = registered_nodes([(name, text)])
    if any(d.is_error for d in problems) or not nodes:
        _print_diagnostics(problems)
        raise click.ClickException(f"node '{name}' was not registered")
    declared = next((n for n in _model(options).nodes if n.name == name and not n.origin.file.startswith(REGISTERED)),
                    None)
    if declared is not None:
        raise click.ClickException(f"node '{name}' is declared in {declared.origin.file}:{declared.origin.line}; "
                                   "change it there")
    _print_diagnostics(problems)  # warnings (e.g. host key checking off)
    with open_store(options.state) as store:
        store.register_node(name, text, who())
    if options.output == "json":
        _echo_json({"registered": name, "manifest": text})
    else:
        click.echo(f"Registered node {name} ({transport}"
                   + (f", {address or name}:{port or 22}" if transport == "ssh" else "") + ")"
                   + (f" with labels {', '.join(labels)}" if labels else ""))
    sys.exit(EXIT_OK)


@node_group.command("deregister")
@click.argument("name")
@shared_options
def node_deregister(options: Options, name):
    """Forget a registered node (its inventory and history stay in the store)."""
    with open_store(options.state) as store:
        gone = store.deregister_node(name)
    if not gone:
        raise click.ClickException(f"no registered node '{name}'")
    click.echo(f"Deregistered node {name}")
    sys.exit(EXIT_OK)


@node_group.command("list")
@shared_options
def node_list(options: Options):
    """Every node: those declared in git and those registered, with their labels."""
    model = _model(options)
    with open_store(options.state) as store:
        registered = {name: (at, by) for name, _, at, by in store.registered_nodes()}
    rows = []
    for node in model.nodes:
        from_store = node.origin.file.startswith(REGISTERED)
        source = (f"registered {registered[node.name][0]} by {registered[node.name][1]}" if from_store
                  else f"{node.origin.file}:{node.origin.line}")
        rows.append({"name": node.name, "transport": node.transport.value,
                     "address": node.host if node.transport.value == "ssh" else "", "labels": dict(node.labels),
                     "source": source, "registered": from_store})
    if options.output == "json":
        _echo_json({"nodes": rows})
        sys.exit(EXIT_OK)
    if not rows:
        click.echo("No nodes: add Node manifests or `plumb node register NAME`.")
        sys.exit(EXIT_ERROR)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        labels = ",".join(f"{k}={v}" for k, v in r["labels"].items()) or "-"
        click.echo(f"{r['name']:<{width}}  {r['transport']:<5}  {labels:<40}  {r['source']}")
    sys.exit(EXIT_OK)
