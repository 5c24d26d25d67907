"""Shared plumbing for collectors: the options they read, the error they raise, the one
way they run a command or read a file, and a helper to overlap two waits.

Collectors call `run()` and `read_text()`; `agent.inventory` catches `CollectorError` (and
anything else) and turns it into an `unknown` status with the reason. Every command runs
with `LC_ALL=C` so that its output is never translated.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple

DEFAULT_CUSTOM_DIR = "/var/lib/plumb/inventory/custom"
DEFAULT_APT_CACHE_DIR = "/var/cache/plumb/apt"
DEFAULT_CONTENT_MAX_BYTES = 65536
DEFAULT_COMMAND_TIMEOUT = 60.0


class CollectorError(Exception):
    """A collector could not observe its type; str(error) is the reason shown to the user."""


class Options(NamedTuple):
    """What one `collect` request asks for, beyond the choice of types."""

    files: Tuple[str, ...] = ()
    sysctl_keys: Tuple[str, ...] = ()
    content: bool = False
    content_max_bytes: int = DEFAULT_CONTENT_MAX_BYTES
    custom_dir: str = DEFAULT_CUSTOM_DIR
    apt_cache_dir: str = DEFAULT_APT_CACHE_DIR
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    # AWS:Application reports only these packages (None: every installed package; an
    # empty tuple: none). A name it leaves out is not installed; see collectors.application.
    packages: Optional[Tuple[str, ...]] = None
    # With content on, only these paths report their text (None: every requested path).
    # The controller names the files whose content it may see: never those holding secrets.
    content_paths: Optional[Tuple[str, ...]] = None
    # plumb:AvailableUpdate first refreshes the package lists (`apt-get update`, `dnf makecache`):
    # the one collection that changes something on the node, and only when asked (patch scan --refresh).
    refresh_package_lists: bool = False


def command_env() -> Dict[str, str]:
    """The environment for every command: the agent's own, untranslated."""
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    env.pop("LANGUAGE", None)
    return env


def which(name: str) -> Optional[str]:
    """The path of a command, also looking in the sbin directories a non-login PATH lacks."""
    extra = "/usr/local/sbin:/usr/sbin:/sbin"
    return shutil.which(name, path=os.environ.get("PATH", "/usr/bin:/bin") + ":" + extra)


def run(
    argv: Sequence[str],
    timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ok_codes: Tuple[int, ...] = (0,),
) -> Tuple[int, str]:
    """Run a command without a shell; return (exit code, stdout) or raise CollectorError."""
    path = which(argv[0])
    if path is None:
        raise CollectorError(f"command not found: {argv[0]}")
    try:
        done = subprocess.run(
            [path, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            env=command_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CollectorError(f"{argv[0]} timed out after {timeout:g}s") from None
    except OSError as error:
        raise CollectorError(f"{argv[0]} could not start: {error.strerror or error}") from None
    if done.returncode not in ok_codes:
        raise CollectorError(f"{argv[0]} exited {done.returncode}: {_first_line(done.stderr)}")
    return done.returncode, done.stdout.decode("utf-8", errors="replace")


def in_background(function: Callable[[], object]) -> Callable[[], object]:
    """Start `function` on a thread; the returned callable waits, then returns or raises."""
    box: dict = {}

    def target() -> None:
        try:
            box["value"] = function()
        except Exception as error:  # handed over to whoever waits for the result
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def result() -> object:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


def read_text(path: str) -> str:
    """The text of a small file, or CollectorError naming the path and the cause."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")
    except OSError as error:
        raise CollectorError(f"cannot read {path}: {error.strerror or error}") from None


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text.splitlines()[0] if text else "(no message)"


def stat_signature(paths: Sequence[str], salt: str = "") -> str:
    """A digest of the paths' names, sizes and modification times (a directory: its entries'),
    so a change to any of them gives another signature. Cheap: stat calls only. The caches
    that answer from memory or disk while a package database is unchanged key on it."""
    digest = hashlib.sha256(salt.encode())
    for path in paths:
        digest.update(b"\0" + path.encode("utf-8", "surrogateescape"))
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name) if os.path.isdir(path) else None
        except OSError:
            entries = None
        stats = [(e.name, _stat(e.path)) for e in entries if e.name not in ("partial", "lock")] \
            if entries is not None else [("", _stat(path))]
        for name, info in stats:
            if info is None:
                digest.update(b"|" + name.encode("utf-8", "surrogateescape") + b":-")
            else:
                digest.update(("|%s:%d:%d" % (name, info.st_size, info.st_mtime_ns)).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _stat(path: str):
    try:
        return os.stat(path)
    except OSError:
        return None
