"""Schedule expressions: SSM's `cron(...)`, `rate(...)` and `at(...)` strings.

Owns parsing and validating an association's `scheduleExpression` and a maintenance
window's `schedule` exactly as AWS Systems Manager accepts them (reference/ssm.md,
Appendix A, sections 3.1 and 6), computing when a schedule fires next, and a short
phrase for plan output.

Callers: the manifest loader validates schedules with `parse_schedule`; the watch loop
and maintenance-window evaluation ask `next_fire`; plan rendering asks `describe`.
Pure: no I/O and no clock reads; callers pass the time.

Decisions where AWS is silent or self-contradictory:

- Cron takes 6 fields (`Minutes Hours Day-of-month Month Day-of-week Year`) or 7 with a
  leading `Seconds` field, in both contexts; associations allow only Seconds `0`. The
  UG's "five required fields" for associations is not accepted (every AWS example has six).
- Names (`JAN`, `tue`) and `L`/`W` are case-insensitive. Ranges must not wrap (`FRI-MON`
  is rejected with a hint to split it). `L`, `LW`, `nW`, `nL` and `#` must be the whole
  Day-of-month/Day-of-week field. `L` alone in Day-of-week means Saturday. `/` is not
  accepted in Day-of-week (AWS lists no `/` there).
- A cron whose day, month and year fields match no date at all (`cron(0 0 30 2 ? *)`)
  is rejected as "never fires".
- The 5-minute rule compares consecutive fire times within a day, and across midnight
  when the day fields can select two adjacent days (lists such as `1,2`, `SAT,SUN`, `*`).
  Month and year restrictions are ignored there, so it errs on the strict side.
- Association cron patterns (AWS: "every 30 minutes, every 1/2/4/8/12 hours, daily,
  weekly, nth day-of-week, last X day of month"), with Seconds `0`, Month `*`, Year `*`:
    * every 30 minutes: Minutes = {m, m+30} (m < 30), Hours = all, every day;
    * every k hours, k in 1, 2, 4, 8, 12: one minute, Hours = {h0, h0+k, ...} up to 23
      with h0 < k (`0/4`, `2/4`, `*`, `0,12`), every day;
    * at one fixed time (one minute, one hour) on: every day (`* ... ?` or `? ... *`);
      one or more days of the week (`MON`, `MON-FRI`, `SAT,SUN`); the nth weekday of
      the month (`TUE#3`); the last given weekday of the month (`6L`).
  Everything else (day-of-month numbers, `L`/`W` in Day-of-month, month or year
  restrictions, other intervals) is rejected for associations and fine for windows.
- `rate(...)` counts absolute time from an anchor: `rate(1 day)` stays 24 hours apart
  across DST changes. Rates longer than 100 years are rejected (plumb's own limit).
- Cron is evaluated on the wall clock of the given IANA zone: a local time that does not
  exist (spring forward) is skipped; one that happens twice (fall back) fires once, at
  the first occurrence. An `at(...)` inside a DST gap fires when the clock jumps, at the
  wall-clock time it names plus the gap (`zoneinfo` fold=0).
"""

from __future__ import annotations

import calendar
import enum
import itertools
import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_LENGTH = 256
MIN_INTERVAL = timedelta(minutes=5)
ASSOCIATION_MIN_RATE = timedelta(minutes=30)
ASSOCIATION_MAX_RATE = timedelta(days=31)  # exclusive
MAX_RATE = timedelta(days=36525)  # plumb's own sanity limit: 100 years
_DAY = 86400


