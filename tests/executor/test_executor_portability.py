"""The executor's modules parse as Python 3.9, import only the standard library, and say
what they own in a module docstring."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = [ROOT / "agent" / name for name in ("executor.py", "document.py", "shellquote.py")] + \
    sorted((ROOT / "agent" / "actions").glob("*.py"))


def test_the_files_exist():
    assert len(FILES) >= 14 and all(path.exists() for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_parses_as_python_3_9(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_standard_library_only_and_a_docstring(path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), "module docstring missing"
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module]
    allowed = set(sys.stdlib_module_names) | {"agent"}
    assert [n for n in names if n.split(".")[0] not in allowed] == []
    assert "from __future__ import annotations" in path.read_text()
