"""The alarm history of a scope (告警记录): every camera alarm raised in the filter's time range,
newest first, for the leaders' follow-up list and its export.

Of a `CaseFilter` only the time range applies (over `started_at`, the alarm's own "reported"
time) and the search `q`, which matches the alarm's id or its camera's code or name; categories,
channels, statuses and the follow-up lists are the cases' own.

Pages are keyset-paginated as the case table is (`data_sources.cases.query`): a page ends with
an opaque cursor naming its last row's (started_at, id), and the next page starts strictly
after it, so a page deep in the history costs what the first one does and alarms raised while a
reader pages neither shift nor repeat the rows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from data_sources.access.model import Scope
from data_sources.cases.filters import CaseFilter, FilterError, Window
from data_sources.cases.sql import LIKE_ESCAPE, PLACE_LEVELS, level_column_of, like_literal
from data_sources.model import AlarmStatus, AlarmType, Level
from data_sources.schema import AlarmRow, CameraRow, NodeRow

#: The most rows a page may ask for (the grid asks for 100, an export chunk for 2,000).
MAX_LIMIT = 5_000
#: The longest cursor accepted (a real one is under 100 characters).
MAX_CURSOR = 400
#: The cursor's tag: a cursor of another table (the case table's) is refused, not misread.
_CURSOR_TAG = "alarms"
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True, slots=True)
class AlarmListItem:
    """One row of the alarm history and of its export."""

    id: str
    type: AlarmType
    severity: int
    status: AlarmStatus
    started_at: datetime
    acknowledged_at: datetime | None
    #: Who acknowledged it (the duty officer's name as the event carried it).
    acknowledged_by: str | None
    #: When it was resolved or dismissed as a false alarm.
    ended_at: datetime | None
    camera_code: str
    camera_name: str
    #: Its address: "community · grid · building" (the names it has; "" for none), as a case's.
    place_zh: str
    place_en: str
    #: The case it was turned into (转案件), if any.
    case_id: str | None


@dataclass(frozen=True, slots=True)
class AlarmPage:
    items: list[AlarmListItem]
    #: The cursor of the next page; None when this page is the last.
    after: str | None


# ---------------------------------------------------------------- cursor


def encode_cursor(started_at: datetime, alarm_id: str) -> str:
    raw = json.dumps([_CURSOR_TAG, started_at.isoformat(), alarm_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(after: str) -> tuple[datetime, str]:
    """(started_at, id) of a cursor made by `encode_cursor`. Raises `FilterError`."""
    try:
        if len(after) > MAX_CURSOR:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4))
        tag, at, alarm_id = json.loads(raw)
        if tag != _CURSOR_TAG or not isinstance(at, str) or not isinstance(alarm_id, str):
            raise ValueError("not ours")
        started_at = datetime.fromisoformat(at)
    except (ValueError, TypeError, binascii.Error):
        raise FilterError("after", "not a cursor of this table") from None
    if started_at.tzinfo is not None or not alarm_id:
        raise FilterError("after", "not a cursor of this table")
    return started_at, alarm_id


# ---------------------------------------------------------------- conditions


def alarm_filter(filt: CaseFilter) -> CaseFilter:
    """The part of a case filter that applies to alarms: its time range and its search (a link
    or an export of the alarm history carries no more)."""
    return CaseFilter(period=filt.period, start=filt.start, end=filt.end, search=filt.search)


def scope_condition(scope: Scope) -> ColumnElement[bool] | None:
    """The alarms of `scope` (their camera's place), or None for the city (no condition)."""
    if scope.level is Level.CITY:
        return None
    return level_column_of(AlarmRow, scope.level) == scope.id


def _search_condition(scope: Scope, text: str) -> ColumnElement[bool]:
    """The alarm's id, or its camera's code or name, containing `text` (case-insensitively).

    "Containing", not "starting with" as a case number: an alarm id embeds its camera's code
    (`AL-CAM530103000123-000045`), and a reader types the part they see. The window already
    narrows the alarms to scan; the cameras are those of the scope."""
    pattern = f"%{like_literal(text)}%"
    c = CameraRow
    cameras = select(c.id).where(
        or_(c.code.ilike(pattern, escape=LIKE_ESCAPE), c.name.ilike(pattern, escape=LIKE_ESCAPE))
    )
    if scope.level is not Level.CITY:
        cameras = cameras.where(level_column_of(c, scope.level) == scope.id)
    return or_(AlarmRow.id.ilike(pattern, escape=LIKE_ESCAPE), AlarmRow.camera_id.in_(cameras))


def alarm_conditions(
    *, scope: Scope, filt: CaseFilter, window: Window
) -> list[ColumnElement[bool]]:
    """The WHERE of the alarm history: raised in `window`, in `scope`, matching `filt.search`."""
    a = AlarmRow
    where: list[ColumnElement[bool]] = [a.started_at >= window.since, a.started_at < window.until]
    scoped = scope_condition(scope)
    if scoped is not None:
        where.append(scoped)
    if filt.search:
        where.append(_search_condition(scope, filt.search))
    return where


# ---------------------------------------------------------------- pages


def _newest_first(query: AnySelect) -> AnySelect:
    return query.order_by(AlarmRow.started_at.desc(), AlarmRow.id.desc())


def _page_query(where: list[ColumnElement[bool]], limit: int) -> Select[*tuple[Any, ...]]:
    """A page's rows with their camera and place names. The page's keys are chosen first (a
    subquery on `alarms` alone), so the joins touch only the page's rows."""
    a = AlarmRow
    page = _newest_first(select(a.id, a.started_at).where(*where)).limit(limit).subquery()
    names = {level: aliased(NodeRow, name=f"{level.value}_node") for level in PLACE_LEVELS}
    query = (
        select(
            a.id,
            a.type,
            a.severity,
            a.status,
            a.started_at,
            a.acknowledged_at,
            a.acknowledged_by,
            a.ended_at,
            a.case_id,
            CameraRow.code.label("camera_code"),
            CameraRow.name.label("camera_name"),
            *(
                column.label(f"{level.value}_{lang}")
                for level, node in names.items()
                for lang, column in (("zh", node.name_zh), ("en", node.name_en))
            ),
        )
        .join(page, page.c.id == a.id)
        .join(CameraRow, CameraRow.id == a.camera_id)
    )
    for level, node in names.items():
        query = query.outerjoin(node, node.id == level_column_of(a, level))
    return _newest_first(query)


def _item(row: Any) -> AlarmListItem:
    place = {
        lang: " · ".join(
            n for n in (row._mapping[f"{lv.value}_{lang}"] for lv in PLACE_LEVELS) if n
        )
        for lang in ("zh", "en")
    }
    return AlarmListItem(
        id=row.id,
        type=AlarmType(row.type),
        severity=int(row.severity),
        status=AlarmStatus(row.status),
        started_at=row.started_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        ended_at=row.ended_at,
        camera_code=row.camera_code,
        camera_name=row.camera_name,
        place_zh=place["zh"],
        place_en=place["en"],
        case_id=row.case_id,
    )


def alarm_page(
    *,
    session: Session,
    scope: Scope,
    filt: CaseFilter,
    now: datetime,
    tz: tzinfo,
    after: str | None = None,
    limit: int = 100,
) -> AlarmPage:
    """The alarms of `filt`'s time range and search in `scope` after the cursor `after` (None:
    the first page), at most `limit`, newest first (then by id, descending). Raises
    `FilterError` for a bad limit or a cursor that is not this table's."""
    if not 1 <= limit <= MAX_LIMIT:
        raise FilterError("limit", f"between 1 and {MAX_LIMIT}")
    where = alarm_conditions(scope=scope, filt=filt, window=filt.window(now=now, tz=tz))
    if after:
        at, alarm_id = decode_cursor(after)
        where.append(tuple_(AlarmRow.started_at, AlarmRow.id) < tuple_(at, alarm_id))
    # One more than asked: whether there is a next page, without a count.
    rows = session.execute(_page_query(where, limit + 1)).all()
    items = [_item(r) for r in rows[:limit]]
    more = len(rows) > limit
    return AlarmPage(items, encode_cursor(items[-1].started_at, items[-1].id) if more else None)


def alarm_count(
    *, session: Session, scope: Scope, filt: CaseFilter, now: datetime, tz: tzinfo
) -> int:
    """How many alarms the history of `filt` in `scope` holds (the table's total)."""
    where = alarm_conditions(scope=scope, filt=filt, window=filt.window(now=now, tz=tz))
    return int(
        session.execute(select(func.count()).select_from(AlarmRow).where(*where)).scalar_one()
    )


def iter_alarms(
    *,
    session_factory: Callable[[], AbstractContextManager[Session]],
    scope: Scope,
    filt: CaseFilter,
    now: datetime,
    tz: tzinfo,
    chunk: int = 2_000,
) -> Iterator[AlarmListItem]:
    """Every alarm of `filt` in `scope`, in `alarm_page`'s order, for a streamed export: a page
    of `chunk` rows per session from `session_factory`, so memory stays flat and no transaction
    stays open while the consumer writes (as `cases.query.iter_cases`)."""
    after: str | None = None
    while True:
        with session_factory() as session:
            page = alarm_page(
                session=session, scope=scope, filt=filt, now=now, tz=tz, after=after, limit=chunk
            )
        yield from page.items
        if page.after is None:
            return
        after = page.after
