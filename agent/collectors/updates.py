"""plumb:AvailableUpdate: packages with a newer candidate, from the package manager's
LOCAL data only: this never runs `apt-get update` nor lets dnf refresh its metadata.

apt: `apt-cache policy` over the installed packages (split across CPUs), plus the head of
each archive's Release file for origin, suite, codename and label. Where apt's binary
cache is switched off (Docker images set Dir::Cache::pkgcache ""), every apt-cache run
rebuilds it (~0.8 s here); the agent then keeps one under `Options.apt_cache_dir`.
dnf: `dnf -C check-update` (cache only) and `dnf -C updateinfo list --available`.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Dict, List, Optional, Tuple

from . import application, apt_policy, dnf_updates
from .base import CollectorError, Options, in_background, run, stat_signature, which

TYPE_NAME = "plumb:AvailableUpdate"
CHUNK = 2000
RELEASE_HEAD = 16384


REFRESH_TIMEOUT = 600.0  # seconds: package lists come over the network


def collect(options: Options) -> List[dict]:
    if which("apt-cache") and which("dpkg-query"):
        if options.refresh_package_lists:
            refresh(["apt-get", "update", "-q"])
        return collect_apt(options)
    if which("dnf") and which("rpm"):
        if options.refresh_package_lists:
            refresh(["dnf", "-q", "makecache"])
        return collect_dnf(options)
    raise CollectorError("no supported package manager found (apt or dnf)")


def refresh(argv: List[str]) -> None:
    """Refresh the package lists, or fail the type with the package manager's own message."""
    try:
        run(argv, REFRESH_TIMEOUT)
    except CollectorError as error:
        raise CollectorError(f"could not refresh the package lists ({' '.join(argv)}): {error}") from None


def collect_apt(options: Options) -> List[dict]:
    timeout = options.command_timeout
    cache_options, lists_dir, inputs = apt_config(options)
    cache = ResultCache(options.apt_cache_dir, inputs, cache_options)
    kept = cache.read()
    if kept is not None:
        return kept
    installed = application.parse_dpkg(
        run(["dpkg-query", "-W", "-f=" + application.DPKG_FORMAT], timeout)[1]
    )
    found = _apt_updates_now(installed, cache_options, lists_dir, timeout)
    cache.write(found)
    return found


def _apt_updates_now(installed: List[dict], cache_options: List[str], lists_dir: str, timeout: float) -> List[dict]:
    apt = ["apt-cache", *cache_options, "policy"]
    names = [f"{entry['Name']}:{entry['Architecture']}" for entry in installed]
    outputs = [in_background(lambda part=part: run([*apt, *part], timeout)[1]) for part in parts(names)]
    return apt_updates(installed, [output() for output in outputs], lists_dir)


# --- the answer kept between runs ---------------------------------------------------------

CACHE_FILE = "available-updates.json"
CACHE_VERSION = "1"
APT_STATE = ("/var/lib/dpkg/status", "/var/lib/dpkg/arch", "/etc/apt/apt.conf", "/etc/apt/apt.conf.d",
             "/etc/apt/preferences", "/etc/apt/preferences.d", "/etc/apt/sources.list", "/etc/apt/sources.list.d")


def apt_inputs(lists_dir: str, configured: List[str] = ()) -> List[str]:
    """Every file and directory apt's answer depends on: dpkg's status and architectures, apt's
    configuration, preferences and sources (where apt-config says they are, and the usual
    places), the downloaded lists, and the APT_CONFIG file if one is set."""
    paths = list(dict.fromkeys([*APT_STATE, *configured, lists_dir]))
    if os.environ.get("APT_CONFIG"):
        paths.append(os.environ["APT_CONFIG"])
    return paths


def signature(paths: List[str]) -> str:
    """A digest of the paths' names, sizes and modification times (directories: their entries'),
    so any change to what apt reads gives another signature. Cheap: stat calls only."""
    return stat_signature(paths, CACHE_VERSION)


