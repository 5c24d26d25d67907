"""Patch-baseline evaluation, pure: which updates a PatchBaseline approves for a node, and
the node's patch compliance in SSM Patch Manager's states and InstancePatchState counts.

Inputs are a built `PatchBaseline` and one node's inventory document (the agent's JSON):
AWS:InstanceInformation (platform, RebootRequired), AWS:Application (installed packages)
and plumb:AvailableUpdate (newer versions; `Versions` lists each one, newest first).
Plan, reconcile and `plumb patch scan|install|baseline show` call it and own the I/O: the
fleet-wide time plumb first saw each candidate version, and the node's last Scan/Install.

How one version of one package is decided (`approve()`), first answer wins:
  1. global filters: a version they exclude is not considered at all;
  2. rejectedPatches: rejected wins over approved;
  3. approvedPatches: approved at once, at approvedPatchesComplianceLevel;
  4. approval rules, in order: the first rule that approves gives the compliance level.
Values of one filter are ORed, the filters of a group ANDed. SSM cannot date apt updates;
plumb can: approveAfterDays/approveUntilDate count from when plumb first saw the version,
in whole UTC days, on apt and (lacking release dates in inventory) dnf alike, and the
reason says so. A package keeps the newest version the baseline approves, so a security
version is chosen even when apt's candidate is a newer one from a normal suite.

The implicit security condition (a rule's enableNonSecurity, approvedPatchesEnableNonSecurity
false) selects *updates*: apt, a version from a security suite; dnf, a version with an
advisory of any type (SSM: without updateinfo, "Include non-security updates" decides;
with it, the CLASSIFICATION/SEVERITY filters do). It is not applied to the installed
version, whose archive and advisories inventory does not record; nor are dates when plumb
never saw the installed version as a candidate (it predates any delay). A filter on what
inventory lacks (CVE_ID, BUGZILLA_ID; an installed dnf version's CLASSIFICATION...) is
undecided (`Approval.known` False), never guessed: an installed version is then approved
only if the previous Scan/Install approved that same version.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from functools import cmp_to_key
from types import MappingProxyType
from typing import Mapping, NamedTuple, Sequence

from .kinds.patchbaseline import PatchBaseline, PatchFilter, PatchRule
from .versions import comparator

EMPTY: Mapping = MappingProxyType({})
UNSPECIFIED = "UNSPECIFIED"
COMPLIANCE_LEVELS = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", UNSPECIFIED)  # worst first
PATCH_GROUP_LABELS = ("PatchGroup", "Patch Group")
PACKAGE_MANAGERS = {"apt": frozenset({"apt"}), "yum": frozenset({"dnf", "yum"})}

# os-release NAME (inventory PlatformName) -> SSM OperatingSystem; ID is the fallback.
OS_NAMES: Mapping[str, str] = MappingProxyType({
    "Debian GNU/Linux": "DEBIAN",
    "Ubuntu": "UBUNTU",
    "Raspbian GNU/Linux": "RASPBIAN",
    "Red Hat Enterprise Linux": "REDHAT_ENTERPRISE_LINUX",
    "Red Hat Enterprise Linux Server": "REDHAT_ENTERPRISE_LINUX",
    "Rocky Linux": "ROCKY_LINUX",
    "AlmaLinux": "ALMA_LINUX",
    "CentOS Linux": "CENTOS",
    "CentOS Stream": "CENTOS",
    "Oracle Linux Server": "ORACLE_LINUX",
    "Amazon Linux AMI": "AMAZON_LINUX",
    "Amazon Linux": "AMAZON_LINUX_2",  # VERSION_ID 2; 2022 and 2023 by version below
    "SLES": "SUSE",
})
OS_IDS: Mapping[str, str] = MappingProxyType({
    "debian": "DEBIAN", "ubuntu": "UBUNTU", "raspbian": "RASPBIAN", "rhel": "REDHAT_ENTERPRISE_LINUX",
    "rocky": "ROCKY_LINUX", "almalinux": "ALMA_LINUX", "centos": "CENTOS", "ol": "ORACLE_LINUX",
    "amzn": "AMAZON_LINUX_2", "sles": "SUSE",
})
_AMAZON_BY_VERSION = {"2022": "AMAZON_LINUX_2022", "2023": "AMAZON_LINUX_2023"}
# SSM PRODUCT values are <prefix><VERSION_ID>: Debian12, Ubuntu22.04, RedhatEnterpriseLinux9.3
# (UG: "RedhatEnterpriseLinux7.4"), AmazonLinux2018.03, AmazonLinux2023; Amazon Linux 2 is
# "AmazonLinux2.0" (DescribeAvailablePatches sample values).
PRODUCT_PREFIXES: Mapping[str, str] = MappingProxyType({
    "DEBIAN": "Debian", "UBUNTU": "Ubuntu", "RASPBIAN": "Raspbian", "REDHAT_ENTERPRISE_LINUX": "RedhatEnterpriseLinux",
    "ROCKY_LINUX": "RockyLinux", "ALMA_LINUX": "AlmaLinux", "CENTOS": "CentOS", "ORACLE_LINUX": "OracleLinux",
    "AMAZON_LINUX": "AmazonLinux", "AMAZON_LINUX_2022": "AmazonLinux", "AMAZON_LINUX_2023": "AmazonLinux",
    "SUSE": "Suse",
})

_FOLDED_KEYS = frozenset({"PRIORITY", "CLASSIFICATION", "SEVERITY", "SECURITY"})
_VERSION_KEYS = frozenset({"CLASSIFICATION", "SEVERITY", "SECURITY", "REPOSITORY", "ADVISORY_ID"})
_UNOBSERVED_IDS = re.compile(r"^(\d+|CVE-\d{4}-\d{4,})$")  # Bugzilla and CVE ids: not in inventory
_ADVISORY_ID = re.compile(r"^[A-Z][A-Z0-9]*-\d{4}[:-]\d+$")


class State(enum.StrEnum):
    """SSM's patch compliance states (PatchComplianceDataState)."""

    INSTALLED = "INSTALLED"
    INSTALLED_OTHER = "INSTALLED_OTHER"
    INSTALLED_PENDING_REBOOT = "INSTALLED_PENDING_REBOOT"
    INSTALLED_REJECTED = "INSTALLED_REJECTED"
    MISSING = "MISSING"
    FAILED = "FAILED"
    NOT_APPLICABLE = "NOT_APPLICABLE"

    @property
    def compliant(self) -> bool:
        return self in (State.INSTALLED, State.INSTALLED_OTHER, State.NOT_APPLICABLE)


