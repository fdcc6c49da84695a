"""The case table of the leaders' view: a filtered, sorted page of cases and its KPIs.

Pages are keyset-paginated: a page ends with an opaque cursor naming its last row's sort value
and id, and the next page starts strictly after it. Unlike OFFSET, the cost of a page does not
grow with its depth (bench/bench_case_table.py measures both on 1 M cases), and rows reported
while a reader pages are neither skipped nor shown twice.

Order: the sort key, then the case id as a tie-breaker, both in the same direction; text (codes
and case numbers) in byte order on both backends. Due and closed times may be NULL; those cases
come last in either direction. A page of such a key is read in two parts, the cases with a
value and then the cases without, so that each part is a plain range (no expression, no NULLS
FIRST/LAST per direction, no index of its own needed).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, tuple_
from sqlalchemy.orm import Session, aliased

from data_sources.access.model import Scope
from data_sources.cases.filters import CaseFilter, FilterError
from data_sources.cases.sql import (
    PLACE_LEVELS,
    PLACES_MEMO,
    filter_conditions,
    is_overdue,
    level_column,
)

# The KPIs of a filter live next door; the laptop view imports the whole API from here.
from data_sources.cases.tallies import (
    child_daily_reported,
    child_tallies,
    daily_counts,
    filter_tally,
)
from data_sources.model import CaseStatus, Category, Channel, Satisfaction
from data_sources.schema import CaseRow, NodeRow, WorkerRow

#: The most rows a page may ask for (the grid asks for 100; an export chunk for 2,000).
MAX_LIMIT = 5_000
#: The longest cursor accepted (a real one is under 100 characters).
MAX_CURSOR = 400


class SortKey(StrEnum):
    REPORTED_AT = "reported_at"
    DUE_AT = "due_at"
    CLOSED_AT = "closed_at"
    STATUS = "status"
    CATEGORY = "category"
    CHANNEL = "channel"
    ID = "id"

    @property
    def column(self) -> Any:
        return getattr(CaseRow, self.value)

    @property
    def nullable(self) -> bool:
        return self in (SortKey.DUE_AT, SortKey.CLOSED_AT)

    @property
    def is_time(self) -> bool:
        return self in (SortKey.REPORTED_AT, SortKey.DUE_AT, SortKey.CLOSED_AT)


@dataclass(frozen=True, slots=True)
class Sort:
    key: SortKey = SortKey.REPORTED_AT
    descending: bool = True

    @classmethod
    def from_query(cls, value: str | None) -> Sort:
        """The sort of a URL parameter: a key, `-` in front for descending (`-reported_at`);
        empty or absent is the default (newest first). Raises `FilterError`."""
        if not value:
            return cls()
        descending = value.startswith("-")
        try:
            return cls(SortKey(value[1:] if descending else value), descending)
        except ValueError:
            allowed = ", ".join(k.value for k in SortKey)
            raise FilterError("sort", f"'{value[:40]}' is not one of {allowed}") from None

    def to_query(self) -> str:
        return f"-{self.key.value}" if self.descending else self.key.value


@dataclass(frozen=True, slots=True)
class CaseListItem:
    """One row of the case table and of its export."""

    id: str
    title: str
    category: Category
    channel: Channel
    status: CaseStatus
    reported_at: datetime
    due_at: datetime | None
    closed_at: datetime | None
    #: Open, not deferred, past its due time at `now` (超期).
    overdue: bool
    supervised: bool
    deferred: bool
    rework_count: int
    satisfaction: Satisfaction | None
    #: Its address: "community · grid · building" (the names it has; "" for none).
    place_zh: str
    place_en: str
    #: The name of the worker handling it, once dispatched.
    worker: str | None


@dataclass(frozen=True, slots=True)
class CasePage:
    items: list[CaseListItem]
    #: The cursor of the next page; None when this page is the last.
    after: str | None


# ---------------------------------------------------------------- cursor


@dataclass(frozen=True, slots=True)
class _Position:
    """Where a page ended: its last row's sort value (None: among the cases without one)."""

    value: Any
    id: str


