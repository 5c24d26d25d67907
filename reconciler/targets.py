"""Targets: which nodes an association, window or command applies to (SSM semantics).

A target is `{key, values}` with key `InstanceIds` (node names; `*` = all), `tag:<k>`
(label k has one of the values), `tag-key` (the node has one of these label keys) or
`resource-groups:Name` (nodes labelled `resource-group: <name>`). Values of one key are
ORed; different targets are ANDed. Pure functions only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

RESOURCE_GROUP_LABEL = "resource-group"


@dataclass(frozen=True)
class Target:
    key: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        return f"Key={self.key},Values={','.join(self.values)}"

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if self.key == "InstanceIds":
            return "*" in self.values or name in self.values
        if self.key == "tag-key":
            return any(v in labels for v in self.values)
        if self.key.startswith("tag:"):
            value = labels.get(self.key[4:])
            return value is not None and value in self.values
        if self.key == "resource-groups:Name":
            return labels.get(RESOURCE_GROUP_LABEL) in self.values
        return False


def build_targets(raw: Iterable[Mapping]) -> tuple[Target, ...]:
    return tuple(Target(t["key"], tuple(t.get("values", ()))) for t in raw)


def matches(targets: Sequence[Target], name: str, labels: Mapping[str, str]) -> bool:
    """True when every target matches (AND across targets, OR within one target's values)."""
    return bool(targets) and all(t.matches(name, labels) for t in targets)


class TargetSyntaxError(ValueError):
    pass


_SSM_FORM = re.compile(r"^Key=(?P<key>[^,]+),Values=(?P<values>.*)$")
_SHORT_FORM = re.compile(r"^(?P<key>tag:[^=]+|tag-key|InstanceIds|resource-groups:Name)=(?P<values>.*)$")


def parse_cli_target(text: str) -> Target:
    """`tag:role=web,db`, `InstanceIds=web-1` or SSM's `Key=tag:role,Values=web,db`."""
    match = _SSM_FORM.match(text) or _SHORT_FORM.match(text)
    if not match:
        raise TargetSyntaxError(
            f"cannot read target '{text}': expected tag:<key>=<value>[,<value>...], "
            "tag-key=<key>, InstanceIds=<node>[,...] or Key=<key>,Values=<v1>[,<v2>...]")
    values = tuple(v for v in match["values"].split(",") if v)
    if not values:
        raise TargetSyntaxError(f"target '{text}' has no values")
    return Target(match["key"], values)


def select_nodes(nodes, targets: Sequence[Target] = (), names: Sequence[str] = ()):
    """The nodes matching every target and, when names are given, one of the names (manifest order).

    Unknown names raise TargetSyntaxError, so a typo in `--node` never silently selects nothing.
    """
    known = {n.name for n in nodes}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise TargetSyntaxError(f"no Node named {', '.join(repr(u) for u in unknown)} in the manifests or registered "
                                f"(known: {', '.join(sorted(known)) or 'none'})")
    chosen = []
    for node in nodes:
        if names and node.name not in names:
            continue
        if targets and not matches(targets, node.name, node.labels):
            continue
        chosen.append(node)
    return chosen
