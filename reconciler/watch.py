"""`plumb reconcile --watch`: the long-running loop that keeps the fleet true to git.

Owns the loop and its lifetime: watching the manifests directory (watchdog; the only
module importing it), waking on a change (debounced) or every tick, `git pull`, reloading
the manifests, and running a cycle (observe, plan, reconcile) of the associations that are
due; SIGTERM/SIGINT, the /metrics server, and one line of output per cycle. Called by
`cli_plan` (`plumb reconcile --watch`) through `run_watch`.

Level-based, as controller-runtime: every wake-up re-reads the manifests' digest, so a
missed file event only delays a change until the next tick. The decisions (what is due,
which nodes back off, what a cycle may apply) are pure and live in `schedulestate`; the
metric names in `metrics`. Run history (when each association was first seen and last
ran) is saved in the state store per watch scope (its --targets/--node): a restart takes it
up and keeps to the schedules, unless the manifests changed while it was stopped (then
every association runs once, as on an edit); the first start runs every association once
(as on create), except applyOnlyAtCronInterval and future at() ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from watchdog.events import EVENT_TYPE_CLOSED_NO_WRITE, EVENT_TYPE_OPENED, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from . import schedulestate as sched_state
from .engine import gitinfo
from .engine.planning import observe, plan_everything
from .engine.reconcile import ReconcileResult, reconcile
from .loader import load, registered_nodes, with_registered
from .metrics import MetricsServer, WatchMetrics
from .store import Store, StoreError, open_store
from .targets import TargetSyntaxError, parse_cli_target, select_nodes

FORMAT_VERSION = "1.0"


@dataclass(frozen=True)
class WatchOptions:
    manifests: str
    state: str
    targets: tuple[str, ...] = ()  # CLI target strings (tag:role=web, ...), re-applied at every reload
    nodes: tuple[str, ...] = ()  # node names; empty: every node the targets select
    git_pull: tuple[str, str] | None = None  # (remote, branch): `git pull --ff-only` at every wake-up
    metrics_address: str = ""  # HOST:PORT for /metrics; "" disables it
    debounce_seconds: float = 2.0  # file events this close together make one change
    tick_seconds: float = 30.0  # the longest sleep between two looks at schedules, git and retries
    ignore_windows: bool = False
    allow_unreachable: bool = False  # an unreachable node does not make the cycle fail (it still backs off)
    output: str = "text"  # text: log lines; json: one JSON object per cycle on stdout, nothing else
    max_cycles: int | None = None  # stop after this many cycles (tests)
    backoff_cap: int = 30  # the most cycles a failing node sits out
    debug: bool = False  # tracebacks for unexpected errors
    key_dir: str = ""  # the controller's sealing key pair ("" → $PLUMB_KEY_DIR or .plumb/keys)


def run_watch(options: WatchOptions) -> int:
    """Run until SIGTERM/SIGINT (or `max_cycles`): 0 after a clean stop, 1 when it cannot start."""
    return asyncio.run(_main(options, _Output(options.output == "json")))


async def _main(options: WatchOptions, out: "_Output") -> int:
    with contextlib.ExitStack() as stack:
        try:
            watch = _start(options, out, stack)
        except (OSError, ValueError, StoreError, TargetSyntaxError) as exc:
            out.warn(f"plumb: error: cannot start watching: {exc}")
            return 1
        await watch.run()
        out.info("stopped")
    return 0


def _start(options: WatchOptions, out: "_Output", stack: contextlib.ExitStack) -> "_Watch":
    """Open everything the loop needs; `stack` closes it all in reverse order."""
    root = Path(options.manifests)
    if not root.is_dir():
        raise ValueError(f"{options.manifests} is not a directory")
    targets = tuple(parse_cli_target(t) for t in options.targets)
    store = stack.enter_context(open_store(options.state))
    metrics = WatchMetrics()
    if options.metrics_address:
        server = MetricsServer(options.metrics_address, metrics.text)
        stack.callback(server.close)
        out.info(f"metrics at {server.url}")
    changes = _Changes(root, options.debounce_seconds)
    stack.callback(changes.close)
    watch = _Watch(options, targets, store, metrics, out, changes)
    stack.enter_context(_signals(watch.on_signal))
    out.info(f"watching {root} (tick {options.tick_seconds:g}s, debounce {options.debounce_seconds:g}s)")
    return watch


@contextlib.contextmanager
def _signals(handler):
    loop = asyncio.get_running_loop()
    installed = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, handler, sig)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


class _Changes(FileSystemEventHandler):
    """File events under the manifests directory, debounced: `settled()` returns once they go quiet."""

    IGNORED = (EVENT_TYPE_OPENED, EVENT_TYPE_CLOSED_NO_WRITE)  # reads, including our own

    def __init__(self, root: Path, quiet: float) -> None:
        self.root, self.quiet = root.resolve(), quiet
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self.last = 0.0
        self.observer = Observer()
        self.observer.schedule(self, str(self.root), recursive=True)
        self.observer.start()

    def on_any_event(self, event: FileSystemEvent) -> None:  # on watchdog's thread
        paths = [p for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        if event.event_type in self.IGNORED or all(self._hidden(p) for p in paths):
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: we are stopping
            self.loop.call_soon_threadsafe(self._poke)

    def _hidden(self, path) -> bool:
        try:
            parts = Path(path if isinstance(path, str) else path.decode()).resolve().relative_to(self.root).parts
        except ValueError:
            return False
        return any(part.startswith(".") for part in parts)

    def _poke(self) -> None:
        self.last = time.monotonic()
        self.event.set()

    @property
    def pending(self) -> bool:
        return self.event.is_set()

    async def settled(self) -> None:
        await self.event.wait()
        while (left := self.last + self.quiet - time.monotonic()) > 0:
            await asyncio.sleep(left)
        self.event.clear()

    def close(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)


class _Output:
    """Text mode: log lines on stderr and a summary per cycle on stdout. JSON mode: one object per cycle."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def info(self, message: str) -> None:
        if not self.as_json:
            self.warn(message)

    def warn(self, message: str) -> None:
        print(f"{_iso(_now())} {message}", file=sys.stderr, flush=True)

    def event(self, kind: str, node: str, message: str) -> None:
        self.info(f"{kind:<13} {node}: {message}")

    def cycle(self, report: dict) -> None:
        text = json.dumps(report) if self.as_json else _summary_line(report)
        print(text, flush=True)


