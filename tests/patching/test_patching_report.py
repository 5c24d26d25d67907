"""A node's patch report: every SSM state, what persists from the previous Scan/Install,
InstancePatchState counts and the node's severity, on the example fleet's debian-prod baseline."""

from __future__ import annotations

import pytest

from patchkit import MANIFESTS, NOW, build_baseline
from reconciler import patching
from reconciler.patching import State

DEBIAN = "debian12-security"
OLD = "2026-10-01T00:00:00Z"


@pytest.fixture
def debian_prod():
    path = MANIFESTS / "patching" / "debian-prod.yaml"
    return build_baseline(path.read_text(), "manifests/patching/debian-prod.yaml")


def run(spec, doc, first_seen=None, previous=None):
    report = patching.evaluate(spec, doc, first_seen=first_seen or {}, now=NOW, previous=previous or {})
    assert not report.unknown, report.unknown
    return report


def by_name(report):
    return {p.name: p for p in report.patches}


@pytest.mark.parametrize("state, compliant", [
    (State.INSTALLED, True), (State.INSTALLED_OTHER, True), (State.NOT_APPLICABLE, True),
    (State.INSTALLED_PENDING_REBOOT, False), (State.INSTALLED_REJECTED, False), (State.MISSING, False),
    (State.FAILED, False),
])
def test_compliance_of_each_state_is_ssms(state, compliant):
    assert state.compliant is compliant


class TestDebianProd:
    """debian-prod: PRODUCT Debian12; rule 1 PRIORITY Required/Important/Standard, HIGH, 7 days;
    rule 2 SECTION libs/net + PRIORITY Optional, MEDIUM, 14 days; approvedPatches openssl CRITICAL;
    rejectedPatches telnet BLOCK."""

    def test_report_on_the_captured_debian_node(self, inventory, debian_prod):
        report = run(debian_prod, inventory(DEBIAN), {"libssl3=3.0.16-1~deb12u1": OLD})
        patches = by_name(report)
        assert [(p.name, p.state, p.version, p.severity) for p in report.patches] == [
            ("libssl3", "MISSING", "3.0.16-1~deb12u1", "MEDIUM"),
            ("openssl", "MISSING", "3.0.16-1~deb12u1", "CRITICAL"),
            ("tzdata", "INSTALLED", "2024a-0+deb12u1", "HIGH"),
        ]
        assert patches["openssl"].approval.pointer == "/spec/approvedPatches/0"
        assert patches["libssl3"].approval.reason == (
            "approval rule 2 (SECTION in libs, net; PRIORITY in Optional) matches; 3.0.16-1~deb12u1 is from "
            "stable-security (a security suite); first seen by plumb 2026-10-01 (53 whole UTC days ago; "
            "approveAfterDays 14)")
        assert debian_prod.origin.at(patches["libssl3"].approval.pointer)[0] == 25  # the manifest's rule 2
        assert report.counts() == {
            "InstalledCount": 1, "InstalledOtherCount": 0, "InstalledPendingRebootCount": 0,
            "InstalledRejectedCount": 0, "MissingCount": 2, "FailedCount": 0, "NotApplicableCount": 0,
            "CriticalNonCompliantCount": 1, "SecurityNonCompliantCount": 2, "OtherNonCompliantCount": 0,
        }
        assert (report.severity, report.compliant) == ("CRITICAL", False)
        assert [p.name for p in report.missing] == ["libssl3", "openssl"]
        assert (report.baseline, report.operating_system, report.product) == ("debian-prod", "DEBIAN", "Debian12")

    def test_update_not_yet_approved_keeps_the_installed_state_and_says_when(self, inventory, debian_prod):
        libssl3 = by_name(run(debian_prod, inventory(DEBIAN), {"libssl3=3.0.16-1~deb12u1": "2026-11-21T10:00:00Z"}))[
            "libssl3"]
        assert (libssl3.state, libssl3.version, libssl3.available) == ("INSTALLED", "3.0.15-1~deb12u1",
                                                                       "3.0.16-1~deb12u1")
        assert libssl3.approval.reason == (
            "first seen by plumb 2026-11-21 (2 whole UTC days ago; approveAfterDays 14) → approved from 2026-12-05")

    def test_all_installed_is_compliant(self, inventory, debian_prod):
        doc = inventory(DEBIAN)
        doc["Types"]["plumb:AvailableUpdate"]["Content"] = []
        report = run(debian_prod, doc)
        assert [p.state for p in report.patches] == ["INSTALLED", "INSTALLED", "INSTALLED"]
        assert (report.compliant, report.severity, report.missing) == (True, "", ())


