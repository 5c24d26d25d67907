"""Document semantics, driven by fixture files: tests/fixtures/documents/{flow,invalid}/*.yaml.

A flow fixture holds a document, parameters and the expected events (invocation status,
which steps started, each step's status and fields). An invalid fixture holds a document
and parameters that must be refused before anything runs, with statusDetails and message.
Adding a case is adding a file. `{TMP}` in a fixture is replaced by a fresh directory.
"""

from __future__ import annotations

import shutil

import pytest

from executor_support import fixture_paths, load_fixture

FLOW = fixture_paths("flow")
INVALID = fixture_paths("invalid")


def with_tmp(value, tmp):
    if isinstance(value, str):
        return value.replace("{TMP}", tmp)
    if isinstance(value, list):
        return [with_tmp(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: with_tmp(v, tmp) for k, v in value.items()}
    return value


def check_step(event, want):
    for key, expected in want.items():
        if key == "step":
            continue
        if key == "reason":
            assert expected in event["details"]["reason"], event
        elif key == "details":
            for name, value in expected.items():
                got = event["details"][name]
                assert (value in got) if isinstance(value, str) else (got == value), event
        else:
            assert event[key] == expected, (key, event)


def test_there_are_fixtures():
    assert len(FLOW) >= 10 and len(INVALID) >= 20


@pytest.mark.parametrize("path", FLOW, ids=lambda p: p.stem)
def test_flow_fixture(path, run_request, tmp_path):
    case = with_tmp(load_fixture(path), str(tmp_path))
    if case.get("skipIf") == "pwsh" and shutil.which("pwsh"):
        pytest.skip("pwsh is installed here")
    run = run_request(case["document"], case.get("parameters"), check=case.get("check", False))
    expect = case["expect"]
    for key in ("status", "statusDetails", "exitCode", "rebootRequested"):
        if key in expect:
            assert run.final[key] == expect[key], (key, run.events)
    if "started" in expect:
        assert run.started() == expect["started"]
    finished = [e for e in run.events if e["event"] == "step_finished"]
    assert [e["step"] for e in finished] == [s["step"] for s in expect["steps"]]
    for event, want in zip(finished, expect["steps"]):
        check_step(event, want)
    for name in expect.get("absent", []):
        assert not (tmp_path / name).exists()


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fixture_is_refused_before_anything_runs(path, run_request):
    case = load_fixture(path)
    run = run_request(case["document"], case.get("parameters"))
    assert len(run.events) == 1, run.events
    final = run.final
    assert final["event"] == "invocation_finished"
    assert final["status"] == "Failed"
    assert final["statusDetails"] == case["expect"]["statusDetails"]
    assert case["expect"]["message"] in final["message"]
    assert final["exitCode"] == -1
