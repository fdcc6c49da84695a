"""A `CaseFilter` in SQL: the one WHERE of the case table, its counts, its KPIs and its exports,
and the local-day buckets of the sparklines.

Every condition is on `cases` alone (a search reads the places it names from `nodes` first),
so a page, a count and a tally of the same filter select the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    and_,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from data_sources.access.model import Scope
from data_sources.cases.filters import NEAR_DUE_HOURS, CaseFilter, FollowUp, Window
from data_sources.model import CaseStatus, Level, Satisfaction
from data_sources.schema import CaseRow, NodeRow

#: Statuses of a case still in the loop (not closed, not rejected).
OPEN = tuple(s.value for s in CaseStatus if s.is_open)
#: The escape character of our LIKE patterns. Not a backslash: PostgreSQL reads a backslash in
#: a pattern as an escape even without ESCAPE, SQLite never does; with ESCAPE '!' both read the
#: user's `\`, `%` and `_` as themselves.
LIKE_ESCAPE = "!"
#: The levels whose names make a case's address, searched by name.
PLACE_LEVELS = (Level.COMMUNITY, Level.GRID, Level.BUILDING)


def level_column_of(table: Any, level: Level) -> InstrumentedAttribute[int | None]:
    """The ancestor-id column of `table` at `level` (not the city: everything is in it)."""
    column: InstrumentedAttribute[int | None] = getattr(table, f"{level.value}_id")
    return column


def level_column(level: Level) -> InstrumentedAttribute[int | None]:
    """The ancestor-id column of `cases` at `level`."""
    return level_column_of(CaseRow, level)


def scope_condition(scope: Scope) -> ColumnElement[bool] | None:
    """The cases of `scope`, or None for the city (no condition)."""
    if scope.level is Level.CITY:
        return None
    return level_column(scope.level) == scope.id


def like_literal(text: str) -> str:
    """`text` with LIKE's wildcards (and the escape character) escaped by `LIKE_ESCAPE`."""
    for special in (LIKE_ESCAPE, "%", "_"):
        text = text.replace(special, LIKE_ESCAPE + special)
    return text


def overdue_condition(now: datetime) -> ColumnElement[bool]:
    """超期: open, not deferred, past its due time."""
    c = CaseRow
    return and_(c.status.in_(OPEN), not_(c.deferred), c.due_at < now)


def is_overdue(*, status: str, deferred: bool, due_at: datetime | None, now: datetime) -> bool:
    """`overdue_condition` of one row, in Python (the table's flag)."""
    return status in OPEN and not deferred and due_at is not None and due_at < now


def _follow_condition(follow: FollowUp, now: datetime) -> ColumnElement[bool]:
    c = CaseRow
    if follow is FollowUp.OVERDUE:
        return overdue_condition(now)
    if follow is FollowUp.NEAR_DUE:
        soon = now + timedelta(hours=NEAR_DUE_HOURS)
        return and_(c.status.in_(OPEN), not_(c.deferred), c.due_at >= now, c.due_at < soon)
    if follow is FollowUp.REWORKED:
        return c.rework_count > 0
    return c.satisfaction == Satisfaction.DISSATISFIED.value


#: The most place ids a search lists. A text naming more places than that matches so many cases
#: that reading the window in order finds a page at once; the places stay a subquery then.
MAX_PLACE_IDS = 1_000


