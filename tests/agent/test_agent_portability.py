"""The agent runs on any node with python3 >= 3.9 and nothing but the standard library."""

import ast
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENT_FILES = sorted((ROOT / "agent").rglob("*.py"))


def test_there_are_agent_files_to_check():
    assert ROOT / "agent" / "inventory.py" in AGENT_FILES


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_file_is_python_3_9_syntax(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_file_imports_only_the_standard_library(path):
    tree = ast.parse(path.read_text())
    outside = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        outside += [name for name in names if name.split(".")[0] not in sys.stdlib_module_names | {"agent"}]
    assert outside == []


@pytest.mark.parametrize("path", AGENT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_annotations_are_never_evaluated_at_runtime(path):
    """`X | None` in an annotation is 3.10+ at runtime; postponed annotations make it safe."""
    tree = ast.parse(path.read_text())
    annotated = any(
        isinstance(node, (ast.AnnAssign, ast.arg)) and node.annotation is not None
        or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None
        for node in ast.walk(tree)
    )
    future = any(
        isinstance(node, ast.ImportFrom) and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    assert future or not annotated


def python39():
    """A working python3.9 on this machine (pyenv keeps one out of PATH), or None."""
    candidates = [shutil.which("python3.9")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 9)":
            return candidate
    return None


def test_collect_runs_on_a_real_python_3_9(tmp_path):
    interpreter = python39()
    if interpreter is None:
        pytest.skip("no Python 3.9 interpreter on this machine")
    done = subprocess.run(
        [interpreter, "-E", "-s", "-m", "agent", "collect", "--files", "/etc/hostname", "--sysctl", "kernel.hostname",
         "--apt-cache-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    document = json.loads(done.stdout)
    assert document["Types"]["AWS:InstanceInformation"]["Content"][0]["PythonVersion"].startswith("3.9.")
    failed = {name: r["Reason"] for name, r in document["Types"].items() if r["Status"] != "ok"}
    assert set(failed) <= {"AWS:Service"}, failed
