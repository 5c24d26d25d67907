"""plumb:Sysctl: current values of the kernel parameters a request names, read from
/proc/sys (no `sysctl` command needed).

Keys use sysctl's dotted form; as in sysctl(8), a `/` inside a key stands for a `.` in the
file name (`net.ipv4.conf.eth0/100.rp_filter`). Whitespace runs in a value are folded to
one space, so `32768\t60999` reads `32768 60999`. A missing key is an entry with Exists
false; an unreadable one carries an Error.
"""

from __future__ import annotations

import os
import re
from typing import Callable, List

from .base import Options

TYPE_NAME = "plumb:Sysctl"
PROC_SYS = "/proc/sys"
KEY = re.compile(r"^[A-Za-z0-9_\-]+([./][A-Za-z0-9_\-:]+)*$")


def collect(options: Options) -> List[dict]:
    return [observe(key) for key in options.sysctl_keys]


def key_path(key: str, root: str = PROC_SYS) -> str:
    """/proc/sys path of a dotted key; ValueError for a key that could escape /proc/sys."""
    if not KEY.match(key) or ".." in key:
        raise ValueError(f"not a sysctl key: {key!r}")
    swapped = key.translate(str.maketrans("./", "/."))
    return os.path.join(root, swapped)


def parse(key: str, raw: str) -> dict:
    """The entry for a key whose file held `raw`."""
    return {"Key": key, "Exists": True, "Value": " ".join(raw.split())}


def observe(key: str, root: str = PROC_SYS, opener: Callable = open) -> dict:
    try:
        path = key_path(key, root)
    except ValueError as error:
        return {"Key": key, "Exists": False, "Error": str(error)}
    try:
        with opener(path, "rb") as handle:
            raw = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return {"Key": key, "Exists": False}
    except OSError as error:
        return {"Key": key, "Exists": os.path.exists(path), "Error": error.strerror or str(error)}
    return parse(key, raw)
