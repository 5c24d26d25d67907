"""Services through SysV init scripts, on nodes where systemd is not running.

Three kinds of test: pure ones (LSB codes, rc?.d links, plans); the collector and the
action against a temporary /etc/init.d tree of fake scripts (the module constants point
there, `service` is taken as missing, so the scripts run directly); and REAL ones on this
machine: a real LSB init script (tests/sysvservice.py) driven by the real agent action
through `service`, `update-rc.d` and start-stop-daemon, observed by the real collector.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from agent import executor, inventory
from agent.actions import service as service_action
from agent.actions import sysv as sysv_action
from agent.actions.base import ActionFailed
from agent.collectors import service as service_collector
from agent.collectors import sysv
from agent.collectors.base import Options
from sysvservice import NAME, start_links, sysv_service  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "inventory.schema.json").read_text())
SERVICE_SCHEMA = jsonschema.Draft202012Validator({"$ref": "#/$defs/service",
                                                  "$defs": SCHEMA["$defs"]})

LSB_SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: {name} for plumb's tests
# Description:       a longer text
#                    on two lines
### END INIT INFO
{body}
"""

# A fake service: its state is a file next to the init.d directory.
STATEFUL = """state="$(dirname "$0")/../state-$(basename "$0")"
case "$1" in
    start) [ -e "$(dirname "$0")/../broken" ] || echo running > "$state" ;;
    stop) echo stopped > "$state" ;;
    restart) echo running > "$state" ;;
    reload) {reload} ;;
    status) [ "$(cat "$state" 2>/dev/null)" = running ] && exit 0; exit 3 ;;
    *) echo "Usage: $0 {{start|stop|status}}" >&2; exit 2 ;;
esac"""


# --- pure: names, links, LSB codes, headers ---------------------------------------------------

@pytest.mark.parametrize("name, service", [
    ("ssh", True), ("hwclock.sh", True), ("README", False), ("skeleton", False), ("rc", False),
    ("rcS", False), (".depend.boot", False), (".legacy-bootordering", False), ("", False),
])
def test_which_init_d_files_are_services(name, service):
    assert sysv.is_service_name(name) is service


def test_start_links_name_services_kill_links_do_not():
    entries = ["S01ssh", "S20nginx", "K01postgresql", "README", "S1x", "S01", ".placeholder"]
    assert sysv.started_names(entries) == {"ssh", "nginx"}


@pytest.mark.parametrize("code, status", [
    (0, "running"), (1, "stopped"), (2, "stopped"), (3, "stopped"), (4, "unknown"),
    (5, "unknown"), (150, "unknown"), (-9, "unknown"), (None, "unknown"),
])
def test_lsb_status_codes(code, status):
    assert sysv.status_from_code(code) == status


def test_lsb_header_fields():
    text = LSB_SCRIPT.format(name="web", body="exit 0")
    header = sysv.parse_lsb_header(text)
    assert header["Provides"] == "web"
    assert header["Default-Start"] == "2 3 4 5"
    assert header["Short-Description"] == "web for plumb's tests"
    assert sysv.parse_lsb_header("#!/bin/sh\n# Provides: x\n") == {}


def test_entry_says_which_manager_answered_and_fits_the_schema():
    entry = sysv.entry("web", 0, True, "Web server")
    assert entry == {"Name": "web", "Status": "running", "StartType": "enabled",
                     "Description": "Web server", "Manager": "sysv"}
    SERVICE_SCHEMA.validate(entry)
    SERVICE_SCHEMA.validate(sysv.entry("web", 4, False))
    with pytest.raises(jsonschema.ValidationError):
        SERVICE_SCHEMA.validate(dict(entry, Manager="upstart"))


def test_bounded_map_keeps_order_bounds_concurrency_and_isolates_failures():
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def work(item):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        if item == 5:
            raise RuntimeError("boom")
        return item * 10

    got = sysv.bounded_map(work, list(range(12)), 3, lambda item: -item)
    assert got == [0, 10, 20, 30, 40, -5, 60, 70, 80, 90, 100, 110]
    assert 1 < peak[0] <= 3
    assert sysv.bounded_map(work, [], 3, lambda item: item) == []


# --- pure: the action's plan ------------------------------------------------------------------

