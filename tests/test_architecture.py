"""Architecture rules: the import-linter layers, and one home per third-party library."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# third-party library → the only module (or package prefix) of reconciler allowed to import it
HOMES = {
    "yaml": ("reconciler.yamlsource",),
    "jsonschema": ("reconciler.schema",),
    "referencing": ("reconciler.schema",),
    "jinja2": ("reconciler.templating",),
    "click": ("reconciler.cli", "reconciler.cli_ops", "reconciler.cli_plan", "reconciler.cli_reports",
              "reconciler.cli_params", "reconciler.cli_patch", "reconciler.cli_nodes",
              "reconciler.cli_agent"),
    "asyncssh": ("reconciler.transport.ssh",),
    "deepdiff": ("reconciler.diff",),
    "watchdog": ("reconciler.watch",),
    "psycopg": ("reconciler.store.postgres",),
    "cryptography": ("reconciler.secrets",),
}


def _imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_import_linter_contracts_are_kept():
    exe = shutil.which("lint-imports")
    if exe is None:
        pytest.fail("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_third_party_library_has_one_home():
    offenders = []
    for path in (REPO / "reconciler").rglob("*.py"):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for name in _imports(path):
            homes = HOMES.get(name)
            if homes and not any(module == h or module.startswith(h + ".") for h in homes):
                offenders.append(f"{module} imports {name} (its home is {homes[0]})")
    assert not offenders, "\n".join(offenders)


def test_controller_imports_only_declared_dependencies():
    allowed = set(sys.stdlib_module_names) | set(HOMES) | {"reconciler"}
    strays = []
    for path in (REPO / "reconciler").rglob("*.py"):
        extra = {"agent"} if path.name == "versions.py" else set()  # the one declared exception
        strays += [f"{path.relative_to(REPO)}: {n}" for n in _imports(path) if n not in allowed | extra]
    assert not strays, "\n".join(strays)