_APPROVED_STATES = frozenset({State.INSTALLED, State.INSTALLED_PENDING_REBOOT, State.MISSING, State.FAILED})
_COUNT_NAMES = {
    State.INSTALLED: "InstalledCount", State.INSTALLED_OTHER: "InstalledOtherCount",
    State.INSTALLED_PENDING_REBOOT: "InstalledPendingRebootCount", State.INSTALLED_REJECTED: "InstalledRejectedCount",
    State.MISSING: "MissingCount", State.FAILED: "FailedCount", State.NOT_APPLICABLE: "NotApplicableCount",
}


@dataclass(frozen=True)
class Candidate:
    """One version of one package as the node's inventory describes it.

    `installed` marks the installed version: what inventory records of a version's origin
    (suite, repository, advisories, security) exists only for newer versions."""

    name: str
    arch: str
    version: str
    package_manager: str  # apt | dnf
    product: str | None = None
    priority: str = ""
    section: str = ""
    installed: bool = False
    security: bool = False
    suite: str = ""
    codename: str = ""
    repository: str = ""
    classification: str = ""
    severity: str = ""
    advisories: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """Where the version comes from: apt suite, dnf repository."""
        return self.suite or self.codename or self.repository


@dataclass(frozen=True)
class Approval:
    """The baseline's decision on one version, and what decided it.

    `known` is False when a filter needs what inventory does not say about this version;
    `compliance_level` is then that undecided rule's level (used if a previous run approved
    the version), else the approving rule's level or UNSPECIFIED."""

    approved: bool
    rejected: bool
    compliance_level: str
    rule: str
    pointer: str
    reason: str
    known: bool = True


@dataclass(frozen=True)
class PatchState:
    """One installed package (or approvedPatches name) in one compliance state.

    `approval` explains the state: the approved version to install (MISSING, FAILED), why no
    newer version is approved yet (installed states with updates available), or the
    installed version's own decision. `installed_approval` is always the latter."""

    name: str
    arch: str
    state: State
    installed_version: str
    version: str
    severity: str
    approval: Approval
    security: bool
    suite: str
    available: str = ""  # the newest version available, "" when none
    installed_approval: Approval | None = None

    @property
    def compliant(self) -> bool:
        return State(self.state).compliant


