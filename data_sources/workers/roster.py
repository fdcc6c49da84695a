"""The grid workers of a scope (网格力量) with their phone's last fix, whether they are on duty, how
far they walked today and how many grids they went through, for the leaders' follow-up list.

"Today" is the local day in the deployment's zone (the filter bar's 今日); "on duty" is
the wall's rule (`wall_layers.ON_DUTY`). The list holds every worker of the scope, whatever
their role (grid workers, inspectors, supervisors, volunteers: the table has a role column):
a district has ~500, the city ~7,000, so it is one bounded list, sorted in the browser.

Distance and grids come from one pass over today's fixes of the scope's workers, read in batches
of `FIX_BATCH` workers through the (worker_id, ts) index: only today's rows are touched, however
long the positions history. Positions carry no grid: each fix is located in the grid outlines
(`nodes.geometry`) of its worker's district through a shapely `STRtree`, built once per
district and kept by `GridOutlines`. A district's tree, not the scope's: a worker seen from
their grid's page must show the neighbouring grid they crossed into, as seen from the district.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import numpy as np
import shapely
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, aliased

from data_sources.access.model import Scope
from data_sources.cases.filters import CaseFilter, Period, Window
from data_sources.cases.sql import level_column_of
from data_sources.directory import EARTH_RADIUS_M
from data_sources.model import Level, WorkerRole
from data_sources.schema import NodeRow, PositionRow, WorkerRow
from data_sources.wall_layers import ON_DUTY

#: Workers per query of today's fixes: ~50,000 rows by the evening at one fix per 15 minutes,
#: a few MB of arrays at a time, whatever the scope.
FIX_BATCH = 500
#: The most workers a roster lists (the city has ~7,000): a bound on the query, not a page.
MAX_WORKERS = 20_000
#: How long a district's grid outlines are kept before they are read again (they change only
#: when the hierarchy is re-seeded).
OUTLINES_TTL_S = 3_600.0


@dataclass(frozen=True, slots=True)
class WorkerItem:
    """One row of the worker list and of its export."""

    id: int
    code: str
    name: str
    role: WorkerRole
    #: The grid they look after (None for one who has none).
    grid_code: str | None
    grid_zh: str | None
    grid_en: str | None
    #: Their phone's newest fix (None: never sent one), and how old it is at `now`.
    last_fix_at: datetime | None
    fix_age: timedelta | None
    #: A fix within `ON_DUTY` of `now` (在岗), as the wall counts them.
    on_duty: bool
    #: Metres along today's fixes (great-circle between consecutive fixes, since local midnight).
    distance_today_m: float
    #: Distinct grids today's fixes fell in (in their district).
    grids_today: int
    fixes_today: int


# ---------------------------------------------------------------- grid outlines


@dataclass(frozen=True, slots=True)
class Outlines:
    """The grid outlines of one district as an STRtree, and the node id of each of its items."""

    tree: shapely.STRtree
    ids: np.ndarray

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(index of a point, node id of a grid it lies in) for every such pair (a point on the
        border of two grids is in both)."""
        if len(self.ids) == 0 or len(lon) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        points, grids = self.tree.query(shapely.points(lon, lat), predicate="intersects")
        return points, self.ids[grids]


def load_outlines(*, session: Session, district_id: int | None) -> Outlines:
    """The grids of district `district_id` (None: every grid of the city) as `Outlines`."""
    n = NodeRow
    query = select(n.id, n.geometry).where(n.level == Level.GRID.value)
    if district_id is not None:
        query = query.where(n.district_id == district_id)
    rows = session.execute(query.order_by(n.id)).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    shapes = shapely.from_geojson(np.array([r.geometry for r in rows], dtype=object))
    return Outlines(shapely.STRtree(shapes), ids)


