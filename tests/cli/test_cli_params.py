"""`plumb param ...` and `plumb secret ...`: CliRunner for the many small cases, real processes for the flow."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler import secrets
from reconciler.cli import main

REPO = Path(__file__).resolve().parents[2]
SECRET = "PLANTED-cli-s3cr3t-7Hq"
MARKER = f"(sensitive, sha256:{hashlib.sha256(SECRET.encode()).hexdigest()[:8]})"


@pytest.fixture
def env(tmp_path):
    return {"state": f"sqlite:///{tmp_path}/state.db", "keys": tmp_path / "keys"}


@pytest.fixture
def run(env):
    """run("param", "get", "/a", input=...) → click Result, with this test's state and keys."""
    runner = CliRunner()

    def _run(*args, input=None):
        return runner.invoke(main, [*args, "--state", env["state"], "--key-dir", str(env["keys"])], input=input)

    return _run


@pytest.fixture
def keys(run, env):
    assert run("secret", "keygen").exit_code == 0
    return env["keys"]


# --- plumb secret --------------------------------------------------------------------------
def test_keygen_writes_the_key_pair_and_says_what_to_do_with_it(run, env):
    result = run("secret", "keygen")
    assert result.exit_code == 0, result.output
    public = secrets.load_public(env["keys"])
    assert public.key_id in result.stdout and public.text() in result.stdout.splitlines()
    assert "sealing.key" in result.stdout and "never commit" in result.stdout and "safe to commit" in result.stdout
    assert stat.S_IMODE((env["keys"] / "sealing.key").stat().st_mode) == 0o600
    again = run("secret", "keygen")
    assert again.exit_code == 1 and again.stderr.startswith("plumb: error: SecretError: ")
    assert "--force" in again.stderr
    forced = run("secret", "keygen", "--force", "--output", "json")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["KeyId"] != public.key_id


def test_seal_prints_only_the_sealed_value(run, keys):
    result = run("secret", "seal", input=SECRET + "\n")
    assert result.exit_code == 0 and result.stderr == ""
    [line] = result.stdout.splitlines()
    assert secrets.unseal(line, secrets.load_keypair(keys)) == SECRET  # exactly one newline stripped
    kept = run("secret", "seal", "--keep-newline", input=SECRET + "\n").stdout.strip()
    assert secrets.unseal(kept, secrets.load_keypair(keys)) == SECRET + "\n"
    two = run("secret", "seal", input=SECRET + "\n\n").stdout.strip()
    assert secrets.unseal(two, secrets.load_keypair(keys)) == SECRET + "\n"


def test_seal_for_a_given_public_key_and_errors(run, tmp_path):
    other = secrets.keygen(tmp_path / "elsewhere")
    result = run("secret", "seal", "--public-key", str(tmp_path / "elsewhere" / "sealing.pub"), input="x")
    assert result.exit_code == 0 and secrets.sealed_key_id(result.stdout.strip()) == other.key_id
    missing = run("secret", "seal", input="x")
    assert missing.exit_code == 1 and "plumb secret keygen" in missing.stderr
    empty = run("secret", "seal", "--public-key", str(tmp_path / "elsewhere"), input="\n")
    assert empty.exit_code == 1 and "empty" in empty.stderr


# --- plumb param ---------------------------------------------------------------------------
def test_put_and_get_a_secure_string_from_stdin(run, keys):
    put = run("param", "put", "/db/pw", "--type", "SecureString", input=SECRET + "\n")
    assert put.exit_code == 0 and "/db/pw: version 1, tier Standard" in put.stdout
    shown = run("param", "get", "/db/pw")
    assert shown.exit_code == 0
    assert f"Value:        {MARKER}" in shown.stdout and "Type:         SecureString" in shown.stdout
    for field in ("Name:", "Version:", "Labels:", "LastModified:", "ModifiedBy:"):
        assert field in shown.stdout
    revealed = run("param", "get", "/db/pw", "--decrypt", "--output", "json")
    parameter = json.loads(revealed.stdout)["Parameter"]
    assert parameter["Value"] == SECRET and parameter["Version"] == 1 and parameter["Selector"] is None
    assert {"Name", "Type", "LastModifiedDate", "DataType", "Labels"} <= set(parameter)