@dataclass(frozen=True)
class PatchReport:
    """A node's patch compliance against one baseline; `unknown` says why it could not be told."""

    baseline: str
    operating_system: str
    product: str
    patches: tuple[PatchState, ...]
    unknown: str = ""
    notes: tuple[str, ...] = ()  # baseline entries plumb cannot evaluate (CVE and Bugzilla ids)

    def counts(self) -> dict[str, int]:
        """InstancePatchState's counts."""
        names = [*_COUNT_NAMES.values(), "CriticalNonCompliantCount", "SecurityNonCompliantCount",
                 "OtherNonCompliantCount"]
        counts = dict.fromkeys(names, 0)
        for patch in self.patches:
            counts[_COUNT_NAMES[State(patch.state)]] += 1
            if patch.compliant:
                continue
            critical = patch.severity == "CRITICAL"
            counts["CriticalNonCompliantCount"] += critical
            counts["SecurityNonCompliantCount"] += patch.security
            counts["OtherNonCompliantCount"] += not (critical or patch.security)
        return counts

    @property
    def compliant(self) -> bool | None:
        return None if self.unknown else all(patch.compliant for patch in self.patches)

    @property
    def severity(self) -> str:
        """The compliance level of the worst non-compliant patch; "" when compliant or unknown."""
        levels = {patch.severity for patch in self.patches if not patch.compliant}
        return min(levels, key=_level_rank) if levels else ""

    @property
    def missing(self) -> tuple[PatchState, ...]:
        """What Install would install: MISSING and FAILED patches."""
        return tuple(p for p in self.patches if p.state in (State.MISSING, State.FAILED))


# --- the node --------------------------------------------------------------------------------

def _type(inventory: Mapping | None, name: str) -> tuple[list | None, str]:
    """(entries, reason): entries is None when the type is unknown or was not collected."""
    if not inventory:
        return None, "no inventory for this node"
    data = (inventory.get("Types") or {}).get(name)
    if data is None:
        return None, f"{name} was not collected"
    if data.get("Status") != "ok":
        return None, f"{name} is unknown on this node: {data.get('Reason', 'no reason given')}"
    return list(data.get("Content") or []), ""


def _instance(inventory: Mapping | None) -> tuple[Mapping | None, str]:
    entries, reason = _type(inventory, "AWS:InstanceInformation")
    if entries is None:
        return None, reason
    return (entries[0], "") if entries else (None, "AWS:InstanceInformation has no entry")


def operating_system(inventory: Mapping | None) -> str | None:
    """The node's SSM OperatingSystem (DEBIAN, REDHAT_ENTERPRISE_LINUX, ...), None if unknown."""
    info, _ = _instance(inventory)
    if info is None:
        return None
    name, version = info.get("PlatformName", ""), info.get("PlatformVersion", "")
    found = OS_NAMES.get(name) or OS_IDS.get(info.get("PlatformId", ""))
    if found == "AMAZON_LINUX_2":
        return _AMAZON_BY_VERSION.get(version.split(".")[0], found)
    return found


def product(inventory: Mapping | None) -> str | None:
    """The node's SSM PRODUCT value ("Debian12", "Ubuntu22.04", "RedhatEnterpriseLinux9.3")."""
    system = operating_system(inventory)
    info, _ = _instance(inventory)
    version = (info or {}).get("PlatformVersion", "")
    if system is None or not version:
        return None
    if system == "AMAZON_LINUX_2":
        return "AmazonLinux2.0"
    if system == "CENTOS" and info.get("PlatformName") == "CentOS Stream":
        return f"CentOSStream{version}"
    return PRODUCT_PREFIXES[system] + version


def select_baseline(baselines: Sequence[PatchBaseline], labels: Mapping[str, str],
                    os_name: str | None) -> tuple[PatchBaseline | None, str]:
    """(baseline, why): the one serving the node's patch group for its OS, else that OS's default."""
    if not os_name:
        return None, "the node's operating system is unknown, so no patch baseline applies"
    group = next((labels[key] for key in PATCH_GROUP_LABELS if labels.get(key)), "")
    mine = [b for b in baselines if b.operating_system == os_name]
    default = next((b for b in mine if b.default), None)
    if group:
        serving = next((b for b in mine if group in b.patch_groups), None)
        if serving is not None:
            return serving, f"patch group '{group}' is served by {os_name} baseline '{serving.name}'"
        if default is not None:
            return default, (f"no {os_name} baseline serves patch group '{group}': "
                             f"the {os_name} default '{default.name}'")
        return None, f"no {os_name} baseline serves patch group '{group}' and none is the {os_name} default"
    if default is not None:
        return default, f"no PatchGroup label: the {os_name} default '{default.name}'"
    return None, f"the node has no PatchGroup label and no {os_name} baseline is the default"


