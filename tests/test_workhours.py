"""Working-hours due times, in Kunming local time (UTC+8)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_sources.workhours import add_working_hours

TZ = ZoneInfo("Asia/Shanghai")


def utc(local: str) -> datetime:
    """Naive UTC of a local 'YYYY-MM-DD HH:MM'."""
    return (
        datetime.fromisoformat(local)
        .replace(tzinfo=TZ)
        .astimezone(ZoneInfo("UTC"))
        .replace(tzinfo=None)
    )


@pytest.mark.parametrize(
    ("start", "hours", "due"),
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
def test_add_working_hours(start: str, hours: float, due: str) -> None:
    assert add_working_hours(utc(start), hours, tz=TZ) == utc(due)


def test_negative_hours_rejected() -> None:
    with pytest.raises(ValueError, match="hours"):
        add_working_hours(utc("2026-11-23 09:00"), -1, tz=TZ)


def reference_due(start_utc: datetime, hours: float) -> datetime:
    """Minute by minute through local time: slow and obviously right."""
    local = start_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(TZ).replace(tzinfo=None)
    remaining = round(hours * 60)

    def working(t: datetime) -> bool:
        minutes = t.hour * 60 + t.minute
        in_period = 8 * 60 + 30 <= minutes < 12 * 60 or 14 * 60 + 30 <= minutes < 18 * 60
        return t.weekday() < 5 and in_period

    while not working(local):
        local += timedelta(minutes=1)
    while remaining > 0:
        if working(local):
            remaining -= 1
        local += timedelta(minutes=1)
    return local.replace(tzinfo=TZ).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


@settings(max_examples=60, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
    minutes=st.integers(min_value=1, max_value=80 * 60),
)
def test_add_working_hours_matches_a_minute_by_minute_count(start: datetime, minutes: int) -> None:
    start = start.replace(second=0, microsecond=0)
    assert add_working_hours(start, minutes / 60, tz=TZ) == reference_due(start, minutes / 60)
