"""plumb:AvailableUpdate: apt's and dnf's local data become update entries."""

from pathlib import Path

import pytest

from agent.collectors import application, apt_policy, dnf_updates, updates

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "collectors"
LISTS = str(FIXTURES / "apt-lists")


def read(name):
    return (FIXTURES / name).read_text()


def apt(platform):
    installed = application.parse_dpkg(read(f"dpkg-query.{platform}.txt"))
    found = updates.apt_updates(installed, [read(f"apt-cache-policy.{platform}.txt")], LISTS)
    return {(entry["Name"], entry["Architecture"]): entry for entry in found}


class TestAptPolicy:
    def test_policy_output_gives_installed_candidate_and_version_table(self):
        policies = {p.name: p for p in apt_policy.parse_policies(read("apt-cache-policy.debian12.txt"))}
        bash = policies["bash"]
        assert (bash.installed, bash.candidate) == ("5.2.15-2+b8", "5.2.15-2+b13")
        assert bash.versions["5.2.15-2+b13"] == (500, ["http://deb.debian.org/debian bookworm/main amd64 Packages"])
        assert bash.versions["5.2.15-2+b8"] == (100, ["/var/lib/dpkg/status"])

    def test_foreign_architecture_header_keeps_its_architecture(self):
        policies = apt_policy.parse_policies(read("apt-cache-policy.ubuntu2204.txt"))
        assert [(p.name, p.arch) for p in policies if p.name == "libc6"] == [("libc6", None), ("libc6", "i386")]

    def test_release_file_stem_is_named_as_apt_names_it(self):
        stem = apt_policy.release_file_stem
        assert stem("http://deb.debian.org/debian bookworm/main amd64 Packages") == "deb.debian.org_debian_dists_bookworm_"
        assert stem("https://user:pw@repo.example.com/my_repo/ stable/main amd64 Packages") == (
            "repo.example.com_my%5frepo_dists_stable_"
        )
        assert stem("http://security.debian.org buster/updates/main amd64 Packages") == (
            "security.debian.org_dists_buster_updates_"
        )
        assert stem("file:/srv/plumb_repo/ stable-security/main amd64 Packages") == "_srv_plumb%5frepo_dists_stable-security_"
        assert stem("/var/lib/dpkg/status") is None

    def test_local_file_archive_has_no_site(self):
        assert apt_policy.package_file("file:/srv/repo stable/main amd64 Packages", {}).site == ""
        assert apt_policy.package_file("http://u:p@deb.example.org/debian stable/main amd64 Packages", {}).site == (
            "deb.example.org"
        )

    def test_release_head_gives_origin_label_suite_codename(self):
        release = apt_policy.parse_release(read("apt-lists/deb.debian.org_debian_dists_bookworm_InRelease"))
        assert release == {"o": "Debian", "l": "Debian", "a": "oldstable", "v": "12.15", "n": "bookworm"}


