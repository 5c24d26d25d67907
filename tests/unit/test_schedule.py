"""Schedule expressions: validation, next fire times and plan phrases.

The cases are data in tests/fixtures/schedules.yaml (its header explains the keys), so a
new case needs no Python. This file runs them and adds the behaviours that are not a
table row: the error type, canonical text, argument checks, and a cross-check of
next_fire against a minute-by-minute walk of the clock.
"""

from __future__ import annotations

import calendar
import functools
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from reconciler.schedule import (
    At,
    Context,
    Cron,
    DayKind,
    Rate,
    ScheduleError,
    describe,
    next_fire,
    parse_schedule,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "schedules.yaml"
CASE_KEYS = {"expr", "context", "valid", "error_contains", "describe", "describe_tz", "next_fire", "note"}
FIRE_KEYS = {"after", "tz", "anchor", "expect", "note"}


def _load_cases() -> list[dict]:
    return yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))["cases"]


def _per_context(cases: list[dict]) -> list[tuple[dict, Context]]:
    pairs = []
    for case in cases:
        contexts = case["context"] if isinstance(case["context"], list) else [case["context"]]
        pairs.extend((case, Context(context)) for context in contexts)
    return pairs


CASES = _load_cases()
VALID = [pytest.param(c, ctx, id=f"{ctx.value}:{c['expr']}") for c, ctx in _per_context(CASES) if c["valid"]]
INVALID = [pytest.param(c, ctx, id=f"{ctx.value}:{c['expr']}") for c, ctx in _per_context(CASES) if not c["valid"]]
DESCRIBED = [p for p in VALID if "describe" in p.values[0]]
FIRES = [
    pytest.param(case, ctx, fire, id=f"{ctx.value}:{case['expr']}:after={fire['after']}:tz={fire.get('tz', 'UTC')}")
    for case, ctx in _per_context(CASES)
    for fire in case.get("next_fire", [])
]


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


# --- the fixture file itself ----------------------------------------------------------


def test_fixture_cases_are_well_formed():
    assert len(CASES) >= 40
    for case in CASES:
        assert set(case) <= CASE_KEYS, case
        assert isinstance(case["valid"], bool), case
        assert ("error_contains" in case) == (not case["valid"]), case
        for fire in case.get("next_fire", []):
            assert set(fire) <= FIRE_KEYS and {"after", "expect"} <= set(fire), fire


# --- table-driven cases ---------------------------------------------------------------


@pytest.mark.parametrize("case, context", INVALID)
def test_invalid_expression_is_rejected_with_a_precise_message(case, context):
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(case["expr"], context)
    assert case["error_contains"] in caught.value.message


@pytest.mark.parametrize("case, context", VALID)
def test_valid_expression_parses_and_round_trips(case, context):
    schedule = parse_schedule(case["expr"], context)
    assert isinstance(schedule, (Rate, Cron, At))
    assert schedule.expression == case["expr"].strip()
    assert parse_schedule(str(schedule), context) == schedule


@pytest.mark.parametrize("case, context", DESCRIBED)
def test_describe_gives_the_plan_phrase(case, context):
    schedule = parse_schedule(case["expr"], context)
    assert describe(schedule, case.get("describe_tz", "UTC")) == case["describe"]


@pytest.mark.parametrize("case, context, fire", FIRES)
def test_next_fire_matches_the_fixture(case, context, fire):
    schedule = parse_schedule(case["expr"], context)
    got = next_fire(schedule, _moment(fire["after"]), fire.get("tz", "UTC"), anchor=_moment(fire.get("anchor")))
    assert got == _moment(fire["expect"])
    if got is not None:
        assert got.utcoffset() == timedelta(0)


# --- behaviours that are not table rows -----------------------------------------------


def test_schedule_error_is_a_value_error_with_message_and_hint():
    with pytest.raises(ValueError) as caught:
        parse_schedule("cron(0 2 * * * *)", Context.MAINTENANCE_WINDOW)
    error = caught.value
    assert isinstance(error, ScheduleError)
    assert str(error) == error.message
    assert "cron(0 2 ? * MON *)" in error.hint


def test_expression_longer_than_256_characters_is_rejected():
    minutes = ",".join(["0"] * 130)
    with pytest.raises(ScheduleError, match="the maximum is 256"):
        parse_schedule(f"cron({minutes} 2 ? * SUN *)", Context.MAINTENANCE_WINDOW)


def test_str_is_canonical_and_equality_ignores_spelling():
    spaced = parse_schedule("  cron(0   0/4 * * ?  *) ", Context.ASSOCIATION)
    starred = parse_schedule("cron(0 */4 * * ? *)", Context.ASSOCIATION)
    assert str(spaced) == "cron(0 0/4 * * ? *)"
    assert spaced.expression == "cron(0   0/4 * * ?  *)"
    assert spaced == starred
    assert str(parse_schedule(" rate( 1  hour ) ", Context.ASSOCIATION)) == "rate(1 hour)"


