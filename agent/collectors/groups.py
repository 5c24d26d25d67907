"""plumb:Group: groups as the node resolves them (`getent group`), with their members.

Members are the group's supplementary members as group(5) lists them; users whose
primary group it is are not repeated there (see plumb:User's Gid).
"""

from __future__ import annotations

from typing import List

from .base import CollectorError, Options, run

TYPE_NAME = "plumb:Group"


def collect(options: Options) -> List[dict]:
    return parse(run(["getent", "group"], options.command_timeout)[1])


def parse(text: str) -> List[dict]:
    """Entries from group(5) lines: name:password:gid:member,member."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(":")
        if len(fields) != 4 or not fields[2].isdigit():
            raise CollectorError(f"getent group line {number}: not a group entry")
        name, _, gid, members = fields
        entries.append({
            "Name": name, "Gid": int(gid),
            "Members": [member for member in members.split(",") if member],
        })
    return sorted(entries, key=lambda entry: (entry["Gid"], entry["Name"]))
