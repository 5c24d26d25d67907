"""`plumb param ...` (the Parameter Store) and `plumb secret ...` (the sealing key, sealing values).

Registered on the `main` group of cli.py. SSM's rules live in `reconciler.parameters`; this
module reads arguments and stdin, renders, and turns a ParameterError or SecretError into
`plumb: error: <Code>: <message>` and exit 1. A SecureString's value is shown only as its
marker, `(sensitive, sha256:xxxxxxxx)`, unless --decrypt is given.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys

import click

from .cli import who, EXIT_ERROR, EXIT_OK, Options, _echo_json, main, shared_options
from .parameters import TIERS, TYPES, ParameterError, ParameterService, PutRequest, redacted, split_selector
from .secrets import PRIVATE_FILE, PUBLIC_FILE, SecretError, is_sealed, key_dir, keygen, load_public, seal
from .store import open_store
from .store.base import ParameterVersion
from .termstyle import Style

VALUE_WIDTH = 60  # characters of a value shown in a table


def reports_errors(func):
    """ParameterError / SecretError → `plumb: error: <Code>: <message>` on stderr (and, with
    --output json, {"error": {"code", "message"}} on stdout), exit 1. Goes under @shared_options."""

    @functools.wraps(func)
    def wrapper(options: Options, *args, **kwargs):
        try:
            return func(options, *args, **kwargs)
        except (ParameterError, SecretError) as exc:
            code, message = (exc.code, exc.message) if isinstance(exc, ParameterError) else ("SecretError", str(exc))
            if options.output == "json":
                _echo_json({"error": {"code": code, "message": message}})
            click.echo(Style.for_stream(sys.stderr).red(f"plumb: error: {code}: {message}"), err=True)
            sys.exit(EXIT_ERROR)

    return wrapper


@contextlib.contextmanager
def _service(options: Options):
    with open_store(options.state) as store:
        yield ParameterService(store, options.key_dir)


def _read_input(prompt: str, hide: bool, keep_newline: bool = False) -> str:
    """A value from stdin (one trailing newline stripped unless keep_newline), or typed at a prompt
    (hidden for secrets) when stdin is a terminal."""
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=hide, confirmation_prompt=hide, err=True)
    data = sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException("the value on stdin is not UTF-8 text") from None
    if not keep_newline and text.endswith("\n"):
        text = text[:-1]
    return text


def _shown(service: ParameterService, version: ParameterVersion, decrypt: bool) -> str:
    if version.type == "SecureString" and not decrypt:
        return redacted(version)
    return service.reveal(version)


def _one_line(text: str, width: int = VALUE_WIDTH) -> str:
    text = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return text if len(text) <= width else text[:width - 1] + "…"


def _version_json(version: ParameterVersion, value: str | None, **extra) -> dict:
    """SSM's shape of a parameter (GetParameter, GetParameterHistory); no Value when `value` is None."""
    data = {"Name": version.name, "Type": version.type, "Value": value, "Version": version.version, **extra,
            "LastModifiedDate": version.modified_at, "LastModifiedUser": version.modified_by,
            "Tier": version.tier, "DataType": version.data_type, "Description": version.description,
            "AllowedPattern": version.allowed_pattern, "Policies": list(version.policies),
            "Labels": list(version.labels), "Source": version.source}
    if value is None:
        del data["Value"]
    return data


# --- plumb param ---------------------------------------------------------------------------
@main.group("param")
def param_group():
    """The Parameter Store: get, put, list, label and delete parameters (SSM's semantics).

    SecureString values are kept sealed for the controller's key (`plumb secret keygen`)
    and shown only as `(sensitive, sha256:xxxxxxxx)` unless --decrypt is given.
    """


@param_group.command("get")
@click.argument("name", metavar="NAME[:VERSION|:LABEL]")
@click.option("--decrypt", "--with-decryption", "decrypt", is_flag=True,
              help="Show a SecureString's plaintext (needs the controller's private key).")
@shared_options
@reports_errors
def param_get(options: Options, name, decrypt):
    """Show a parameter: its latest version, or the version or label after ':'."""
    name, selector = split_selector(name)
    with _service(options) as service:
        version = service.get(name, selector)
        value = _shown(service, version, decrypt)
    if options.output == "json":
        _echo_json({"Parameter": _version_json(version, value, Selector=f":{selector}" if selector else None)})
        sys.exit(EXIT_OK)
    rows = [("Name", version.name), ("Type", version.type), ("Version", str(version.version)),
            ("Value", value), ("Labels", ", ".join(version.labels) or "-"), ("Tier", version.tier),
            ("LastModified", version.modified_at), ("ModifiedBy", version.modified_by)]
    if version.description:
        rows.append(("Description", version.description))
    for key, text in rows:
        click.echo(f"{key + ':':<14}{text}")
    sys.exit(EXIT_OK)


@param_group.command("put")
@click.argument("name")
@click.argument("value", required=False)
@click.option("--type", "type_", type=click.Choice(TYPES),
              help="Required to create a parameter; an existing one keeps its type.")
