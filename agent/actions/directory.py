"""plumb:directory: a directory with the wanted mode, owner and group, or no directory.

Owns the built-in directory action: observe (lstat), then create (with parents, mode
0755 unless given), fix attributes, or remove. Removal deletes only an empty directory
unless `recursive: true`; a symlink or a non-directory at the path is refused.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from agent.actions import attrs
from agent.actions.base import (ActionFailed, Context, InputError, StepResult, bool_input,
                                require, result, string_input)

ACTION = "plumb:directory"
DEFAULT_MODE = 0o755
_INPUTS = ("path", "mode", "owner", "group", "ensure", "recursive")


@dataclass(frozen=True)
class Spec:
    path: str
    wanted: attrs.Wanted
    present: bool
    recursive: bool


def prepare(inputs: Mapping[str, Any], values: Any = None, params: Any = None) -> Spec:
    require(inputs, _INPUTS, required=("path",))
    path = string_input(inputs, "path") or ""
    if not os.path.isabs(path) or os.path.normpath(path) == "/":
        raise InputError("path: expected an absolute path other than /, got %r" % path)
    present = string_input(inputs, "ensure", "present", ("present", "absent")) == "present"
    recursive = bool_input(inputs, "recursive", False)
    if present and "recursive" in inputs:
        raise InputError("recursive: only meaningful with ensure: absent")
    return Spec(os.path.normpath(path), attrs.parse(inputs), present, recursive)


def _lstat_dir(path: str) -> Optional[os.stat_result]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        raise ActionFailed("%s exists and is not a directory%s"
                           % (path, " (a symbolic link)" if stat.S_ISLNK(st.st_mode) else ""))
    return st


def run(spec: Spec, ctx: Context) -> StepResult:
    st = _lstat_dir(spec.path)
    if not spec.present:
        return _absent(spec, st, ctx)
    wanted = spec.wanted
    changes: Dict[str, Dict[str, Any]] = {}
    if st is None:
        changes["ensure"] = {"before": "absent", "after": "present"}
        if wanted.mode is None:
            wanted = attrs.Wanted(DEFAULT_MODE, wanted.owner, wanted.group)
    changes.update(attrs.diff(wanted, st))
    details: Dict[str, Any] = {"path": spec.path, "changes": changes}
    if not changes:
        details["reason"] = "directory already has the wanted attributes"
        return result(False, "%s: no change" % spec.path, details, ctx.check)
    if not ctx.check:
        if st is None:
            os.makedirs(spec.path, mode=DEFAULT_MODE, exist_ok=True)
        attrs.apply_path(spec.path, wanted)
    verb = "would change" if ctx.check else "changed"
    return result(True, "%s: %s %s" % (spec.path, verb, ", ".join(changes)), details, ctx.check)


def _absent(spec: Spec, st: Optional[os.stat_result], ctx: Context) -> StepResult:
    details: Dict[str, Any] = {"path": spec.path}
    if st is None:
        details["reason"] = "directory is already absent"
        return result(False, "%s: already absent" % spec.path, details, ctx.check)
    entries = len(os.listdir(spec.path))
    if entries and not spec.recursive:
        raise ActionFailed("%s is not empty (%d entries); set recursive: true to remove it "
                           "with its contents" % (spec.path, entries))
    details.update(changes={"ensure": {"before": "present", "after": "absent"}}, entries=entries)
    if not ctx.check:
        shutil.rmtree(spec.path) if entries else os.rmdir(spec.path)
    verb = "would remove" if ctx.check else "removed"
    return result(True, "%s: %s" % (spec.path, verb), details, ctx.check)
