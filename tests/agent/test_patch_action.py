"""plumb:patch: input validation, the pure parts (apt preferences, error texts, parsers), and the
dnf implementation against stand-in `dnf`, `rpm` and `needs-restarting` programs put alone on
PATH (there is no real dnf here). The stand-ins keep the node's packages in a JSON file, log
their argv, and print output written by hand in dnf 4's format. Real apt runs are in
test_patch_action_apt.py.
"""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from agent import executor
from agent.actions import patch
from agent.actions.base import Completed, InputError


@pytest.fixture(autouse=True)
def never_reboot(tmp_path, monkeypatch):
    """Whatever a test does, the reboot command only touches a file and no flag file is read."""
    monkeypatch.setenv(patch.REBOOT_COMMAND_ENV, "%s %s" % (shutil.which("touch"), tmp_path / "rebooted"))
    monkeypatch.setenv(patch.REBOOT_FLAG_ENV, str(tmp_path / "no-such-flag"))


# ---------------------------------------------------------------- inputs


def prepare(**inputs):
    return patch.prepare(dict({"operation": "Install"}, **inputs))


def test_defaults_and_the_spec():
    spec = prepare(packages=[{"name": "openssl", "version": "3.0.2-0ubuntu1.18"}], rejected=["telnet"])
    assert spec == patch.Spec((patch.Patch("openssl", "3.0.2-0ubuntu1.18"),), ("telnet",),
                              "ALLOW_AS_DEPENDENCY", "RebootIfNeeded")
    assert prepare().patches == ()


@pytest.mark.parametrize("inputs, message", [
    ({"operation": None}, "missing required input(s) operation"),
    ({"operation": "Scan"}, "Scan is not an action: plumb:AvailableUpdate inventory is the scan"),
    ({"operation": "install"}, "operation: expected one of Install, got 'install'"),
    ({"packages": "openssl"}, "packages: expected a list of {name, version}, got str"),
    ({"packages": ["openssl"]}, "packages[0]: expected {name, version}, got str"),
    ({"packages": [{"name": "openssl"}]}, "packages[0].version: None is not a valid package version"),
    ({"packages": [{"name": "-o=evil", "version": "1"}]}, "packages[0].name: '-o=evil' is not a valid package name"),
    ({"packages": [{"name": "a", "version": "1; reboot"}]}, "packages[0].version: '1; reboot' is not a valid"),
    ({"packages": [{"name": "a", "version": "1", "arch": "x"}]}, "packages[0]: unknown key(s) arch"),
    ({"packages": [{"name": "a", "version": "1"}, {"name": "a", "version": "2"}]}, "packages[1]: a is listed twice"),
    ({"rejected": "telnet"}, "rejected: expected a list of package names"),
    ({"rejected": ["kernel*-*"]}, "'kernel*-*' is not a package name (bare names; on dnf at most one *)"),
    ({"rejected": ["-x"]}, "'-x' is not a package name"),
    ({"packages": [{"name": "telnet", "version": "1"}], "rejected": ["telnet"]}, "telnet is also rejected (telnet)"),
    ({"packages": [{"name": "kernel-core", "version": "1"}], "rejected": ["kernel*"]}, "kernel-core is also rejected"),
    ({"rejectedPatchesAction": "block"}, "rejectedPatchesAction: expected one of ALLOW_AS_DEPENDENCY, BLOCK"),
    ({"rebootOption": "Always"}, "rebootOption: expected one of RebootIfNeeded, NoReboot"),
    ({"force": True}, "unknown input(s) force"),
])
def test_invalid_inputs_are_refused_with_a_clear_error(inputs, message):
    with pytest.raises(InputError) as caught:
        patch.prepare(dict({"operation": "Install"}, **inputs))
    assert message in str(caught.value)


def test_invalid_inputs_fail_the_document_before_anything_runs():
    events = []
    executor.execute({"document": {"schemaVersion": "2.2", "mainSteps": [
        {"action": "plumb:patch", "name": "p", "inputs": {"operation": "Install", "rejectedPatchesAction": "X"}}]}},
        events.append)
    assert [e["event"] for e in events] == ["invocation_finished"]
    assert events[0]["statusDetails"] == "InvalidDocument"
    assert "mainSteps[0] 'p' (plumb:patch): rejectedPatchesAction" in events[0]["message"]


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get not installed")
def test_apt_refuses_wildcards_in_rejected_names():
    events = []
    executor.execute({"document": {"schemaVersion": "2.2", "mainSteps": [
        {"action": "plumb:patch", "name": "p", "inputs": {"operation": "Install", "rejected": ["linux-*"]}}]}},
        events.append)
    step = next(e for e in events if e["event"] == "step_finished")
    assert step["status"] == "Failed"
    assert "apt takes bare package names, without wildcards: linux-*" in step["stderr"]


