"""The `Association` kind: a State Manager association kept in git.

It says which nodes (targets), when (scheduleExpression, maintenanceWindow), how fast
(maxConcurrency, maxErrors) and what: declarative `state` (packages, users, directories,
files, sysctl, services; compared with inventory by the planner) or an SSM `document` to
run. Every declared resource keeps the JSON pointer of its manifest entry so plans and
reports can point at the exact line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from .. import schedule as sched
from ..diagnostics import Diagnostic, escape_pointer_token
from ..targets import Target, build_targets
from .base import EMPTY, Manifest, Meta, Origin, freeze

KIND = "Association"
SCHEMA = "association"

# Resources are applied in this order; within a type, in manifest order.
RESOURCE_ORDER = ("packages", "users", "directories", "files", "sysctl", "services")
DEFAULT_MAX_CONCURRENCY = "100%"  # SSM API default (the UG's "50 nodes" applies to consoles)
DEFAULT_MAX_ERRORS = "100%"


@dataclass(frozen=True)
class Resource:
    """One declared resource: its type (a RESOURCE_ORDER entry), id and desired fields."""

    type: str
    id: str  # package name, path, user name, sysctl key, service name
    pointer: str  # where it is declared, e.g. /spec/state/files/~1etc~1motd
    desired: Mapping[str, Any]

    @property
    def ensure(self) -> str:
        return self.desired.get("ensure", "present")

    @property
    def address(self) -> str:
        """Stable name across plans: `files:/etc/motd`."""
        return f"{self.type}:{self.id}"


@dataclass(frozen=True)
class DocumentRef:
    name: str
    version: str = "$DEFAULT"
    parameters: Mapping[str, Any] = field(default_factory=lambda: EMPTY)


@dataclass(frozen=True)
class Association:
    meta: Meta
    origin: Origin
    targets: tuple[Target, ...]
    schedule_expression: str = ""
    schedule_offset: int | None = None
    apply_only_at_cron_interval: bool = False
    max_concurrency: str = DEFAULT_MAX_CONCURRENCY
    max_errors: str = DEFAULT_MAX_ERRORS
    compliance_severity: str = "UNSPECIFIED"
    maintenance_window: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: EMPTY)
    document: DocumentRef | None = None
    resources: tuple[Resource, ...] = ()

    @property
    def name(self) -> str:
        return self.meta.name


def build(manifest: Manifest) -> Association:
    spec = manifest.spec
    document = None
    if "document" in spec:
        ref = spec["document"]
        document = DocumentRef(ref["name"], ref.get("documentVersion", "$DEFAULT"),
                               freeze(ref.get("parameters", {})))
    return Association(
        meta=manifest.meta,
        origin=manifest.origin,
        targets=build_targets(spec["targets"]),
        schedule_expression=spec.get("scheduleExpression", "").strip(),
        schedule_offset=spec.get("scheduleOffset"),
        apply_only_at_cron_interval=spec.get("applyOnlyAtCronInterval", False),
        max_concurrency=spec.get("maxConcurrency", DEFAULT_MAX_CONCURRENCY),
        max_errors=spec.get("maxErrors", DEFAULT_MAX_ERRORS),
        compliance_severity=spec.get("complianceSeverity", "UNSPECIFIED"),
        maintenance_window=spec.get("maintenanceWindow", ""),
        parameters=freeze(spec.get("parameters", {})),
        document=document,
        resources=build_resources(spec.get("state") or {}),
    )


def build_resources(state: Mapping[str, Any]) -> tuple[Resource, ...]:
    resources = []
    for rtype in RESOURCE_ORDER:
        for rid, desired in (state.get(rtype) or {}).items():
            if rtype == "sysctl" and not isinstance(desired, dict):
                desired = {"value": desired}
            pointer = f"/spec/state/{rtype}/{escape_pointer_token(rid)}"
            resources.append(Resource(rtype, rid, pointer, freeze(desired or {})))
    return tuple(resources)


def check(assoc: Association) -> Iterator[Diagnostic]:
    origin = assoc.origin
    has_state = "/spec/state" in origin.source.values
    if has_state == (assoc.document is not None):
        yield origin.diagnostic("/spec", "an association needs exactly one of 'state' or 'document'",
                                hint="state: declarative resources; document: an SSM Command document to run")
    yield from _check_schedule(assoc)
    for resource in assoc.resources:
        yield from _check_resource(assoc, resource)


def _check_schedule(assoc: Association) -> Iterator[Diagnostic]:
    origin = assoc.origin
    parsed = None
    if assoc.schedule_expression:
        try:
            parsed = sched.parse_schedule(assoc.schedule_expression, sched.Context.ASSOCIATION)
        except sched.ScheduleError as exc:
            yield origin.diagnostic("/spec/scheduleExpression", exc.message, code="schedule",
                                    hint=getattr(exc, "hint", "") or "")
    is_cron = isinstance(parsed, sched.Cron)
    if assoc.apply_only_at_cron_interval and parsed is not None and not is_cron:
        yield origin.diagnostic("/spec/applyOnlyAtCronInterval",
                                "applyOnlyAtCronInterval needs a cron scheduleExpression")
    if assoc.apply_only_at_cron_interval and not assoc.schedule_expression:
        yield origin.diagnostic("/spec/applyOnlyAtCronInterval",
                                "applyOnlyAtCronInterval needs a cron scheduleExpression")
    if assoc.schedule_offset is not None and not (is_cron and assoc.apply_only_at_cron_interval):
        yield origin.diagnostic("/spec/scheduleOffset",
                                "scheduleOffset needs a cron scheduleExpression and applyOnlyAtCronInterval: true")


def _check_resource(assoc: Association, resource: Resource) -> Iterator[Diagnostic]:
    origin, pointer, desired = assoc.origin, resource.pointer, resource.desired
    if resource.type == "files":
        sources = [k for k in ("content", "template", "source") if k in desired]
        if resource.ensure == "absent" and sources:
            yield origin.diagnostic(f"{pointer}/{sources[0]}", "a file with ensure: absent has no content",
                                    key=True)
        elif resource.ensure == "present" and len(sources) != 1:
            found = ", ".join(sources) if sources else "none"
            yield origin.diagnostic(pointer, f"a file needs exactly one of content, template or source "
                                    f"(found {found})")
    if resource.type == "packages" and resource.ensure != "present" and "version" in desired:
        yield origin.diagnostic(f"{pointer}/version", f"a version makes no sense with ensure: {resource.ensure}",
                                key=True)
    if resource.type == "users" and resource.ensure == "absent" and len(desired) > 1:
        extra = next(k for k in desired if k != "ensure")
        yield origin.diagnostic(f"{pointer}/{extra}", "a user with ensure: absent takes no other field", key=True)
