"""plumb:user: a local user account present with the wanted uid, groups, shell and home, or absent.

Owns the built-in user action: observe through the passwd/group databases (pwd, grp),
plan one useradd/usermod/userdel argv with a pure `plan()`, and run it (argv lists, no
shell). `groups` is the exact supplementary group list unless `appendGroups: true`, which
only adds missing ones. `system` and `createHome` matter only when the user is created.
"""

from __future__ import annotations

import grp
import pwd
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from agent.actions.base import (ActionFailed, Context, InputError, StepResult, bool_input,
                                checked, require, result, string_input)

ACTION = "plumb:user"
_INPUTS = ("name", "ensure", "uid", "groups", "appendGroups", "shell", "home", "system",
           "createHome", "removeHome")
_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,30}\$?$")
_GROUP = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\$?$")


@dataclass(frozen=True)
class Spec:
    name: str
    present: bool
    uid: Optional[int]
    groups: Optional[Tuple[str, ...]]
    append_groups: bool
    shell: Optional[str]
    home: Optional[str]
    system: bool
    create_home: bool
    remove_home: bool


@dataclass(frozen=True)
class Observed:
    uid: int
    groups: Tuple[str, ...]
    shell: str
    home: str


def prepare(inputs: Mapping[str, Any], values: Any = None, params: Any = None) -> Spec:
    require(inputs, _INPUTS, required=("name",))
    name = string_input(inputs, "name") or ""
    if not _NAME.match(name):
        raise InputError("name: %r is not a valid user name" % name)
    present = string_input(inputs, "ensure", "present", ("present", "absent")) == "present"
    system = bool_input(inputs, "system", False)
    for key in ("shell", "home"):
        value = string_input(inputs, key)
        if value is not None and not value.startswith("/"):
            raise InputError("%s: expected an absolute path, got %r" % (key, value))
    return Spec(name, present, _uid(inputs.get("uid")), _groups(inputs.get("groups")),
                bool_input(inputs, "appendGroups", False), inputs.get("shell"),
                inputs.get("home"), system, bool_input(inputs, "createHome", not system),
                bool_input(inputs, "removeHome", False))


def _uid(raw: Any) -> Optional[int]:
    if raw is None:
        return None
    if isinstance(raw, bool) or not str(raw).isdigit():
        raise InputError("uid: expected a non-negative integer, got %r" % (raw,))
    return int(raw)


def _groups(raw: Any) -> Optional[Tuple[str, ...]]:
    if raw is None:
        return None
    items = [g.strip() for g in raw.split(",")] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(g, str) for g in items):
        raise InputError("groups: expected a list of group names")
    items = [g for g in items if g]
    bad = [g for g in items if not _GROUP.match(g)]
    if bad:
        raise InputError("groups: invalid group name(s) %s" % ", ".join(bad))
    return tuple(items)


def observe(name: str) -> Optional[Observed]:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    groups = tuple(sorted(g.gr_name for g in grp.getgrall() if name in g.gr_mem))
    return Observed(entry.pw_uid, groups, entry.pw_shell, entry.pw_dir)


def plan(spec: Spec, seen: Optional[Observed]) -> Tuple[Optional[List[str]], Dict[str, Any], str]:
    """(argv or None, changed attributes with before/after, reason)."""
    if not spec.present:
        if seen is None:
            return None, {}, "user is already absent"
        argv = ["userdel"] + (["-r"] if spec.remove_home else []) + [spec.name]
        return argv, {"ensure": {"before": "present", "after": "absent"}}, "user exists"
    if seen is None:
        return _useradd(spec), {"ensure": {"before": "absent", "after": "present"}}, \
            "user does not exist"
    flags, changes = _usermod_flags(spec, seen)
    if not flags:
        return None, {}, "user already has the wanted attributes"
    return ["usermod"] + flags + [spec.name], changes, "attributes differ"


def _useradd(spec: Spec) -> List[str]:
    argv = ["useradd"] + (["-r"] if spec.system else [])
    argv += ["-u", str(spec.uid)] if spec.uid is not None else []
    argv += ["-G", ",".join(spec.groups)] if spec.groups else []
    argv += ["-s", spec.shell] if spec.shell else []
    argv += ["-d", spec.home] if spec.home else []
    return argv + ["-m" if spec.create_home else "-M", spec.name]


def _usermod_flags(spec: Spec, seen: Observed) -> Tuple[List[str], Dict[str, Any]]:
    flags: List[str] = []
    changes: Dict[str, Any] = {}
    for key, flag, want, have in (("uid", "-u", spec.uid, seen.uid),
                                  ("shell", "-s", spec.shell, seen.shell),
                                  ("home", "-d", spec.home, seen.home)):
        if want is not None and want != have:
            flags += [flag, str(want)]
            changes[key] = {"before": have, "after": want}
    if spec.groups is not None:
        wanted = set(spec.groups) | (set(seen.groups) if spec.append_groups else set())
        if wanted != set(seen.groups):
            flags += (["-a"] if spec.append_groups else []) + ["-G", ",".join(
                sorted(set(spec.groups) - set(seen.groups)) if spec.append_groups
                else sorted(spec.groups))]
            changes["groups"] = {"before": list(seen.groups), "after": sorted(wanted)}
    return flags, changes


def _check_groups(groups: Optional[Tuple[str, ...]]) -> None:
    for name in groups or ():
        try:
            grp.getgrnam(name)
        except KeyError:
            raise ActionFailed("group %r does not exist on this node" % name)


def run(spec: Spec, ctx: Context) -> StepResult:
    if spec.present:
        _check_groups(spec.groups)
    argv, changes, reason = plan(spec, observe(spec.name))
    details: Dict[str, Any] = {"name": spec.name, "changes": changes, "reason": reason,
                               "command": argv}
    if argv is None:
        return result(False, "%s: no change (%s)" % (spec.name, reason), details, ctx.check)
    if not ctx.check:
        checked(argv)
    verb = "would run" if ctx.check else "ran"
    return result(True, "%s: %s %s" % (spec.name, verb, argv[0]), details, ctx.check)