class ScheduleError(ValueError):
    """An invalid schedule: `message` says what is wrong and what was expected."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class Context(enum.Enum):
    """Where a schedule is used; associations accept a narrower set."""

    ASSOCIATION = "association"
    MAINTENANCE_WINDOW = "maintenance_window"


# --- schedule values ---------------------------------------------------------------

_UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 1440}


@dataclass(frozen=True)
class Rate:
    """`rate(N unit)`: fires every `value` `unit` from an anchor."""

    value: int
    unit: str  # 'minutes' | 'hours' | 'days'
    expression: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.unit not in _UNIT_MINUTES:
            raise ValueError(f"Rate.unit must be minutes, hours or days, not {self.unit!r}")
        if not self.expression:
            object.__setattr__(self, "expression", str(self))

    def interval(self) -> timedelta:
        return timedelta(minutes=self.value * _UNIT_MINUTES[self.unit])

    def __str__(self) -> str:
        return _rate_text(self.value, self.unit)


@dataclass(frozen=True)
class At:
    """`at(YYYY-MM-DDThh:mm:ss)`: fires once; `when` is a naive wall-clock time."""

    when: datetime
    expression: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.when.tzinfo is not None:
            raise ValueError("At.when is a naive wall-clock time")
        if not self.expression:
            object.__setattr__(self, "expression", str(self))

    def __str__(self) -> str:
        return f"at({self.when.isoformat()})"


class DayKind(enum.Enum):
    """The forms a Day-of-month or Day-of-week field can take."""

    UNSPECIFIED = "?"
    MONTH_DAYS = "days of the month"  # 1,15 / 1-10 / * (Day-of-month)
    LAST_DAY = "L"  # last day of the month
    LAST_BUSINESS_DAY = "LW"  # last Monday-Friday of the month
    NEAREST_BUSINESS_DAY = "nW"  # Monday-Friday nearest to day n, within the month
    WEEKDAYS = "days of the week"  # MON-FRI / 1,7 / * (Day-of-week)
    LAST_OF_WEEKDAY = "nL"  # last given weekday of the month
    NTH_WEEKDAY = "#"  # nth given weekday of the month


@dataclass(frozen=True)
class DayRule:
    """A parsed Day-of-month or Day-of-week field. Weekdays are 1=SUN .. 7=SAT."""

    kind: DayKind
    values: frozenset[int] = frozenset()
    nth: int = 0

    def days(self, year: int, month: int) -> list[int]:
        """The days of `month` this rule selects, ascending."""
        last = calendar.monthrange(year, month)[1]
        kind = self.kind
        if kind is DayKind.UNSPECIFIED:
            return []
        if kind is DayKind.MONTH_DAYS:
            return sorted(day for day in self.values if day <= last)
        if kind is DayKind.LAST_DAY:
            return [last]
        if kind is DayKind.LAST_BUSINESS_DAY:
            return [_nearest_business_day(year, month, last)]
        if kind is DayKind.NEAREST_BUSINESS_DAY:
            (day,) = self.values
            return [_nearest_business_day(year, month, day)] if day <= last else []
        first = _weekday(year, month, 1)
        matching = [d for d in range(1, last + 1) if (first + d - 2) % 7 + 1 in self.values]
        if kind is DayKind.LAST_OF_WEEKDAY:
            return matching[-1:]
        if kind is DayKind.NTH_WEEKDAY:
            return matching[self.nth - 1 : self.nth]
        return matching


@dataclass(frozen=True)
class Cron:
    """`cron(...)`: the fields as written plus their parsed sets and day rules."""

    tokens: tuple[str, ...] = field(compare=False)  # as written: 6, or 7 with Seconds first
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: DayRule
    months: frozenset[int]
    day_of_week: DayRule
    years: frozenset[int]
    expression: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.expression:
            object.__setattr__(self, "expression", str(self))

    @property
    def day_rule(self) -> DayRule:
        """The day field that is not '?' (after parsing, exactly one of them is)."""
        if self.day_of_month.kind is DayKind.UNSPECIFIED:
            return self.day_of_week
        return self.day_of_month

    def times_of_day(self) -> list[tuple[int, int, int]]:
        """Every (hour, minute, second) it fires at on a selected day, ascending."""
        return list(itertools.product(*(sorted(s) for s in (self.hours, self.minutes, self.seconds))))

    def __str__(self) -> str:
        return f"cron({' '.join(self.tokens)})"


Schedule = Rate | Cron | At


# --- parsing -----------------------------------------------------------------------

_FORM = re.compile(r"(cron|rate|at)\((.*)\)", re.DOTALL)
_NUMBER = re.compile(r"[0-9]+")
_RATE = re.compile(r"(\S+)\s+(\S+)")
_AT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})")
_EXPECTED_FORMS = "expected cron(...), rate(N unit) or at(YYYY-MM-DDThh:mm:ss)"


def parse_schedule(expr: str, context: Context) -> Schedule:
    """Parse and validate `expr` for `context`; raise ScheduleError if SSM would refuse it."""
    context = Context(context)
    if not isinstance(expr, str):
        got = type(expr).__name__
        raise ScheduleError(f"schedule expression must be a string, got {got}: {_EXPECTED_FORMS}")
    text = expr.strip()
    if not text:
        raise ScheduleError(f"schedule expression is empty: {_EXPECTED_FORMS}")
    if len(text) > MAX_LENGTH:
        raise ScheduleError(f"schedule expression is {len(text)} characters long: the maximum is {MAX_LENGTH}")
    match = _FORM.fullmatch(text)
    if not match:
        raise ScheduleError(f"'{text}' is not a schedule expression: {_EXPECTED_FORMS}", hint=_form_hint(text))
    kind, body = match.groups()
    parser = {"cron": _parse_cron, "rate": _parse_rate, "at": _parse_at}[kind]
    schedule = parser(body.strip(), text)
    _check_frequency(schedule)
    if context is Context.ASSOCIATION:
        _check_association(schedule)
    return schedule


def _form_hint(text: str) -> str | None:
    if _FORM.fullmatch(text.lower()):
        return "write cron, rate and at in lowercase"
    if "(" not in text and len(text.split()) in (5, 6, 7):
        return "wrap cron fields in cron(...), e.g. cron(0 2 ? * SUN *)"
    return None


def _parse_rate(body: str, text: str) -> Rate:
    match = _RATE.fullmatch(body)
    if not match:
        raise ScheduleError(f"'{text}' is malformed: expected rate(N unit), e.g. rate(30 minutes)")
    number, unit = match.groups()
    if not _NUMBER.fullmatch(number) or int(number) == 0:
        raise ScheduleError(
            f"rate value '{number}' is not a positive whole number: expected e.g. rate(30 minutes)"
        )
    plural = unit if unit.endswith("s") else unit + "s"
    if plural not in _UNIT_MINUTES:
        raise ScheduleError(f"rate unit '{unit}' is not supported: expected minute(s), hour(s) or day(s)")
    value = int(number)
    if number != str(value):
        raise ScheduleError(f"rate value '{number}' has a leading zero: use '{_rate_text(value, plural)}'")
    if value == 1 and unit == plural:
        raise ScheduleError(f"rate unit must be singular when the value is 1: use '{_rate_text(1, plural)}'")
    if value > 1 and unit != plural:
        raise ScheduleError(
            f"rate unit must be plural when the value is greater than 1: use '{_rate_text(value, plural)}'"
        )
    if value * _UNIT_MINUTES[plural] > MAX_RATE / timedelta(minutes=1):
        raise ScheduleError(f"{_rate_text(value, plural)} is longer than plumb's limit of 100 years")
    return Rate(value, plural, expression=text)


def _rate_text(value: int, unit: str) -> str:
    return f"rate({value} {unit[:-1] if value == 1 else unit})"


def _parse_at(body: str, text: str) -> At:
    match = _AT.fullmatch(body)
    if not match:
        raise ScheduleError(
            f"at() needs a timestamp YYYY-MM-DDThh:mm:ss, e.g. at(2020-07-07T15:55:00); got '{body}'"
        )
    try:
        when = datetime(*map(int, match.groups()))
    except ValueError as exc:
        raise ScheduleError(f"at({body}) is not a valid date and time: {exc}") from None
    return At(when, expression=text)


# --- cron fields -------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i
    steps: bool = True  # '/' allowed

    def expected(self) -> str:
        names = f" or {self.names[0]}-{self.names[-1]}" if self.names else ""
        return f"{self.low}-{self.high}{names}"


_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_SECONDS = _Field("Seconds", 0, 59)
_MINUTES = _Field("Minutes", 0, 59)
_HOURS = _Field("Hours", 0, 23)
_DAY_OF_MONTH = _Field("Day-of-month", 1, 31)
_MONTH = _Field("Month", 1, 12, _MONTH_NAMES)
_DAY_OF_WEEK = _Field("Day-of-week", 1, 7, _DAY_NAMES, steps=False)
_YEAR = _Field("Year", 1970, 2199)
_FIELD_HELP = "6 fields (Minutes Hours Day-of-month Month Day-of-week Year) or 7 with a leading Seconds"


def _parse_cron(body: str, text: str) -> Cron:
    tokens = tuple(body.split())
    if len(tokens) not in (6, 7):
        hint = "AWS cron has a Year field and '?' in Day-of-month or Day-of-week, e.g. cron(0 2 ? * SUN *)"
        raise ScheduleError(f"cron expression has {len(tokens)} fields: expected {_FIELD_HELP}", hint=hint)
    fields = [t.upper() for t in tokens]
    if len(fields) == 6:
        fields.insert(0, "0")
    second, minute, hour, dom, month, dow, year = fields
    cron = Cron(
        tokens=tokens,
        seconds=_parse_set(second, _SECONDS),
        minutes=_parse_set(minute, _MINUTES),
        hours=_parse_set(hour, _HOURS),
        day_of_month=_parse_day_of_month(dom),
        months=_parse_set(month, _MONTH),
        day_of_week=_parse_day_of_week(dow),
        years=_parse_set(year, _YEAR),
        expression=text,
    )
    _check_one_unspecified(cron, dom, dow)
    _check_fires_at_all(cron)
    return cron


def _parse_set(token: str, fld: _Field) -> frozenset[int]:
    if "?" in token:
        raise ScheduleError(
            f"{fld.name} '{token}' uses '?', which only Day-of-month or Day-of-week accept, as the whole field"
        )
    values: set[int] = set()
    for item in token.split(","):
        if not item:
            raise ScheduleError(f"{fld.name} '{token}' has an empty list item: expected values like 1,5,10")
        values.update(_parse_item(item, fld))
    return frozenset(values)


def _parse_item(item: str, fld: _Field) -> range:
    base, slash, step_text = item.partition("/")
    step = _parse_step(step_text, item, fld) if slash else 1
    if base == "*":
        return range(fld.low, fld.high + 1, step)
    if "-" not in base:
        low = _value(base, fld)
        return range(low, (fld.high if slash else low) + 1, step)
    first, _, last = base.partition("-")
    low, high = _value(first, fld), _value(last, fld)
    if low > high:
        split = f"{first}-{_name(fld.high, fld)},{_name(fld.low, fld)}-{last}"
        hint = None if fld is _YEAR else f"split it, e.g. '{split}'"
        raise ScheduleError(f"{fld.name} range '{base}' runs backwards: expected start <= end", hint=hint)
    return range(low, high + 1, step)


def _parse_step(text: str, item: str, fld: _Field) -> int:
    if not fld.steps:
        raise ScheduleError(f"{fld.name} '{item}' uses '/', which {fld.name} does not accept: expected , - * ? L #")
    span = fld.high - fld.low
    if not _NUMBER.fullmatch(text) or not 1 <= int(text) <= span:
        raise ScheduleError(
            f"{fld.name} step '{text}' in '{item}' is invalid: expected a whole number from 1 to {span}"
        )
    return int(text)


def _value(text: str, fld: _Field) -> int:
    if not text:
        raise ScheduleError(f"{fld.name} is missing a value (as in '5-' or '#3'): expected {fld.expected()}")
    if _NUMBER.fullmatch(text):
        if fld.low <= int(text) <= fld.high:
            return int(text)
        raise ScheduleError(f"{fld.name} value {text} is out of range: expected {fld.expected()}")
    if text in fld.names:
        return fld.low + fld.names.index(text)
    raise ScheduleError(f"{fld.name} value '{text}' is not recognised: expected {fld.expected()}")


def _name(value: int, fld: _Field) -> str:
    return fld.names[value - fld.low] if fld.names else str(value)


def _parse_day_of_month(token: str) -> DayRule:
    if token == "?":
        return DayRule(DayKind.UNSPECIFIED)
    if token == "L":
        return DayRule(DayKind.LAST_DAY)
    if token == "LW":
        return DayRule(DayKind.LAST_BUSINESS_DAY)
    if token.endswith("W") and _NUMBER.fullmatch(token[:-1]):
        return DayRule(DayKind.NEAREST_BUSINESS_DAY, frozenset({_value(token[:-1], _DAY_OF_MONTH)}))
    if "L" in token or "W" in token:
        raise ScheduleError(
            f"Day-of-month '{token}' is malformed: 'L', 'LW' and 'nW' (e.g. '15W') must be the whole field"
        )
    return DayRule(DayKind.MONTH_DAYS, _parse_set(token, _DAY_OF_MONTH))


def _parse_day_of_week(token: str) -> DayRule:
    if token == "?":
        return DayRule(DayKind.UNSPECIFIED)
    if "#" in token:
        return _parse_nth_weekday(token)
    if token == "L":
        return DayRule(DayKind.WEEKDAYS, frozenset({7}))
    if token.endswith("L") and not any(c in token for c in ",-*"):
        return DayRule(DayKind.LAST_OF_WEEKDAY, frozenset({_value(token[:-1], _DAY_OF_WEEK)}))
    if "L" in token:
        raise ScheduleError(
            f"Day-of-week '{token}' is malformed: 'L' (Saturday) or 'nL' (e.g. '6L', last Friday) "
            "must be the whole field"
        )
    return DayRule(DayKind.WEEKDAYS, _parse_set(token, _DAY_OF_WEEK))


def _parse_nth_weekday(token: str) -> DayRule:
    day, _, nth = token.partition("#")
    if any(c in token for c in ",-*/") or "#" in nth:
        raise ScheduleError(
            f"Day-of-week '{token}' is malformed: only one '#' expression is allowed "
            "and it must be the whole field, e.g. 'TUE#3'"
        )
    weekday = _value(day, _DAY_OF_WEEK)
    if not _NUMBER.fullmatch(nth) or not 1 <= int(nth) <= 5:
        raise ScheduleError(
            f"Day-of-week '{token}' is invalid: the number after '#' must be 1-5 "
            f"(which occurrence in the month), got '{nth}'"
        )
    return DayRule(DayKind.NTH_WEEKDAY, frozenset({weekday}), int(nth))


def _check_one_unspecified(cron: Cron, dom: str, dow: str) -> None:
    dom_unset = cron.day_of_month.kind is DayKind.UNSPECIFIED
    dow_unset = cron.day_of_week.kind is DayKind.UNSPECIFIED
    if dom_unset and dow_unset:
        raise ScheduleError(
            "Day-of-month and Day-of-week are both '?': exactly one of them must be '?'",
            hint="e.g. cron(0 2 * * ? *) for every day",
        )
    if not dom_unset and not dow_unset:
        raise ScheduleError(
            f"Day-of-month '{dom}' and Day-of-week '{dow}' are both set: exactly one of them must be '?'",
            hint="put '?' in the field you do not constrain, e.g. cron(0 2 ? * MON *) or cron(0 2 1 * ? *)",
        )


def _check_fires_at_all(cron: Cron) -> None:
    for year, month in itertools.product(sorted(cron.years), sorted(cron.months)):
        if cron.day_rule.days(year, month):
            return
    raise ScheduleError(
        f"{cron} never fires: no date in years {_YEAR.low}-{_YEAR.high} matches "
        "its Day-of-month, Month and Day-of-week fields"
    )


# --- frequency and association rules ----------------------------------------------


def _check_frequency(schedule: Schedule) -> None:
    if isinstance(schedule, Rate) and schedule.interval() < MIN_INTERVAL:
        raise ScheduleError(f"{schedule} fires more often than every 5 minutes: expected at least rate(5 minutes)")
    if isinstance(schedule, Cron):
        pair = _closest_fires(schedule)
        if pair:
            first, second = pair
            raise ScheduleError(
                f"{schedule} fires more often than every 5 minutes ({_clock(first)} and {_clock(second)} are "
                f"{_duration(second - first)} apart): expected at least 5 minutes between runs"
            )


def _closest_fires(cron: Cron) -> tuple[int, int] | None:
    """Two fire times (seconds since the day's midnight) less than 5 minutes apart, if any."""
    minimum = MIN_INTERVAL.total_seconds()
    product = itertools.product(*(sorted(s) for s in (cron.hours, cron.minutes, cron.seconds)))
    seconds_of_day = (h * 3600 + m * 60 + s for h, m, s in product)
    for first, second in itertools.pairwise(seconds_of_day):
        if second - first < minimum:
            return first, second
    if _may_fire_on_adjacent_days(cron.day_rule):
        first = min(cron.hours) * 3600 + min(cron.minutes) * 60 + min(cron.seconds)
        last = max(cron.hours) * 3600 + max(cron.minutes) * 60 + max(cron.seconds)
        if first + _DAY - last < minimum:
            return last, first + _DAY
    return None


def _may_fire_on_adjacent_days(rule: DayRule) -> bool:
    if rule.kind is DayKind.MONTH_DAYS:
        days = rule.values
        return any(d + 1 in days for d in days) or (1 in days and max(days) >= 28)
    if rule.kind is DayKind.WEEKDAYS:
        return any(d % 7 + 1 in rule.values for d in rule.values)
    return False  # L, LW, nW, nL and # select one day a month, never adjacent ones


def _clock(second_of_day: int) -> str:
    hours, rest = divmod(second_of_day % _DAY, 3600)
    text = f"{hours:02d}:{rest // 60:02d}" + (f":{rest % 60:02d}" if rest % 60 else "")
    return text + (" the next day" if second_of_day >= _DAY else "")


def _duration(seconds: int) -> str:
    number, unit = (seconds, "second") if seconds % 60 else (seconds // 60, "minute")
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"


def _check_association(schedule: Schedule) -> None:
    if isinstance(schedule, Rate):
        if not ASSOCIATION_MIN_RATE <= schedule.interval() < ASSOCIATION_MAX_RATE:
            raise ScheduleError(
                f"{schedule} is not allowed for an association: "
                "expected an interval of at least 30 minutes and less than 31 days",
                hint="e.g. rate(30 minutes), rate(4 hours), rate(30 days); use a maintenance window for other intervals",
            )
    elif isinstance(schedule, Cron):
        _check_association_cron(schedule)


def _check_association_cron(cron: Cron) -> None:
    window_hint = "use a maintenance window for this schedule"
    if cron.seconds != {0}:
        raise ScheduleError(f"Seconds must be 0 in an association schedule, got '{cron.tokens[0]}'", hint=window_hint)
    for name, token in (("Month", cron.tokens[-3]), ("Year", cron.tokens[-1])):
        if token != "*":
            raise ScheduleError(
                f"{name} must be '*' in an association schedule, got '{token}': "
                f"State Manager does not schedule by {name.lower()}",
                hint=window_hint,
            )
    if _pattern_phrase(cron, "UTC") is None:
        raise ScheduleError(
            f"{cron} is not a cron pattern associations support: expected every 30 minutes, "
            "every 1, 2, 4, 8 or 12 hours, or one fixed time daily, weekly, "
            "on the nth weekday (TUE#3) or the last weekday (6L) of the month",
            hint="e.g. cron(0 0/4 * * ? *), cron(0 2 ? * SUN *), cron(30 23 ? * TUE#3 *); "
            "or use rate(...) or a maintenance window",
        )


def _pattern_phrase(cron: Cron, zone: str) -> str | None:
    """A phrase for the patterns associations accept, or None for any other cron."""
    if cron.seconds != {0} or cron.months != frozenset(range(1, 13)):
        return None
    if cron.years != frozenset(range(_YEAR.low, _YEAR.high + 1)):
        return None
    return _interval_phrase(cron, zone) or _calendar_phrase(cron, zone)


def _every_day(rule: DayRule) -> bool:
    everything = {DayKind.MONTH_DAYS: 31, DayKind.WEEKDAYS: 7}.get(rule.kind)
    return len(rule.values) == everything


def _interval_phrase(cron: Cron, zone: str) -> str | None:
    if not _every_day(cron.day_rule):
        return None
    minutes, hours = sorted(cron.minutes), sorted(cron.hours)
    if len(hours) == 24 and len(minutes) == 2 and minutes[1] - minutes[0] == 30:
        return "every 30 minutes"
    if len(minutes) != 1:
        return None
    for step in (1, 2, 4, 8, 12):
        if hours[0] < step and hours == list(range(hours[0], 24, step)):
            every = "every hour" if step == 1 else f"every {step} hours"
            start = (hours[0], minutes[0])
            return every if start == (0, 0) else f"{every} from {start[0]:02d}:{start[1]:02d} {zone}"
    return None


_ORDINALS = ("first", "second", "third", "fourth", "fifth")
_WEEKDAY_PHRASES = {
    DayKind.WEEKDAYS: "weekly on {days} {at}",
    DayKind.NTH_WEEKDAY: "on the {nth} {days} of each month {at}",
    DayKind.LAST_OF_WEEKDAY: "on the last {days} of each month {at}",
}


def _calendar_phrase(cron: Cron, zone: str) -> str | None:
    if len(cron.minutes) != 1 or len(cron.hours) != 1:
        return None
    at = f"at {min(cron.hours):02d}:{min(cron.minutes):02d} {zone}"
    rule = cron.day_rule
    if _every_day(rule):
        return f"daily {at}"
    if rule.kind not in _WEEKDAY_PHRASES:
        return None
    days = ",".join(_DAY_NAMES[d - 1] for d in sorted(rule.values))
    nth = _ORDINALS[rule.nth - 1] if rule.nth else ""
    return _WEEKDAY_PHRASES[rule.kind].format(days=days, nth=nth, at=at)


# --- next fire time ----------------------------------------------------------------


def next_fire(
    schedule: Schedule, after: datetime, tz: str = "UTC", anchor: datetime | None = None
) -> datetime | None:
    """The first fire time strictly after `after` (aware), in UTC; None if it never fires again.

    `tz` is the IANA zone cron and at() wall-clock times are read in (associations: UTC;
    windows: ScheduleTimezone). A rate fires at `anchor + k * interval`; without an anchor
    it counts from `after`, so the answer is `after + interval`.
    """
    _require_aware(after, "after")
    if isinstance(schedule, Rate):
        return _next_rate(schedule, after, after if anchor is None else anchor)
    zone = _zone(tz)
    if isinstance(schedule, At):
        fire = schedule.when.replace(tzinfo=zone).astimezone(timezone.utc)
        return fire if fire > after else None
    if isinstance(schedule, Cron):
        return _next_cron(schedule, after, zone)
    raise TypeError(f"next_fire needs a Rate, Cron or At, not {type(schedule).__name__}")


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        expected = "expected an IANA name such as 'UTC' or 'Europe/Paris'"
        raise ScheduleError(f"unknown time zone '{name}': {expected}") from None


def _next_rate(rate: Rate, after: datetime, anchor: datetime) -> datetime | None:
    _require_aware(anchor, "anchor")
    anchor = anchor.astimezone(timezone.utc)
    if anchor > after:
        return anchor
    periods = (after - anchor) // rate.interval() + 1
    try:
        return anchor + periods * rate.interval()
    except OverflowError:
        return None


def _next_cron(cron: Cron, after: datetime, zone: ZoneInfo) -> datetime | None:
    local_after = after.astimezone(zone)
    if local_after.year > _YEAR.high:
        return None
    start = local_after.replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
    for local in _local_candidates(cron, start):
        fire = _to_utc(local, zone)
        if fire is not None and fire > after:
            return fire
    return None


def _local_candidates(cron: Cron, start: datetime) -> Iterator[datetime]:
    """Wall-clock times the cron selects, from `start` on, ascending."""
    times = cron.times_of_day()
    for day in _dates_from(cron, start.date()):
        skip = bisect_left(times, (start.hour, start.minute, start.second)) if day == start.date() else 0
        for hour, minute, second in times[skip:]:
            yield datetime.combine(day, time(hour, minute, second))


def _dates_from(cron: Cron, first: date) -> Iterator[date]:
    """Dates the cron selects, from `first` on, skipping whole years and months."""
    for year in sorted(y for y in cron.years if y >= first.year):
        for month in sorted(m for m in cron.months if (year, m) >= (first.year, first.month)):
            for day in cron.day_rule.days(year, month):
                if date(year, month, day) >= first:
                    yield date(year, month, day)


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall-clock time: None in a DST gap, the first one when it repeats."""
    fire = local.replace(tzinfo=zone).astimezone(timezone.utc)
    if fire.astimezone(zone).replace(tzinfo=None) != local:
        return None
    return fire


def _weekday(year: int, month: int, day: int) -> int:
    """Day of the week in cron numbering: 1=SUN .. 7=SAT."""
    return date(year, month, day).isoweekday() % 7 + 1


def _nearest_business_day(year: int, month: int, day: int) -> int:
    """The Monday-Friday nearest to `day`, without leaving the month (cron 'W')."""
    last = calendar.monthrange(year, month)[1]
    weekday = _weekday(year, month, day)
    if weekday == 7:  # Saturday: the Friday before, or Monday the 3rd if it is the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 1:  # Sunday: the Monday after, or Friday if it is the last day
        return day + 1 if day < last else day - 2
    return day


# --- plan output -------------------------------------------------------------------


def describe(schedule: Schedule, tz: str = "UTC") -> str:
    """A short phrase for plan output, e.g. 'every 30 minutes', 'weekly on SUN at 02:00 UTC'."""
    if isinstance(schedule, Rate):
        if schedule.value == 1:
            return f"every {schedule.unit[:-1]}"
        return f"every {schedule.value} {schedule.unit}"
    if isinstance(schedule, At):
        return f"once at {schedule.when:%Y-%m-%d %H:%M:%S} {tz}"
    return _pattern_phrase(schedule, tz) or f"{schedule} in {tz}"