RUNNING, STOPPED, DEAD, UNKNOWN = 0, 3, 1, 4


@pytest.mark.parametrize("ensure, enabled, code, is_enabled, verbs", [
    ("running", None, RUNNING, False, []),
    ("running", None, STOPPED, False, ["start"]),
    ("running", None, DEAD, False, ["start"]),
    ("stopped", None, RUNNING, False, ["stop"]),
    ("stopped", None, STOPPED, False, []),
    ("restarted", None, STOPPED, False, ["restart"]),
    ("restarted", None, UNKNOWN, False, ["restart"]),
    ("reloaded", None, RUNNING, False, ["reload"]),
    ("reloaded", None, STOPPED, False, ["start"]),
    (None, True, UNKNOWN, False, ["enable"]),
    (None, True, UNKNOWN, True, []),
    (None, False, UNKNOWN, True, ["disable"]),
    (None, False, UNKNOWN, False, []),
    ("running", True, STOPPED, False, ["start", "enable"]),
])
def test_plan_table(ensure, enabled, code, is_enabled, verbs):
    assert sysv_action.plan(ensure, enabled, sysv_action.State(code, is_enabled))[0] == verbs


def test_plan_reasons():
    verbs, reasons = sysv_action.plan("running", True, sysv_action.State(3, False))
    assert reasons == ["not running (exit 3: not running)", "not enabled (no start link in rc?.d)"]
    assert sysv_action.plan("running", False, sysv_action.State(0, False))[1] == [
        "already running", "already disabled"]


@pytest.mark.parametrize("ensure", ["running", "stopped", "reloaded"])
@pytest.mark.parametrize("code", [4, 127, None])
def test_a_status_without_an_lsb_answer_is_refused_when_it_matters(ensure, code):
    with pytest.raises(ActionFailed, match="cannot tell whether the service runs"):
        sysv_action.plan(ensure, None, sysv_action.State(code, False), "/etc/init.d/x")


@pytest.mark.parametrize("code, output, unsupported", [
    (3, "", True),
    (2, "", True),
    (1, "Usage: /etc/init.d/x {start|stop}", True),
    (1, "reload failed: bad config", False),
    (7, "", False),
    (0, "Usage: ...", False),
])
def test_reload_unsupported(code, output, unsupported):
    assert sysv_action.reload_unsupported(code, output) is unsupported


def test_commands_use_service_and_fall_back_to_the_script(monkeypatch):
    monkeypatch.setattr(sysv_action, "which", lambda name: "/usr/sbin/" + name)
    assert sysv_action.commands("web", "/etc/init.d/web", "start") == [
        ["/usr/sbin/service", "web", "start"]]
    assert sysv_action.commands("web", "/etc/init.d/web", "enable") == [
        ["/usr/sbin/update-rc.d", "web", "defaults"], ["/usr/sbin/update-rc.d", "web", "enable"]]
    assert sysv_action.commands("web", "/etc/init.d/web", "disable") == [
        ["/usr/sbin/update-rc.d", "web", "disable"]]
    monkeypatch.setattr(sysv_action, "which", lambda name: None)
    assert sysv_action.commands("web", "/etc/init.d/web", "stop") == [["/etc/init.d/web", "stop"]]


def test_a_unit_suffix_names_the_init_script():
    assert sysv_action.script_name("nginx.service") == "nginx"
    assert sysv_action.script_name("nginx") == "nginx"


# --- a temporary /etc/init.d tree of fake scripts ---------------------------------------------

@pytest.fixture
def tree(tmp_path, monkeypatch):
    """etc/init.d + etc/rc?.d under tmp_path, with the module constants pointed there."""
    etc = tmp_path / "etc"
    (etc / "init.d").mkdir(parents=True)
    for level in "0123456S":
        (etc / ("rc%s.d" % level)).mkdir()
    monkeypatch.setattr(sysv, "INIT_D", str(etc / "init.d"))
    monkeypatch.setattr(sysv, "RC_ROOT", str(etc))
    monkeypatch.setattr(service_collector, "SYSTEMD_RUNTIME_DIR", str(tmp_path / "no-systemd"))
    return etc


