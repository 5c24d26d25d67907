"""yum/dnf baselines on the captured RHEL 9.3 node (dnf check-update + updateinfo):

NetworkManager 1:1.44.0 → 1:1.46.0-8.el9_4  Security/Moderate  RHSA-2024:3306
kernel         362.13.1 → 427.20.1.el9_4    Security/Important RHSA-2024:3619 (+ RHBA bugfix)
openssl        1:3.0.7-24 → 1:3.0.7-27.el9  Security/Low       RHSA-2024:2447
python3-perf   362.13.1 → 427.20.1.el9_4    Security/Important RHSA-2024:3619 (appstream)
subscription-manager-rhsm-certificates (noarch) → 1.el9_4  Bugfix
tzdata (noarch) 2023c → 2024a               Enhancement
bash: no update. gpg-pubkey: rpm's key entry, not a package."""

from __future__ import annotations

import pytest

from patchkit import NOW
from reconciler import patching

RHEL = "REDHAT_ENTERPRISE_LINUX"
SUB = "subscription-manager-rhsm-certificates"
ALL_UPDATES = {"NetworkManager", "kernel", "openssl", "python3-perf", SUB, "tzdata"}


def run(spec, doc, first_seen=None, previous=None):
    report = patching.evaluate(spec, doc, first_seen=first_seen or {}, now=NOW, previous=previous or {})
    assert not report.unknown, report.unknown
    return report


def missing(report) -> set:
    return {p.name for p in report.missing}


def rule(filters: str, extra: str = "approveAfterDays: 0") -> str:
    lines = "\n".join(f"          - {{key: {f.split(':', 1)[0].strip()}, values: {f.split(':', 1)[1].strip()}}}"
                      for f in filters.split(";"))
    more = "".join(f"\n      {item.strip()}" for item in extra.split(";") if item.strip())
    return f"approvalRules:\n  patchRules:\n    - patchFilterGroup:\n        patchFilters:\n{lines}{more}"


def global_filter(key: str, values: str) -> str:
    return f"globalFilters:\n  patchFilters:\n    - {{key: {key}, values: {values}}}\n"


@pytest.fixture
def rhel(baseline):
    return lambda spec: baseline(spec, name="rhel", os=RHEL)


class TestRuleKeys:
    def test_product(self, inventory, rhel):
        assert missing(run(rhel(rule("PRODUCT: [RedhatEnterpriseLinux9.3]; CLASSIFICATION: [Security]")),
                           inventory("rhel9"))) == {"NetworkManager", "kernel", "openssl", "python3-perf"}
        assert missing(run(rhel(rule("PRODUCT: [RedhatEnterpriseLinux8.9]")), inventory("rhel9"))) == set()

    @pytest.mark.parametrize("values, expected", [
        ("[Bugfix]", {SUB}),
        ("[Enhancement]", {"tzdata"}),
        ("[security]", {"NetworkManager", "kernel", "openssl", "python3-perf"}),  # case-insensitive
        ("['*']", ALL_UPDATES),
    ])
    def test_classification(self, inventory, rhel, values, expected):
        assert missing(run(rhel(rule(f"CLASSIFICATION: {values}")), inventory("rhel9"))) == expected

    @pytest.mark.parametrize("values, expected", [
        ("[Critical, Important]", {"kernel", "python3-perf"}),
        ("[Moderate]", {"NetworkManager"}),
        ("[Medium]", {"NetworkManager"}),  # SSM's name for RHEL's Moderate on other systems
        ("[Low]", {"openssl"}),
    ])
    def test_severity(self, inventory, rhel, values, expected):
        assert missing(run(rhel(rule(f"CLASSIFICATION: [Security]; SEVERITY: {values}")), inventory("rhel9"))) == (
            expected)

    def test_name(self, inventory, rhel):
        assert missing(run(rhel(rule("NAME: [kernel, 'python3-*']")), inventory("rhel9"))) == {"kernel", "python3-perf"}

    def test_compliance_level_and_first_rule(self, inventory, rhel):
        spec = rhel(rule("CLASSIFICATION: [Security]; SEVERITY: [Critical, Important]",
                         "complianceLevel: CRITICAL; approveAfterDays: 0") +
                    "\n    - patchFilterGroup:\n        patchFilters:"
                    "\n          - {key: CLASSIFICATION, values: [Security]}"
                    "\n      complianceLevel: MEDIUM\n      approveAfterDays: 0")
        report = run(spec, inventory("rhel9"))
        levels = {p.name: (p.severity, p.approval.pointer) for p in report.missing}
        assert levels["kernel"] == ("CRITICAL", "/spec/approvalRules/patchRules/0")
        assert levels["openssl"] == ("MEDIUM", "/spec/approvalRules/patchRules/1")
        assert report.severity == "CRITICAL"


