"""Fixtures of the patch-evaluation tests: node inventories assembled by the agent's own pure
parsers from the captured collector outputs (tests/fixtures/collectors), and PatchBaselines
built from YAML the way the loader builds them (schema, build, kind checks)."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from pathlib import Path

import pytest

from agent.collectors import application, dnf_updates, instance, updates
from reconciler import schema
from reconciler.kinds import patchbaseline
from reconciler.kinds.base import Manifest, Origin
from reconciler.yamlsource import parse_documents

COLLECTORS = Path(__file__).resolve().parents[1] / "fixtures" / "collectors"
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

PLATFORMS = {
    # platform: (os-release, dpkg/rpm, package manager)
    "debian12-security": ("debian12", "apt"),
    "ubuntu2204": ("ubuntu2204", "apt"),
    "rhel9": ("rhel9", "dnf"),
}


def read(name: str) -> str:
    return (COLLECTORS / name).read_text()


def _types(platform: str, reboot):
    release, manager = PLATFORMS[platform]
    info = instance.parse(instance.parse_os_release(read(f"os-release.{release}")), hostname=f"{release}-node",
                          kernel="6.1.0", machine="x86_64", interfaces=[], default_interface=None,
                          reboot=reboot, python_version="3.11.2")
    if manager == "apt":
        installed = application.parse_dpkg(read(f"dpkg-query.{platform}.txt"))
        found = updates.apt_updates(installed, [read(f"apt-cache-policy.{platform}.txt")],
                                    str(COLLECTORS / "apt-lists"))
    else:
        installed = application.parse_rpm(read(f"rpm-qa.{platform}.txt"))
        found = dnf_updates.updates(dnf_updates.parse_check_update(read(f"dnf-check-update.{platform}.txt")),
                                    dnf_updates.parse_updateinfo(read(f"dnf-updateinfo-list.{platform}.txt")),
                                    installed)
    return {"AWS:InstanceInformation": [info], "AWS:Application": installed, "plumb:AvailableUpdate": found}


_CACHE: dict = {}


@pytest.fixture
def inventory():
    """inventory("debian12-security", reboot=False, versions={name: [...]}, unknown=(type, ...))
    → the node's inventory document. `versions` sets an update's `Versions` (what the agent
    reports for every newer version); `unknown` marks types as not observable."""

    def build(platform: str, *, reboot=False, versions=None, unknown=(), drop=()):
        key = (platform, reboot)
        if key not in _CACHE:
            _CACHE[key] = _types(platform, reboot)
        types = copy.deepcopy(_CACHE[key])
        for entry in types["plumb:AvailableUpdate"]:
            if versions and entry["Name"] in versions:
                entry["Versions"] = versions[entry["Name"]]
        doc = {"SchemaVersion": "1.0", "AgentVersion": "0.1.0", "CaptureTime": "2026-11-23T11:00:00Z",
               "Node": {"ComputerName": "n1"},
               "Types": {name: {"Status": "ok", "ContentHash": "0" * 64, "Content": content}
                         for name, content in types.items() if name not in drop}}
        for name in unknown:
            doc["Types"][name] = {"Status": "unknown", "Reason": "apt-cache failed: exit status 100"}
        return doc

    return build


def build_baseline(text: str, file: str = "baseline.yaml"):
    """A PatchBaseline from one YAML manifest, validated and checked as the loader does."""
    (document,), problems = parse_documents(text, file)
    assert not problems
    diagnostics = schema.validate(document.value, "patchbaseline", document.source)
    assert not diagnostics, [d.render() for d in diagnostics]
    built = patchbaseline.build(Manifest("PatchBaseline", document.value, Origin(file, document.source)))
    checked = list(patchbaseline.check(built))
    assert not checked, [d.render() for d in checked]
    return built


@pytest.fixture
def baseline():
    """baseline(spec_yaml, name="base", os="DEBIAN") → PatchBaseline; spec_yaml is the spec body."""

    def build(spec: str = "", *, name: str = "base", os: str = "DEBIAN"):
        body = "\n".join("  " + line for line in spec.strip("\n").splitlines())
        text = (f"apiVersion: plumb.dev/v1\nkind: PatchBaseline\nmetadata:\n  name: {name}\n"
                f"spec:\n  operatingSystem: {os}\n{body}\n")
        return build_baseline(text)

    return build
