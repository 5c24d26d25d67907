"""AWS:Service on nodes where systemd is not running: the SysV init scripts in /etc/init.d.

Owns what plumb knows about SysV init, for this collector and for `agent.actions.sysv`:
which files in /etc/init.d are services, how a start link in /etc/rc?.d reads, what an
LSB `status` exit code means. A service is every regular executable file in `INIT_D`
except the init system's own (README, skeleton, rc, rcS, .depend.*, dotfiles).

StartType is "enabled" when a `S??name` link exists in one of the boot runlevels
update-rc.d toggles (rcS.d, rc2.d ... rc5.d), else "disabled". Status comes from running
`<script> status` (no shell, the collector's command timeout, a few scripts at a time,
each in its own process group, killed whole on timeout):
LSB exit code 0 is "running", 1-3 "stopped", anything else "unknown" (4, a timeout, a
script that would not start). A script whose text never mentions "status" has no status
action and is not run at all: its Status is "unknown" (running it would print its usage,
or worse, do its default action). Every entry says `"Manager": "sysv"`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, TypeVar

from .base import CollectorError, Options, command_env, read_text

# Module constants so that tests can point them at a temporary tree.
INIT_D = "/etc/init.d"
RC_ROOT = "/etc"  # holds rcS.d, rc2.d ... rc5.d
BOOT_RUNLEVELS = ("S", "2", "3", "4", "5")
STATUS_WORKERS = 4
MANAGER = "sysv"

NOT_SERVICES = frozenset(("README", "skeleton", "rc", "rcS"))
_START_LINK = re.compile(r"^S[0-9]{2}(.+)$")
_LSB_FIELD = re.compile(r"^#\s*([A-Za-z-]+):\s*(.*?)\s*$")

# LSB status exit codes (LSB 3.1, "Init Script Actions").
LSB_STATUS = {0: "running", 1: "stopped", 2: "stopped", 3: "stopped"}
LSB_MEANING = {0: "running", 1: "dead, pid file exists", 2: "dead, lock file exists",
               3: "not running", 4: "status unknown"}

T = TypeVar("T")
R = TypeVar("R")


def is_service_name(name: str) -> bool:
    """Whether a file name in /etc/init.d can be a service (not the init system's own)."""
    return (bool(name) and not name.startswith(".") and name not in NOT_SERVICES
            and not name.startswith(".depend."))


def script_path(name: str, init_d: Optional[str] = None) -> Optional[str]:
    """/etc/init.d/<name> when it is a service script (regular, executable), else None."""
    if not is_service_name(name) or "/" in name:
        return None
    path = os.path.join(init_d or INIT_D, name)
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def list_scripts(init_d: str) -> List[str]:
    """Names of the service scripts in `init_d`, sorted."""
    try:
        names = os.listdir(init_d)
    except OSError as error:
        raise CollectorError(f"cannot list {init_d}: {error.strerror or error}") from None
    return sorted(name for name in names if script_path(name, init_d))


def status_from_code(code: Optional[int]) -> str:
    """LSB `status` exit code -> Status; None (not run, failed, timed out) is "unknown"."""
    return LSB_STATUS.get(code, "unknown") if code is not None else "unknown"


def describe_code(code: Optional[int]) -> str:
    if code is None:
        return "no answer"
    meaning = LSB_MEANING.get(code)
    return "exit %d: %s" % (code, meaning) if meaning else "exit %d" % code


def started_names(entries: Iterable[str]) -> Set[str]:
    """Service names that have a start link (`S20ssh` -> ssh) among rc?.d entries."""
    names = set()
    for entry in entries:
        match = _START_LINK.match(entry)
        if match:
            names.add(match.group(1))
    return names


def rc_entries(rc_root: Optional[str] = None,
               runlevels: Sequence[str] = BOOT_RUNLEVELS) -> List[str]:
    """Every entry of the boot runlevels' rc?.d directories (missing ones hold nothing)."""
    entries: List[str] = []
    for level in runlevels:
        try:
            entries += os.listdir(os.path.join(rc_root or RC_ROOT, "rc%s.d" % level))
        except OSError:
            continue
    return entries


def is_enabled(name: str, rc_root: Optional[str] = None) -> bool:
    return name in started_names(rc_entries(rc_root))


def has_status_action(script_text: str) -> bool:
    return "status" in script_text


def parse_lsb_header(script_text: str) -> Dict[str, str]:
    """The fields between `### BEGIN INIT INFO` and `### END INIT INFO` (first line of each)."""
    fields: Dict[str, str] = {}
    inside = False
    for line in script_text.splitlines():
        if line.startswith("### BEGIN INIT INFO"):
            inside = True
        elif line.startswith("### END INIT INFO"):
            break
        elif inside:
            match = _LSB_FIELD.match(line)
            if match and match.group(1) not in fields:
                fields[match.group(1)] = match.group(2)
    return fields


def entry(name: str, code: Optional[int], enabled: bool, description: str = "") -> dict:
    """One AWS:Service entry for an init script."""
    return {"Name": name, "Status": status_from_code(code),
            "StartType": "enabled" if enabled else "disabled",
            "Description": description, "Manager": MANAGER}


def status_code(path: str, timeout: float) -> Optional[int]:
    """`<script> status` exit code, or None when it timed out or could not start.

    The script runs in its own session, its output discarded (a pipe left open by one of
    its children can never hold us); on timeout its whole process group is killed, so a
    hung status leaves nothing behind.
    """
    try:
        proc = subprocess.Popen([path, "status"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=command_env(), start_new_session=True)
    except OSError:
        return None
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        return None


def collect(options: Options) -> List[dict]:
    init_d, rc_root = INIT_D, RC_ROOT
    names = list_scripts(init_d)
    enabled = started_names(rc_entries(rc_root))

    def one(name: str) -> dict:
        try:
            text = read_text(os.path.join(init_d, name))
        except CollectorError:
            return entry(name, None, name in enabled)
        code = None
        if has_status_action(text):
            code = status_code(os.path.join(init_d, name), options.command_timeout)
        return entry(name, code, name in enabled,
                     parse_lsb_header(text).get("Short-Description", ""))

    return bounded_map(one, names, STATUS_WORKERS, lambda name: entry(name, None, name in enabled))


def bounded_map(function: Callable[[T], R], items: Sequence[T], workers: int,
                fallback: Callable[[T], R]) -> List[R]:
    """[function(item) ...] in order, at most `workers` at a time, on daemon threads (a stuck
    one never holds the agent's exit); an item whose call raises gets fallback(item)."""
    results: List[Optional[R]] = [None] * len(items)
    pending = iter(range(len(items)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index] = function(items[index])
            except Exception:  # one script's trouble is that service's "unknown"
                results[index] = fallback(items[index])

    threads = [threading.Thread(target=work, daemon=True)
               for _ in range(max(1, min(workers, len(items))))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results  # type: ignore[return-value]