def _encode(sort: Sort, position: _Position) -> str:
    value = position.value.isoformat() if isinstance(position.value, datetime) else position.value
    raw = json.dumps([sort.to_query(), value, position.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(sort: Sort, after: str) -> _Position:
    """The position of a cursor made by `_encode` for this sort. Raises `FilterError`."""
    try:
        if len(after) > MAX_CURSOR:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4))
        made_for, value, case_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise FilterError("after", "not a cursor of this table") from None
    if made_for != sort.to_query():
        raise FilterError("after", "made for another sort")
    if not isinstance(case_id, str) or not case_id:
        raise FilterError("after", "not a cursor of this table")
    if sort.key is SortKey.ID:
        return _Position(case_id, case_id)
    if value is None and sort.key.nullable:
        return _Position(None, case_id)
    if not isinstance(value, str):
        raise FilterError("after", "not a cursor of this table")
    if not sort.key.is_time:
        return _Position(value, case_id)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise FilterError("after", "not a cursor of this table") from None
    if at.tzinfo is not None:
        raise FilterError("after", "not a cursor of this table")
    return _Position(at, case_id)


# ---------------------------------------------------------------- pages


def _text(column: Any, dialect: str) -> Any:
    """A text column in byte order: SQLite's order, and PostgreSQL's with COLLATE "C".

    The same order on both backends (the codes and case numbers are ASCII), and no index that
    PostgreSQL could read in that order. It otherwise took one when it did not pay: the primary
    key to sort a district's 30 days by case number (ids follow districts and days: 280 ms
    instead of 20 on 1 M cases), the index on (status, district_id) to sort a year by status
    (650 ms instead of 140). Sorting the window's cases costs what the window holds.
    """
    return column.collate("C") if dialect == "postgresql" else column


def _sort_columns(sort: Sort, dialect: str) -> tuple[Any | None, Any]:
    """The key (None when it is the id) and the id, as ordered and compared."""
    case_id = _text(CaseRow.id, dialect)
    if sort.key is SortKey.ID:
        return None, case_id
    key = sort.key.column
    return (key if sort.key.is_time else _text(key, dialect)), case_id


def _ordered(query: Select[Any], columns: list[Any], descending: bool) -> Select[Any]:
    return query.order_by(*(c.desc() if descending else c.asc() for c in columns))


def _after(column: Any, value: Any, descending: bool) -> ColumnElement[bool]:
    result: ColumnElement[bool] = column < value if descending else column > value
    return result


def _page_ids(
    session: Session,
    where: list[ColumnElement[bool]],
    sort: Sort,
    position: _Position | None,
    limit: int,
) -> list[tuple[Any, str]]:
    """(sort value, id) of up to `limit` cases after `position`, in the table's order."""
    key, case_id = _sort_columns(sort, session.get_bind().dialect.name)
    desc = sort.descending
    base = select(sort.key.column, CaseRow.id).where(*where)
    if key is None:
        if position is not None:
            base = base.where(_after(case_id, position.id, desc))
        query = _ordered(base, [case_id], desc).limit(limit)
        return [(r[0], r[1]) for r in session.execute(query)]
    rows: list[tuple[Any, str]] = []
    if position is None or position.value is not None:
        valued = base.where(key.is_not(None)) if sort.key.nullable else base
        if position is not None:
            valued = valued.where(
                _after(tuple_(key, case_id), tuple_(position.value, position.id), desc)
            )
        query = _ordered(valued, [key, case_id], desc).limit(limit)
        rows = [(r[0], r[1]) for r in session.execute(query)]
    if sort.key.nullable and len(rows) < limit:
        nulls = base.where(key.is_(None))
        if position is not None and position.value is None:
            nulls = nulls.where(_after(case_id, position.id, desc))
        query = _ordered(nulls, [case_id], desc).limit(limit - len(rows))
        rows += [(r[0], r[1]) for r in session.execute(query)]
    return rows