# --- one version: approve() -------------------------------------------------------------------

def approve(baseline: PatchBaseline, candidate: Candidate, *, first_seen: Mapping[str, str] = EMPTY,
            now: datetime) -> Approval:
    """The baseline's decision on `candidate`, one version of one package.

    `first_seen` maps "name=version" to the ISO-8601 UTC time plumb first saw that version
    (fleet-wide); a version absent from it is first seen `now`. Use `candidates()` to get
    the Candidates of a node's inventory; `plumb patch baseline show` calls this per version."""
    family = baseline.family
    passed, index, why = _group(baseline.global_filters, candidate)
    if passed is not True:
        return Approval(False, False, UNSPECIFIED, f"global filters exclude it ({why})",
                        f"/spec/globalFilters/patchFilters/{index}", f"global filters exclude it: {why}",
                        known=passed is False)
    listed = _listed(baseline.rejected_patches, candidate, family)
    if listed is not None and listed[2]:
        index, entry, _ = listed
        return Approval(False, True, UNSPECIFIED, "rejectedPatches", f"/spec/rejectedPatches/{index}",
                        f"{entry} is in rejectedPatches (rejectedPatchesAction "
                        f"{baseline.rejected_patches_action}): never approved")
    refusals: list[Approval] = []
    listed = _listed(baseline.approved_patches, candidate, family)
    if listed is not None:
        found = _from_approved_list(baseline, candidate, listed)
        if found.approved:
            return found
        refusals.append(found)
    misses = []
    for number, rule in enumerate(baseline.rules):
        found = _by_rule(baseline, number, rule, candidate, first_seen, now)
        if found.approved:
            return found
        if found.rule:
            refusals.append(found)
        else:
            misses.append(found.reason)
    return _refused(candidate, refusals, misses)


def _from_approved_list(baseline: PatchBaseline, candidate: Candidate, listed) -> Approval:
    # SSM: ApprovedPatchesEnableNonSecurity "indicates whether the list of approved patches
    # includes non-security updates". Read as: a listed name is approved at its newest
    # security version (apt: from a security suite) while it is false, at its newest
    # version of any suite when true. Approved patches skip the rules' dates, not the
    # global filters nor the rejected list.
    index, entry, known = listed
    level, pointer = baseline.approved_patches_compliance_level, f"/spec/approvedPatches/{index}"
    if not known:
        return Approval(False, False, level, "approvedPatches", pointer,
                        f"{entry} is in approvedPatches, but {_what(candidate)}'s advisories are not in inventory",
                        known=False)
    secure, why = _security(baseline, baseline.approved_patches_enable_non_security,
                            "approvedPatchesEnableNonSecurity", candidate)
    if not secure:
        return Approval(False, False, UNSPECIFIED, "approvedPatches", pointer,
                        f"{entry} is in approvedPatches but {why}")
    return Approval(True, False, level, "approvedPatches", pointer,
                    "; ".join(part for part in (f"{entry} is in approvedPatches", why) if part))


def _by_rule(baseline, number: int, rule: PatchRule, candidate: Candidate, first_seen, now) -> Approval:
    """The rule's decision; `rule` "" (with the reason) when its filters do not match."""
    label, pointer = _rule_label(number, rule), f"/spec/approvalRules/patchRules/{number}"
    passed, _, why = _group(rule.filters, candidate)
    if passed is False:
        return Approval(False, False, UNSPECIFIED, "", "", f"rule {number + 1}: {why}")
    if passed is None:
        return Approval(False, False, rule.compliance_level, label, pointer, why, known=False)
    secure, security_why = _security(baseline, rule.enable_non_security, "enableNonSecurity", candidate)
    if not secure:
        return Approval(False, False, UNSPECIFIED, label, pointer, security_why)
    dated, date_why = _dates(baseline, rule, candidate, first_seen, now)
    if not dated:
        return Approval(False, False, UNSPECIFIED, label, pointer, date_why)
    reason = "; ".join(part for part in (f"{label} matches", security_why, date_why) if part)
    return Approval(True, False, rule.compliance_level, label, pointer, reason)


def _refused(candidate: Candidate, refusals: list[Approval], misses: list[str]) -> Approval:
    if not refusals:
        why = "; ".join(misses) if misses else "the baseline has no approval rules"
        return Approval(False, False, UNSPECIFIED, "no rule matches", "",
                        f"no rule matches {_what(candidate)} and {candidate.name} is not in approvedPatches ({why})")
    undecided = next((r for r in refusals if not r.known), None)
    first = undecided or refusals[0]
    reason = "; ".join(r.reason if r is first and len(refusals) == 1 else f"{r.rule}: {r.reason}" for r in refusals)
    return replace(first, reason=reason)


