"""AWS:File: metadata (and optionally text content) of the paths a request names.

`observe()` does the I/O for one path (lstat, owner names, sha256, symlink target, small
content) and returns an `Observation`; `parse()` turns observations into entries and is
pure. A missing path is an entry with Exists false; a path that cannot be read carries an
Error string. Neither makes the type unknown.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat
from datetime import datetime, timezone
from typing import Callable, List, NamedTuple, Optional

from .base import Options

TYPE_NAME = "AWS:File"
CHUNK = 1 << 16


class Observation(NamedTuple):
    """What one path looked like; `stat` is None when the path does not exist."""

    path: str
    stat: Optional[os.stat_result] = None
    owner: str = ""
    group: str = ""
    sha256: str = ""
    link_target: str = ""
    content: Optional[bytes] = None
    error: str = ""


def collect(options: Options) -> List[dict]:
    limit = options.content_max_bytes if options.content else -1
    wanted = options.content_paths
    return parse([observe(path, limit if wanted is None or path in wanted else -1) for path in options.files])


def parse(observations: List[Observation]) -> List[dict]:
    return [describe(observation) for observation in observations]


def describe(seen: Observation) -> dict:
    """One entry; attributes after Exists appear only when the path exists."""
    entry = {
        "Path": seen.path,
        "Name": os.path.basename(seen.path.rstrip("/")) or "/",
        "InstalledDir": os.path.dirname(seen.path.rstrip("/")) or "/",
        "Exists": seen.stat is not None,
    }
    if seen.stat is not None:
        entry.update(_attributes(seen.stat, seen.owner, seen.group))
        if seen.sha256:
            entry["Sha256"] = seen.sha256
        if stat.S_ISLNK(seen.stat.st_mode):
            entry["LinkTarget"] = seen.link_target
        text = _text(seen.content)
        if text is not None:
            entry["Content"] = text
    if seen.error:
        entry["Error"] = seen.error
    return entry


def file_type(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _attributes(st: os.stat_result, owner: str, group: str) -> dict:
    return {
        "FileType": file_type(st.st_mode),
        "Size": st.st_size,
        "Mode": "%04o" % stat.S_IMODE(st.st_mode),
        "Owner": owner or str(st.st_uid),
        "Group": group or str(st.st_gid),
        "Uid": st.st_uid,
        "Gid": st.st_gid,
        "ModificationTime": datetime.fromtimestamp(int(st.st_mtime), tz=timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
    }


def _text(content: Optional[bytes]) -> Optional[str]:
    if content is None:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None  # binary content is never reported


def observe(path: str, content_limit: int = -1, opener: Callable = open) -> Observation:
    """Look at one path. `content_limit` < 0: no content; else content of files that small."""
    if not os.path.isabs(path):
        return Observation(path, error="not an absolute path")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return Observation(path)
    except OSError as error:
        return Observation(path, error=f"cannot stat: {error.strerror or error}")
    seen = Observation(path, st, _user(st.st_uid), _group(st.st_gid))
    if stat.S_ISLNK(st.st_mode):
        return _observe_link(seen)
    if stat.S_ISREG(st.st_mode):
        return _observe_file(seen, content_limit, opener)
    return seen


def _observe_link(seen: Observation) -> Observation:
    try:
        return seen._replace(link_target=os.readlink(seen.path))
    except OSError as error:
        return seen._replace(error=f"cannot read link: {error.strerror or error}")


def _observe_file(seen: Observation, content_limit: int, opener: Callable) -> Observation:
    keep = 0 <= seen.stat.st_size <= content_limit
    digest, kept = hashlib.sha256(), bytearray()
    try:
        with opener(seen.path, "rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
                if keep:
                    kept += chunk
                    keep = len(kept) <= content_limit  # the file may grow while read
    except OSError as error:
        return seen._replace(error=f"cannot read: {error.strerror or error}")
    return seen._replace(sha256=digest.hexdigest(), content=bytes(kept) if keep else None)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""
