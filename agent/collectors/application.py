"""AWS:Application: installed packages, from dpkg-query (Debian family) or rpm (RHEL family).

One batched command lists every package. `parse_dpkg()` and `parse_rpm()` are pure and
tested on captured output; `plumb:AvailableUpdate` reuses them to learn what is installed.
Architectures are reported as the package manager names them (amd64, x86_64, all, noarch),
unlike SSM which folds them to x86_64: the names are what apt and dnf take back as input.

Targeted collects (`Options.packages`, `--packages`, serve's `"packages"`): only the named
packages are queried, still with one command (`dpkg-query -W -f=... -- NAME...`,
`rpm -q --queryformat ... -- NAME...`), and the content is exactly the full list's entries
for those names.

A long-lived agent (the resident one, agent/resident.py) keeps the full list in memory while
the package database is unchanged (a stat signature of dpkg's status and journal, or rpm's
database directory), and answers full and targeted collects from it without a command. A name that is not installed is simply absent from the content: dpkg-query
says "no packages found matching NAME" on stderr and exits 1, or lists the name with a
`not-installed` / `config-files` status; rpm prints "package NAME is not installed" on
stdout and exits with the count of such names. Neither is an error. "Could not observe"
is never an empty or short list: it is the type's `unknown` status with the reason
(dpkg-query exiting 2, rpm failing without naming a missing package, unparseable output).
A name may be arch-qualified as the package manager takes it (dpkg `name:arch`, rpm
`name.arch`); an empty tuple asks for no package at all.
"""

from __future__ import annotations

import re
import threading
from datetime import datetime, timezone
from typing import Dict, Iterable, List, Optional, Sequence

from .. import is_resident
from .base import CollectorError, Options, run, stat_signature, which

TYPE_NAME = "AWS:Application"

DPKG_FIELDS = (
    "Package", "Version", "Architecture", "Status", "Section", "Priority", "Source",
    "Maintainer", "Homepage", "db-fsys:Last-Modified", "binary:Summary",
)
DPKG_FORMAT = "\t".join("${%s}" % field for field in DPKG_FIELDS) + "\n"

RPM_TAGS = (
    "NAME", "EPOCH", "VERSION", "RELEASE", "ARCH", "INSTALLTIME", "VENDOR", "GROUP", "URL",
    "SOURCERPM", "SUMMARY",
)
RPM_FORMAT = "\t".join("%%{%s}" % tag for tag in RPM_TAGS) + "\n"
RPM_NONE = "(none)"
RPM_NOT_INSTALLED = re.compile(r"^package (\S+) is not installed$")

# What a package name may look like: dpkg's and rpm's names, optionally arch-qualified,
# and nothing either tool would read as a pattern (*?[]), an option or a path.
PACKAGE_NAME = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+~:-]*$")
DPKG_NOT_FOUND = 1    # dpkg-query: "the requested query failed ... no package being found"


DPKG_DATABASE = ("/var/lib/dpkg/status", "/var/lib/dpkg/updates")
RPM_DATABASE = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")


def collect(options: Options) -> List[dict]:
    if which("dpkg-query"):
        return _MEMO.answer(DPKG_DATABASE, options.packages, options.command_timeout, installed_dpkg)
    if which("rpm"):
        return _MEMO.answer(RPM_DATABASE, options.packages, options.command_timeout, installed_rpm)
    raise CollectorError("no package manager found (neither dpkg-query nor rpm)")


class _Memo:
    """The full package list of the last query, valid while the database's signature holds.

    Only a warm memo answers a targeted collect; a cold one runs the targeted query itself
    (cheaper to print), except in the resident agent, which fills the memo for next time."""

    def __init__(self) -> None:
        self.key = ""
        self.entries: List[dict] = []
        self.lock = threading.Lock()

    def answer(self, database, names, timeout, query) -> List[dict]:
        key = stat_signature(database, query.__name__)
        with self.lock:
            if key == self.key:
                return list(self.entries) if names is None else only(self.entries, names)
        if names is not None and not is_resident():
            return query(names, timeout)
        entries = query(None, timeout)
        with self.lock:
            self.key, self.entries = key, entries
        return list(entries) if names is None else only(entries, names)


_MEMO = _Memo()


def check_names(names: Iterable[str]) -> None:
    """ValueError naming the first entry that is not a package name."""
    for name in names:
        if not isinstance(name, str) or not PACKAGE_NAME.match(name):
            raise ValueError(f"not a package name: {name!r}")


def installed_dpkg(names: Optional[Sequence[str]], timeout: float) -> List[dict]:
    """Installed packages from one dpkg-query: every one, or those of `names` (None: all)."""
    if names is None:
        return parse_dpkg(run(["dpkg-query", "-W", "-f=" + DPKG_FORMAT], timeout)[1])
    if not names:
        return []
    output = run(["dpkg-query", "-W", "-f=" + DPKG_FORMAT, "--", *names], timeout,
                 ok_codes=(0, DPKG_NOT_FOUND))[1]
    return only(parse_dpkg(output), names)


