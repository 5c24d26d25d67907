"""Ownership and permission attributes of a path: parse wanted, observe, diff, apply.

Owns the `mode`/`owner`/`group` inputs shared by plumb:file and plumb:directory: parsing
("0644", names or numeric ids), observing them with lstat, computing which differ
(`diff()` returns attribute names with before/after) and applying them to an open file
descriptor or a path.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from agent.actions.base import ActionFailed, InputError

_MODE = re.compile(r"^0?[0-7]{3,4}$")


@dataclass(frozen=True)
class Wanted:
    mode: Optional[int]
    owner: Optional[str]
    group: Optional[str]


def parse(inputs: Mapping[str, Any]) -> Wanted:
    mode = inputs.get("mode")
    if isinstance(mode, int) and not isinstance(mode, bool):
        raise InputError("mode: give it as a string such as \"0644\" (YAML reads 0644 as "
                         "the number 420)")
    if mode is not None and (not isinstance(mode, str) or not _MODE.match(mode)):
        raise InputError("mode: expected an octal string such as \"0644\", got %r" % (mode,))
    for key in ("owner", "group"):
        value = inputs.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise InputError("%s: expected a user/group name or numeric id" % key)
    return Wanted(int(mode, 8) if mode else None, inputs.get("owner"), inputs.get("group"))


def uid_of(owner: str) -> int:
    if owner.isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise ActionFailed("owner %r: no such user on this node" % owner)


def gid_of(group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ActionFailed("group %r: no such group on this node" % group)


def observe(st: os.stat_result) -> Dict[str, Any]:
    return {"mode": "%04o" % stat.S_IMODE(st.st_mode), "owner": _user(st.st_uid),
            "group": _group(st.st_gid)}


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def diff(wanted: Wanted, st: Optional[os.stat_result]) -> Dict[str, Dict[str, Any]]:
    """{attribute: {"before": ..., "after": ...}} for each wanted attribute that differs."""
    changes: Dict[str, Dict[str, Any]] = {}
    before = observe(st) if st is not None else {"mode": None, "owner": None, "group": None}
    if wanted.mode is not None and (st is None or stat.S_IMODE(st.st_mode) != wanted.mode):
        changes["mode"] = {"before": before["mode"], "after": "%04o" % wanted.mode}
    if wanted.owner is not None and (st is None or st.st_uid != uid_of(wanted.owner)):
        changes["owner"] = {"before": before["owner"], "after": wanted.owner}
    if wanted.group is not None and (st is None or st.st_gid != gid_of(wanted.group)):
        changes["group"] = {"before": before["group"], "after": wanted.group}
    return changes


def ids(wanted: Wanted) -> "tuple[int, int]":
    """(uid, gid) for chown: -1 leaves an attribute as it is."""
    uid = uid_of(wanted.owner) if wanted.owner is not None else -1
    gid = gid_of(wanted.group) if wanted.group is not None else -1
    return uid, gid


def apply_path(path: str, wanted: Wanted) -> None:
    uid, gid = ids(wanted)
    if (uid, gid) != (-1, -1):
        os.chown(path, uid, gid, follow_symlinks=False)
    if wanted.mode is not None:
        os.chmod(path, wanted.mode)
