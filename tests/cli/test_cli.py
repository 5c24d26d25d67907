"""The plumb command line as a user runs it: real processes, real exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "tests" / "fixtures" / "invalid"


def plumb(*args, cwd=REPO, env=None):
    return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=120)


def test_validate_example_fleet_exits_0():
    result = plumb("validate", "manifests")
    assert result.returncode == 0, result.stderr
    assert "manifests: valid" in result.stdout


def test_validate_defaults_to_manifests_dir_and_env(tmp_path):
    assert plumb("validate").returncode == 0
    env = {**__import__("os").environ, "PLUMB_MANIFESTS": str(INVALID / "06-unknown-kind.yaml")}
    assert plumb("validate", env=env).returncode == 1


def test_validate_reports_every_error_of_a_run_with_locations(tmp_path):
    for name in ("01-misspelled-field.yaml", "05-unquoted-mode.yaml", "31-unresolved-document.yaml"):
        shutil.copy(INVALID / name, tmp_path / name)
    result = plumb("validate", str(tmp_path))
    assert result.returncode == 1
    lines = [l for l in result.stderr.splitlines() if ": error: " in l]
    assert len(lines) == 3
    assert f"{tmp_path}/01-misspelled-field.yaml:9:3: error: /spec/maxConcurency: unknown field" in lines[0]
    assert "did you mean maxConcurrency?" in lines[0]
    assert "3 error(s)" in result.stdout


def test_validate_json_output_is_data(tmp_path):
    result = plumb("validate", str(INVALID / "05-unquoted-mode.yaml"), "--output", "json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["valid"] is False and data["error_count"] == 1
    diagnostic = data["diagnostics"][0]
    assert diagnostic["pointer"] == "/spec/state/files/~1etc~1motd/mode"
    assert (diagnostic["line"], diagnostic["column"]) == (13, 15)
    assert diagnostic["expected"] and diagnostic["hint"] and diagnostic["severity"] == "error"
    assert result.stderr == ""


def test_warnings_pass_unless_strict(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "apiVersion: plumb.dev/v1\nkind: Node\nmetadata: {name: n1}\nspec: {hostKeyChecking: false}\n")
    assert plumb("validate", str(tmp_path)).returncode == 0
    strict = plumb("validate", str(tmp_path), "--strict")
    assert strict.returncode == 1 and "host key checking is disabled" in strict.stderr


def test_no_colour_when_not_a_terminal():
    result = plumb("validate", str(INVALID / "01-misspelled-field.yaml"))
    assert "\x1b[" not in result.stderr + result.stdout


def test_schema_prints_a_kind_schema():
    result = plumb("schema", "Association")
    assert result.returncode == 0
    data = json.loads(result.stdout)
    assert data["title"] == "Association"
    jsonschema.Draft202012Validator.check_schema(data)
    assert json.loads(plumb("schema", "association").stdout) == data


def test_schema_unknown_kind_is_a_usage_error():
    result = plumb("schema", "Assoc")
    assert result.returncode == 2 and "unknown kind" in result.stderr


def test_schema_write_gives_editor_ready_schemas_that_accept_the_fleet(tmp_path):
    result = plumb("schema", "--write", str(tmp_path / "out"))
    assert result.returncode == 0
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"association.schema.json", "node.schema.json", "document.schema.json"} <= written
    schemas = {p.name.split(".")[0]: json.loads(p.read_text()) for p in (tmp_path / "out").iterdir()}
    for path in (REPO / "manifests").rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            validator = jsonschema.Draft202012Validator(schemas[doc["kind"].lower()])
            assert not list(validator.iter_errors(doc)), path


def test_version_and_help_on_every_command():
    assert plumb("--version").stdout.strip() == "plumb 0.1.0"
    top = plumb("--help")
    assert top.returncode == 0 and "validate" in top.stdout and "schema" in top.stdout
    for command in ("validate", "schema"):
        result = plumb(command, "--help")
        assert result.returncode == 0 and "--output" in result.stdout and "Usage:" in result.stdout


@pytest.mark.skipif(shutil.which("plumb") is None, reason="console script not installed")
def test_console_script_is_installed():
    result = subprocess.run(["plumb", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "plumb" in result.stdout
