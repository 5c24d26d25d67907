"""AWS:Service: systemd services, from `systemctl list-unit-files` (how each one starts)
and `systemctl list-units` (whether it runs).

Nodes where systemd is not PID 1 (most containers) are asked through their SysV init
scripts instead when they have /etc/init.d (`agent.collectors.sysv`); with neither, the
type is `unknown`, never an empty list that would read as "no services". Every entry says
which manager answered: `"Manager": "systemd"` or `"sysv"`.
Template units (`getty@.service`) are not services until instantiated, and aliases
(`dbus-org.freedesktop.login1.service`) are other names of a service: both are left out
unless loaded. An instance (`getty@tty1`) takes its start type from its template.
"""

from __future__ import annotations

import os
from typing import Dict, List

from . import sysv
from .base import CollectorError, Options, in_background, run, which

TYPE_NAME = "AWS:Service"

SYSTEMD_RUNTIME_DIR = "/run/systemd/system"
NOT_RUNNING = "systemd is not running on this node"

UNIT_FILES = ["systemctl", "list-unit-files", "--type=service", "--no-legend", "--no-pager"]
UNITS = ["systemctl", "list-units", "--type=service", "--all", "--plain", "--no-legend", "--no-pager"]

# (ActiveState, SubState) -> Status; ActiveState alone when SubState adds nothing.
STATUS = {
    ("active", "running"): "running",
    ("active", "exited"): "exited",
    "active": "running",
    "inactive": "stopped",
    "failed": "failed",
    "activating": "starting",
    "deactivating": "stopping",
    "reloading": "reloading",
    "maintenance": "maintenance",
}


def collect(options: Options) -> List[dict]:
    if not os.path.isdir(SYSTEMD_RUNTIME_DIR):
        if os.path.isdir(sysv.INIT_D):
            return sysv.collect(options)
        raise CollectorError("%s and it has no %s" % (NOT_RUNNING, sysv.INIT_D))
    if not which("systemctl"):
        raise CollectorError("systemctl not found")
    files = in_background(lambda: run(UNIT_FILES, options.command_timeout)[1])
    units = run(UNITS, options.command_timeout)[1]
    return [dict(entry, Manager="systemd") for entry in parse(files(), units)]


def parse(unit_files: str, units: str) -> List[dict]:
    """Entries merged from `list-unit-files` and `list-units` output (formats above)."""
    start_types = parse_unit_files(unit_files)
    entries = {}
    for row in parse_units(units):
        name = row["Name"]
        row["StartType"] = start_types.get(name) or start_types.get(_template(name), "")
        entries[name] = row
    for name, start_type in start_types.items():
        if name not in entries and not name.endswith("@") and start_type != "alias":
            entries[name] = _stopped(name, start_type)
    return [entries[name] for name in sorted(entries)]


def parse_unit_files(text: str) -> Dict[str, str]:
    """Unit name (without .service) -> unit-file state (enabled, disabled, static, masked...)."""
    states = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].endswith(".service"):
            states[_strip(fields[0])] = fields[1]
    return states


def parse_units(text: str) -> List[dict]:
    """One row per loaded unit: UNIT LOAD ACTIVE SUB DESCRIPTION."""
    rows = []
    for line in text.splitlines():
        fields = line.split(None, 4)
        if len(fields) < 4 or not fields[0].endswith(".service"):
            continue
        unit, load, active, sub = fields[:4]
        rows.append({
            "Name": _strip(unit),
            "Status": STATUS.get((active, sub)) or STATUS.get(active, active),
            "Description": fields[4].strip() if len(fields) > 4 else "",
            "LoadState": load,
            "ActiveState": active,
            "SubState": sub,
        })
    return rows


def _stopped(name: str, start_type: str) -> dict:
    return {
        "Name": name, "Status": "stopped", "Description": "", "LoadState": "not-loaded",
        "ActiveState": "inactive", "SubState": "dead", "StartType": start_type,
    }


def _strip(unit: str) -> str:
    return unit[: -len(".service")]


def _template(name: str) -> str:
    return name.split("@", 1)[0] + "@" if "@" in name else ""
