"""Plan the Parameter Store: Parameter manifests (git) vs what reconcile last wrote vs the store. Pure.

Parameters live on the controller, not on a node, so their plans are gathered in one
NodePlan named `(parameter store)`: every renderer, the summary line and the exit code
treat them like any other resources. Three-way, as for node resources:

- desired: the manifest (a SecureString by the digest of its sealed value, opened at the edge);
- last applied: the state hash of what reconcile last wrote from git (`applied_hash`);
- observed: the store's latest version (`plumb param put` changes it outside git).

A `managed: false` parameter is only created, never overwritten. Policies are evaluated
here against `now`: an Expiration in the past makes the parameter absent (reconcile deletes
it, as SSM does, and does not recreate it until the timestamp moves); ExpirationNotification
and NoChangeNotification become notices in the resource's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping

from .planmodel import PARAMETER_STORE, Action, Classification, Digest, FieldChange, NodePlan, ResourcePlan, Source

ASSOCIATION = "parameters"  # what the `association` column of a parameter's plan says


@dataclass(frozen=True)
class ParameterState:
    """The fields of a parameter that are compared (desired or observed)."""

    type: str
    digest: str  # sha256 hex of the plaintext; "" when it could not be worked out
    value: str | None = None  # the plain value; never set for a SecureString
    description: str = ""
    tier: str = "Standard"
    allowed_pattern: str = ""
    data_type: str = "text"
    policies: tuple = ()  # SSM-shaped dicts
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class DesiredParameter:
    name: str  # normalised
    source: Source
    state: ParameterState
    state_hash: str  # the same hash reconcile records as applied_hash when it writes this
    managed: bool = True
    unknown: str = ""  # why the desired value is not known (e.g. the sealed value does not open)

    @property
    def secure(self) -> bool:
        return self.state.type == "SecureString"


@dataclass(frozen=True)
class ObservedParameter:
    name: str
    version: int
    state: ParameterState
    state_hash: str
    applied_hash: str = ""
    applied_at: str = ""
    modified_at: str = ""
    modified_by: str = ""


def address(name: str) -> str:
    return f"parameters:{name}"


def plan_parameters(desired: Iterable[DesiredParameter], observed: Mapping[str, ObservedParameter],
                    now: datetime, fingerprint: str = "") -> NodePlan:
    resources = tuple(plan_parameter(d, observed.get(d.name), now) for d in desired)
    return NodePlan(PARAMETER_STORE, True, "", fingerprint, "", resources, None)


def plan_parameter(want: DesiredParameter, have: ObservedParameter | None, now: datetime) -> ResourcePlan:
    notices = _notices(want, have, now)
    expired = _expired_at(want.state.policies, now)

    def made(action: Action, classification: Classification, reason: str, changes=()) -> ResourcePlan:
        reason = "; ".join([reason, *notices])
        return ResourcePlan(address(want.name), "parameters", want.name, ASSOCIATION, want.source, action,
                            classification, reason, tuple(changes))  # only the value change is sensitive

    if want.unknown:
        return made(Action.NOOP, Classification.UNKNOWN, f"unknown: {want.unknown}")
    if expired:
        if have is None:
            return made(Action.NOOP, Classification.IN_SYNC,
                        f"expired at {expired} (Expiration policy): not created; move the timestamp in git to "
                        "bring it back")
        return made(Action.DELETE, Classification.PENDING_CHANGE,
                    f"expired at {expired} (Expiration policy): reconcile deletes it, as Parameter Store does",
                    [FieldChange("exists", True, False)])
    if have is None:
        return made(Action.CREATE, Classification.PENDING_CHANGE, "not in the parameter store: version 1 will be "
                    "created", _changes(want, None))
    changes = _changes(want, have)
    if not changes:
        return made(Action.NOOP, Classification.IN_SYNC, f"in sync (version {have.version})")
    if not want.managed:
        return made(Action.NOOP, Classification.IN_SYNC,
                    f"managed: false, so only created, never overwritten; version {have.version} (by "
                    f"{have.modified_by or 'unknown'}) differs from git in " + ", ".join(c.field for c in changes))
    classification, because = _classify(want, have)
    bump = any(c.field in ("value", "type") for c in changes)
    what = f"version {have.version + 1} will be written" if bump else f"version {have.version} updated in place"
    return made(Action.UPDATE, classification, f"differs: {', '.join(c.field for c in changes)} ({because}); {what}",
                changes)


def _classify(want: DesiredParameter, have: ObservedParameter) -> tuple[Classification, str]:
    if not have.applied_hash:
        return Classification.PENDING_CHANGE, f"not written by plumb before; set by {have.modified_by or 'unknown'}"
    desired_moved = want.state_hash != have.applied_hash
    store_moved = have.state_hash != have.applied_hash
    if desired_moved and store_moved:
        return (Classification.DRIFT_AND_CHANGE,
                f"the manifest changed, and the store was changed outside git by {have.modified_by or 'unknown'} "
                f"at {have.modified_at}")
    if store_moved:
        return (Classification.DRIFT,
                f"changed outside git by {have.modified_by or 'unknown'} at {have.modified_at}")
    return Classification.PENDING_CHANGE, "the manifest changed since the last apply"


def _changes(want: DesiredParameter, have: ObservedParameter | None) -> list[FieldChange]:
    w, h = want.state, have.state if have is not None else None
    changes = []
    if h is None or w.digest != h.digest:
        if want.secure or (h is not None and h.type == "SecureString"):
            changes.append(FieldChange("value", Digest(h.digest) if h is not None else None, Digest(w.digest), True))
        else:
            changes.append(FieldChange("value", None if h is None else h.value, w.value))
    for field, wanted, had in (("type", w.type, h and h.type), ("description", w.description, h and h.description),
                               ("tier", w.tier, h and h.tier), ("allowedPattern", w.allowed_pattern,
                                                                h and h.allowed_pattern),
                               ("dataType", w.data_type, h and h.data_type),
                               ("policies", list(w.policies), h and list(h.policies))):
        if h is None:
            if wanted and field not in ("dataType",) and not (field == "tier" and wanted == "Standard"):
                changes.append(FieldChange(field, None, wanted))
        elif wanted != had:
            changes.append(FieldChange(field, had, wanted))
    missing = [label for label in w.labels if h is None or label not in h.labels]
    if missing:
        changes.append(FieldChange("labels", sorted(h.labels) if h is not None else None,
                                   sorted(set(missing) | set(h.labels if h else ()))))
    return changes


# --- policies -----------------------------------------------------------------------------

def _instant(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _attr(policy: Mapping, key: str):
    attributes = policy.get("Attributes") or {}
    return attributes.get(key, attributes.get(key.lower()))


def _expiry(policies) -> datetime | None:
    for policy in policies:
        if policy.get("Type") == "Expiration":
            return _instant(_attr(policy, "Timestamp") or "")
    return None


def _expired_at(policies, now: datetime) -> str:
    expiry = _expiry(policies)
    return _iso(expiry) if expiry is not None and expiry <= now else ""


def _span(policy: Mapping, key: str) -> timedelta | None:
    try:
        amount = int(_attr(policy, key))
    except (TypeError, ValueError):
        return None
    return timedelta(days=amount) if _attr(policy, "Unit") == "Days" else timedelta(hours=amount)


def _notices(want: DesiredParameter, have: ObservedParameter | None, now: datetime) -> list[str]:
    """ExpirationNotification and NoChangeNotification, as SSM would send them, at `now`."""
    policies = want.state.policies if want.managed or have is None else have.state.policies
    expiry = _expiry(policies)
    notices = []
    for policy in policies:
        kind = policy.get("Type")
        if kind == "ExpirationNotification" and expiry is not None and now < expiry:
            before = _span(policy, "Before")
            if before is not None and now >= expiry - before:
                notices.append(f"ExpirationNotification: expires at {_iso(expiry)} (in {_ago(expiry - now)})")
        elif kind == "NoChangeNotification" and have is not None and have.modified_at:
            after, changed = _span(policy, "After"), _instant(have.modified_at)
            if after is not None and changed is not None and now - changed >= after:
                notices.append(f"NoChangeNotification: unchanged since {have.modified_at} ({_ago(now - changed)})")
    return notices


def _ago(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours // 24} days" if hours >= 48 else f"{hours} hours"


def notices_of(resource: ResourcePlan) -> list[str]:
    """The policy notices a parameter's plan carries (for reconcile's report and history)."""
    return [part for part in resource.reason.split("; ") if part.startswith(("ExpirationNotification:",
                                                                           "NoChangeNotification:"))]