@click.option("--overwrite", is_flag=True, help="Replace the value or metadata of an existing parameter.")
@click.option("--description", help="Up to 1024 characters.")
@click.option("--tier", type=click.Choice(TIERS), help="Standard (4 KB, default), Advanced (8 KB, policies), "
                                                       "or Intelligent-Tiering (Advanced only when needed).")
@click.option("--allowed-pattern", help="A regular expression the whole value (each StringList item) must match.")
@click.option("--policies", metavar="JSON", help='SSM parameter policies, e.g. \'[{"Type": "Expiration", '
                                                 '"Version": "1.0", "Attributes": {"Timestamp": "..."}}]\'; '
                                                 "'[]' removes them.")
@shared_options
@reports_errors
def param_put(options: Options, name, value, type_, overwrite, description, tier, allowed_pattern, policies):
    """Create or overwrite a parameter (SSM PutParameter).

    VALUE omitted or '-' reads it from stdin (one trailing newline stripped), or prompts
    for it on a terminal: the safe way to give a SecureString, which is sealed before it
    is stored (a value already sealed by `plumb secret seal` is stored as it is). The
    version goes up only when the value changes.
    """
    with _service(options) as service:
        if type_ is None:
            record = service.record(name)
            if record is None:
                raise click.UsageError("--type is required to create a parameter")
            type_ = record.latest.type
        secure = type_ == "SecureString"
        if value is None or value == "-":
            value = _read_input("Value", hide=secure)
        elif secure and not is_sealed(value):
            click.echo("plumb: warning: a SecureString given on the command line can end up in your shell "
                       "history; pipe it in instead (VALUE omitted or '-')", err=True)
        sealed = secure and is_sealed(value)  # the output of `plumb secret seal`: stored as it is
        request = PutRequest(name, type_, value=None if sealed else value, sealed_value=value if sealed else None,
                             description=description, tier=tier, allowed_pattern=allowed_pattern,
                             policies=_parse_policies(policies), overwrite=overwrite)
        version = service.put(request, by=who())
    if options.output == "json":
        _echo_json({"Version": version.version, "Tier": version.tier})
    else:
        click.echo(f"{version.name}: version {version.version}, tier {version.tier}")
    sys.exit(EXIT_OK)


def _parse_policies(text: str | None) -> tuple | None:
    if text is None:
        return None
    try:
        policies = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError("ValidationException", f"--policies is not valid JSON: {exc}") from None
    return tuple(policies) if isinstance(policies, list) else (policies,)


@param_group.command("list")
@click.option("--path", default="/", show_default=True, help="A hierarchy prefix, e.g. /prod/web.")
@click.option("--recursive", is_flag=True, help="Every level below --path, not only the next one.")
@shared_options
@reports_errors
def param_list(options: Options, path, recursive):
    """List parameters under a path (SSM GetParametersByPath); values are never shown."""
    with _service(options) as service:
        records = service.list(path, recursive)
    if options.output == "json":
        _echo_json({"Parameters": [_version_json(r.latest, None) for r in records]})
        sys.exit(EXIT_OK)
    if not records:
        click.echo(f"No parameters under {path}{'' if recursive else ' (one level; --recursive for all)'}.")
        sys.exit(EXIT_OK)
    width = max(len(r.name) for r in records)
    click.echo(f"{'NAME':<{width}}  {'TYPE':<12}  {'VERSION':>7}  {'TIER':<8}  LAST MODIFIED")
    for r in records:
        v = r.latest
        click.echo(f"{v.name:<{width}}  {v.type:<12}  {v.version:>7}  {v.tier:<8}  {v.modified_at}")
    sys.exit(EXIT_OK)


@param_group.command("history")
@click.argument("name")
@click.option("--decrypt", "--with-decryption", "decrypt", is_flag=True, help="Show SecureString plaintexts.")
@shared_options
@reports_errors
def param_history(options: Options, name, decrypt):
    """Every version kept of a parameter (SSM GetParameterHistory), oldest first."""
    with _service(options) as service:
        versions = service.history(name)
        values = [_shown(service, v, decrypt) for v in versions]
    if options.output == "json":
        _echo_json({"Parameters": [_version_json(v, value) for v, value in zip(versions, values)]})
        sys.exit(EXIT_OK)
    click.echo(f"History of {versions[-1].name} ({versions[-1].type}):")
    click.echo(f"{'VERSION':>7}  {'MODIFIED':<20}  {'BY':<24}  {'LABELS':<16}  VALUE")
    for v, value in zip(versions, values):
        click.echo(f"{v.version:>7}  {v.modified_at:<20}  {v.modified_by:<24}  {','.join(v.labels) or '-':<16}  "
                   f"{_one_line(value)}")
    sys.exit(EXIT_OK)


