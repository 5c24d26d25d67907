"""plumb:patch: install approved patches at their exact approved versions (Patch Manager's Install).

Owns the built-in patch action for apt and dnf. Inputs: `operation` (`Install`; scanning is
inventory's job, plumb:AvailableUpdate), `packages` (`[{name, version}]`, the approved
patches), `rejected` (package names; dnf names may hold one `*`), `rejectedPatchesAction`
(`ALLOW_AS_DEPENDENCY` default, or `BLOCK`) and `rebootOption` (`RebootIfNeeded` default,
or `NoReboot`). It never refreshes package lists (`apt-get update`, `dnf makecache`): the
controller decides when they are refreshed.

apt: every pending patch in one `apt-get install --only-upgrade --no-remove name=version ...`
(noninteractive, keeping changed config files). BLOCK gives every rejected package
`Pin-Priority: -1` for every version except the installed one, in a preferences file in a
private temporary directory passed as `Dir::Etc::Preferences`: apt reads that file before
`Dir::Etc::PreferencesParts` and the first specific pin matching a version decides, so the
pins win over the system's, whose own preferences file is copied after them and whose
preferences.d still applies. A rejected package is then never installed, not even as a
dependency, and `--no-remove` keeps an installed one (plumb never removes packages).
dnf: `dnf -y upgrade name-version ...`, BLOCK as `--exclude=<pattern>` per rejected name.

When the batch fails, each patch still missing is retried alone, so each gets its own
result: INSTALLED (now at the approved version, or already at it or newer: unchanged) or
FAILED with the package manager's own error text. Check mode changes nothing: apt
simulates (`apt-get -s`), dnf is not run; pending patches are WOULD_INSTALL.

Reboot: after installing, a reboot is required when the node says so, as the inventory's
AWS:InstanceInformation reads it: the Debian flag file (`PLUMB_REBOOT_REQUIRED_FILE`,
default /var/run/reboot-required), `needs-restarting -r` on dnf nodes, and where neither
can tell, whether anything was installed. With `RebootIfNeeded` the action then runs
`PLUMB_REBOOT_COMMAND` (split as a shell would, no shell) or `shutdown -r +1 ...`, which
leaves the agent time to report; the step says `rebooting: true`.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from agent.actions import versions
from agent.actions.base import (ActionFailed, Completed, Context, InputError, Status, StepResult,
                                require, run_argv, string_input)
from agent.collectors import instance

ACTION = "plumb:patch"
_INPUTS = ("operation", "packages", "rejected", "rejectedPatchesAction", "rebootOption")
OPERATIONS = ("Install",)
REJECTED_ACTIONS = ("ALLOW_AS_DEPENDENCY", "BLOCK")
REBOOT_OPTIONS = ("RebootIfNeeded", "NoReboot")
INSTALLED, FAILED, WOULD_INSTALL = "INSTALLED", "FAILED", "WOULD_INSTALL"

# name, optionally :arch (apt) — never starting with "-", so never an option
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*(:[A-Za-z0-9_-]+)?$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+~:_^-]*$")          # Debian and RPM [epoch:]version
_REJECTED = re.compile(r"^[A-Za-z0-9_.+*-]+$")
MESSAGE_LIMIT = 500
DPKG_FORMAT = "${Package}\t${Architecture}\t${Status}\t${Version}\n"
RPM_FORMAT = "%{NAME}\t%{ARCH}\t%{EPOCH}:%{VERSION}-%{RELEASE}\n"

REBOOT_FLAG_ENV = "PLUMB_REBOOT_REQUIRED_FILE"
REBOOT_COMMAND_ENV = "PLUMB_REBOOT_COMMAND"
DEFAULT_REBOOT_COMMAND = ["shutdown", "-r", "+1", "plumb: patches installed"]

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
_APT_INSTALL = ["apt-get", "install", "-y", "--only-upgrade", "--no-install-recommends",
                "--no-remove", "-o", "Dpkg::Options::=--force-confdef",
                "-o", "Dpkg::Options::=--force-confold"]


@dataclass(frozen=True)
class Patch:
    name: str
    version: str


@dataclass(frozen=True)
class Spec:
    patches: Tuple[Patch, ...]
    rejected: Tuple[str, ...]
    rejected_action: str             # ALLOW_AS_DEPENDENCY | BLOCK
    reboot_option: str               # RebootIfNeeded | NoReboot

    @property
    def block(self) -> bool:
        return self.rejected_action == "BLOCK"


@dataclass
class Outcome:
    """One patch's result: the `patches[]` entry of the step's details."""

    name: str
    version: str
    state: str = ""
    installed_version: Optional[str] = None
    message: str = ""
    changed: bool = False

    def as_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "version": self.version, "state": self.state,
                "installedVersion": self.installed_version, "message": self.message,
                "changed": self.changed}


# ---------------------------------------------------------------- inputs

def prepare(inputs: Mapping[str, Any], values: Any = None, params: Any = None) -> Spec:
    require(inputs, _INPUTS, required=("operation",))
    operation = inputs.get("operation")
    if operation == "Scan":
        raise InputError("operation: Scan is not an action: plumb:AvailableUpdate inventory "
                         "is the scan; plumb:patch only installs (operation: Install)")
    string_input(inputs, "operation", None, OPERATIONS)
    patches = _patches(inputs.get("packages", []))
    rejected = _rejected(inputs.get("rejected", []))
    for patch in patches:
        bare = patch.name.split(":", 1)[0]
        clash = next((r for r in rejected if fnmatch.fnmatchcase(bare, r)), None)
        if clash is not None:
            raise InputError("packages: %s is also rejected (%s); a patch both approved and "
                             "rejected is rejected, leave it out of packages"
                             % (patch.name, clash))
    action = string_input(inputs, "rejectedPatchesAction", "ALLOW_AS_DEPENDENCY", REJECTED_ACTIONS)
    reboot = string_input(inputs, "rebootOption", "RebootIfNeeded", REBOOT_OPTIONS)
    return Spec(patches, rejected, action or "ALLOW_AS_DEPENDENCY", reboot or "RebootIfNeeded")


def _patches(value: Any) -> Tuple[Patch, ...]:
    if not isinstance(value, list):
        raise InputError("packages: expected a list of {name, version}, got %s"
                         % type(value).__name__)
    found: List[Patch] = []
    for index, item in enumerate(value):
        where = "packages[%d]" % index
        if not isinstance(item, dict):
            raise InputError("%s: expected {name, version}, got %s" % (where, type(item).__name__))
        extra = sorted(set(item) - {"name", "version"})
        if extra:
            raise InputError("%s: unknown key(s) %s; allowed: name, version"
                             % (where, ", ".join(extra)))
        name, version = item.get("name"), item.get("version")
        if not isinstance(name, str) or not _NAME.match(name):
            raise InputError("%s.name: %r is not a valid package name" % (where, name))
        if not isinstance(version, str) or not _VERSION.match(version):
            raise InputError("%s.version: %r is not a valid package version (%s must be "
                             "installed at an exact version)" % (where, version, name))
        if any(p.name == name for p in found):
            raise InputError("%s: %s is listed twice" % (where, name))
        found.append(Patch(name, version))
    return tuple(found)


def _rejected(value: Any) -> Tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError("rejected: expected a list of package names")
    for name in value:
        if not _REJECTED.match(name) or name.count("*") > 1 or name.startswith(("-", ".")):
            raise InputError("rejected: %r is not a package name (bare names; on dnf at most "
                             "one *)" % name)
    return tuple(dict.fromkeys(value))


# ---------------------------------------------------------------- pure parts

def apt_error(done: Completed) -> str:
    """apt's own words for a failed run: the unmet dependencies it lists, then its `E:` lines,
    then the packages it would have removed (`--no-remove` refuses that)."""
    errors = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines()
              if line.startswith(("E:", "W: Unable"))]
    unmet: List[str] = []
    removed: List[str] = []
    section = ""
    for line in done.stdout.splitlines():
        if line.startswith("The following packages have unmet dependencies"):
            section = "unmet"
        elif line.startswith("The following packages will be REMOVED"):
            section = "removed"
        elif section and line.startswith(" ") and line.strip():
            if section == "removed":
                removed += line.split()
            elif line.startswith("  ") and unmet:
                unmet[-1] += "; " + " ".join(line.split())   # a continuation of the package's line
            else:
                unmet.append(" ".join(line.split()))
        else:
            section = ""
    would_remove = ["apt would remove: %s" % " ".join(removed)] if removed else []
    return _trim(unmet + errors + would_remove) or _tail(done)


def dnf_error(done: Completed) -> str:
    """dnf's own words for a failed run: `Error:` and the problem lines after it, and the
    arguments that matched nothing."""
    lines = (done.stderr + "\n" + done.stdout).splitlines()
    found: List[str] = []
    in_error = False
    for line in lines:
        if line.startswith("Error:"):
            in_error = True
            if line[len("Error:"):].strip():
                found.append(line.strip())
        elif in_error and line.strip() and (line.startswith(" ") or line.startswith("(try")):
            found.append(" ".join(line.split()))
        else:
            in_error = False
            if line.startswith("No match for argument"):
                found.append(line.strip())
    return _trim(found) or _tail(done)


def _trim(parts: Sequence[str]) -> str:
    text = "; ".join(dict.fromkeys(p for p in parts if p))
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 3] + "..."


def _tail(done: Completed) -> str:
    text = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return _trim(["%s exited %d" % (done.argv[0], done.returncode)] + text[-3:])


def apt_preferences(rejected: Sequence[str], installed: Mapping[Tuple[str, str], str],
                    native: str) -> str:
    """apt preferences that block every rejected package except the version already installed.

    `installed` maps (package, architecture) to the installed version. The record keeping an
    installed version comes first: the first specific record matching a version decides.
    """
    records = []
    for name in rejected:
        for (package, arch), version in sorted(installed.items()):
            if package == name:
                qualified = name if arch in ("all", native) else "%s:%s" % (name, arch)
                records.append("Explanation: plumb:patch: rejected, kept at its installed version\n"
                               "Package: %s\nPin: version %s\nPin-Priority: 100\n"
                               % (qualified, version))
        records.append("Explanation: plumb:patch: rejected (rejectedPatchesAction BLOCK)\n"
                       "Package: %s:any\nPin: version *\nPin-Priority: -1\n" % name)
    return "\n".join(records)


def parse_dpkg(output: str) -> Dict[Tuple[str, str], str]:
    """Installed packages from `dpkg-query -W` with DPKG_FORMAT: (package, arch) → version."""
    found = {}
    for line in output.splitlines():
        words = line.split("\t")
        if len(words) == 4 and words[2].split()[-1:] == ["installed"]:
            found[(words[0], words[1])] = words[3]
    return found


def parse_rpm(output: str) -> Dict[Tuple[str, str], str]:
    """Installed packages from `rpm -q` with RPM_FORMAT: (name, arch) → the newest EVR."""
    found: Dict[Tuple[str, str], str] = {}
    for line in output.splitlines():
        words = line.split("\t")
        if len(words) != 3:
            continue                                     # "package x is not installed"
        evr = _rpm_evr(words[2])
        key = (words[0], words[1])
        if key not in found or versions.compare_rpm(evr, found[key]) > 0:
            found[key] = evr
    return found


def _rpm_evr(evr: str) -> str:
    for prefix in ("(none):", "0:"):
        if evr.startswith(prefix):
            return evr[len(prefix):]
    return evr


def installed_version(installed: Mapping[Tuple[str, str], str], name: str, native: str,
                      compare) -> Optional[str]:
    """The installed version of `name` (`name:arch` on apt, `name.arch` on dnf, or bare)."""
    if ":" in name:
        package, _, arch = name.partition(":")
        return installed.get((package, arch))
    matches = {arch: v for (package, arch), v in installed.items() if package == name}
    if not matches:
        package, _, arch = name.rpartition(".")
        return installed.get((package, arch)) if package else None
    for arch in (native, "all", "noarch"):
        if arch in matches:
            return matches[arch]
    best = None
    for version in matches.values():
        best = version if best is None or compare(version, best) > 0 else best
    return best


# ---------------------------------------------------------------- package managers

@dataclass
class Backend:
    """What differs between apt and dnf: how to observe, install, and read an error."""

    manager: str
    native: str = ""
    preferences: Optional[str] = None    # apt, BLOCK: the private preferences file
    excludes: Tuple[str, ...] = ()       # dnf, BLOCK
    env: Dict[str, str] = field(default_factory=dict)

    def compare(self, a: str, b: str) -> int:
        if self.manager == "apt":
            return versions.compare_deb(a, b)
        return versions.compare_rpm(_rpm_evr(a), _rpm_evr(b))

    def observe(self, names: Sequence[str]) -> Dict[Tuple[str, str], str]:
        if not names:
            return {}
        if self.manager == "apt":
            done = run_argv(["dpkg-query", "-W", "-f=" + DPKG_FORMAT, *names])
            return parse_dpkg(done.stdout)
        bare = [n for n in names if "*" not in n]
        done = run_argv(["rpm", "-q", "--qf", RPM_FORMAT, *bare])
        return parse_rpm(done.stdout)

    def argv(self, patches: Sequence[Patch], simulate: bool) -> List[str]:
        if self.manager == "apt":
            argv = list(_APT_INSTALL) + (["-s"] if simulate else [])
            if self.preferences:
                argv += ["-o", "Dir::Etc::Preferences=" + self.preferences]
            return argv + ["%s=%s" % (p.name, p.version) for p in patches]
        excludes = ["--exclude=" + pattern for pattern in self.excludes]
        specs = ["%s-%s" % (p.name, p.version) for p in patches]
        return ["dnf", "-y", "upgrade", *excludes, *specs]

    def error(self, done: Completed) -> str:
        return apt_error(done) if self.manager == "apt" else dnf_error(done)


def detect_manager() -> str:
    for manager, program in (("apt", "apt-get"), ("dnf", "dnf")):
        if shutil.which(program):
            return manager
    raise ActionFailed("no supported package manager found (apt-get or dnf)")


def _native_arch(manager: str) -> str:
    if manager == "apt":
        done = run_argv(["dpkg", "--print-architecture"])
        return done.stdout.strip() if done.returncode == 0 else ""
    return os.uname().machine


def _system_preferences() -> Optional[str]:
    """The system's apt preferences file (as configured, APT_CONFIG included)."""
    done = run_argv(["apt-config", "shell", "PREFS", "Dir::Etc::Preferences/f"], env=APT_ENV)
    words = dict(w.split("=", 1) for w in shlex.split(done.stdout) if "=" in w)
    return words.get("PREFS") or None


