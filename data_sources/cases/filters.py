"""What a leader asks of the cases: a time range, categories, channels, statuses, overdue only,
supervised (督办) only, and a search. The URL holds it (`to_query` / `from_query`), so a link
reproduces the view; every query of `data_sources.cases` takes it.

The time range is over the day a case was **reported**, in the deployment's zone (as the KPIs
are: "over the cases reported in the window"). `today`, `7d` and `30d` end now (`7d` is today and
the six days before); `month` is this calendar month so far; `custom` is `start`..`end`,
inclusive local dates. The previous period has the same length and ends where this one starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import TypeVar

from data_sources.model import CaseStatus, Category, Channel

#: The longest custom range (a year and a day: a leap year's whole year).
MAX_RANGE_DAYS = 367
#: The longest search text (a case number, a title's words, a building's name).
MAX_SEARCH = 64
#: The dates a custom range may name (a far date would overflow the instants around it).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)

E = TypeVar("E", bound=StrEnum)


class Period(StrEnum):
    TODAY = "today"  # 今日
    DAYS_7 = "7d"  # 近7天
    DAYS_30 = "30d"  # 近30天
    MONTH = "month"  # 本月
    CUSTOM = "custom"  # 自定义


class FollowUp(StrEnum):
    """The lists a leader chases (督办跟进): each narrows the filter further."""

    OVERDUE = "overdue"  # 超期: open, not deferred, past its due time
    NEAR_DUE = "near_due"  # 临期: open, not deferred, due within NEAR_DUE_HOURS from now
    REWORKED = "reworked"  # 返工: reworked at least once
    UNSATISFIED = "unsatisfied"  # 不满意: evaluated dissatisfied


#: "Near its limit": due within this many hours of now (clock hours: a leader's day ahead).
NEAR_DUE_HOURS = 24


class FilterError(ValueError):
    """A filter parameter that cannot be understood: `field` names it, the message says why."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open interval [since, until) of naive-UTC instants."""

    since: datetime
    until: datetime

    @property
    def length(self) -> timedelta:
        return self.until - self.since

    def previous(self) -> Window:
        """The period of the same length just before this one (`CaseFilter.previous` aligns it
        to the calendar: yesterday's same hours, last month's same days)."""
        return Window(self.since - self.length, self.since)


