"""Property: whatever the input, the loader answers with diagnostics and never raises."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.diagnostics import Diagnostic
from reconciler.loader import load
from reconciler.yamlsource import parse_documents

KEYS = ["apiVersion", "kind", "metadata", "name", "spec", "targets", "key", "values", "state", "files",
        "packages", "mode", "template", "schemaVersion", "mainSteps", "type", "value", "labels", "document"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
    st.sampled_from(["plumb.dev/v1", "Node", "Association", "Document", "Parameter", "PatchBaseline",
                     "MaintenanceWindow", "2.2", "rate(1 hour)", "cron(0 2 ? * SUN *)", "{{ssm:/a}}",
                     "/etc/x", "0644", "tag:role", "InstanceIds", "*", "SecureString", "StringList"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children, max_size=5),
    ),
    max_leaves=30,
)
YAMLISH = st.text(alphabet=string.printable + "ä€\t{}[]:-#&*!|>'\"%@`", max_size=300)


def _run(tmp_path, text: str, suffix: str = ".yaml") -> list[Diagnostic]:
    for old in tmp_path.iterdir():
        old.unlink()
    (tmp_path / f"input{suffix}").write_text(text, encoding="utf-8")
    result = load(str(tmp_path))
    assert all(isinstance(d, Diagnostic) for d in result.diagnostics)
    return result.diagnostics


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(YAMLISH)
def test_arbitrary_text_never_escapes_the_loader(tmp_path, text):
    _run(tmp_path, text)
    parse_documents(text, "x.yaml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(VALUES)
def test_arbitrary_structures_never_escape_the_loader(tmp_path, value):
    import json

    _run(tmp_path, json.dumps(value, default=str), suffix=".yaml")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_arbitrary_manifest_shapes_never_escape_the_loader(tmp_path, spec):
    import json

    for kind in ("Node", "Association", "Document", "Parameter", "PatchBaseline", "MaintenanceWindow"):
        doc = {"apiVersion": "plumb.dev/v1", "kind": kind, "metadata": {"name": "abc"}, "spec": spec}
        _run(tmp_path, json.dumps(doc, default=str))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_escape_the_loader(tmp_path, data):
    for old in tmp_path.iterdir():
        old.unlink()
    (tmp_path / "input.yml").write_bytes(data)
    load(str(tmp_path))


def test_deep_nesting_is_a_diagnostic(tmp_path):
    diagnostics = _run(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert diagnostics and all(d.is_error for d in diagnostics)