class TestGlobalFilterKeys:
    @pytest.mark.parametrize("key, values, expected", [
        ("ARCH", "[noarch]", {SUB, "tzdata"}),
        ("REPOSITORY", "[rhel-9-for-x86_64-appstream-rpms]", {"python3-perf"}),
        ("ADVISORY_ID", "['RHSA-2024:3619']", {"kernel", "python3-perf"}),
        ("SECURITY", "['false']", {SUB, "tzdata"}),
        ("EPOCH", "['1']", {"NetworkManager", "openssl"}),
        ("VERSION", "['5.14.0']", {"kernel", "python3-perf"}),
        ("RELEASE", "['*.el9_4']", {"NetworkManager", "kernel", "python3-perf", SUB}),
    ])
    def test_linux_search_keys(self, inventory, rhel, key, values, expected):
        assert missing(run(rhel(global_filter(key, values) + rule("CLASSIFICATION: ['*']")), inventory("rhel9"))) == (
            expected)

    def test_cve_ids_are_not_in_inventory_so_the_filter_decides_nothing(self, inventory, rhel):
        spec = rhel(global_filter("CVE_ID", "[CVE-2024-2511]") + rule("CLASSIFICATION: ['*']"))
        report = run(spec, inventory("rhel9"))
        assert missing(report) == set()
        kernel = next(p for p in report.patches if p.name == "kernel")
        assert kernel.approval.known is False
        assert kernel.approval.reason == (
            "global filters exclude it: CVE_ID of 5.14.0-427.20.1.el9_4 is not in plumb's inventory")


class TestDates:
    def test_approve_after_days_counts_from_plumbs_first_sighting_and_says_so(self, inventory, rhel):
        spec = rhel(rule("CLASSIFICATION: [Security]", "approveAfterDays: 7"))
        seen = {"kernel=5.14.0-427.20.1.el9_4": "2026-11-10T09:00:00Z",
                "openssl=1:3.0.7-27.el9": "2026-11-20T09:00:00Z"}
        report = run(spec, inventory("rhel9"), seen)
        assert missing(report) == {"kernel"}
        kernel = next(p for p in report.patches if p.name == "kernel")
        assert kernel.approval.reason.endswith(
            "first seen by plumb 2026-11-10 (13 whole UTC days ago; approveAfterDays 7); dnf inventory has no "
            "release dates, so plumb counts from that")
        openssl = next(p for p in report.patches if p.name == "openssl")
        assert "→ approved from 2026-11-27" in openssl.approval.reason


class TestLists:
    @pytest.mark.parametrize("entry", ["openssl", "openssl.x86_64", "openssl-3.0.7-27.el9.x86_64",
                                       "openssl-3.0.7-27.el9", "openssl-3.0.7*", "RHSA-2024:2447",
                                       "openssl-1:3.0.7-27.el9.x86_64", "1:openssl-3.0.7-27.el9.x86_64",
                                       "openssl.x86_64:1:3.0.7-27.el9", "1:3.0.7-27.el9"])
    def test_approved_patch_formats(self, inventory, rhel, entry):
        report = run(rhel(f"approvedPatches: ['{entry}']\napprovedPatchesComplianceLevel: HIGH"), inventory("rhel9"))
        assert missing(report) == {"openssl"}
        assert report.missing[0].severity == "HIGH"

    def test_approved_cve_ids_are_noted_not_guessed(self, inventory, rhel):
        report = run(rhel("approvedPatches: [CVE-2024-2511, '1234567', nginx]"), inventory("rhel9"))
        assert missing(report) == set()
        assert [p.name for p in report.patches if p.state == "NOT_APPLICABLE"] == ["nginx"]
        assert report.notes == (
            "/spec/approvedPatches/0 CVE-2024-2511: CVE and Bugzilla ids are not in plumb's inventory; not evaluated",
            "/spec/approvedPatches/1 1234567: CVE and Bugzilla ids are not in plumb's inventory; not evaluated")

    def test_rejected_wildcard_blocks_and_wins(self, inventory, rhel):
        report = run(rhel(rule("CLASSIFICATION: [Security]") + "\nrejectedPatches: ['kernel*']\n"
                          "rejectedPatchesAction: BLOCK"), inventory("rhel9"))
        kernel = next(p for p in report.patches if p.name == "kernel")
        assert (kernel.state, kernel.approval.pointer) == ("INSTALLED_REJECTED", "/spec/rejectedPatches/0")
        assert missing(report) == {"NetworkManager", "openssl", "python3-perf"}

    def test_a_rejected_version_leaves_the_installed_one_alone(self, inventory, rhel):
        report = run(rhel(rule("CLASSIFICATION: [Security]") + "\nrejectedPatches: ['openssl-1:3.0.7-27*']\n"
                          "rejectedPatchesAction: BLOCK"), inventory("rhel9"))
        openssl = next(p for p in report.patches if p.name == "openssl")
        assert (openssl.state, openssl.approval.rejected, openssl.installed_approval.rejected) == (
            "INSTALLED_OTHER", True, False)


