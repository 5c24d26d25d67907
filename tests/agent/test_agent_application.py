"""AWS:Application: dpkg-query and rpm output become SSM application entries."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent import inventory
from agent.collectors import application
from agent.collectors.base import CollectorError, Options

ROOT = Path(__file__).resolve().parents[2]
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


# Targeted collects (Options.packages). Captured on the development machine (Debian 12,
# dpkg 1.21) with LC_ALL=C: `dpkg-query -W -f="$DPKG_FORMAT" -- bash libc6.1 telnet`.
# libc6.1 is known to dpkg from its available list but not installed; telnet is unknown.
DPKG_TARGETED = (
    "bash\t5.2.15-2+b8\tamd64\tinstall ok installed\tshells\trequired\tbash (5.2.15-2)\t"
    "Matthias Klose <doko@debian.org>\thttp://tiswww.case.edu/php/chet/bash/bashtop.html\t"
    "1747699200\tGNU Bourne Again SHell\n"
    "libc6.1\t\t\tunknown ok not-installed\t\t\t\t\t\t\t(no description available)\n"
)
DPKG_TARGETED_STDERR = "dpkg-query: no packages found matching telnet\n"
DPKG_TARGETED_STATUS = 1

# rpm 4.18 (Debian's rpm package, empty database) with LC_ALL=C:
# `rpm -q --queryformat "$RPM_FORMAT" -- bash telnet` exits 2, the count of missing names
# (254 at most: 256 missing names exit 254), and says so on stdout, not stderr.
RPM_NONE_INSTALLED = "package bash is not installed\npackage telnet is not installed\n"
RPM_NONE_INSTALLED_STATUS = 2
# The same rpm unable to read its configuration: nothing on stdout, exit 1.
RPM_BROKEN_STDERR = "error: Unable to open /usr/lib/rpm/rpmrc for reading: No such file or directory.\n"
RPM_BROKEN_STATUS = 1
# An installed package's line (from rpm-qa.rhel9.txt: the query format is the same for
# -q NAME and -qa) followed by a real not-installed line.
RPM_MIXED = (FIXTURES / "rpm-qa.rhel9.txt").read_text().splitlines()[5] + "\n" \
    + "package telnet is not installed\n"


@pytest.fixture
def commands(monkeypatch):
    """Pretend `tool` is the package manager and every command prints `answer`; returns
    the argv lists run."""
    from agent.collectors import base

    ran = []
    state = {}

    def install(tool, stdout="", stderr="", status=0):
        state.update(tool=tool, answer=(stdout, stderr, status))

    def which(name):
        return f"/usr/bin/{name}" if name == state["tool"] else None

    def fake_run(argv, **kwargs):
        ran.append(list(argv))
        stdout, stderr, status = state["answer"]
        return subprocess.CompletedProcess(argv, status, stdout.encode(), stderr.encode())

    monkeypatch.setattr(base, "which", which)
    monkeypatch.setattr(application, "which", which)
    monkeypatch.setattr(base.subprocess, "run", fake_run)
    install.ran = ran
    return install


def targeted(*names):
    return application.collect(Options(packages=names))


class TestTargetedDpkg:
    def test_one_dpkg_query_names_the_packages_after_a_double_dash(self, commands):
        commands("dpkg-query", DPKG_TARGETED, DPKG_TARGETED_STDERR, DPKG_TARGETED_STATUS)
        targeted("bash", "libc6.1", "telnet")
        assert commands.ran == [["/usr/bin/dpkg-query", "-W", "-f=" + application.DPKG_FORMAT,
                                 "--", "bash", "libc6.1", "telnet"]]

    def test_not_installed_names_are_absent_and_exit_1_is_not_a_failure(self, commands):
        commands("dpkg-query", DPKG_TARGETED, DPKG_TARGETED_STDERR, DPKG_TARGETED_STATUS)
        found = targeted("bash", "libc6.1", "telnet")
        assert [entry["Name"] for entry in found] == ["bash"]
        assert found[0] == by_name(entries(application.parse_dpkg, "dpkg-query.debian12.txt"))[("bash", "amd64")]

    def test_a_dpkg_failure_is_an_error_not_an_empty_list(self, commands):
        commands("dpkg-query", "", "dpkg-query: error: cannot access archive\n", 2)
        with pytest.raises(CollectorError, match="dpkg-query exited 2: dpkg-query: error"):
            targeted("bash")

    def test_arch_qualified_names_keep_only_that_architecture(self):
        found = by_name(entries(application.parse_dpkg, "dpkg-query.ubuntu2204.txt"))
        both = [found[("libc6", "amd64")], found[("libc6", "i386")]]
        assert application.only(both, ["libc6:i386"]) == [found[("libc6", "i386")]]
        assert application.only(both, ["libc6"]) == both


class TestTargetedRpm:
    def test_one_rpm_query_names_the_packages(self, commands):
        commands("rpm", RPM_MIXED, "", 1)
        assert [entry["Name"] for entry in targeted("openssl", "telnet")] == ["openssl"]
        assert commands.ran == [["/usr/bin/rpm", "-q", "--queryformat", application.RPM_FORMAT,
                                 "--", "openssl", "telnet"]]

    def test_names_rpm_says_are_not_installed_are_absent(self, commands):
        commands("rpm", RPM_NONE_INSTALLED, "", RPM_NONE_INSTALLED_STATUS)
        assert targeted("bash", "telnet") == []

    def test_rpm_failing_without_naming_a_missing_package_is_an_error(self, commands):
        commands("rpm", "", RPM_BROKEN_STDERR, RPM_BROKEN_STATUS)
        with pytest.raises(CollectorError, match="rpm -q exited 1"):
            targeted("bash")

    def test_parse_keeps_installed_lines_and_drops_not_installed_ones(self):
        (openssl,) = application.parse_rpm_query(RPM_MIXED, 1)
        assert application.rpm_evr(openssl) == "1:3.0.7-24.el9"
        assert application.only([openssl], ["openssl.x86_64"]) == [openssl]


class TestTargetedOptions:
    def test_no_filter_lists_everything_with_the_usual_command(self, commands):
        commands("dpkg-query", (FIXTURES / "dpkg-query.debian12.txt").read_text())
        assert len(application.collect(Options())) == 27
        assert commands.ran == [["/usr/bin/dpkg-query", "-W", "-f=" + application.DPKG_FORMAT]]

    def test_an_empty_filter_asks_for_nothing_and_runs_nothing(self, commands):
        commands("dpkg-query")
        assert targeted() == []
        assert commands.ran == []

    @pytest.mark.parametrize("name", ["ngin*", "a b", "-x", "", "../etc", "[abc]"])
    def test_what_is_not_a_package_name_is_refused(self, name):
        with pytest.raises(ValueError, match="not a package name"):
            inventory.select(["AWS:Application"], Options(packages=("bash", name)))

    @pytest.mark.parametrize("name", ["libstdc++6", "python3.11", "libc6:i386", "NetworkManager",
                                      "perl-Data-Dumper", "kernel-core.x86_64", "g++"])
    def test_real_package_names_are_accepted(self, name):
        application.check_names([name])


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="needs dpkg-query (Debian family)")
class TestTargetedOnThisMachine:
    def test_filtered_content_is_the_full_content_for_those_names(self):
        full = application.collect(Options())
        asked = [full[0]["Name"], full[-1]["Name"], "plumb-no-such-package"]
        assert application.collect(Options(packages=tuple(asked))) == [
            entry for entry in full if entry["Name"] in asked]

    def test_cli_packages_reports_only_those(self):
        done = subprocess.run(
            [sys.executable, "-m", "agent", "collect", "--types", "AWS:Application",
             "--packages", "dpkg", "plumb-no-such-package"],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
        report = json.loads(done.stdout)["Types"]["AWS:Application"]
        assert report["Status"] == "ok"
        assert [entry["Name"] for entry in report["Content"]] == ["dpkg"]

    def test_cli_refuses_a_pattern(self):
        done = subprocess.run([sys.executable, "-m", "agent", "collect", "--packages", "bash*"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "not a package name: 'bash*'" in done.stderr
