"""aws:runShellScript with real `sh`: output caps, streaming, timeouts, cancel, environment."""

from __future__ import annotations

import os
import threading
import time

import pytest

from agent import executor
from agent.actions import shell
from executor_support import execute, shell_doc


def test_stdout_is_capped_at_24000_characters_with_the_marker_and_kept_in_full(run_request):
    run = run_request(shell_doc("head -c 30000 /dev/zero | tr '\\0' a",
                                "head -c 9000 /dev/zero | tr '\\0' e >&2"))
    step = run.finished("run")
    assert step["stdout"] == "a" * 24000 + "\n--output truncated--"
    assert step["stderr"] == "e" * 8000 + "\n--output truncated--"
    assert step["stdoutTruncated"] is True and step["stderrTruncated"] is True
    assert step["fullStdout"] == "a" * 30000
    assert step["fullStderr"] == "e" * 9000


def test_output_at_the_cap_is_not_truncated(run_request):
    run = run_request(shell_doc("head -c 24000 /dev/zero | tr '\\0' a",
                                "head -c 8000 /dev/zero | tr '\\0' e >&2"))
    step = run.finished("run")
    assert len(step["stdout"]) == 24000 and len(step["stderr"]) == 8000
    assert step["stdoutTruncated"] is False and step["stderrTruncated"] is False
    assert "fullStdout" not in step and "fullStderr" not in step


def test_output_is_streamed_as_it_is_written(run_request):
    run = run_request(shell_doc("echo one", "echo err >&2", "printf '\\342\\230\\203 \\377'"))
    assert run.output("run") == "one\n\u2603 \ufffd"
    assert run.output("run", "stderr") == "err\n"
    assert run.finished("run")["stdout"] == run.output("run")


def test_streaming_can_be_turned_off(run_request):
    run = run_request(shell_doc("echo one"), streamOutput=False)
    assert not [e for e in run.events if e["event"] == "step_output"]
    assert run.finished("run")["stdout"] == "one\n"


def test_script_is_written_to_script_sh_in_its_step_directory_and_run_by_sh(run_request, tmp_path):
    run = run_request(shell_doc('echo "$0"', "pwd", 'echo "$PLUMB_STEP_NAME $PLUMB_INVOCATION_ID"'),
                      invocationId="inv-1")
    script, cwd, names, _ = run.finished("run")["stdout"].split("\n")
    assert script == str(tmp_path / "work" / "_inv-1" / "00_run" / "_script.sh")
    assert cwd == os.path.dirname(script)
    assert names == "run inv-1"
    assert (tmp_path / "work" / "_inv-1" / "00_run" / "stdout").read_text() == \
        run.finished("run")["stdout"]


def test_default_work_directory_is_temporary_and_removed(tmp_path):
    run = execute({"document": shell_doc('echo "$0"'), "parameters": {}})
    script = run.finished("run")["stdout"].strip()
    assert script.endswith("_script.sh")
    assert not os.path.exists(os.path.dirname(os.path.dirname(script)))


def test_working_directory_input_is_used(run_request, tmp_path):
    run = run_request(shell_doc("pwd", workingDirectory=str(tmp_path)))
    assert run.finished("run")["stdout"] == "%s\n" % tmp_path


def test_missing_working_directory_fails_the_step_with_a_message(run_request, tmp_path):
    run = run_request(shell_doc("pwd", workingDirectory=str(tmp_path / "nope")))
    step = run.finished("run")
    assert step["status"] == "Failed"
    assert "workingDirectory %s does not exist" % (tmp_path / "nope") in step["stderr"]


@pytest.mark.parametrize("raw,seconds", [
    ("5", 5), (5, 5), (172800, 172800), ("172800", 172800), (" 30 ", 30), (10.9, 10),
    ("4", 3600), (4, 3600), (0, 3600), (-5, 3600), (172801, 3600), ("abc", 3600),
    ("10.5", 3600), ("", 3600), (None, 3600), (True, 3600), ([], 3600),
])
def test_timeout_seconds_is_clamped_like_the_ssm_agent(raw, seconds):
    assert shell.clamp_timeout(raw) == seconds


@pytest.mark.slow
def test_timeout_kills_the_whole_process_group(run_request, tmp_path):
    doc = shell_doc("sleep 60 &", "echo $! > %s/bgpid" % tmp_path, "sleep 60",
                    timeoutSeconds="5")
    doc["mainSteps"].append({"action": "aws:runShellScript", "name": "after",
                             "inputs": {"runCommand": ["echo after"]}})
    run = run_request(doc)
    step = run.finished("run")
    assert step["status"] == "TimedOut" and step["exitCode"] == 137
    assert "timed out after 5 seconds" in step["details"]["reason"]
    assert run.finished("after")["status"] == "Success"
    assert run.final["status"] == "TimedOut"
    assert run.final["statusDetails"] == "ExecutionTimedOut"
    assert not process_alive(int((tmp_path / "bgpid").read_text()))


def process_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_cancel_stops_the_running_step_and_skips_the_rest(tmp_path):
    started = threading.Event()
    cancel = threading.Event()
    events = []

    def emit(event):
        events.append(event)
        if event["event"] == "step_started":
            started.set()

    doc = shell_doc("sleep 60")
    doc["mainSteps"].append({"action": "aws:runShellScript", "name": "cleanup",
                             "inputs": {"runCommand": ["echo cleanup"], "finallyStep": True}})
    worker = threading.Thread(target=lambda: executor.execute(
        {"document": doc, "workDir": str(tmp_path)}, emit, cancel))
    worker.start()
    assert started.wait(30)
    cancel.set()
    worker.join(30)
    finished = {e["step"]: e for e in events if e["event"] == "step_finished"}
    assert finished["run"]["status"] == "Cancelled"
    assert finished["cleanup"]["status"] == "Skipped"
    assert events[-1]["status"] == "Cancelled" and events[-1]["statusDetails"] == "Cancelled"


def test_background_process_holding_output_open_does_not_hang_the_step(run_request, tmp_path):
    run = run_request(shell_doc("sleep 30 &", "echo $! > %s/bgpid" % tmp_path, "echo done"))
    assert run.finished("run")["stdout"] == "done\n"
    os.kill(int((tmp_path / "bgpid").read_text()), 9)


def test_single_string_run_command_and_multiline_string(run_request):
    doc = shell_doc()
    doc["mainSteps"][0]["inputs"]["runCommand"] = "echo a\necho b"
    run = run_request(doc)
    assert run.finished("run")["stdout"] == "a\nb\n"


def test_steps_report_times_and_unchanged_for_scripts(run_request):
    step = run_request(shell_doc("true")).finished("run")
    assert step["changed"] is None and step["rebootRequested"] is False
    assert step["startedAt"] <= step["finishedAt"]
    assert step["startedAt"].endswith("Z") and "T" in step["startedAt"]
    time.strptime(step["startedAt"][:19], "%Y-%m-%dT%H:%M:%S")
