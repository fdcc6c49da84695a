"""Working-hours due times, in Kunming local time (UTC+8), on China's official calendar."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from data_sources import workhours
from data_sources.services import Services
from data_sources.settings import Settings
from data_sources.workhours import (
    CN_CALENDAR,
    WorkCalendar,
    add_working_hours,
    working_hours_between,
)

TZ = ZoneInfo("Asia/Shanghai")
WEEKDAYS = WorkCalendar("weekdays")


def utc(local: str) -> datetime:
    """Naive UTC of a local 'YYYY-MM-DD HH:MM'."""
    return (
        datetime.fromisoformat(local)
        .replace(tzinfo=TZ)
        .astimezone(ZoneInfo("UTC"))
        .replace(tzinfo=None)
    )


def due(start: str, hours: float, calendar: WorkCalendar = CN_CALENDAR) -> datetime:
    return add_working_hours(utc(start), hours, tz=TZ, calendar=calendar)


def _has_official_data(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


#: The first year the installed chinesecalendar has no data for (2027 with version 1.11).
UNKNOWN_YEAR = next(y for y in range(2026, 2100) if not _has_official_data(y))


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        ("2026-11-23 09:00", 2, "2026-11-23 11:00"),  # inside the morning
        ("2026-11-23 11:00", 2, "2026-11-23 15:30"),  # across lunch: 1 h + 1 h
        ("2026-11-23 20:00", 1, "2026-11-24 09:30"),  # evening → next morning
        ("2026-11-27 17:00", 2, "2026-11-30 09:30"),  # Friday → Monday
        ("2026-11-28 10:00", 0, "2026-11-30 08:30"),  # Saturday, zero hours: next opening
        ("2026-11-23 08:30", 7, "2026-11-23 18:00"),  # one full working day
        ("2026-11-23 08:30", 40, "2026-11-30 16:00"),  # 5 days × 7 h, then 3.5 h + 1.5 h
    ],
)
def test_add_working_hours(start: str, hours: float, expected: str) -> None:
    assert due(start, hours) == utc(expected)
    assert due(start, hours, WEEKDAYS) == utc(expected)  # no holiday in those weeks


def test_negative_hours_rejected() -> None:
    with pytest.raises(ValueError, match="hours"):
        due("2026-11-23 09:00", -1)


_SEP_OCT = [(date(2026, 9, 15) + timedelta(days=n)).isoformat() for n in range(31)]


def test_2026_calendar_as_the_package_has_it() -> None:
    """What the National Day tests below rely on (国务院办公厅 2026 arrangement)."""
    working = {d: CN_CALENDAR.is_workday(d) for d in map(date.fromisoformat, _SEP_OCT)}
    assert working == {d: chinese_calendar.is_workday(d) for d in working}
    assert [d.isoformat() for d in working if d.weekday() >= 5 and working[d]] == [
        "2026-09-20",  # Sunday worked (调休)
        "2026-10-10",  # Saturday worked (调休)
    ]
    assert [d.day for d in working if d.month == 10 and not working[d]][:7] == list(range(1, 8))


@pytest.mark.parametrize(
    ("start", "hours", "official", "weekdays"),
    [
        # National Day, Oct 1-7: 2 h on Sep 30, the other 6 h on Thursday Oct 8.
        ("2026-09-30 16:00", 8, "2026-10-08 17:00", "2026-10-01 17:00"),
        # Accepted during the holiday: counting starts on Oct 8.
        ("2026-10-03 10:00", 2, "2026-10-08 10:30", "2026-10-05 10:30"),
        # Friday Oct 9 before the Saturday worked in lieu: that Saturday counts.
        ("2026-10-09 16:00", 8, "2026-10-10 17:00", "2026-10-12 17:00"),
        # Friday Sep 18: Saturday off, Sunday Sep 20 worked.
        ("2026-09-18 16:00", 8, "2026-09-20 17:00", "2026-09-21 17:00"),
        # Mid-autumn (Fri Sep 25-27), then National Day: 4 days before it, 7 days and 3 h after
        # (Saturday Oct 10 among them); Monday to Friday would count Sep 25 and Oct 1-7.
        ("2026-09-24 08:30", 80, "2026-10-16 11:30", "2026-10-09 11:30"),
    ],
)
def test_due_times_around_national_day_2026(
    start: str, hours: float, official: str, weekdays: str
) -> None:
    assert due(start, hours) == utc(official)
    assert due(start, hours, WEEKDAYS) == utc(weekdays)
    span = timedelta(hours=hours)
    assert working_hours_between(utc(start), utc(official), tz=TZ, calendar=CN_CALENDAR) == span


def test_extra_holidays_and_workdays() -> None:
    tuesday, saturday = date(2026, 11, 24), date(2026, 11, 28)
    local = WorkCalendar(extra_holidays=frozenset({tuesday}), extra_workdays=frozenset({saturday}))
    assert not local.is_workday(tuesday) and local.is_workday(saturday)
    assert due("2026-11-23 17:00", 2, local) == utc("2026-11-25 09:30")
    assert due("2026-11-27 17:00", 2, local) == utc("2026-11-28 09:30")
    # On top of the official calendar: its holidays stay, and an override can undo one.
    assert due("2026-09-30 16:00", 8, local) == utc("2026-10-08 17:00")
    worked = WorkCalendar(extra_workdays=frozenset({date(2026, 10, 8)}))
    assert worked.is_workday(date(2026, 10, 8))
    off = WorkCalendar(extra_holidays=frozenset({date(2026, 10, 8)}))
    assert due("2026-09-30 16:00", 8, off) == utc("2026-10-09 17:00")
    # And on top of the weekday calendar.
    weekdays = WorkCalendar("weekdays", extra_holidays=frozenset({date(2026, 10, 1)}))
    assert due("2026-09-30 16:00", 8, weekdays) == utc("2026-10-02 17:00")


def test_a_calendar_is_a_hashable_value() -> None:
    day = date(2026, 8, 7)
    listed = WorkCalendar(extra_holidays=[day])  # any iterable in, a frozenset kept
    assert listed == WorkCalendar(extra_holidays=frozenset({day}))
    assert hash(listed) == hash(WorkCalendar(extra_holidays=frozenset({day})))
    assert listed != CN_CALENDAR
    with pytest.raises(ValueError, match="both"):
        WorkCalendar(extra_holidays=frozenset({day}), extra_workdays=frozenset({day}))
    with pytest.raises(ValueError, match="unknown work calendar"):
        WorkCalendar("us")


def test_a_year_without_official_data_counts_monday_to_friday(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The warning is once per year and process: forget what earlier tests asked.
    workhours._calendar_year.cache_clear()
    workhours._warn_no_official_data.cache_clear()
    add_working_hours.cache_clear()
    days = [date(UNKNOWN_YEAR, 1, 1) + timedelta(days=n) for n in range(366)]
    with caplog.at_level(logging.WARNING, logger="gridcc"):
        assert all(CN_CALENDAR.is_workday(d) == (d.weekday() < 5) for d in days)
        # Across the new year from the last year with data: no error, and the official days
        # up to the year's end, Monday to Friday after it.
        for start in (f"{UNKNOWN_YEAR - 1}-12-24 17:00", f"{UNKNOWN_YEAR}-03-02 09:00"):
            assert due(start, 80) == reference_due(utc(start), 80)
    warnings = [r for r in caplog.records if str(UNKNOWN_YEAR) in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).work_calendar == "cn"
    monkeypatch.setenv("GRIDCC_DATABASE_URL", "sqlite://")
    monkeypatch.setenv("GRIDCC_WORK_CALENDAR", "weekdays")
    monkeypatch.setenv("GRIDCC_EXTRA_HOLIDAYS", "2026-08-07, 2026-08-10")
    monkeypatch.setenv("GRIDCC_EXTRA_WORKDAYS", '["2026-08-08"]')
    read = Settings(_env_file=None)
    assert read.extra_holidays == [date(2026, 8, 7), date(2026, 8, 10)]
    assert read.extra_workdays == [date(2026, 8, 8)]
    services = Services.create(read)
    try:
        assert services.calendar == WorkCalendar(
            "weekdays",
            frozenset({date(2026, 8, 7), date(2026, 8, 10)}),
            frozenset({date(2026, 8, 8)}),
        )
    finally:
        services.session_store.close()
        services.engine.dispose()
    monkeypatch.setenv("GRIDCC_EXTRA_WORKDAYS", "2026-08-07")
    with pytest.raises(ValidationError, match="both an extra holiday and an extra working day"):
        Settings(_env_file=None)
    monkeypatch.setenv("GRIDCC_WORK_CALENDAR", "us")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)


def _official(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def reference_due(start_utc: datetime, hours: float) -> datetime:
    """Minute by minute through local time, asking chinesecalendar each day: slow, plainly right."""
    local = start_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(TZ).replace(tzinfo=None)
    remaining = round(hours * 60)

    def working(t: datetime) -> bool:
        minutes = t.hour * 60 + t.minute
        in_period = 8 * 60 + 30 <= minutes < 12 * 60 or 14 * 60 + 30 <= minutes < 18 * 60
        return in_period and _official(t.date())

    while not working(local):
        local += timedelta(minutes=1)
    while remaining > 0:
        if working(local):
            remaining -= 1
        local += timedelta(minutes=1)
    return local.replace(tzinfo=TZ).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


minutes_up_to_80_hours = st.integers(min_value=1, max_value=80 * 60)


@settings(max_examples=60, deadline=None)
@given(
    start=st.one_of(
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
        # Half of the starts in the weeks of Mid-autumn, National Day and their 调休.
        st.datetimes(min_value=datetime(2026, 9, 10), max_value=datetime(2026, 10, 15)),
    ),
    minutes=minutes_up_to_80_hours,
)
def test_add_working_hours_matches_a_minute_by_minute_count(start: datetime, minutes: int) -> None:
    start = start.replace(second=0, microsecond=0)
    got = add_working_hours(start, minutes / 60, tz=TZ, calendar=CN_CALENDAR)
    assert got == reference_due(start, minutes / 60)


instants = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2027, 2, 1))
calendars = st.sampled_from([CN_CALENDAR, WEEKDAYS])


@settings(max_examples=300, deadline=None)
@given(start=instants, hours=st.floats(0, 400, allow_nan=False), calendar=calendars)
def test_between_inverts_add(start: datetime, hours: float, calendar: WorkCalendar) -> None:
    end = add_working_hours(start, hours, tz=TZ, calendar=calendar)
    between = working_hours_between(start, end, tz=TZ, calendar=calendar)
    assert between == timedelta(hours=hours)


@settings(max_examples=300, deadline=None)
@given(times=st.lists(instants, min_size=3, max_size=3), calendar=calendars)
def test_between_adds_up_and_grows(times: list[datetime], calendar: WorkCalendar) -> None:
    a, b, c = sorted(times)

    def between(start: datetime, end: datetime) -> timedelta:
        return working_hours_between(start, end, tz=TZ, calendar=calendar)

    assert between(a, b) + between(b, c) == between(a, c)
    assert timedelta() <= between(a, b) <= between(a, c) and between(b, c) <= between(a, c)
    assert between(c, a) == timedelta() and between(b, b) == timedelta()
    # Never more than the clock, and no more than a working day per calendar day started.
    assert between(a, c) <= c - a
    assert between(a, c) <= ((c - a).days + 2) * workhours.WORKING_DAY
