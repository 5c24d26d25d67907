"""The agent's `serve` protocol, spoken to a real `python3 -m agent.serve` process."""

from __future__ import annotations

import glob
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HI = {"schemaVersion": "2.2", "description": "hi", "mainSteps": [
    {"action": "aws:runShellScript", "name": "hi", "inputs": {"runCommand": ["echo hi"]}}]}


def serve(*lines, python: str = sys.executable) -> tuple[list[dict], int]:
    """Feed request lines (dicts are encoded, strings sent as they are); the answers and
    the exit status."""
    text = "".join((json.dumps(line) if isinstance(line, dict) else line) + "\n" for line in lines)
    done = subprocess.run([python, "-m", "agent.serve"], input=text.encode(), cwd=REPO,
                          capture_output=True, timeout=120)
    return [json.loads(line) for line in done.stdout.decode().splitlines()], done.returncode


def test_hello_answers_with_the_same_id():
    (answer,), status = serve({"id": 41, "op": "hello"})
    assert answer["id"] == 41 and status == 0
    info = answer["result"]
    assert set(info) >= {"agentVersion", "python", "pid", "platform"}
    assert info["python"].count(".") == 2 and isinstance(info["pid"], int)


def test_a_line_that_is_not_json_gets_an_error_and_the_agent_keeps_serving():
    answers, status = serve("{not json", {"id": 2, "op": "hello"})
    assert answers[0] == {"id": None, "error": {"type": "bad_request", "message": answers[0]
                                                ["error"]["message"]}}
    assert "not a JSON line" in answers[0]["error"]["message"]
    assert answers[1]["id"] == 2 and "result" in answers[1] and status == 0


def test_requests_without_an_integer_id_are_answered_with_id_null():
    answers, _ = serve({"op": "hello"}, {"id": "7", "op": "hello"}, "[1, 2]")
    assert [a["id"] for a in answers] == [None, None, None]
    assert {a["error"]["type"] for a in answers} == {"bad_request"}


def test_an_unknown_op_gets_an_error_for_its_id():
    (answer,), _ = serve({"id": 3, "op": "reboot"})
    assert answer["id"] == 3 and answer["error"]["type"] == "unknown_op"
    assert "reboot" in answer["error"]["message"]


def test_bad_collect_arguments_are_refused_not_fatal():
    answers, _ = serve({"id": 1, "op": "collect", "args": {"types": "AWS:Service"}},
                       {"id": 2, "op": "collect", "args": {"types": ["No:Such"]}},
                       {"id": 3, "op": "collect", "args": {"colour": "blue"}},
                       {"id": 4, "op": "hello"})
    assert [a["error"]["type"] for a in answers[:3]] == ["bad_request"] * 3
    assert "unknown inventory type" in answers[1]["error"]["message"]
    assert "result" in answers[3]


def test_collect_returns_the_inventory_document():
    (answer,), _ = serve({"id": 5, "op": "collect", "args": {"types": ["AWS:InstanceInformation"]}})
    assert list(answer["result"]["Types"]) == ["AWS:InstanceInformation"]


def test_collect_packages_reports_only_those_and_refuses_patterns():
    answers, _ = serve(
        {"id": 1, "op": "collect", "args": {"types": ["AWS:Application"],
                                            "packages": ["dpkg", "rpm", "plumb-no-such-package"]}},
        {"id": 2, "op": "collect", "args": {"types": ["AWS:Application"], "packages": []}},
        {"id": 3, "op": "collect", "args": {"packages": ["ngin*"]}},
        {"id": 4, "op": "collect", "args": {"packages": "dpkg"}})
    report = answers[0]["result"]["Types"]["AWS:Application"]
    assert report["Status"] == "ok"
    assert {entry["Name"] for entry in report["Content"]} <= {"dpkg", "rpm"}
    assert answers[1]["result"]["Types"]["AWS:Application"]["Content"] == []
    assert answers[2]["error"]["type"] == answers[3]["error"]["type"] == "bad_request"
    assert "not a package name: 'ngin*'" in answers[2]["error"]["message"]


def test_execute_streams_tagged_events_then_the_result():
    answers, _ = serve({"id": 9, "op": "execute", "args": {"document": HI, "parameters": {}}})
    assert {a["id"] for a in answers} == {9}
    events = [a["event"]["event"] for a in answers[:-1]]
    assert events == ["step_started", "step_output", "step_finished", "invocation_finished"]
    assert answers[-1]["result"]["status"] == "Success"


@pytest.mark.parametrize("op", ["exit", "shutdown"])
def test_exit_answers_then_ends_the_session(op):
    answers, status = serve({"id": 1, "op": op}, {"id": 2, "op": "hello"})
    assert answers == [{"id": 1, "result": {}}] and status == 0


def test_end_of_input_ends_the_session_cleanly():
    answers, status = serve()
    assert answers == [] and status == 0


def test_serve_runs_on_python_3_9():
    found = sorted(glob.glob("/root/.pyenv/versions/3.9.*/bin/python3.9")) or \
        sorted(glob.glob("/usr/bin/python3.9"))
    if not found:
        pytest.skip("no python3.9 on this machine")
    answers, status = serve({"id": 1, "op": "hello"},
                            {"id": 2, "op": "execute", "args": {"document": HI}},
                            python=found[-1])
    assert answers[0]["result"]["python"].startswith("3.9.") and status == 0
    assert answers[-1]["result"]["status"] == "Success"