def _write_preferences(directory: str, rejected: Sequence[str],
                       installed: Mapping[Tuple[str, str], str], native: str) -> str:
    text = apt_preferences(rejected, installed, native)
    system = _system_preferences()
    if system and os.path.isfile(system):
        with open(system, encoding="utf-8", errors="replace") as handle:
            text += "\n# the system's own preferences (%s)\n%s" % (system, handle.read())
    path = os.path.join(directory, "preferences")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
    return path


# ---------------------------------------------------------------- running

class Log:
    """The step's stdout and stderr, streamed as they grow."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.out: List[str] = []
        self.err: List[str] = []

    def stdout(self, text: str) -> None:
        if text:
            text = text if text.endswith("\n") else text + "\n"
            self.out.append(text)
            self.ctx.on_output("stdout", text)

    def stderr(self, text: str) -> None:
        if text:
            text = text if text.endswith("\n") else text + "\n"
            self.err.append(text)
            self.ctx.on_output("stderr", text)

    def command(self, done: Completed) -> None:
        self.stdout("$ %s\n%s" % (" ".join(shlex.quote(a) for a in done.argv), done.stdout))
        self.stderr(done.stderr)


def run(spec: Spec, ctx: Context) -> StepResult:
    manager = detect_manager()
    if manager == "apt":
        wild = [name for name in spec.rejected if "*" in name]
        if wild:
            raise ActionFailed("rejected: apt takes bare package names, without wildcards: %s"
                               % ", ".join(wild))
    backend = Backend(manager, _native_arch(manager), env=dict(APT_ENV) if manager == "apt" else {})
    log = Log(ctx)
    names = [p.name for p in spec.patches]
    before = backend.observe(names + list(spec.rejected))
    outcomes = [_initial(p, before, backend) for p in spec.patches]
    pending = [p for p, o in zip(spec.patches, outcomes) if not o.state]
    commands: List[List[str]] = []
    with tempfile.TemporaryDirectory(prefix="plumb-patch-", dir=_private_base(ctx)) as private:
        if spec.block and spec.rejected:
            if manager == "apt":
                backend.preferences = _write_preferences(private, spec.rejected, before,
                                                         backend.native)
            else:
                backend.excludes = spec.rejected
        errors = _install(backend, pending, ctx, log, commands) if pending else {}
    after = backend.observe(names) if pending and not ctx.check else before
    for patch, outcome in zip(spec.patches, outcomes):
        if not outcome.state:
            _final(patch, outcome, after, errors, backend, ctx.check)
    return _step_result(spec, backend, outcomes, commands, log, ctx)


def _private_base(ctx: Context) -> Optional[str]:
    return ctx.step_dir if ctx.step_dir and os.path.isdir(ctx.step_dir) else None


def _initial(patch: Patch, installed: Mapping[Tuple[str, str], str], backend: Backend) -> Outcome:
    """The outcome known before installing (state set), or a pending one (state empty)."""
    current = installed_version(installed, patch.name, backend.native, backend.compare)
    outcome = Outcome(patch.name, patch.version, installed_version=current)
    if current is None:
        outcome.state = FAILED
        outcome.message = "not installed: patches only upgrade installed packages"
    elif backend.compare(current, patch.version) == 0:
        outcome.state, outcome.message = INSTALLED, "already installed"
    elif backend.compare(current, patch.version) > 0:
        outcome.state = INSTALLED
        outcome.message = ("installed version %s is newer than %s (never downgraded)"
                           % (current, patch.version))
    return outcome


def _install(backend: Backend, pending: List[Patch], ctx: Context, log: Log,
             commands: List[List[str]]) -> Dict[str, str]:
    """Install (or simulate) all pending patches at once; when that fails, each still missing
    alone. Returns the error text of each patch whose own run failed."""
    if ctx.check and backend.manager != "apt":
        return {}                                   # dnf has no simulation to trust: report only
    done = _run(backend, pending, ctx, log, commands)
    if done.returncode == 0:
        return {}
    if len(pending) == 1:
        return {pending[0].name: backend.error(done)}
    if not ctx.check:
        now = backend.observe([p.name for p in pending])
        pending = [p for p in pending if not _at(backend, now, p)]
    errors: Dict[str, str] = {}
    for patch in pending:
        if ctx.cancel.is_set():
            errors[patch.name] = "cancelled before its own attempt"
            continue
        alone = _run(backend, [patch], ctx, log, commands)
        if alone.returncode != 0:
            errors[patch.name] = backend.error(alone)
    return errors


def _run(backend: Backend, patches: Sequence[Patch], ctx: Context, log: Log,
         commands: List[List[str]]) -> Completed:
    argv = backend.argv(patches, simulate=ctx.check)
    commands.append(argv)
    done = run_argv(argv, env=backend.env)
    log.command(done)
    return done


def _at(backend: Backend, installed: Mapping[Tuple[str, str], str], patch: Patch) -> bool:
    current = installed_version(installed, patch.name, backend.native, backend.compare)
    return current is not None and backend.compare(current, patch.version) == 0


def _final(patch: Patch, outcome: Outcome, after: Mapping[Tuple[str, str], str],
           errors: Mapping[str, str], backend: Backend, check: bool) -> None:
    if check:
        if patch.name in errors:
            outcome.state, outcome.message = FAILED, errors[patch.name]
        else:
            outcome.state, outcome.changed = WOULD_INSTALL, True
            outcome.message = "would upgrade from %s" % outcome.installed_version
        return
    before = outcome.installed_version
    outcome.installed_version = installed_version(after, patch.name, backend.native,
                                                  backend.compare)
    if _at(backend, after, patch):
        outcome.state, outcome.changed = INSTALLED, True
        outcome.message = "upgraded from %s" % before
    elif patch.name in errors:
        outcome.state, outcome.message = FAILED, errors[patch.name]
    else:
        outcome.state = FAILED
        outcome.message = "%s succeeded but %s is at %s, not %s" % (
            backend.manager, patch.name, outcome.installed_version or "(not installed)",
            patch.version)


def reboot_required(manager: str, installed_any: bool) -> bool:
    """Whether the node needs a reboot, as AWS:InstanceInformation reads it; where the node's
    tooling cannot tell, whether anything was installed (as SSM's RebootIfNeeded)."""
    flag = os.environ.get(REBOOT_FLAG_ENV) or instance.DEBIAN_REBOOT_FLAG
    code = None
    if manager != "apt" and shutil.which("needs-restarting"):
        try:
            code = run_argv(["needs-restarting", "-r"], timeout=300).returncode
        except ActionFailed:
            code = None
    known = instance.reboot_required(manager == "apt", os.path.exists(flag), code)
    return installed_any if known is None else known


def reboot_command() -> List[str]:
    configured = os.environ.get(REBOOT_COMMAND_ENV, "").strip()
    return shlex.split(configured) if configured else list(DEFAULT_REBOOT_COMMAND)


def _step_result(spec: Spec, backend: Backend, outcomes: List[Outcome], commands: List[List[str]],
                 log: Log, ctx: Context) -> StepResult:
    installed_any = any(o.changed for o in outcomes)
    required = reboot_required(backend.manager, installed_any and not ctx.check)
    rebooting, reboot_error = False, ""
    if required and spec.reboot_option == "RebootIfNeeded" and not ctx.check:
        argv = reboot_command()
        try:
            done = run_argv(argv, timeout=120)
        except ActionFailed as err:
            reboot_error = "reboot command %s failed: %s" % (" ".join(argv), err)
        else:
            log.command(done)
            rebooting = done.returncode == 0
            if not rebooting:
                said = (done.stderr.strip() or done.stdout.strip())[-300:]
                reboot_error = "reboot command %s exited %d: %s" % (" ".join(argv),
                                                                    done.returncode, said)
    failed = [o for o in outcomes if o.state == FAILED]
    for outcome in outcomes:
        line = "%s %s: %s (%s)" % (outcome.name, outcome.version, outcome.state, outcome.message)
        (log.stderr if outcome.state == FAILED else log.stdout)(line)
    log.stdout(_summary(outcomes, required, rebooting, spec, ctx.check))
    if reboot_error:
        log.stderr(reboot_error)
    details: Dict[str, Any] = {
        "manager": backend.manager, "operation": "Install",
        "rejectedPatchesAction": spec.rejected_action, "rebootOption": spec.reboot_option,
        "patches": [o.as_dict() for o in outcomes],
        "rebootRequired": required, "rebooting": rebooting, "commands": commands,
    }
    if reboot_error:
        details["error"] = reboot_error
    if ctx.check:
        details["checkMode"] = True
    bad = bool(failed or reboot_error)
    return StepResult(Status.FAILED if bad else Status.SUCCESS, 1 if bad else 0,
                      stdout="".join(log.out), stderr="".join(log.err),
                      changed=installed_any, details=details)


def _summary(outcomes: List[Outcome], required: bool, rebooting: bool, spec: Spec,
             check: bool) -> str:
    count = {state: sum(1 for o in outcomes if o.state == state)
             for state in (INSTALLED, FAILED, WOULD_INSTALL)}
    changed = sum(1 for o in outcomes if o.changed and o.state == INSTALLED)
    if check:
        text = "check mode: %d would be installed, %d already installed, %d would fail" % (
            count[WOULD_INSTALL], count[INSTALLED], count[FAILED])
    else:
        text = "%d installed, %d already installed, %d failed" % (
            changed, count[INSTALLED] - changed, count[FAILED])
    if rebooting:
        text += "; reboot required: rebooting"
    elif required:
        text += "; reboot required (%s)" % ("not in check mode" if check else spec.reboot_option)
    return text
