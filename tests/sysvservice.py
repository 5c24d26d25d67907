"""A real SysV init service for tests that manage services on a node without systemd.

`install_test_service(name)` writes /etc/init.d/<name>: an LSB init script (headers for
update-rc.d: Default-Start 2 3 4 5, Default-Stop 0 1 6) whose daemon is `sleep` started in
the background by start-stop-daemon with the pidfile /run/<name>.pid. Its actions:
start, stop, restart, force-reload (= restart), status (start-stop-daemon --status: LSB
0 running, 1 dead with a pidfile, 3 not running, 4 unknown); `reload` is unimplemented
(exit 3, as LSB says), anything else is a usage error (exit 2).

`remove_test_service(name)` undoes everything, whatever state a failed test left: stops
the daemon (the script's stop, then SIGKILL of the pid in the pidfile if that process is
still our sleep), `update-rc.d -f <name> remove`, deletes the script and the pidfile.

The `sysv_service` fixture skips (with the reason) unless this is a node where plumb uses
SysV init (root, systemd not running, start-stop-daemon and update-rc.d present), removes
any leftover, installs `plumbtest-daemon` (stopped, not enabled) and yields a
`SysvService`; it removes it afterwards even when the test fails. Use it with
`from sysvservice import sysv_service  # noqa: F401` (tests/ is on sys.path).

    def test_drift(sysv_service):
        sysv_service.start()
        assert sysv_service.running()
        sysv_service.stop()          # "by hand", behind plumb's back
        assert sysv_service.status() == 3
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import pytest

NAME = "plumbtest-daemon"
INIT_D = Path("/etc/init.d")
RC_ROOT = Path("/etc")
BOOT_RUNLEVELS = ("S", "2", "3", "4", "5")
TOOLS = ("start-stop-daemon", "update-rc.d")
TIMEOUT = 60
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:    $local_fs
# Required-Stop:     $local_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: plumb test daemon (sleeps)
# Description:       Written by plumb's tests (tests/sysvservice.py); safe to delete.
### END INIT INFO

PATH={path}
NAME={name}
DAEMON={daemon}
PIDFILE={pidfile}

do_start() {{
    start-stop-daemon --start --quiet --oknodo --background --make-pidfile \\
        --pidfile "$PIDFILE" --exec "$DAEMON" -- 100000
}}

do_stop() {{
    start-stop-daemon --stop --quiet --oknodo --retry TERM/5/KILL/5 \\
        --pidfile "$PIDFILE" --exec "$DAEMON"
    status=$?
    rm -f "$PIDFILE"
    return $status
}}

case "$1" in
    start) do_start ;;
    stop) do_stop ;;
    restart|force-reload) do_stop && do_start ;;
    status) start-stop-daemon --status --pidfile "$PIDFILE" --exec "$DAEMON" ;;
    reload) echo "$NAME: reload is not implemented" >&2; exit 3 ;;
    *) echo "Usage: /etc/init.d/$NAME {{start|stop|restart|force-reload|status}}" >&2; exit 2 ;;
esac
"""


def script_path(name: str = NAME) -> Path:
    return INIT_D / name


def pidfile(name: str = NAME) -> Path:
    return Path("/run") / ("%s.pid" % name)


def daemon_program() -> str:
    """The real path of `sleep` (start-stop-daemon matches /proc/<pid>/exe against it)."""
    found = shutil.which("sleep")
    if found is None:
        raise RuntimeError("no sleep program on PATH")
    return os.path.realpath(found)


def why_not_sysv() -> Optional[str]:
    """Why plumb would not use SysV init here (the skip reason), or None when it would."""
    if os.geteuid() != 0:
        return "needs root (writes /etc/init.d and /etc/rc?.d)"
    if os.path.isdir("/run/systemd/system"):
        return "systemd is running here, so plumb:service uses systemd, not SysV init"
    missing = [tool for tool in TOOLS if shutil.which(tool, path=SBIN_PATH) is None]
    if missing:
        return "missing %s" % ", ".join(missing)
    if not INIT_D.is_dir():
        return "no %s" % INIT_D
    return None


def require_sysv() -> None:
    reason = why_not_sysv()
    if reason:
        pytest.skip("SysV init tests: %s" % reason)


def install_test_service(name: str = NAME) -> Path:
    """Write /etc/init.d/<name> (stopped, no rc?.d links); returns its path."""
    path = script_path(name)
    path.write_text(SCRIPT.format(name=name, daemon=daemon_program(), pidfile=pidfile(name),
                                  path=SBIN_PATH))
    path.chmod(0o755)
    return path


def remove_test_service(name: str = NAME) -> None:
    """Stop the daemon, remove the rc?.d links, the script and the pidfile. Never raises
    for something already gone."""
    path = script_path(name)
    if path.exists():
        _run([str(path), "stop"])
    _kill_leftover(name)
    if shutil.which("update-rc.d", path=SBIN_PATH):
        _run(["update-rc.d", "-f", name, "remove"])
    for link in rc_links(name):  # update-rc.d missing or refused: remove the links ourselves
        os.unlink(link)
    for leftover in (path, pidfile(name)):
        if leftover.exists() or leftover.is_symlink():
            leftover.unlink()


def rc_links(name: str = NAME) -> List[str]:
    """Every S/K link of `name` in /etc/rc?.d."""
    found = []
    for directory in sorted(RC_ROOT.glob("rc?.d")):
        for entry in sorted(os.listdir(directory)):
            if len(entry) > 3 and entry[0] in "SK" and entry[1:3].isdigit() and entry[3:] == name:
                found.append(str(directory / entry))
    return found


def start_links(name: str = NAME) -> List[str]:
    """The S links of `name` in the boot runlevels (what makes it "enabled")."""
    boot_dirs = ["rc%s.d" % level for level in BOOT_RUNLEVELS]
    return [link for link in rc_links(name)
            if os.path.basename(os.path.dirname(link)) in boot_dirs
            and os.path.basename(link).startswith("S")]


def status(name: str = NAME) -> int:
    """The LSB exit code of `/etc/init.d/<name> status`."""
    return _run([str(script_path(name)), "status"]).returncode


def daemon_pid(name: str = NAME) -> Optional[int]:
    try:
        return int(pidfile(name).read_text().strip())
    except (OSError, ValueError):
        return None


def _kill_leftover(name: str) -> None:
    """SIGKILL the pid in our pidfile, but only when that process is our sleep."""
    pid = daemon_pid(name)
    if pid is None:
        return
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return
    if exe == daemon_program():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _run(argv: List[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=SBIN_PATH)
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, env=env,
                          stdin=subprocess.DEVNULL, check=False)


@dataclass(frozen=True)
class SysvService:
    """The installed test service, with what a test does "by hand" behind plumb's back."""

    name: str
    script: Path
    pidfile: Path

    def status(self) -> int:
        return status(self.name)

    def running(self) -> bool:
        return self.status() == 0

    def enabled(self) -> bool:
        return bool(start_links(self.name))

    def start(self) -> None:
        done = _run([str(self.script), "start"])
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        done = _run([str(self.script), "stop"])
        assert done.returncode == 0, done.stderr

    def pid(self) -> Optional[int]:
        return daemon_pid(self.name)


@pytest.fixture
def sysv_service():
    """A real, stopped, disabled SysV service `plumbtest-daemon`; removed afterwards."""
    require_sysv()
    remove_test_service(NAME)
    try:
        script = install_test_service(NAME)
        yield SysvService(NAME, script, pidfile(NAME))
    finally:
        remove_test_service(NAME)