def _contains(column: Any, text: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column.ilike(f"%{like_literal(text)}%", escape=LIKE_ESCAPE)
    return condition


#: Where a session keeps the places its searches named (`Session.info`): the queries of one page
#: (its table, count and KPIs) read `nodes` once, and an export's chunks share it.
PLACES_MEMO = "data_sources.cases.places"

Places = dict[Level, tuple[int, ...]]


def _place_ids(session: Session, scope: Scope, text: str) -> Places | None:
    """The communities, grids and buildings of `scope` (or above it) whose name contains `text`,
    or None when there are more than MAX_PLACE_IDS.

    Listed, not left as a subquery, so that PostgreSQL can read each list from its index and
    combine it with the title's and the id's trigram index (a BitmapOr) instead of testing every
    case of the window. `lower() LIKE` rather than ILIKE: no index serves this scan of `nodes`
    (40–70 ms for the whole city), and it is twice as fast.
    """
    memo: dict[tuple[Any, ...], Places | None] = session.info.setdefault(PLACES_MEMO, {})
    key = (scope.level, scope.id, scope.path, text)
    if key not in memo:
        memo[key] = _read_place_ids(session, scope, text)
    return memo[key]


def _read_place_ids(session: Session, scope: Scope, text: str) -> Places | None:
    n = NodeRow
    pattern = func.lower(f"%{like_literal(text)}%")
    query = select(n.level, n.id).where(
        n.level.in_([level.value for level in PLACE_LEVELS]),
        or_(
            func.lower(n.name_zh).like(pattern, escape=LIKE_ESCAPE),
            func.lower(n.name_en).like(pattern, escape=LIKE_ESCAPE),
        ),
    )
    if scope.level is not Level.CITY and scope.path:
        # The places under the scope, and its own lineage (a grid's community names its cases).
        below = (
            n.id == scope.id
            if scope.level is Level.BUILDING
            else level_column_of(n, scope.level) == scope.id
        )
        query = query.where(or_(below, n.id.in_(scope.path)))
    found: dict[Level, list[int]] = {level: [] for level in PLACE_LEVELS}
    for count, (level, node) in enumerate(session.execute(query.limit(MAX_PLACE_IDS + 1))):
        if count == MAX_PLACE_IDS:
            return None
        found[Level(level)].append(node)
    return {level: tuple(ids) for level, ids in found.items()}


def search_condition(session: Session, scope: Scope, text: str) -> ColumnElement[bool]:
    """A case number (exactly or as its start), a title, or the name of its community, grid or
    building containing `text`, case-insensitively."""
    c, n = CaseRow, NodeRow
    places = _place_ids(session, scope, text)
    by_place: list[ColumnElement[bool]] = []
    for level in PLACE_LEVELS:
        if places is None:
            named = select(n.id).where(
                n.level == level.value, or_(_contains(n.name_zh, text), _contains(n.name_en, text))
            )
            by_place.append(level_column(level).in_(named))
        elif places[level]:
            by_place.append(level_column(level).in_(places[level]))
    return or_(
        c.id.ilike(f"{like_literal(text)}%", escape=LIKE_ESCAPE),
        _contains(c.title, text),
        *by_place,
    )


def filter_conditions(
    *, session: Session, scope: Scope, filt: CaseFilter, window: Window, now: datetime
) -> list[ColumnElement[bool]]:
    """The WHERE of `filt` in `scope` over the cases reported in `window` (not `filt.window`:
    the KPIs' comparison period is another window of the same filter). A search reads the
    names of the places it matches first (`session`)."""
    c = CaseRow
    where: list[ColumnElement[bool]] = [c.reported_at >= window.since, c.reported_at < window.until]
    scoped = scope_condition(scope)
    if scoped is not None:
        where.append(scoped)
    if filt.categories:
        where.append(c.category.in_([v.value for v in filt.categories]))
    if filt.channels:
        where.append(c.channel.in_([v.value for v in filt.channels]))
    if filt.statuses:
        where.append(c.status.in_([v.value for v in filt.statuses]))
    if filt.overdue:
        where.append(overdue_condition(now))
    if filt.supervised:
        where.append(c.supervised.is_(True))
    if filt.search:
        where.append(search_condition(session, scope, filt.search))
    if filt.follow is not None:
        where.append(_follow_condition(filt.follow, now))
    return where


# ---------------------------------------------------------------- local days


@dataclass(frozen=True, slots=True)
class DayRun:
    """Consecutive local days of 24 hours (all of them, unless the zone changes its offset in
    the window), or one day of 23 or 25: its cases' day is `first + (epoch − anchor) // seconds`."""

    first: int  # index of its first day among the window's days
    first_day: date  # its first local day
    anchor: int  # epoch seconds of its first day's local midnight
    seconds: int  # the length of each of its days
    since: datetime  # the part of the window it covers, naive UTC
    until: datetime

    @property
    def offset(self) -> int:
        """Seconds the zone is ahead of UTC in this run (its days are all 24 hours)."""
        return (self.first_day - date(1970, 1, 1)).days * 86_400 - self.anchor


def _midnight(day: date, tz: tzinfo) -> datetime:
    """Naive UTC of the local midnight that starts `day`."""
    return datetime.combine(day, time(0), tz).astimezone(UTC).replace(tzinfo=None)


def _local_date(instant: datetime, tz: tzinfo) -> date:
    return instant.replace(tzinfo=UTC).astimezone(tz).date()


def _epoch(instant: datetime) -> int:
    return int((instant - datetime(1970, 1, 1)).total_seconds())


def local_days(window: Window, tz: tzinfo) -> tuple[list[date], list[DayRun]]:
    """The local days that `window` touches, in order, and the runs that bucket its cases."""
    first = _local_date(window.since, tz)
    last = _local_date(window.until - timedelta(microseconds=1), tz)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    starts = [_midnight(d, tz) for d in [*days, last + timedelta(days=1)]]
    runs: list[DayRun] = []
    for i, day_start in enumerate(starts[:-1]):
        length = int((starts[i + 1] - day_start).total_seconds())
        if runs and runs[-1].seconds == length == 86_400:
            runs[-1] = replace(runs[-1], until=starts[i + 1])
        else:
            runs.append(DayRun(i, days[i], _epoch(day_start), length, day_start, starts[i + 1]))
    clipped = [
        replace(r, since=max(r.since, window.since), until=min(r.until, window.until)) for r in runs
    ]
    return days, clipped


def _sqlite_epoch(column: Any) -> ColumnElement[int]:
    """Whole seconds since 1970 of a naive-UTC column on SQLite (truncated, as day starts are
    whole seconds; not rounded, as SQLite would to the millisecond, which would move
    23:59:59.9995 into the next day)."""
    return cast(func.strftime("%s", func.substr(column, 1, 19)), BigInteger)


def day_index(run: DayRun, dialect: str) -> ColumnElement[int]:
    """The index of a case's local day among the window's days, for cases inside `run`."""
    if run.seconds != 86_400:  # a day of 23 or 25 hours is a run of its own
        return literal(run.first, BigInteger)
    if dialect == "postgresql":
        # The local date by date arithmetic: a quarter faster than from the epoch (a year of
        # daily tallies on 1 M cases, 420 → 310 ms).
        local = cast(CaseRow.reported_at + timedelta(seconds=run.offset), Date)
        return cast(local - run.first_day, BigInteger) + run.first
    return (_sqlite_epoch(CaseRow.reported_at) - run.anchor) // run.seconds + run.first
