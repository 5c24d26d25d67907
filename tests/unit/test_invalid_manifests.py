"""Every invalid fixture yields exactly the errors listed in tests/fixtures/invalid/expected.yaml.

Adding a case needs no Python: drop a file (or a directory) into tests/fixtures/invalid/
and list its expected errors (pointer, line, part of the message, optional hint).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reconciler.loader import load

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "invalid"
EXPECTED = yaml.safe_load((FIXTURES / "expected.yaml").read_text())


def test_every_fixture_has_expectations_and_vice_versa():
    on_disk = {p.name for p in FIXTURES.iterdir() if p.name != "expected.yaml"}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_fixture_reports_exactly_the_expected_errors(name):
    path = FIXTURES / name
    result = load(str(path))
    assert not result.ok, f"{name} should be invalid"
    errors = result.errors
    for want in EXPECTED[name]:
        file = str(path / want["file"]) if "file" in want else str(path)
        matching = [
            d for d in errors
            if d.pointer == want["pointer"] and d.line == want["line"] and d.file == file
            and want["contains"] in d.message and want.get("hint", "") in d.hint
        ]
        assert matching, f"{name}: no error {want} among:\n" + "\n".join(d.render() for d in errors)
    assert len(errors) == len(EXPECTED[name]), "unexpected extra errors:\n" + "\n".join(d.render() for d in errors)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_error_is_located(name):
    for diagnostic in load(str(FIXTURES / name)).errors:
        assert diagnostic.file and diagnostic.line > 0

