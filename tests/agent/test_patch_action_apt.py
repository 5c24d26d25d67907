"""plumb:patch on apt, for real: real apt-get and dpkg install tiny plumbtest-* packages from a
local repository (tests/aptrepo.py) with two suites, plumbtest and plumbtest-security, through
the agent's executor, as the controller sends the step. APT_CONFIG points every apt program at
the repository's own configuration; dpkg's database is the machine's, and every plumbtest-
package is purged after each test. The reboot command is always a harmless `touch`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from aptrepo import Pkg, build_repo, installed_version, plumbtest_packages  # noqa: E402,F401

from agent import executor  # noqa: E402
from agent.actions import patch  # noqa: E402
from agent.collectors import updates  # noqa: E402
from agent.collectors.base import Options  # noqa: E402

ROOT = TESTS.parent
SECURITY = "plumbtest-security"

PACKAGES = [
    # an update in the security suite while the normal suite holds a newer one
    Pkg("plumbtest-web", "1.0-1"),
    Pkg("plumbtest-web", "1.1-1", suite=SECURITY),
    Pkg("plumbtest-web", "1.2-1"),
    # an update that needs a package not installed yet
    Pkg("plumbtest-app", "1.0-1"),
    Pkg("plumbtest-app", "2.0-1", depends="plumbtest-dep (>= 1.0)"),
    Pkg("plumbtest-dep", "1.0-1"),
    # an update that breaks an installed package unless that one is upgraded (or removed)
    Pkg("plumbtest-kept", "1.0-1"),
    Pkg("plumbtest-kept", "2.0-1"),
    Pkg("plumbtest-breaker", "1.0-1"),
    Pkg("plumbtest-breaker", "2.0-1", breaks="plumbtest-kept (<< 2.0)"),
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    built = build_repo(tmp_path_factory.mktemp("aptrepo"), PACKAGES)
    built.update()
    return built


@pytest.fixture
def node(repo, plumbtest_packages, tmp_path, monkeypatch):
    """This machine as a node: the repository's apt configuration, a reboot flag file of our
    own (absent until a test creates it) and a reboot command that only touches a file."""
    for key, value in repo.env.items():
        monkeypatch.setenv(key, value)
    flag, rebooted = tmp_path / "reboot-required", tmp_path / "rebooted"
    monkeypatch.setenv(patch.REBOOT_FLAG_ENV, str(flag))
    monkeypatch.setenv(patch.REBOOT_COMMAND_ENV, "touch %s" % rebooted)
    return type("Node", (), {"repo": repo, "flag": flag, "rebooted": rebooted})


def patch_doc(packages, **inputs):
    inputs = dict({"operation": "Install", "packages": [{"name": n, "version": v} for n, v in packages]}, **inputs)
    return {"schemaVersion": "2.2", "mainSteps": [{"action": "plumb:patch", "name": "patch", "inputs": inputs}]}


def execute(document, check=False):
    """The step_finished and invocation_finished events of one in-process invocation."""
    events = []
    executor.execute({"document": document, "check": check}, events.append)
    step = next(e for e in events if e["event"] == "step_finished")
    return step, events[-1]


def execute_cli(document, env):
    """`python3 -m agent execute` with the request on stdin, as the controller runs the agent."""
    done = subprocess.run([sys.executable, "-m", "agent", "execute"], input=json.dumps({"document": document}),
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, **env}, timeout=300)
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    return next(e for e in events if e["event"] == "step_finished"), events[-1]


def results(step):
    return {p["name"]: p for p in step["details"]["patches"]}


def test_inventory_lists_both_suites_versions_and_the_security_one_installs(node, tmp_path):
    node.repo.install("plumbtest-web", "1.0-1")

    found = {e["Name"]: e for e in updates.collect_apt(Options(apt_cache_dir=str(tmp_path / "cache")))}
    web = found["plumbtest-web"]
    assert (web["CandidateVersion"], web["Suite"], web["Security"]) == ("1.2-1", "plumbtest", False)
    assert web["Versions"] == [
        {"Version": "1.2-1", "Suite": "plumbtest", "Codename": "plumbtest", "Origin": "plumbtest",
         "Label": "plumbtest", "Security": False, "PinPriority": 500},
        {"Version": "1.1-1", "Suite": SECURITY, "Codename": SECURITY, "Origin": "plumbtest",
         "Label": "plumbtest-Security", "Security": True, "PinPriority": 500},
    ]
    newest_security = next(v["Version"] for v in web["Versions"] if v["Security"])

    document = patch_doc([("plumbtest-web", newest_security)], rebootOption="NoReboot")
    step, _ = execute(document, check=True)
    assert results(step)["plumbtest-web"]["state"] == "WOULD_INSTALL"
    assert (step["status"], step["changed"], step["details"]["checkMode"]) == ("Success", True, True)
    assert "-s" in step["details"]["commands"][0]
    assert installed_version("plumbtest-web") == "1.0-1"  # check mode changes nothing

    step, final = execute_cli(document, node.repo.env)
    assert (step["status"], step["exitCode"], step["changed"], final["status"]) == ("Success", 0, True, "Success")
    assert results(step)["plumbtest-web"] == {
        "name": "plumbtest-web", "version": "1.1-1", "state": "INSTALLED", "installedVersion": "1.1-1",
        "message": "upgraded from 1.0-1", "changed": True,
    }
    assert installed_version("plumbtest-web") == "1.1-1"  # not the normal suite's 1.2-1
    assert "apt-get install -y --only-upgrade" in step["stdout"]

    step, _ = execute(document)
    assert (step["status"], step["changed"], step["details"]["commands"]) == ("Success", False, [])
    assert results(step)["plumbtest-web"]["message"] == "already installed"


def test_block_never_installs_a_rejected_package_nor_removes_an_installed_one(node):
    node.repo.install_many({"plumbtest-app": "1.0-1", "plumbtest-kept": "1.0-1", "plumbtest-breaker": "1.0-1"})

    step, final = execute(patch_doc([("plumbtest-app", "2.0-1"), ("plumbtest-breaker", "2.0-1")],
                                    rejected=["plumbtest-dep", "plumbtest-kept"], rejectedPatchesAction="BLOCK"))

    assert installed_version("plumbtest-dep") is None         # not even as a dependency
    assert installed_version("plumbtest-kept") == "1.0-1"     # neither upgraded nor removed
    assert installed_version("plumbtest-app") == "1.0-1"
    assert installed_version("plumbtest-breaker") == "1.0-1"
    app, breaker = results(step)["plumbtest-app"], results(step)["plumbtest-breaker"]
    assert (app["state"], app["installedVersion"]) == ("FAILED", "1.0-1")
    assert "plumbtest-app : Depends: plumbtest-dep (>= 1.0) but it is not installable" in app["message"]
    assert "E: Unable to correct problems" in app["message"]
    assert breaker["message"] == ("E: Packages need to be removed but remove is disabled.; "
                                  "apt would remove: plumbtest-kept")
    assert (step["status"], step["exitCode"], step["changed"]) == ("Failed", 1, False)
    assert (final["status"], final["exitCode"]) == ("Failed", 1)
    assert "plumbtest-app 2.0-1: FAILED" in step["stderr"]
    assert len(step["details"]["commands"]) == 3               # the batch, then each alone
    assert all(any(a.startswith("Dir::Etc::Preferences=") for a in argv) for argv in step["details"]["commands"])


def test_allow_as_dependency_installs_the_rejected_dependency(node):
    node.repo.install("plumbtest-app", "1.0-1")

    step, _ = execute(patch_doc([("plumbtest-app", "2.0-1")], rejected=["plumbtest-dep"]))

    assert (step["status"], step["changed"]) == ("Success", True)
    assert results(step)["plumbtest-app"]["state"] == "INSTALLED"
    assert installed_version("plumbtest-app") == "2.0-1"
    assert installed_version("plumbtest-dep") == "1.0-1"
    assert not any(a.startswith("Dir::Etc::Preferences=") for a in step["details"]["commands"][0])


def test_one_failing_patch_shows_apts_message_while_the_others_install(node):
    node.repo.install_many({"plumbtest-web": "1.0-1", "plumbtest-app": "1.0-1"})

    step, final = execute(patch_doc([("plumbtest-web", "9.9-1"), ("plumbtest-app", "2.0-1")],
                                    rebootOption="NoReboot"))

    web, app = results(step)["plumbtest-web"], results(step)["plumbtest-app"]
    assert (web["state"], web["installedVersion"]) == ("FAILED", "1.0-1")
    assert web["message"] == "E: Version '9.9-1' for 'plumbtest-web' was not found"
    assert (app["state"], app["installedVersion"], app["changed"]) == ("INSTALLED", "2.0-1", True)
    assert installed_version("plumbtest-app") == "2.0-1"
    assert (step["status"], step["exitCode"], step["changed"], final["status"]) == ("Failed", 1, True, "Failed")
    assert "E: Version '9.9-1' for 'plumbtest-web' was not found" in step["stderr"]


@pytest.mark.parametrize("option, flag, rebooting", [
    ("RebootIfNeeded", True, True),
    ("NoReboot", True, False),
    ("RebootIfNeeded", False, False),
])
def test_reboot_follows_the_reboot_required_flag_and_the_option(node, option, flag, rebooting):
    node.repo.install("plumbtest-web", "1.0-1")
    if flag:
        node.flag.write_text("*** System restart required ***\n")

    step, final = execute(patch_doc([("plumbtest-web", "1.1-1")], rebootOption=option))

    assert step["status"] == "Success" and installed_version("plumbtest-web") == "1.1-1"
    assert (step["details"]["rebootRequired"], step["details"]["rebooting"]) == (flag, rebooting)
    assert node.rebooted.exists() is rebooting
    assert final["rebootRequested"] is False  # the action reboots itself; nothing for the controller to do


def test_block_pins_come_first_and_the_systems_preferences_still_apply(node, tmp_path):
    """Our pins win over a system pin for the same package; the system's other pins still count."""
    etc = node.repo.preferences_dir.parent
    (etc / "preferences").write_text("Package: plumbtest-dep\nPin: version *\nPin-Priority: 1001\n")
    (node.repo.preferences_dir / "site.pref").write_text("Package: plumbtest-web\nPin: version 1.1-1\n"
                                                         "Pin-Priority: 990\n")
    try:
        ours = patch._write_preferences(str(tmp_path), ["plumbtest-dep"], {}, "amd64")
        done = node.repo.run(["apt-cache", "-o", "Dir::Etc::Preferences=" + ours, "policy",
                              "plumbtest-dep", "plumbtest-web"])
    finally:
        (etc / "preferences").unlink()
        (node.repo.preferences_dir / "site.pref").unlink()
    dep, web = done.stdout.split("plumbtest-web:")
    assert "Candidate: (none)" in dep and "1.0-1 -1" in dep
    assert "Candidate: 1.1-1" in web
