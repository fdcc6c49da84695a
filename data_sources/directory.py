"""An in-memory directory of the hierarchy, cameras and workers, for resolving incoming events.

Ingest turns a node code into its ancestor path, a camera code or worker code into its id and
location, with no query per event. Loaded once at start-up (≈150,000 nodes for the Kunming demo city:
a few seconds and a few tens of MB) and reloaded when the hierarchy changes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources.model import FACT_LEVELS, Level
from data_sources.schema import CameraRow, NodeRow, WorkerRow


@dataclass(frozen=True, slots=True)
class Place:
    """Where something is: its id (node, camera or worker) and the node ids from district down."""

    id: int
    path: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CameraPlace(Place):
    """A camera: where it is in the hierarchy and on the map, and its name (for live alarm items)."""

    lon: float
    lat: float
    name: str


@dataclass(frozen=True, slots=True)
class Bounds:
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contains(self, lon: float, lat: float) -> bool:
        return self.min_lon <= lon <= self.max_lon and self.min_lat <= lat <= self.max_lat


EARTH_RADIUS_M = 6_371_000


@dataclass(frozen=True, slots=True)
class Points:
    """Points by id (building centres, cameras) as id-sorted arrays: a few MB for a whole city, where
    dicts of float tuples would take tens; finding the points near one is one vectorised pass."""

    ids: np.ndarray
    lon: np.ndarray
    lat: np.ndarray

    @classmethod
    def build(cls, rows: Iterable[tuple[int, float, float]]) -> Points:
        data = np.array(list(rows), dtype=np.float64).reshape(-1, 3)
        order = np.argsort(data[:, 0], kind="stable")
        return cls(data[order, 0].astype(np.int64), data[order, 1], data[order, 2])

    @classmethod
    def empty(cls) -> Points:
        return cls.build(())

    def __len__(self) -> int:
        return len(self.ids)

    def at(self, point_id: int) -> tuple[float, float] | None:
        i = int(np.searchsorted(self.ids, point_id))
        if i < len(self.ids) and self.ids[i] == point_id:
            return float(self.lon[i]), float(self.lat[i])
        return None

    def near(self, lon: float, lat: float, metres: float) -> list[int]:
        """Ids of the points within `metres` of (lon, lat): great-circle distance (haversine), the
        same formula as `wall_layers.distance_m`, so the live layer and the SQL one agree."""
        p1, p2 = np.radians(lat), np.radians(self.lat)
        a = (
            np.sin((p2 - p1) / 2) ** 2
            + np.cos(p1) * np.cos(p2) * np.sin(np.radians(self.lon - lon) / 2) ** 2
        )
        within = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a)) <= metres
        return [int(i) for i in self.ids[within]]


#: Margin around the hierarchy's extent within which coordinates are accepted (~5 km).
BOUNDS_MARGIN_DEG = 0.05


@dataclass(frozen=True, slots=True)
class Directory:
    root_id: int | None
    nodes: dict[str, Place]
    cameras: dict[str, CameraPlace]
    workers: dict[str, Place]
    bounds: Bounds
    #: Node code by node id.
    codes: dict[int, str]
    #: Child node ids by parent id.
    children: dict[int, list[int]]
    #: Where each building and each camera (by id) stands.
    buildings_at: Points = field(default_factory=Points.empty)
    cameras_at: Points = field(default_factory=Points.empty)

    def children_of(self, node: int) -> list[int]:
        return self.children.get(node, [])

    def camera_paths(self) -> dict[int, tuple[int, ...]]:
        """Each camera's ancestor ids by camera id (a pass over the cameras: ~10 ms a city)."""
        return {camera.id: camera.path for camera in self.cameras.values()}


def _path(row: object) -> tuple[int, ...]:
    ids = [getattr(row, f"{level.value}_id") for level in FACT_LEVELS[:-1]]
    return tuple(i for i in ids if i is not None)


def load_directory(*, session: Session) -> Directory:
    """The directory of everything in the database."""
    nodes: dict[str, Place] = {}
    root_id = None
    min_lon = min_lat = 180.0
    max_lon = max_lat = -180.0
    children: dict[int, list[int]] = {}
    building_centres: list[tuple[int, float, float]] = []
    query = select(
        NodeRow.id,
        NodeRow.parent_id,
        NodeRow.code,
        NodeRow.level,
        NodeRow.lon,
        NodeRow.lat,
        NodeRow.district_id,
        NodeRow.street_id,
        NodeRow.community_id,
        NodeRow.grid_id,
    )
    for row in session.execute(query.order_by(NodeRow.code)):
        if row.parent_id is not None:
            children.setdefault(row.parent_id, []).append(row.id)
        if row.level == Level.CITY.value:
            root_id = row.id
            nodes[row.code] = Place(row.id, ())
            continue
        path = _path(row)
        if row.level == Level.BUILDING.value:
            path = (*path, row.id)
            building_centres.append((row.id, row.lon, row.lat))
        nodes[row.code] = Place(row.id, path)
        min_lon, max_lon = min(min_lon, row.lon), max(max_lon, row.lon)
        min_lat, max_lat = min(min_lat, row.lat), max(max_lat, row.lat)
    fact_columns = [getattr(CameraRow, f"{level.value}_id") for level in FACT_LEVELS]
    camera_columns = (CameraRow.id, CameraRow.code, CameraRow.name, CameraRow.lon, CameraRow.lat)
    cameras = {
        r.code: CameraPlace(
            r.id,
            (*_path(r), r.building_id) if r.building_id else _path(r),
            r.lon,
            r.lat,
            r.name,
        )
        for r in session.execute(select(*camera_columns, *fact_columns))
    }
    worker_columns = [getattr(WorkerRow, f"{level.value}_id") for level in FACT_LEVELS]
    workers = {
        r.code: Place(r.id, _path(r))
        for r in session.execute(select(WorkerRow.id, WorkerRow.code, *worker_columns))
    }
    m = BOUNDS_MARGIN_DEG
    bounds = Bounds(min_lon - m, min_lat - m, max_lon + m, max_lat + m)
    codes = {place.id: code for code, place in nodes.items()}
    cameras_at = Points.build((c.id, c.lon, c.lat) for c in cameras.values())
    return Directory(
        root_id,
        nodes,
        cameras,
        workers,
        bounds,
        codes,
        children,
        Points.build(building_centres),
        cameras_at,
    )


def empty_directory() -> Directory:
    """The directory of an empty database (nothing resolves)."""
    return Directory(None, {}, {}, {}, Bounds(0, 0, 0, 0), {}, {})
