"""plumb:sysctl: a kernel parameter at the wanted value now, and optionally after reboot.

Owns the built-in sysctl action. The runtime value is read from and written to
`<procRoot>/sys/<key as path>` (procRoot defaults to /proc; tests point it elsewhere).
With `persist: true` the `key = value` line is kept in `file` (default
/etc/sysctl.d/60-plumb.conf), replacing an earlier line for the same key, written
atomically. Values compare with whitespace normalised, as /proc prints tabs.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from agent.actions.base import (ActionFailed, Context, InputError, StepResult, bool_input,
                                require, result, string_input)

ACTION = "plumb:sysctl"
DEFAULT_FILE = "/etc/sysctl.d/60-plumb.conf"
_INPUTS = ("key", "value", "persist", "file", "procRoot")
_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@/-]*$")


@dataclass(frozen=True)
class Spec:
    key: str
    value: str
    persist: bool
    file: str
    proc_root: str


def prepare(inputs: Mapping[str, Any], values: Any = None, params: Any = None) -> Spec:
    require(inputs, _INPUTS, required=("key", "value"))
    key = string_input(inputs, "key") or ""
    parts = key_path(key).split("/")
    if not _KEY.match(key) or ".." in parts or "" in parts:
        raise InputError("key: %r is not a valid sysctl key" % key)
    value = inputs["value"]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError("value: expected a string or an integer")
    path = string_input(inputs, "file", DEFAULT_FILE) or DEFAULT_FILE
    proc_root = string_input(inputs, "procRoot", "/proc") or "/proc"
    for name, given in (("file", path), ("procRoot", proc_root)):
        if not os.path.isabs(given):
            raise InputError("%s: expected an absolute path" % name)
    return Spec(key, normalize(str(value)), bool_input(inputs, "persist", False), path, proc_root)


def normalize(value: str) -> str:
    return " ".join(value.split())


def key_path(key: str) -> str:
    """net.ipv4.ip_forward → net/ipv4/ip_forward; a key with / keeps its dots (eth0.100)."""
    return key if "/" in key else key.replace(".", "/")


def render_conf(text: str, key: str, value: str) -> Tuple[str, bool]:
    """The config text with exactly one `key = value` line for key; (text, changed)."""
    lines: List[str] = text.splitlines()
    wanted = "%s = %s" % (key, value)
    found = [i for i, line in enumerate(lines) if _conf_key(line) == key_path(key)]
    if len(found) == 1 and normalize(lines[found[0]].split("=", 1)[1]) == value:
        return text, False
    kept = [line for i, line in enumerate(lines) if i not in found]
    at = found[0] if found else len(kept)
    kept.insert(at, wanted)
    return "\n".join(kept) + "\n", True


def _conf_key(line: str) -> Optional[str]:
    stripped = line.strip().lstrip("-")
    if not stripped or stripped[0] in "#;" or "=" not in stripped:
        return None
    return key_path(stripped.split("=", 1)[0].strip())


def read_runtime(spec: Spec) -> str:
    path = os.path.join(spec.proc_root, "sys", key_path(spec.key))
    try:
        with open(path) as handle:
            return normalize(handle.read())
    except FileNotFoundError:
        raise ActionFailed("unknown sysctl key %s (%s does not exist)" % (spec.key, path))
    except OSError as err:
        raise ActionFailed("cannot read %s: %s" % (path, err))


def write_runtime(spec: Spec) -> None:
    path = os.path.join(spec.proc_root, "sys", key_path(spec.key))
    try:
        with open(path, "w") as handle:
            handle.write(spec.value + "\n")
    except OSError as err:
        raise ActionFailed("cannot set %s at runtime (%s): %s" % (spec.key, path, err))


def run(spec: Spec, ctx: Context) -> StepResult:
    changes: Dict[str, Any] = {}
    before = read_runtime(spec)
    if before != spec.value:
        changes["runtime"] = {"before": before, "after": spec.value}
    new_conf: Optional[str] = None
    if spec.persist:
        new_conf, conf_changed = render_conf(_read(spec.file), spec.key, spec.value)
        if conf_changed:
            changes["persisted"] = {"file": spec.file, "after": spec.value}
    details: Dict[str, Any] = {"key": spec.key, "value": spec.value, "changes": changes}
    if not changes:
        details["reason"] = "already %s%s" % (spec.value, " and persisted" if spec.persist else "")
        return result(False, "%s: no change" % spec.key, details, ctx.check)
    if not ctx.check:
        if "runtime" in changes:
            write_runtime(spec)
        if new_conf is not None and "persisted" in changes:
            _write_atomic(spec.file, new_conf)
    verb = "would set" if ctx.check else "set"
    return result(True, "%s: %s %s (%s)" % (spec.key, verb, spec.value, ", ".join(changes)),
                  details, ctx.check)


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def _write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".plumb-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
