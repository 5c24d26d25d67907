"""plumb:package: a package present (optionally at an exact or minimum version), latest, or absent.

Owns the built-in package action for apt and dnf. Observation (installed version, the
candidate the package manager would install) is a command plus a pure parser; `plan()` is
a pure function from wanted and observed state to one action and a reason, and
`commands()` turns it into argv lists (never a shell). After acting, the installed
version is observed again and checked against what was wanted.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional

from agent.actions import versions
from agent.actions.base import (ActionFailed, Context, InputError, StepResult, bool_input,
                                checked, require, result, run_argv, string_input)

ACTION = "plumb:package"
_INPUTS = ("name", "ensure", "version", "manager", "updateCache")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+:-]*$")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
_APT_INSTALL = ["apt-get", "install", "-y", "--no-install-recommends",
                "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]


@dataclass(frozen=True)
class Spec:
    name: str
    ensure: str                      # present | absent | latest
    constraint: Optional[versions.Constraint]
    manager: str                     # auto | apt | dnf
    update_cache: bool


@dataclass(frozen=True)
class Observed:
    installed: Optional[str]
    candidate: Optional[str]


@dataclass(frozen=True)
class Plan:
    action: Optional[str]            # None | install | upgrade | downgrade | remove
    version: Optional[str]           # exact version to pin, if any
    reason: str


def prepare(inputs: Mapping[str, Any], values: Any = None, params: Any = None) -> Spec:
    require(inputs, _INPUTS, required=("name",))
    name = string_input(inputs, "name") or ""
    if not _NAME.match(name):
        raise InputError("name: %r is not a valid package name" % name)
    ensure = string_input(inputs, "ensure", "present", ("present", "absent", "latest")) or ""
    raw_version = string_input(inputs, "version")
    if raw_version and ensure != "present":
        raise InputError("version: only valid with ensure: present")
    try:
        constraint = versions.parse_constraint(raw_version) if raw_version else None
    except ValueError as err:
        raise InputError(str(err))
    manager = string_input(inputs, "manager", "auto", ("auto", "apt", "dnf")) or "auto"
    return Spec(name, ensure, constraint, manager, bool_input(inputs, "updateCache", False))


# ---------------------------------------------------------------- pure core

def plan(spec: Spec, observed: Observed, compare: Callable[[str, str], int]) -> Plan:
    installed, candidate = observed.installed, observed.candidate
    if spec.ensure == "absent":
        if installed is None:
            return Plan(None, None, "package is not installed")
        return Plan("remove", None, "installed (%s), wanted absent" % installed)
    if spec.ensure == "latest":
        return _plan_latest(installed, candidate, compare)
    if spec.constraint is None:
        if installed is not None:
            return Plan(None, None, "installed (%s)" % installed)
        return Plan("install", None, "not installed")
    return _plan_constrained(spec.constraint, installed, candidate, compare)


def _plan_latest(installed: Optional[str], candidate: Optional[str],
                 compare: Callable[[str, str], int]) -> Plan:
    if installed is None:
        return Plan("install", None, "not installed")
    if candidate is None:
        return Plan(None, None, "installed (%s); no newer candidate known" % installed)
    if compare(installed, candidate) < 0:
        return Plan("upgrade", None, "installed %s, candidate %s" % (installed, candidate))
    return Plan(None, None, "installed %s is the latest candidate" % installed)


def _plan_constrained(constraint: versions.Constraint, installed: Optional[str],
                      candidate: Optional[str], compare: Callable[[str, str], int]) -> Plan:
    if installed is not None and constraint.satisfied_by(installed, compare):
        return Plan(None, None, "installed %s satisfies %s" % (installed, constraint))
    state = "installed %s" % installed if installed else "not installed"
    if constraint.op == "=":
        downgrade = installed is not None and compare(installed, constraint.version) > 0
        action = "downgrade" if downgrade else ("upgrade" if installed else "install")
        return Plan(action, constraint.version, "%s, wanted %s" % (state, constraint))
    if candidate is not None and not constraint.satisfied_by(candidate, compare):
        raise ActionFailed("%s, wanted %s, but the best candidate is %s"
                           % (state, constraint, candidate))
    return Plan("upgrade" if installed else "install", None,
                "%s, wanted %s" % (state, constraint))


def commands(manager: str, name: str, the_plan: Plan) -> List[List[str]]:
    if the_plan.action is None:
        return []
    build = _apt_commands if manager == "apt" else _dnf_commands
    return build(name, the_plan)


def _apt_commands(name: str, the_plan: Plan) -> List[List[str]]:
    if the_plan.action == "remove":
        return [["apt-get", "remove", "-y", name]]
    target = "%s=%s" % (name, the_plan.version) if the_plan.version else name
    extra = ["--allow-downgrades"] if the_plan.action == "downgrade" else []
    return [_APT_INSTALL + extra + [target]]


def _dnf_commands(name: str, the_plan: Plan) -> List[List[str]]:
    target = "%s-%s" % (name, the_plan.version) if the_plan.version else name
    verb = {"remove": "remove", "downgrade": "downgrade", "install": "install",
            "upgrade": "upgrade" if the_plan.version is None else "install"}[the_plan.action or ""]
    return [["dnf", verb, "-y", target]]


def parse_dpkg_query(output: str) -> Optional[str]:
    """`dpkg-query -W -f '${Status}\\t${Version}'` output → installed version or None."""
    for line in output.splitlines():
        status, _, version = line.partition("\t")
        if status.split()[-1:] == ["installed"] and version:
            return version.strip()
    return None


def parse_apt_policy(output: str) -> Optional[str]:
    match = re.search(r"^\s*Candidate:\s*(\S+)", output, re.M)
    return None if not match or match.group(1) == "(none)" else match.group(1)


def parse_rpm_query(output: str) -> Optional[str]:
    """`rpm -q --qf '%{EPOCH}:%{VERSION}-%{RELEASE}\\n'` → highest installed EVR or None."""
    found = [_drop_zero_epoch(line.strip()) for line in output.splitlines()
             if line.strip() and "not installed" not in line]
    if not found:
        return None
    best = found[0]
    for evr in found[1:]:
        best = evr if versions.compare_rpm(evr, best) > 0 else best
    return best


def _drop_zero_epoch(evr: str) -> str:
    for prefix in ("(none):", "0:"):
        if evr.startswith(prefix):
            return evr[len(prefix):]
    return evr


# ---------------------------------------------------------------- I/O shell

def detect_manager(wanted: str) -> str:
    if wanted != "auto":
        if not shutil.which("apt-get" if wanted == "apt" else "dnf"):
            raise ActionFailed("manager %s requested but not found on this node" % wanted)
        return wanted
    for manager, program in (("apt", "apt-get"), ("dnf", "dnf")):
        if shutil.which(program):
            return manager
    raise ActionFailed("no supported package manager found (apt-get or dnf)")


def observe(manager: str, name: str) -> Observed:
    if manager == "apt":
        done = run_argv(["dpkg-query", "-W", "-f=${Status}\t${Version}\n", name])
        installed = parse_dpkg_query(done.stdout) if done.returncode == 0 else None
        candidate = parse_apt_policy(run_argv(["apt-cache", "policy", name]).stdout)
        return Observed(installed, candidate)
    done = run_argv(["rpm", "-q", "--qf", "%{EPOCH}:%{VERSION}-%{RELEASE}\n", name])
    installed = parse_rpm_query(done.stdout) if done.returncode == 0 else None
    query = run_argv(["dnf", "-q", "repoquery", "--latest-limit=1",
                      "--qf", "%{epoch}:%{version}-%{release}", name])
    lines = [x for x in query.stdout.splitlines() if x.strip()]
    return Observed(installed, _drop_zero_epoch(lines[-1].strip()) if lines else None)


def run(spec: Spec, ctx: Context) -> StepResult:
    manager = detect_manager(spec.manager)
    compare = versions.compare_deb if manager == "apt" else versions.compare_rpm
    env = APT_ENV if manager == "apt" else {}
    if spec.update_cache and not ctx.check:
        checked(["apt-get", "update"] if manager == "apt" else ["dnf", "makecache"], env)
    observed = observe(manager, spec.name)
    the_plan = plan(spec, observed, compare)
    argvs = commands(manager, spec.name, the_plan)
    details: Dict[str, Any] = {"name": spec.name, "manager": manager,
                               "installed": observed.installed, "candidate": observed.candidate,
                               "action": the_plan.action, "reason": the_plan.reason,
                               "commands": argvs}
    if the_plan.action is None:
        return result(False, "%s: no change (%s)" % (spec.name, the_plan.reason), details,
                      ctx.check)
    if not ctx.check:
        for argv in argvs:
            checked(argv, env)
        details["installedAfter"] = _verify(spec, manager, compare)
    verb = "would %s" % the_plan.action if ctx.check else the_plan.action
    return result(True, "%s: %s (%s)" % (spec.name, verb, the_plan.reason), details, ctx.check)


def _verify(spec: Spec, manager: str, compare: Callable[[str, str], int]) -> Optional[str]:
    after = observe(manager, spec.name).installed
    if spec.ensure == "absent":
        if after is not None:
            raise ActionFailed("%s is still installed (%s) after removal" % (spec.name, after))
    elif after is None:
        raise ActionFailed("%s is not installed after installation" % spec.name)
    elif spec.constraint is not None and not spec.constraint.satisfied_by(after, compare):
        raise ActionFailed("%s %s is installed, which does not satisfy %s"
                           % (spec.name, after, spec.constraint))
    return after
