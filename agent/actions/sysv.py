"""plumb:service through a SysV init script, on nodes where systemd is not running.

`agent.actions.service` hands a step here when systemd is not running and
/etc/init.d/<name> is a service script. Observation: `<script> status` (LSB exit codes,
read by `agent.collectors.sysv`) and the S links in rcS.d, rc2.d ... rc5.d. Changes:
`service <name> start|stop|restart|reload` (the script itself when `service` is missing),
`update-rc.d <name> defaults` + `update-rc.d <name> enable`, `update-rc.d <name> disable`.
A reload the script does not implement (LSB exit 3, or a usage error) becomes a restart,
and the reason says so. After a start/stop/restart/reload the status is read again (for up
to SETTLE_SECONDS) and the step fails when the service did not get there; after
enable/disable the links are read again. `plan()` and `reload_unsupported()` are pure.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from agent.actions.base import ActionFailed, Completed, Context, StepResult, result
from agent.collectors import sysv as lsb
from agent.collectors.base import which

STATUS_TIMEOUT = 60.0
COMMAND_TIMEOUT = 600.0
SETTLE_SECONDS = 10.0
_USAGE = re.compile(r"\busage\b", re.IGNORECASE)
_WANTED = {"start": "running", "restart": "running", "reload": "running", "stop": "stopped"}
_HEADER_HINT = ("update-rc.d reads the script's LSB header (### BEGIN INIT INFO ... "
                "Default-Start/Default-Stop ... ### END INIT INFO)")


@dataclass(frozen=True)
class State:
    code: Optional[int]  # exit code of `<script> status`; None: no answer
    enabled: bool

    @property
    def status(self) -> str:
        return lsb.status_from_code(self.code)


def script_name(name: str) -> str:
    """The init script a service name means: `nginx.service` is /etc/init.d/nginx."""
    return name[: -len(".service")] if name.endswith(".service") else name


def find_script(name: str) -> Optional[str]:
    return lsb.script_path(script_name(name))


def observe(name: str, path: str) -> State:
    return State(lsb.status_code(path, STATUS_TIMEOUT), lsb.is_enabled(name))


def plan(ensure: Optional[str], enabled: Optional[bool], state: State,
         script: str = "the init script") -> Tuple[List[str], List[str]]:
    """(verbs: start/stop/restart/reload/enable/disable, reasons) for the observed state."""
    verbs: List[str] = []
    reasons: List[str] = []
    if ensure is not None:
        verb, reason = _plan_active(ensure, state, script)
        verbs += [verb] if verb else []
        reasons.append(reason)
    if enabled is not None:
        verb, reason = _plan_enabled(enabled, state.enabled)
        verbs += [verb] if verb else []
        reasons.append(reason)
    return verbs, reasons


def _plan_active(ensure: str, state: State, script: str) -> Tuple[Optional[str], str]:
    if ensure == "restarted":
        return "restart", "restart requested"
    status = state.status
    if status == "unknown":
        raise ActionFailed("cannot tell whether the service runs: `%s status` gave %s (LSB "
                           "status codes: 0 running, 1-3 stopped); ensure=%s needs to know"
                           % (script, lsb.describe_code(state.code), ensure))
    running = status == "running"
    if ensure == "running":
        return (None, "already running") if running else (
            "start", "not running (%s)" % lsb.describe_code(state.code))
    if ensure == "stopped":
        return ("stop", "running") if running else (None, "already stopped")
    return ("reload", "reload requested") if running else ("start", "not running; starting")


def _plan_enabled(enabled: bool, is_enabled: bool) -> Tuple[Optional[str], str]:
    if enabled:
        return (None, "already enabled") if is_enabled else (
            "enable", "not enabled (no start link in rc?.d)")
    return ("disable", "enabled, wanted disabled") if is_enabled else (
        None, "already disabled")


def reload_unsupported(code: int, output: str) -> bool:
    """Whether a failed reload means "this script has no reload" (LSB 3: unimplemented
    feature, 2: invalid argument, or a usage message) rather than a failed reload."""
    return code in (2, 3) or (code != 0 and bool(_USAGE.search(output)))


def commands(name: str, path: str, verb: str) -> List[List[str]]:
    """The argv lists that carry out one verb."""
    update_rc_d = _program("update-rc.d")
    if verb == "enable":
        return [[update_rc_d, name, "defaults"], [update_rc_d, name, "enable"]]
    if verb == "disable":
        return [[update_rc_d, name, "disable"]]
    service = which("service")
    return [[service, name, verb] if service else [path, verb]]


def _program(name: str) -> str:
    """The full path (sbin directories too, which a non-login PATH may lack) or the name."""
    return which(name) or name


def run(spec: Any, ctx: Context, path: str) -> StepResult:
    """Carry out `spec` (an agent.actions.service.Spec) with the init script at `path`."""
    name = script_name(spec.name)
    state = observe(name, path)
    verbs, reasons = plan(spec.ensure, spec.enabled, state, path)
    argvs = [argv for verb in verbs for argv in commands(name, path, verb)]
    details: Dict[str, Any] = {"name": name, "manager": lsb.MANAGER, "script": path,
                               "status": state.status, "statusCode": state.code,
                               "enabled": state.enabled, "commands": argvs}
    if not verbs:
        details["reason"] = "; ".join(reasons)
        return result(False, "%s: no change (%s)" % (name, details["reason"]), details,
                      ctx.check)
    done_verbs = list(verbs)
    if not ctx.check:
        details["commands"] = []
        verify = state.status != "unknown"  # only "restarted" proceeds without a status
        if not verify:
            reasons.append("`%s status` gave %s, so the result is not verified"
                           % (path, lsb.describe_code(state.code)))
        for index, verb in enumerate(verbs):
            note = _apply(name, path, verb, details["commands"], ctx, verify)
            if note:
                reasons.append(note)
                done_verbs[index] = "restart (no reload)"
    details["reason"] = "; ".join(reasons)
    would = "would " if ctx.check else ""
    return result(True, "%s: %s%s" % (name, would, ", ".join(done_verbs)), details, ctx.check)


def _apply(name: str, path: str, verb: str, ran: List[List[str]], ctx: Context,
           verify: bool) -> str:
    """Run one verb and check its effect; returns a note when it did something else."""
    note = ""
    if verb in ("enable", "disable"):
        for argv in commands(name, path, verb):
            ran.append(argv)
            _checked(argv, _HEADER_HINT)
        if lsb.is_enabled(name) != (verb == "enable"):
            raise ActionFailed("%s: `%s` succeeded but %s start links in rcS.d/rc2.d-rc5.d"
                               % (name, " ".join(ran[-1]),
                                  "there are no" if verb == "enable" else "there are still"))
        return note
    (argv,) = commands(name, path, verb)
    ran.append(argv)
    if verb == "reload":
        done = _run(argv)
        if done.returncode != 0:
            if not reload_unsupported(done.returncode, done.stdout + done.stderr):
                raise ActionFailed(_failure(done))
            note = "%s has no reload (exit %d); restarted instead" % (path, done.returncode)
            (argv,) = commands(name, path, "restart")
            ran.append(argv)
            _checked(argv)
    else:
        _checked(argv)
    if verify:
        _settle(name, path, _WANTED[verb], " ".join(argv), ctx)
    return note


def _settle(name: str, path: str, wanted: str, command: str, ctx: Context) -> None:
    """Wait (up to SETTLE_SECONDS) for `status` to say `wanted`; fail when it never does."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        state = observe(name, path)
        if state.status == wanted:
            return
        if time.monotonic() >= deadline or ctx.cancel.is_set():
            break
        ctx.cancel.wait(0.2)
    raise ActionFailed("%s: `%s` succeeded but the service is not %s: `%s status` gave %s"
                       % (name, command, wanted, path, lsb.describe_code(state.code)))


def _run(argv: List[str]) -> Completed:
    """run_argv(), but with the output in files: a daemon that keeps the script's stdout
    open (`daemon &` in an init script) must not hold the step until the timeout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  timeout=COMMAND_TIMEOUT, check=False)
        except FileNotFoundError:
            raise ActionFailed("command not found: %s" % argv[0])
        except OSError as error:
            raise ActionFailed("%s could not start: %s" % (argv[0], error.strerror or error))
        except subprocess.TimeoutExpired:
            raise ActionFailed("command timed out after %ss: %s"
                               % (COMMAND_TIMEOUT, " ".join(argv)))
        out.seek(0)
        err.seek(0)
        return Completed(list(argv), done.returncode, _text(out.read()), _text(err.read()))


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _checked(argv: List[str], hint: str = "") -> Completed:
    done = _run(argv)
    if done.returncode != 0:
        raise ActionFailed(_failure(done) + (" (%s)" % hint if hint else ""))
    return done


def _failure(done: Completed) -> str:
    message = (done.stderr.strip() or done.stdout.strip())[-2000:]
    return "%s exited %d: %s" % (" ".join(done.argv), done.returncode, message or "(no message)")
