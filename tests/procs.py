"""Processes as tests see them through /proc: which run, with what command line, whose
children they are. Linux only, as the agent's tests are."""

from __future__ import annotations

import os
from typing import Callable


def resident_agents() -> list[int]:
    """Pids of running resident agents (`... serve --listen ...`)."""
    return pids_where(lambda argv: b"serve" in argv and b"--listen" in argv)


def pids_where(test: Callable[[list[bytes]], bool]) -> list[int]:
    """Pids of the processes whose argv (as bytes) passes `test`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if test(argv):
            pids.append(int(entry))
    return pids


def proc_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after "pid (comm)": state, ppid, pgrp, ...; None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's reaper may be slow or absent)."""
    fields = proc_fields(pid)
    return fields is not None and fields[0] != "Z"


def children_of(pid: int) -> list[int]:
    """Pids of the live processes whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        fields = proc_fields(int(entry)) if entry.isdigit() else None
        if fields is not None and int(fields[1]) == pid:
            found.append(int(entry))
    return found