def installed_rpm(names: Optional[Sequence[str]], timeout: float) -> List[dict]:
    """Installed packages from one rpm query: every one, or those of `names` (None: all)."""
    if names is None:
        return parse_rpm(run(["rpm", "-qa", "--queryformat", RPM_FORMAT], timeout)[1])
    if not names:
        return []
    # rpm exits with the number of names not installed (254 at most), so any status can be
    # an answer; parse_rpm_query() tells it from a failure.
    status, output = run(["rpm", "-q", "--queryformat", RPM_FORMAT, "--", *names], timeout,
                         ok_codes=tuple(range(256)))
    return only(parse_rpm_query(output, status), names)


def only(entries: List[dict], names: Sequence[str]) -> List[dict]:
    """The entries `names` ask for: by name, or arch-qualified (name:arch, name.arch)."""
    wanted = set(names)
    return [
        entry for entry in entries
        if entry["Name"] in wanted
        or f"{entry['Name']}:{entry['Architecture']}" in wanted
        or f"{entry['Name']}.{entry['Architecture']}" in wanted
    ]


def parse_dpkg(text: str) -> List[dict]:
    """Entries for the installed packages in `dpkg-query -W -f=DPKG_FORMAT` output."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        row = _split(line, len(DPKG_FIELDS), number)
        fields = dict(zip(DPKG_FIELDS, row))
        if fields["Status"].split(" ")[-1] != "installed":
            continue
        entries.append(_dpkg_entry(fields))
    return sorted(entries, key=lambda entry: (entry["Name"], entry["Architecture"]))


def _dpkg_entry(fields: Dict[str, str]) -> dict:
    name, version, arch = fields["Package"], fields["Version"], fields["Architecture"]
    entry = {
        "Name": name,
        "Version": version,
        "Architecture": arch,
        "Status": fields["Status"],
        "Section": fields["Section"],
        "ApplicationType": fields["Section"],
        "Priority": fields["Priority"],
        "Source": fields["Source"].split(" ")[0] or name,
        "Publisher": fields["Maintainer"],
        "URL": fields["Homepage"],
        "Summary": fields["binary:Summary"],
        "PackageId": f"{name}_{version}_{arch}.deb",
        "PackageManager": "apt",
    }
    installed = _epoch_to_iso(fields["db-fsys:Last-Modified"])
    if installed:
        entry["InstalledTime"] = installed
    return entry


def parse_rpm(text: str) -> List[dict]:
    """Entries for every package in `rpm -qa --queryformat RPM_FORMAT` output."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if line:
            fields = dict(zip(RPM_TAGS, _split(line, len(RPM_TAGS), number)))
            entries.append(_rpm_entry(fields))
    return sorted(entries, key=lambda entry: (entry["Name"], entry["Architecture"], entry["Version"]))


def parse_rpm_query(text: str, status: int = 0) -> List[dict]:
    """Entries in `rpm -q --queryformat RPM_FORMAT NAME...` output and its exit status.

    The "package NAME is not installed" lines are left out (those names are absent). A
    non-zero status with no such line is a failure (rpm could not read its database)."""
    missing = [line for line in text.splitlines() if RPM_NOT_INSTALLED.match(line)]
    if status != 0 and not missing:
        raise CollectorError(f"rpm -q exited {status} without naming a missing package")
    found = "".join(line + "\n" for line in text.splitlines() if not RPM_NOT_INSTALLED.match(line))
    return parse_rpm(found)


def _rpm_entry(fields: Dict[str, str]) -> dict:
    value = {tag: ("" if text == RPM_NONE else text) for tag, text in fields.items()}
    return {
        "Name": value["NAME"],
        "Epoch": value["EPOCH"],
        "Version": value["VERSION"],
        "Release": value["RELEASE"],
        "Architecture": value["ARCH"],
        "InstalledTime": _epoch_to_iso(value["INSTALLTIME"]),
        "Publisher": value["VENDOR"],
        "ApplicationType": value["GROUP"],
        "URL": value["URL"],
        "PackageId": value["SOURCERPM"],
        "Summary": value["SUMMARY"],
        "PackageManager": "dnf",
    }


def rpm_evr(entry: dict) -> str:
    """An rpm entry's version as dnf prints it: [epoch:]version-release."""
    epoch = entry.get("Epoch") or ""
    prefix = f"{epoch}:" if epoch and epoch != "0" else ""
    return f"{prefix}{entry['Version']}-{entry['Release']}"


def _split(line: str, count: int, number: int) -> List[str]:
    row = line.split("\t")
    if len(row) != count:
        raise CollectorError(f"line {number}: expected {count} tab-separated fields, got {len(row)}")
    return row


def _epoch_to_iso(seconds: str) -> str:
    if not seconds.isdigit():
        return ""
    return datetime.fromtimestamp(int(seconds), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
