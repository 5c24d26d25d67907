"""Is a maintenance window open now, and when does it open next? Pure: `now` is passed in.

A window opens at each fire time of its schedule and stays open `duration` hours; no new
work may start in its last `cutoff` hours. StartDate/EndDate bound the fire times;
a disabled window never opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from . import schedule as sched
from .kinds.maintenancewindow import MaintenanceWindow, parse_datetime


@dataclass(frozen=True)
class WindowState:
    name: str
    open: bool
    opened_at: datetime | None = None  # when open: the current window's start
    closes_at: datetime | None = None  # when open: the cutoff (no new work after it)
    next_open: datetime | None = None  # when closed: the next start, if any

    def describe(self) -> str:
        if self.open:
            return f"window {self.name} is open until {_iso(self.closes_at)}"
        if self.next_open:
            return f"blocked by window {self.name} until {_iso(self.next_open)}"
        return f"blocked by window {self.name}: it will not open again"


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def _bound(text: str, tz: str) -> datetime | None:
    if not text:
        return None
    moment = parse_datetime(text)
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment


def state(window: MaintenanceWindow, now: datetime) -> WindowState:
    if not window.enabled:
        return WindowState(window.name, False)
    parsed = sched.parse_schedule(window.schedule, sched.Context.MAINTENANCE_WINDOW)
    start_bound = _bound(window.start_date, window.schedule_timezone)
    end_bound = _bound(window.end_date, window.schedule_timezone)
    usable = timedelta(hours=window.duration_hours - window.cutoff_hours)
    anchor = start_bound or datetime(1970, 1, 1, tzinfo=timezone.utc)
    candidate = sched.next_fire(parsed, now - usable, window.schedule_timezone, anchor=anchor)
    while candidate is not None and start_bound and candidate < start_bound:
        candidate = sched.next_fire(parsed, candidate, window.schedule_timezone, anchor=anchor)
    if candidate is not None and end_bound and candidate > end_bound:
        candidate = None
    if candidate is not None and candidate <= now < candidate + usable:
        return WindowState(window.name, True, opened_at=candidate, closes_at=candidate + usable)
    upcoming = candidate if candidate is not None and candidate > now else None
    if upcoming is None and candidate is not None:
        upcoming = sched.next_fire(parsed, now, window.schedule_timezone, anchor=anchor)
        if upcoming is not None and end_bound and upcoming > end_bound:
            upcoming = None
    return WindowState(window.name, False, next_open=upcoming)