def _rule_label(number: int, rule: PatchRule) -> str:
    filters = "; ".join(f"{f.key} in {', '.join(f.values)}" for f in rule.filters) or "no filters: every patch"
    return f"approval rule {number + 1} ({filters})"


def _what(candidate: Candidate) -> str:
    return f"the installed {candidate.version}" if candidate.installed else candidate.version


def _security(baseline: PatchBaseline, enabled: bool, field: str, candidate: Candidate) -> tuple[bool, str]:
    """The implicit security condition, for updates only (see the module docstring)."""
    if candidate.installed:
        return True, ""
    if enabled:
        return True, f"{field} true: updates from any {'suite' if baseline.family == 'apt' else 'source'}"
    if baseline.family == "apt":
        if candidate.security:
            return True, f"{candidate.version} is from {candidate.source or 'a security archive'} (a security suite)"
        return False, (f"only security updates ({field} false) and {candidate.version} is from "
                       f"{candidate.source or 'an unnamed suite'} (not a security suite)")
    if candidate.classification or candidate.advisories:
        return True, f"{candidate.version} has a {candidate.classification or 'dnf'} advisory"
    return False, (f"only updates with an advisory ({field} false) and {candidate.version} has none "
                   "in the node's dnf updateinfo")


def _dates(baseline, rule: PatchRule, candidate: Candidate, first_seen: Mapping[str, str],
           now: datetime) -> tuple[bool, str]:
    """approveAfterDays / approveUntilDate, counted in whole UTC days from plumb's first sighting."""
    if rule.approve_after_days is None and not rule.approve_until_date:
        return True, "no approveAfterDays or approveUntilDate: approved at once"
    seen_text = first_seen.get(f"{candidate.name}={candidate.version}")
    if seen_text is None and candidate.installed:
        return True, f"plumb never saw {candidate.version} as an update, so it predates any delay"
    today = _utc(now).date()
    seen = today if seen_text is None else _utc(_parse_time(seen_text, candidate)).date()
    days = (today - seen).days
    source = f"first seen by plumb {'now, ' if seen_text is None else ''}{seen}"
    caveat = "" if baseline.family == "apt" else "; dnf inventory has no release dates, so plumb counts from that"
    if rule.approve_after_days is not None:
        wait = rule.approve_after_days
        text = f"{source} ({_days(days)} ago; approveAfterDays {wait})"
        if days >= wait:
            return True, text + caveat
        return False, f"{text} → approved from {seen + timedelta(days=wait)}{caveat}"
    until = date.fromisoformat(rule.approve_until_date)
    if seen <= until:
        return True, f"{source}, on or before approveUntilDate {until}{caveat}"
    return False, f"{source}, after approveUntilDate {until}: this rule never approves it{caveat}"


def _days(count: int) -> str:
    return f"{count} whole UTC day{'' if count == 1 else 's'}"


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _parse_time(text: str, candidate: Candidate) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"first_seen[{candidate.name}={candidate.version}]: not an ISO-8601 time: {text!r}") from None


# --- filters and name lists -------------------------------------------------------------------

def _group(filters: Sequence[PatchFilter], candidate: Candidate) -> tuple[bool | None, int, str]:
    """(passed, index of the deciding filter, why not): AND of filters; None = undecided."""
    undecided = None
    for index, patch_filter in enumerate(filters):
        passed, why = _filter(patch_filter, candidate)
        if passed is False:
            return False, index, why
        if passed is None and undecided is None:
            undecided = (index, why)
    return (None, *undecided) if undecided else (True, 0, "")


def _filter(patch_filter: PatchFilter, candidate: Candidate) -> tuple[bool | None, str]:
    key = patch_filter.key
    values = _attribute(key, candidate)
    if values is None:
        return None, f"{key} of {_what(candidate)} is not in plumb's inventory"
    fold = key in _FOLDED_KEYS
    if any(_matches(_severity(key, p), _severity(key, v), fold) for p in patch_filter.values for v in values):
        return True, ""
    shown = next((v for v in values if v), "(none)")
    return False, f"{key} {shown} not in {', '.join(patch_filter.values)}"