def _items(session: Session, ids: list[str], now: datetime) -> list[CaseListItem]:
    """The table rows of the cases `ids`, in that order."""
    if not ids:
        return []
    c = CaseRow
    names = {level: aliased(NodeRow, name=f"{level.value}_node") for level in PLACE_LEVELS}
    query = select(
        c.id,
        c.title,
        c.category,
        c.channel,
        c.status,
        c.reported_at,
        c.due_at,
        c.closed_at,
        c.supervised,
        c.deferred,
        c.rework_count,
        c.satisfaction,
        WorkerRow.name,
        *(
            column.label(f"{level.value}_{lang}")
            for level, node in names.items()
            for lang, column in (("zh", node.name_zh), ("en", node.name_en))
        ),
    ).outerjoin(WorkerRow, WorkerRow.id == c.worker_id)
    for level, node in names.items():
        query = query.outerjoin(node, node.id == level_column(level))
    found = {r.id: r for r in session.execute(query.where(c.id.in_(ids)))}
    items = []
    for case_id in ids:
        r = found.get(case_id)
        if r is None:  # gone between the two reads
            continue
        place = {lang: [r._mapping[f"{lv.value}_{lang}"] for lv in names] for lang in ("zh", "en")}
        items.append(
            CaseListItem(
                id=r.id,
                title=r.title,
                category=Category(r.category),
                channel=Channel(r.channel),
                status=CaseStatus(r.status),
                reported_at=r.reported_at,
                due_at=r.due_at,
                closed_at=r.closed_at,
                overdue=is_overdue(
                    status=r.status, deferred=bool(r.deferred), due_at=r.due_at, now=now
                ),
                supervised=bool(r.supervised),
                deferred=bool(r.deferred),
                rework_count=r.rework_count,
                satisfaction=Satisfaction(r.satisfaction) if r.satisfaction else None,
                place_zh=" · ".join(n for n in place["zh"] if n),
                place_en=" · ".join(n for n in place["en"] if n),
                worker=r.name,
            )
        )
    return items


def case_page(
    *,
    session: Session,
    scope: Scope,
    filt: CaseFilter,
    now: datetime,
    tz: tzinfo,
    sort: Sort = Sort(),
    after: str | None = None,
    limit: int = 100,
) -> CasePage:
    """The cases of `filt` in `scope` after the cursor `after` (None: the first page), at most
    `limit`, in `sort`'s order. Raises `FilterError` for a cursor that is not this sort's."""
    if not 1 <= limit <= MAX_LIMIT:
        raise FilterError("limit", f"between 1 and {MAX_LIMIT}")
    position = _decode(sort, after) if after else None
    where = filter_conditions(
        session=session, scope=scope, filt=filt, window=filt.window(now=now, tz=tz), now=now
    )
    # One more than asked: whether there is a next page, without a count.
    rows = _page_ids(session, where, sort, position, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = _items(session, [case_id for _, case_id in rows], now)
    cursor = _encode(sort, _Position(*rows[-1])) if more else None
    return CasePage(items, cursor)


def case_count(
    *, session: Session, scope: Scope, filt: CaseFilter, now: datetime, tz: tzinfo
) -> int:
    """How many cases `filt` selects in `scope` (the table's total)."""
    where = filter_conditions(
        session=session, scope=scope, filt=filt, window=filt.window(now=now, tz=tz), now=now
    )
    return int(
        session.execute(select(func.count()).select_from(CaseRow).where(*where)).scalar_one()
    )


def iter_cases(
    *,
    session_factory: Callable[[], AbstractContextManager[Session]],
    scope: Scope,
    filt: CaseFilter,
    now: datetime,
    tz: tzinfo,
    sort: Sort = Sort(),
    chunk: int = 2_000,
) -> Iterator[CaseListItem]:
    """Every case of `filt` in `scope`, in `case_page`'s order, for a streamed export.

    A page of `chunk` rows per session from `session_factory` (a sessionmaker): memory stays
    flat and no transaction stays open while the consumer writes, however long the export.
    """
    after: str | None = None
    places: dict[Any, Any] = {}  # what a search names is read once for the whole export
    while True:
        with session_factory() as session:
            session.info[PLACES_MEMO] = places
            page = case_page(
                session=session,
                scope=scope,
                filt=filt,
                now=now,
                tz=tz,
                sort=sort,
                after=after,
                limit=chunk,
            )
        yield from page.items
        if page.after is None:
            return
        after = page.after


__all__ = [
    "CaseListItem",
    "CasePage",
    "Sort",
    "SortKey",
    "case_count",
    "case_page",
    "child_daily_reported",
    "child_tallies",
    "daily_counts",
    "filter_tally",
    "iter_cases",
]
