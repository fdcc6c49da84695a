"""The KPIs of a case filter: its tally, its children's, and its local days' (the sparklines).

Each is `store.tally_columns` over the WHERE of `cases.sql.filter_conditions`, so a KPI tile,
a child's row and the case table count the same cases.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, func, select, union_all
from sqlalchemy.orm import Session

from data_sources.access.model import Scope
from data_sources.cases.filters import CaseFilter, Window
from data_sources.cases.sql import day_index, filter_conditions, level_column, local_days
from data_sources.kpi import Tally
from data_sources.schema import CaseRow, NodeRow
from data_sources.store import tally_columns


def _tally(values: Any) -> Tally:
    return Tally(*(int(v) for v in values))


def filter_tally(
    *, session: Session, scope: Scope, filt: CaseFilter, window: Window, now: datetime
) -> Tally:
    """The KPI counts of the cases of `filt` in `scope` reported in `window` (pass
    `window.previous()` for the comparison period)."""
    where = filter_conditions(session=session, scope=scope, filt=filt, window=window, now=now)
    return _tally(session.execute(select(*tally_columns(now)).where(*where)).one())


def _children(session: Session, scope: Scope) -> list[int]:
    """The ids of the scope's child nodes (none under a building)."""
    child = scope.level.child
    if child is None:
        return []
    query = select(NodeRow.id).where(NodeRow.parent_id == scope.id, NodeRow.level == child.value)
    return list(session.scalars(query.order_by(NodeRow.code)))


def child_tallies(
    *, session: Session, scope: Scope, filt: CaseFilter, window: Window, now: datetime
) -> dict[int, Tally]:
    """`filter_tally` of each child node of `scope`, every child present (an empty Tally when
    it has no such case)."""
    child = scope.level.child
    if child is None:
        return {}
    key = level_column(child)
    where = filter_conditions(session=session, scope=scope, filt=filt, window=window, now=now)
    query = select(key, *tally_columns(now)).where(*where).group_by(key)
    found = {row[0]: _tally(row[1:]) for row in session.execute(query) if row[0] is not None}
    return {node: found.pop(node, Tally()) for node in _children(session, scope)} | found


def _by_day(
    session: Session,
    where: list[ColumnElement[bool]],
    window: Window,
    tz: tzinfo,
    group: list[Any],
    measures: list[ColumnElement[Any]],
) -> tuple[list[date], list[Any]]:
    """The window's local days, and rows (day index, *group, *measures) grouped by day."""
    days, runs = local_days(window, tz)
    dialect = session.get_bind().dialect.name
    parts = []
    for run in runs:
        day = day_index(run, dialect).label("day")
        part = select(day, *group, *measures).where(*where)
        if len(runs) > 1:
            part = part.where(CaseRow.reported_at >= run.since, CaseRow.reported_at < run.until)
        # A run of one 23- or 25-hour day has a constant day: nothing to group by.
        parts.append(part.group_by(*([day] if run.seconds == 86_400 else []), *group))
    statement = parts[0] if len(parts) == 1 else union_all(*parts)
    return days, list(session.execute(statement))


def daily_counts(
    *,
    session: Session,
    scope: Scope,
    filt: CaseFilter,
    window: Window,
    tz: tzinfo,
    now: datetime,
) -> list[tuple[date, Tally]]:
    """The KPI counts of `filter_tally` per local day of `window` (every day, zero-filled):
    the KPI tiles' sparklines."""
    where = filter_conditions(session=session, scope=scope, filt=filt, window=window, now=now)
    days, rows = _by_day(session, where, window, tz, [], tally_columns(now))
    tallies = [Tally() for _ in days]
    for row in rows:
        tallies[row[0]] = tallies[row[0]] + _tally(row[1:])
    return list(zip(days, tallies, strict=True))


def child_daily_reported(
    *,
    session: Session,
    scope: Scope,
    filt: CaseFilter,
    window: Window,
    tz: tzinfo,
    now: datetime | None = None,
) -> dict[int, list[int]]:
    """Cases of `filt` reported per child of `scope` per local day of `window` (every child and
    day, zero-filled): the children table's sparklines.

    `now` matters only to the overdue and near-due filters; without it the window's end stands
    in (which is now for every period but a custom one).
    """
    child = scope.level.child
    if child is None:
        return {}
    key = level_column(child)
    at = window.until if now is None else now
    where = filter_conditions(session=session, scope=scope, filt=filt, window=window, now=at)
    days, rows = _by_day(session, where, window, tz, [key], [func.count()])
    counts = {node: [0] * len(days) for node in _children(session, scope)}
    for day, node, n in rows:
        if node is not None:
            counts.setdefault(node, [0] * len(days))[day] += int(n)
    return counts
