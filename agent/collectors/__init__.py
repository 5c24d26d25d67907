"""Inventory collectors: each a command or file read plus a pure parse().

This module is the registry `agent.inventory` reads: inventory type name -> collector
module. Every module has `TYPE_NAME` and `collect(Options)`; `Custom:*` alone sets
`MULTI_TYPE` and returns several types at once.
"""

from __future__ import annotations

from . import application, custom, file, groups, instance, network, service, sysctl, updates, users

COLLECTORS = {
    module.TYPE_NAME: module
    for module in (instance, application, service, network, users, groups, updates, file, sysctl, custom)
}

# Collected only when asked for, or when the request names what they look at.
ON_REQUEST = {file.TYPE_NAME: "files", sysctl.TYPE_NAME: "sysctl_keys"}

DEFAULT_TYPES = tuple(name for name in COLLECTORS if name not in ON_REQUEST)
