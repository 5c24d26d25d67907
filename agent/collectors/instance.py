"""AWS:InstanceInformation: what the node is (one entry): host name, platform from
os-release, kernel, architecture, addresses, agent and Python versions, and whether the
node waits for a reboot.

`parse()` and `reboot_required()` are pure; `collect()` gathers their inputs from
/etc/os-release, uname, /proc/net/route, the network collector and the reboot markers.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from typing import Dict, List, Optional

from .. import __version__
from . import network
from .base import CollectorError, Options, read_text, run, which

TYPE_NAME = "AWS:InstanceInformation"

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
DEBIAN_REBOOT_FLAG = "/var/run/reboot-required"


def collect(options: Options) -> List[dict]:
    os_release = parse_os_release(_read_os_release())
    uname = os.uname()
    interfaces = _interfaces(options)
    route = _read_or_empty("/proc/net/route")
    return [parse(
        os_release,
        hostname=socket.gethostname(),
        kernel=uname.release,
        machine=uname.machine,
        interfaces=interfaces,
        default_interface=network.parse_default_route(route),
        reboot=_reboot_required(os_release, options),
        python_version="%d.%d.%d" % sys.version_info[:3],
    )]


def parse(
    os_release: Dict[str, str],
    *,
    hostname: str,
    kernel: str,
    machine: str,
    interfaces: List[dict],
    default_interface: Optional[str],
    reboot: Optional[bool],
    python_version: str,
) -> dict:
    """The single InstanceInformation entry from already-gathered facts."""
    addresses = node_addresses(interfaces, default_interface)
    return {
        "ComputerName": hostname,
        "PlatformType": "Linux",
        "PlatformName": os_release.get("NAME", "Linux"),
        "PlatformVersion": os_release.get("VERSION_ID", ""),
        "PlatformId": os_release.get("ID", "linux"),
        "PlatformFamily": os_release.get("ID_LIKE", ""),
        "PlatformCodename": os_release.get("VERSION_CODENAME", ""),
        "KernelVersion": kernel,
        "Architecture": machine,
        "AgentType": "plumb",
        "AgentVersion": __version__,
        "IpAddress": addresses[0] if addresses else "",
        "IpAddresses": addresses,
        "PythonVersion": python_version,
        "RebootRequired": reboot,
    }


def parse_os_release(text: str) -> Dict[str, str]:
    """KEY=value pairs of os-release(5); values may be quoted as in a shell."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw)
        except ValueError:
            words = [raw.strip("\"'")]
        values[key.strip()] = " ".join(words)
    return values


def node_addresses(interfaces: List[dict], default_interface: Optional[str]) -> List[str]:
    """Non-loopback IPv4 then global IPv6 addresses; the default route's interface first."""
    ordered = sorted(interfaces, key=lambda entry: entry["Name"] != default_interface)
    ipv4 = [a for entry in ordered for a in entry["IPV4"] if not a.startswith("127.")]
    ipv6 = [a for entry in ordered for a in entry["IPV6"] if a != "::1" and not a.startswith("fe80:")]
    return ipv4 + ipv6


def is_debian_family(os_release: Dict[str, str]) -> bool:
    ids = {os_release.get("ID", "")} | set(os_release.get("ID_LIKE", "").split())
    return bool(ids & {"debian", "ubuntu"})


def reboot_required(
    debian_family: bool, debian_flag: bool, needs_restarting_code: Optional[int]
) -> Optional[bool]:
    """True/False when the node's own tooling can tell, None when it cannot.

    Debian family: /var/run/reboot-required exists. RHEL family: `needs-restarting -r`
    exits 1 when a reboot is needed and 0 when not.
    """
    if debian_flag:
        return True
    if debian_family:
        return False
    if needs_restarting_code in (0, 1):
        return needs_restarting_code == 1
    return None


def _reboot_required(os_release: Dict[str, str], options: Options) -> Optional[bool]:
    debian = is_debian_family(os_release)
    code = None
    if not debian and which("needs-restarting"):
        try:
            code = run(["needs-restarting", "-r"], options.command_timeout, ok_codes=(0, 1))[0]
        except CollectorError:
            code = None
    flag = os.environ.get("PLUMB_REBOOT_REQUIRED_FILE") or DEBIAN_REBOOT_FLAG  # the override plumb:patch honours
    return reboot_required(debian, os.path.exists(flag), code)


def _interfaces(options: Options) -> List[dict]:
    try:
        return network.collect(options)
    except CollectorError:
        return []  # addresses are then unknown; AWS:Network reports why


def _read_os_release() -> str:
    for path in OS_RELEASE_PATHS:
        if os.path.exists(path):
            return read_text(path)
    return ""


def _read_or_empty(path: str) -> str:
    try:
        return read_text(path)
    except CollectorError:
        return ""