def _attribute(key: str, candidate: Candidate) -> tuple[str, ...] | None:
    """The candidate's values for a filter key; None when inventory does not record them."""
    if key == "PRODUCT":
        return None if candidate.product is None else (candidate.product,)
    if key in ("NAME", "ARCH", "PRIORITY"):
        return ({"NAME": candidate.name, "ARCH": candidate.arch, "PRIORITY": candidate.priority}[key],)
    if key == "SECTION":  # "contrib/net" is in section net too
        return (candidate.section, candidate.section.rpartition("/")[2])
    if key in ("EPOCH", "VERSION", "RELEASE"):
        epoch, version, release = _evr(candidate.version)
        return {"EPOCH": (epoch or "0",), "VERSION": (version, candidate.version.partition(":")[2] or
                                                      candidate.version), "RELEASE": (release,)}[key]
    if candidate.installed or key not in _VERSION_KEYS:
        return None
    if key == "SECURITY":
        return ("true", "yes") if candidate.security else ("false", "no")
    if key == "REPOSITORY":
        return tuple(v for v in (candidate.repository, candidate.suite, candidate.codename) if v)
    if key == "ADVISORY_ID":
        return candidate.advisories
    return ({"CLASSIFICATION": candidate.classification, "SEVERITY": candidate.severity}[key],)


def _severity(key: str, value: str) -> str:
    """SSM names RHEL's Moderate severity Medium on some systems: one value for both."""
    return "moderate" if key == "SEVERITY" and value.casefold() == "medium" else value


def _matches(pattern: str, value: str, fold: bool = False) -> bool:
    """`*` alone matches anything; elsewhere `*` is a wildcard, the rest literal."""
    if pattern == "*":
        return True
    if fold:
        pattern, value = pattern.casefold(), value.casefold()
    if "*" not in pattern:
        return pattern == value
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), value, re.S) is not None


def _listed(entries: Sequence[str], candidate: Candidate, family: str) -> tuple[int, str, bool] | None:
    """(index, entry, known) of the first approved/rejected entry naming the candidate.

    apt: bare names. dnf: names in SSM's forms (name, name.arch, name-version-release.arch,
    epoch:version-release, ... each with at most one `*`), or advisory ids, which an
    installed version cannot be checked against (known False). CVE/Bugzilla ids never match."""
    undecided = None
    for index, entry in enumerate(entries):
        if family != "yum":
            if entry == candidate.name:
                return index, entry, True
        elif _ADVISORY_ID.match(entry):
            if candidate.installed:
                undecided = undecided or (index, entry, False)
            elif entry in candidate.advisories:
                return index, entry, True
        elif not _UNOBSERVED_IDS.match(entry) and any(_matches(entry, form) for form in _rpm_forms(candidate)):
            return index, entry, True
    return undecided


def _rpm_forms(candidate: Candidate) -> set[str]:
    """The spellings SSM accepts for one rpm (UG: package name formats, yum/dnf systems)."""
    name, arch = candidate.name, candidate.arch
    epoch, version, release = _evr(candidate.version)
    vr = f"{version}-{release}" if release else version
    forms = {name, f"{name}.{arch}", f"{name}-{version}", f"{name}-{vr}", f"{name}-{vr}.{arch}", version, vr}
    for e in {epoch or "0", epoch} - {""}:
        forms |= {f"{e}:{vr}", f"{name}-{e}:{vr}", f"{name}-{e}:{vr}.{arch}", f"{e}:{name}-{vr}.{arch}",
                  f"{name}.{arch}:{e}:{vr}"}
    return forms


def _evr(version: str) -> tuple[str, str, str]:
    """(epoch, version, release) of `[epoch:]version[-release]` (Debian: upstream, revision)."""
    epoch, colon, rest = version.partition(":")
    if not colon:
        epoch, rest = "", version
    upstream, dash, release = rest.rpartition("-")
    return (epoch, upstream, release) if dash else (epoch, rest, "")


# --- the node's packages: candidates() ----------------------------------------------------------

class Package(NamedTuple):
    """An installed package: its installed version and the newer versions, newest first."""

    installed: Candidate
    newer: tuple[Candidate, ...]