def script(etc: Path, name: str, body: str, mode: int = 0o755, lsb: bool = True) -> Path:
    path = etc / "init.d" / name
    path.write_text(LSB_SCRIPT.format(name=name, body=body) if lsb else "#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


def link(etc: Path, level: str, entry: str) -> None:
    (etc / ("rc%s.d" % level) / entry).symlink_to("../init.d/" + entry[3:])


def test_collector_reads_init_scripts_when_systemd_is_not_running(tree):
    script(tree, "web", "case $1 in status) exit 0;; esac")
    script(tree, "db", "case $1 in status) exit 3;; esac")
    script(tree, "odd", "case $1 in status) exit 4;; esac")
    script(tree, "crashed", "case $1 in status) exit 1;; esac")
    script(tree, "slow", 'case $1 in status) sleep 30 & echo $! > "$0.pid"; wait;; esac')
    script(tree, "nostatus", "touch \"$0.ran\"; exit 1", lsb=False)
    script(tree, "notexec", "case $1 in status) exit 0;; esac", mode=0o644)
    script(tree, "README", "exit 0")
    script(tree, "skeleton", "case $1 in status) exit 0;; esac")
    script(tree, ".depend.boot", "exit 0")
    (tree / "init.d" / "adir").mkdir()
    link(tree, "2", "S01web")
    link(tree, "S", "S05odd")
    link(tree, "0", "K01db")
    link(tree, "6", "S99crashed")  # rc6.d is not a boot runlevel

    started = time.monotonic()
    entries = service_collector.collect(Options(command_timeout=1.0))
    assert time.monotonic() - started < 10

    got = {e["Name"]: (e["Status"], e["StartType"]) for e in entries}
    assert got == {
        "web": ("running", "enabled"),
        "db": ("stopped", "disabled"),
        "odd": ("unknown", "enabled"),
        "crashed": ("stopped", "disabled"),
        "slow": ("unknown", "disabled"),  # timed out: that service only
        "nostatus": ("unknown", "disabled"),
    }
    assert not (tree / "init.d" / "nostatus.ran").exists()  # no status action: never run
    assert not alive(int((tree / "init.d" / "slow.pid").read_text()))  # its group was killed
    assert [e["Name"] for e in entries] == sorted(got)
    assert {e["Manager"] for e in entries} == {"sysv"}
    assert next(e for e in entries if e["Name"] == "web")["Description"] == "web for plumb's tests"
    for entry in entries:
        SERVICE_SCHEMA.validate(entry)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a killed orphan may linger as a zombie until PID 1 reaps it)."""
    try:
        stat = Path("/proc/%d/stat" % pid).read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_collector_with_an_empty_init_d_reports_no_services(tree):
    assert service_collector.collect(Options()) == []


def test_neither_systemd_nor_init_d_is_unknown_with_both_named(tree, monkeypatch):
    monkeypatch.setattr(sysv, "INIT_D", str(tree / "nowhere"))
    report = inventory.collect(["AWS:Service"], Options())["Types"]["AWS:Service"]
    assert report["Status"] == "unknown"
    assert report["Reason"] == ("systemd is not running on this node and it has no %s"
                                % (tree / "nowhere"))


def test_systemd_entries_say_systemd(monkeypatch, tmp_path):
    fixtures = ROOT / "tests" / "fixtures" / "collectors"
    outputs = {"list-unit-files": (fixtures / "systemctl-list-unit-files.debian12.txt").read_text(),
               "list-units": (fixtures / "systemctl-list-units.debian12.txt").read_text()}
    monkeypatch.setattr(service_collector, "SYSTEMD_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(service_collector, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(service_collector, "run", lambda argv, timeout: (0, outputs[argv[1]]))
    entries = service_collector.collect(Options())
    assert entries and {e["Manager"] for e in entries} == {"systemd"}


@pytest.fixture
def fake_action(tree, monkeypatch):
    """The action on the temporary tree: systemd absent, `service` missing, short settling."""
    monkeypatch.setattr(service_action, "systemd_missing", lambda: "systemd is not running (test)")
    monkeypatch.setattr(sysv_action, "which", lambda name: None)
    monkeypatch.setattr(sysv_action, "SETTLE_SECONDS", 0.5)
    return tree


def step(tmp_path, check=False, **inputs):
    events = []
    document = {"schemaVersion": "2.2",
                "mainSteps": [{"action": "plumb:service", "name": "act", "inputs": inputs}]}
    executor.execute({"document": document, "parameters": {}, "workDir": str(tmp_path / "work"),
                      "check": check}, events.append)
    return next(e for e in events if e["event"] == "step_finished" and e["step"] == "act")


def test_fake_start_then_nothing_to_do(fake_action, tmp_path):
    script(fake_action, "web", STATEFUL.format(reload="exit 3"))
    first = step(tmp_path, name="web", ensure="running")
    assert first["status"] == "Success" and first["changed"] is True
    assert first["details"]["manager"] == "sysv"
    assert first["details"]["commands"] == [[str(fake_action / "init.d" / "web"), "start"]]
    again = step(tmp_path, name="web.service", ensure="running")
    assert again["changed"] is False and again["details"]["reason"] == "already running"


def test_a_daemon_holding_the_scripts_output_does_not_hold_the_step(fake_action, tmp_path):
    body = STATEFUL.format(reload="exit 3").replace(
        'start) [', 'start) sleep 5 & echo $! > "$0.child"; [')
    path = script(fake_action, "web", body)
    started = time.monotonic()
    done = step(tmp_path, name="web", ensure="running")
    assert done["status"] == "Success", done["stderr"]
    assert time.monotonic() - started < 4
    child = int(Path(str(path) + ".child").read_text())
    assert alive(child)  # still holding the script's stdout
    os.kill(child, signal.SIGTERM)


def test_fake_reload_falls_back_to_restart_and_says_so(fake_action, tmp_path):
    path = script(fake_action, "web", STATEFUL.format(reload="exit 3"))
    (fake_action / "state-web").write_text("running\n")
    done = step(tmp_path, name="web", ensure="reloaded")
    assert done["status"] == "Success" and done["changed"] is True
    assert done["details"]["commands"] == [[str(path), "reload"], [str(path), "restart"]]
    assert done["details"]["reason"] == ("reload requested; %s has no reload (exit 3); "
                                         "restarted instead" % path)
    assert done["stdout"] == "web: restart (no reload)\n"


def test_fake_reload_that_fails_for_real_fails_the_step(fake_action, tmp_path):
    script(fake_action, "web", STATEFUL.format(reload="echo 'bad config' >&2; exit 1"))
    (fake_action / "state-web").write_text("running\n")
    done = step(tmp_path, name="web", ensure="reloaded")
    assert done["status"] == "Failed"
    assert "reload exited 1: bad config" in done["stderr"]


def test_fake_start_that_does_not_start_fails_the_step(fake_action, tmp_path):
    path = script(fake_action, "web", STATEFUL.format(reload="exit 3"))
    (fake_action / "broken").write_text("")
    done = step(tmp_path, name="web", ensure="running")
    assert done["status"] == "Failed"
    assert ("web: `%s start` succeeded but the service is not running: `%s status` gave "
            "exit 3: not running" % (path, path)) in done["stderr"]


def test_fake_check_mode_changes_nothing(fake_action, tmp_path):
    path = script(fake_action, "web", STATEFUL.format(reload="exit 3"))
    done = step(tmp_path, check=True, name="web", ensure="running")
    assert done["changed"] is True and done["details"]["checkMode"] is True
    assert done["details"]["commands"] == [[str(path), "start"]]
    assert done["stdout"] == "web: would start\n"
    assert not (fake_action / "state-web").exists()


def test_fake_unknown_status_fails_with_the_reason(fake_action, tmp_path):
    script(fake_action, "web", "case $1 in status) exit 4;; esac")
    done = step(tmp_path, name="web", ensure="running")
    assert done["status"] == "Failed"
    assert "cannot tell whether the service runs" in done["stderr"]
    assert "exit 4: status unknown" in done["stderr"]


def test_neither_systemd_nor_an_init_script_names_both(fake_action, tmp_path):
    done = step(tmp_path, name="plumbtest-nope", ensure="running")
    assert done["status"] == "Failed"
    assert done["stderr"].startswith(
        "systemd is not running (test) and there is no SysV init script %s; plumb:service "
        "manages services through systemd or /etc/init.d scripts"
        % (fake_action / "init.d" / "plumbtest-nope"))


def test_init_system_files_are_never_services(fake_action, tmp_path):
    script(fake_action, "rc", "exit 0")
    done = step(tmp_path, name="rc", ensure="stopped")
    assert done["status"] == "Failed" and "no SysV init script" in done["stderr"]


# --- REAL: /etc/init.d/plumbtest-daemon, service, update-rc.d, start-stop-daemon -------------

def collected(name=NAME):
    report = inventory.collect(["AWS:Service"], Options())["Types"]["AWS:Service"]
    assert report["Status"] == "ok", report
    return next(e for e in report["Content"] if e["Name"] == name)


def test_real_start_stop_and_the_collector_agrees(sysv_service, tmp_path):
    assert collected()["Status"] == "stopped"

    started = step(tmp_path, name=NAME, ensure="running")
    assert started["status"] == "Success", started["stderr"]
    assert started["changed"] is True and started["details"]["manager"] == "sysv"
    assert started["details"]["commands"][0][1:] == [NAME, "start"]
    assert sysv_service.running()
    entry = collected()
    assert (entry["Status"], entry["Manager"]) == ("running", "sysv")
    assert entry["Description"] == "plumb test daemon (sleeps)"

    again = step(tmp_path, name=NAME, ensure="running")
    assert again["changed"] is False and again["details"]["reason"] == "already running"

    stopped = step(tmp_path, name=NAME, ensure="stopped")
    assert stopped["status"] == "Success" and stopped["changed"] is True
    assert sysv_service.status() == 3
    assert collected()["Status"] == "stopped"
    assert step(tmp_path, name=NAME, ensure="stopped")["changed"] is False


def test_real_enable_and_disable_through_update_rc_d(sysv_service, tmp_path):
    assert collected()["StartType"] == "disabled"

    enabled = step(tmp_path, name=NAME, enabled=True)
    assert enabled["status"] == "Success", enabled["stderr"]
    assert [argv[1:] for argv in enabled["details"]["commands"]] == [
        [NAME, "defaults"], [NAME, "enable"]]
    links = start_links(NAME)
    assert sorted(link.split("/")[-2] for link in links) == ["rc2.d", "rc3.d", "rc4.d", "rc5.d"]
    assert collected()["StartType"] == "enabled"
    assert step(tmp_path, name=NAME, enabled="true")["changed"] is False

    disabled = step(tmp_path, name=NAME, enabled=False)
    assert disabled["status"] == "Success" and disabled["changed"] is True
    assert start_links(NAME) == []
    assert collected()["StartType"] == "disabled"
    assert step(tmp_path, name=NAME, enabled=False)["changed"] is False

    again = step(tmp_path, name=NAME, enabled=True)  # K links left by disable: enable again
    assert again["changed"] is True and sysv_service.enabled()


def test_real_reload_falls_back_to_restart(sysv_service, tmp_path):
    sysv_service.start()
    before = sysv_service.pid()
    done = step(tmp_path, name=NAME, ensure="reloaded")
    assert done["status"] == "Success", done["stderr"]
    assert "has no reload (exit 3); restarted instead" in done["details"]["reason"]
    assert [argv[1:] for argv in done["details"]["commands"]] == [[NAME, "reload"],
                                                                   [NAME, "restart"]]
    assert sysv_service.running() and sysv_service.pid() != before


def test_real_running_and_enabled_in_one_step_then_nothing(sysv_service, tmp_path):
    first = step(tmp_path, name=NAME, ensure="running", enabled=True)
    assert first["status"] == "Success", first["stderr"]
    assert first["details"]["reason"] == ("not running (exit 3: not running); "
                                          "not enabled (no start link in rc?.d)")
    assert sysv_service.running() and sysv_service.enabled()
    second = step(tmp_path, name=NAME, ensure="running", enabled=True)
    assert second["changed"] is False
    assert second["details"]["reason"] == "already running; already enabled"


def test_real_check_mode_leaves_it_alone(sysv_service, tmp_path):
    done = step(tmp_path, check=True, name=NAME, ensure="running", enabled=True)
    assert done["changed"] is True and done["details"]["checkMode"] is True
    assert not sysv_service.running() and not sysv_service.enabled()


def test_real_restart_of_a_stopped_service_starts_it(sysv_service, tmp_path):
    done = step(tmp_path, name=NAME, ensure="restarted")
    assert done["status"] == "Success", done["stderr"]
    assert sysv_service.running()