class TestAptUpdates:
    def test_only_packages_whose_candidate_differs_are_updates(self):
        found = apt("debian12")
        assert len(found) == 17
        assert ("adduser", "all") not in found  # candidate == installed
        assert ("google-cloud-cli", "amd64") not in found  # installed from a repository now gone
        assert ("nodejs", "amd64") not in found  # installed is newer than any candidate

    def test_update_entry_on_the_captured_debian_machine(self):
        assert apt("debian12")[("bash", "amd64")] == {
            "Name": "bash",
            "Architecture": "amd64",
            "InstalledVersion": "5.2.15-2+b8",
            "CandidateVersion": "5.2.15-2+b13",
            "Origin": "Debian",
            "Label": "Debian",
            "Suite": "oldstable",
            "Codename": "bookworm",
            "Component": "main",
            "Site": "deb.debian.org",
            "PinPriority": 500,
            "Priority": "required",
            "Section": "shells",
            "Security": False,
            "PackageManager": "apt",
            "Versions": [
                {"Version": "5.2.15-2+b13", "Suite": "oldstable", "Codename": "bookworm", "Origin": "Debian",
                 "Label": "Debian", "Security": False, "PinPriority": 500},
            ],
        }

    def test_debian_security_suite_marks_security_updates(self):
        found = apt("debian12-security")
        openssl = found[("openssl", "amd64")]
        assert openssl["Security"] is True
        assert (openssl["Suite"], openssl["Label"], openssl["Codename"]) == (
            "stable-security", "Debian-Security", "bookworm-security",
        )
        assert found[("tzdata", "all")]["Security"] is False
        assert found[("tzdata", "all")]["Suite"] == "stable-updates"

    def test_ubuntu_candidate_in_updates_and_security_is_described_by_security(self):
        libc6 = apt("ubuntu2204")[("libc6", "amd64")]
        assert libc6["Security"] is True
        assert (libc6["Suite"], libc6["Site"]) == ("jammy-security", "security.ubuntu.com")

    def test_versions_list_every_newer_version_newest_first(self):
        tzdata = apt("debian12-security")[("tzdata", "all")]
        assert [(v["Version"], v["Suite"], v["Security"]) for v in tzdata["Versions"]] == [
            ("2025b-0+deb12u1", "stable-updates", False),
            ("2024b-0+deb12u1", "oldstable", False),
        ]

    def test_security_and_normal_suites_holding_different_newer_versions(self):
        """The candidate comes from -updates; the newest security version is older and still listed."""
        curl = apt("ubuntu2204")[("curl", "amd64")]
        assert (curl["CandidateVersion"], curl["Suite"], curl["Security"]) == (
            "7.81.0-1ubuntu1.18", "jammy-updates", False,
        )
        assert curl["Versions"] == [
            {"Version": "7.81.0-1ubuntu1.18", "Suite": "jammy-updates", "Codename": "jammy", "Origin": "Ubuntu",
             "Label": "Ubuntu", "Security": False, "PinPriority": 500},
            {"Version": "7.81.0-1ubuntu1.16", "Suite": "jammy-security", "Codename": "jammy", "Origin": "Ubuntu",
             "Label": "Ubuntu", "Security": True, "PinPriority": 500},
        ]
        newest_security = next(v for v in curl["Versions"] if v["Security"])
        assert newest_security["Version"] == "7.81.0-1ubuntu1.16"

    def test_version_in_both_updates_and_security_is_security_and_described_by_it(self):
        libc6 = apt("ubuntu2204")[("libc6", "amd64")]
        assert [(v["Version"], v["Suite"], v["Security"]) for v in libc6["Versions"]] == [
            ("2.35-0ubuntu3.8", "jammy-security", True),
        ]

    def test_versions_carry_their_own_pin_priority(self):
        tzdata = apt("ubuntu2204")[("tzdata", "all")]
        assert [(v["Version"], v["PinPriority"]) for v in tzdata["Versions"]] == [("2024b-0ubuntu0.22.04.1", 990)]

    def test_versions_are_ordered_by_debian_rules_not_text(self):
        policy = (
            "demo:\n  Installed: 1.0-1\n  Candidate: 1.0-10\n  Version table:\n"
            "     1.0-9 500\n        500 http://deb.example.org/debian stable/main amd64 Packages\n"
            "     1.0-10 500\n        500 http://deb.example.org/debian stable-security/main amd64 Packages\n"
            "     1.0~rc1-1 500\n        500 http://deb.example.org/debian testing/main amd64 Packages\n"
            " *** 1.0-1 100\n        100 /var/lib/dpkg/status\n"
        )
        installed = [{"Name": "demo", "Architecture": "amd64", "Version": "1.0-1"}]
        (entry,) = updates.apt_updates(installed, [policy], LISTS)
        assert [(v["Version"], v["Security"]) for v in entry["Versions"]] == [("1.0-10", True), ("1.0-9", False)]

    def test_each_architecture_is_its_own_update(self):
        found = apt("ubuntu2204")
        assert found[("libc6", "i386")]["CandidateVersion"] == "2.35-0ubuntu3.8"

    def test_pin_priority_and_package_priority_are_both_reported(self):
        tzdata = apt("ubuntu2204")[("tzdata", "all")]
        assert (tzdata["PinPriority"], tzdata["Priority"]) == (990, "important")

    def test_repository_without_release_file_still_reports_suite_and_component(self):
        nginx = apt("ubuntu2204")[("nginx", "amd64")]
        assert (nginx["Origin"], nginx["Suite"], nginx["Component"], nginx["Site"]) == ("", "jammy", "nginx", "nginx.org")
        assert nginx["Security"] is False

    def test_up_to_date_package_is_no_update(self):
        assert ("bash", "amd64") not in apt("ubuntu2204")

    def test_package_list_is_split_across_cpus_and_argument_limits(self, monkeypatch):
        monkeypatch.setattr(updates.os, "cpu_count", lambda: 2)
        assert [len(part) for part in updates.parts(["p"] * 710)] == [355, 355]
        assert [len(part) for part in updates.parts(["p"] * 50)] == [50]
        monkeypatch.setattr(updates.os, "cpu_count", lambda: 1)
        assert [len(part) for part in updates.parts(["p"] * 4500)] == [2000, 2000, 500]


