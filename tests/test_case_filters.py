"""The laptop view's filter (data_sources/cases/filters.py): what a URL says, the window it covers
and the period it is compared with."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest

from data_sources.cases.filters import CaseFilter, FilterError, Window

TZ = ZoneInfo("Asia/Shanghai")
#: 10:00 on Saturday 5 December 2026 in Kunming.
NOW = datetime(2026, 12, 5, 2, 0)


def local(*parts: int) -> datetime:
    """Naive UTC of a Kunming wall-clock time."""
    return datetime(*parts, tzinfo=TZ).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def of(query: str) -> CaseFilter:
    return CaseFilter.from_query(parse_qs(query))


@pytest.mark.parametrize(
    ("query", "window", "previous"),
    [
        # Today so far against yesterday up to the same time (not yesterday's evening).
        ("period=today", (local(2026, 12, 5), NOW), (local(2026, 12, 4), local(2026, 12, 4, 10))),
        ("period=7d", (local(2026, 11, 29), NOW), (local(2026, 11, 22), local(2026, 11, 28, 10))),
        ("", (local(2026, 11, 6), NOW), (local(2026, 10, 7), local(2026, 11, 5, 10))),
        # This month so far against last month's same days.
        ("period=month", (local(2026, 12, 1), NOW), (local(2026, 11, 1), local(2026, 11, 5, 10))),
        (
            "period=custom&from=2026-10-01&to=2026-10-07",
            (local(2026, 10, 1), local(2026, 10, 8)),
            (local(2026, 9, 24), local(2026, 10, 1)),
        ),
    ],
)
def test_a_period_and_the_one_it_is_compared_with(
    query: str, window: tuple[datetime, datetime], previous: tuple[datetime, datetime]
) -> None:
    filt = of(query)
    assert filt.window(now=NOW, tz=TZ) == Window(*window)
    assert filt.previous(now=NOW, tz=TZ) == Window(*previous)


def test_a_short_month_compares_with_a_longer_ones_start_and_never_overlaps() -> None:
    march_31 = local(2026, 3, 31, 12)
    filt = of("period=month")
    assert filt.previous(now=march_31, tz=TZ) == Window(local(2026, 2, 1), local(2026, 3, 1))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=custom&from=0001-01-01&to=2026-01-01", "from"),
        ("period=custom&from=2026-01-01&to=9999-12-30", "to"),
        ("period=custom&from=2026-01-02&to=2026-01-01", "to"),
        ("period=custom&from=2025-01-01&to=2026-12-31", "to"),
        ("period=custom&from=2026-01-01", "to"),
        ("period=7d&from=2026-01-01", "from"),
        ("period=weekly", "period"),
        ("status=closed&status=handled", "status"),
        ("category=noise,nothing", "category"),
        ("overdue=yes", "overdue"),
        ("q=" + "x" * 65, "q"),
        ("q=a%00b", "q"),
        ("follow=later", "follow"),
    ],
)
def test_what_a_filter_cannot_read_names_its_field(query: str, field: str) -> None:
    with pytest.raises(FilterError) as refused:
        of(query)
    assert refused.value.field == field


def test_a_filter_survives_its_own_url() -> None:
    query = "period=custom&from=2026-10-01&to=2026-10-07&category=dogs,noise&status=closed"
    query += "&overdue=1&supervised=1&q=幸福&follow=reworked"
    filt = of(query)
    assert of("&".join(f"{k}={v}" for k, v in filt.to_query().items())) == filt
    assert filt.to_query()["category"] == "noise,dogs"  # declaration order: one URL per choice
