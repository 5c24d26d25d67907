"""The node side of patching: its SSM operating system and product, which baseline applies
(patch group, then the OS default), and inventories that cannot be evaluated."""

from __future__ import annotations

import pytest

from patchkit import NOW
from reconciler import patching


def info_only(**fields):
    entry = {"PlatformName": "Debian GNU/Linux", "PlatformVersion": "12", "PlatformId": "debian", **fields}
    return {"Types": {"AWS:InstanceInformation": {"Status": "ok", "Content": [entry]}}}


class TestOperatingSystemAndProduct:
    @pytest.mark.parametrize("platform, system, product", [
        ("debian12-security", "DEBIAN", "Debian12"),
        ("ubuntu2204", "UBUNTU", "Ubuntu22.04"),
        ("rhel9", "REDHAT_ENTERPRISE_LINUX", "RedhatEnterpriseLinux9.3"),
    ])
    def test_captured_platforms(self, inventory, platform, system, product):
        doc = inventory(platform)
        assert (patching.operating_system(doc), patching.product(doc)) == (system, product)

    @pytest.mark.parametrize("name, version, system, product", [
        ("Amazon Linux", "2023", "AMAZON_LINUX_2023", "AmazonLinux2023"),
        ("Amazon Linux", "2", "AMAZON_LINUX_2", "AmazonLinux2.0"),
        ("Rocky Linux", "9.3", "ROCKY_LINUX", "RockyLinux9.3"),
        ("AlmaLinux", "9.4", "ALMA_LINUX", "AlmaLinux9.4"),
        ("Oracle Linux Server", "8.9", "ORACLE_LINUX", "OracleLinux8.9"),
        ("CentOS Stream", "9", "CENTOS", "CentOSStream9"),
    ])
    def test_other_platform_names(self, name, version, system, product):
        doc = info_only(PlatformName=name, PlatformVersion=version, PlatformId="")
        assert (patching.operating_system(doc), patching.product(doc)) == (system, product)

    def test_os_release_id_is_the_fallback_for_an_unlisted_name(self):
        assert patching.operating_system(info_only(PlatformName="Debian", PlatformId="debian")) == "DEBIAN"

    def test_unknown_platform_has_no_operating_system(self):
        doc = info_only(PlatformName="Gentoo", PlatformId="gentoo")
        assert (patching.operating_system(doc), patching.product(doc)) == (None, None)

    def test_no_version_id_means_no_product(self):  # Debian testing/sid have no VERSION_ID
        doc = info_only(PlatformVersion="")
        assert (patching.operating_system(doc), patching.product(doc)) == ("DEBIAN", None)

    def test_unknown_instance_information_is_not_guessed(self, inventory):
        doc = inventory("debian12-security", unknown=("AWS:InstanceInformation",))
        assert patching.operating_system(doc) is None and patching.product(doc) is None
        assert patching.operating_system(None) is None


@pytest.fixture
def fleet(baseline):
    return [
        baseline("patchGroups: [web-prod, db-prod]\napprovedPatches: [openssl]", name="debian-prod"),
        baseline("default: true\napprovedPatches: [openssl]", name="debian-default"),
        baseline("default: true\napprovedPatches: [openssl]", name="ubuntu-default", os="UBUNTU"),
        baseline("patchGroups: [web-prod]\napprovedPatches: [openssl]", name="rhel-web", os="REDHAT_ENTERPRISE_LINUX"),
    ]


