"""Secrets: one formatting path, and no secret in any output format."""

from __future__ import annotations

import ast
import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reconciler.planmodel import Action, Classification as C, FieldChange
from reconciler.render import redact, render_json, render_junit, render_markdown, render_sarif, render_text

SECRET = "hunter2-SECRET"
MARKER = f"(sensitive, sha256:{hashlib.sha256(SECRET.encode()).hexdigest()[:8]})"
RENDERERS = {
    "text": lambda p: render_text(p, verbose=True), "color": lambda p: render_text(p, color=True, verbose=True),
    "json": render_json, "junit": render_junit, "junit-notes": lambda p: render_junit(p, fail_on_change=False),
    "sarif": render_sarif, "markdown": render_markdown,
}


def visible(fmt: str, out: str) -> str:
    """What a reader sees: for XML, every text and attribute value with entities decoded."""
    if not fmt.startswith("junit"):
        return out
    root = ET.fromstring(out)
    return "\n".join([*(e.text or "" for e in root.iter()), *(v for e in root.iter() for v in e.attrib.values())])


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_secret_appears_in_no_output_but_its_hash_marker_does(mixed, fmt):
    out = RENDERERS[fmt](mixed)
    assert SECRET not in visible(fmt, out) and "old-pass-XYZ" not in visible(fmt, out)
    assert SECRET not in out and "old-pass-XYZ" not in out
    assert MARKER in visible(fmt, out)


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "markdown"])
def test_sensitive_resource_shows_content_hashes_not_its_diff(mixed, fmt):
    out = visible(fmt, RENDERERS[fmt](mixed))
    assert "DB_PASSWORD" not in out
    assert "(sensitive content changed, sha256:aaaaaaaa -> sha256:bbbbbbbb)" in out


def test_display_formats_plain_values_as_json():
    assert redact.display("0644", False) == '"0644"'
    assert redact.display(True, False) == "true"
    assert redact.display({"b": 1, "a": [1, 2]}, False) == '{"a": [1, 2], "b": 1}'
    assert redact.display(None, False) == "(none)" == redact.display(None, True)
    assert redact.display("line\nbreak", False) == '"line\\nbreak"'


def test_display_marks_a_sensitive_value_with_the_hash_of_its_utf8_bytes():
    assert redact.display(SECRET, True) == MARKER
    digest = hashlib.sha256("pässword".encode("utf-8")).hexdigest()[:8]
    assert redact.display("pässword", True) == f"(sensitive, sha256:{digest})"
    assert redact.display("a", True) != redact.display("b", True)


def test_every_change_of_a_sensitive_resource_is_redacted(build):
    r = build.resource("files:/s", C.PENDING_CHANGE, Action.UPDATE, "r", sensitive=True,
                       changes=(FieldChange("owner", "root", "app"),))
    hidden = redact.display("root", True), redact.display("app", True)
    assert redact.field_line(r.changes[0], r) == f"owner: {hidden[0]} -> {hidden[1]}"


def test_sensitive_content_without_hashes_still_says_it_changed(build):
    r = build.resource("files:/s", C.PENDING_CHANGE, Action.UPDATE, "r", sensitive=True, content_diff="-a\n+b\n")
    assert redact.content(r) == "(sensitive content changed)"


def test_a_raw_value_in_a_hash_field_is_hashed_not_shown(build):
    r = build.resource("files:/s", C.PENDING_CHANGE, Action.CREATE, "r", sensitive=True,
                       changes=(FieldChange("sha256", None, SECRET),))
    assert redact.content(r) == f"(sensitive content changed, (none) -> sha256:{MARKER[-9:-1]})"
    assert SECRET not in str(redact.change_record(r.changes[0], r))


RENDER = Path(__file__).resolve().parents[2] / "reconciler" / "render"
IMPURE = {"os", "sys", "time", "datetime", "random", "subprocess", "socket", "pathlib", "io", "shutil"}


@pytest.mark.parametrize("module", sorted(p.name for p in RENDER.glob("*.py")))
def test_renderers_import_nothing_that_reads_the_world(module):
    tree = ast.parse((RENDER / module).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not names & IMPURE
    assert "open(" not in (RENDER / module).read_text()
