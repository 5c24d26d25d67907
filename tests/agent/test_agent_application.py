"""AWS:Application: dpkg-query and rpm output become SSM application entries."""

from pathlib import Path

import pytest

from agent.collectors import application
from agent.collectors.base import CollectorError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "collectors"


def entries(parse, name):
    return parse((FIXTURES / name).read_text())


def by_name(found):
    return {(entry["Name"], entry["Architecture"]): entry for entry in found}


class TestDpkg:
    def test_every_installed_package_becomes_one_entry(self):
        found = entries(application.parse_dpkg, "dpkg-query.debian12.txt")
        assert len(found) == 27
        assert [e["Name"] for e in found] == sorted(e["Name"] for e in found)

    def test_entry_carries_ssm_attribute_names(self):
        bash = by_name(entries(application.parse_dpkg, "dpkg-query.debian12.txt"))[("bash", "amd64")]
        assert bash == {
            "Name": "bash",
            "Version": "5.2.15-2+b8",
            "Architecture": "amd64",
            "Status": "install ok installed",
            "Section": "shells",
            "ApplicationType": "shells",
            "Priority": "required",
            "Source": "bash",
            "Publisher": "Matthias Klose <doko@debian.org>",
            "URL": "http://tiswww.case.edu/php/chet/bash/bashtop.html",
            "Summary": "GNU Bourne Again SHell",
            "PackageId": "bash_5.2.15-2+b8_amd64.deb",
            "PackageManager": "apt",
            "InstalledTime": "2025-05-20T00:00:00Z",
        }

    def test_version_keeps_its_epoch_and_source_drops_its_version(self):
        libcap2 = by_name(entries(application.parse_dpkg, "dpkg-query.debian12.txt"))[("libcap2", "amd64")]
        assert libcap2["Version"] == "1:2.66-4+deb12u2+b2"
        assert libcap2["Source"] == "libcap2"

    def test_source_defaults_to_the_package_name(self):
        adduser = by_name(entries(application.parse_dpkg, "dpkg-query.debian12.txt"))[("adduser", "all")]
        assert adduser["Source"] == "adduser"
        assert adduser["URL"] == ""

    def test_removed_packages_are_left_out_and_held_ones_kept(self):
        found = by_name(entries(application.parse_dpkg, "dpkg-query.ubuntu2204.txt"))
        assert ("linux-image-5.15.0-100-generic", "amd64") not in found
        assert found[("tzdata", "all")]["Status"] == "hold ok installed"

    def test_each_architecture_of_a_multiarch_package_is_an_entry(self):
        found = by_name(entries(application.parse_dpkg, "dpkg-query.ubuntu2204.txt"))
        assert {("libc6", "amd64"), ("libc6", "i386")} <= set(found)

    def test_a_line_with_missing_fields_is_a_parse_error(self):
        with pytest.raises(CollectorError, match="line 1"):
            application.parse_dpkg("bash\t5.2\tamd64\n")


class TestRpm:
    def test_every_package_becomes_one_entry_including_each_kernel(self):
        found = entries(application.parse_rpm, "rpm-qa.rhel9.txt")
        assert len(found) == 9
        assert sorted(e["Release"] for e in found if e["Name"] == "kernel") == ["362.13.1.el9_3", "362.8.1.el9_3"]

    def test_entry_splits_epoch_version_release(self):
        openssl = by_name(entries(application.parse_rpm, "rpm-qa.rhel9.txt"))[("openssl", "x86_64")]
        assert openssl["Epoch"] == "1"
        assert openssl["Version"] == "3.0.7"
        assert openssl["Release"] == "24.el9"
        assert openssl["InstalledTime"] == "2023-11-22T10:05:32Z"
        assert openssl["PackageId"] == "openssl-3.0.7-24.el9.src.rpm"
        assert openssl["PackageManager"] == "dnf"
        assert application.rpm_evr(openssl) == "1:3.0.7-24.el9"

    def test_rpm_none_becomes_empty(self):
        key = by_name(entries(application.parse_rpm, "rpm-qa.rhel9.txt"))[("gpg-pubkey", "")]
        assert key["Epoch"] == key["URL"] == key["Publisher"] == ""
        bash = by_name(entries(application.parse_rpm, "rpm-qa.rhel9.txt"))[("bash", "x86_64")]
        assert application.rpm_evr(bash) == "5.1.8-6.el9_1"