def test_put_string_versions_and_json(run, keys):
    assert json.loads(run("param", "put", "/app/port", "8080", "--type", "String", "-o", "json").stdout) == \
        {"Version": 1, "Tier": "Standard"}
    assert run("param", "put", "/app/port", "8081").exit_code == 1  # exists: needs --overwrite
    again = run("param", "put", "/app/port", "8081", "--overwrite")  # type kept
    assert again.exit_code == 0 and "version 2" in again.stdout
    assert run("param", "put", "/app/new", "x").exit_code == 2  # --type needed to create
    policies = json.dumps([{"Type": "Expiration", "Version": "1.0",
                            "Attributes": {"Timestamp": "2030-01-01T00:00:00Z"}}])
    tiered = run("param", "put", "/app/exp", "x", "--type", "String", "--tier", "Intelligent-Tiering",
                 "--policies", policies)
    assert tiered.exit_code == 0 and "tier Advanced" in tiered.stdout
    assert json.loads(run("param", "get", "/app/port:1", "-o", "json").stdout)["Parameter"]["Value"] == "8080"


def test_a_sealed_value_on_the_command_line_is_stored_as_it_is(run, keys):
    sealed = run("secret", "seal", input=SECRET).stdout.strip()
    result = run("param", "put", "/s", sealed, "--type", "SecureString")
    assert result.exit_code == 0 and "warning" not in result.stderr
    assert json.loads(run("param", "get", "/s", "--decrypt", "-o", "json").stdout)["Parameter"]["Value"] == SECRET
    plain = run("param", "put", "/t", SECRET, "--type", "SecureString")
    assert plain.exit_code == 0 and "shell history" in plain.stderr and SECRET not in plain.output


def test_list_history_label_unlabel_delete(run, keys):
    run("param", "put", "/app/a", "1", "--type", "String")
    run("param", "put", "/app/a", "2", "--overwrite")
    run("param", "put", "/app/deep/b", "x", "--type", "StringList")
    run("param", "put", "/top", "-", "--type", "SecureString", input=SECRET)
    listed = run("param", "list", "--path", "/app")
    assert listed.exit_code == 0 and "/app/a" in listed.stdout and "/app/deep/b" not in listed.stdout
    assert "/app/deep/b" in run("param", "list", "--path", "/app", "--recursive").stdout
    assert "/top" in run("param", "list").stdout
    label = run("param", "label", "/app/a:1", "stable", "9bad")
    assert label.exit_code == 1 and "Labelled version 1 of /app/a: stable" in label.stdout
    assert "InvalidLabels: 9bad" in label.stderr
    assert json.loads(run("param", "label", "/app/a", "prod", "-o", "json").stdout) == \
        {"ParameterVersion": 2, "InvalidLabels": []}
    history = run("param", "history", "/app/a")
    lines = history.stdout.splitlines()
    assert history.exit_code == 0 and len(lines) == 4 and "stable" in lines[2] and "prod" in lines[3]
    unlabel = run("param", "unlabel", "/app/a:1", "stable", "absent", "-o", "json")
    assert json.loads(unlabel.stdout) == {"RemovedLabels": ["stable"], "InvalidLabels": ["absent"]}
    assert run("param", "unlabel", "/app/a", "x").exit_code == 2  # the version is required
    deleted = run("param", "delete", "/app/a")
    assert deleted.exit_code == 0 and "Deleted /app/a" in deleted.stdout
    gone = run("param", "get", "/app/a")
    assert gone.exit_code == 1 and gone.stderr.strip() == "plumb: error: ParameterNotFound: no parameter /app/a"


