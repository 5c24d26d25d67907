"""Pure parsers of dnf (v4, RHEL 8/9 family) output, for plumb:AvailableUpdate on dnf nodes.

- `dnf -C -q check-update`: `name.arch  [epoch:]version-release  repo` per line (a long
  name.arch wraps the rest onto the next line); stops at "Obsoleting Packages".
- `dnf -C -q updateinfo list --available`: `ADVISORY  TYPE  NEVRA` per line, TYPE being
  bugfix, enhancement, newpackage, unknown or `<Severity>/Sec.` for security advisories.
`updates()` joins both with rpm's list of installed packages. Tested on fixtures only:
the development machine is Debian.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Tuple

from .application import rpm_evr

CLASSIFICATION = {
    "bugfix": "Bugfix",
    "enhancement": "Enhancement",
    "newpackage": "Newpackage",
    "unknown": "Unknown",
}
RANK = ["Security", "Bugfix", "Enhancement", "Newpackage", "Unknown", ""]
SEVERITY_RANK = ["Critical", "Important", "Moderate", "Low", "Unknown", ""]


class Available(NamedTuple):
    name: str
    arch: str
    evr: str
    repository: str


class Advisory(NamedTuple):
    advisory_id: str
    classification: str
    severity: str
    name: str
    arch: str
    evr: str


def parse_check_update(text: str) -> List[Available]:
    """Available updates from `dnf check-update` output."""
    found: List[Available] = []
    pending: List[str] = []
    for line in text.splitlines():
        if line.startswith(("Obsoleting Packages", "Obsoleting packages")):
            break
        if not line.strip() or line.startswith(("Last metadata", "Security:")):
            continue
        pending.extend(line.split())
        if len(pending) >= 3:
            name, _, arch = pending[0].rpartition(".")
            found.append(Available(name, arch, pending[1], pending[2]))
            pending = []
    return found


def parse_updateinfo(text: str) -> List[Advisory]:
    """Advisories from `dnf updateinfo list` output."""
    found = []
    for line in text.splitlines():
        words = line.split()
        if len(words) != 3 or line.startswith("Last metadata"):
            continue
        advisory_id, label, nevra = words
        classification, severity = _label(label)
        name, arch, evr = split_nevra(nevra)
        found.append(Advisory(advisory_id, classification, severity, name, arch, evr))
    return found


def _label(label: str) -> Tuple[str, str]:
    if label.endswith("/Sec."):
        return "Security", label[: -len("/Sec.")]
    return CLASSIFICATION.get(label, label.capitalize()), ""


def split_nevra(nevra: str) -> Tuple[str, str, str]:
    """`name-[epoch:]version-release.arch` -> (name, arch, [epoch:]version-release)."""
    rest, _, arch = nevra.rpartition(".")
    name, version, release = rest.rsplit("-", 2)
    return name, arch, f"{version}-{release}"


def updates(available: List[Available], advisories: List[Advisory], installed: List[dict]) -> List[dict]:
    """plumb:AvailableUpdate entries for dnf nodes."""
    versions = _installed_versions(installed)
    by_package: Dict[Tuple[str, str], List[Advisory]] = {}
    for advisory in advisories:
        by_package.setdefault((advisory.name, advisory.arch), []).append(advisory)
    entries = [
        _entry(item, versions.get((item.name, item.arch), ""), by_package.get((item.name, item.arch), []))
        for item in available
    ]
    return sorted(entries, key=lambda entry: (entry["Name"], entry["Architecture"]))


def _entry(item: Available, installed: str, advisories: List[Advisory]) -> dict:
    classification = min((a.classification for a in advisories), key=_rank(RANK), default="")
    security = [a.severity for a in advisories if a.classification == "Security"]
    return {
        "Name": item.name,
        "Architecture": item.arch,
        "InstalledVersion": installed,
        "CandidateVersion": item.evr,
        "Repository": item.repository,
        "Classification": classification,
        "Severity": min(security, key=_rank(SEVERITY_RANK), default=""),
        "Advisories": sorted({a.advisory_id for a in advisories}),
        "Security": classification == "Security",
        "PackageManager": "dnf",
        # Shaped like apt's: dnf -C check-update names only the newest version.
        "Versions": [{"Version": item.evr, "Security": classification == "Security", "Suite": item.repository}],
    }


def _rank(order: List[str]):
    return lambda value: order.index(value) if value in order else len(order)


def _installed_versions(installed: List[dict]) -> Dict[Tuple[str, str], str]:
    """(name, arch) -> evr of the most recently installed package (kernels coexist)."""
    newest: Dict[Tuple[str, str], dict] = {}
    for entry in installed:
        key = (entry["Name"], entry["Architecture"])
        if key not in newest or entry.get("InstalledTime", "") >= newest[key].get("InstalledTime", ""):
            newest[key] = entry
    return {key: rpm_evr(entry) for key, entry in newest.items()}
