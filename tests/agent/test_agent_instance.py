"""AWS:InstanceInformation: the node's identity from os-release, uname and addresses."""

from pathlib import Path

import pytest

from agent import __version__
from agent.collectors import instance, network

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "collectors"


def os_release(name):
    return instance.parse_os_release((FIXTURES / name).read_text())


def interfaces():
    return network.parse_ip_json((FIXTURES / "ip-addr.debian12.json").read_text())


def test_entry_has_platform_kernel_agent_and_addresses():
    entry = instance.parse(
        os_release("os-release.debian12"),
        hostname="vm",
        kernel="6.1.0-18-amd64",
        machine="x86_64",
        interfaces=interfaces(),
        default_interface="eth0",
        reboot=False,
        python_version="3.11.2",
    )
    assert entry == {
        "ComputerName": "vm",
        "PlatformType": "Linux",
        "PlatformName": "Debian GNU/Linux",
        "PlatformVersion": "12",
        "PlatformId": "debian",
        "PlatformFamily": "",
        "PlatformCodename": "bookworm",
        "KernelVersion": "6.1.0-18-amd64",
        "Architecture": "x86_64",
        "AgentType": "plumb",
        "AgentVersion": __version__,
        "IpAddress": "192.0.2.2",
        "IpAddresses": ["192.0.2.2", "fd00::2"],
        "PythonVersion": "3.11.2",
        "RebootRequired": False,
    }


@pytest.mark.parametrize(
    "name, expected",
    [
        ("os-release.ubuntu2204", ("Ubuntu", "22.04", "ubuntu", "debian", "jammy")),
        ("os-release.rhel9", ("Red Hat Enterprise Linux", "9.3", "rhel", "fedora", "")),
    ],
)
def test_os_release_quoting_is_read_as_a_shell_would(name, expected):
    values = os_release(name)
    got = tuple(values.get(key, "") for key in ("NAME", "VERSION_ID", "ID", "ID_LIKE", "VERSION_CODENAME"))
    assert got == expected


def test_os_release_escapes_and_comments():
    values = instance.parse_os_release('# comment\nNAME="Foo \\"Linux\\""\nBROKEN="unterminated\n')
    assert values["NAME"] == 'Foo "Linux"'
    assert values["BROKEN"] == "unterminated"


def test_primary_address_is_on_the_default_route_interface():
    two = [
        {"Name": "eth0", "IPV4": ["10.0.0.5"], "IPV6": ["fe80::1"]},
        {"Name": "eth1", "IPV4": ["172.16.0.9"], "IPV6": ["2001:db8::9"]},
        {"Name": "lo", "IPV4": ["127.0.0.1"], "IPV6": ["::1"]},
    ]
    assert instance.node_addresses(two, "eth1") == ["172.16.0.9", "10.0.0.5", "2001:db8::9"]
    assert instance.node_addresses(two, None)[0] == "10.0.0.5"


def test_family_detection_reads_id_like():
    assert instance.is_debian_family(os_release("os-release.ubuntu2204"))
    assert instance.is_debian_family(os_release("os-release.debian12"))
    assert not instance.is_debian_family(os_release("os-release.rhel9"))


@pytest.mark.parametrize(
    "debian_family, flag, code, expected",
    [
        (True, True, None, True),
        (True, False, None, False),
        (False, False, 1, True),
        (False, False, 0, False),
        (False, False, None, None),
        (False, False, 2, None),
    ],
)
def test_reboot_required_uses_the_nodes_own_tooling(debian_family, flag, code, expected):
    assert instance.reboot_required(debian_family, flag, code) is expected
