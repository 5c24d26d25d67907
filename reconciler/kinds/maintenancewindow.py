"""The `MaintenanceWindow` kind: when disruptive work may start (SSM CreateMaintenanceWindow).

Associations and patch baselines name a window; outside it their changes are reported as
blocked, with the time the next window opens (computed by `reconciler.schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import schedule as sched
from ..targets import build_targets
from ..diagnostics import Diagnostic
from .base import Manifest, Meta, Origin

KIND = "MaintenanceWindow"
SCHEMA = "maintenancewindow"


@dataclass(frozen=True)
class MaintenanceWindow:
    meta: Meta
    origin: Origin
    schedule: str
    duration_hours: int
    cutoff_hours: int
    schedule_timezone: str = "UTC"
    schedule_offset: int | None = None
    start_date: str = ""
    end_date: str = ""
    allow_unassociated_targets: bool = False
    enabled: bool = True
    description: str = ""
    targets: tuple = ()

    @property
    def name(self) -> str:
        return self.meta.name


def build(manifest: Manifest) -> MaintenanceWindow:
    spec = manifest.spec
    return MaintenanceWindow(
        meta=manifest.meta,
        origin=manifest.origin,
        schedule=spec["schedule"].strip(),
        duration_hours=spec["duration"],
        cutoff_hours=spec["cutoff"],
        schedule_timezone=spec.get("scheduleTimezone", "UTC"),
        schedule_offset=spec.get("scheduleOffset"),
        start_date=spec.get("startDate", ""),
        end_date=spec.get("endDate", ""),
        allow_unassociated_targets=spec.get("allowUnassociatedTargets", False),
        enabled=spec.get("enabled", True),
        description=spec.get("description", ""),
        targets=build_targets(spec.get("targets", [])),
    )


def parse_datetime(text: str) -> datetime:
    """ISO-8601 extended date or date-time (a trailing Z is accepted)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)


def check(window: MaintenanceWindow) -> Iterator[Diagnostic]:
    origin = window.origin
    parsed = None
    try:
        parsed = sched.parse_schedule(window.schedule, sched.Context.MAINTENANCE_WINDOW)
    except sched.ScheduleError as exc:
        yield origin.diagnostic("/spec/schedule", exc.message, code="schedule",
                                hint=getattr(exc, "hint", "") or "")
    try:
        ZoneInfo(window.schedule_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        yield origin.diagnostic("/spec/scheduleTimezone",
                                f"unknown time zone '{window.schedule_timezone}'",
                                expected="an IANA time zone such as UTC or Europe/Paris")
    if window.cutoff_hours >= window.duration_hours:
        yield origin.diagnostic(
            "/spec/cutoff", f"cutoff ({window.cutoff_hours} h) must be less than the duration "
            f"({window.duration_hours} h)", hint="otherwise no task could ever start")
    if window.schedule_offset is not None and parsed is not None and not isinstance(parsed, sched.Cron):
        yield origin.diagnostic("/spec/scheduleOffset", "scheduleOffset only applies to cron schedules")
    yield from _check_dates(window)


def _check_dates(window: MaintenanceWindow) -> Iterator[Diagnostic]:
    dates = {}
    for field, text in (("startDate", window.start_date), ("endDate", window.end_date)):
        if not text:
            continue
        try:
            dates[field] = parse_datetime(text)
        except ValueError:
            yield window.origin.diagnostic(f"/spec/{field}", f"'{text}' is not an ISO-8601 date-time",
                                           expected="e.g. 2026-01-31T22:00:00Z")
    if len(dates) == 2:
        start, end = dates["startDate"], dates["endDate"]
        if (start.tzinfo is None) != (end.tzinfo is None):
            yield window.origin.diagnostic("/spec/endDate", "give both dates with a time zone, or neither")
        elif end <= start:
            yield window.origin.diagnostic("/spec/endDate", "endDate must be after startDate")