def test_errors_are_one_line_with_the_ssm_code_and_json_on_stdout(run, keys):
    run("param", "put", "/p", "1", "--type", "String", "--allowed-pattern", "^[0-9]+$")
    result = run("param", "put", "/p", "abc", "--overwrite", "-o", "json")
    assert result.exit_code == 1
    assert result.stderr.strip() == \
        "plumb: error: ParameterPatternMismatchException: the value does not match the allowed pattern ^[0-9]+$"
    assert json.loads(result.stdout)["error"]["code"] == "ParameterPatternMismatchException"
    missing = run("param", "get", "/p:7")
    assert missing.exit_code == 1 and "ParameterVersionNotFound" in missing.stderr
    bad = run("param", "put", "/q", "x", "--type", "String", "--policies", "{not json")
    assert bad.exit_code == 1 and "ValidationException" in bad.stderr


def test_a_secure_value_never_shows_without_decrypt(run, keys):
    run("param", "put", "/sec", "--type", "SecureString", "--allowed-pattern", "PLANTED-[a-zA-Z0-9-]+",
        input=SECRET)
    run("param", "put", "/sec", "-", "--overwrite", input=SECRET + "-2")
    run("param", "label", "/sec:1", "first")
    outputs = []
    for output in ("text", "json"):
        outputs += [run("param", "get", "/sec", "-o", output), run("param", "get", "/sec:first", "-o", output),
                    run("param", "history", "/sec", "-o", output), run("param", "list", "-o", output),
                    run("param", "put", "/sec", "--overwrite", "-o", output, input=SECRET + " no match"),
                    run("param", "put", "/sec", "--overwrite", "--tier", "Advanced", "-o", output, input=SECRET)]
    assert all(SECRET not in r.output for r in outputs)
    assert MARKER in outputs[1].stdout and json.loads(outputs[7].stdout)["Parameter"]["Value"] == MARKER
    assert outputs[4].exit_code == 1 and "ParameterPatternMismatchException" in outputs[4].stderr


# --- real processes ------------------------------------------------------------------------
def plumb(*args, cwd, input=None):
    env = {**os.environ, "PLUMB_STATE": f"sqlite:///{cwd}/state.db", "PLUMB_KEY_DIR": str(cwd / "keys"),
           "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, input=input, timeout=120)


def test_the_sealed_secret_flow_as_a_user_runs_it(tmp_path):
    assert plumb("secret", "keygen", cwd=tmp_path).returncode == 0
    (tmp_path / "pw.txt").write_text(SECRET + "\n")
    sealed = plumb("secret", "seal", cwd=tmp_path, input=(tmp_path / "pw.txt").read_text())
    assert sealed.returncode == 0 and sealed.stdout.startswith("plumb-sealed:v1:") and SECRET not in sealed.stdout
    put = plumb("param", "put", "/prod/db/password", "--type", "SecureString", cwd=tmp_path,
                input=(tmp_path / "pw.txt").read_text())
    assert put.returncode == 0, put.stderr
    shown = plumb("param", "get", "/prod/db/password", cwd=tmp_path)
    assert shown.returncode == 0 and MARKER in shown.stdout and SECRET not in shown.stdout + shown.stderr
    revealed = plumb("param", "get", "/prod/db/password", "--decrypt", "-o", "json", cwd=tmp_path)
    assert json.loads(revealed.stdout)["Parameter"]["Value"] == SECRET
    assert SECRET.encode() not in (tmp_path / "state.db").read_bytes()


def test_errors_exit_1_from_a_real_process(tmp_path):
    result = plumb("param", "get", "/nothing", "-o", "json", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "plumb: error: ParameterNotFound: no parameter /nothing"
    assert json.loads(result.stdout) == {"error": {"code": "ParameterNotFound", "message": "no parameter /nothing"}}
