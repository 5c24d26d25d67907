"""The node agent as one zipapp: built from the `agent` package's files, named by content.

`reconciler.transport.session` calls `agent_zipapp()` for the bytes it ships to a node and
`agent_path()` for where they live there. The build is deterministic (sorted entries, a
fixed timestamp and mode, fixed compression), so the same sources give the same bytes and
the same hash, and a node keeps a cached agent until the sources change.

The controller must not import the agent (import-linter forbids it): the package is
located with `importlib.util.find_spec` and its files are read as data.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import posixpath
import zipfile
from pathlib import Path

from .kinds.node import AGENT_DIRECTORY

PACKAGE = "agent"
DEFAULT_DIR = AGENT_DIRECTORY   # on the node: $XDG_CACHE_HOME/plumb, else ~/.cache/plumb
SHEBANG = b"#!/usr/bin/env python3\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)   # the earliest time a zip entry can carry
_MODE = 0o100644 << 16           # a regular file, rw-r--r--

MAIN = '''\
"""plumb agent zipapp: `serve` runs the JSON-lines session, anything else the agent CLI."""
import sys

if sys.argv[1:2] == ["serve"]:
    from agent.serve import main
    sys.exit(main(sys.argv[2:]))
from agent.__main__ import main
sys.exit(main(sys.argv[1:]))
'''


def agent_sources(package: str = PACKAGE) -> dict[str, bytes]:
    """Archive name -> bytes of every `.py` file of the package (no caches, no data)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {package!r} package is not installed beside the controller")
    root = Path(list(spec.submodule_search_locations)[0])
    files = {}
    for path in root.rglob("*.py"):
        relative = path.relative_to(root)
        if "__pycache__" not in relative.parts:
            files[posixpath.join(package, *relative.parts)] = path.read_bytes()
    return files


def build(sources: dict[str, bytes]) -> bytes:
    """A zipapp holding `sources` plus the root `__main__.py`; same input, same bytes."""
    entries = dict(sources, **{"__main__.py": MAIN.encode()})
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = _MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3   # unix, whatever the controller runs on
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def agent_zipapp() -> tuple[bytes, str]:
    """(zipapp bytes, their sha256 hex) for the agent beside this controller; built once."""
    data = build(agent_sources())
    return data, hashlib.sha256(data).hexdigest()


def agent_filename(sha256_hex: str) -> str:
    return f"plumb-agent-{sha256_hex[:16]}.pyz"


def agent_path(sha256_hex: str, directory: str = DEFAULT_DIR) -> str:
    """Where the agent with this hash lives on a node: `<directory>/plumb-agent-<16 hex>.pyz`.

    A directory starting with `~/` is relative to the node user's home; the session
    resolves it on the node.
    """
    return posixpath.join(directory, agent_filename(sha256_hex))
