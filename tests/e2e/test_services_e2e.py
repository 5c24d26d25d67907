"""Issue 4's end-to-end promise for services, on a node whose services are SysV init scripts
(no systemd as PID 1, as in many containers and on this machine): plan -> reconcile -> plan
shows nothing; change a managed file and stop the managed service by hand -> plan reports
drift (exit 2) pointing at the manifest lines; reconcile restores both; a second reconcile
changes nothing. Locally and over a real sshd.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from sysvservice import sysv_service  # noqa: F401  (fixture)


def _fleet(tmp_path, node_spec, root):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    docs = [
        {"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": node_spec},
        {"apiVersion": "plumb.dev/v1", "kind": "Association", "metadata": {"name": "app"},
         "spec": {"targets": [{"key": "InstanceIds", "values": ["n1"]}],
                  "state": {"files": {str(root / "app.conf"): {"content": "workers = 4\n", "mode": "0644"}},
                            "services": {"plumbtest-daemon": {"ensure": "running", "enabled": True}}}}},
    ]
    (manifests / "fleet.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    env = {**os.environ, "PLUMB_MANIFESTS": str(manifests), "PLUMB_STATE": f"sqlite:///{tmp_path}/state.db",
           "NO_COLOR": "1", "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def plumb(*args):
        return subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, capture_output=True, text=True,
                              timeout=180, cwd=tmp_path)
    return plumb


@pytest.fixture(params=["local", "ssh"])
def node_spec(request):
    if request.param == "local":
        return {"transport": "local"}
    return request.getfixturevalue("sshd").spec()


def test_a_stopped_service_and_an_edited_file_are_drift_and_reconcile_restores_them(tmp_path, node_spec,
                                                                                     sysv_service):  # noqa: F811
    root = tmp_path / "app"
    plumb = _fleet(tmp_path, node_spec, root)
    first = plumb("plan", "--detailed-exitcode")
    assert first.returncode == 2, first.stdout + first.stderr
    assert "~ services:plumbtest-daemon" in first.stdout
    applied = plumb("reconcile")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert sysv_service.running() and sysv_service.enabled()
    assert plumb("plan", "--detailed-exitcode").returncode == 0

    (root / "app.conf").write_text("workers = 64\n")
    sysv_service.stop()
    assert not sysv_service.running()
    drift = plumb("plan", "--detailed-exitcode")
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "Changed outside plumb (drift)" in drift.stdout
    assert "~ services:plumbtest-daemon  (app, manifests/fleet.yaml:" in drift.stdout.replace(str(tmp_path) + "/", "")
    assert "state: \"stopped\" -> \"running\"" in drift.stdout
    assert f"~ files:{root}/app.conf" in drift.stdout

    restored = plumb("reconcile")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "2 applied, 0 failed, 0 not converged" in restored.stdout
    assert sysv_service.running() and (root / "app.conf").read_text() == "workers = 4\n"
    again = plumb("reconcile")
    assert again.returncode == 0 and "0 applied" in again.stdout, again.stdout
    history = plumb("drift", "history", "n1")
    assert "services:plumbtest-daemon" in history.stdout and "corrected" in history.stdout