class TestPersistedStates:
    SPEC = "approvalRules:\n  patchRules:\n    - patchFilterGroup:\n        patchFilters:\n" \
           "          - {key: PRIORITY, values: [Required, Optional]}\n      complianceLevel: LOW"

    @pytest.mark.parametrize("reboot, version, state", [
        (True, "2024a-0+deb12u1", "INSTALLED_PENDING_REBOOT"),
        (False, "2024a-0+deb12u1", "INSTALLED"),  # rebooted since
        (None, "2024a-0+deb12u1", "INSTALLED"),  # the node cannot tell: not guessed pending
        (True, "2023c-0+deb12u1", "INSTALLED"),  # pending was another version
    ])
    def test_installed_pending_reboot(self, inventory, baseline, reboot, version, state):
        previous = {"tzdata": ["INSTALLED_PENDING_REBOOT", version]}  # as read back from JSON
        tzdata = by_name(run(baseline(self.SPEC), inventory(DEBIAN, reboot=reboot), previous=previous))["tzdata"]
        assert (tzdata.state, tzdata.severity, tzdata.compliant) == (state, "LOW", state == "INSTALLED")

    def test_failed_stays_failed_for_the_same_version(self, inventory, baseline):
        report = run(baseline(self.SPEC), inventory(DEBIAN), previous={"openssl": ("FAILED", "3.0.16-1~deb12u1"),
                                                                      "libssl3": ("FAILED", "3.0.14-1~deb12u1")})
        assert (by_name(report)["openssl"].state, by_name(report)["libssl3"].state) == ("FAILED", "MISSING")
        assert [(p.name, p.state) for p in report.missing] == [("libssl3", "MISSING"), ("openssl", "FAILED")]
        assert report.counts()["FailedCount"] == 1 and report.counts()["MissingCount"] == 1

    def test_previous_may_name_an_architecture(self, inventory, baseline):
        spec = baseline("approvedPatches: [libc6]", os="UBUNTU")
        report = run(spec, inventory("ubuntu2204"), previous={"libc6:i386": ("FAILED", "2.35-0ubuntu3.8")})
        assert [(p.arch, p.state) for p in report.patches if p.name == "libc6"] == [
            ("amd64", "MISSING"), ("i386", "FAILED")]


class TestCounts:
    def test_every_state_counted_and_non_compliance_split(self, inventory, baseline):
        spec = baseline("approvalRules:\n  patchRules:\n    - patchFilterGroup:\n        patchFilters:\n"
                        "          - {key: PRIORITY, values: [Required, Important]}\n"
                        "      complianceLevel: LOW\n      enableNonSecurity: true\n"
                        "approvedPatches: [libc6, htop]\napprovedPatchesComplianceLevel: CRITICAL\n"
                        "rejectedPatches: [nginx]\nrejectedPatchesAction: BLOCK", os="UBUNTU")
        report = run(spec, inventory("ubuntu2204"), previous={"libc6": ("FAILED", "2.35-0ubuntu3.8")})
        assert {(p.name, p.arch): str(p.state) for p in report.patches} == {
            ("bash", "amd64"): "INSTALLED",
            ("curl", "amd64"): "INSTALLED_OTHER",
            ("htop", ""): "NOT_APPLICABLE",
            ("libc6", "amd64"): "FAILED",
            ("libc6", "i386"): "FAILED",
            ("nginx", "amd64"): "INSTALLED_REJECTED",
            ("openssl", "amd64"): "MISSING",
            ("tzdata", "all"): "MISSING",
        }
        assert report.counts() == {
            "InstalledCount": 1, "InstalledOtherCount": 1, "InstalledPendingRebootCount": 0,
            "InstalledRejectedCount": 1, "MissingCount": 2, "FailedCount": 2, "NotApplicableCount": 1,
            # libc6 ×2: CRITICAL and security; openssl: LOW security; tzdata: LOW, jammy-updates;
            # nginx: rejected, neither critical nor security
            "CriticalNonCompliantCount": 2, "SecurityNonCompliantCount": 3, "OtherNonCompliantCount": 2,
        }
        assert report.severity == "CRITICAL"

    def test_severity_is_the_worst_non_compliant_level(self, inventory, baseline):
        spec = baseline("approvalRules:\n  patchRules:\n    - patchFilterGroup:\n        patchFilters:\n"
                        "          - {key: NAME, values: [openssl]}\n      complianceLevel: MEDIUM\n"
                        "    - patchFilterGroup:\n        patchFilters:\n          - {key: NAME, values: [libssl3]}\n"
                        "      complianceLevel: HIGH\n"
                        "    - patchFilterGroup:\n        patchFilters:\n          - {key: NAME, values: [tzdata]}\n"
                        "      complianceLevel: CRITICAL")
        report = run(spec, inventory(DEBIAN))
        assert [p.severity for p in report.patches] == ["HIGH", "MEDIUM", "CRITICAL"]
        assert report.severity == "HIGH"  # tzdata's CRITICAL is INSTALLED: compliant
