"""plumb:User: local and directory accounts as the node resolves them (`getent passwd`,
so NSS sources such as LDAP or sssd count too). SSM has no such type.

Password fields are never reported.
"""

from __future__ import annotations

from typing import List

from .base import CollectorError, Options, run

TYPE_NAME = "plumb:User"


def collect(options: Options) -> List[dict]:
    return parse(run(["getent", "passwd"], options.command_timeout)[1])


def parse(text: str) -> List[dict]:
    """Entries from passwd(5) lines: name:password:uid:gid:gecos:home:shell."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(":")
        if len(fields) != 7 or not (fields[2].isdigit() and fields[3].isdigit()):
            raise CollectorError(f"getent passwd line {number}: not a passwd entry")
        name, _, uid, gid, gecos, home, shell = fields
        entries.append({
            "Name": name, "Uid": int(uid), "Gid": int(gid),
            "Gecos": gecos, "Home": home, "Shell": shell,
        })
    return sorted(entries, key=lambda entry: (entry["Uid"], entry["Name"]))
