"""`plumb reconcile --watch` end to end: a real process, git repository, local node and SQLite store.

Each test starts the loop as a subprocess through a stand-in entry (`python -c` calling
`run_watch`, as the CLI flag will), reads its one-JSON-object-per-cycle output, and acts
between cycles: edits files, pushes commits, scrapes /metrics, sends signals. Nothing is
timed: every wait is for a condition, with a generous timeout.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WAIT = 180.0  # seconds: the most any condition may take on a slow, busy machine
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}


def git(cwd, *args) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV})
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node(name, **spec):
    return {"apiVersion": "plumb.dev/v1", "kind": "Node", "metadata": {"name": name},
            "spec": spec or {"transport": "local"}}


def association(name, files: dict, nodes=("local",), **spec):
    return {"apiVersion": "plumb.dev/v1", "kind": "Association", "metadata": {"name": name},
            "spec": {"targets": [{"key": "InstanceIds", "values": list(nodes)}],
                     "state": {"files": {str(path): {"content": text, "mode": "0644"} for path, text in files.items()}},
                     **spec}}


class Fleet:
    """A manifests directory in a real git repository, a state file and the files the node gets."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.repo = tmp / "repo"
        self.manifests = self.repo / "manifests"
        self.manifests.mkdir(parents=True)
        self.node_dir = tmp / "node"
        self.state = tmp / "state.db"
        self.motd = self.node_dir / "motd"

    def write(self, name: str, *docs) -> None:
        (self.manifests / name).write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def demo(self, text: str) -> None:
        self.write("fleet.yaml", node("local"), association("demo", {self.motd: text}))

    def commit(self, message: str) -> str:
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-qm", message)
        return git(self.repo, "rev-parse", "HEAD")


@pytest.fixture
def fleet(tmp_path) -> Fleet:
    fleet = Fleet(tmp_path)
    git(tmp_path, "init", "-q", "-b", "main", str(fleet.repo))
    fleet.demo("one\n")
    fleet.commit("demo")
    return fleet


def _cli_args(fleet: Fleet, options: dict) -> list[str]:
    """`plumb reconcile --watch` with the options a test asks for."""
    options = {"output": "json", "debounce_seconds": 0.5, "tick_seconds": 60.0, "metrics_address": "", **options}
    args = ["reconcile", "--watch", "-m", str(fleet.manifests), "--state", f"sqlite:///{fleet.state}",
            "--output", options["output"], "--debounce", str(options["debounce_seconds"]),
            "--tick", str(options["tick_seconds"]), "--metrics-address", options["metrics_address"]]
    if options.get("max_cycles") is not None:
        args += ["--max-cycles", str(options["max_cycles"])]
    if options.get("git_pull"):
        args += ["--git-pull", *options["git_pull"]]
    if options.get("allow_unreachable"):
        args.append("--allow-unreachable")
    return args


class Watcher:
    """`plumb reconcile --watch` in a subprocess; its JSON lines and stderr lines are read as they come."""

    def __init__(self, fleet: Fleet, **options):
        env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(fleet.tmp / "cache"), "NO_COLOR": "1",
               **GIT_ENV}
        self.process = subprocess.Popen([sys.executable, "-m", "reconciler", *_cli_args(fleet, options)],
                                        cwd=fleet.tmp, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.cycles: queue.Queue = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines, is_stdout), daemon=True)
                         for stream, lines, is_stdout in ((self.process.stdout, self.stdout, True),
                                                          (self.process.stderr, self.stderr, False))]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines: list, cycles: bool) -> None:
        for line in stream:
            lines.append(line)
            if cycles and line.startswith("{"):
                self.cycles.put(json.loads(line))
        if cycles:
            self.cycles.put(None)

    def next_cycle(self) -> dict:
        try:
            report = self.cycles.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"no cycle within {WAIT:g}s; stderr:\n{self.log()}") from None
        assert report is not None, f"the loop exited ({self.process.poll()}) before the next cycle:\n{self.log()}"
        return report

    def wait_for_log(self, text: str) -> None:
        deadline = time.monotonic() + WAIT
        while not any(text in line for line in self.stderr):
            assert time.monotonic() < deadline, f"never logged {text!r}:\n{self.log()}"
            assert self.process.poll() is None, f"exited ({self.process.returncode}):\n{self.log()}"
            time.sleep(0.05)

    def wait(self) -> int:
        code = self.process.wait(timeout=WAIT)
        for reader in self._readers:
            reader.join(timeout=WAIT)
        return code

    def log(self) -> str:
        return "".join(self.stderr)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def watch(fleet):
    started = []

    def start(**options) -> Watcher:
        started.append(Watcher(fleet, **options))
        return started[-1]

    yield start
    for watcher in started:
        watcher.close()