class TestSelectBaseline:
    def test_patch_group_label_picks_the_baseline_serving_it_for_that_os(self, fleet):
        chosen, why = patching.select_baseline(fleet, {"PatchGroup": "web-prod"}, "DEBIAN")
        assert chosen.name == "debian-prod"
        assert why == "patch group 'web-prod' is served by DEBIAN baseline 'debian-prod'"
        rhel, _ = patching.select_baseline(fleet, {"PatchGroup": "web-prod"}, "REDHAT_ENTERPRISE_LINUX")
        assert rhel.name == "rhel-web"

    def test_the_label_may_be_spelled_patch_group_with_a_space(self, fleet):
        assert patching.select_baseline(fleet, {"Patch Group": "db-prod"}, "DEBIAN")[0].name == "debian-prod"

    def test_label_key_is_case_sensitive(self, fleet):
        assert patching.select_baseline(fleet, {"patchgroup": "web-prod"}, "DEBIAN")[0].name == "debian-default"

    def test_unserved_group_falls_back_to_the_os_default(self, fleet):
        chosen, why = patching.select_baseline(fleet, {"PatchGroup": "batch"}, "DEBIAN")
        assert chosen.name == "debian-default"
        assert why == "no DEBIAN baseline serves patch group 'batch': the DEBIAN default 'debian-default'"

    def test_no_label_uses_the_os_default(self, fleet):
        chosen, why = patching.select_baseline(fleet, {}, "UBUNTU")
        assert chosen.name == "ubuntu-default" and "no PatchGroup label" in why

    def test_no_baseline_says_why(self, fleet):
        assert patching.select_baseline(fleet, {"PatchGroup": "batch"}, "REDHAT_ENTERPRISE_LINUX") == (
            None, "no REDHAT_ENTERPRISE_LINUX baseline serves patch group 'batch' and none is the "
                  "REDHAT_ENTERPRISE_LINUX default")
        assert patching.select_baseline(fleet, {}, "ROCKY_LINUX") == (
            None, "the node has no PatchGroup label and no ROCKY_LINUX baseline is the default")
        assert patching.select_baseline(fleet, {}, None)[0] is None


class TestUnknownInventory:
    @pytest.mark.parametrize("type_name", ["plumb:AvailableUpdate", "AWS:Application", "AWS:InstanceInformation"])
    def test_a_type_that_could_not_be_observed_is_said_not_guessed(self, inventory, baseline, type_name):
        report = patching.evaluate(baseline("approvedPatches: [openssl]"),
                                   inventory("debian12-security", unknown=(type_name,)), first_seen={}, now=NOW)
        assert report.unknown == f"{type_name} is unknown on this node: apt-cache failed: exit status 100"
        assert report.patches == () and report.compliant is None and report.severity == ""
        assert set(report.counts().values()) == {0}

    def test_a_type_not_collected(self, inventory, baseline):
        report = patching.evaluate(baseline("approvedPatches: [openssl]"),
                                   inventory("debian12-security", drop=("plumb:AvailableUpdate",)), first_seen={},
                                   now=NOW)
        assert report.unknown == "plumb:AvailableUpdate was not collected"

    def test_no_inventory(self, baseline):
        assert patching.evaluate(baseline("approvedPatches: [a1]"), {}, first_seen={}, now=NOW).unknown == (
            "no inventory for this node")

    def test_baseline_for_another_operating_system(self, inventory, baseline):
        report = patching.evaluate(baseline("approvedPatches: [openssl]", name="ubu", os="UBUNTU"),
                                   inventory("debian12-security"), first_seen={}, now=NOW)
        assert report.unknown == "baseline 'ubu' is for UBUNTU; this node runs DEBIAN"

    def test_operating_system_plumb_cannot_patch(self, baseline):
        doc = info_only(PlatformName="SLES", PlatformVersion="15.5", PlatformId="sles")
        report = patching.evaluate(baseline("approvedPatches: [openssl]", os="SUSE"), doc, first_seen={}, now=NOW)
        assert report.unknown == "plumb evaluates apt and yum/dnf baselines only, not SUSE"

    def test_packages_of_another_package_manager(self, inventory, baseline):
        doc = inventory("rhel9")
        doc["Types"]["AWS:InstanceInformation"]["Content"][0].update(PlatformName="Debian GNU/Linux",
                                                                     PlatformVersion="12")
        report = patching.evaluate(baseline("approvedPatches: [openssl]"), doc, first_seen={}, now=NOW)
        assert report.unknown == "baseline 'base' is for apt but the node's packages are managed by dnf"
