"""The wall map's point layers (data_sources/wall_layers.py) on SQLite and PostgreSQL, checked
against plain Python over the same rows, and their GeoJSON (layouts/wall_map.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from data_sources import store
from data_sources.directory import load_directory
from data_sources.model import AlarmStatus, Level, Node
from data_sources.schema import AlarmRow, CameraRow, CaseRow, PositionRow, WorkerRow
from data_sources.seed.city import SeedReport
from data_sources.wall import ALARM_LENGTH, latest_alarms, load_wall, on_duty
from data_sources.wall_geo import Area
from data_sources.wall_layers import (
    NEARBY_M,
    AlarmPoint,
    CameraPoint,
    WorkerPoint,
    active_alarms,
    distance_m,
    scope_cameras,
    scope_workers,
)
from layouts.wall_map import alarms_data, cameras_data, labels_data, viewport, workers_data

from .conftest import AS_OF, TZ, area

PANLONG = "530103"
COMMUNITY = "530103004001"
GRID = "530103004001001"
BUILDING = "530103004001001006"
OPEN = (AlarmStatus.ACTIVE.value, AlarmStatus.ACKNOWLEDGED.value)


def _node(session: Session, code: str) -> Node:
    node = store.node_by_code(session=session, code=code)
    assert node is not None
    return node


def test_distance_is_great_circle_metres() -> None:
    assert distance_m(102.7, 25.0, 102.7, 25.001) == pytest.approx(111.2, abs=0.5)
    assert distance_m(102.7, 25.0, 102.7, 25.0) == 0


def test_workers_are_the_grids_with_their_latest_fix(seeded: tuple[Engine, SeedReport]) -> None:
    now = AS_OF + timedelta(minutes=20)  # the seed's fixes span 05:45–06:00: some gone quiet
    with Session(seeded[0]) as session:
        grid, building = _node(session, GRID), _node(session, BUILDING)
        street = _node(session, "530103004")
        rows = session.execute(
            select(WorkerRow.id, WorkerRow.code, WorkerRow.name).where(
                WorkerRow.grid_id == grid.id, WorkerRow.role == "grid_worker"
            )
        ).all()
        latest = {
            r.id: session.execute(
                select(PositionRow.ts, PositionRow.lon, PositionRow.lat)
                .where(PositionRow.worker_id == r.id)
                .order_by(PositionRow.ts.desc())
                .limit(1)
            ).one()
            for r in rows
        }
        expected = {
            r.code: (
                latest[r.id].lon,
                latest[r.id].lat,
                latest[r.id].ts >= now - timedelta(minutes=30),
            )
            for r in rows
        }
        workers = scope_workers(session=session, node=grid, now=now)
        assert {w.code: (w.lon, w.lat, w.on_duty) for w in workers} == expected
        assert len(workers) > 0
        # A building is served by its grid's workers; a street shows its workers too.
        assert scope_workers(session=session, node=building, now=now) == workers
        on_street = scope_workers(session=session, node=street, now=now)
        assert {w.code for w in workers} <= {w.code for w in on_street}
        # Too many to draw at district level: the tiles and the ranking count them instead.
        assert scope_workers(session=session, node=_node(session, PANLONG), now=now) == []


def test_cameras_of_a_community_and_near_a_building(seeded: tuple[Engine, SeedReport]) -> None:
    with Session(seeded[0]) as session:
        community = _node(session, COMMUNITY)
        own = scope_cameras(session=session, node=community)
        expected = session.scalars(
            select(CameraRow.code).where(CameraRow.community_id == community.id)
        ).all()
        assert sorted(c.code for c in own) == sorted(expected) and own

        everything = session.execute(
            select(CameraRow.id, CameraRow.grid_id, CameraRow.lon, CameraRow.lat)
        ).all()
        directory = load_directory(session=session)
        # 1-6号楼's nearest camera outside its grid is ~630 m away; 4-3号楼 has 8 within 300 m.
        for code, others in ((BUILDING, False), ("530103004002004003", True)):
            near = _node(session, code)
            wanted = {
                c.id
                for c in everything
                if c.grid_id == near.parent_id
                or distance_m(near.lon, near.lat, c.lon, c.lat) <= NEARBY_M
            }
            got = scope_cameras(session=session, node=near)
            assert {c.id for c in got} == wanted
            # The hub follows the same cameras live: those within NEARBY_M, by the directory.
            centre = directory.buildings_at.at(near.id)
            assert centre == (near.lon, near.lat)
            assert set(directory.cameras_at.near(*centre, NEARBY_M)) == {
                c.id for c in everything if distance_m(near.lon, near.lat, c.lon, c.lat) <= NEARBY_M
            }
            assert any(c.grid_id != near.parent_id for c in everything if c.id in wanted) is others
        # Above communities the map counts cameras per child instead.
        assert scope_cameras(session=session, node=_node(session, "530103004")) == []


def test_active_alarms_are_the_open_ones_most_severe_first(
    seeded: tuple[Engine, SeedReport],
) -> None:
    with Session(seeded[0]) as session:
        panlong = _node(session, PANLONG)
        points = active_alarms(session=session, node=panlong)
        expected = session.scalars(select(AlarmRow.id).where(AlarmRow.status.in_(OPEN))).all()
        assert sorted(p.id for p in points) == sorted(expected) and points
        severities = [p.severity for p in points]
        assert severities == sorted(severities, reverse=True)
        assert active_alarms(session=session, node=panlong, limit=1) == points[:1]
        assert active_alarms(session=session, node=panlong, cameras=[]) == []


def test_a_buildings_ticker_holds_its_nearby_cameras_alarms(
    seeded: tuple[Engine, SeedReport],
) -> None:
    with Session(seeded[0]) as session:
        building = _node(session, BUILDING)
        cameras = [c.id for c in scope_cameras(session=session, node=building)]
        items = latest_alarms(session=session, node=building, cameras=cameras)
        total = session.scalar(
            select(func.count()).select_from(AlarmRow).where(AlarmRow.camera_id.in_(cameras))
        )
        assert len(items) == min(ALARM_LENGTH, total or 0) > 0
        names = set(session.scalars(select(CameraRow.name).where(CameraRow.id.in_(cameras))).all())
        assert {i.place for i in items} <= names


def test_a_buildings_wall_counts_its_cases_and_its_grids_workers(
    seeded: tuple[Engine, SeedReport],
) -> None:
    with Session(seeded[0]) as session:
        building, grid = _node(session, BUILDING), _node(session, GRID)
        wall = load_wall(
            session=session, scope=area(session, BUILDING), now=AS_OF, tz=TZ, window_days=30
        )
        assert wall is not None and wall.overview.scope.node.level is Level.BUILDING
        open_ = session.scalar(
            select(func.count())
            .select_from(CaseRow)
            .where(
                CaseRow.building_id == building.id,
                CaseRow.status.not_in(("closed", "rejected")),
                CaseRow.reported_at >= AS_OF - timedelta(days=30),
            )
        )
        assert wall.overview.scope.kpis.open == open_
        assert wall.areas == [] and wall.outline is not None
        grid_workers = session.scalar(
            select(func.count())
            .select_from(WorkerRow)
            .where(WorkerRow.grid_id == grid.id, WorkerRow.role == "grid_worker")
        )
        assert wall.worker_total == len(wall.workers) == grid_workers
        assert wall.cameras and all(a.lon for a in wall.alarm_points)
    # On duty at a building: the fixes in its grid.
    fixes = [((1, 2, 3, grid.id), AS_OF), ((1, 2, 3, grid.id + 1), AS_OF)]
    assert on_duty(fixes, building, AS_OF) == 1


def test_map_points_as_geojson() -> None:
    at = datetime(2026, 11, 23, 6, 0)
    workers = [
        WorkerPoint("w1", "张三", 102.7, 25.0, at, True),
        WorkerPoint("w2", "李四", None, None, None, False),  # no fix yet: not on the map
    ]
    data = workers_data(workers, "g1")
    assert [f["properties"] for f in data["features"]] == [
        {"code": "w1", "name": "张三", "on": True, "at": "2026-11-23T06:00:00Z", "scope": "g1"}
    ]
    cams = cameras_data([CameraPoint(1, "c1", "摄像机1", 102.7, 25.0)])
    assert cams["features"][0]["geometry"] == {"type": "Point", "coordinates": [102.7, 25.0]}
    alarms = [
        AlarmPoint("a1", "fire", 4, "active", at, "摄像机1", 102.7, 25.0),
        AlarmPoint("a2", "crowd", 1, "acknowledged", at, "摄像机2", 102.8, 25.0),
    ]
    props = [f["properties"] for f in alarms_data(alarms, "g1")["features"]]
    assert [(p["id"], p["high"], p["scope"]) for p in props] == [
        ("a1", True, "g1"),
        ("a2", False, "g1"),
    ]


def test_labels_carry_a_camera_count_per_child_when_asked() -> None:

    node = Node(1, "s1", Level.STREET, None, "联盟街道", "Lianmeng", 102.7, 25.0)
    area = Area(node, {"type": "Point", "coordinates": [102.7, 25.0]}, (0, 0, 0, 0))
    zh = labels_data([area], {"s1": 3}, "zh", {"s1": 1234})["features"][0]["properties"]
    assert zh == {"code": "s1", "name": "联盟街道", "open": "3", "cameras": "摄像机 1,234"}
    en = labels_data([area], {}, "en", {"s1": 2})["features"][0]["properties"]
    assert en["cameras"] == "2 cameras" and en["open"] == "0"
    assert labels_data([area], {}, "zh")["features"][0]["properties"]["cameras"] == ""


def test_a_viewport_takes_in_the_points_it_must_show() -> None:
    node = Node(1, "b1", Level.BUILDING, None, "楼", "b", 102.7, 25.0)
    area = Area(
        node, {"type": "Point", "coordinates": [102.7, 25.0]}, (102.7, 25.0, 102.701, 25.001)
    )
    view = viewport([], area, [(102.69, 25.0005), (102.7005, 25.003)])
    assert view is not None and view["bounds"] == [[25.0, 102.69], [25.003, 102.701]]
