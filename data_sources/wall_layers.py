"""The wall map's point layers for one scope: grid workers, cameras and active alarms.

Only what the scope needs is read. Cameras are single points from the community level down; above
it the map shows a count per child area instead (a city holds ~50,000 cameras: never send them all).
At a building the cameras are those "nearby": in the building's grid or within `NEARBY_M` metres, in
the building's own community (an account's area is a community or larger: a building's wall never
shows what lies outside an area its viewer may see).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import Session

from data_sources.directory import EARTH_RADIUS_M
from data_sources.model import HIGH_SEVERITY as HIGH_SEVERITY  # the map and the ticker
from data_sources.model import AlarmStatus, Level, Node, WorkerRole
from data_sources.schema import AlarmRow, CameraRow, NodeRow, PositionRow, WorkerRow

#: A grid worker whose phone sent a fix this recently is on duty (在岗).
ON_DUTY = timedelta(minutes=30)
#: Levels whose map shows single cameras (above: a count per child).
CAMERA_LEVELS = frozenset({Level.COMMUNITY, Level.GRID, Level.BUILDING})
#: Levels whose map shows single workers (above: the on-duty tile and the ranking say enough).
WORKER_LEVELS = frozenset({Level.STREET, Level.COMMUNITY, Level.GRID, Level.BUILDING})
#: A camera this close to a building watches it (metres).
NEARBY_M = 300.0
#: Levels whose map shows single alarm markers (above: a count per child area on its label).
ALARM_POINT_LEVELS = frozenset({Level.STREET, Level.COMMUNITY, Level.GRID, Level.BUILDING})
#: Active alarms drawn at most (the most severe, then the newest).
ALARM_POINTS = 500
_OPEN_ALARM = (AlarmStatus.ACTIVE.value, AlarmStatus.ACKNOWLEDGED.value)
_M_PER_DEG = 111_320.0
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True, slots=True)
class WorkerPoint:
    """A grid worker (网格员) and the latest fix of their phone (None: never sent one)."""

    code: str
    name: str
    lon: float | None
    lat: float | None
    at: datetime | None
    on_duty: bool


@dataclass(frozen=True, slots=True)
class CameraPoint:
    id: int
    code: str
    name: str
    lon: float
    lat: float


@dataclass(frozen=True, slots=True)
class AlarmPoint:
    """An active (or acknowledged) alarm at its camera."""

    id: str
    type: str
    severity: int
    status: str
    at: datetime
    camera: str
    lon: float
    lat: float


def worker_node_id(node: Node) -> tuple[Level, int]:
    """The (level, id) whose workers serve `node`: a building's are its grid's."""
    if node.level is Level.BUILDING and node.parent_id is not None:
        return Level.GRID, node.parent_id
    return node.level, node.id


def _where(table: Any, level: Level, node_id: int) -> ColumnElement[bool] | None:
    if level is Level.CITY:
        return None
    column: ColumnElement[bool] = getattr(table, f"{level.value}_id") == node_id
    return column


def _scoped(query: AnySelect, condition: ColumnElement[bool] | None) -> AnySelect:
    return query if condition is None else query.where(condition)


def scope_workers(
    *,
    session: Session,
    node: Node,
    now: datetime,
) -> list[WorkerPoint]:
    """The grid workers serving `node` (none above `WORKER_LEVELS`) with their latest fix, on duty
    when that fix is within `ON_DUTY` of `now`; by name."""
    if node.level not in WORKER_LEVELS:
        return []
    level, node_id = worker_node_id(node)
    w, p = WorkerRow, PositionRow
    # The newest fix per worker through the (worker_id, ts) index: one index probe per worker,
    # never a scan of the positions history (millions of rows in a living city).
    newest = select(func.max(p.ts)).where(p.worker_id == w.id).correlate(w).scalar_subquery()
    query = (
        select(w.id, w.code, w.name, p.ts, p.lon, p.lat)
        .outerjoin(p, (p.worker_id == w.id) & (p.ts == newest))
        .where(w.role == WorkerRole.GRID_WORKER.value)
        .order_by(w.name, w.code)
    )
    since = now - ON_DUTY
    points: list[WorkerPoint] = []
    seen: set[int] = set()
    for r in session.execute(_scoped(query, _where(w, level, node_id))):
        if r.id in seen:
            continue  # two fixes at the same newest instant
        seen.add(r.id)
        on = r.ts is not None and r.ts >= since
        points.append(WorkerPoint(r.code, r.name, r.lon, r.lat, r.ts, on))
    return points


def _near(lat: float, metres: float) -> tuple[float, float]:
    """Half-sizes (degrees of longitude, of latitude) of a box of `metres` at latitude `lat`."""
    return metres / (_M_PER_DEG * math.cos(math.radians(lat))), metres / _M_PER_DEG


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def scope_cameras(*, session: Session, node: Node) -> list[CameraPoint]:
    """The cameras a map of `node` shows one by one (none above `CAMERA_LEVELS`): the scope's own,
    at a building those of its grid and those of its community within `NEARBY_M`."""
    if node.level not in CAMERA_LEVELS:
        return []
    c = CameraRow
    query = select(c.id, c.code, c.name, c.lon, c.lat).order_by(c.code)
    if node.level is not Level.BUILDING:
        rows = session.execute(query.where(_where(c, node.level, node.id))).all()  # type: ignore[arg-type]
        return [CameraPoint(r.id, r.code, r.name, r.lon, r.lat) for r in rows]
    dlon, dlat = _near(node.lat, NEARBY_M)
    box = c.lon.between(node.lon - dlon, node.lon + dlon) & c.lat.between(
        node.lat - dlat, node.lat + dlat
    )
    grid = node.parent_id
    community = session.scalar(select(NodeRow.community_id).where(NodeRow.id == node.id))
    near = [box & (c.community_id == community), c.building_id == node.id]
    if grid is not None:  # (`grid_id == None` would read every camera without a grid)
        near.append(c.grid_id == grid)
    columns = (c.grid_id, c.building_id, c.community_id)
    rows = session.execute(query.add_columns(*columns).where(or_(*near))).all()
    return [
        CameraPoint(r.id, r.code, r.name, r.lon, r.lat)
        for r in rows
        if r.building_id == node.id
        or (grid is not None and r.grid_id == grid)
        or (
            r.community_id == community and distance_m(node.lon, node.lat, r.lon, r.lat) <= NEARBY_M
        )
    ]


def active_alarms(
    *,
    session: Session,
    node: Node,
    cameras: list[int] | None = None,
    limit: int = ALARM_POINTS,
) -> list[AlarmPoint]:
    """Active and acknowledged alarms of `node` (or of `cameras` when given) at their cameras, the
    most severe first, then the newest."""
    a, c = AlarmRow, CameraRow
    query = (
        select(a.id, a.type, a.severity, a.status, a.started_at, c.name, c.lon, c.lat)
        .join(c, c.id == a.camera_id)
        .where(a.status.in_(_OPEN_ALARM))
        .order_by(a.severity.desc(), a.started_at.desc(), a.id)
        .limit(limit)
    )
    if cameras is not None:
        query = query.where(a.camera_id.in_(cameras))
    else:
        query = _scoped(query, _where(a, node.level, node.id))
    return [
        AlarmPoint(r.id, r.type, int(r.severity), r.status, r.started_at, r.name, r.lon, r.lat)
        for r in session.execute(query)
    ]


def alarms_per_child(*, session: Session, node: Node) -> dict[str, tuple[int, int]]:
    """Open (active or acknowledged) alarms of each child of `node` with any, by the child's code:
    (all, high-severity ones). One GROUP BY over the children's ancestor column."""
    child = node.level.child
    if child is None:
        return {}
    a = AlarmRow
    column: Any = getattr(a, f"{child.value}_id")
    high = func.sum(case((a.severity >= HIGH_SEVERITY, 1), else_=0))
    query = (
        select(NodeRow.code, func.count(), high)
        .join(NodeRow, NodeRow.id == column)
        .where(a.status.in_(_OPEN_ALARM))
        .group_by(NodeRow.code)
    )
    rows = session.execute(_scoped(query, _where(a, node.level, node.id)))
    return {str(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows}