class TestDnf:
    def dnf(self):
        found = dnf_updates.updates(
            dnf_updates.parse_check_update(read("dnf-check-update.rhel9.txt")),
            dnf_updates.parse_updateinfo(read("dnf-updateinfo-list.rhel9.txt")),
            application.parse_rpm(read("rpm-qa.rhel9.txt")),
        )
        return {entry["Name"]: entry for entry in found}

    def test_check_update_lists_packages_and_stops_at_obsoletes(self):
        available = dnf_updates.parse_check_update(read("dnf-check-update.rhel9.txt"))
        assert [a.name for a in available] == [
            "NetworkManager", "kernel", "openssl", "python3-perf",
            "subscription-manager-rhsm-certificates", "tzdata",
        ]

    def test_wrapped_check_update_line_is_joined(self):
        wrapped = dnf_updates.parse_check_update(read("dnf-check-update.rhel9.txt"))[4]
        assert wrapped == dnf_updates.Available(
            "subscription-manager-rhsm-certificates", "noarch", "20220623-1.el9_4", "rhel-9-for-x86_64-baseos-rpms",
        )

    def test_nevra_with_epoch_splits(self):
        assert dnf_updates.split_nevra("NetworkManager-1:1.46.0-8.el9_4.x86_64") == (
            "NetworkManager", "x86_64", "1:1.46.0-8.el9_4",
        )

    def test_security_advisory_gives_classification_and_severity(self):
        openssl = self.dnf()["openssl"]
        assert openssl == {
            "Name": "openssl",
            "Architecture": "x86_64",
            "InstalledVersion": "1:3.0.7-24.el9",
            "CandidateVersion": "1:3.0.7-27.el9",
            "Repository": "rhel-9-for-x86_64-baseos-rpms",
            "Classification": "Security",
            "Severity": "Low",
            "Advisories": ["RHSA-2024:2447"],
            "Security": True,
            "PackageManager": "dnf",
            "Versions": [{"Version": "1:3.0.7-27.el9", "Security": True, "Suite": "rhel-9-for-x86_64-baseos-rpms"}],
        }

    def test_security_outranks_bugfix_for_one_package(self):
        kernel = self.dnf()["kernel"]
        assert (kernel["Classification"], kernel["Severity"]) == ("Security", "Important")
        assert kernel["Advisories"] == ["RHBA-2024:2547", "RHSA-2024:3619"]

    def test_installed_version_is_the_newest_installed_kernel(self):
        assert self.dnf()["kernel"]["InstalledVersion"] == "5.14.0-362.13.1.el9_3"

    @pytest.mark.parametrize("name, classification", [("tzdata", "Enhancement"), ("subscription-manager-rhsm-certificates", "Bugfix")])
    def test_non_security_advisories(self, name, classification):
        entry = self.dnf()[name]
        assert (entry["Classification"], entry["Severity"], entry["Security"]) == (classification, "", False)


def test_unqualified_policy_name_is_the_native_package_not_the_foreign_one():
    installed = [
        {"Name": "libc6", "Architecture": "i386", "Version": "2.0", "Priority": "optional", "Section": "libs"},
        {"Name": "libc6", "Architecture": "s390x", "Version": "2.0", "Priority": "required", "Section": "libs"},
    ]
    policy = (
        "libc6:\n  Installed: 2.0\n  Candidate: 2.1\n  Version table:\n     2.1 500\n"
        "        500 http://deb.example.org/debian stable/main s390x Packages\n"
        "libc6:i386:\n  Installed: 2.0\n  Candidate: 2.1\n  Version table:\n     2.1 500\n"
        "        500 http://deb.example.org/debian stable/main i386 Packages\n"
    )
    found = updates.apt_updates(installed, [policy], LISTS)
    assert [(e["Architecture"], e["Priority"]) for e in found] == [("i386", "optional"), ("s390x", "required")]