class GridOutlines:
    """`Outlines` by district, each read once and kept `ttl_s` seconds. One per app (created in
    `register`): the key space is the districts (~15), so it needs no eviction; two threads
    asking at once may both build a tree, and one of them is kept (the same tree)."""

    def __init__(
        self, ttl_s: float = OUTLINES_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._kept: dict[int | None, tuple[float, Outlines]] = {}
        self._lock = threading.Lock()

    def get(self, *, session: Session, district_id: int | None) -> Outlines:
        now = self._clock()
        with self._lock:
            kept = self._kept.get(district_id)
        if kept is not None and now - kept[0] < self._ttl_s:
            return kept[1]
        outlines = load_outlines(session=session, district_id=district_id)
        with self._lock:
            self._kept[district_id] = (now, outlines)
        return outlines


# ---------------------------------------------------------------- today's tracks


def haversine_m(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    """Great-circle metres between pairs of points: `wall_layers.distance_m`, vectorised (a test
    holds them equal)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    )
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0))))


@dataclass(frozen=True, slots=True)
class _Moves:
    """What today's fixes of one worker add up to."""

    metres: float
    grids: int
    fixes: int


def today_window(now: datetime, tz: tzinfo) -> Window:
    """The local day of `now` in `tz`, midnight to midnight, as naive UTC: the filter bar's
    today (a custom range of one day). Its whole day, not up to `now`: a phone whose clock runs
    a few seconds ahead of the server's still walked today."""
    day = now.replace(tzinfo=UTC).astimezone(tz).date()
    return CaseFilter(period=Period.CUSTOM, start=day, end=day).window(now=now, tz=tz)


def _moves(
    *,
    session: Session,
    districts: dict[int, int | None],
    today: Window,
    outlines: GridOutlines,
) -> dict[int, _Moves]:
    """Today's distance, grids and fixes of the workers `districts` (worker id → district id),
    from their fixes in `today`, in (ts, id) order per worker, `FIX_BATCH` workers a query."""
    p = PositionRow
    found: dict[int, _Moves] = {}
    ids = sorted(districts)
    for start in range(0, len(ids), FIX_BATCH):
        rows = session.execute(
            select(p.worker_id, p.lon, p.lat)
            .where(
                p.worker_id.in_(ids[start : start + FIX_BATCH]),
                p.ts >= today.since,
                p.ts < today.until,
            )
            .order_by(p.worker_id, p.ts, p.id)
        ).all()
        if rows:
            found |= _batch_moves(session, rows, districts, outlines)
    return found


def _batch_moves(
    session: Session,
    rows: Sequence[Any],
    districts: dict[int, int | None],
    outlines: GridOutlines,
) -> dict[int, _Moves]:
    """What `rows` (worker id, lon, lat), ordered by worker then time, add up to per worker."""
    n = len(rows)
    worker = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    lon = np.fromiter((r[1] for r in rows), dtype=np.float64, count=n)
    lat = np.fromiter((r[2] for r in rows), dtype=np.float64, count=n)
    workers, index, fixes = np.unique(worker, return_inverse=True, return_counts=True)
    # A step joins consecutive fixes of the same worker.
    same = index[1:] == index[:-1]
    steps = haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:]) * same
    metres = np.bincount(index[1:], weights=steps, minlength=len(workers))
    # Each fix in the grids of its worker's district; a worker's grids are the distinct ones.
    grids = np.zeros(len(workers), dtype=np.int64)
    district_of = np.array([d if (d := districts[int(w)]) is not None else -1 for w in workers])
    row_district = district_of[index]
    for district in np.unique(row_district):
        here = np.flatnonzero(row_district == district)
        tree = outlines.get(session=session, district_id=None if district == -1 else int(district))
        points, grid_ids = tree.locate(lon[here], lat[here])
        visits = np.unique(np.stack([index[here][points], grid_ids]), axis=1)
        grids += np.bincount(visits[0], minlength=len(workers))
    return {
        int(w): _Moves(float(metres[i]), int(grids[i]), int(fixes[i]))
        for i, w in enumerate(workers)
    }


# ---------------------------------------------------------------- the roster


def _scope_condition(scope: Scope) -> ColumnElement[bool] | None:
    """The workers of `scope`: a building's are its grid's (as `wall_layers.worker_node_id`)."""
    if scope.level is Level.CITY:
        return None
    if scope.level is Level.BUILDING and len(scope.path) >= 2:
        return WorkerRow.grid_id == scope.path[-2]
    return level_column_of(WorkerRow, scope.level) == scope.id


def worker_roster(
    *,
    session: Session,
    scope: Scope,
    now: datetime,
    tz: tzinfo,
    outlines: GridOutlines | None = None,
) -> list[WorkerItem]:
    """The workers of `scope` by name (then code), each with their last fix, on duty or not at
    `now`, and today's distance and grids; `outlines` keeps the grid trees between calls."""
    w, p = WorkerRow, PositionRow
    grid = aliased(NodeRow, name="grid_node")
    # The newest fix per worker through the (worker_id, ts) index: one index probe per worker,
    # never a scan of the positions history (as `wall_layers.scope_workers`).
    newest = select(func.max(p.ts)).where(p.worker_id == w.id).correlate(w).scalar_subquery()
    query = (
        select(
            w.id,
            w.code,
            w.name,
            w.role,
            w.district_id,
            grid.code.label("grid_code"),
            grid.name_zh.label("grid_zh"),
            grid.name_en.label("grid_en"),
            newest.label("last_fix"),
        )
        .outerjoin(grid, grid.id == w.grid_id)
        .order_by(w.name, w.code)
        .limit(MAX_WORKERS)
    )
    scoped = _scope_condition(scope)
    if scoped is not None:
        query = query.where(scoped)
    rows = session.execute(query).all()
    moves = _moves(
        session=session,
        districts={r.id: r.district_id for r in rows},
        today=today_window(now, tz),
        outlines=outlines or GridOutlines(),
    )
    on_since = now - ON_DUTY
    items = []
    for r in rows:
        moved = moves.get(r.id, _Moves(0.0, 0, 0))
        items.append(
            WorkerItem(
                id=r.id,
                code=r.code,
                name=r.name,
                role=WorkerRole(r.role),
                grid_code=r.grid_code,
                grid_zh=r.grid_zh,
                grid_en=r.grid_en,
                last_fix_at=r.last_fix,
                fix_age=None if r.last_fix is None else max(timedelta(0), now - r.last_fix),
                on_duty=r.last_fix is not None and r.last_fix >= on_since,
                distance_today_m=moved.metres,
                grids_today=moved.grids,
                fixes_today=moved.fixes,
            )
        )
    return items


def iter_workers(
    *,
    session_factory: Callable[[], AbstractContextManager[Session]],
    scope: Scope,
    now: datetime,
    tz: tzinfo,
    outlines: GridOutlines | None = None,
) -> Iterator[WorkerItem]:
    """The roster for an export, in `worker_roster`'s order. One bounded list (≤ `MAX_WORKERS`,
    a few MB for the city), read in one session that is closed before the first row is
    written."""
    with session_factory() as session:
        items = worker_roster(session=session, scope=scope, now=now, tz=tz, outlines=outlines)
    yield from items