# ---------------------------------------------------------------- pure parts

def test_preferences_keep_the_installed_version_and_block_every_other():
    text = patch.apt_preferences(["telnet", "libfoo"], {("libfoo", "i386"): "1.0-1", ("libfoo", "amd64"): "1.0-1",
                                                        ("bash", "amd64"): "5.1"}, "amd64")
    records = [dict(line.split(": ", 1) for line in record.splitlines()) for record in text.split("\n\n")]
    assert [(r["Package"], r["Pin"], r["Pin-Priority"]) for r in records] == [
        ("telnet:any", "version *", "-1"),
        ("libfoo", "version 1.0-1", "100"),
        ("libfoo:i386", "version 1.0-1", "100"),
        ("libfoo:any", "version *", "-1"),
    ]


APT_UNMET = Completed(["apt-get"], 100, (
    "Reading package lists...\nBuilding dependency tree...\n"
    "Some packages could not be installed. This may mean that you have\n"
    "The following information may help to resolve the situation:\n\n"
    "The following packages have unmet dependencies:\n"
    " web : Depends: lib (>= 2) but it is not installable\n"
    "       Depends: other but it is not going to be installed\n"
    " app : Depends: lib (>= 2) but it is not installable\n"),
    "E: Unable to correct problems, you have held broken packages.\n")


def test_apt_error_is_apts_own_text():
    assert patch.apt_error(APT_UNMET) == (
        "web : Depends: lib (>= 2) but it is not installable; Depends: other but it is not going to be installed; "
        "app : Depends: lib (>= 2) but it is not installable; "
        "E: Unable to correct problems, you have held broken packages."
    )
    assert patch.apt_error(Completed(["apt-get"], 100, "", "E: Version '9' for 'web' was not found\n")) == (
        "E: Version '9' for 'web' was not found"
    )
    assert patch.apt_error(Completed(["apt-get"], 1, "", "Segmentation fault\n")) == (
        "apt-get exited 1; Segmentation fault"
    )


def test_error_text_is_trimmed():
    long = Completed(["apt-get"], 100, "", "".join("E: problem number %d\n" % i for i in range(100)))
    message = patch.apt_error(long)
    assert len(message) == patch.MESSAGE_LIMIT and message.endswith("...")


def test_dnf_error_is_dnfs_own_text():
    done = Completed(["dnf"], 1, "Last metadata expiration check: 0:01:02 ago on Mon 01 Jul 2024.\n", (
        "Error: \n Problem: cannot install the best update candidate for package app-1.0-1.el9.noarch\n"
        "  - nothing provides dep needed by app-2.0-1.el9.noarch\n"
        "(try to add '--skip-broken' to skip uninstallable packages)\n"))
    assert patch.dnf_error(done) == (
        "Problem: cannot install the best update candidate for package app-1.0-1.el9.noarch; "
        "- nothing provides dep needed by app-2.0-1.el9.noarch; "
        "(try to add '--skip-broken' to skip uninstallable packages)"
    )


def test_installed_versions_by_name_and_architecture():
    installed = patch.parse_dpkg("libc6\tamd64\tinstall ok installed\t2.36-9\n"
                                 "libc6\ti386\thold ok installed\t2.36-8\n"
                                 "gone\tamd64\tdeinstall ok config-files\t1.0\n")
    assert installed == {("libc6", "amd64"): "2.36-9", ("libc6", "i386"): "2.36-8"}
    find = lambda name: patch.installed_version(installed, name, "amd64", patch.versions.compare_deb)  # noqa: E731
    assert (find("libc6"), find("libc6:i386"), find("gone"), find("libc6:arm64")) == ("2.36-9", "2.36-8", None, None)


