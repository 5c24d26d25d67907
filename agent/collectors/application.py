"""AWS:Application: installed packages, from dpkg-query (Debian family) or rpm (RHEL family).

One batched command lists every package. `parse_dpkg()` and `parse_rpm()` are pure and
tested on captured output; `plumb:AvailableUpdate` reuses them to learn what is installed.
Architectures are reported as the package manager names them (amd64, x86_64, all, noarch),
unlike SSM which folds them to x86_64: the names are what apt and dnf take back as input.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Dict, List

from .base import CollectorError, Options, run, which

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


def collect(options: Options) -> List[dict]:
    if which("dpkg-query"):
        return parse_dpkg(run(["dpkg-query", "-W", "-f=" + DPKG_FORMAT], options.command_timeout)[1])
    if which("rpm"):
        return parse_rpm(run(["rpm", "-qa", "--queryformat", RPM_FORMAT], options.command_timeout)[1])
    raise CollectorError("no package manager found (neither dpkg-query nor rpm)")


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
