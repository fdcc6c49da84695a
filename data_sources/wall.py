"""The figures of one scope for the command-centre wall `/wall`: the overview's KPIs and children plus
today's new cases, the status funnel, the categories, the latest cases and alarms and the map areas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from data_sources import store
from data_sources.model import FUNNEL, AlarmStatus, Level, Node
from data_sources.overview import Overview, load_overview
from data_sources.schema import AlarmRow, CameraRow, CaseRow, NodeRow
from data_sources.wall_geo import Area, areas_of

FEED_LENGTH = 6
ALARM_LENGTH = 8
CATEGORY_COUNT = 6
#: A grid worker whose phone sent a fix this recently is on duty (在岗).
ON_DUTY = timedelta(minutes=30)
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])
_OPEN_ALARM = (AlarmStatus.ACTIVE.value, AlarmStatus.ACKNOWLEDGED.value)


@dataclass(frozen=True, slots=True)
class CaseItem:
    """One line of the live case feed."""

    id: str
    title: str
    category: str
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AlarmItem:
    """One line of the alarm ticker; `place` is the camera's name."""

    id: str
    type: str
    severity: int
    status: str
    at: datetime
    place: str


@dataclass(frozen=True, slots=True)
class WallFigures:
    overview: Overview
    new_today: int
    #: Cases of the window that reached each stage of `FUNNEL`, in its order.
    funnel: list[tuple[str, int]]
    #: The most frequent categories of the window, most frequent first.
    categories: list[tuple[str, int]]
    cases: list[CaseItem]
    alarms: list[AlarmItem]
    #: The children's outlines (the map), and the scope's own.
    areas: list[Area]
    outline: Area | None


def _scoped(query: AnySelect, table: Any, node: Node) -> AnySelect:
    """`query` restricted to the facts of `node` (through their ancestor-id column)."""
    if node.level is Level.CITY:
        return query
    return query.where(getattr(table, f"{node.level.value}_id") == node.id)


def day_start(now: datetime, tz: ZoneInfo) -> datetime:
    """Local midnight of `now`'s day in `tz`, as naive UTC (both naive UTC, as the store is)."""
    local = now.replace(tzinfo=UTC).astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC).replace(tzinfo=None)


def new_cases(*, session: Session, node: Node, since: datetime) -> int:
    """Cases of `node` reported since `since` (今日新增 with `since` = local midnight)."""
    query = select(func.count()).select_from(CaseRow).where(CaseRow.reported_at >= since)
    return int(session.scalar(_scoped(query, CaseRow, node)) or 0)


def funnel(*, session: Session, node: Node, since: datetime) -> list[tuple[str, int]]:
    """How many cases reported since `since` reached each stage: 上报→受理→派遣→处置→结案."""
    c = CaseRow
    reached = {
        "reported": func.count(),
        "accepted": func.count(c.accepted_at),
        "dispatched": func.count(c.dispatched_at),
        "handled": func.count(c.handled_at),
        "closed": func.count(c.closed_at),
    }
    assert tuple(reached) == tuple(s.value for s in FUNNEL)
    query = select(*reached.values()).where(c.reported_at >= since)
    row = session.execute(_scoped(query, c, node)).one()
    return [(stage, int(n or 0)) for stage, n in zip(reached, row, strict=True)]


def categories(
    *, session: Session, node: Node, since: datetime, limit: int = CATEGORY_COUNT
) -> list[tuple[str, int]]:
    """The `limit` most frequent categories of cases reported since `since`."""
    n = func.count().label("n")
    query = (
        select(CaseRow.category, n)
        .where(CaseRow.reported_at >= since)
        .group_by(CaseRow.category)
        .order_by(n.desc(), CaseRow.category)
        .limit(limit)
    )
    return [(str(k), int(v)) for k, v in session.execute(_scoped(query, CaseRow, node))]


def latest_cases(*, session: Session, node: Node, limit: int = FEED_LENGTH) -> list[CaseItem]:
    return [
        CaseItem(c.id, c.title, c.category, c.status, c.reported_at)
        for c in store.latest_cases(session=session, node=node, limit=limit)
    ]


def latest_alarms(*, session: Session, node: Node, limit: int = ALARM_LENGTH) -> list[AlarmItem]:
    """The alarms of `node` for the ticker: those still waiting for action (active or
    acknowledged), newest first, then the most recently closed ones to fill `limit`."""
    a = AlarmRow
    query = (
        select(a.id, a.type, a.severity, a.status, a.started_at, CameraRow.name)
        .join(CameraRow, CameraRow.id == a.camera_id)
        .order_by(a.started_at.desc(), a.id.desc())
    )
    items: list[AlarmItem] = []
    for where in (a.status.in_(_OPEN_ALARM), a.status.not_in(_OPEN_ALARM)):
        rows = session.execute(_scoped(query.where(where).limit(limit - len(items)), a, node))
        items += [
            AlarmItem(r.id, r.type, int(r.severity), r.status, r.started_at, r.name) for r in rows
        ]
        if len(items) >= limit:
            break
    return items


def _geometries(session: Session, where: Any) -> list[tuple[Node, str]]:
    n = NodeRow
    query = select(
        n.id, n.code, n.level, n.parent_id, n.name_zh, n.name_en, n.lon, n.lat, n.geometry
    )
    return [
        (Node(r.id, r.code, Level(r.level), r.parent_id, r.name_zh, r.name_en, r.lon, r.lat), r[8])
        for r in session.execute(query.where(where).order_by(n.code))
    ]


def map_areas(*, session: Session, node: Node) -> tuple[list[Area], Area | None]:
    """(the children's areas, the scope's own area), simplified for the scope's extent."""
    own = _geometries(session, NodeRow.id == node.id)
    kids = _geometries(session, NodeRow.parent_id == node.id)
    areas = areas_of([*own, *kids])
    return areas[len(own) :], (areas[0] if own else None)


def on_duty(fixes: Iterable[tuple[tuple[int, ...], datetime]], node: Node, now: datetime) -> int:
    """Workers whose latest fix (path of node ids, time) is in `node` and recent enough."""
    since = now - ON_DUTY
    city = node.level is Level.CITY
    return sum(1 for path, ts in fixes if ts >= since and (city or node.id in path))


def load_wall(
    *,
    session: Session,
    code: str | None,
    now: datetime,
    tz: ZoneInfo,
    window_days: int,
    open_now: Callable[[int], int] | None = None,
    areas: Callable[[Node], tuple[list[Area], Area | None]] | None = None,
) -> WallFigures | None:
    """The wall's figures for node `code` (the root when None or unknown); None when empty.

    `areas` may serve the map outlines from a cache (they change only with the hierarchy).
    """
    overview = load_overview(
        session=session, code=code, now=now, window_days=window_days, open_now=open_now
    )
    if overview is None:
        return None
    node = overview.scope.node
    kids, outline = areas(node) if areas is not None else map_areas(session=session, node=node)
    return WallFigures(
        overview=overview,
        new_today=new_cases(session=session, node=node, since=day_start(now, tz)),
        funnel=funnel(session=session, node=node, since=overview.since),
        categories=categories(session=session, node=node, since=overview.since),
        cases=latest_cases(session=session, node=node),
        alarms=latest_alarms(session=session, node=node),
        areas=kids,
        outline=outline,
    )
