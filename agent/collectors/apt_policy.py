"""Pure parsers for plumb:AvailableUpdate on apt nodes.

- `apt-cache policy pkg:arch ...`: per package, Installed, Candidate and the version table
  naming the package files (`<uri> <suite>/<component> <arch> Packages`) of each version;
- the head of each archive's Release/InRelease file under /var/lib/apt/lists (Origin,
  Label, Suite, Codename), found by `release_file_stem()` as apt names it. Reading these
  costs ~1 ms where `apt-cache policy` without arguments costs ~50 ms.
`updates()` joins them with dpkg's list of installed packages. Each entry describes apt's
candidate and, in `Versions`, every version apt knows that is newer than the installed one
(newest first, Debian ordering): a baseline that approves only security-pocket updates can
then install the newest security version even when the candidate comes from another suite.
"""

from __future__ import annotations

from functools import cmp_to_key
from typing import Dict, List, NamedTuple, Optional, Tuple

from ..actions.versions import compare_deb

STATUS_FILE = "/var/lib/dpkg/status"
NONE = "(none)"
UNSAFE = set("\\|{}[]<>\"^~_=!@#$%&*")
RELEASE_KEYS = {"Origin": "o", "Label": "l", "Suite": "a", "Codename": "n", "Version": "v"}


class PackageFile(NamedTuple):
    """One package file, keyed by its policy text (`<uri> <suite>/<component> <arch> Packages`)."""

    text: str
    release: Dict[str, str]
    site: str


class Policy(NamedTuple):
    """One package's policy: versions map to (pin priority, package-file texts)."""

    name: str
    arch: Optional[str]
    installed: str
    candidate: str
    versions: Dict[str, Tuple[int, List[str]]]


def package_file_texts(policies: List[Policy]) -> List[str]:
    """The package files that candidate and newer versions come from (what Release data is
    needed for)."""
    texts = {
        text
        for policy in policies
        for version in [policy.candidate, *newer_versions(policy)]
        for text in policy.versions.get(version, (0, []))[1]
        if text != STATUS_FILE
    }
    return sorted(texts)


def newer_versions(policy: Policy) -> List[str]:
    """The versions in a policy's table newer than the installed one, newest first."""
    if policy.installed == NONE:
        return []
    newer = [version for version in policy.versions if compare_deb(version, policy.installed) > 0]
    return sorted(newer, key=cmp_to_key(compare_deb), reverse=True)


def release_file_stem(text: str) -> Optional[str]:
    """The name under /var/lib/apt/lists of a package file's Release, minus `InRelease`/`Release`.

    Mirrors apt's URItoFileName(): scheme and credentials dropped, unsafe characters
    %-quoted, `/` turned into `_` (so a local `file:/srv/repo` archive gives `_srv_repo_...`).
    None for flat repositories and dpkg's status file.
    """
    words = text.split(" ")
    if len(words) < 3 or ":" not in words[0] or "/" not in words[1] or words[1].startswith("./"):
        return None
    suite = words[1].rpartition("/")[0]
    full = _location(words[0]).rstrip("/") + "/dists/" + suite + "/"
    return "".join(_quote(char) for char in full).replace("/", "_")


def _location(uri: str) -> str:
    """A URI without its scheme and credentials: `host/path`, or `/path` for `file:/path`."""
    rest = uri.split(":", 1)[1] if ":" in uri.split("/", 1)[0] else uri
    if rest.startswith("//"):
        return rest[2:].rpartition("@")[2]
    return rest


def _quote(char: str) -> str:
    if char in UNSAFE or ord(char) <= 0x20 or ord(char) >= 0x7F:
        return "".join("%%%02x" % byte for byte in char.encode("utf-8"))
    return char


def parse_release(text: str) -> Dict[str, str]:
    """Release attributes in apt's one-letter keys (o, l, a, n, v) from a Release/InRelease head."""
    release = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if key in ("MD5Sum", "SHA1", "SHA256", "SHA512"):
            break
        if colon and key in RELEASE_KEYS and not line.startswith(" "):
            release[RELEASE_KEYS[key]] = value.strip()
    return release


def package_file(text: str, release: Dict[str, str]) -> PackageFile:
    """A PackageFile for a policy text; the site is its URI's host, as apt's `origin` line."""
    return PackageFile(text, release, _location(text.split(" ", 1)[0]).split("/", 1)[0])


def parse_policies(text: str) -> List[Policy]:
    """Per-package policies from `apt-cache policy pkg ...` output."""
    policies: List[Policy] = []
    version = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" ") and line.endswith(":"):
            name, _, arch = line[:-1].partition(":")
            policies.append(Policy(name, arch or None, NONE, NONE, {}))
            version = None
        elif policies:
            version = _policy_line(policies, line, version)
    return policies


