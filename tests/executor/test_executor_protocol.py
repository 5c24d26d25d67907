"""The execute protocol end to end: a real process reading stdin and writing JSON lines.

`agent/__main__.py` (owned elsewhere) calls `agent.executor.main()`; these tests call it
the same way in a separate interpreter, including the oldest supported one (3.9) when it
is installed.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from executor_support import shell_doc

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "import sys; from agent.executor import main; sys.exit(main(sys.argv[1:]))"


def agent(stdin, python=sys.executable):
    done = subprocess.run([python, "-c", ENTRY], input=stdin, capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def python39():
    candidates = [shutil.which("python3.9")] + glob.glob(
        os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3"))
    for exe in filter(None, candidates):
        done = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                              capture_output=True, text=True)
        if done.stdout.strip() == "True":
            return exe
    return None


@pytest.mark.parametrize("stdin,message", [
    ("{not json", "stdin is not a JSON object"),
    ("", "no request on stdin"),
    ("[1, 2]\n", "the request must be a JSON object, got list"),
])
def test_unreadable_input_exits_2_with_one_failed_event(stdin, message):
    code, events = agent(stdin)
    assert code == 2
    assert len(events) == 1
    assert events[0]["event"] == "invocation_finished"
    assert events[0]["status"] == "Failed" and events[0]["statusDetails"] == "InvalidDocument"
    assert message in events[0]["message"]


def test_invalid_parameters_are_data_and_exit_0():
    doc = shell_doc("echo {{ p }}", parameters={"p": {"type": "String", "allowedValues": ["a"]}})
    code, events = agent(json.dumps({"document": doc, "parameters": {"p": "b"}}))
    assert code == 0
    assert [e["statusDetails"] for e in events] == ["InvalidParameters"]


def test_pretty_printed_request_and_event_shapes():
    doc = shell_doc("echo hi", "echo warn >&2")
    code, events = agent(json.dumps({"document": doc, "invocationId": "i-9"}, indent=2))
    assert code == 0
    assert [e["event"] for e in events] == ["step_started", "step_output", "step_output",
                                            "step_finished", "invocation_finished"] or \
        [e["event"] for e in events if e["event"] != "step_output"] == \
        ["step_started", "step_finished", "invocation_finished"]
    assert all(e["invocationId"] == "i-9" for e in events)
    finished = events[-2]
    assert set(finished) == {"event", "step", "action", "status", "exitCode", "stdout", "stderr",
                             "stdoutTruncated", "stderrTruncated", "changed", "details",
                             "rebootRequested", "startedAt", "finishedAt", "invocationId"}
    assert events[-1] == {"event": "invocation_finished", "status": "Success",
                          "statusDetails": "Success", "exitCode": 0, "rebootRequested": False,
                          "invocationId": "i-9"}


def test_events_are_flushed_per_line_and_sigterm_cancels(tmp_path):
    doc = shell_doc("echo first")
    doc["mainSteps"].append({"action": "aws:runShellScript", "name": "slow",
                             "inputs": {"runCommand": ["sleep 60"]}})
    proc = subprocess.Popen([sys.executable, "-c", ENTRY], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    proc.stdin.write(json.dumps({"document": doc, "workDir": str(tmp_path)}) + "\n")
    proc.stdin.flush()
    seen = []
    for line in proc.stdout:
        seen.append(json.loads(line))
        if seen[-1]["event"] == "step_started" and seen[-1]["step"] == "slow":
            break
    assert proc.poll() is None            # still running the second step: lines were flushed
    proc.send_signal(signal.SIGTERM)
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(30) == 0
    assert rest[-2]["step"] == "slow" and rest[-2]["status"] == "Cancelled"
    assert rest[-1]["status"] == "Cancelled"


def test_runs_under_python_3_9():
    exe = python39()
    if exe is None:
        pytest.skip("no Python 3.9 interpreter installed")
    doc = shell_doc("printf '%s' {{ p }}", parameters={"p": {"type": "String"}})
    doc["mainSteps"].append({"action": "plumb:directory", "name": "dir",
                             "inputs": {"path": "/nonexistent-plumb/x", "ensure": "absent"}})
    code, events = agent(json.dumps({"document": doc, "parameters": {"p": "$(id)"}}), python=exe)
    assert code == 0
    assert events[-1]["status"] == "Success", events
    assert [e["stdout"] for e in events if e["event"] == "step_finished"][0] == "$(id)"


def test_unusable_work_dir_still_ends_with_invocation_finished(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    request = {"document": shell_doc("true"), "workDir": str(blocker / "sub"), "invocationId": "x"}
    code, events = agent(json.dumps(request))
    assert code == 0
    assert events[-1]["event"] == "invocation_finished" and events[-1]["status"] == "Failed"
    assert "agent error while running" in events[-1]["message"]
    assert events[-1]["invocationId"] == "x"
