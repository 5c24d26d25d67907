"""apt baselines on the captured Debian 12 (bookworm-security, bookworm-updates) and Ubuntu
22.04 (jammy-updates, jammy-security, nginx.org) nodes: filter keys, rule order, the
security-suite condition, approved/rejected lists, and approval dates counted in whole UTC
days from plumb's first sighting.

Debian 12: libssl3, openssl (optional; libs, utils) 3.0.15 → 3.0.16 from stable-security;
tzdata (required, all) 2024a → 2025b (stable-updates) or 2024b (bookworm).
Ubuntu 22.04: curl 1.15 → 1.18 (jammy-updates) or 1.16 (jammy-security); libc6 amd64+i386,
openssl → security versions; nginx → nginx.org; tzdata (held, pin 990) → jammy-updates."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from patchkit import NOW
from reconciler import patching
from reconciler.patching import Candidate

DEBIAN = "debian12-security"


def states(report) -> dict:
    """name (name:arch for foreign-architecture duplicates) -> (state, version)."""
    names = [p.name for p in report.patches]
    return {(p.name if names.count(p.name) == 1 else f"{p.name}:{p.arch}"): (str(p.state), p.version)
            for p in report.patches}


def run(baseline, doc, first_seen=None, now=NOW, previous=None):
    report = patching.evaluate(baseline, doc, first_seen=first_seen or {}, now=now, previous=previous or {})
    assert not report.unknown, report.unknown
    return report


def rule(filters: str, extra: str = "") -> str:
    """One approval rule; filters as `KEY: [v, ...]` lines separated by ';'."""
    lines = "\n".join(f"          - {{key: {f.split(':', 1)[0].strip()}, values: {f.split(':', 1)[1].strip()}}}"
                      for f in filters.split(";"))
    more = "".join(f"\n      {item.strip()}" for item in extra.split(";") if item.strip())
    return f"    - patchFilterGroup:\n        patchFilters:\n{lines}{more}"


def rules(*items: str) -> str:
    return "approvalRules:\n  patchRules:\n" + "\n".join(items)


class TestFilterKeys:
    def test_product_global_filter_keeps_other_releases_out(self, inventory, baseline):
        report = run(baseline("globalFilters:\n  patchFilters:\n    - {key: PRODUCT, values: [Debian11]}\n"
                              + rules(rule("PRIORITY: ['*']"))), inventory(DEBIAN))
        assert {s for s, _ in states(report).values()} == {"INSTALLED_OTHER"}
        approval = report.patches[0].approval
        assert approval.rule == "global filters exclude it (PRODUCT Debian12 not in Debian11)"
        assert approval.pointer == "/spec/globalFilters/patchFilters/0"

    def test_product_matching_the_node_passes(self, inventory, baseline):
        report = run(baseline("globalFilters:\n  patchFilters:\n    - {key: PRODUCT, values: [Debian11, Debian12]}\n"
                              + rules(rule("PRIORITY: ['*']"))), inventory(DEBIAN))
        assert states(report)["openssl"] == ("MISSING", "3.0.16-1~deb12u1")

    def test_priority_compares_with_ssm_capitalised_values(self, inventory, baseline):
        report = run(baseline(rules(rule("PRIORITY: [Required]", "enableNonSecurity: true"))), inventory(DEBIAN))
        assert states(report) == {"libssl3": ("INSTALLED_OTHER", "3.0.15-1~deb12u1"),
                                  "openssl": ("INSTALLED_OTHER", "3.0.15-1~deb12u1"),
                                  "tzdata": ("MISSING", "2025b-0+deb12u1")}
        libssl3 = report.patches[0]
        assert libssl3.approval.rule == "no rule matches"
        assert "rule 1: PRIORITY optional not in Required" in libssl3.approval.reason

    def test_section_is_exact(self, inventory, baseline):
        assert states(run(baseline(rules(rule("SECTION: [libs]"))), inventory(DEBIAN)))["libssl3"][0] == "MISSING"
        found = states(run(baseline(rules(rule("SECTION: [lib, Libs]"))), inventory(DEBIAN)))
        assert {s for s, _ in found.values()} == {"INSTALLED_OTHER"}
        found = states(run(baseline(rules(rule("SECTION: ['*']"))), inventory(DEBIAN)))
        assert (found["libssl3"][0], found["openssl"][0]) == ("MISSING", "MISSING")

    def test_section_of_a_non_main_component_matches_its_last_part(self, baseline):
        net = Candidate("iputils-ping", "amd64", "2.0", "apt", "Debian12", "optional", "contrib/net", security=True)
        assert patching.approve(baseline(rules(rule("SECTION: [net]"))), net, now=NOW).approved
        assert patching.approve(baseline(rules(rule("SECTION: [contrib/net]"))), net, now=NOW).approved

    def test_name_takes_wildcards(self, inventory, baseline):
        found = states(run(baseline(rules(rule("NAME: ['libssl*']"))), inventory(DEBIAN)))
        assert (found["libssl3"][0], found["openssl"][0]) == ("MISSING", "INSTALLED_OTHER")
        found = states(run(baseline(rules(rule("NAME: ['*ssl*']"))), inventory(DEBIAN)))
        assert (found["libssl3"][0], found["openssl"][0]) == ("MISSING", "MISSING")

    def test_filters_of_a_group_are_anded_and_values_ored(self, inventory, baseline):
        found = states(run(baseline(rules(rule("SECTION: [libs, utils]; PRIORITY: [Required, Optional]"))),
                           inventory(DEBIAN)))
        assert (found["libssl3"][0], found["openssl"][0]) == ("MISSING", "MISSING")
        found = states(run(baseline(rules(rule("SECTION: [libs, utils]; PRIORITY: [Required]"))), inventory(DEBIAN)))
        assert (found["libssl3"][0], found["openssl"][0]) == ("INSTALLED_OTHER", "INSTALLED_OTHER")

    def test_arch_global_filter(self, inventory, baseline):
        report = run(baseline("globalFilters:\n  patchFilters:\n    - {key: ARCH, values: [all]}\n"
                              + rules(rule("PRIORITY: ['*']", "enableNonSecurity: true"))), inventory(DEBIAN))
        assert states(report) == {"libssl3": ("INSTALLED_OTHER", "3.0.15-1~deb12u1"),
                                  "openssl": ("INSTALLED_OTHER", "3.0.15-1~deb12u1"),
                                  "tzdata": ("MISSING", "2025b-0+deb12u1")}

    def test_repository_global_filter_is_the_suite_and_undecided_for_installed_versions(self, inventory, baseline):
        report = run(baseline("globalFilters:\n  patchFilters:\n    - {key: REPOSITORY, values: [stable-security]}\n"
                              + rules(rule("PRIORITY: ['*']", "enableNonSecurity: true"))), inventory(DEBIAN))
        assert states(report)["openssl"] == ("MISSING", "3.0.16-1~deb12u1")
        tzdata = report.patches[2]
        assert tzdata.state == "INSTALLED_OTHER"
        assert "REPOSITORY stable-updates not in stable-security" in tzdata.approval.reason
        assert tzdata.installed_approval.known is False  # the installed version's archive is not observed
        assert "REPOSITORY of the installed 2024a-0+deb12u1 is not in plumb's inventory" in (
            tzdata.installed_approval.reason)

    def test_version_filters_split_epoch_version_and_revision(self, inventory, baseline):
        found = states(run(baseline("globalFilters:\n  patchFilters:\n    - {key: VERSION, values: ['3.0.16*']}\n"
                                    + rules(rule("PRIORITY: ['*']"))), inventory(DEBIAN)))
        assert found["openssl"][0] == "MISSING"
        found = states(run(baseline("globalFilters:\n  patchFilters:\n    - {key: RELEASE, values: ['1~deb12u1']}\n"
                                    + rules(rule("PRIORITY: ['*']"))), inventory(DEBIAN)))
        assert found["libssl3"][0] == "MISSING"


class TestRuleOrder:
    def test_first_approving_rule_gives_compliance_level_and_pointer(self, inventory, baseline):
        report = run(baseline(rules(rule("NAME: [openssl]", "complianceLevel: HIGH"),
                                    rule("PRIORITY: [Optional]", "complianceLevel: LOW"))), inventory(DEBIAN))
        libssl3, openssl, _ = report.patches
        assert (openssl.severity, openssl.approval.pointer) == ("HIGH", "/spec/approvalRules/patchRules/0")
        assert openssl.approval.rule == "approval rule 1 (NAME in openssl)"
        assert (libssl3.severity, libssl3.approval.pointer) == ("LOW", "/spec/approvalRules/patchRules/1")

    def test_a_later_rule_approves_what_an_earlier_one_still_delays(self, inventory, baseline):
        spec = baseline(rules(rule("SECTION: [libs]", "complianceLevel: CRITICAL; approveAfterDays: 30"),
                              rule("PRIORITY: [Optional]", "complianceLevel: MEDIUM; approveAfterDays: 7")))
        seen_10_days_ago = {"libssl3=3.0.16-1~deb12u1": "2026-11-13T08:00:00Z"}
        libssl3 = run(spec, inventory(DEBIAN), seen_10_days_ago).patches[0]
        assert (libssl3.state, libssl3.severity, libssl3.approval.rule) == (
            "MISSING", "MEDIUM", "approval rule 2 (PRIORITY in Optional)")
        libssl3 = run(spec, inventory(DEBIAN), {"libssl3=3.0.16-1~deb12u1": "2026-10-01T00:00:00Z"}).patches[0]
        assert (libssl3.severity, libssl3.approval.rule) == ("CRITICAL", "approval rule 1 (SECTION in libs)")

    def test_no_rule_approving_explains_every_rule_that_matched(self, inventory, baseline):
        spec = baseline(rules(rule("SECTION: [libs]", "approveAfterDays: 30"),
                              rule("PRIORITY: [Optional]", "approveAfterDays: 7")))
        libssl3 = run(spec, inventory(DEBIAN)).patches[0]
        assert libssl3.state == "INSTALLED"  # the installed version matches both rules
        assert libssl3.approval.pointer == "/spec/approvalRules/patchRules/0"
        assert libssl3.approval.reason == (
            "approval rule 1 (SECTION in libs): first seen by plumb now, 2026-11-23 (0 whole UTC days ago; "
            "approveAfterDays 30) → approved from 2026-12-23; approval rule 2 (PRIORITY in Optional): first seen "
            "by plumb now, 2026-11-23 (0 whole UTC days ago; approveAfterDays 7) → approved from 2026-11-30")


class TestSecuritySuite:
    def test_only_security_updates_without_enable_non_security(self, inventory, baseline):
        report = run(baseline(rules(rule("PRIORITY: [Required]", "complianceLevel: HIGH"))), inventory(DEBIAN))
        tzdata = report.patches[2]
        assert (tzdata.state, tzdata.version, tzdata.available, tzdata.severity) == (
            "INSTALLED", "2024a-0+deb12u1", "2025b-0+deb12u1", "HIGH")
        assert tzdata.approval.approved is False
        assert tzdata.approval.reason.startswith(
            "2025b-0+deb12u1: only security updates (enableNonSecurity false) and 2025b-0+deb12u1 is from "
            "stable-updates (not a security suite)")
        assert tzdata.installed_approval.approved

    def test_enable_non_security_takes_the_newest_version(self, inventory, baseline):
        report = run(baseline(rules(rule("PRIORITY: [Required]", "enableNonSecurity: true"))), inventory(DEBIAN))
        tzdata = report.patches[2]
        assert (tzdata.state, tzdata.version, tzdata.security, tzdata.suite) == (
            "MISSING", "2025b-0+deb12u1", False, "stable-updates")

    def test_security_version_below_a_newer_normal_suite_candidate_is_chosen(self, inventory, baseline):
        report = run(baseline(rules(rule("PRIORITY: ['*']")), os="UBUNTU"), inventory("ubuntu2204"))
        curl = next(p for p in report.patches if p.name == "curl")
        assert (curl.state, curl.version, curl.available, curl.suite, curl.security) == (
            "MISSING", "7.81.0-1ubuntu1.16", "7.81.0-1ubuntu1.18", "jammy-security", True)
        assert "7.81.0-1ubuntu1.16 is from jammy-security (a security suite)" in curl.approval.reason

    def test_with_enable_non_security_the_normal_suite_candidate_wins(self, inventory, baseline):
        spec = baseline(rules(rule("PRIORITY: ['*']", "enableNonSecurity: true")), os="UBUNTU")
        report = run(spec, inventory("ubuntu2204"))
        assert states(report)["curl"] == ("MISSING", "7.81.0-1ubuntu1.18")
        assert states(report)["nginx"] == ("MISSING", "1.26.1-2~jammy")

    def test_third_party_repository_without_release_file_is_not_security(self, inventory, baseline):
        report = run(baseline(rules(rule("PRIORITY: ['*']")), os="UBUNTU"), inventory("ubuntu2204"))
        nginx = next(p for p in report.patches if p.name == "nginx")
        assert (nginx.state, nginx.approval.reason) == (
            "INSTALLED", "only security updates (enableNonSecurity false) and 1.26.1-2~jammy is from jammy "
                         "(not a security suite)")

    def test_each_architecture_is_its_own_patch(self, inventory, baseline):
        found = states(run(baseline(rules(rule("SECTION: [libs]")), os="UBUNTU"), inventory("ubuntu2204")))
        assert found["libc6:amd64"] == found["libc6:i386"] == ("MISSING", "2.35-0ubuntu3.8")

    def test_without_versions_the_candidate_is_the_only_update(self, inventory, baseline):
        doc = inventory("ubuntu2204", versions={"curl": None})  # an agent from before `Versions`
        assert states(run(baseline(rules(rule("PRIORITY: ['*']")), os="UBUNTU"), doc))["curl"] == (
            "INSTALLED", "7.81.0-1ubuntu1.15")  # 1.18 is apt's candidate, from jammy-updates

    def test_a_version_pinned_below_zero_is_never_chosen(self, inventory, baseline):
        versions = [{"Version": "7.81.0-1ubuntu1.16", "Suite": "jammy-security", "Security": True, "PinPriority": -1}]
        doc = inventory("ubuntu2204", versions={"curl": versions})
        assert states(run(baseline(rules(rule("PRIORITY: ['*']")), os="UBUNTU"), doc))["curl"][0] == "INSTALLED"


class TestApprovedAndRejected:
    def test_approved_name_gets_its_newest_security_version_and_list_level(self, inventory, baseline):
        report = run(baseline("approvedPatches: [curl]\napprovedPatchesComplianceLevel: HIGH", os="UBUNTU"),
                     inventory("ubuntu2204"))
        curl = next(p for p in report.patches if p.name == "curl")
        assert (curl.state, curl.version, curl.severity, curl.approval.pointer) == (
            "MISSING", "7.81.0-1ubuntu1.16", "HIGH", "/spec/approvedPatches/0")
        assert states(report)["openssl"][0] == "INSTALLED_OTHER"  # no rules: nothing else approved

    def test_approved_patches_enable_non_security_takes_the_newest(self, inventory, baseline):
        report = run(baseline("approvedPatches: [curl, tzdata]\napprovedPatchesEnableNonSecurity: true", os="UBUNTU"),
                     inventory("ubuntu2204"))
        assert states(report)["curl"] == ("MISSING", "7.81.0-1ubuntu1.18")
        assert states(report)["tzdata"] == ("MISSING", "2024b-0ubuntu0.22.04.1")

    def test_approved_name_with_only_non_security_updates_stays_installed(self, inventory, baseline):
        report = run(baseline("approvedPatches: [tzdata]", os="UBUNTU"), inventory("ubuntu2204"))
        tzdata = next(p for p in report.patches if p.name == "tzdata")
        assert (tzdata.state, tzdata.installed_approval.rule) == ("INSTALLED", "approvedPatches")
        assert tzdata.approval.reason == (
            "tzdata is in approvedPatches but only security updates (approvedPatchesEnableNonSecurity false) and "
            "2024b-0ubuntu0.22.04.1 is from jammy-updates (not a security suite)")

    def test_approved_patches_skip_the_rules_delay(self, inventory, baseline):
        spec = baseline(rules(rule("PRIORITY: [Optional]", "approveAfterDays: 7")) + "\napprovedPatches: [openssl]")
        assert states(run(spec, inventory(DEBIAN))) == {
            "libssl3": ("INSTALLED", "3.0.15-1~deb12u1"),
            "openssl": ("MISSING", "3.0.16-1~deb12u1"),
            "tzdata": ("INSTALLED_OTHER", "2024a-0+deb12u1"),
        }

    def test_approved_names_not_installed_are_not_applicable(self, inventory, baseline):
        report = run(baseline("approvedPatches: [curl, htop]\napprovedPatchesComplianceLevel: LOW", os="UBUNTU"),
                     inventory("ubuntu2204"))
        htop = next(p for p in report.patches if p.name == "htop")
        assert (htop.state, htop.arch, htop.installed_version, htop.compliant) == ("NOT_APPLICABLE", "", "", True)
        assert (htop.approval.pointer, htop.approval.reason) == (
            "/spec/approvedPatches/1", "htop is in approvedPatches and is not installed")

    @pytest.mark.parametrize("action, state, compliant", [
        ("BLOCK", "INSTALLED_REJECTED", False), ("ALLOW_AS_DEPENDENCY", "INSTALLED_OTHER", True)])
    def test_rejected_wins_over_approved(self, inventory, baseline, action, state, compliant):
        report = run(baseline(f"approvedPatches: [openssl]\nrejectedPatches: [openssl, telnet]\n"
                              f"rejectedPatchesAction: {action}"), inventory(DEBIAN))
        openssl = report.patches[1]
        assert (openssl.state, openssl.compliant, openssl.version) == (state, compliant, "3.0.15-1~deb12u1")
        assert (openssl.approval.rejected, openssl.approval.rule, openssl.approval.pointer) == (
            True, "rejectedPatches", "/spec/rejectedPatches/0")
        assert f"rejectedPatchesAction {action}" in openssl.approval.reason
        assert "telnet" not in states(report) and "openssl" in states(report)  # no state for what is not installed


class TestApprovalDates:
    SPEC = "approvalRules:\n  patchRules:\n" + rule("SECTION: [libs]", "approveAfterDays: 7")

    def libssl3(self, inventory, baseline, seen, now, spec=None):
        first_seen = {"libssl3=3.0.16-1~deb12u1": seen} if seen else {}
        return run(baseline(spec or self.SPEC), inventory(DEBIAN), first_seen, now).patches[0]

    def test_seen_at_2359_counts_a_whole_day_at_midnight(self, inventory, baseline):
        midnight = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
        patch = self.libssl3(inventory, baseline, "2026-11-16T23:59:00Z", midnight)
        assert patch.state == "MISSING"
        assert patch.approval.reason.endswith(
            "first seen by plumb 2026-11-16 (7 whole UTC days ago; approveAfterDays 7)")

    def test_six_whole_days_is_not_yet_seven(self, inventory, baseline):
        patch = self.libssl3(inventory, baseline, "2026-11-17T00:00:00Z",
                             datetime(2026, 11, 23, 23, 59, 59, tzinfo=timezone.utc))
        assert (patch.state, patch.approval.approved) == ("INSTALLED", False)
        assert patch.approval.reason == (
            "first seen by plumb 2026-11-17 (6 whole UTC days ago; approveAfterDays 7) → approved from 2026-11-24")

    def test_days_are_utc_days(self, inventory, baseline):
        # 2026-11-16T20:00-05:00 is 2026-11-17T01:00Z; now 2026-11-23T23:30-05:00 is 2026-11-24T04:30Z
        patch = self.libssl3(inventory, baseline, "2026-11-16T20:00:00-05:00",
                             datetime.fromisoformat("2026-11-23T23:30:00-05:00"))
        assert "first seen by plumb 2026-11-17 (7 whole UTC days ago" in patch.approval.reason
        assert patch.state == "MISSING"

    def test_a_naive_now_is_utc(self, inventory, baseline):
        assert self.libssl3(inventory, baseline, "2026-11-16T23:59:00Z", datetime(2026, 11, 23)).state == "MISSING"

    def test_never_seen_counts_as_first_seen_now(self, inventory, baseline):
        patch = self.libssl3(inventory, baseline, None, NOW)
        assert patch.approval.reason == ("first seen by plumb now, 2026-11-23 (0 whole UTC days ago; "
                                         "approveAfterDays 7) → approved from 2026-11-30")
        spec = "approvalRules:\n  patchRules:\n" + rule("SECTION: [libs]", "approveAfterDays: 0")
        assert self.libssl3(inventory, baseline, None, NOW, spec).state == "MISSING"

    def test_approve_until_date_includes_that_day(self, inventory, baseline):
        spec = "approvalRules:\n  patchRules:\n" + rule("SECTION: [libs]", "approveUntilDate: '2026-11-16'")
        patch = self.libssl3(inventory, baseline, "2026-11-16T23:59:59Z", NOW, spec)
        assert patch.state == "MISSING"
        assert patch.approval.reason.endswith(
            "first seen by plumb 2026-11-16, on or before approveUntilDate 2026-11-16")
        patch = self.libssl3(inventory, baseline, "2026-11-17T00:00:00Z", NOW, spec)
        assert (patch.state, patch.approval.reason) == (
            "INSTALLED",
            "first seen by plumb 2026-11-17, after approveUntilDate 2026-11-16: this rule never approves it")

    def test_installed_version_seen_recently_is_not_yet_approved(self, inventory, baseline):
        seen = {"libssl3=3.0.15-1~deb12u1": "2026-11-21T10:00:00Z", "libssl3=3.0.16-1~deb12u1": "2026-11-22T10:00:00Z"}
        patch = run(baseline(self.SPEC), inventory(DEBIAN), seen).patches[0]
        assert patch.state == "INSTALLED_OTHER"
        assert patch.installed_approval.reason == (
            "first seen by plumb 2026-11-21 (2 whole UTC days ago; approveAfterDays 7) → approved from 2026-11-28")

    def test_installed_version_plumb_never_saw_as_an_update_predates_the_delay(self, inventory, baseline):
        patch = run(baseline(self.SPEC), inventory(DEBIAN)).patches[0]
        assert patch.state == "INSTALLED"
        assert "plumb never saw 3.0.15-1~deb12u1 as an update, so it predates any delay" in (
            patch.installed_approval.reason)

    def test_malformed_first_seen_is_an_error(self, inventory, baseline):
        with pytest.raises(ValueError, match="libssl3=3.0.16-1~deb12u1"):
            run(baseline(self.SPEC), inventory(DEBIAN), {"libssl3=3.0.16-1~deb12u1": "last tuesday"})
