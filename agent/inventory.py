"""The inventory document: which collectors run, how they are isolated, what comes out.

`collect()` is what `python3 -m agent collect` calls. Each collector runs on its own
thread (they mostly wait on commands, so they overlap well); whatever one raises, or a
collector still running at the deadline, becomes an `unknown` type with the reason, and
the others still report. Nothing raised by a collector escapes `collect()`.
The document's shape is schemas/inventory.schema.json.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence, Tuple

from . import __version__
from .collectors import COLLECTORS, DEFAULT_TYPES, ON_REQUEST, application
from .collectors.base import CollectorError, Options

SCHEMA_VERSION = "1.0"
DEFAULT_DEADLINE = 300.0
CUSTOM_ALL = "Custom:*"
CUSTOM_TYPE = re.compile(r"^Custom:[A-Z][A-Za-z0-9_.\-]*$")


class Status(str, enum.Enum):
    OK = "ok"
    UNKNOWN = "unknown"


class Selection:
    """The collectors a request runs, and which Custom: types it keeps."""

    def __init__(self, collectors: Tuple[str, ...], custom: Optional[frozenset]):
        self.collectors = collectors
        self.custom = custom  # None: every custom type

    def keeps(self, type_name: str) -> bool:
        if not type_name.startswith("Custom:") or self.custom is None:
            return True
        return type_name in self.custom or type_name == CUSTOM_ALL


def select(types: Optional[Sequence[str]], options: Options) -> Selection:
    """What to collect: the defaults or `types`, plus File/Sysctl whenever their inputs are given.

    Raises ValueError naming a type this agent does not know, or a package name that is
    not one (`options.packages`).
    """
    if options.packages is not None:
        application.check_names(options.packages)
    asked = tuple(name for name, field in ON_REQUEST.items() if getattr(options, field))
    if not types:
        return Selection(DEFAULT_TYPES + asked, None)
    unknown = [name for name in types if name not in COLLECTORS and not CUSTOM_TYPE.match(name)]
    if unknown:
        raise ValueError(f"unknown inventory type {unknown[0]!r}; known: {', '.join(COLLECTORS)}, Custom:<Name>")
    named = tuple(name for name in COLLECTORS if (name in types or name in asked) and name != CUSTOM_ALL)
    custom = frozenset(name for name in types if name.startswith("Custom:"))
    if not custom:
        return Selection(named, frozenset())
    return Selection(named + (CUSTOM_ALL,), None if CUSTOM_ALL in custom else custom)


def collect(
    types: Optional[Sequence[str]] = None,
    options: Options = Options(),
    deadline: float = DEFAULT_DEADLINE,
) -> dict:
    """The inventory document for this node. Only a request naming an unknown type raises
    (ValueError, from `select()`); nothing a collector raises escapes."""
    selection = select(types, options)
    results = run_collectors(selection.collectors, options, deadline)
    kept = {name: result for name, result in results.items() if selection.keeps(name)}
    return document(kept, socket.gethostname(), datetime.now(timezone.utc))


def run_collectors(names: Sequence[str], options: Options, deadline: float) -> Dict[str, object]:
    """Type name -> entries (a list) or the CollectorError saying why the type is unknown."""
    boxes: Dict[str, Dict[str, object]] = {name: {} for name in names}
    threads = []
    for name in names:
        thread = threading.Thread(target=_run_one, args=(name, options, boxes[name]), daemon=True)
        thread.start()
        threads.append((name, thread))
    end = time.monotonic() + deadline
    for name, thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
        if thread.is_alive():
            boxes[name] = {name: CollectorError(f"collector still running after {deadline:g}s")}
    return {type_name: result for box in boxes.values() for type_name, result in sorted(box.items())}


def _run_one(name: str, options: Options, box: Dict[str, object]) -> None:
    module = COLLECTORS[name]
    try:
        result = module.collect(options)
        box.update(result if getattr(module, "MULTI_TYPE", False) else {name: result})
    except CollectorError as error:
        box[name] = error
    except Exception as error:  # isolation: a bug in one collector must not sink the rest
        box[name] = CollectorError(f"collector failed: {type(error).__name__}: {error}")


def document(results: Dict[str, object], hostname: str, now: datetime) -> dict:
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "AgentVersion": __version__,
        "CaptureTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Node": {"ComputerName": hostname},
        "Types": {name: type_report(results[name]) for name in sorted(results)},
    }


def type_report(result: object) -> dict:
    """One entry of the document's Types: ok with content and its hash, or unknown with why."""
    if isinstance(result, BaseException):
        return {"Status": Status.UNKNOWN.value, "Reason": str(result) or type(result).__name__}
    try:
        return {"Status": Status.OK.value, "ContentHash": content_hash(result), "Content": result}
    except (TypeError, ValueError) as error:
        return {"Status": Status.UNKNOWN.value, "Reason": f"content is not JSON: {error}"}


def content_hash(content: List[dict]) -> str:
    """sha256 of the canonical JSON of a type's content (sorted keys, no spaces, UTF-8)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