def candidates(inventory: Mapping | None) -> tuple[list[Package] | None, str]:
    """(packages, reason): every installed package of the node with its newer versions, as
    Candidates for `approve()`; packages is None (and reason says why) if inventory cannot tell."""
    node_product = product(inventory)
    installed, reason = _type(inventory, "AWS:Application")
    if installed is None:
        return None, reason
    updates, reason = _type(inventory, "plumb:AvailableUpdate")
    if updates is None:
        return None, reason
    by_key: dict[tuple[str, str], list[dict]] = {}
    for entry in installed:
        if entry.get("Name") != "gpg-pubkey":  # rpm's entries for imported keys, not software
            by_key.setdefault((entry["Name"], entry.get("Architecture", "")), []).append(entry)
    updates_by_key = {(u["Name"], u.get("Architecture", "")): u for u in updates if u.get("InstalledVersion")}
    packages = []
    for key in sorted(set(by_key) | set(updates_by_key)):
        packages.append(_package(by_key.get(key, []), updates_by_key.get(key), node_product))
    return packages, ""


def _package(entries: list[dict], update: dict | None, node_product: str | None) -> Package:
    first = entries[0] if entries else update
    manager = first.get("PackageManager", "apt")
    newer_than = comparator(manager)
    order = cmp_to_key(newer_than)
    version = update["InstalledVersion"] if update else max((_installed_version(e) for e in entries), key=order)
    common = dict(name=first["Name"], arch=first.get("Architecture", ""), package_manager=manager,
                  product=node_product, priority=first.get("Priority") or (update or {}).get("Priority", ""),
                  section=first.get("Section") or (update or {}).get("Section", ""))
    installed = Candidate(version=version, installed=True, **common)
    if update is None:
        return Package(installed, ())
    found = []
    for element in update.get("Versions") or [{"Version": update["CandidateVersion"], "Security":
                                                update.get("Security", False), "Suite": update.get("Suite", "")}]:
        attrs = {**update, **element}
        if newer_than(attrs["Version"], version) <= 0 or attrs.get("PinPriority", 0) < 0:
            continue  # not an update, or pinned away (apt never installs a version pinned below 0)
        found.append(Candidate(
            version=attrs["Version"], security=bool(attrs.get("Security")), suite=attrs.get("Suite", ""),
            codename=attrs.get("Codename", ""), repository=attrs.get("Repository", ""),
            classification=attrs.get("Classification", ""), severity=attrs.get("Severity", ""),
            advisories=tuple(attrs.get("Advisories") or ()), **common))
    found.sort(key=lambda c: order(c.version), reverse=True)
    return Package(installed, tuple(found))


def _installed_version(entry: Mapping) -> str:
    if entry.get("PackageManager") != "dnf":
        return entry["Version"]
    epoch = entry.get("Epoch") or ""
    prefix = f"{epoch}:" if epoch not in ("", "0") else ""
    return f"{prefix}{entry['Version']}-{entry['Release']}" if entry.get("Release") else prefix + entry["Version"]


# --- the node's compliance: evaluate() ----------------------------------------------------------

def evaluate(baseline: PatchBaseline, inventory: Mapping | None, *, first_seen: Mapping[str, str], now: datetime,
             previous: Mapping[str, tuple[str, str]] = EMPTY) -> PatchReport:
    """The node's patch compliance against `baseline`.

    `first_seen`: "name=version" -> ISO-8601 UTC time plumb first saw that version (absent:
    now). `previous`: name (or "name:arch") -> (state, version) from the node's last
    Scan/Install: FAILED stays FAILED for the same version, INSTALLED_PENDING_REBOOT stays
    while RebootRequired is true, and it settles approvals inventory cannot decide."""
    system, node_product = operating_system(inventory), product(inventory)
    first_seen, previous = first_seen or EMPTY, previous or EMPTY
    report = PatchReport(baseline.name, system or "", node_product or "", ())
    unknown = _cannot_evaluate(baseline, inventory, system)
    if unknown:
        return replace(report, unknown=unknown)
    packages, reason = candidates(inventory)
    if packages is None:
        return replace(report, unknown=reason)
    managers = {p.installed.package_manager for p in packages} - PACKAGE_MANAGERS[baseline.family]
    if managers:
        return replace(report, unknown=f"baseline '{baseline.name}' is for {baseline.family} but the node's "
                                       f"packages are managed by {', '.join(sorted(managers))}")
    reboot = _instance(inventory)[0].get("RebootRequired")
    states = [_state(baseline, package, first_seen, now, previous, reboot) for package in packages]
    states += _not_applicable(baseline, packages)
    return replace(report, patches=tuple(sorted(states, key=lambda s: (s.name, s.arch))), notes=_notes(baseline))


def _notes(baseline: PatchBaseline) -> tuple[str, ...]:
    if baseline.family != "yum":
        return ()
    lists = (("approvedPatches", baseline.approved_patches), ("rejectedPatches", baseline.rejected_patches))
    return tuple(f"/spec/{field}/{index} {entry}: CVE and Bugzilla ids are not in plumb's inventory; not evaluated"
                 for field, entries in lists for index, entry in enumerate(entries) if _UNOBSERVED_IDS.match(entry))


