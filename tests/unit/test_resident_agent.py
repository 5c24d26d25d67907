"""The resident agent (`python3 -m agent.serve --listen SOCKET`), run as real processes.

Each test starts detached agents on a short socket path under /tmp and talks the JSON-lines
`serve` protocol to them over real Unix sockets. The `agents` fixture records every
`plumb-launch: started PID` it sees and, in its finalizer, ends those agents (SIGTERM, then
SIGKILL), any process still naming the test's directory, and any step process group a test
registered, so no daemon outlives its test even when the test fails.

Nothing here asserts how fast something happens: events are awaited with a generous deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from procs import alive, pids_where, proc_fields

REPO = Path(__file__).resolve().parents[2]
DEADLINE = 30.0          # seconds to wait for anything we expect to happen
LONG_IDLE = 600          # an idle timeout no test reaches


# ---------------------------------------------------------------- processes

def _cmdline(pid: int) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def naming(token: str) -> List[int]:
    """Live processes (not this one) whose command line contains `token`."""
    return [pid for pid in pids_where(lambda argv: any(token.encode() in arg for arg in argv))
            if pid != os.getpid() and alive(pid)]


def in_group(pgid: int) -> List[int]:
    """Live processes of the process group `pgid`."""
    found = []
    for entry in os.listdir("/proc"):
        fields = proc_fields(int(entry)) if entry.isdigit() else None
        if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found


def wait_for(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    """Poll `condition` until it holds; fail naming `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("still waiting after %ss: %s" % (deadline, what))
        time.sleep(0.05)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- the protocol

def document(*commands: str) -> Dict[str, object]:
    """A one-step aws:runShellScript document running `commands`."""
    return {"schemaVersion": "2.2", "description": "d", "mainSteps": [
        {"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": list(commands)}}]}


class Connection:
    """One client connection to a resident agent, speaking JSON lines."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(DEADLINE)
        self.sock.connect(path)
        self.reader = self.sock.makefile("rb")

    def send(self, request_id: int, op: str, args: Optional[dict] = None) -> None:
        request = {"id": request_id, "op": op}
        if args is not None:
            request["args"] = args
        self.sock.sendall((json.dumps(request) + "\n").encode())

    def read(self) -> dict:
        line = self.reader.readline()
        if not line:
            raise EOFError("the agent closed the connection")
        return json.loads(line)

    def answer(self, request_id: int) -> Tuple[List[dict], dict]:
        """The events, then the final result/error line, of one request."""
        events = []
        while True:
            message = self.read()
            assert message["id"] == request_id, message
            if "event" in message:
                events.append(message["event"])
            else:
                return events, message

    def request(self, request_id: int, op: str, args: Optional[dict] = None) -> dict:
        """Send a request and return its final answer line (events are dropped)."""
        self.send(request_id, op, args)
        return self.answer(request_id)[1]

    def at_end(self) -> bool:
        """True when the agent has closed its end (reads give EOF)."""
        return self.reader.readline() == b""

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.reader.close()
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def hello(path: str) -> dict:
    """A hello on a fresh connection: its result."""
    with Connection(path) as conn:
        return conn.request(1, "hello")["result"]


# ---------------------------------------------------------------- starting agents

class Launch:
    """What one `agent.serve --listen` start said."""

    def __init__(self, done: "subprocess.CompletedProcess[str]") -> None:
        self.status, self.stdout, self.stderr = done.returncode, done.stdout, done.stderr
        lines = done.stdout.strip().splitlines()
        self.line = lines[-1] if lines else ""
        assert self.line.startswith("plumb-launch: ") or not self.line, done.stdout
        self.word, _, self.rest = self.line[len("plumb-launch: "):].partition(" ")
        self.pid = int(self.rest) if self.word in ("started", "running") else None


class Agents:
    """Starts resident agents in one short temporary directory and ends them all."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(dir="/tmp", prefix="pr-")
        self.socket = os.path.join(self.dir, "a.sock")
        self.started: List[int] = []
        self.groups: List[int] = []

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def start(self, *extra: str, idle: float = LONG_IDLE, listen: Optional[str] = None) -> Launch:
        argv = [sys.executable, "-m", "agent.serve", "--listen", listen or self.socket,
                "--idle-timeout", str(idle), *extra]
        launch = Launch(subprocess.run(argv, cwd=REPO, capture_output=True, text=True,
                                       timeout=120))
        if launch.word == "started":
            self.started.append(launch.pid)
        return launch

    def running(self, idle: float = LONG_IDLE) -> int:
        """Start an agent that must be new; its pid."""
        launch = self.start(idle=idle)
        assert launch.word == "started" and launch.status == 0, (launch.stdout, launch.stderr)
        return launch.pid

    def execute(self, conn: Connection, request_id: int, *commands: str) -> None:
        conn.send(request_id, "execute", {"document": document(*commands), "parameters": {},
                                          "workDir": self.path("work")})

    def step_output(self, command: str) -> Tuple[str, str]:
        """(output, status) of a one-step document running `command`, on a new connection."""
        with Connection(self.socket) as conn:
            self.execute(conn, 1, command)
            events, final = conn.answer(1)
        output = "".join(e.get("data", "") for e in events if e["event"] == "step_output")
        return output, final["result"]["status"]

    def stop(self) -> None:
        ours = [pid for pid in self.started if self.dir in _cmdline(pid)]
        for pid in ours:
            _signal(pid, signal.SIGTERM)
        try:
            wait_for(lambda: not any(alive(pid) for pid in ours), "agents ending on SIGTERM")
        except AssertionError:
            pass
        for pid in naming(self.dir):  # anything of ours left: daemons, launchers, step shells
            _signal(pid, signal.SIGKILL)
        for pgid in self.groups:
            for pid in in_group(pgid):
                _signal(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def agents() -> Iterator[Agents]:
    started = Agents()
    try:
        yield started
    finally:
        started.stop()


def _read_pid(path: str) -> Optional[int]:
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    return int(text) if text.endswith("\n") else None


# ---------------------------------------------------------------- starting

def test_first_start_listens_on_a_private_socket_and_a_second_finds_it_running(agents):
    first = agents.start()
    assert first.word == "started" and first.status == 0, (first.stdout, first.stderr)
    mode = os.stat(agents.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600

    info = hello(agents.socket)
    assert info["resident"] is True and info["pid"] == first.pid
    assert "execute" in info["ops"]

    second = agents.start()
    assert (second.word, second.pid, second.status) == ("running", first.pid, 0)
    assert alive(first.pid) and hello(agents.socket)["pid"] == first.pid


def test_foreground_start_with_an_agent_already_running_says_running(agents):
    pid = agents.running()
    launch = agents.start("--foreground")
    assert (launch.word, launch.pid, launch.status) == ("running", pid, 0)


def test_a_socket_path_too_long_fails_and_leaves_no_process(agents):
    listen = os.path.join(agents.dir, "s" * (150 - len(agents.dir) - 1))
    assert len(listen) == 150
    launch = agents.start(listen=listen)
    assert launch.word == "failed" and launch.status != 0, (launch.stdout, launch.stderr)
    assert launch.rest
    wait_for(lambda: not naming(listen), "the failed agent's processes ending")
    assert not os.path.exists(listen)


@pytest.mark.parametrize("argv", [
    ["--listen", "relative/a.sock"],
    ["--listen"],
    ["--listen", "/tmp/pr-never.sock", "--colour", "blue"],
], ids=["relative-path", "missing-path", "unknown-flag"])
def test_bad_arguments_exit_non_zero_with_a_message(argv):
    done = subprocess.run([sys.executable, "-m", "agent.serve", *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "serve:" in done.stderr and "plumb-launch" not in done.stdout
    assert not os.path.exists("/tmp/pr-never.sock")


def test_a_stale_socket_from_a_killed_agent_is_replaced(agents):
    old = agents.running()
    _signal(old, signal.SIGKILL)
    wait_for(lambda: not alive(old), "the killed agent being gone")
    assert os.path.exists(agents.socket)  # left behind by the killed agent

    launch = agents.start()
    assert launch.word == "started" and launch.pid != old, (launch.stdout, launch.stderr)
    assert hello(agents.socket)["pid"] == launch.pid


# ---------------------------------------------------------------- sessions

def test_a_waiting_document_does_not_hold_up_another_connection(agents):
    pid = agents.running()
    flag, probe = agents.path("flag"), agents.path("probe.txt")
    Path(probe).write_text("probe\n")
    with Connection(agents.socket) as busy, Connection(agents.socket) as other:
        agents.execute(busy, 7, "while [ ! -e %s ]; do sleep 0.05; done" % flag, "echo done")
        assert busy.read()["event"]["event"] == "step_started"

        assert other.request(1, "hello")["result"]["pid"] == pid
        collected = other.request(2, "collect", {"types": ["AWS:File"], "files": [probe]})
        files = collected["result"]["Types"]["AWS:File"]
        assert files["Status"] == "ok"
        assert [(f["Path"], f["Exists"]) for f in files["Content"]] == [(probe, True)]

        Path(flag).touch()
        events, final = busy.answer(7)
        assert final["result"]["status"] == "Success"
        assert events[-1]["event"] == "invocation_finished"


def test_closing_the_connection_cancels_its_running_document(agents):
    agents.running()
    shell_pid = agents.path("shell.pid")
    conn = Connection(agents.socket)
    try:
        agents.execute(conn, 1, "echo $$ > %s" % shell_pid, "sleep 300")
        wait_for(lambda: _read_pid(shell_pid) is not None, "the step writing its pid")
        group = _read_pid(shell_pid)
        agents.groups.append(group)
        wait_for(lambda: any(_cmdline(pid).startswith("sleep 300") for pid in in_group(group)),
                 "the step's sleep starting")
    finally:
        conn.close()
    wait_for(lambda: not in_group(group), "the step's process group being killed")
    assert hello(agents.socket)["resident"] is True


def test_exit_ends_only_that_connection(agents):
    pid = agents.running()
    with Connection(agents.socket) as first:
        assert first.request(1, "exit") == {"id": 1, "result": {}}
        assert first.at_end()
    with Connection(agents.socket) as second:
        assert second.request(2, "hello")["result"]["pid"] == pid
        assert second.request(3, "exit") == {"id": 3, "result": {}}
    assert alive(pid) and hello(agents.socket)["pid"] == pid


def test_collecting_packages_twice_answers_the_same_content(agents):
    agents.running()
    args = {"types": ["AWS:Application"], "packages": ["bash"]}
    with Connection(agents.socket) as conn:
        first = conn.request(1, "collect", args)["result"]["Types"]["AWS:Application"]
        second = conn.request(2, "collect", args)["result"]["Types"]["AWS:Application"]
    assert first["Status"] == second["Status"] == "ok"
    assert [entry["Name"] for entry in first["Content"]] == ["bash"]
    assert second["Content"] == first["Content"]


# ---------------------------------------------------------------- ending

def test_an_idle_agent_exits_and_removes_its_socket(agents):
    pid = agents.running(idle=1)
    wait_for(lambda: not alive(pid), "the idle agent exiting")
    assert not os.path.exists(agents.socket)


def test_an_open_connection_keeps_the_agent_from_idling_out(agents):
    pid = agents.running(idle=2)
    with Connection(agents.socket) as conn:
        assert conn.request(1, "hello")["result"]["pid"] == pid  # the session is being served
        time.sleep(5)  # over two idle timeouts with the connection open and no request
        assert alive(pid) and os.path.exists(agents.socket)
    wait_for(lambda: not alive(pid), "the agent exiting once the connection closed")
    assert not os.path.exists(agents.socket)


def test_sigterm_removes_the_socket_and_ends_the_agent(agents):
    pid = agents.running()
    assert hello(agents.socket)["pid"] == pid
    _signal(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), "the agent ending on SIGTERM")
    assert not os.path.exists(agents.socket)


def test_sigterm_cancels_a_running_document_and_answers_it(agents):
    pid = agents.running()
    shell_pid = agents.path("shell.pid")
    with Connection(agents.socket) as conn:
        agents.execute(conn, 4, "echo $$ > %s" % shell_pid, "sleep 300")
        wait_for(lambda: _read_pid(shell_pid) is not None, "the step writing its pid")
        group = _read_pid(shell_pid)
        agents.groups.append(group)
        _signal(pid, signal.SIGTERM)
        _, final = conn.answer(4)
        assert final["result"]["status"] == "Cancelled"
        assert conn.at_end()
    wait_for(lambda: not alive(pid), "the agent ending on SIGTERM")
    assert not in_group(group) and not os.path.exists(agents.socket)


def test_steps_keep_the_umask_the_agent_was_started_with(agents):
    """The socket is made owner-only, but the files steps create keep the usual umask."""
    agents.running()
    output, status = agents.step_output("umask")
    expected = os.umask(0o022)
    os.umask(expected)
    assert status == "Success"
    assert output.strip() == "%04o" % expected


def test_shutdown_ends_the_agent_after_other_sessions_finish(agents):
    pid = agents.running()
    flag = agents.path("flag-shutdown")
    with Connection(agents.socket) as busy, Connection(agents.socket) as other:
        agents.execute(busy, 5, "while [ ! -e %s ]; do sleep 0.05; done" % flag, "echo done")
        assert busy.read()["event"]["event"] == "step_started"
        assert other.request(1, "shutdown") == {"id": 1, "result": {}}
        assert other.at_end(), "the asking session ends"
        wait_for(lambda: not os.path.exists(agents.socket), "the socket is removed")
        assert alive(pid), "a running document is let finish"
        Path(flag).touch()
        events, final = busy.answer(5)
        assert final["result"]["status"] == "Success"
    wait_for(lambda: not alive(pid), "the agent ends")


def test_steps_get_the_default_signal_dispositions(agents):
    """What the agent ignores for itself must not be inherited as ignored by the steps."""
    agents.running()
    output, status = agents.step_output("grep -E '^Sig(Ign|Cgt):' /proc/self/status")
    ignored = int(next(line for line in output.splitlines() if line.startswith("SigIgn:")).split()[1], 16)
    assert status == "Success"
    assert not ignored & (1 << (signal.SIGHUP - 1)), "SIGHUP"
    assert not ignored & (1 << (signal.SIGPIPE - 1)), "SIGPIPE"
