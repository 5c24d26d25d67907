"""plumb:file: a regular file with the wanted content, mode, owner and group, or no file.

Owns the built-in file action. It observes first (lstat, sha256 of the current content),
then acts only on what differs. Content changes are atomic: a temporary file in the same
directory is written, fsynced, given its owner and mode, then renamed over the target (and
the directory fsynced), so readers see the old file or the new one, never half of it.
Details name the changed attributes and the sha256 before/after, never the content itself
(it may be secret). Symlinks and non-regular files are refused rather than replaced.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from agent.actions import attrs
from agent.actions.base import (ActionFailed, Context, InputError, StepResult, bool_input,
                                require, result, string_input)

ACTION = "plumb:file"
DEFAULT_MODE = 0o644
_INPUTS = ("path", "content", "contentBase64", "mode", "owner", "group", "ensure", "makeDirs")


@dataclass(frozen=True)
class Spec:
    path: str
    content: Optional[bytes]
    wanted: attrs.Wanted
    present: bool
    make_dirs: bool


def prepare(inputs: Mapping[str, Any], values: Any = None, params: Any = None) -> Spec:
    require(inputs, _INPUTS, required=("path",))
    path = string_input(inputs, "path") or ""
    if not os.path.isabs(path):
        raise InputError("path: expected an absolute path, got %r" % path)
    present = string_input(inputs, "ensure", "present", ("present", "absent")) == "present"
    content = _content(inputs)
    managed = [k for k in ("content", "contentBase64", "mode", "owner", "group") if k in inputs]
    if not present and managed:
        raise InputError("ensure: absent takes no %s" % ", ".join(managed))
    return Spec(os.path.normpath(path), content, attrs.parse(inputs), present,
                bool_input(inputs, "makeDirs", False))


def _content(inputs: Mapping[str, Any]) -> Optional[bytes]:
    if "content" in inputs and "contentBase64" in inputs:
        raise InputError("give content or contentBase64, not both")
    if "content" in inputs:
        text = inputs["content"]
        if not isinstance(text, str):
            raise InputError("content: expected a string (text)")
        return text.encode("utf-8")
    if "contentBase64" in inputs:
        try:
            return base64.b64decode(str(inputs["contentBase64"]), validate=True)
        except (binascii.Error, ValueError) as err:
            raise InputError("contentBase64: not valid base64 (%s)" % err)
    return None


def run(spec: Spec, ctx: Context) -> StepResult:
    st = _lstat_regular(spec.path)
    if not spec.present:
        return _absent(spec, st, ctx)
    before = _sha256_file(spec.path) if st is not None else None
    changes = _changes(spec, st, before)
    details: Dict[str, Any] = {"path": spec.path, "changes": changes}
    if before is not None:
        details["sha256Before"] = before
    if spec.content is not None:
        details["sha256After"] = hashlib.sha256(spec.content).hexdigest()
    if not changes:
        details["reason"] = "file already has the wanted content and attributes"
        return result(False, "%s: no change" % spec.path, details, ctx.check)
    if not ctx.check:
        _apply(spec, st, changes)
    verb = "would change" if ctx.check else "changed"
    return result(True, "%s: %s %s" % (spec.path, verb, ", ".join(changes)), details, ctx.check)


def _lstat_regular(path: str) -> Optional[os.stat_result]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise ActionFailed("%s is a symbolic link; refusing to replace it" % path)
    if not stat.S_ISREG(st.st_mode):
        raise ActionFailed("%s exists and is not a regular file" % path)
    return st


def _absent(spec: Spec, st: Optional[os.stat_result], ctx: Context) -> StepResult:
    details: Dict[str, Any] = {"path": spec.path}
    if st is None:
        details["reason"] = "file is already absent"
        return result(False, "%s: already absent" % spec.path, details, ctx.check)
    details["sha256Before"] = _sha256_file(spec.path)
    details["changes"] = {"ensure": {"before": "present", "after": "absent"}}
    if not ctx.check:
        os.unlink(spec.path)
    verb = "would remove" if ctx.check else "removed"
    return result(True, "%s: %s" % (spec.path, verb), details, ctx.check)


def _changes(spec: Spec, st: Optional[os.stat_result],
             before: Optional[str]) -> Dict[str, Dict[str, Any]]:
    changes: Dict[str, Dict[str, Any]] = {}
    if st is None:
        changes["ensure"] = {"before": "absent", "after": "present"}
        if not os.path.isdir(os.path.dirname(spec.path)):
            if not spec.make_dirs:
                raise ActionFailed("parent directory of %s does not exist (set makeDirs: true)"
                                   % spec.path)
            changes["parents"] = {"before": "absent", "after": "present"}
    elif spec.content is not None:
        after = hashlib.sha256(spec.content).hexdigest()
        if before != after:
            changes["content"] = {"before": before, "after": after}
    wanted = spec.wanted
    if st is None and wanted.mode is None:
        wanted = attrs.Wanted(DEFAULT_MODE, wanted.owner, wanted.group)
    changes.update(attrs.diff(wanted, st))
    return changes


def _apply(spec: Spec, st: Optional[os.stat_result], changes: Mapping[str, Any]) -> None:
    if "parents" in changes:
        os.makedirs(os.path.dirname(spec.path), mode=0o755, exist_ok=True)
    if st is None or "content" in changes:
        _atomic_write(spec, st)
    else:
        attrs.apply_path(spec.path, spec.wanted)


def _atomic_write(spec: Spec, st: Optional[os.stat_result]) -> None:
    directory = os.path.dirname(spec.path)
    content = spec.content if spec.content is not None else b""
    fd, tmp = tempfile.mkstemp(prefix=".plumb-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
            _fix_attrs(handle.fileno(), spec.wanted, st)
        os.replace(tmp, spec.path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fix_attrs(fd: int, wanted: attrs.Wanted, st: Optional[os.stat_result]) -> None:
    """New content keeps the old file's attributes unless others are wanted."""
    uid, gid = attrs.ids(wanted)
    if st is not None:
        uid = st.st_uid if uid == -1 else uid
        gid = st.st_gid if gid == -1 else gid
    if (uid, gid) != (-1, -1):
        os.fchown(fd, uid, gid)
    mode = wanted.mode
    if mode is None:
        mode = stat.S_IMODE(st.st_mode) if st is not None else DEFAULT_MODE
    os.fchmod(fd, mode)


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
