"""Which associations are due, which nodes back off, and what a cycle may apply: the watch loop's decisions.

Owns the scheduling rules of `plumb reconcile --watch` (State Manager's, reference/ssm.md
§3.2), the per-node exponential backoff, and narrowing a Plan to the due work. Called by
`reconciler.watch` only. Pure: no I/O and no clock; the caller passes `now` and history.

- no schedule: runs when first seen and on every manifest change, never on a timer;
- rate(N unit): runs when first seen, then N units after its last run;
- cron(...): runs when first seen (not with applyOnlyAtCronInterval), then at the first fire
  time after its last run (missed fires make one run), `scheduleOffset` days late if set;
- at(...): runs once at its time (at once if first seen after it); never before it, not
  even on a manifest change: it names a moment;
- a manifest change makes every association due at once but those two (applyOnlyAtCronInterval,
  a future at()): SSM runs associations on create and edit; which one was edited does not
  matter, since a run changes only what is out of sync.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Iterable, Mapping, Sequence

from .kinds.association import Association
from .plan import step_name
from .planmodel import PARAMETER_STORE, Action, Classification, NodePlan, Plan, ResourcePlan
from .schedule import At, Context, Cron, Schedule, next_fire, parse_schedule


@dataclass(frozen=True)
class Timing:
    """What the scheduler needs to know about one association."""

    name: str
    schedule: Schedule | None = None
    only_at_interval: bool = False  # applyOnlyAtCronInterval: never on create or edit
    offset: timedelta = timedelta(0)  # scheduleOffset: days after each cron fire

    @classmethod
    def of(cls, association: Association) -> "Timing":
        text = association.schedule_expression
        schedule = parse_schedule(text, Context.ASSOCIATION) if text else None
        return cls(association.name, schedule, association.apply_only_at_cron_interval,
                   timedelta(days=association.schedule_offset or 0))

    def waits_for_its_time(self, now: datetime) -> bool:
        """True when a manifest change must not run it now."""
        return self.only_at_interval or (isinstance(self.schedule, At) and _at(self.schedule) > now)


@dataclass(frozen=True)
class History:
    first_seen: datetime
    last_run: datetime | None = None


@dataclass(frozen=True)
class Due:
    names: frozenset[str]  # associations to run now
    next_at: datetime | None  # when the next one not due now becomes due (None: only on a change)


def _at(schedule: At) -> datetime:
    return schedule.when.replace(tzinfo=timezone.utc)


def next_run(timing: Timing, history: History) -> datetime | None:
    """When the association is due next (possibly in the past: it is due now); None: never by time."""
    last, schedule = history.last_run, timing.schedule
    if isinstance(schedule, At):
        when = _at(schedule)
        return None if last is not None and last >= when else when
    if last is None and not timing.only_at_interval:
        return history.first_seen
    if schedule is None:
        return None
    if isinstance(schedule, Cron):
        fire = next_fire(schedule, (last or history.first_seen) - timing.offset)
        return fire + timing.offset if fire else None
    return next_fire(schedule, last or history.first_seen)


def due(timings: Iterable[Timing], histories: Mapping[str, History], now: datetime, changed: bool = False) -> Due:
    names, later = set(), []
    for timing in timings:
        when = next_run(timing, histories.get(timing.name) or History(now))
        if (when is not None and when <= now) or (changed and not timing.waits_for_its_time(now)):
            names.add(timing.name)
        elif when is not None:
            later.append(when)
    return Due(frozenset(names), min(later, default=None))


def seen(timings: Iterable[Timing], histories: Mapping[str, History], now: datetime) -> dict[str, History]:
    """The histories of the current associations; new ones are first seen `now`, removed ones forgotten."""
    return {t.name: histories.get(t.name) or History(now) for t in timings}


def ran(histories: Mapping[str, History], names: Iterable[str], now: datetime) -> dict[str, History]:
    updated = dict(histories)
    for name in names:
        updated[name] = replace(updated.get(name) or History(now), last_run=now)
    return updated


# --- nodes: backoff and owed work -----------------------------------------------------


class NodeBackoff:
    """Exponential backoff per node, counted in watch cycles (loop wake-ups).

    After the nth failure in a row a node sits out the next min(2**(n-1), cap) cycles:
    1, 2, 4, 8, 16, then `cap`. A success forgets its failures.
    """

    def __init__(self, cap: int = 30) -> None:
        self.cap = cap
        self._failures: dict[str, int] = {}
        self._left: dict[str, int] = {}

    def start_cycle(self) -> frozenset[str]:
        """Begin a cycle: the nodes that sit it out (each has one cycle less to wait)."""
        skipped = frozenset(node for node, left in self._left.items() if left > 0)
        for node in skipped:
            self._left[node] -= 1
        return skipped

    def failed(self, node: str) -> None:
        failures = self._failures.get(node, 0) + 1
        self._failures[node] = failures
        self._left[node] = min(2 ** min(failures - 1, 30), self.cap)

    def succeeded(self, node: str) -> None:
        self._failures.pop(node, None)
        self._left.pop(node, None)

    def left(self, node: str) -> int:
        """Cycles the node still sits out."""
        return self._left.get(node, 0)

    def failures(self, node: str) -> int:
        return self._failures.get(node, 0)

    def clear(self) -> None:
        self._failures.clear()
        self._left.clear()


def node_work(nodes: Sequence[str], due_now: frozenset[str], owed: Mapping[str, frozenset[str]],
              skipped: frozenset[str]) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """(work per node this cycle, what skipped nodes owe after it).

    A node's work is what is due now plus what it missed while failing or skipped; a
    skipped node adds what is due now to what it owes (SSM: a node that missed a run
    runs it when it is back).
    """
    work, still_owed = {}, {}
    for node in nodes:
        wanted = due_now | owed.get(node, frozenset())
        if node in skipped:
            if wanted:
                still_owed[node] = wanted
        elif wanted:
            work[node] = wanted
    return work, still_owed


# --- narrowing a plan to the due work ---------------------------------------------------


def hold_not_due(plan: Plan, work: Mapping[str, frozenset[str]], next_runs: Mapping[str, datetime | None]) -> Plan:
    """The plan with every change of an association not due on its node held back as BLOCKED.

    Held rather than dropped: reconcile applies only will-change resources, and the
    compliance it records still covers every association of the node.
    """
    nodes = tuple(_hold_node(p, work.get(p.node, frozenset()), next_runs)
                  if p.reachable and p.node != PARAMETER_STORE else p  # parameters: written every cycle
                  for p in plan.nodes)
    return replace(plan, nodes=nodes)


def _hold_node(node: NodePlan, due_here: frozenset[str], next_runs: Mapping[str, datetime | None]) -> NodePlan:
    resources = tuple(r if r.association in due_here or not r.will_change else _held(r, next_runs.get(r.association))
                      for r in node.resources)
    return replace(node, resources=resources, document=_kept_steps(node.document, resources))


def _held(resource: ResourcePlan, when: datetime | None) -> ResourcePlan:
    until = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""
    why = f"runs next at {until}" if until else "runs on a manifest change"
    return replace(resource, classification=Classification.BLOCKED, blocked_until=until,
                   reason=f"not due: association {resource.association} {why} ({resource.reason})")


def _kept_steps(document, resources: tuple[ResourcePlan, ...]):
    if not document:
        return document
    names = {step_name(r.address) for r in resources if r.will_change}
    steps = [s for s in document["mainSteps"] if s["name"] in names]
    return {**document, "mainSteps": steps} if steps else None


def run_scheduled_documents(plan: Plan, work: Mapping[str, frozenset[str]]) -> Plan:
    """On a schedule fire SSM runs the association again even if nothing changed: a document
    association that is in sync on a node where it is due is planned to run ("scheduled run")."""
    def node(p: NodePlan) -> NodePlan:
        due_here = work.get(p.node, frozenset())
        resources = tuple(replace(r, action=Action.UPDATE, classification=Classification.PENDING_CHANGE,
                                  reason=f"scheduled run of association {r.association} ({r.reason})")
                          if r.type == "documents" and r.association in due_here
                          and r.classification is Classification.IN_SYNC else r
                          for r in p.resources)
        return replace(p, resources=resources) if resources != p.resources else p
    return replace(plan, nodes=tuple(node(p) if p.reachable else p for p in plan.nodes))
