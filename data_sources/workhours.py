"""Working-hours arithmetic for case time limits (时限按工作时间计算).

Time limits run only in working time: Monday to Friday, 08:30–12:00 and 14:30–18:00 local time
(the usual government office hours in Yunnan). Public holidays are not modelled yet.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

#: The working periods of a working day, local time.
WORK_PERIODS: tuple[tuple[time, time], ...] = (
    (time(8, 30), time(12, 0)),
    (time(14, 30), time(18, 0)),
)


#: Working time in one full calendar week (any seven consecutive days hold five working days).
WEEK = 7 * timedelta(days=1)
WORKING_WEEK = 5 * sum(
    (
        datetime.combine(date.min, end) - datetime.combine(date.min, begin)
        for begin, end in WORK_PERIODS
    ),
    timedelta(),
)


@lru_cache(maxsize=65_536)  # replays recompute the due time of the same accept many times
def add_working_hours(start_utc: datetime, hours: float, *, tz: tzinfo) -> datetime:
    """The naive-UTC instant `hours` working hours after `start_utc` (naive UTC), in zone `tz`.

    A start outside working time begins counting at the next working period.
    """
    if hours < 0:
        raise ValueError("hours must be >= 0")
    local = start_utc.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
    remaining = timedelta(hours=hours)
    day = local.date()
    while True:
        if day.weekday() < 5:
            for begin, end in WORK_PERIODS:
                period_start = max(datetime.combine(day, begin), local)
                period_end = datetime.combine(day, end)
                if period_start >= period_end:
                    continue
                available = period_end - period_start
                if remaining <= available:
                    due_local = (period_start + remaining).replace(tzinfo=tz)
                    return due_local.astimezone(UTC).replace(tzinfo=None)
                remaining -= available
        day += timedelta(days=1)
        local = datetime.combine(day, time(0, 0))
        # From a midnight on, every whole week holds exactly one working week: skip them, but
        # keep some time left so the due instant still falls inside a working period.
        weeks = (remaining - timedelta(microseconds=1)) // WORKING_WEEK
        if weeks > 0:
            day += weeks * WEEK
            local = datetime.combine(day, time(0, 0))
            remaining -= weeks * WORKING_WEEK