def test_rpm_query_keeps_the_newest_of_each_package_and_drops_epoch_zero():
    installed = patch.parse_rpm("kernel\tx86_64\t0:5.14.0-362.el9\nkernel\tx86_64\t0:5.14.0-427.el9\n"
                                "openssl\tx86_64\t1:3.0.7-27.el9\npackage telnet is not installed\n")
    assert installed == {("kernel", "x86_64"): "5.14.0-427.el9", ("openssl", "x86_64"): "1:3.0.7-27.el9"}
    find = lambda name: patch.installed_version(installed, name, "x86_64", patch.versions.compare_rpm)  # noqa: E731
    assert (find("kernel"), find("openssl.x86_64"), find("telnet")) == ("5.14.0-427.el9", "1:3.0.7-27.el9", None)


def test_reboot_command_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(patch.REBOOT_COMMAND_ENV, "systemctl reboot --message 'plumb patches'")
    assert patch.reboot_command() == ["systemctl", "reboot", "--message", "plumb patches"]
    monkeypatch.delenv(patch.REBOOT_COMMAND_ENV)
    assert patch.reboot_command() == ["shutdown", "-r", "+1", "plumb: patches installed"]


# ---------------------------------------------------------------- dnf, with stand-ins

STANDIN = r'''#!{python}
"""Stand-in for `{prog}` (plumb tests): state in $FAKE_DNF_STATE, argv logged to $FAKE_DNF_STATE.log."""
import fnmatch, json, os, sys

path = os.environ["FAKE_DNF_STATE"]
state = json.load(open(path))
with open(path + ".log", "a") as log:
    log.write(json.dumps(["{prog}"] + sys.argv[1:]) + "\n")
prog = "{prog}"

if prog == "needs-restarting":
    print("Reboot is required to fully utilize these updates." if state.get("reboot") else "No core libraries "
          "or services have been updated since boot-up.\nReboot should not be necessary.")
    sys.exit(1 if state.get("reboot") else 0)

if prog == "rpm":
    names = [a for a in sys.argv[1:] if not a.startswith("-") and "%{{" not in a]
    missing = 0
    for name in names:
        if name in state["installed"]:
            print("%s\tnoarch\t%s" % (name, state["installed"][name] if ":" in state["installed"][name]
                                       else "0:" + state["installed"][name]))
        else:
            print("package %s is not installed" % name)
            missing += 1
    sys.exit(1 if missing else 0)

# dnf -y upgrade [--exclude=pattern ...] name-[epoch:]version-release ...
args = sys.argv[1:]
assert args[:2] == ["-y", "upgrade"], args
excludes = [a.split("=", 1)[1] for a in args[2:] if a.startswith("--exclude=")]
specs = [a for a in args[2:] if not a.startswith("--")]
print("Last metadata expiration check: 0:12:01 ago on Mon 01 Jul 2024 10:00:00 AM UTC.")
plan, problems, unmatched = {{}}, [], []
for spec in specs:
    found = [(n, v) for n, versions in state["repo"].items() for v in versions if spec == n + "-" + v
             and not any(fnmatch.fnmatchcase(n, x) for x in excludes)]
    if not found:
        unmatched.append(spec)
        continue
    name, version = found[0]
    plan[name] = version
    for dep in state.get("requires", {{}}).get(spec, []):
        if dep in state["installed"]:
            continue
        if any(fnmatch.fnmatchcase(dep, x) for x in excludes):
            problems.append(" Problem: cannot install the best update candidate for package %s-%s.noarch\n"
                            "  - package %s.noarch requires %s, but none of the providers can be installed\n"
                            "  - %s is filtered out by exclude filtering" % (name, state["installed"].get(name), spec,
                                                                              dep, dep))
        else:
            plan[dep] = state["repo"][dep][-1]
for spec in unmatched:
    print("No match for argument: %s" % spec)
if unmatched:
    sys.stderr.write("Error: Unable to find a match: %s\n" % " ".join(unmatched))
    sys.exit(1)
if problems:
    sys.stderr.write("Error: \n" + "\n".join(problems) + "\n(try to add '--skip-broken' to skip uninstallable "
                     "packages or '--nobest' to use not only best candidate packages)\n")
    sys.exit(1)
print("Dependencies resolved.")
for name, version in sorted(plan.items()):
    print("  %s-%s.noarch" % (name, version))
    state["installed"][name] = version
json.dump(state, open(path, "w"))
print("Complete!")
'''


