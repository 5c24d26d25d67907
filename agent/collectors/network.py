"""AWS:Network: network interfaces with their MAC, IPv4 and IPv6 addresses.

Preferred source: `ip -j addr` (iproute2 >= 4.13, JSON). Fallback where `ip` is missing or
too old: /sys/class/net for links, /proc/net/if_inet6 for IPv6, and one SIOCGIFADDR ioctl
per interface for IPv4 (which sees only an interface's primary IPv4 address).
Also used by AWS:InstanceInformation, with `parse_default_route()`, for the node's IPs.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import socket
import struct
from typing import Dict, List, Optional

from .base import CollectorError, Options, read_text, run, which

TYPE_NAME = "AWS:Network"

SYS_NET = "/sys/class/net"
IF_INET6 = "/proc/net/if_inet6"
ROUTE = "/proc/net/route"
SIOCGIFADDR = 0x8915


def collect(options: Options) -> List[dict]:
    if which("ip"):
        try:
            return parse_ip_json(run(["ip", "-j", "addr", "show"], options.command_timeout)[1])
        except CollectorError:
            pass  # iproute2 without -j: fall back to the kernel's own files
    return parse_sysfs(_read_links(), _read_optional(IF_INET6), _ipv4_by_ioctl())


def parse_ip_json(text: str) -> List[dict]:
    """Entries from `ip -j addr show` output."""
    try:
        links = json.loads(text)
    except ValueError as error:
        raise CollectorError(f"ip -j addr: invalid JSON: {error}") from None
    entries = []
    for link in links:
        infos = link.get("addr_info", [])
        entries.append(_entry(
            link["ifname"],
            link.get("address", ""),
            [info["local"] for info in infos if info.get("family") == "inet"],
            [info["local"] for info in infos if info.get("family") == "inet6"],
            link.get("operstate", ""),
            link.get("mtu"),
        ))
    return sorted(entries, key=lambda entry: entry["Name"])


def parse_sysfs(links: Dict[str, Dict[str, str]], if_inet6: str, ipv4: Dict[str, List[str]]) -> List[dict]:
    """Entries from /sys/class/net/<if>/{address,operstate,mtu}, /proc/net/if_inet6 and IPv4s."""
    ipv6 = parse_if_inet6(if_inet6)
    entries = []
    for name, attributes in links.items():
        mtu = attributes.get("mtu", "")
        entries.append(_entry(
            name,
            attributes.get("address", ""),
            ipv4.get(name, []),
            ipv6.get(name, []),
            attributes.get("operstate", "").upper(),
            int(mtu) if mtu.isdigit() else None,
        ))
    return sorted(entries, key=lambda entry: entry["Name"])


def parse_if_inet6(text: str) -> Dict[str, List[str]]:
    """Interface -> IPv6 addresses, from /proc/net/if_inet6 (32 hex digits, ..., name)."""
    found: Dict[str, List[str]] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 6 and len(fields[0]) == 32:
            address = str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
            found.setdefault(fields[5], []).append(address)
    return found


def parse_default_route(text: str) -> Optional[str]:
    """The interface of the IPv4 default route with the lowest metric, from /proc/net/route."""
    best = None
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[1] == "00000000" and fields[7] == "00000000":
            metric = int(fields[6])
            if best is None or metric < best[0]:
                best = (metric, fields[0])
    return best[1] if best else None


def _entry(name: str, mac: str, ipv4: List[str], ipv6: List[str], state: str, mtu) -> dict:
    return {"Name": name, "MacAddress": mac, "IPV4": ipv4, "IPV6": ipv6, "State": state, "Mtu": mtu}


def _read_links() -> Dict[str, Dict[str, str]]:
    try:
        names = os.listdir(SYS_NET)
    except OSError as error:
        raise CollectorError(f"cannot list {SYS_NET}: {error.strerror}") from None
    links = {}
    for name in names:
        links[name] = {
            key: _read_optional(os.path.join(SYS_NET, name, key)).strip()
            for key in ("address", "operstate", "mtu")
        }
    return links


def _read_optional(path: str) -> str:
    try:
        return read_text(path)
    except CollectorError:
        return ""


def _ipv4_by_ioctl() -> Dict[str, List[str]]:
    found = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, request)
            except OSError:
                continue  # no IPv4 address on this interface
            found[name] = [socket.inet_ntoa(reply[20:24])]
    return found
