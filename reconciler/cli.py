"""The `plumb` command line: parses arguments, calls the core, renders, sets the exit code.

Errors meet the user here, once, as one line pointing into their manifest; tracebacks
only with --debug. Every command takes the shared options (-m/--manifests, --state,
--output, --debug) after its name.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from . import __version__, kinds, schema
from .diagnostics import Diagnostic
from .loader import load
from .termstyle import Style

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
FORMAT_VERSION = "1.0"


@dataclass
class Options:
    manifests: str
    state: str
    output: str
    debug: bool
    key_dir: str = ""


def who() -> str:
    """Who is running this command, for the records it writes: `cli user@host`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli {user}@{socket.gethostname()}"


def shared_options(func):
    """-m/--manifests, --state, --output, --debug on every command, after its name."""

    @click.option("-m", "--manifests", envvar="PLUMB_MANIFESTS", default="manifests", show_default=True,
                  help="Manifests directory (env PLUMB_MANIFESTS).")
    @click.option("--state", envvar="PLUMB_STATE", default="sqlite:///.plumb/state.db", show_default=True,
                  help="State store URL (env PLUMB_STATE).")
    @click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text", show_default=True,
                  help="text for people, json for programs.")
    @click.option("--key-dir", envvar="PLUMB_KEY_DIR", default=".plumb/keys", show_default=True,
                  help="Directory of the controller's sealing key pair (env PLUMB_KEY_DIR).")
    @click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
    @functools.wraps(func)
    def wrapper(*args, manifests, state, output, debug, key_dir, **kwargs):
        options = Options(manifests, state, output, debug, key_dir)
        try:
            return func(options, *args, **kwargs)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except BrokenPipeError:  # `plumb ... | head`: the reader left; nothing to say
            sys.stderr.close()
            sys.exit(EXIT_OK)
        except Exception as exc:  # the one place an unexpected error meets the user
            if debug:
                raise
            click.echo(f"plumb: error: {exc} (run with --debug for details)", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="plumb", message="%(prog)s %(version)s")
def main():
    """plumb keeps a fleet of Linux machines true to what is committed in git.

    Manifests (nodes, associations, documents, parameters, patch baselines, maintenance
    windows) live in a directory, ./manifests by default. Start with `plumb validate`.
    """


@main.command()
@click.argument("directory", required=False)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@shared_options
def validate(options: Options, directory: str | None, strict: bool):
    """Check every manifest under DIRECTORY (default: -m, ./manifests).

    Reports all problems at once, each as file:line:column, the field's JSON pointer,
    what was expected and, for a misspelled key, what you probably meant. Exits 0 when
    valid, 1 when any error is found (or any warning, with --strict).
    """
    root = directory or options.manifests
    result = load(root)
    failed = bool(result.errors) or (strict and bool(result.diagnostics))
    if options.output == "json":
        _echo_json({
            "format_version": FORMAT_VERSION,
            "valid": not failed,
            "root": root,
            "files": result.files,
            "objects": result.model.counts(),
            "error_count": len(result.errors),
            "warning_count": len(result.diagnostics) - len(result.errors),
            "diagnostics": [d.to_dict() for d in result.diagnostics],
        })
    else:
        _print_diagnostics(result.diagnostics)
        style = Style.for_stream(sys.stdout)
        counts = ", ".join(f"{n} {k}" for k, n in result.model.counts().items() if n)
        warnings = len(result.diagnostics) - len(result.errors)
        if failed:
            click.echo(style.red(f"{root}: {len(result.errors)} error(s), {warnings} warning(s) "
                                 f"in {result.files} file(s)"))
        else:
            suffix = f", {warnings} warning(s)" if warnings else ""
            click.echo(style.green(f"{root}: valid") + f" ({result.files} file(s): {counts or 'no objects'}{suffix})")
    sys.exit(EXIT_ERROR if failed else EXIT_OK)


def _print_diagnostics(diagnostics: list[Diagnostic]) -> None:
    style = Style.for_stream(sys.stderr)
    for diagnostic in diagnostics:
        line = diagnostic.render()
        click.echo(style.red(line) if diagnostic.is_error else style.yellow(line), err=True)


def _schema_stem(name: str) -> str:
    wanted = name.lower()
    stems = schema.stems()
    if wanted in stems:
        return wanted
    module = kinds.BY_KIND.get(name) or next((m for k, m in kinds.BY_KIND.items() if k.lower() == wanted), None)
    if module is not None:
        return module.SCHEMA
    raise click.BadParameter(f"unknown kind '{name}'; choose from: {', '.join(kinds.KIND_NAMES)} "
                             f"(or {', '.join(s for s in stems if not kinds.for_schema(s))})", param_hint="KIND")


@main.command("schema")
@click.argument("kind", required=False)
@click.option("--write", "write_dir", type=click.Path(file_okay=False), help="Write every schema into this directory.")
@shared_options
def schema_command(options: Options, kind: str | None, write_dir: str | None):
    """Print the JSON Schema of KIND, or write them all for editors with --write DIR.

    The schemas are self-contained (shared definitions inlined), so editors can use
    them directly, e.g. with the yaml-language-server modeline
    `# yaml-language-server: $schema=<DIR>/association.schema.json`.
    """
    if write_dir:
        target = Path(write_dir)
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for stem in schema.stems():
            if stem == schema.COMMON:
                continue
            path = target / f"{stem}.schema.json"
            path.write_text(json.dumps(schema.bundled(stem), indent=2) + "\n", encoding="utf-8")
            written.append(str(path))
        if options.output == "json":
            _echo_json({"written": written})
        else:
            for path in written:
                click.echo(f"wrote {path}")
        return
    if not kind:
        names = [k for k in kinds.KIND_NAMES] + [s for s in schema.stems() if not kinds.for_schema(s)]
        if options.output == "json":
            _echo_json({"schemas": names})
        else:
            click.echo("Schemas: " + ", ".join(names) + "\nRun `plumb schema KIND` to print one.")
        return
    _echo_json(schema.bundled(_schema_stem(kind)))


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


from . import cli_agent, cli_nodes, cli_ops, cli_params, cli_patch, cli_plan, cli_reports  # noqa: E402,F401  (register their commands on `main`)
