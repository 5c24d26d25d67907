"""Patch Manager as a user runs it, with the real apt-get and dpkg and a local repository.

The test builds an apt repository with a normal and a `-security` suite (tests/aptrepo.py),
points apt at it alone (APT_CONFIG), installs old versions, and then drives plumb on the
local node: scan (changes nothing), plan (missing approved patches as pending changes,
blocked outside the baseline's window), reconcile and `plumb patch install` (approved
updates installed, BLOCK-rejected packages never, not even as dependencies, an apt failure
FAILED with apt's message), NoReboot leaving INSTALLED_PENDING_REBOOT, compliance type Patch,
and `plumb patch baseline show` explaining each decision.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aptrepo import Pkg, build_repo, installed_test_packages, installed_version, require_apt_tools

pytestmark = pytest.mark.usefixtures("plumbtest_packages")

PACKAGES = [
    Pkg("plumbtest-web", "1.0-1"),
    Pkg("plumbtest-web", "1.1-1", suite="plumbtest-security"),
    Pkg("plumbtest-web", "1.2-1"),  # newer, but not a security update: not approved (enableNonSecurity false)
    Pkg("plumbtest-tool", "1.0-1"),
    Pkg("plumbtest-tool", "2.0-1", suite="plumbtest-security", depends="plumbtest-blocked"),
    Pkg("plumbtest-blocked", "1.0-1"),
    Pkg("plumbtest-held", "1.0-1"),
    Pkg("plumbtest-held", "1.1-1", suite="plumbtest-security"),
    Pkg("plumbtest-rejected", "1.0-1"),
    Pkg("plumbtest-rejected", "1.1-1", suite="plumbtest-security"),
]


def _baseline(window: str = "", reboot: str = "NoReboot") -> dict:
    spec = {"operatingSystem": "DEBIAN", "patchGroups": ["test-group"], "rebootOption": reboot,
            "approvalRules": {"patchRules": [
                {"patchFilterGroup": {"patchFilters": [{"key": "NAME", "values": ["plumbtest-web",
                                                                                    "plumbtest-tool"]}]},
                 "complianceLevel": "HIGH"},
                {"patchFilterGroup": {"patchFilters": [{"key": "NAME", "values": ["plumbtest-held"]}]},
                 "complianceLevel": "LOW", "approveAfterDays": 7}]},
            "rejectedPatches": ["plumbtest-blocked", "plumbtest-rejected"], "rejectedPatchesAction": "BLOCK"}
    if window:
        spec["maintenanceWindow"] = window
    return {"apiVersion": "plumb.dev/v1", "kind": "PatchBaseline", "metadata": {"name": "test-debian"}, "spec": spec}


class World:
    def __init__(self, tmp: Path, repo):
        self.tmp, self.repo = tmp, repo
        self.manifests = tmp / "manifests"
        self.manifests.mkdir()
        self.flag = tmp / "reboot-required"
        self.env = {**os.environ, **repo.env, "PLUMB_MANIFESTS": str(self.manifests),
                    "PLUMB_STATE": f"sqlite:///{tmp}/state.db", "NO_COLOR": "1",
                    "PLUMB_REBOOT_REQUIRED_FILE": str(self.flag),
                    "PLUMB_REBOOT_COMMAND": f"touch {tmp / 'rebooted'}", "XDG_CACHE_HOME": str(tmp / "cache")}

    def write(self, *docs) -> None:
        node = {"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": "local", "labels": {
            "PatchGroup": "test-group"}}, "spec": {"transport": "local"}}
        (self.manifests / "fleet.yaml").write_text(yaml.safe_dump_all([node, *docs]))

    def plumb(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "reconciler", *args], env=self.env, capture_output=True,
                              text=True, timeout=300, cwd=self.tmp)

    def installed(self) -> dict:
        return {name: installed_version(name) for name in installed_test_packages()}


@pytest.fixture
def world(tmp_path):
    require_apt_tools()
    repo = build_repo(tmp_path / "repo", PACKAGES)
    repo.update()
    repo.install_many({"plumbtest-web": "1.0-1", "plumbtest-tool": "1.0-1", "plumbtest-held": "1.0-1",
                       "plumbtest-rejected": "1.0-1"})
    return World(tmp_path, repo)


CLOSED = {"apiVersion": "plumb.dev/v1", "kind": "MaintenanceWindow", "metadata": {"name": "never-now"},
          "spec": {"schedule": "at(2020-01-01T00:00:00)", "duration": 1, "cutoff": 0}}


def test_scan_plan_install_with_real_apt(world):
    world.write(_baseline())
    before = world.installed()
    scan = world.plumb("patch", "scan", "--node", "local", "--detailed-exitcode", "--output", "json")
    assert scan.returncode == 2, scan.stdout + scan.stderr
    assert world.installed() == before  # Scan never changes a node
    node = json.loads(scan.stdout)["nodes"][0]
    states = {p["name"]: (p["state"], p["version"]) for p in node["non_compliant"]}
    assert states["plumbtest-web"] == ("MISSING", "1.1-1")  # the security version, not the newer 1.2-1
    assert states["plumbtest-tool"] == ("MISSING", "2.0-1")
    assert states["plumbtest-rejected"][0] == "INSTALLED_REJECTED"
    assert "plumbtest-held" not in states  # first seen today; approveAfterDays 7
    assert (node["MissingCount"], node["severity"]) == (2, "HIGH")

    show = world.plumb("patch", "baseline", "show", "test-debian", "--node", "local")
    assert show.returncode == 0, show.stderr
    assert "approval rule 1" in show.stdout and "approveAfterDays 7" in show.stdout
    assert "first seen by plumb" in show.stdout

    plan = world.plumb("plan", "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "~ patches:plumbtest-web" in plan.stdout
    assert "version: \"1.0-1\" -> \"1.1-1\"" in plan.stdout

    applied = world.plumb("reconcile")
    assert applied.returncode == 1, applied.stdout + applied.stderr  # the tool patch cannot install
    got = world.installed()
    assert got["plumbtest-web"] == "1.1-1"
    assert got["plumbtest-tool"] == "1.0-1" and "plumbtest-blocked" not in got  # BLOCK: not even as a dependency
    assert got["plumbtest-rejected"] == "1.0-1"  # installed rejected: neither removed nor upgraded
    assert "plumbtest-blocked" in applied.stderr or "plumbtest-blocked" in applied.stdout

    compliance = json.loads(world.plumb("compliance", "--type", "Patch", "--output", "json").stdout)
    items = {i["id"]: i for i in compliance["items"]}
    assert items["plumbtest-web"]["details"]["State"] == "INSTALLED"
    assert items["plumbtest-tool"]["details"]["State"] == "FAILED"
    assert items["plumbtest-rejected"]["details"]["State"] == "INSTALLED_REJECTED"
    assert items["plumbtest-tool"]["status"] == "NON_COMPLIANT" and items["plumbtest-tool"]["severity"] == "HIGH"


def test_windows_and_reboot_options(world):
    world.write(_baseline(window="never-now"), CLOSED)
    plan = world.plumb("plan", "--detailed-exitcode")
    assert "blocked by window never-now" in plan.stdout, plan.stdout
    held = world.plumb("patch", "install", "--node", "local")
    assert held.returncode == 0, held.stdout + held.stderr
    assert "blocked plumbtest-web" in held.stdout
    assert world.installed()["plumbtest-web"] == "1.0-1"

    world.flag.write_text("*** System restart required ***\n")
    forced = world.plumb("patch", "install", "--node", "local", "--ignore-windows", "--output", "json")
    row = json.loads(forced.stdout)["nodes"][0]
    assert row["installed"] == {"plumbtest-web": "1.1-1"}, forced.stdout + forced.stderr
    assert row["reboot_required"] and not row["rebooting"]  # NoReboot
    assert not (world.tmp / "rebooted").exists()
    compliance = json.loads(world.plumb("compliance", "--type", "Patch", "--output", "json").stdout)
    states = {i["id"]: i["details"]["State"] for i in compliance["items"]}
    assert states["plumbtest-web"] == "INSTALLED_PENDING_REBOOT"
    rescan = json.loads(world.plumb("patch", "scan", "--node", "local", "--output", "json").stdout)
    assert {p["name"]: p["state"] for p in rescan["nodes"][0]["non_compliant"]}["plumbtest-web"] == \
        "INSTALLED_PENDING_REBOOT"

    world.write(_baseline(reboot="RebootIfNeeded"))
    world.repo.install("plumbtest-web", "1.0-1")
    rebooted = world.plumb("patch", "install", "--node", "local", "--output", "json")
    row = json.loads(rebooted.stdout)["nodes"][0]
    assert row["rebooting"] and (world.tmp / "rebooted").exists(), rebooted.stdout + rebooted.stderr


def test_scan_reads_local_lists_and_refresh_updates_them_first(world):
    import shutil

    world.write(_baseline())
    shutil.rmtree(world.repo.lists_dir)  # as on a node whose lists were never updated
    Path(world.repo.lists_dir).mkdir()
    (Path(world.repo.lists_dir) / "partial").mkdir()
    stale = json.loads(world.plumb("patch", "scan", "--node", "local", "--output", "json").stdout)
    assert stale["nodes"][0]["MissingCount"] == 0, stale
    fresh = world.plumb("patch", "scan", "--node", "local", "--refresh", "--output", "json")
    node = json.loads(fresh.stdout)["nodes"][0]
    assert node["MissingCount"] == 2, fresh.stdout + fresh.stderr
