"""The `PatchBaseline` kind: which patches are approved for which nodes (SSM patch baselines).

Besides SSM's baseline fields it names the patch groups it serves (nodes' `PatchGroup`
label), whether it is its operating system's default, and how Install runs (maintenance
window, reboot option, rate controls). This module owns the per-OS rules: filter keys,
PRIORITY values, approval dates and the approved/rejected name formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Iterator

from ..diagnostics import Diagnostic
from .base import Manifest, Meta, Origin

KIND = "PatchBaseline"
SCHEMA = "patchbaseline"

APT_SYSTEMS = frozenset({"UBUNTU", "DEBIAN", "RASPBIAN"})
YUM_SYSTEMS = frozenset({"AMAZON_LINUX", "AMAZON_LINUX_2", "AMAZON_LINUX_2022", "AMAZON_LINUX_2023",
                         "REDHAT_ENTERPRISE_LINUX", "CENTOS", "ORACLE_LINUX", "ROCKY_LINUX", "ALMA_LINUX"})
APT_PRIORITIES = ("Required", "Important", "Standard", "Optional", "Extra")
LINUX_SEARCH_KEYS = frozenset({"NAME", "EPOCH", "VERSION", "RELEASE", "ARCH", "REPOSITORY",
                               "ADVISORY_ID", "CVE_ID", "BUGZILLA_ID", "SECURITY"})
RULE_KEYS = {
    "apt": frozenset({"PRODUCT", "PRIORITY", "SECTION", "NAME"}),
    "yum": frozenset({"PRODUCT", "CLASSIFICATION", "SEVERITY", "NAME"}),
    "SUSE": frozenset({"PRODUCT", "CLASSIFICATION", "SEVERITY"}),
    "WINDOWS": frozenset({"PATCH_SET", "PRODUCT", "PRODUCT_FAMILY", "CLASSIFICATION", "MSRC_SEVERITY"}),
    "MACOS": frozenset({"PRODUCT", "CLASSIFICATION"}),
}
_APT_NAME = re.compile(r"^[a-z0-9][a-z0-9+.\-]+$")
# Bugzilla id, CVE id, advisory id, or a package in one of SSM's spellings: name, name.arch,
# name-version[-release][.arch], with an epoch where SSM allows one (name-E:V-R.arch,
# E:name-V-R.arch, name.arch:E:V-R, E:V-R).
_YUM_APPROVED = re.compile(
    r"^(\d+|CVE-\d{4}-\d{4,}|[A-Z]+-\d{4}[:-]\d+"
    r"|(\d+:)?[A-Za-z0-9_.+\-*]+(-(\d+:)?[A-Za-z0-9_.+*~]+){0,2}(\.[a-z0-9_*]+)?"
    r"|[A-Za-z0-9_.+\-*]+\.[a-z0-9_*]+:\d+:[A-Za-z0-9_.+*~]+(-[A-Za-z0-9_.+*~]+)?"
    r"|\d+:[A-Za-z0-9_.+*~]+-[A-Za-z0-9_.+*~]+)$")


@dataclass(frozen=True)
class PatchFilter:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class PatchRule:
    filters: tuple[PatchFilter, ...]
    compliance_level: str = "UNSPECIFIED"
    approve_after_days: int | None = None
    approve_until_date: str = ""
    enable_non_security: bool = False


@dataclass(frozen=True)
class PatchBaseline:
    meta: Meta
    origin: Origin
    operating_system: str
    description: str = ""
    global_filters: tuple[PatchFilter, ...] = ()
    rules: tuple[PatchRule, ...] = ()
    approved_patches: tuple[str, ...] = ()
    approved_patches_compliance_level: str = "UNSPECIFIED"
    approved_patches_enable_non_security: bool = False
    rejected_patches: tuple[str, ...] = ()
    rejected_patches_action: str = "ALLOW_AS_DEPENDENCY"
    patch_groups: tuple[str, ...] = ()
    default: bool = False
    maintenance_window: str = ""
    reboot_option: str = "RebootIfNeeded"
    max_concurrency: str = "100%"
    max_errors: str = "0"

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def family(self) -> str:
        if self.operating_system in APT_SYSTEMS:
            return "apt"
        if self.operating_system in YUM_SYSTEMS:
            return "yum"
        return self.operating_system


def _filters(group) -> tuple[PatchFilter, ...]:
    return tuple(PatchFilter(f["key"], tuple(f["values"])) for f in (group or {}).get("patchFilters", ()))


def build(manifest: Manifest) -> PatchBaseline:
    spec = manifest.spec
    rules = tuple(
        PatchRule(
            filters=_filters(r["patchFilterGroup"]),
            compliance_level=r.get("complianceLevel", "UNSPECIFIED"),
            approve_after_days=r.get("approveAfterDays"),
            approve_until_date=r.get("approveUntilDate", ""),
            enable_non_security=r.get("enableNonSecurity", False),
        )
        for r in (spec.get("approvalRules") or {}).get("patchRules", ())
    )
    return PatchBaseline(
        meta=manifest.meta,
        origin=manifest.origin,
        operating_system=spec["operatingSystem"],
        description=spec.get("description", ""),
        global_filters=_filters(spec.get("globalFilters")),
        rules=rules,
        approved_patches=tuple(spec.get("approvedPatches", ())),
        approved_patches_compliance_level=spec.get("approvedPatchesComplianceLevel", "UNSPECIFIED"),
        approved_patches_enable_non_security=spec.get("approvedPatchesEnableNonSecurity", False),
        rejected_patches=tuple(spec.get("rejectedPatches", ())),
        rejected_patches_action=spec.get("rejectedPatchesAction", "ALLOW_AS_DEPENDENCY"),
        patch_groups=tuple(spec.get("patchGroups", ())),
        default=spec.get("default", False),
        maintenance_window=spec.get("maintenanceWindow", ""),
        reboot_option=spec.get("rebootOption", "RebootIfNeeded"),
        max_concurrency=spec.get("maxConcurrency", "100%"),
        max_errors=spec.get("maxErrors", "0"),
    )


def check(baseline: PatchBaseline) -> Iterator[Diagnostic]:
    yield from _check_filter_group(baseline, "/spec/globalFilters", baseline.global_filters, global_=True)
    for index, rule in enumerate(baseline.rules):
        pointer = f"/spec/approvalRules/patchRules/{index}"
        yield from _check_filter_group(baseline, f"{pointer}/patchFilterGroup", rule.filters, global_=False)
        yield from _check_rule_dates(baseline, pointer, rule)
    yield from _check_names(baseline, "approvedPatches", baseline.approved_patches, approved=True)
    yield from _check_names(baseline, "rejectedPatches", baseline.rejected_patches, approved=False)


def _allowed_keys(baseline: PatchBaseline, global_: bool) -> frozenset:
    keys = RULE_KEYS.get(baseline.family, frozenset())
    if global_ and baseline.family in ("apt", "yum", "SUSE"):
        keys = keys | LINUX_SEARCH_KEYS
    return keys


def _check_filter_group(baseline, pointer, filters, global_) -> Iterator[Diagnostic]:
    origin = baseline.origin
    allowed = _allowed_keys(baseline, global_)
    seen = set()
    for index, patch_filter in enumerate(filters):
        here = f"{pointer}/patchFilters/{index}"
        if patch_filter.key in seen:
            yield origin.diagnostic(f"{here}/key", f"filter key {patch_filter.key} is used twice in this group")
        seen.add(patch_filter.key)
        if allowed and patch_filter.key not in allowed:
            yield origin.diagnostic(f"{here}/key", f"{patch_filter.key} is not a filter key for "
                                    f"{baseline.operating_system}", expected="one of: " + ", ".join(sorted(allowed)))
        if patch_filter.key == "PRIORITY" and baseline.family == "apt":
            for vindex, value in enumerate(patch_filter.values):
                if value != "*" and value not in APT_PRIORITIES:
                    yield origin.diagnostic(f"{here}/values/{vindex}", f"'{value}' is not a Debian priority",
                                            expected="one of: " + ", ".join(APT_PRIORITIES) + " or *")


def _check_rule_dates(baseline, pointer, rule: PatchRule) -> Iterator[Diagnostic]:
    origin = baseline.origin
    if rule.approve_after_days is not None and rule.approve_until_date:
        yield origin.diagnostic(f"{pointer}/approveUntilDate",
                                "give approveAfterDays or approveUntilDate, not both", key=True)
    elif rule.approve_after_days is None and not rule.approve_until_date and baseline.family != "apt":
        yield origin.diagnostic(pointer, f"a {baseline.operating_system} approval rule needs approveAfterDays "
                                "or approveUntilDate")
    if rule.approve_until_date:
        try:
            date.fromisoformat(rule.approve_until_date)
        except ValueError:
            yield origin.diagnostic(f"{pointer}/approveUntilDate",
                                    f"'{rule.approve_until_date}' is not a calendar date", expected="YYYY-MM-DD")


def _check_names(baseline, field, names, approved) -> Iterator[Diagnostic]:
    family = baseline.family
    for index, name in enumerate(names):
        if family == "apt" and not _APT_NAME.match(name):
            yield baseline.origin.diagnostic(f"/spec/{field}/{index}", f"'{name}' is not a bare Debian package name",
                                             expected="a package name only, such as openssl (no version or arch)")
        elif family == "yum" and (name.count("*") > 1 or (approved and not _YUM_APPROVED.match(name))):
            yield baseline.origin.diagnostic(
                f"/spec/{field}/{index}", f"'{name}' is not a valid {field} entry for {baseline.operating_system}",
                expected="a package name (name-version-release.arch allowed), a CVE id, an advisory id, "
                         "a Bugzilla id, or a name with one * wildcard")