def _cannot_evaluate(baseline: PatchBaseline, inventory: Mapping | None, system: str | None) -> str:
    info, reason = _instance(inventory)
    if info is None:
        return reason
    if system is None:
        return f"PlatformName '{info.get('PlatformName', '')}' is not an operating system plumb patches"
    if baseline.operating_system != system:
        return f"baseline '{baseline.name}' is for {baseline.operating_system}; this node runs {system}"
    if baseline.family not in PACKAGE_MANAGERS:
        return f"plumb evaluates apt and yum/dnf baselines only, not {baseline.operating_system}"
    return ""


def _previous(previous: Mapping[str, tuple[str, str]], candidate: Candidate) -> tuple[str, str] | None:
    found = previous.get(f"{candidate.name}:{candidate.arch}") or previous.get(candidate.name)
    return (str(found[0]), str(found[1])) if found else None  # a list when read back from JSON


def _state(baseline, package: Package, first_seen, now, previous, reboot) -> PatchState:
    installed, newer = package
    decisions = [(c, approve(baseline, c, first_seen=first_seen, now=now)) for c in newer]
    own = _settled(approve(baseline, installed, first_seen=first_seen, now=now), installed, previous)
    last = _previous(previous, installed)
    common = dict(name=installed.name, arch=installed.arch, installed_version=installed.version,
                  available=newer[0].version if newer else "", installed_approval=own)
    chosen = next(((c, a) for c, a in decisions if a.approved), None)
    if chosen is not None:
        candidate, approval = chosen
        state = State.FAILED if last == (State.FAILED, candidate.version) else State.MISSING
        return PatchState(state=state, version=candidate.version, severity=approval.compliance_level,
                          approval=approval, security=candidate.security, suite=candidate.source, **common)
    if own.rejected:
        state = State.INSTALLED_REJECTED if baseline.rejected_patches_action == "BLOCK" else State.INSTALLED_OTHER
    elif not own.approved:
        state = State.INSTALLED_OTHER
    elif last == (State.INSTALLED_PENDING_REBOOT, installed.version) and reboot is True:
        state = State.INSTALLED_PENDING_REBOOT
    else:
        state = State.INSTALLED
    return PatchState(state=state, version=installed.version, approval=_why_not(decisions) or own,
                      severity=own.compliance_level if own.approved else UNSPECIFIED,
                      security=False, suite="", **common)


def _settled(own: Approval, installed: Candidate, previous) -> Approval:
    """An undecided installed version is approved if the previous run approved that same version."""
    last = _previous(previous, installed)
    if own.known or last is None or last[1] != installed.version or last[0] not in _APPROVED_STATES:
        return own
    return replace(own, approved=True, known=True,
                   reason=f"{own.reason}; approved when plumb last evaluated it ({last[0]} at {last[1]})")


def _why_not(decisions: list[tuple[Candidate, Approval]]) -> Approval | None:
    """Why none of the newer versions is approved (all of them, newest first)."""
    if not decisions:
        return None
    first = decisions[0][1]
    if len(decisions) == 1:
        return first
    return replace(first, reason="; ".join(f"{c.version}: {a.reason}" for c, a in decisions))


def _not_applicable(baseline: PatchBaseline, packages: list[Package]) -> list[PatchState]:
    """approvedPatches entries that name nothing installed on the node (nor any update of it)."""
    found = []
    for index, entry in enumerate(baseline.approved_patches):
        if baseline.family == "yum" and (_UNOBSERVED_IDS.match(entry) or _ADVISORY_ID.match(entry)):
            continue  # ids name advisories, not packages
        if entry in baseline.rejected_patches or any(
                _listed([entry], c, baseline.family) for p in packages for c in (p.installed, *p.newer)):
            continue
        approval = Approval(True, False, baseline.approved_patches_compliance_level, "approvedPatches",
                            f"/spec/approvedPatches/{index}", f"{entry} is in approvedPatches and is not installed")
        found.append(PatchState(entry, "", State.NOT_APPLICABLE, "", "", baseline.approved_patches_compliance_level,
                                approval, False, "", installed_approval=None))
    return found


def _level_rank(level: str) -> int:
    return COMPLIANCE_LEVELS.index(level) if level in COMPLIANCE_LEVELS else len(COMPLIANCE_LEVELS)