def scrape(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        return response.read().decode().splitlines()


def leases(fleet: Fleet) -> list:
    db = sqlite3.connect(fleet.state)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return db.execute("SELECT node, owner FROM leases").fetchall()
    finally:
        db.close()


# --- the loop ----------------------------------------------------------------------------------


def test_the_loop_applies_at_start_and_a_burst_of_edits_makes_one_cycle_that_applies_them_all(fleet, watch):
    head = git(fleet.repo, "rev-parse", "HEAD")
    watcher = watch(max_cycles=2)
    first = watcher.next_cycle()
    assert (first["cycle"], first["trigger"], first["ok"], first["due"]) == (1, "start", True, ["demo"])
    assert first["git_revision"] == head
    assert first["nodes"][0]["applied"] == [f"files:{fleet.motd}"]
    assert fleet.motd.read_text() == "one\n"

    extra = fleet.node_dir / "extra"
    fleet.write("extra.yaml", association("extra", {extra: "x\n"}))  # several files, written at once
    fleet.demo("two\n")
    second = watcher.next_cycle()
    assert (second["cycle"], second["trigger"], second["ok"]) == (2, "change", True)
    assert second["due"] == ["demo", "extra"], "a change runs every association"
    assert second["git_revision"] == head + "+dirty"
    assert sorted(second["nodes"][0]["applied"]) == sorted([f"files:{fleet.motd}", f"files:{extra}"])
    assert fleet.motd.read_text() == "two\n" and extra.read_text() == "x\n"
    assert watcher.wait() == 0, watcher.log()
    assert leases(fleet) == []


def test_an_invalid_edit_is_reported_with_its_location_and_nothing_is_applied_until_fixed(fleet, watch):
    port = free_port()
    watcher = watch(max_cycles=3, metrics_address=f"127.0.0.1:{port}")
    head = watcher.next_cycle()["git_revision"]

    broken = association("demo", {fleet.motd: "three\n"})
    broken["spec"]["maxConcurency"] = "1"  # a typo: the schema allows no such field
    fleet.write("fleet.yaml", node("local"), broken)
    invalid = watcher.next_cycle()
    assert (invalid["trigger"], invalid["ok"], invalid["manifests_ok"], invalid["nodes"]) == \
        ("change", False, False, [])
    (problem,) = invalid["diagnostics"]
    assert "fleet.yaml:" in problem and "maxConcurency" in problem
    assert any("fleet.yaml:" in line and "maxConcurency" in line for line in watcher.stderr)
    assert fleet.motd.read_text() == "one\n", "nothing may be applied while a manifest is invalid"
    metrics = scrape(port)
    assert f'plumb_manifests_info{{git_revision="{head}"}} 1' in metrics, "the last good model is kept"
    assert "plumb_manifests_valid 0" in metrics

    fleet.demo("four\n")
    fixed = watcher.next_cycle()
    assert (fixed["trigger"], fixed["ok"], fixed["manifests_ok"]) == ("change", True, True)
    assert fleet.motd.read_text() == "four\n"
    assert watcher.wait() == 0


def test_metrics_are_served_while_the_loop_runs(fleet, watch):
    port = free_port()
    watcher = watch(metrics_address=f"127.0.0.1:{port}")
    first = watcher.next_cycle()
    lines = scrape(port)
    for expected in ('plumb_reconcile_runs_total{result="ok"} 1', 'plumb_reconcile_runs_total{result="failed"} 0',
                     "plumb_reconcile_duration_seconds_count 1", 'plumb_drift_resources{node="local"} 0',
                     'plumb_plan_resources{classification="in_sync"} 1', 'plumb_node_up{node="local"} 1',
                     'plumb_node_backoff_cycles{node="local"} 0',
                     f'plumb_manifests_info{{git_revision="{first["git_revision"]}"}} 1'):
        assert expected in lines, expected
    assert any(line.startswith("plumb_last_run_timestamp_seconds ") for line in lines)
    watcher.process.send_signal(signal.SIGTERM)
    assert watcher.wait() == 0


# --- stopping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_loop_cleanly_with_exit_0(fleet, watch, signum):
    port = free_port()
    watcher = watch(metrics_address=f"127.0.0.1:{port}")
    watcher.next_cycle()
    watcher.process.send_signal(signum)
    assert watcher.wait() == 0, watcher.log()
    assert leases(fleet) == []
    with pytest.raises(OSError):
        scrape(port)


def test_sigterm_during_a_cycle_lets_it_finish_then_exits_0(fleet, watch):
    many = {fleet.node_dir / "many" / f"f{i}.conf": f"{i}\n" for i in range(120)}
    fleet.write("many.yaml", association("many", many))
    fleet.commit("many")
    watcher = watch(output="text")
    watcher.wait_for_log("cycle 1 (start)")
    watcher.process.send_signal(signal.SIGTERM)
    assert watcher.wait() == 0, watcher.log()
    assert any(" cycle 1 (start) " in line and " ok;" in line for line in watcher.stdout), watcher.stdout
    assert len(list((fleet.node_dir / "many").iterdir())) == 120
    assert leases(fleet) == []


def test_a_second_signal_cancels_the_cycle_and_releases_its_leases(fleet, watch):
    many = {fleet.node_dir / "many" / f"f{i}.conf": f"{i}\n" for i in range(300)}
    fleet.write("many.yaml", association("many", many))
    fleet.commit("many")
    watcher = watch(output="text")
    watcher.wait_for_log("cycle 1 (start)")
    watcher.process.send_signal(signal.SIGTERM)
    watcher.wait_for_log("SIGTERM: stopping")
    watcher.process.send_signal(signal.SIGTERM)
    assert watcher.wait() == 0, watcher.log()
    assert leases(fleet) == [], "a cancelled cycle still releases its leases"


# --- git ---------------------------------------------------------------------------------------


def test_git_pull_from_a_bare_remote_brings_a_new_revision_into_the_next_run(fleet, watch, tmp_path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(fleet.repo, "remote", "add", "origin", str(remote))
    git(fleet.repo, "push", "-q", "origin", "main")
    watcher = watch(git_pull=("origin", "main"), tick_seconds=0.5, max_cycles=2)
    first = watcher.next_cycle()
    assert first["git_revision"] == git(fleet.repo, "rev-parse", "HEAD")

    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(other))
    manifest = other / "manifests" / "fleet.yaml"
    manifest.write_text(manifest.read_text().replace("one", "pulled"))
    git(other, "commit", "-qam", "from elsewhere")
    git(other, "push", "-q", "origin", "main")
    pushed = git(other, "rev-parse", "HEAD")

    second = watcher.next_cycle()
    assert (second["trigger"], second["git_revision"], second["ok"]) == ("change", pushed, True)
    assert fleet.motd.read_text() == "pulled\n"
    assert watcher.wait() == 0


def test_a_failing_git_pull_is_logged_and_the_cycle_goes_on(fleet, watch):
    watcher = watch(git_pull=("nowhere", "main"), max_cycles=1)
    assert watcher.next_cycle()["ok"] is True
    assert watcher.wait() == 0
    assert "git pull failed" in watcher.log() and "nowhere" in watcher.log()
    assert fleet.motd.read_text() == "one\n"


# --- failing nodes --------------------------------------------------------------------------------


def test_an_unreachable_node_backs_off_and_is_retried_with_what_it_missed(fleet, watch):
    closed = free_port()  # nothing listens there: the connection is refused at once
    fleet.write("fleet.yaml", node("local"), node("gone", address="127.0.0.1", port=closed, connectTimeoutSeconds=5),
                association("demo", {fleet.motd: "one\n"}, nodes=("local", "gone")))
    fleet.commit("a node that is down")
    port = free_port()
    watcher = watch(tick_seconds=0.2, metrics_address=f"127.0.0.1:{port}", allow_unreachable=True)
    first = watcher.next_cycle()
    assert (first["trigger"], first["ok"], first["nodes_failed"], first["backoff"]) == \
        ("start", True, ["gone"], {"gone": 1}), "allowed to be unreachable, but still backed off"
    assert fleet.motd.read_text() == "one\n", "the reachable node is not held back"

    retry = watcher.next_cycle()
    assert retry["trigger"] == "retry" and retry["work"] == {"gone": ["demo"]}, "only the failed node, what it missed"
    assert retry["backoff"] == {"gone": 2}
    third = watcher.next_cycle()
    assert (third["trigger"], third["backoff"]) == ("retry", {"gone": 4}), "1, 2, 4 cycles out"
    lines = scrape(port)
    assert 'plumb_node_up{node="gone"} 0' in lines and 'plumb_node_up{node="local"} 1' in lines
    assert any(line.startswith('plumb_node_backoff_cycles{node="gone"} ') for line in lines)
    watcher.process.send_signal(signal.SIGTERM)
    assert watcher.wait() == 0


# --- restarts ----------------------------------------------------------------------------------


def test_a_restart_keeps_to_the_schedules_and_a_change_made_while_stopped_runs_everything(fleet, watch):
    daily = fleet.node_dir / "daily"
    fleet.write("daily.yaml", association("daily", {daily: "d\n"}, scheduleExpression="rate(1 day)"))
    fleet.commit("daily")
    first = watch(max_cycles=1)
    assert first.next_cycle()["due"] == ["daily", "demo"]
    assert first.wait() == 0, first.log()

    fleet.motd.write_text("edited by hand\n")   # drift: corrected at the next scheduled run, not by a restart
    again = watch(output="text")
    again.wait_for_log("resumed the schedules saved by the last run of this watch; associations run when "
                       "their schedules say")
    again.process.send_signal(signal.SIGTERM)
    assert again.wait() == 0, again.log()
    assert not any(" cycle " in line for line in again.stdout), "nothing was due: no cycle"
    assert fleet.motd.read_text() == "edited by hand\n"

    fleet.demo("three\n")                        # edited while no watch runs
    third = watch(max_cycles=1, output="text")
    assert third.wait() == 0, third.log()
    assert "the manifests changed since, so every association runs" in third.log()
    (line,) = [line for line in third.stdout if " cycle 1 (start) " in line]
    assert "due: daily, demo" in line
    assert fleet.motd.read_text() == "three\n"