def _policy_line(policies: List[Policy], line: str, version: Optional[str]) -> Optional[str]:
    current = policies[-1]
    stripped = line.strip()
    indent = len(line) - len(line.lstrip())
    if stripped.startswith("Installed:"):
        policies[-1] = current._replace(installed=stripped.split(":", 1)[1].strip())
    elif stripped.startswith("Candidate:"):
        policies[-1] = current._replace(candidate=stripped.split(":", 1)[1].strip())
    elif stripped.startswith("Version table:"):
        pass
    elif indent <= 5:
        words = stripped.replace("***", "", 1).split()
        version = words[0]
        current.versions[version] = (int(words[1]) if len(words) > 1 else 0, [])
    elif version is not None:
        current.versions[version][1].append(stripped.split(None, 1)[1])
    return version


def is_security(package_file: PackageFile) -> bool:
    """Whether a package file is a security archive (Debian or Ubuntu conventions)."""
    release = package_file.release
    return (
        release.get("a", "").endswith("-security")
        or release.get("n", "").endswith("-security")
        or release.get("l", "") == "Debian-Security"
        or package_file.site in ("security.debian.org", "security.ubuntu.com")
        or _dist(package_file.text)[0].endswith("-security")
    )


def _dist(text: str) -> Tuple[str, str]:
    """(suite, component) from a package-file text `<uri> <suite>/<component> <arch> Packages`."""
    words = text.split(" ")
    suite, _, component = (words[1] if len(words) > 2 else "").rpartition("/")
    return suite, component


def updates(policies: List[Policy], files: Dict[str, PackageFile], installed: List[dict]) -> List[dict]:
    """plumb:AvailableUpdate entries: installed packages whose candidate differs."""
    by_name: Dict[str, List[dict]] = {}
    for entry in installed:
        by_name.setdefault(entry["Name"], []).append(entry)
    foreign = {(policy.name, policy.arch) for policy in policies if policy.arch}
    found = []
    for policy in policies:
        if NONE in (policy.installed, policy.candidate) or policy.installed == policy.candidate:
            continue
        package = _installed_entry(policy, by_name.get(policy.name, []), foreign)
        found.append(_update(policy, package, files))
    return sorted(found, key=lambda entry: (entry["Name"], entry["Architecture"]))


def _installed_entry(policy: Policy, candidates: List[dict], foreign: set) -> dict:
    """dpkg's entry for a policy. apt names foreign-architecture packages `name:arch` and
    native or `all` ones `name`, so an unqualified name is the entry no header claims."""
    for entry in candidates:
        if policy.arch == entry["Architecture"] or (
            policy.arch is None and (entry["Name"], entry["Architecture"]) not in foreign
        ):
            return entry
    return {}


def _update(policy: Policy, package: dict, files: Dict[str, PackageFile]) -> dict:
    pin, texts = policy.versions.get(policy.candidate, (0, []))
    chosen = _choose_file(texts, files)
    release = chosen.release
    suite, component = _dist(chosen.text)
    return {
        "Name": policy.name,
        "Architecture": package.get("Architecture", policy.arch or ""),
        "InstalledVersion": policy.installed,
        "CandidateVersion": policy.candidate,
        "Origin": release.get("o", ""),
        "Label": release.get("l", ""),
        "Suite": release.get("a", suite),
        "Codename": release.get("n", ""),
        "Component": release.get("c", component),
        "Site": chosen.site,
        "PinPriority": pin,
        "Priority": package.get("Priority", ""),
        "Section": package.get("Section", ""),
        "Security": _security(texts, files),
        "PackageManager": "apt",
        "Versions": [_version(policy, version, files) for version in newer_versions(policy)],
    }


def _version(policy: Policy, version: str, files: Dict[str, PackageFile]) -> dict:
    """One newer version, described by its package files as the candidate is."""
    pin, texts = policy.versions[version]
    chosen = _choose_file(texts, files)
    release = chosen.release
    return {
        "Version": version,
        "Suite": release.get("a", _dist(chosen.text)[0]),
        "Codename": release.get("n", ""),
        "Origin": release.get("o", ""),
        "Label": release.get("l", ""),
        "Security": _security(texts, files),
        "PinPriority": pin,
    }


def _security(texts: List[str], files: Dict[str, PackageFile]) -> bool:
    return any(is_security(files.get(text, PackageFile(text, {}, ""))) for text in texts)


def _choose_file(texts: List[str], files: Dict[str, PackageFile]) -> PackageFile:
    """The package file to describe a candidate by: a security archive if one carries it."""
    known = [files.get(text, PackageFile(text, {}, "")) for text in texts if text != STATUS_FILE]
    for package_file in known:
        if is_security(package_file):
            return package_file
    return known[0] if known else PackageFile("", {}, "")
