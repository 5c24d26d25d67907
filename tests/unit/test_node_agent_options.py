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


@pytest.mark.parametrize("spec, resident, idle", [
    ({}, True, 3600),
    ({"transport": "local"}, False, 3600),
    ({"agent": {"resident": False}}, False, 3600),
    ({"transport": "local", "agent": {"resident": True, "idleTimeoutSeconds": 60}}, True, 60),
])
def test_sessions_follow_the_nodes_agent_options(tmp_path, spec, resident, idle):
    session = session_for(node(tmp_path, **spec))
    assert (session.resident, session.idle_timeout) == (resident, idle)


def test_an_explicit_choice_beats_the_node(tmp_path):
    assert session_for(node(tmp_path), resident=False).resident is False