@dataclass(frozen=True, slots=True)
class CaseFilter:
    period: Period = Period.DAYS_30
    #: Inclusive local dates of a custom range (both set exactly when period is CUSTOM).
    start: date | None = None
    end: date | None = None
    categories: tuple[Category, ...] = ()
    channels: tuple[Channel, ...] = ()
    statuses: tuple[CaseStatus, ...] = ()
    #: Only open cases past their due time (超期).
    overdue: bool = False
    #: Only cases under supervision (督办).
    supervised: bool = False
    #: Matches a case number (exactly or as its start), a title, or the name of its building,
    #: grid or community (the case's address); case-insensitive.
    search: str = ""
    #: One of the follow-up lists, or None for all cases.
    follow: FollowUp | None = None

    def window(self, *, now: datetime, tz: tzinfo) -> Window:
        """The reported-at range of this filter at `now` (naive UTC), days counted in `tz`."""
        today = now.replace(tzinfo=UTC).astimezone(tz).date()
        if self.period is Period.CUSTOM:
            assert self.start is not None and self.end is not None
            return Window(_utc(self.start, tz), _utc(self.end + timedelta(days=1), tz))
        first = {
            Period.TODAY: today,
            Period.DAYS_7: today - timedelta(days=6),
            Period.DAYS_30: today - timedelta(days=29),
            Period.MONTH: today.replace(day=1),
        }[self.period]
        return Window(_utc(first, tz), now)

    def previous(self, *, now: datetime, tz: tzinfo) -> Window:
        """The period to compare with, as a leader reads "against the previous period": today so
        far against yesterday up to the same time, 7 or 30 days against the 7 or 30 before, this
        month so far against last month's same days, a custom range against as many days before
        it. It ends where this one starts at the latest."""
        current = self.window(now=now, tz=tz)
        first = current.since.replace(tzinfo=UTC).astimezone(tz).date()
        if self.period is Period.MONTH:
            before = (first - timedelta(days=1)).replace(day=1)
        elif self.period is Period.CUSTOM:
            assert self.start is not None and self.end is not None
            before = first - timedelta(days=(self.end - self.start).days + 1)
        else:
            before = first - timedelta(
                days={Period.TODAY: 1, Period.DAYS_7: 7}.get(self.period, 30)
            )
        since = _utc(before, tz)
        return Window(since, min(since + current.length, current.since))

    def to_query(self) -> dict[str, str]:
        """The URL parameters of this filter (defaults left out, lists comma-separated)."""
        query: dict[str, str] = {}
        if self.period is not Period.DAYS_30:
            query["period"] = self.period.value
        if self.start is not None and self.end is not None:
            query["from"], query["to"] = self.start.isoformat(), self.end.isoformat()
        for name, values in (
            ("category", self.categories),
            ("channel", self.channels),
            ("status", self.statuses),
        ):
            if values:
                query[name] = ",".join(v.value for v in values)
        if self.overdue:
            query["overdue"] = "1"
        if self.supervised:
            query["supervised"] = "1"
        if self.search:
            query["q"] = self.search
        if self.follow is not None:
            query["follow"] = self.follow.value
        return query

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> CaseFilter:
        """The filter of URL parameters (as `urllib.parse.parse_qs` gives them); parameters it
        does not know (scope, lang, case…) are left to others. Raises `FilterError`."""

        def one(name: str) -> str | None:
            values = query.get(name)
            if not values:
                return None
            if len(values) > 1:
                raise FilterError(name, "given more than once")
            return values[0]

        period = _enum(Period, one("period"), "period") or Period.DAYS_30
        start, end = _day(one("from"), "from"), _day(one("to"), "to")
        if period is Period.CUSTOM:
            if start is None or end is None:
                raise FilterError("from" if start is None else "to", "a custom range needs both")
            if end < start:
                raise FilterError("to", "ends before 'from'")
            if (end - start).days + 1 > MAX_RANGE_DAYS:
                raise FilterError("to", f"a range is at most {MAX_RANGE_DAYS} days")
        elif start is not None or end is not None:
            raise FilterError("from" if start is not None else "to", "only with period=custom")
        search = (one("q") or "").strip()
        if len(search) > MAX_SEARCH:
            raise FilterError("q", f"at most {MAX_SEARCH} characters")
        if any(not ch.isprintable() for ch in search):
            raise FilterError("q", "control characters are not allowed")
        return cls(
            period=period,
            start=start,
            end=end,
            categories=_enums(Category, one("category"), "category"),
            channels=_enums(Channel, one("channel"), "channel"),
            statuses=_enums(CaseStatus, one("status"), "status"),
            overdue=_flag(one("overdue"), "overdue"),
            supervised=_flag(one("supervised"), "supervised"),
            search=search,
            follow=_enum(FollowUp, one("follow"), "follow"),
        )


def _utc(day: date, tz: tzinfo) -> datetime:
    """Naive UTC of local midnight starting `day` in `tz`."""
    return datetime.combine(day, time(0), tz).astimezone(UTC).replace(tzinfo=None)


def _enum(kind: type[E], value: str | None, name: str) -> E | None:
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise FilterError(name, f"'{value[:40]}' is not one of {allowed}") from None


def _enums(kind: type[E], value: str | None, name: str) -> tuple[E, ...]:
    if not value:
        return ()
    chosen: list[E] = []
    for part in value.split(","):
        member = _enum(kind, part.strip(), name)
        if member is not None and member not in chosen:
            chosen.append(member)
    # Declaration order: the same choice always makes the same URL and the same cache key.
    return tuple(m for m in kind if m in chosen)


def _flag(value: str | None, name: str) -> bool:
    if value in (None, "", "0", "false"):
        return False
    if value in ("1", "true"):
        return True
    raise FilterError(name, f"'{str(value)[:40]}' is not 1 or 0")


def _day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise FilterError(name, f"'{value[:40]}' is not a date (YYYY-MM-DD)") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise FilterError(name, f"a date from {FIRST_DAY} to {LAST_DAY}")
    return day
