"""plumb:Sysctl: kernel parameters read from /proc/sys by their dotted keys."""

import pytest

from agent.collectors import sysctl


def test_dotted_key_maps_to_proc_sys_and_slash_means_dot():
    assert sysctl.key_path("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"
    assert sysctl.key_path("net.ipv4.conf.eth0/100.rp_filter") == "/proc/sys/net/ipv4/conf/eth0.100/rp_filter"


@pytest.mark.parametrize("key", ["../../etc/shadow", "net..ipv4", "/etc/passwd", "kernel.hostname;id", ""])
def test_keys_that_could_leave_proc_sys_are_refused(key):
    entry = sysctl.observe(key)
    assert entry["Exists"] is False
    assert "not a sysctl key" in entry["Error"]


def test_value_whitespace_is_folded():
    assert sysctl.parse("net.ipv4.ip_local_port_range", "32768\t60999\n") == {
        "Key": "net.ipv4.ip_local_port_range", "Exists": True, "Value": "32768 60999",
    }


def test_real_key_is_read_and_missing_key_does_not_exist():
    with open("/proc/sys/kernel/hostname") as handle:
        hostname = handle.read().strip()
    assert sysctl.observe("kernel.hostname") == {"Key": "kernel.hostname", "Exists": True, "Value": hostname}
    assert sysctl.observe("kernel.no_such_parameter") == {"Key": "kernel.no_such_parameter", "Exists": False}


def test_unreadable_key_carries_an_error(tmp_path):
    (tmp_path / "vm").mkdir()
    (tmp_path / "vm" / "stat_refresh").write_text("")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    entry = sysctl.observe("vm.stat_refresh", root=str(tmp_path), opener=denied)
    assert entry == {"Key": "vm.stat_refresh", "Exists": True, "Error": "Permission denied"}
