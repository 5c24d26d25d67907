"""Node `agent` options: resident by default over SSH, per session for local, as asked."""

from __future__ import annotations

import json

import pytest

from reconciler.loader import load
from reconciler.transport import session_for


def node(tmp_path, **spec):
    manifest = {"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": spec}
    (tmp_path / "n1.yaml").write_text(json.dumps(manifest))
    result = load(tmp_path)
    assert result.ok, [str(d) for d in result.errors]
    return result.model.nodes[0]


@pytest.mark.parametrize("spec, resident, idle, directory", [
    ({}, True, 3600, "~/.cache/plumb"),
    ({"transport": "local"}, False, 3600, "~/.cache/plumb"),
    ({"agent": {"resident": False}}, False, 3600, "~/.cache/plumb"),
    ({"transport": "local", "agent": {"resident": True, "idleTimeoutSeconds": 60}}, True, 60, "~/.cache/plumb"),
    ({"agent": {"directory": "/var/lib/plumb-agent"}}, True, 3600, "/var/lib/plumb-agent"),
    ({"agent": {"directory": "~/plumb"}}, True, 3600, "~/plumb"),
])
def test_sessions_follow_the_nodes_agent_options(tmp_path, spec, resident, idle, directory):
    session = session_for(node(tmp_path, **spec))
    assert (session.resident, session.idle_timeout, session.directory) == (resident, idle, directory)


def test_an_explicit_choice_beats_the_node(tmp_path):
    assert session_for(node(tmp_path), resident=False).resident is False