@pytest.fixture
def dnf_node(tmp_path, monkeypatch):
    """A dnf node: stand-in dnf and rpm alone on PATH (no apt-get), state in a JSON file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for prog in ("dnf", "rpm"):
        script = bindir / prog
        script.write_text(STANDIN.format(python=sys.executable, prog=prog))
        script.chmod(0o755)
    state_file = tmp_path / "dnf.json"
    rebooted = tmp_path / "rebooted"  # never_reboot's command touches it
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setenv("FAKE_DNF_STATE", str(state_file))

    class Node:
        def set(self, installed, repo, requires=None, reboot=None):
            state_file.write_text(json.dumps({"installed": installed, "repo": repo, "requires": requires or {}}))
            if reboot is not None:  # needs-restarting exists and says so
                script = bindir / "needs-restarting"
                script.write_text(STANDIN.format(python=sys.executable, prog="needs-restarting"))
                script.chmod(0o755)
                data = json.loads(state_file.read_text())
                state_file.write_text(json.dumps(dict(data, reboot=reboot)))

        def installed(self):
            return json.loads(state_file.read_text())["installed"]

        def calls(self, prog="dnf"):
            log = tmp_path / "dnf.json.log"
            calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
            return [c[1:] for c in calls if c[0] == prog]

        def rebooted(self):
            return rebooted.exists()

    return Node()


def run_patch(packages, check=False, **inputs):
    inputs = dict({"operation": "Install", "packages": [{"name": n, "version": v} for n, v in packages]}, **inputs)
    events = []
    executor.execute({"document": {"schemaVersion": "2.2", "mainSteps": [
        {"action": "plumb:patch", "name": "patch", "inputs": inputs}]}, "check": check}, events.append)
    step = next(e for e in events if e["event"] == "step_finished")
    return step, {p["name"]: p for p in step["details"]["patches"]}


REPO = {"openssl": ["1:3.0.7-24.el9", "1:3.0.7-27.el9"], "tzdata": ["2024a-1.el9", "2024b-2.el9"],
        "app": ["1.0-1.el9", "2.0-1.el9"], "dep": ["1.0-1.el9"]}


def test_dnf_installs_all_patches_in_one_upgrade(dnf_node):
    dnf_node.set({"openssl": "1:3.0.7-24.el9", "tzdata": "2024a-1.el9"}, REPO)

    step, patches = run_patch([("openssl", "1:3.0.7-27.el9"), ("tzdata", "2024b-2.el9")], rebootOption="NoReboot")

    assert dnf_node.calls() == [["-y", "upgrade", "openssl-1:3.0.7-27.el9", "tzdata-2024b-2.el9"]]
    assert (step["status"], step["changed"], step["details"]["manager"]) == ("Success", True, "dnf")
    assert patches["openssl"] == {"name": "openssl", "version": "1:3.0.7-27.el9", "state": "INSTALLED",
                                  "installedVersion": "1:3.0.7-27.el9", "message": "upgraded from 1:3.0.7-24.el9",
                                  "changed": True}
    assert dnf_node.installed()["tzdata"] == "2024b-2.el9"


def test_dnf_block_excludes_rejected_patterns_and_retries_each_patch_alone(dnf_node):
    dnf_node.set({"openssl": "1:3.0.7-24.el9", "app": "1.0-1.el9"}, REPO, requires={"app-2.0-1.el9": ["dep"]})

    step, patches = run_patch([("app", "2.0-1.el9"), ("openssl", "1:3.0.7-27.el9")], rejected=["de*"],
                              rejectedPatchesAction="BLOCK", rebootOption="NoReboot")

    assert dnf_node.calls() == [
        ["-y", "upgrade", "--exclude=de*", "app-2.0-1.el9", "openssl-1:3.0.7-27.el9"],
        ["-y", "upgrade", "--exclude=de*", "app-2.0-1.el9"],
        ["-y", "upgrade", "--exclude=de*", "openssl-1:3.0.7-27.el9"],
    ]
    assert "dep" not in dnf_node.installed()
    assert (patches["app"]["state"], patches["app"]["installedVersion"]) == ("FAILED", "1.0-1.el9")
    assert "package app-2.0-1.el9.noarch requires dep, but none of the providers can be installed" in (
        patches["app"]["message"])
    assert "dep is filtered out by exclude filtering" in patches["app"]["message"]
    assert patches["openssl"]["state"] == "INSTALLED"
    assert (step["status"], step["exitCode"], step["changed"]) == ("Failed", 1, True)


def test_dnf_allow_as_dependency_installs_the_rejected_dependency(dnf_node):
    dnf_node.set({"app": "1.0-1.el9"}, REPO, requires={"app-2.0-1.el9": ["dep"]})

    step, patches = run_patch([("app", "2.0-1.el9")], rejected=["dep"], rebootOption="NoReboot")

    assert dnf_node.calls() == [["-y", "upgrade", "app-2.0-1.el9"]]
    assert patches["app"]["state"] == "INSTALLED" and dnf_node.installed()["dep"] == "1.0-1.el9"


def test_dnf_unknown_version_fails_with_dnfs_message(dnf_node):
    dnf_node.set({"tzdata": "2024a-1.el9"}, REPO)

    step, patches = run_patch([("tzdata", "2099a-1.el9")], rebootOption="NoReboot")

    assert patches["tzdata"]["state"] == "FAILED"
    assert patches["tzdata"]["message"] == ("Error: Unable to find a match: tzdata-2099a-1.el9; "
                                            "No match for argument: tzdata-2099a-1.el9")
    assert step["status"] == "Failed"


def test_dnf_already_installed_newer_and_not_installed(dnf_node):
    dnf_node.set({"openssl": "1:3.0.7-27.el9", "tzdata": "2024b-2.el9"}, REPO)

    step, patches = run_patch([("openssl", "1:3.0.7-27.el9"), ("tzdata", "2024a-1.el9"), ("app", "2.0-1.el9")],
                              rebootOption="NoReboot")

    assert dnf_node.calls() == []
    assert (patches["openssl"]["state"], patches["openssl"]["message"]) == ("INSTALLED", "already installed")
    assert patches["tzdata"]["message"] == "installed version 2024b-2.el9 is newer than 2024a-1.el9 (never downgraded)"
    assert (patches["app"]["state"], patches["app"]["message"]) == (
        "FAILED", "not installed: patches only upgrade installed packages")
    assert (step["status"], step["changed"]) == ("Failed", False)


def test_dnf_check_mode_runs_nothing(dnf_node):
    dnf_node.set({"openssl": "1:3.0.7-24.el9"}, REPO)

    step, patches = run_patch([("openssl", "1:3.0.7-27.el9")], check=True)

    assert dnf_node.calls() == [] and not dnf_node.rebooted()
    assert patches["openssl"]["state"] == "WOULD_INSTALL"
    assert (step["status"], step["changed"], step["details"]["checkMode"]) == ("Success", True, True)


@pytest.mark.parametrize("needs_restarting, option, rebooting", [
    (True, "RebootIfNeeded", True),
    (False, "RebootIfNeeded", False),
    (True, "NoReboot", False),
    (None, "RebootIfNeeded", True),     # no needs-restarting: something was installed, so reboot (as SSM)
])
def test_dnf_reboot_follows_needs_restarting(dnf_node, needs_restarting, option, rebooting):
    dnf_node.set({"openssl": "1:3.0.7-24.el9"}, REPO, reboot=needs_restarting)

    step, _ = run_patch([("openssl", "1:3.0.7-27.el9")], rebootOption=option)

    assert step["status"] == "Success"
    assert step["details"]["rebootRequired"] is (needs_restarting is not False)
    assert (step["details"]["rebooting"], dnf_node.rebooted()) == (rebooting, rebooting)
    assert dnf_node.calls("needs-restarting") == ([["-r"]] if needs_restarting is not None else [])


@pytest.mark.parametrize("command, error", [
    ("/bin/false --now", "reboot command /bin/false --now exited 1"),
    ("no-such-reboot-program", "reboot command no-such-reboot-program failed: command not found"),
])
def test_failing_reboot_command_fails_the_step_and_keeps_the_results(dnf_node, monkeypatch, command, error):
    dnf_node.set({"openssl": "1:3.0.7-24.el9"}, REPO)
    monkeypatch.setenv(patch.REBOOT_COMMAND_ENV, command)

    step, patches = run_patch([("openssl", "1:3.0.7-27.el9")])

    assert patches["openssl"]["state"] == "INSTALLED"
    assert (step["status"], step["details"]["rebooting"]) == ("Failed", False)
    assert error in step["stderr"] and error in step["details"]["error"]
