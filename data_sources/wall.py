"""The figures of one scope for the command-centre wall `/wall`: the overview's KPIs and children plus
today's new cases, the status funnel, the categories, the 24-hour trend, today's channels, the latest
cases and alarms and the map areas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, literal, select, union_all
from sqlalchemy.orm import Session

from data_sources import store
from data_sources.access.model import Scope
from data_sources.level_scale import LoadScale, level_scale
from data_sources.model import FUNNEL, AlarmStatus, Channel, Level, Node
from data_sources.overview import Overview, load_overview
from data_sources.schema import AlarmRow, CameraRow, CaseRow, NodeRow
from data_sources.wall_geo import Area, areas_of
from data_sources.wall_layers import (
    ALARM_POINT_LEVELS,
    AlarmPoint,
    CameraPoint,
    WorkerPoint,
    active_alarms,
    alarms_per_child,
    scope_cameras,
    scope_workers,
    worker_node_id,
)
from data_sources.wall_layers import ON_DUTY as ON_DUTY  # the services' restart window

FEED_LENGTH = 6
ALARM_LENGTH = 6
#: How long a closed alarm stays on the ticker (the page's refresh drops it after that).
RECENTLY_CLOSED = timedelta(minutes=5)
CATEGORY_COUNT = 6
#: Hours of the trend panel, the current (partial) hour last.
TREND_HOURS = 24
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
    #: Where: the code of the scope's child it lies in (None at a building, which has none).
    area: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmItem:
    """One line of the alarm ticker; `place` is the camera's name, `area` the code of the scope's
    child the camera lies in (None at a building, or for a nearby camera of another grid)."""

    id: str
    type: str
    severity: int
    status: str
    at: datetime
    place: str
    #: The case the alarm was turned into, if any.
    case_id: str | None = None
    area: str | None = None


@dataclass(frozen=True, slots=True)
class Trend:
    """Cases reported and closed per hour over the last `TREND_HOURS` hours, oldest first.

    `hours` are the starts of the hours as naive UTC; the last one is the current, partial hour.
    """

    hours: list[datetime]
    reported: list[int]
    closed: list[int]
    #: When the counts were read (naive UTC).
    as_of: datetime


@dataclass(frozen=True, slots=True)
class WallFigures:
    overview: Overview
    new_today: int
    #: Cases of the window that reached each stage of `FUNNEL`, in its order.
    funnel: list[tuple[str, int]]
    #: The most frequent categories of the window, most frequent first.
    categories: list[tuple[str, int]]
    trend: Trend
    #: Today's cases per intake channel, every channel in `Channel` order (zeros included).
    channels: list[tuple[str, int]]
    cases: list[CaseItem]
    alarms: list[AlarmItem]
    #: The children's outlines (the map), and the scope's own.
    areas: list[Area]
    outline: Area | None
    #: The map's points: grid workers, single cameras (low levels only), active alarms.
    workers: list[WorkerPoint] = field(default_factory=list)
    cameras: list[CameraPoint] = field(default_factory=list)
    alarm_points: list[AlarmPoint] = field(default_factory=list)
    #: Above `ALARM_POINT_LEVELS`: open alarms per child by code, (all, high-severity ones).
    area_alarms: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: The colour scale of the map's areas (absolute for their level; None: no areas).
    scale: LoadScale | None = None

    @property
    def worker_total(self) -> int:
        """Grid workers serving the scope (a building is served by its grid's)."""
        scope = self.overview.scope
        if scope.node.level is Level.BUILDING:
            return len(self.workers)
        return scope.resources.workers


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


def hour_start(now: datetime) -> datetime:
    """The start of `now`'s hour (both naive UTC).

    Hours are UTC hours: the same as local hours in every zone with a whole-hour offset (China's).
    """
    return now.replace(minute=0, second=0, microsecond=0)


def _hour_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """`column` truncated to its hour, as text "YYYY-MM-DD HH" (portable across the two backends)."""
    if dialect == "postgresql":
        return func.to_char(column, "YYYY-MM-DD HH24")
    return func.strftime("%Y-%m-%d %H", column)


def trend(*, session: Session, node: Node, now: datetime, hours: int = TREND_HOURS) -> Trend:
    """Cases of `node` reported and closed in each of the last `hours` hours (the current one last).

    One statement: a GROUP BY per series over the indexed ancestor column, joined by UNION ALL.
    """
    current = hour_start(now)
    since = current - timedelta(hours=hours - 1)
    dialect = session.get_bind().dialect.name
    c = CaseRow
    series = []
    for name, column in (("reported", c.reported_at), ("closed", c.closed_at)):
        hour = _hour_of(column, dialect).label("hour")
        query = select(literal(name).label("series"), hour, func.count().label("n")).where(
            column >= since, column < current + timedelta(hours=1)
        )
        series.append(_scoped(query, c, node).group_by(hour))
    starts = [since + timedelta(hours=i) for i in range(hours)]
    index = {start.strftime("%Y-%m-%d %H"): i for i, start in enumerate(starts)}
    counts = {"reported": [0] * hours, "closed": [0] * hours}
    for row in session.execute(union_all(*series)):
        i = index.get(str(row.hour))
        if i is not None:
            counts[str(row.series)][i] = int(row.n)
    return Trend(starts, counts["reported"], counts["closed"], now)


def channels(*, session: Session, node: Node, since: datetime) -> list[tuple[str, int]]:
    """Cases of `node` reported since `since` per intake channel, every channel (0 when none)."""
    query = (
        select(CaseRow.channel, func.count())
        .where(CaseRow.reported_at >= since)
        .group_by(CaseRow.channel)
    )
    found = {str(k): int(v) for k, v in session.execute(_scoped(query, CaseRow, node))}
    known = [(ch.value, found.pop(ch.value, 0)) for ch in Channel]
    return known + sorted(found.items())  # a channel the model does not know yet still counts


def _child_column(table: Any, node: Node) -> Any:
    """The ancestor-id column of `table` at the level of `node`'s children (None at a building)."""
    child = node.level.child
    return getattr(table, f"{child.value}_id") if child is not None else None


def _codes(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    query = select(NodeRow.id, NodeRow.code).where(NodeRow.id.in_(wanted))
    return {int(r.id): str(r.code) for r in session.execute(query)}


def latest_cases(*, session: Session, node: Node, limit: int = FEED_LENGTH) -> list[CaseItem]:
    """The scope's newest cases, each with the child of the scope it lies in."""
    rows = store.latest_cases(session=session, node=node, limit=limit)
    child = node.level.child
    areas = [getattr(c, f"{child.value}_id") if child else None for c in rows]
    codes = _codes(session, areas)
    return [
        CaseItem(c.id, c.title, c.category, c.status, c.reported_at, codes.get(area or 0))
        for c, area in zip(rows, areas, strict=True)
    ]


def latest_alarms(
    *,
    session: Session,
    node: Node,
    limit: int = ALARM_LENGTH,
    cameras: list[int] | None = None,
    now: datetime | None = None,
) -> list[AlarmItem]:
    """The alarms of `node` (of `cameras` when given) for the ticker: those still waiting for
    action (active or acknowledged), the most severe first and newest first within a severity,
    then those closed in the last `RECENTLY_CLOSED` before `now` (any, without `now`), most
    recently closed first, to fill `limit`. A closed alarm leaves the ticker a few minutes on."""
    a = AlarmRow
    child = _child_column(a, node)
    area = child.label("area") if child is not None else literal(None).label("area")
    query = select(
        a.id, a.type, a.severity, a.status, a.started_at, CameraRow.name, a.case_id, area
    ).join(CameraRow, CameraRow.id == a.camera_id)
    closed: ColumnElement[bool] = a.status.not_in(_OPEN_ALARM)
    if now is not None:
        closed = closed & (a.ended_at >= now - RECENTLY_CLOSED)
    pages = (
        query.where(a.status.in_(_OPEN_ALARM)).order_by(
            a.severity.desc(), a.started_at.desc(), a.id.desc()
        ),
        query.where(closed).order_by(a.ended_at.desc(), a.id.desc()),
    )
    items: list[AlarmItem] = []
    for page in pages:
        page = page.limit(limit - len(items))
        if cameras is not None:
            page = page.where(a.camera_id.in_(cameras))
        rows = session.execute(page if cameras is not None else _scoped(page, a, node)).all()
        codes = _codes(session, (r.area for r in rows))
        items += [
            AlarmItem(
                r.id,
                r.type,
                int(r.severity),
                r.status,
                r.started_at,
                r.name,
                r.case_id,
                codes.get(r.area or 0),
            )
            for r in rows
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
    """Workers whose latest fix (path of node ids, time) is in `node` (a building: its grid) and
    recent enough."""
    since = now - ON_DUTY
    city = node.level is Level.CITY
    _, where = worker_node_id(node)
    return sum(1 for path, ts in fixes if ts >= since and (city or where in path))


def load_wall(
    *,
    session: Session,
    scope: Scope,
    now: datetime,
    tz: ZoneInfo,
    window_days: int,
    open_now: Callable[[int], int] | None = None,
    areas: Callable[[Node], tuple[list[Area], Area | None]] | None = None,
) -> WallFigures | None:
    """The wall's figures for `scope` (resolved and checked by `access.scope.resolve_scope`);
    None when its node is not in the store.

    `areas` may serve the map outlines from a cache (they change only with the hierarchy).
    """
    overview = load_overview(
        session=session, scope=scope, now=now, window_days=window_days, open_now=open_now
    )
    if overview is None:
        return None
    node = overview.scope.node
    kids, outline = areas(node) if areas is not None else map_areas(session=session, node=node)
    cameras = scope_cameras(session=session, node=node)
    # A building's alarms are those of the cameras that watch it, not only its own.
    nearby = [c.id for c in cameras] if node.level is Level.BUILDING else None
    today = day_start(now, tz)
    return WallFigures(
        overview=overview,
        new_today=new_cases(session=session, node=node, since=today),
        funnel=funnel(session=session, node=node, since=overview.since),
        categories=categories(session=session, node=node, since=overview.since),
        trend=trend(session=session, node=node, now=now),
        channels=channels(session=session, node=node, since=today),
        cases=latest_cases(session=session, node=node),
        alarms=latest_alarms(session=session, node=node, cameras=nearby, now=now),
        areas=kids,
        outline=outline,
        workers=scope_workers(session=session, node=node, now=now),
        cameras=cameras,
        alarm_points=active_alarms(session=session, node=node, cameras=nearby)
        if node.level in ALARM_POINT_LEVELS
        else [],
        area_alarms={}
        if node.level in ALARM_POINT_LEVELS
        else alarms_per_child(session=session, node=node),
        scale=level_scale(session=session, level=node.level.child),
    )