def test_parsed_values_expose_fields():
    rate = parse_schedule("rate(15 days)", Context.ASSOCIATION)
    assert (rate.value, rate.unit, rate.interval()) == (15, "days", timedelta(days=15))
    assert parse_schedule("rate(5 minutes)", Context.MAINTENANCE_WINDOW).unit == "minutes"
    cron = parse_schedule("cron(24 30 09 ? * TUE#3 *)", Context.MAINTENANCE_WINDOW)
    assert (cron.seconds, cron.minutes, cron.hours) == ({24}, {30}, {9})
    assert cron.day_of_month.kind is DayKind.UNSPECIFIED
    assert (cron.day_of_week.kind, cron.day_of_week.values, cron.day_of_week.nth) == (DayKind.NTH_WEEKDAY, {3}, 3)
    assert cron.months == frozenset(range(1, 13)) and min(cron.years) == 1970 and max(cron.years) == 2199
    at = parse_schedule("at(2020-07-07T15:55:00)", Context.ASSOCIATION)
    assert at.when == datetime(2020, 7, 7, 15, 55) and at.when.tzinfo is None


def test_context_may_be_given_by_value():
    assert parse_schedule("rate(1 hour)", "association") == Rate(1, "hours")


def test_next_fire_is_strictly_after_a_fire_time():
    cron = parse_schedule("cron(0 2 ? * SUN *)", Context.ASSOCIATION)
    on_time = datetime(2024, 1, 7, 2, 0, tzinfo=timezone.utc)
    assert next_fire(cron, on_time) == on_time + timedelta(days=7)
    assert next_fire(cron, on_time - timedelta(microseconds=1)) == on_time


def test_next_fire_requires_aware_datetimes():
    cron = parse_schedule("cron(0 2 ? * SUN *)", Context.ASSOCIATION)
    with pytest.raises(ValueError, match="after must be a timezone-aware datetime"):
        next_fire(cron, datetime(2024, 1, 1))
    rate = parse_schedule("rate(1 hour)", Context.ASSOCIATION)
    with pytest.raises(ValueError, match="anchor must be a timezone-aware datetime"):
        next_fire(rate, datetime(2024, 1, 1, tzinfo=timezone.utc), anchor=datetime(2024, 1, 1))


def test_unknown_time_zone_is_a_schedule_error():
    cron = parse_schedule("cron(0 2 ? * SUN *)", Context.MAINTENANCE_WINDOW)
    with pytest.raises(ScheduleError, match="unknown time zone 'Mars/Olympus'"):
        next_fire(cron, datetime(2024, 1, 1, tzinfo=timezone.utc), "Mars/Olympus")


# --- next_fire against a minute-by-minute walk ----------------------------------------

WALKED = [
    "cron(0/30 * * * ? *)",
    "cron(30 2 * * ? *)",
    "cron(15 10 ? * MON-FRI *)",
    "cron(0 0 ? * 3L *)",
    "cron(30 23 ? * TUE#3 *)",
    "cron(0 2 L * ? *)",
    "cron(0,58 0,23 15 * ? *)",
    "cron(0 0/4 ? JAN,MAR,OCT,NOV * *)",
]
SPANS = [  # both Europe/Paris DST changes of 2024
    (datetime(2024, 3, 1, tzinfo=timezone.utc), timedelta(days=40)),
    (datetime(2024, 10, 1, tzinfo=timezone.utc), timedelta(days=40)),
]


def _reference_day_matches(cron: Cron, local: datetime) -> bool:
    rule = cron.day_rule
    weekday = local.isoweekday() % 7 + 1
    last = calendar.monthrange(local.year, local.month)[1]
    checks = {
        DayKind.MONTH_DAYS: lambda: local.day in rule.values,
        DayKind.LAST_DAY: lambda: local.day == last,
        DayKind.WEEKDAYS: lambda: weekday in rule.values,
        DayKind.LAST_OF_WEEKDAY: lambda: weekday in rule.values and local.day + 7 > last,
        DayKind.NTH_WEEKDAY: lambda: weekday in rule.values and (local.day - 1) // 7 + 1 == rule.nth,
    }
    return checks[rule.kind]()


@functools.cache
def _clock_walk(tz: str, start: datetime, span: timedelta) -> list[tuple[datetime, datetime]]:
    """(UTC minute, wall-clock time) pairs, skipping the second pass of a repeated hour."""
    minutes = (start + timedelta(minutes=n) for n in range(int(span / timedelta(minutes=1))))
    pairs = ((moment, moment.astimezone(ZoneInfo(tz))) for moment in minutes)
    return [(moment, local) for moment, local in pairs if local.fold == 0]


def _reference_fires(cron: Cron, tz: str, start: datetime, span: timedelta) -> list[datetime]:
    """Every UTC minute whose wall-clock time the cron selects."""
    return [
        moment
        for moment, local in _clock_walk(tz, start, span)
        if local.minute in cron.minutes and local.hour in cron.hours
        and local.month in cron.months and _reference_day_matches(cron, local)
    ]


@pytest.mark.parametrize("tz", ["UTC", "Europe/Paris"])
@pytest.mark.parametrize("start, span", SPANS)
@pytest.mark.parametrize("expr", WALKED)
def test_next_fire_agrees_with_a_minute_by_minute_walk(expr, start, span, tz):
    cron = parse_schedule(expr, Context.MAINTENANCE_WINDOW)
    chained, moment = [], start - timedelta(seconds=1)
    while (moment := next_fire(cron, moment, tz)) is not None and moment < start + span:
        chained.append(moment)
    assert chained == _reference_fires(cron, tz, start, span)