class _Watch:
    """The loop's state between wake-ups: the last good model, run history, backoff, owed work."""

    def __init__(self, options: WatchOptions, targets, store: Store, metrics: WatchMetrics, out: _Output,
                 changes: _Changes) -> None:
        self.options, self.targets, self.store = options, targets, store
        self.metrics, self.out, self.changes = metrics, out, changes
        self.root = options.manifests
        self.model = None  # the last good model
        self.timings: tuple[sched_state.Timing, ...] = ()
        self.digest: str | None = None  # of the files last loaded, good or not
        self.valid = False
        self.revision = ""
        self.histories: dict[str, sched_state.History] = {}
        self.saved: dict[str, tuple[str, str | None]] = {}  # the histories as last saved in the store
        self.owed: dict[str, frozenset[str]] = {}
        self.selected: list[str] = []  # the nodes the targets select in the current model
        self.backoff = sched_state.NodeBackoff(options.backoff_cap)
        self.cycles = 0
        self.pull_error = ""
        self.stopping = asyncio.Event()
        self.task: asyncio.Task | None = None

    # --- lifetime --------------------------------------------------------------------

    def on_signal(self, sig: int) -> None:
        name = signal.Signals(sig).name
        if not self.stopping.is_set():
            self.stopping.set()
            self.out.info(f"{name}: stopping" + (" after the current cycle" if self.task else ""))
        elif self.task is not None and not self.task.done():
            self.out.warn(f"{name} again: cancelling the current cycle")
            self.task.cancel()

    async def run(self) -> None:
        wait = 0.0
        try:
            while not self.stopping.is_set() and not self._enough():
                await self._sleep(wait)
                if self.stopping.is_set():
                    break
                self.task = asyncio.create_task(self._tick())
                await asyncio.wait({self.task})
                self._report_crash(self.task)
                self.task = None
                wait = self._next_wait()
        finally:
            await _drain()

    def _report_crash(self, task: asyncio.Task) -> None:
        if task.cancelled():
            self.out.warn("the cycle was cancelled")
        elif task.exception() is not None:  # a bug outside a cycle's own guard: logged, the loop goes on
            exc = task.exception()
            self.out.warn(f"plumb: error: {type(exc).__name__}: {exc}")
            if self.options.debug:
                traceback.print_exception(exc)

    def _enough(self) -> bool:
        return self.options.max_cycles is not None and self.cycles >= self.options.max_cycles

    async def _sleep(self, seconds: float) -> None:
        """Until the timeout, a settled file change or a stop; a change still settling is waited for
        (a while: a file written without pause must not starve the schedules)."""
        stop = asyncio.create_task(self.stopping.wait())
        settled = asyncio.create_task(self.changes.settled())
        try:
            await asyncio.wait({stop, settled}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
            if self.changes.pending and not stop.done():
                await asyncio.wait({stop, settled}, timeout=10 * self.options.debounce_seconds,
                                   return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, settled):
                task.cancel()
            await asyncio.gather(stop, settled, return_exceptions=True)

    def _next_wait(self) -> float:
        if not self.valid:
            return self.options.tick_seconds
        now = _now()
        due = sched_state.due(self.timings, self.histories, now)
        if due.names:
            return 0.0
        until = (due.next_at - now).total_seconds() if due.next_at else self.options.tick_seconds
        return max(0.0, min(self.options.tick_seconds, until))

    # --- one wake-up -----------------------------------------------------------------

    async def _tick(self) -> None:
        now = _now()
        self._pull()
        first = self.model is None
        changed = self._reload(now)
        if self.model is None or not self.valid:
            return
        if first and changed:
            changed = self._resume()
        self.histories = sched_state.seen(self.timings, self.histories, now)
        due = sched_state.due(self.timings, self.histories, now, changed=changed)
        self.histories = sched_state.ran(self.histories, due.names, now)
        self._save()
        nodes = self._nodes()
        skipped = self.backoff.start_cycle()
        work, self.owed = sched_state.node_work([n.name for n in nodes], due.names, self.owed, skipped)
        self.selected = [n.name for n in nodes]
        if work:
            trigger = "start" if first else "change" if changed else "schedule" if due.names else "retry"
            await self._cycle(now, [n for n in nodes if n.name in work], work, trigger, due.names, skipped)
        else:
            self._fleet_metrics()

    def _scope(self) -> str:
        """Which watch loop this is, for its saved state: its targets and nodes."""
        return json.dumps({"targets": sorted(self.options.targets), "nodes": sorted(self.options.nodes)})

    def _resume(self) -> bool:
        """At the first good load: take up the schedule state this watch loop saved before it
        stopped, so a restart keeps to the schedules. True when every association must run
        (nothing saved, or the manifests changed since)."""
        saved = self.store.watch_state(self._scope())
        if saved is None:
            return True
        digest, histories = saved
        self.histories = {name: sched_state.History(_parse(first), _parse(last) if last else None)
                          for name, (first, last) in histories.items()}
        self.saved = self._saved_form()
        changed = digest != self.digest
        self.out.info("resumed the schedules saved by the last run of this watch" + (
            "; the manifests changed since, so every association runs" if changed else
            "; associations run when their schedules say"))
        return changed

    def _save(self) -> None:
        form = self._saved_form()
        if form != self.saved:
            self.store.save_watch_state(self._scope(), self.digest or "", form)
            self.saved = form

    def _saved_form(self) -> dict[str, tuple[str, str | None]]:
        return {name: (_iso(h.first_seen), _iso(h.last_run) if h.last_run else None)
                for name, h in self.histories.items()}

    def _pull(self) -> None:
        if not self.options.git_pull:
            return
        remote, branch = self.options.git_pull
        try:
            said = gitinfo.pull(self.root, remote, branch)
        except Exception as exc:  # noqa: BLE001 (git missing, timeout, refused): the cycle goes on
            if str(exc) != self.pull_error:
                self.out.warn(f"git pull failed, continuing with the manifests as they are: {exc}")
            self.pull_error = str(exc)
            return
        if self.pull_error:
            self.out.info(f"git pull {remote} {branch} works again")
        self.pull_error = ""
        if said and "Already up to date" not in said:
            self.out.info(f"git pull {remote} {branch}: {said.splitlines()[-1]}")

    def _reload(self, now: datetime) -> bool:
        """Load the manifests if their files (or the registered nodes) changed: True when a new good
        model replaced the last one."""
        try:
            registered = self.store.registered_nodes()
            nodes = hashlib.sha256(json.dumps([(n, t) for n, t, _, _ in registered]).encode()).hexdigest()
            digest = gitinfo.digest(self.root) + ":" + nodes[:16]
        except OSError as exc:  # a file vanished mid-walk: look again next time
            self.out.warn(f"cannot read {self.root}: {exc}")
            return False
        if digest == self.digest:
            return False
        first, self.digest = self.digest is None, digest
        result = load(self.root)
        for diagnostic in result.diagnostics:
            self.out.warn(diagnostic.render())
        if not result.ok:
            self._invalid(now, result, "start" if first else "change")
            return False
        nodes, problems = registered_nodes((name, text) for name, text, _, _ in registered)
        model, clashes = with_registered(result.model, nodes)
        for diagnostic in problems + clashes:
            self.out.warn(diagnostic.render())
        self.model, self.valid = model, True
        self.timings = tuple(sched_state.Timing.of(a) for a in result.model.associations)
        self.revision = gitinfo.revision(self.root)
        self.metrics.manifests(True, self.revision)
        self.backoff.clear()  # a change in git deserves a fresh try on every node
        self.out.info(f"loaded {self.root} at revision {self.revision or '(not in git)'}: "
                      f"{len(result.model.associations)} associations, {len(result.model.nodes)} nodes")
        return True

    def _invalid(self, now: datetime, result, trigger: str) -> None:
        """Nothing is applied while any manifest is invalid; the last good model is kept."""
        self.valid = False
        self.metrics.manifests(False, None)
        self.metrics.run_finished(False, None, time.time())
        kept = f"keeping revision {self.revision or '(not in git)'}" if self.model else "no good model yet"
        self.out.warn(f"{len(result.errors)} error(s) in {self.root}: nothing applied until they are fixed ({kept})")
        self.cycles += 1
        self.out.cycle({**self._report(now, trigger, frozenset(), frozenset()), "ok": False, "manifests_ok": False,
                        "git_revision": gitinfo.revision(self.root),
                        "diagnostics": [d.render() for d in result.errors], "nodes": []})

    def _nodes(self):
        known = {n.name for n in self.model.nodes}
        missing = [n for n in self.options.nodes if n not in known]
        if missing:
            self.out.warn(f"no Node named {', '.join(missing)} in the manifests")
        names = [n for n in self.options.nodes if n in known]
        if self.options.nodes and not names:
            return []
        return select_nodes(self.model.nodes, self.targets, names)

    # --- one cycle -------------------------------------------------------------------

    async def _cycle(self, now, nodes, work, trigger, due_names, skipped) -> None:
        started = time.monotonic()
        report = self._report(now, trigger, due_names, skipped, work)
        self.out.info(f"cycle {self.cycles + 1} ({trigger}) at revision {self.revision or '(not in git)'}: "
                      f"{', '.join(sorted(work))}")
        failed = set(work)
        try:
            failed = await self._apply(now, nodes, work, report)
        except Exception as exc:  # noqa: BLE001 (a bug or a store failure): logged; the nodes retry later
            report.update(ok=False, error=f"{type(exc).__name__}: {exc}")
            self.out.warn(f"the cycle failed: {report['error']}")
            if self.options.debug:
                traceback.print_exc()
        self._settle(work, failed)
        self._fleet_metrics()
        seconds = time.monotonic() - started
        self.metrics.run_finished(bool(report.get("ok")), seconds, time.time())
        self.cycles += 1
        report.update(duration_seconds=round(seconds, 3), finished_at=_iso(_now()), nodes_failed=sorted(failed),
                      backoff={n: self.backoff.left(n) for n in sorted(failed)}, next_run_at=self._next_run_at())
        self.out.cycle(report)

    async def _apply(self, now, nodes, work, report: dict) -> set[str]:
        """Observe, plan, hold back what is not due, reconcile: the nodes that failed."""
        observed = await observe(self.model, nodes, self.store, offline=False)
        full, parameters = plan_everything(self.model, nodes, observed, self.store, now=now,
                                           key_dir=self.options.key_dir, ignore_windows=self.options.ignore_windows)
        self.revision = report["git_revision"] = full.git_revision  # a commit need not change a file
        self.metrics.manifests(True, self.revision)
        unreachable = {p.node for p in full.nodes if not p.reachable}
        if full.diagnostics:  # permanent until the manifests or parameters change: no retry, no backoff
            for problem in full.diagnostics:
                self.out.warn(problem)
            self.metrics.nodes_seen(full.nodes)
            report.update(ok=False, diagnostics=list(full.diagnostics), nodes=[_untouched(p) for p in full.nodes])
            return unreachable
        plan = sched_state.hold_not_due(full, work, self._next_runs())
        if report.get("trigger") == "schedule":  # SSM runs a due association even when nothing changed
            plan = sched_state.run_scheduled_documents(plan, work)
        result = await reconcile(self.model, nodes, plan, self.store, now=now,
                                 ignore_windows=self.options.ignore_windows, on_event=self.out.event,
                                 parameters=parameters, resolver=parameters.resolver(), scrubber=parameters.scrubber)
        after = tuple(result.final.get(p.node, p) for p in full.nodes)
        self.metrics.nodes_seen(after)
        failed = unreachable | {n for n, o in result.outcomes.items() if not _outcome_ok(o)}
        tolerated = unreachable if self.options.allow_unreachable else set()
        report.update(run_id=result.run_id, ok=not failed - tolerated, nodes=_node_reports(result, plan),
                      summary=asdict(replace(result.plan, nodes=after).summary()))
        return failed

    def _settle(self, work: dict[str, frozenset[str]], failed: set[str]) -> None:
        for node, wanted in work.items():
            if node in failed:
                self.backoff.failed(node)
                self.owed[node] = wanted | self.owed.get(node, frozenset())
            else:
                self.backoff.succeeded(node)

    # --- reporting -------------------------------------------------------------------

    def _next_runs(self) -> dict[str, datetime | None]:
        return {t.name: sched_state.next_run(t, self.histories[t.name]) if t.name in self.histories else None
                for t in self.timings}

    def _next_run_at(self) -> str | None:
        times = [t for t in self._next_runs().values() if t is not None]
        return _iso(min(times)) if times else None

    def _fleet_metrics(self) -> None:
        names = self.selected
        self.metrics.fleet(names, {n: self.backoff.left(n) for n in names},
                           {a: t.timestamp() if t else None for a, t in self._next_runs().items()})

    def _report(self, now, trigger, due_names, skipped, work=None) -> dict:
        return {"format_version": FORMAT_VERSION, "cycle": self.cycles + 1, "trigger": trigger,
                "started_at": _iso(now), "git_revision": self.revision, "manifests_ok": True,
                "due": sorted(due_names), "work": {n: sorted(a) for n, a in sorted((work or {}).items())},
                "nodes_skipped": {n: self.backoff.left(n) for n in sorted(skipped)}}


def _outcome_ok(outcome) -> bool:
    return not outcome.error and not outcome.failed and all(outcome.converged.values())


def _untouched(node_plan) -> dict:
    return {"node": node_plan.node, "reachable": node_plan.reachable, "error": node_plan.error or None,
            "applied": [], "failed": {}, "converged": {}}


def _node_reports(result: ReconcileResult, plan) -> list[dict]:
    reports = []
    for node_plan in plan.nodes:
        outcome = result.outcomes.get(node_plan.node)
        if outcome is None:
            reports.append(_untouched(node_plan))
            continue
        reports.append({"node": outcome.node, "reachable": True, "error": outcome.error or None,
                        "applied": outcome.applied, "failed": outcome.failed, "converged": outcome.converged})
    return reports


def _summary_line(report: dict) -> str:
    head = f"{report['finished_at'] if 'finished_at' in report else report['started_at']} cycle {report['cycle']} " \
           f"({report['trigger']}) revision {report.get('git_revision') or '(not in git)'}:"
    if not report.get("manifests_ok", True):
        return f"{head} invalid manifests, nothing applied"
    nodes = report.get("nodes", [])
    applied = sum(len(n["applied"]) for n in nodes)
    failed = sum(len(n["failed"]) for n in nodes)
    unreachable = sum(not n["reachable"] for n in nodes)
    skipped = ", ".join(f"{n} ({left})" for n, left in report["nodes_skipped"].items()) or "none"
    state = "ok" if report.get("ok") else "FAILED" + (f" ({report['error']})" if report.get("error") else "")
    return (f"{head} {state}; {applied} applied, {failed} failed, {unreachable} unreachable on {len(nodes)} "
            f"node(s); due: {', '.join(report['due']) or 'none'}; backing off: {skipped}")


async def _drain() -> None:
    """Wait for the tasks a cancelled cycle left behind (their `finally` releases leases)."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