class TestNonSecurityAndInstalledVersions:
    def without_advisory(self, inventory):
        doc = inventory("rhel9")
        for entry in doc["Types"]["plumb:AvailableUpdate"]["Content"]:
            if entry["Name"] == "tzdata":
                entry.update(Classification="", Advisories=[], Severity="")
        return doc

    def test_update_without_advisory_needs_enable_non_security(self, inventory, rhel):
        tzdata = next(p for p in run(rhel(rule("PRODUCT: ['*']")), self.without_advisory(inventory)).patches
                      if p.name == "tzdata")
        assert (tzdata.state, tzdata.approval.reason) == (  # the installed version matches the rule
            "INSTALLED", "only updates with an advisory (enableNonSecurity false) and 2024a-1.el9 has none in "
                               "the node's dnf updateinfo")
        report = run(rhel(rule("PRODUCT: ['*']", "approveAfterDays: 0; enableNonSecurity: true")),
                     self.without_advisory(inventory))
        assert "tzdata" in missing(report)

    def after_install(self, inventory):
        """The node once kernel 427 is installed: no kernel update left; the new kernel is the newest."""
        doc = inventory("rhel9", reboot=True)
        types = doc["Types"]
        types["plumb:AvailableUpdate"]["Content"] = [
            u for u in types["plumb:AvailableUpdate"]["Content"] if u["Name"] != "kernel"]
        new = dict(next(a for a in types["AWS:Application"]["Content"] if a["Name"] == "kernel"),
                   Release="427.20.1.el9_4")
        types["AWS:Application"]["Content"].append(new)
        return doc

    def test_an_installed_versions_classification_is_undecided_not_guessed(self, inventory, rhel):
        kernel = next(p for p in run(rhel(rule("CLASSIFICATION: [Security]")), self.after_install(inventory)).patches
                      if p.name == "kernel")
        assert (kernel.state, kernel.installed_version) == ("INSTALLED_OTHER", "5.14.0-427.20.1.el9_4")
        assert kernel.approval.known is False
        assert "CLASSIFICATION of the installed 5.14.0-427.20.1.el9_4 is not in plumb's inventory" in (
            kernel.approval.reason)

    @pytest.mark.parametrize("previous, state", [
        (("MISSING", "5.14.0-427.20.1.el9_4"), "INSTALLED"),
        (("INSTALLED_PENDING_REBOOT", "5.14.0-427.20.1.el9_4"), "INSTALLED_PENDING_REBOOT"),
        (("MISSING", "5.14.0-362.13.1.el9_3"), "INSTALLED_OTHER"),  # approved then, but another version
        (("INSTALLED_OTHER", "5.14.0-427.20.1.el9_4"), "INSTALLED_OTHER"),
    ])
    def test_previous_run_settles_what_inventory_cannot(self, inventory, rhel, previous, state):
        spec = rhel(rule("CLASSIFICATION: [Security]", "complianceLevel: HIGH; approveAfterDays: 0"))
        kernel = next(p for p in run(spec, self.after_install(inventory), previous={"kernel": previous}).patches
                      if p.name == "kernel")
        assert kernel.state == state
        if state != "INSTALLED_OTHER":
            assert kernel.severity == "HIGH"
            assert kernel.approval.reason.endswith(f"approved when plumb last evaluated it ({previous[0]} at "
                                                   f"{previous[1]})")


def test_approve_on_one_candidate_for_baseline_show(inventory, rhel):
    doc = inventory("rhel9")
    packages, reason = patching.candidates(doc)
    assert reason == "" and "gpg-pubkey" not in {p.installed.name for p in packages}
    kernel = next(p for p in packages if p.installed.name == "kernel")
    assert kernel.installed.version == "5.14.0-362.13.1.el9_3"  # the newest of two installed kernels
    (update,) = kernel.newer
    assert (update.classification, update.severity, update.advisories) == (
        "Security", "Important", ("RHBA-2024:2547", "RHSA-2024:3619"))
    approval = patching.approve(rhel(rule("SEVERITY: [Important]")), update, first_seen={}, now=NOW)
    assert (approval.approved, approval.rule) == (True, "approval rule 1 (SEVERITY in Important)")