@param_group.command("label")
@click.argument("name", metavar="NAME[:VERSION]")
@click.argument("labels", nargs=-1, required=True)
@shared_options
@reports_errors
def param_label(options: Options, name, labels):
    """Attach labels to a version (default: the latest), moving each off any other version.

    A label is 1-100 letters, digits, '.', '-' or '_', not starting with a digit, 'aws' or
    'ssm'; a version carries at most 10. Invalid labels are reported (InvalidLabels) and
    the others attached; the exit code is then 1.
    """
    name, version = _name_and_version(name, required=False)
    with _service(options) as service:
        number, invalid = service.label(name, labels, version)
    applied = [label for label in dict.fromkeys(labels) if label not in invalid]
    if options.output == "json":
        _echo_json({"ParameterVersion": number, "InvalidLabels": invalid})
    else:
        if applied:
            click.echo(f"Labelled version {number} of {name}: {', '.join(applied)}")
        if invalid:
            click.echo(f"InvalidLabels: {', '.join(invalid)} (a label is 1-100 letters, digits, '.', '-' or '_', "
                       "not starting with a digit, 'aws' or 'ssm')", err=True)
    sys.exit(EXIT_ERROR if invalid else EXIT_OK)


@param_group.command("unlabel")
@click.argument("name", metavar="NAME:VERSION")
@click.argument("labels", nargs=-1, required=True)
@shared_options
@reports_errors
def param_unlabel(options: Options, name, labels):
    """Remove labels from a version (SSM UnlabelParameterVersion)."""
    name, version = _name_and_version(name, required=True)
    with _service(options) as service:
        removed, invalid = service.unlabel(name, version, labels)
    if options.output == "json":
        _echo_json({"RemovedLabels": removed, "InvalidLabels": invalid})
        sys.exit(EXIT_OK)
    if removed:
        click.echo(f"Removed from version {version} of {name}: {', '.join(removed)}")
    if invalid:
        click.echo(f"InvalidLabels (not on version {version}): {', '.join(invalid)}")
    sys.exit(EXIT_OK)


def _name_and_version(text: str, required: bool) -> tuple[str, int | None]:
    name, selector = split_selector(text)
    if selector and not selector.isdigit():
        raise click.UsageError(f"'{text}': after ':' give a version number")
    if required and not selector:
        raise click.UsageError(f"'{text}': give the version as NAME:VERSION")
    return name, int(selector) if selector else None


@param_group.command("delete")
@click.argument("name")
@shared_options
@reports_errors
def param_delete(options: Options, name):
    """Delete a parameter and its whole history (SSM DeleteParameter)."""
    with _service(options) as service:
        latest = service.delete(name)
    if options.output == "json":
        _echo_json({"Name": latest.name, "Version": latest.version, "Deleted": True})
    else:
        click.echo(f"Deleted {latest.name} (it was at version {latest.version})")
    sys.exit(EXIT_OK)


# --- plumb secret --------------------------------------------------------------------------
@main.group("secret")
def secret_group():
    """The controller's sealing key, and sealing SecureString values for manifests."""


@secret_group.command("keygen")
@click.option("--force", is_flag=True, help="Replace an existing key pair (values sealed for it will no longer open).")
@shared_options
@reports_errors
def secret_keygen(options: Options, force):
    """Make the controller's key pair in --key-dir (default .plumb/keys)."""
    directory = key_dir(options.key_dir)
    public = keygen(directory, force=force)
    private_path, public_path = directory / PRIVATE_FILE, directory / PUBLIC_FILE
    if options.output == "json":
        _echo_json({"KeyId": public.key_id, "PublicKey": public.text(),
                    "Files": {"private": str(private_path), "public": str(public_path)}})
        sys.exit(EXIT_OK)
    click.echo(f"Made the sealing key pair {public.key_id}:")
    click.echo(f"  {private_path}  private key (mode 0600): back it up somewhere safe and never commit it;")
    click.echo("      without it no sealed value opens")
    click.echo(f"  {public_path}  public key: safe to commit; anyone with it can seal values for this controller")
    click.echo(public.text())
    click.echo("Seal a secret for a manifest with: plumb secret seal < secret.txt")
    sys.exit(EXIT_OK)


@secret_group.command("seal")
@click.option("--public-key", "public_key", type=click.Path(dir_okay=True),
              help="The sealing.pub to seal for (default: the one in --key-dir).")
@click.option("--keep-newline", is_flag=True, help="Keep a trailing newline of stdin as part of the secret.")
@shared_options
@reports_errors
def secret_seal(options: Options, public_key, keep_newline):
    """Seal a secret read from stdin (or typed, hidden) and print only the sealed value.

    `plumb secret seal < password.txt` prints a `plumb-sealed:v1:...` line to paste into a
    SecureString's sealedValue. Only the controller's private key opens it.
    """
    public = load_public(public_key or key_dir(options.key_dir))
    secret = _read_input("Secret", hide=True, keep_newline=keep_newline)
    if not secret:
        raise ParameterError("ValidationException", "nothing to seal: the secret is empty")
    sealed = seal(secret, public)
    if options.output == "json":
        _echo_json({"SealedValue": sealed, "KeyId": public.key_id})
    else:
        click.echo(sealed)
    sys.exit(EXIT_OK)
