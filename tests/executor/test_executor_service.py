"""plumb:service. The real systemctl is used for the "systemd is not running" refusal; the
start/stop/enable logic is a UNIT TEST against a fake `systemctl` put first on PATH (this
container has no systemd as PID 1), which keeps unit states in a JSON file and logs calls.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from agent.actions import service
from agent.actions.base import ActionFailed
from executor_support import action_doc

FAKE_SYSTEMCTL = '''#!{python}
# Fake systemctl for plumb's unit tests: state in $FAKE_SYSTEMCTL_STATE, calls logged.
import json, os, sys
path = os.environ["FAKE_SYSTEMCTL_STATE"]
state = json.load(open(path))
args = sys.argv[1:]
open(path + ".log", "a").write(" ".join(args) + "\\n")
if args[0] == "is-system-running":
    print(state.get("system", "running"))
    sys.exit(0)
unit = state["units"].get(args[-1])
if args[0] == "show":
    if unit is None:
        print("LoadState=not-found\\nActiveState=inactive\\nUnitFileState=")
    else:
        print("LoadState=loaded\\nActiveState=%s\\nUnitFileState=%s"
              % (unit["active"], unit["file"]))
    sys.exit(0)
effects = {{"start": ("active", "active"), "restart": ("active", "active"),
           "reload": ("active", "active"), "stop": ("active", "inactive"),
           "enable": ("file", "enabled"), "disable": ("file", "disabled")}}
key, value = effects[args[0]]
unit[key] = value
json.dump(state, open(path, "w"))
'''


@pytest.fixture
def fake_systemctl(tmp_path, monkeypatch):
    """Install the fake; returns (set_units, calls)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "systemctl"
    script.write_text(FAKE_SYSTEMCTL.format(python=sys.executable))
    script.chmod(0o755)
    state = tmp_path / "systemctl.json"
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))
    monkeypatch.setenv("FAKE_SYSTEMCTL_STATE", str(state))

    def set_units(system="running", **units):
        state.write_text(json.dumps({"system": system, "units": units}))

    def calls():
        log = tmp_path / "systemctl.json.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [c for c in lines if c.split()[0] not in ("is-system-running", "show")]

    return set_units, calls


def act(run_request, check=False, **inputs):
    return run_request(action_doc("plumb:service", **inputs), check=check).finished("act")


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd is running here")
@pytest.mark.skipif(shutil.which("systemctl") is None, reason="no systemctl here")
def test_without_systemd_the_step_fails_with_a_clear_message(run_request):
    step = act(run_request, name="cron", ensure="running")
    assert step["status"] == "Failed"
    assert step["stderr"].startswith("systemd is not running on this node "
                                     "(systemctl is-system-running: offline)")


def test_unit_start_and_enable_when_needed(run_request, fake_systemctl):
    set_units, calls = fake_systemctl
    set_units(**{"nginx.service": {"active": "inactive", "file": "disabled"}})
    step = act(run_request, name="nginx.service", ensure="running", enabled=True)
    assert step["changed"] is True
    assert calls() == ["start nginx.service", "enable nginx.service"]
    assert step["details"]["reason"] == "not running (inactive); not enabled (disabled)"
    again = act(run_request, name="nginx.service", ensure="running", enabled=True)
    assert again["changed"] is False
    assert again["details"]["reason"] == "already running; already enabled"
    assert len(calls()) == 2


def test_unit_stop_and_disable(run_request, fake_systemctl):
    set_units, calls = fake_systemctl
    set_units(**{"telnet.socket": {"active": "active", "file": "enabled"}})
    step = act(run_request, name="telnet.socket", ensure="stopped", enabled="false")
    assert step["changed"] is True and calls() == ["stop telnet.socket", "disable telnet.socket"]


def test_restarted_always_acts(run_request, fake_systemctl):
    set_units, calls = fake_systemctl
    set_units(**{"nginx": {"active": "active", "file": "enabled"}})
    assert act(run_request, name="nginx", ensure="restarted")["changed"] is True
    assert calls() == ["restart nginx"]


def test_check_mode_calls_nothing_that_changes(run_request, fake_systemctl):
    set_units, calls = fake_systemctl
    set_units(**{"nginx": {"active": "failed", "file": "disabled"}})
    step = act(run_request, check=True, name="nginx", ensure="running", enabled=True)
    assert step["changed"] is True and step["details"]["checkMode"] is True
    assert step["details"]["commands"] == [["systemctl", "start", "nginx"],
                                           ["systemctl", "enable", "nginx"]]
    assert calls() == []


def test_missing_unit_and_masked_unit_fail(run_request, fake_systemctl):
    set_units, _ = fake_systemctl
    set_units(**{"masked": {"active": "inactive", "file": "masked"}})
    missing = act(run_request, name="nope", ensure="running")
    assert missing["status"] == "Failed" and "unit nope not found" in missing["stderr"]
    masked = act(run_request, name="masked", enabled=True)
    assert masked["status"] == "Failed" and "unit is masked" in masked["stderr"]


def test_offline_systemd_from_the_fake_is_refused_too(run_request, fake_systemctl):
    set_units, _ = fake_systemctl
    set_units(system="offline")
    assert "systemd is not running" in act(run_request, name="x", ensure="running")["stderr"]


@pytest.mark.parametrize("ensure,enabled,active,file,verbs", [
    ("running", None, "active", "enabled", []),
    ("running", None, "activating", "enabled", []),
    ("running", None, "failed", "enabled", ["start"]),
    ("stopped", None, "failed", "enabled", []),
    ("reloaded", None, "active", "enabled", ["reload"]),
    ("reloaded", None, "inactive", "enabled", ["start"]),
    (None, True, "inactive", "static", []),
    (None, True, "inactive", "enabled-runtime", []),
    (None, False, "inactive", "static", []),
    (None, False, "inactive", "enabled", ["disable"]),
])
def test_plan_table(ensure, enabled, active, file, verbs):
    spec = service.Spec("u", ensure, enabled)
    assert service.plan(spec, {"ActiveState": active, "UnitFileState": file})[0] == verbs


def test_parse_show():
    assert service.parse_show("LoadState=loaded\nActiveState=active\nUnitFileState=\n") == {
        "LoadState": "loaded", "ActiveState": "active", "UnitFileState": ""}


def test_invalid_unit_names_are_refused():
    with pytest.raises(Exception, match="not a valid systemd unit name"):
        service.prepare({"name": "--now", "ensure": "running"})
    with pytest.raises(ActionFailed):
        service._plan_enabled(True, "masked")