class ResultCache:
    """plumb:AvailableUpdate kept in the agent's apt cache directory, valid while nothing apt
    reads has changed (see `signature`). apt-cache over every installed package is most of a
    collection's time; an unchanged node answers from here. Best effort: any problem reading
    or writing it just means computing the answer again."""

    def __init__(self, directory: str, paths: List[str], cache_options: List[str]):
        self.path = os.path.join(directory, CACHE_FILE) if directory else ""
        self.key = signature(paths) + ":" + " ".join(cache_options) if self.path else ""

    def read(self) -> Optional[List[dict]]:
        if not self.path:
            return None
        try:
            with open(self.path, "r", encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != self.key or not isinstance(data.get("entries"), list):
            return None
        return data["entries"]

    def write(self, entries: List[dict]) -> None:
        if not self.path:
            return
        tmp = "%s.%d.tmp" % (self.path, os.getpid())
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump({"key": self.key, "entries": entries}, handle)
            os.replace(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def apt_updates(installed: List[dict], policy_outputs: List[str], lists_dir: str) -> List[dict]:
    """Entries from dpkg's installed packages, `apt-cache policy` outputs and the Release
    files under `lists_dir` (the only I/O here)."""
    policies = [policy for output in policy_outputs for policy in apt_policy.parse_policies(output)]
    files = {
        text: apt_policy.package_file(text, release_attributes(lists_dir, apt_policy.release_file_stem(text)))
        for text in apt_policy.package_file_texts(policies)
    }
    return apt_policy.updates(policies, files, installed)


def parts(names: List[str]) -> List[List[str]]:
    """Argument lists for apt-cache: one per CPU (it is CPU-bound), none longer than CHUNK."""
    count = max(1, min(os.cpu_count() or 1, 4)) if len(names) > 300 else 1
    size = max(1, min(CHUNK, -(-len(names) // count)))
    return [names[start:start + size] for start in range(0, len(names), size)]


_APT_PATHS = ("STATUS", "Dir::State::status/f", "PREFS", "Dir::Etc::preferences/f",
              "PREFSD", "Dir::Etc::preferencesparts/d", "SOURCES", "Dir::Etc::sourcelist/f",
              "SOURCESD", "Dir::Etc::sourceparts/d", "CONFD", "Dir::Etc::parts/d", "CONF", "Dir::Etc::main/f")


def apt_config(options: Options) -> Tuple[List[str], str, List[str]]:
    """(apt-cache options, lists directory, every path apt's answer depends on). The options
    give apt-cache a persistent binary cache under `options.apt_cache_dir` when apt's own is
    switched off."""
    text = run(
        ["apt-config", "shell", "PKGCACHE", "Dir::Cache::pkgcache/f", "LISTS", "Dir::State::lists/d",
         *_APT_PATHS],
        options.command_timeout,
    )[1]
    values = dict(word.split("=", 1) for word in shlex.split(text) if "=" in word)
    lists_dir = values.get("LISTS") or "/var/lib/apt/lists/"
    inputs = apt_inputs(lists_dir, [values[name] for name in _APT_PATHS[::2] if values.get(name)])
    if values.get("PKGCACHE") or not options.apt_cache_dir:
        return [], lists_dir, inputs
    try:
        os.makedirs(options.apt_cache_dir, mode=0o755, exist_ok=True)
    except OSError:
        return [], lists_dir, inputs  # apt-cache then builds its cache in memory: slower, same answer
    return (["-o", "Dir::Cache::pkgcache=" + os.path.join(options.apt_cache_dir, "pkgcache.bin")], lists_dir,
            inputs)


def release_attributes(lists_dir: str, stem: Optional[str]) -> Dict[str, str]:
    """Release attributes of one archive, or {} when its Release file is not there."""
    if stem is None:
        return {}
    for suffix in ("InRelease", "Release"):
        try:
            with open(os.path.join(lists_dir, stem + suffix), "rb") as handle:
                return apt_policy.parse_release(handle.read(RELEASE_HEAD).decode("utf-8", "replace"))
        except OSError:
            continue
    return {}


def collect_dnf(options: Options) -> List[dict]:
    timeout = options.command_timeout
    rpm = in_background(lambda: run(["rpm", "-qa", "--queryformat", application.RPM_FORMAT], timeout)[1])
    # check-update exits 100 when updates exist, 0 when none; -C: cached metadata only.
    available = run(["dnf", "-C", "-q", "check-update"], timeout, ok_codes=(0, 100))[1]
    advisories = run(["dnf", "-C", "-q", "updateinfo", "list", "--available"], timeout)[1]
    return dnf_updates.updates(
        dnf_updates.parse_check_update(available),
        dnf_updates.parse_updateinfo(advisories),
        application.parse_rpm(rpm()),
    )
