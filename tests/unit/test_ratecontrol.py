"""Rate control follows SSM: exponential ramp, MaxConcurrency, MaxErrors counting only failures."""

from __future__ import annotations

import pytest

from reconciler.ratecontrol import RateController, resolve_limit
from reconciler.statuses import Details, Status, command_outcome


@pytest.mark.parametrize("value,targets,minimum,expected", [
    ("10", 50, 1, 10), ("25%", 10, 1, 2), ("1%", 10, 1, 1), ("100%", 7, 1, 7),
    ("10%", 50, 0, 5), ("0", 50, 0, 0), ("0%", 50, 0, 0), ("5%", 10, 0, 0),
])
def test_limits_resolve_against_target_count(value, targets, minimum, expected):
    assert resolve_limit(value, targets, minimum=minimum) == expected


def _drain_starts(rc: RateController) -> int:
    n = 0
    while rc.may_start():
        rc.started()
        n += 1
    return n


def test_ramp_is_one_then_two_then_four():
    rc = RateController.from_strings(100, "100%", "100%")
    waves = []
    for _ in range(4):
        started = _drain_starts(rc)
        waves.append(started)
        for _ in range(started):
            rc.acknowledged()
    assert waves == [1, 2, 4, 8]


def test_concurrency_cap_holds_in_flight():
    rc = RateController.from_strings(20, "3", "100%")
    seen = 0
    while rc.started_total < 20:
        _drain_starts(rc)
        assert rc.in_flight <= 3
        seen = max(seen, rc.in_flight)
        rc.acknowledged()
        rc.finished(Details.SUCCESS, acknowledged=True)
    assert seen == 3


@pytest.mark.parametrize("max_errors,failures_allowed", [("0", 0), ("3", 3), ("10%", 5)])
def test_stops_after_more_than_max_errors(max_errors, failures_allowed):
    rc = RateController.from_strings(50, "1", max_errors)
    failures = 0
    while rc.may_start():
        rc.started()
        rc.acknowledged()
        rc.finished(Details.FAILED, acknowledged=True)
        failures += 1
    assert failures == failures_allowed + 1 and rc.stopped


def test_undeliverable_does_not_count_as_error_but_advances_the_ramp():
    rc = RateController.from_strings(5, "100%", "0")
    rc.started()
    rc.finished(Details.UNDELIVERABLE, acknowledged=False)
    assert not rc.stopped and _drain_starts(rc) == 2


def test_timeouts_count_as_errors():
    rc = RateController.from_strings(5, "1", "0")
    rc.started()
    rc.finished(Details.EXECUTION_TIMED_OUT, acknowledged=False)
    assert rc.stopped and not rc.may_start()


@pytest.mark.parametrize("details,exceeded,expected", [
    ([Details.SUCCESS, Details.SUCCESS], False, (Status.SUCCESS, "Success")),
    ([Details.SUCCESS, Details.UNDELIVERABLE], False, (Status.SUCCESS, "Success")),
    ([Details.SUCCESS, Details.FAILED], False, (Status.FAILED, "Incomplete")),
    ([Details.FAILED, Details.TERMINATED], True, (Status.FAILED, "Failed")),
    ([Details.EXECUTION_TIMED_OUT, Details.TERMINATED], True, (Status.TIMED_OUT, "ExecutionTimedOut")),
    ([Details.UNDELIVERABLE], False, (Status.FAILED, "Undeliverable")),
    ([], False, (Status.FAILED, "NoInstancesInTag")),
])
def test_command_outcome(details, exceeded, expected):
    assert command_outcome(details, exceeded) == expected
