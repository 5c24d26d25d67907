"""What planning asks the agent to observe: managed paths, sysctl keys, and file text only when not secret."""

from __future__ import annotations

from pathlib import Path

from reconciler.engine.inventory import request_for
from reconciler.loader import load

REPO = Path(__file__).resolve().parents[2]


def test_web_nodes_observe_managed_paths_but_never_the_secret_files_text():
    model = load(str(REPO / "manifests")).model
    request = request_for(model, model.node("web-1"))
    assert "/etc/nginx/conf.d/app.conf" in request.files and "/srv/app" in request.files
    assert "/etc/app/database.env" in request.files
    assert "/etc/nginx/conf.d/app.conf" in request.content_paths
    assert "/etc/app/database.env" not in request.content_paths, "its template uses {{ssm-secure:...}}"
    assert request.as_args()["contentPaths"] == list(request.content_paths)


def test_db_nodes_observe_their_sysctl_keys():
    model = load(str(REPO / "manifests")).model
    request = request_for(model, model.node("db-1"))
    assert set(request.sysctl) == {"vm.swappiness", "vm.overcommit_memory"}


def test_the_agent_reports_text_only_for_the_named_paths(tmp_path):
    import json
    import subprocess
    import sys

    (tmp_path / "a.txt").write_text("visible\n")
    (tmp_path / "b.txt").write_text("hidden\n")
    request = {"id": 1, "op": "collect", "args": {"types": ["AWS:File"], "files": [str(tmp_path / "a.txt"),
               str(tmp_path / "b.txt")], "contentPaths": [str(tmp_path / "a.txt")]}}
    done = subprocess.run([sys.executable, "-m", "agent.serve"], input=json.dumps(request) + "\n", cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    answer = json.loads(done.stdout.splitlines()[0])
    entries = {e["Name"]: e for e in answer["result"]["Types"]["AWS:File"]["Content"]}
    assert entries["a.txt"]["Content"] == "visible\n"
    assert "Content" not in entries["b.txt"] and entries["b.txt"]["Sha256"]
