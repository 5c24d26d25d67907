"""AWS:Network: interfaces from `ip -j addr`, or from /sys and /proc without iproute2."""

import json
from pathlib import Path

import pytest

from agent.collectors import network
from agent.collectors.base import CollectorError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "collectors"


def read(name):
    return (FIXTURES / name).read_text()


def test_ip_json_gives_one_entry_per_interface():
    found = {entry["Name"]: entry for entry in network.parse_ip_json(read("ip-addr.debian12.json"))}
    assert sorted(found) == ["eth0", "ifb0", "ifb1", "lo"]
    assert found["eth0"] == {
        "Name": "eth0",
        "MacAddress": "02:fc:00:00:00:01",
        "IPV4": ["192.0.2.2"],
        "IPV6": ["fd00::2", "fe80::fc:ff:fe00:1"],
        "State": "UP",
        "Mtu": 1400,
    }
    assert found["ifb0"]["IPV4"] == found["ifb0"]["IPV6"] == []


def test_invalid_ip_json_is_a_collector_error():
    with pytest.raises(CollectorError, match="invalid JSON"):
        network.parse_ip_json("Option \"-j\" is unknown")


def test_if_inet6_gives_compressed_addresses_by_interface():
    assert network.parse_if_inet6(read("proc-net-if_inet6.debian12.txt")) == {
        "eth0": ["fd00::2", "fe80::fc:ff:fe00:1"],
        "lo": ["::1"],
    }


def test_sysfs_fallback_agrees_with_ip_json_on_links_and_ipv6():
    links = json.loads(read("sys-class-net.debian12.json"))
    fallback = network.parse_sysfs(links, read("proc-net-if_inet6.debian12.txt"), {"eth0": ["192.0.2.2"], "lo": ["127.0.0.1"]})
    preferred = network.parse_ip_json(read("ip-addr.debian12.json"))
    assert [(e["Name"], e["MacAddress"], e["Mtu"]) for e in fallback] == [
        (e["Name"], e["MacAddress"], e["Mtu"]) for e in preferred
    ]
    assert [sorted(e["IPV6"]) for e in fallback] == [sorted(e["IPV6"]) for e in preferred]
    assert [e["IPV4"] for e in fallback] == [e["IPV4"] for e in preferred]


def test_default_route_interface_comes_from_proc_net_route():
    assert network.parse_default_route(read("proc-net-route.debian12.txt")) == "eth0"
    assert network.parse_default_route("Iface\tDestination\tGateway\n") is None
