"""plumb:package: pure version ordering, the plan table, parsers, and real dpkg observation.

Installing real packages is left to the suite that builds a local apt repository; here the
real dpkg is used to cross-check the Debian ordering and to observe installed packages.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from agent.actions import package, versions
from agent.actions.base import ActionFailed, InputError
from executor_support import action_doc

CASES = Path(__file__).parent / "cases"
VERSIONS = yaml.safe_load((CASES / "versions.yaml").read_text())
PLANS = yaml.safe_load((CASES / "package_plans.yaml").read_text())
SIGN = {"<": -1, "=": 0, ">": 1}
DPKG_OP = {"<": "lt", "=": "eq", ">": "gt"}


@pytest.mark.parametrize("a,op,b", VERSIONS["deb"], ids=lambda x: str(x))
def test_debian_ordering(a, op, b):
    assert versions.compare_deb(a, b) == SIGN[op]
    assert versions.compare_deb(b, a) == -SIGN[op]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg not installed")
@pytest.mark.parametrize("a,op,b", VERSIONS["deb"], ids=lambda x: str(x))
def test_debian_table_agrees_with_real_dpkg(a, op, b):
    done = subprocess.run(["dpkg", "--compare-versions", a, DPKG_OP[op], b], capture_output=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("a,op,b", VERSIONS["rpm"], ids=lambda x: str(x))
def test_rpm_ordering(a, op, b):
    assert versions.compare_rpm(a, b) == SIGN[op]
    assert versions.compare_rpm(b, a) == -SIGN[op]


@pytest.mark.parametrize("text,op,version", [
    ("1.2-3", "=", "1.2-3"), ("=1.2-3", "=", "1.2-3"), (">=1.22", ">=", "1.22"),
    (" >= 1:2.0~rc1 ", ">=", "1:2.0~rc1"),
])
def test_constraints_parse(text, op, version):
    assert versions.parse_constraint(text) == versions.Constraint(op, version)


@pytest.mark.parametrize("text", ["<1.0", ">1.0", "1.0 2.0", "", "==1"])
def test_unsupported_constraints_are_refused(text):
    with pytest.raises(ValueError):
        versions.parse_constraint(text)


@pytest.mark.parametrize("case", PLANS, ids=lambda c: c["name"])
def test_plan(case):
    spec = package.prepare(case["inputs"])
    observed = package.Observed(**case["observed"])
    compare = versions.compare_deb if case["manager"] == "apt" else versions.compare_rpm
    if "error" in case:
        with pytest.raises(ActionFailed, match=case["error"].replace("+", r"\+")):
            package.plan(spec, observed, compare)
        return
    the_plan = package.plan(spec, observed, compare)
    assert the_plan.action == case["action"]
    if "reason" in case:
        assert the_plan.reason == case["reason"]
    assert package.commands(case["manager"], spec.name, the_plan) == case["commands"]


@pytest.mark.parametrize("inputs,message", [
    ({"name": "-o=evil"}, "not a valid package name"),
    ({"name": "nginx; id"}, "not a valid package name"),
    ({"name": "nginx", "ensure": "installed"}, "ensure: expected one of present, absent, latest"),
    ({"name": "nginx", "version": "<2"}, "expected an exact version"),
    ({"name": "nginx", "manager": "yum"}, "manager: expected one of auto, apt, dnf"),
    ({"name": "nginx", "pinned": True}, "unknown input(s) pinned"),
])
def test_invalid_inputs_are_refused(inputs, message):
    with pytest.raises(InputError) as err:
        package.prepare(inputs)
    assert message in str(err.value)


def test_parsers_on_captured_output():
    assert package.parse_dpkg_query("install ok installed\t1.18.0-6ubuntu14.4\n") == \
        "1.18.0-6ubuntu14.4"
    assert package.parse_dpkg_query("deinstall ok config-files\t1.18.0-6\n") is None
    policy = ("nginx:\n  Installed: (none)\n  Candidate: 1.18.0-6ubuntu14.4\n"
              "  Version table:\n     1.18.0-6ubuntu14.4 500\n")
    assert package.parse_apt_policy(policy) == "1.18.0-6ubuntu14.4"
    assert package.parse_apt_policy("nginx:\n  Installed: (none)\n  Candidate: (none)\n") is None
    assert package.parse_apt_policy("") is None
    kernels = "(none):5.14.0-362.8.1.el9_3\n(none):5.14.0-427.13.1.el9_4\n"
    assert package.parse_rpm_query(kernels) == "5.14.0-427.13.1.el9_4"
    assert package.parse_rpm_query("1:0.17-85.el9\n") == "1:0.17-85.el9"
    assert package.parse_rpm_query("package telnet is not installed\n") is None


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="no dpkg here")


@needs_dpkg
def test_real_dpkg_observation():
    assert package.observe("apt", "dpkg").installed is not None
    assert package.observe("apt", "plumbtest-no-such-package").installed is None


@needs_dpkg
def test_check_mode_reports_without_touching_packages(run_request):
    present = run_request(action_doc("plumb:package", name="dpkg"), check=True).finished("act")
    assert present["status"] == "Success" and present["changed"] is False
    assert present["details"]["reason"].startswith("installed (")
    absent = run_request(action_doc("plumb:package", name="plumbtest-no-such-package",
                                     ensure="absent")).finished("act")
    assert absent["changed"] is False and absent["details"]["reason"] == "package is not installed"
    wanted = run_request(action_doc("plumb:package", name="plumbtest-no-such-package"),
                         check=True).finished("act")
    assert wanted["changed"] is True and wanted["details"]["action"] == "install"
    assert wanted["stdout"].startswith("plumbtest-no-such-package: would install")
