"""The plan artifact: `plumb plan --out plan.json` writes it, `plumb reconcile --plan` reads it.

It holds everything needed to apply exactly that plan and to refuse when the world moved:
the format version, the manifests' git revision and a digest of their files, each node's
inventory fingerprint, every resource's plan and the corrective document per node.
Secret file contents are never in it (their steps carry only the content's sha256; the
engine renders them at apply time and checks the hash).
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from ..planmodel import (FORMAT_VERSION, Action, Classification, Digest, FieldChange, NodePlan, Plan, ResourcePlan,
                         Source)

KIND = "plumb-plan"


class ArtifactError(Exception):
    pass


def to_json(plan: Plan, manifests_digest: str) -> str:
    data = {"kind": KIND, "format_version": FORMAT_VERSION, "manifests_digest": manifests_digest,
            **dataclasses.asdict(plan)}
    return json.dumps(data, indent=2, sort_keys=True, default=_default) + "\n"


def _default(value: Any):
    if isinstance(value, (Action, Classification)):
        return value.value
    if isinstance(value, bytes):
        raise TypeError("bytes in a plan artifact")
    if hasattr(value, "items"):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} into a plan artifact")


def from_json(text: str) -> tuple[Plan, str]:
    """(plan, manifests digest); ArtifactError when it is not a plan this plumb can apply."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"not a plan file: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ArtifactError("not a plan file written by `plumb plan --out`")
    major = str(data.get("format_version", "")).split(".")[0]
    if major != FORMAT_VERSION.split(".")[0]:
        raise ArtifactError(f"plan format {data.get('format_version')} cannot be applied by this plumb "
                            f"(it writes {FORMAT_VERSION})")
    nodes = tuple(_node(n) for n in data["nodes"])
    plan = Plan(data["format_version"], data["created_at"], data["manifests"], data["git_revision"], nodes,
                tuple(data.get("diagnostics", ())))
    return plan, data.get("manifests_digest", "")


def _node(data: dict) -> NodePlan:
    resources = tuple(_resource(r) for r in data.get("resources", ()))
    return NodePlan(data["node"], data["reachable"], data["error"], data["inventory_fingerprint"],
                    data["inventory_time"], resources, data.get("document"))


def _resource(data: dict) -> ResourcePlan:
    fields = dict(data)
    fields["source"] = Source(**data["source"])
    fields["action"] = Action(data["action"])
    fields["classification"] = Classification(data["classification"])
    fields["changes"] = tuple(_change(c) for c in data.get("changes", ()))
    fields["triggers"] = tuple(data.get("triggers", ()))
    return ResourcePlan(**fields)


_DIGEST = re.compile(r"[0-9a-f]{64}")


def _change(data: dict) -> FieldChange:
    """A field change as saved; a sensitive value saved as a sha256 was a Digest (a secret's
    stand-in: the artifact never holds a secret), and is one again."""
    change = FieldChange(**data)
    if not change.sensitive:
        return change
    before, after = (Digest(v) if isinstance(v, str) and _DIGEST.fullmatch(v) else v
                     for v in (change.before, change.after))
    return FieldChange(change.field, before, after, True)
