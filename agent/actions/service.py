"""plumb:service: a service running/stopped/restarted/reloaded and enabled or disabled.

Owns the built-in service action. With systemd as the init system it drives the unit
through systemctl: observation is one `systemctl show` call parsed by a pure function;
`plan()` is pure too. When `systemctl is-system-running` says "offline" (containers,
chroots) or systemctl is missing, the service is managed through its SysV init script
/etc/init.d/<name> (`agent.actions.sysv`); without one either, the step fails with a
message naming both instead of guessing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from agent.actions import sysv
from agent.actions.base import (ActionFailed, Context, InputError, StepResult, bool_input,
                                checked, require, result, run_argv, string_input)

ACTION = "plumb:service"
_INPUTS = ("name", "ensure", "enabled")
_UNIT = re.compile(r"^[A-Za-z0-9@:_.\\][A-Za-z0-9@:_.\\-]*$")
_ACTIVE = ("active", "reloading", "activating")
_ENABLED = ("enabled", "enabled-runtime", "alias", "indirect", "generated", "static")


@dataclass(frozen=True)
class Spec:
    name: str
    ensure: Optional[str]
    enabled: Optional[bool]


def prepare(inputs: Mapping[str, Any], values: Any = None, params: Any = None) -> Spec:
    require(inputs, _INPUTS, required=("name",))
    name = string_input(inputs, "name") or ""
    if not _UNIT.match(name):
        raise InputError("name: %r is not a valid systemd unit name" % name)
    ensure = string_input(inputs, "ensure", None,
                          ("running", "stopped", "restarted", "reloaded"))
    enabled = bool_input(inputs, "enabled", False) if "enabled" in inputs else None
    if ensure is None and enabled is None:
        raise InputError("give ensure (running|stopped|restarted|reloaded) and/or enabled")
    return Spec(name, ensure, enabled)


def parse_show(output: str) -> Dict[str, str]:
    """`systemctl show --property=...` prints Key=value lines."""
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def plan(spec: Spec, state: Mapping[str, str]) -> Tuple[List[str], List[str]]:
    """(systemctl verbs to run, reasons) for the observed unit state."""
    verbs: List[str] = []
    reasons: List[str] = []
    active = state.get("ActiveState", "")
    if spec.ensure is not None:
        verb, reason = _plan_active(spec.ensure, active)
        verbs += [verb] if verb else []
        reasons.append(reason)
    if spec.enabled is not None:
        verb, reason = _plan_enabled(spec.enabled, state.get("UnitFileState", ""))
        verbs += [verb] if verb else []
        reasons.append(reason)
    return verbs, reasons


def _plan_active(ensure: str, active: str) -> Tuple[Optional[str], str]:
    running = active in _ACTIVE
    if ensure == "running":
        return (None, "already running") if running else ("start", "not running (%s)" % active)
    if ensure == "stopped":
        return ("stop", "running (%s)" % active) if running else (None, "already stopped")
    if ensure == "restarted":
        return "restart", "restart requested"
    return ("reload", "reload requested") if running else ("start", "not running; starting")


def _plan_enabled(enabled: bool, file_state: str) -> Tuple[Optional[str], str]:
    if enabled and file_state == "masked":
        raise ActionFailed("unit is masked; unmask it before enabling")
    if enabled:
        if file_state == "static":
            return None, "unit is static (no [Install] section); nothing to enable"
        if file_state in _ENABLED:
            return None, "already enabled"
        return "enable", "not enabled (%s)" % (file_state or "unknown")
    if file_state in ("enabled", "enabled-runtime"):
        return "disable", "enabled, wanted disabled"
    return None, "already disabled (%s)" % (file_state or "unknown")


def systemd_missing() -> Optional[str]:
    """Why systemd cannot manage services here, or None when it runs."""
    try:
        done = run_argv(["systemctl", "is-system-running"])
    except ActionFailed:
        return "systemd is not available on this node (systemctl not found)"
    state = done.stdout.strip()
    if state in ("", "offline", "unknown"):
        return ("systemd is not running on this node (systemctl is-system-running: %s)"
                % (state or done.stderr.strip() or "no answer"))
    return None


def observe(name: str) -> Dict[str, str]:
    done = checked(["systemctl", "show", "--property=LoadState,ActiveState,UnitFileState", name])
    state = parse_show(done.stdout)
    if state.get("LoadState") == "not-found":
        raise ActionFailed("unit %s not found" % name)
    return state


def run(spec: Spec, ctx: Context) -> StepResult:
    missing = systemd_missing()
    if missing is not None:
        script = sysv.find_script(spec.name)
        if script is None:
            raise ActionFailed(
                "%s and there is no SysV init script %s; plumb:service manages services "
                "through systemd or /etc/init.d scripts"
                % (missing, os.path.join(sysv.lsb.INIT_D, sysv.script_name(spec.name))))
        return sysv.run(spec, ctx, script)
    state = observe(spec.name)
    verbs, reasons = plan(spec, state)
    argvs = [["systemctl", verb, spec.name] for verb in verbs]
    details: Dict[str, Any] = {"name": spec.name, "activeState": state.get("ActiveState"),
                               "unitFileState": state.get("UnitFileState"),
                               "reason": "; ".join(reasons), "commands": argvs}
    if not argvs:
        return result(False, "%s: no change (%s)" % (spec.name, details["reason"]), details,
                      ctx.check)
    if not ctx.check:
        for argv in argvs:
            checked(argv)
    verb = "would " if ctx.check else ""
    return result(True, "%s: %s%s" % (spec.name, verb, ", ".join(verbs)), details, ctx.check)
