"""The worker list of a scope (data_sources/workers/roster.py) on SQLite and PostgreSQL: its rows
and order equal hand-written SQL; no scope sees another's workers; last fix and on duty are the
wall's; today's distance and grids visited equal a hand computation over known fixes and known
grid outlines (fixes of yesterday and tomorrow left out, a worker without fixes at zero)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise

import numpy as np
import pytest
import shapely
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from callbacks.follow_lists import WORKER_REFRESH_S, worker_list_due
from data_sources import db, store
from data_sources.access.model import Scope
from data_sources.model import Level, WorkerRole
from data_sources.schema import NodeRow, PositionRow, WorkerRow
from data_sources.wall_layers import distance_m, scope_workers
from data_sources.workers import export as worker_export
from data_sources.workers import roster
from data_sources.workers.roster import (
    GridOutlines,
    WorkerItem,
    haversine_m,
    iter_workers,
    today_window,
    worker_roster,
)
from layouts.follow_lists import worker_count_text, worker_rows
from layouts.i18n import t

from .conftest import AS_OF, BACKENDS, TZ, fresh_database_url

NOW = AS_OF  # 2026-11-23 14:00 in Kunming
MIDNIGHT = datetime(2026, 11, 22, 16, 0)  # 2026-11-23 00:00 in Kunming
TOMORROW = datetime(2026, 11, 23, 16, 0)
US = timedelta(microseconds=1)


def _box(lon: float, lat: float) -> str:
    """A 0.01° square grid outline with its south-west corner at (lon, lat)."""
    ring = [[lon, lat], [lon + 0.01, lat], [lon + 0.01, lat + 0.01], [lon, lat + 0.01], [lon, lat]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


# id, code, level, parent, name_zh, name_en, outline's corner (grids)
NODES = [
    (1, "530100", "city", None, "昆明市", "Kunming", None),
    (10, "530102", "district", 1, "五华区", "Wuhua", None),
    (20, "530103", "district", 1, "盘龙区", "Panlong", None),
    (11, "530102001", "street", 10, "华山街道", "Huashan", None),
    (21, "530103001", "street", 20, "拓东街道", "Tuodong", None),
    (12, "530102001001", "community", 11, "翠湖社区", "Cuihu", None),
    (13, "530102001002", "community", 11, "莲花社区", "Lianhua", None),
    (22, "530103001001", "community", 21, "金星社区", "Jinxing", None),
    (14, "530102001001001", "grid", 12, "第一网格", "Grid One", (102.70, 25.00)),
    (15, "530102001001002", "grid", 12, "第二网格", "Grid Two", (102.71, 25.00)),
    (18, "530102001002001", "grid", 13, "莲花网格", "Lianhua Grid", (102.72, 25.00)),
    (23, "530103001001001", "grid", 22, "金星网格", "Jinxing Grid", (102.80, 25.00)),
    (16, "530102001001001001", "building", 14, "1栋", "Block 1", None),
]
G14, G15, G18, G23 = (102.705, 25.005), (102.715, 25.005), (102.725, 25.005), (102.805, 25.005)
OUTSIDE = (102.9, 25.1)  # in no grid

# id, code, name, role, grid
WORKERS = [
    (101, "W101", "张网格", WorkerRole.GRID_WORKER, 14),
    (102, "W102", "李网格", WorkerRole.GRID_WORKER, 15),
    (103, "W103", "王网格", WorkerRole.GRID_WORKER, 23),
    (104, "W104", "赵督导", WorkerRole.SUPERVISOR, 14),  # no fix ever
]
#: Known fixes: worker, time, (lon, lat); in insertion (= id) order.
FIXES = [
    # 张网格: yesterday's last fix in 莲花网格 (must not count), then today G14 → G15 → G14.
    (101, MIDNIGHT - US, G18),
    (101, MIDNIGHT, G14),
    (101, datetime(2026, 11, 23, 0, 0), (102.705, 25.006)),
    (101, datetime(2026, 11, 23, 1, 0), (102.715, 25.006)),
    (101, datetime(2026, 11, 23, 2, 0), (102.705, 25.006)),
    (101, NOW - timedelta(minutes=15), (102.706, 25.006)),  # on duty
    # 李网格: one grid all morning, quiet for two hours: off duty.
    (102, datetime(2026, 11, 22, 23, 0), G15),
    (102, NOW - timedelta(hours=2), (102.716, 25.004)),
    # 王网格: out of every grid once, two fixes at one instant (the id orders them), and one
    # of tomorrow (a clock far ahead: neither today's distance nor today's grids).
    (103, datetime(2026, 11, 23, 1, 0), G23),
    (103, datetime(2026, 11, 23, 2, 0), OUTSIDE),
    (103, datetime(2026, 11, 23, 3, 0), G23),
    (103, datetime(2026, 11, 23, 3, 0), (102.806, 25.005)),
    (103, TOMORROW, G14),
]
#: Random workers and fixes (in the Wuhua grids), more than a batch of fixes holds.
RANDOM_WORKERS = 30


def _ancestors(node: int | None) -> dict[str, int]:
    nodes = {n[0]: n for n in NODES}
    chain: dict[str, int] = {}
    while node is not None:
        _, _, level, parent, *_ = nodes[node]
        if level != "city":
            chain[f"{level}_id"] = node
        node = parent
    return chain


def _scope(node: int) -> Scope:
    nodes = {n[0]: n for n in NODES}
    lineage = _ancestors(node)
    path = tuple(lineage[f"{lv.value}_id"] for lv in Level if f"{lv.value}_id" in lineage)
    return Scope(node, nodes[node][1], Level(nodes[node][2]), path)


SCOPES = {name: _scope(node) for name, node in [
    ("city", 1), ("wuhua", 10), ("panlong", 20), ("street", 11), ("community", 12),
    ("grid", 15), ("building", 16),
]}  # fmt: skip


Fix = tuple[int, datetime, tuple[float, float]]


def _random_fixes() -> tuple[list[tuple[int, str, str, WorkerRole, int]], list[Fix]]:
    rng = random.Random(3)
    workers: list[tuple[int, str, str, WorkerRole, int]] = []
    fixes: list[Fix] = []
    for n in range(RANDOM_WORKERS):
        worker_id = 200 + n
        grid = rng.choice([14, 15, 18])
        workers.append((worker_id, f"R{n:03d}", rng.choice("周吴郑"), WorkerRole.GRID_WORKER, grid))
        for _ in range(rng.randrange(0, 25)):
            at = MIDNIGHT + timedelta(minutes=rng.uniform(-300, 24 * 60 + 60))
            where = (rng.uniform(102.70, 102.735), rng.uniform(24.998, 25.012))
            fixes.append((worker_id, at, where))
    return workers, fixes


RANDOM_WORKER_ROWS, RANDOM_FIXES = _random_fixes()


@pytest.fixture(scope="module", params=BACKENDS)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    engine = db.make_engine(fresh_database_url(request, tmp_path_factory.mktemp("workers")))
    db.upgrade(engine)
    with Session(engine) as session, session.begin():
        for id_, code, level, parent, zh, en, corner in NODES:
            chain = _ancestors(id_)
            session.add(
                NodeRow(
                    id=id_,
                    code=code,
                    level=level,
                    parent_id=parent,
                    name_zh=zh,
                    name_en=en,
                    lon=corner[0] + 0.005 if corner else 102.7,
                    lat=corner[1] + 0.005 if corner else 25.0,
                    area_km2=1.0,
                    geometry=_box(*corner) if corner else _box(102.0, 25.0),
                    **{k: v for k, v in chain.items() if k != "building_id"},
                )
            )
        session.flush()
        for id_, code, name, role, grid in [*WORKERS, *RANDOM_WORKER_ROWS]:
            session.add(
                WorkerRow(
                    id=id_,
                    code=code,
                    name=name,
                    role=role.value,
                    phone="1",
                    building_id=None,
                    **_ancestors(grid),
                )
            )
        session.flush()
        for n, (worker, at, (lon, lat)) in enumerate([*FIXES, *RANDOM_FIXES]):
            session.add(PositionRow(event_id=f"fix-{n}", worker_id=worker, ts=at, lon=lon, lat=lat))
            session.flush()  # one by one: ids in list order (the tie-breaker of equal times)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 4 workers: the fixture's 34 workers take 9 queries."""
    monkeypatch.setattr(roster, "FIX_BATCH", 4)


# ---------------------------------------------------------------- the independent reference


def _reference_ids(session: Session, scope: Scope) -> list[int]:
    where = "1 = 1"
    if scope.level is Level.BUILDING:
        where = f"w.grid_id = {scope.path[-2]}"  # a building's workers are its grid's
    elif scope.level is not Level.CITY:
        where = f"w.{scope.level.value}_id = {scope.id}"
    sql = f"SELECT w.id FROM workers w WHERE {where} ORDER BY w.name, w.code"
    return [r[0] for r in session.execute(text(sql))]


def _outline(node: int) -> shapely.Polygon:
    corner = next(n[6] for n in NODES if n[0] == node)
    assert corner is not None
    return shapely.from_geojson(_box(*corner))


def _hand_moves(session: Session, worker: int) -> tuple[float, int, int]:
    """(metres, grids, fixes) of today by plain Python: consecutive fixes in (ts, id) order, each
    grid outline of the worker's district tested on its own."""
    fixes = session.execute(
        select(PositionRow.lon, PositionRow.lat)
        .where(
            PositionRow.worker_id == worker,
            PositionRow.ts >= MIDNIGHT,
            PositionRow.ts < TOMORROW,
        )
        .order_by(PositionRow.ts, PositionRow.id)
    ).all()
    metres = sum(distance_m(a.lon, a.lat, b.lon, b.lat) for a, b in pairwise(fixes))
    district = session.scalar(select(WorkerRow.district_id).where(WorkerRow.id == worker))
    grids = [n[0] for n in NODES if n[2] == "grid" and _ancestors(n[0])["district_id"] == district]
    visited = {g for g in grids for f in fixes if _outline(g).covers(shapely.Point(f.lon, f.lat))}
    return metres, len(visited), len(fixes)


# ---------------------------------------------------------------- tests


def test_today_is_the_local_day() -> None:
    assert today_window(NOW, TZ).since == MIDNIGHT
    assert today_window(NOW, TZ).until == TOMORROW
    assert today_window(MIDNIGHT, TZ).since == MIDNIGHT
    assert today_window(MIDNIGHT - US, TZ).until == MIDNIGHT


def test_haversine_is_the_walls_distance() -> None:
    rng = np.random.default_rng(1)
    lon1, lon2 = rng.uniform(102.5, 103.0, (2, 50))
    lat1, lat2 = rng.uniform(24.8, 25.3, (2, 50))
    expected = [distance_m(*p) for p in zip(lon1, lat1, lon2, lat2, strict=True)]
    assert haversine_m(lon1, lat1, lon2, lat2) == pytest.approx(expected, rel=1e-12, abs=1e-9)
    assert float(haversine_m(*np.array([[102.7], [25.0], [102.7], [25.001]]))[0]) == pytest.approx(
        111.19, abs=0.01
    )


@pytest.mark.parametrize("scope_name", list(SCOPES))
@pytest.mark.usefixtures("small_batches")
def test_rows_equal_hand_written_sql_and_never_leak(city: Engine, scope_name: str) -> None:
    scope = SCOPES[scope_name]
    with Session(city) as session:
        expected = _reference_ids(session, scope)
        items = worker_roster(session=session, scope=scope, now=NOW, tz=TZ)
    assert [i.id for i in items] == expected
    assert expected or scope_name == "panlong"
    if scope.level is Level.CITY:
        assert len(items) == len(WORKERS) + RANDOM_WORKERS


@pytest.mark.usefixtures("small_batches")
def test_known_fixes_give_known_distance_and_grids(city: Engine) -> None:
    with Session(city) as session:
        listed = worker_roster(session=session, scope=SCOPES["city"], now=NOW, tz=TZ)
    items = {i.code: i for i in listed}
    zhang = items["W101"]
    pairs = [
        (G14, (102.705, 25.006)),
        ((102.705, 25.006), (102.715, 25.006)),
        ((102.715, 25.006), (102.705, 25.006)),
        ((102.705, 25.006), (102.706, 25.006)),
    ]
    assert zhang.distance_today_m == pytest.approx(sum(distance_m(*a, *b) for a, b in pairs))
    # 0.001° of latitude is 111.19 m; 0.01° and 0.001° of longitude at 25.006° N are 1007.7 m
    # and 100.77 m (× cos 25.006°).
    assert zhang.distance_today_m == pytest.approx(111.19 + 2 * 1007.7 + 100.77, abs=0.5)
    assert (zhang.grids_today, zhang.fixes_today) == (2, 5)  # G14 and G15; not yesterday's G18
    assert zhang.on_duty and zhang.fix_age == timedelta(minutes=15)
    assert (zhang.grid_code, zhang.grid_zh, zhang.grid_en) == (
        "530102001001001",
        "第一网格",
        "Grid One",
    )
    li = items["W102"]
    assert li.distance_today_m == pytest.approx(distance_m(*G15, 102.716, 25.004))
    assert (li.grids_today, li.fixes_today, li.on_duty) == (1, 2, False)
    assert li.last_fix_at == NOW - timedelta(hours=2)
    wang = items["W103"]
    track = [G23, OUTSIDE, G23, (102.806, 25.005)]  # tomorrow's fix left out
    assert wang.distance_today_m == pytest.approx(
        sum(distance_m(*a, *b) for a, b in pairwise(track))
    )
    assert (wang.grids_today, wang.fixes_today) == (1, 4)
    assert wang.last_fix_at == TOMORROW  # the newest fix, as the wall reads it
    zhao = items["W104"]
    assert (zhao.role, zhao.last_fix_at, zhao.fix_age, zhao.on_duty) == (
        WorkerRole.SUPERVISOR,
        None,
        None,
        False,
    )
    assert (zhao.distance_today_m, zhao.grids_today, zhao.fixes_today) == (0.0, 0, 0)


@pytest.mark.usefixtures("small_batches")
def test_random_fixes_equal_a_hand_computation(city: Engine) -> None:
    with Session(city) as session:
        items = worker_roster(session=session, scope=SCOPES["wuhua"], now=NOW, tz=TZ)
        assert len(items) > RANDOM_WORKERS
        for item in items:
            metres, grids, fixes = _hand_moves(session, item.id)
            assert item.distance_today_m == pytest.approx(metres, rel=1e-9, abs=1e-6), item.code
            assert (item.grids_today, item.fixes_today) == (grids, fixes), item.code
    assert any(i.grids_today >= 3 for i in items)


def test_last_fix_and_on_duty_are_the_walls(city: Engine) -> None:
    later = NOW + timedelta(minutes=20)  # some have gone quiet since
    with Session(city) as session:
        for code in ("530102001001001", "530102001001002", "530102001002001", "530103001001001"):
            node = store.node_by_code(session=session, code=code)
            assert node is not None
            walls = scope_workers(session=session, node=node, now=later)
            wall = {w.code: (w.at, w.on_duty) for w in walls}
            mine = worker_roster(session=session, scope=_scope(node.id), now=later, tz=TZ)
            grid_workers = {
                w.code: (w.last_fix_at, w.on_duty) for w in mine if w.role is WorkerRole.GRID_WORKER
            }
            assert grid_workers == wall


def test_outlines_are_kept_per_district(city: Engine) -> None:
    clock = [0.0]
    outlines = GridOutlines(ttl_s=60, clock=lambda: clock[0])
    with Session(city) as session:
        first = outlines.get(session=session, district_id=10)
        assert sorted(first.ids.tolist()) == [14, 15, 18]
        assert outlines.get(session=session, district_id=10) is first
        assert outlines.get(session=session, district_id=20).ids.tolist() == [23]
        assert sorted(outlines.get(session=session, district_id=None).ids.tolist()) == [
            14,
            15,
            18,
            23,
        ]
        clock[0] = 61.0
        assert outlines.get(session=session, district_id=10) is not first
        points, grids = first.locate(
            np.array([*G14[:1], OUTSIDE[0]]), np.array([G14[1], OUTSIDE[1]])
        )
        assert (points.tolist(), grids.tolist()) == ([0], [14])


def test_the_export_iterator_is_the_roster(city: Engine) -> None:
    with Session(city) as session:
        expected = worker_roster(session=session, scope=SCOPES["wuhua"], now=NOW, tz=TZ)
    items = list(
        iter_workers(session_factory=sessionmaker(city), scope=SCOPES["wuhua"], now=NOW, tz=TZ)
    )
    assert items == expected
    assert all(isinstance(i, WorkerItem) for i in items)


# ---------------------------------------------------------------- the table and the file


def _worker(**changes: object) -> WorkerItem:
    values: dict[str, object] = {
        "id": 101,
        "code": "W101",
        "name": "张网格",
        "role": WorkerRole.GRID_WORKER,
        "grid_code": "530102001001001",
        "grid_zh": "第一网格",
        "grid_en": "Grid One",
        "last_fix_at": NOW - timedelta(minutes=15, seconds=30),
        "fix_age": timedelta(minutes=15, seconds=30),
        "on_duty": True,
        "distance_today_m": 2227.4,
        "grids_today": 2,
        "fixes_today": 5,
    }
    return WorkerItem(**{**values, **changes})  # type: ignore[arg-type]


def test_the_tables_rows_keep_numbers_as_numbers() -> None:
    never = _worker(code="W104", role=WorkerRole.SUPERVISOR, last_fix_at=None, fix_age=None,
                    on_duty=False, grid_code=None, grid_zh=None, grid_en=None,
                    distance_today_m=0.0, grids_today=0, fixes_today=0)  # fmt: skip
    off = _worker(code="W102", on_duty=False)
    rows = worker_rows([_worker(), never, off], "zh", TZ)
    assert rows[0] == {
        "code": "W101",
        "name": "张网格",
        "role": "网格员",
        "grid": "第一网格",
        "last_fix": "2026-11-23 13:44",
        "fix_age": 930,
        "on_duty": "在岗",
        "distance_today": 2227,
        "grids_today": 2,
        "fixes_today": 5,
    }
    assert [r["on_duty"] for r in rows] == ["在岗", "无定位", "离线"]
    assert (rows[1]["role"], rows[1]["grid"], rows[1]["last_fix"], rows[1]["fix_age"]) == (
        "监督员",
        "—",
        "—",
        None,
    )
    assert worker_count_text([_worker(), never, off], "en") == "3 people · 1 on duty"


def test_the_files_cells_are_typed_and_labelled_as_the_table() -> None:
    table = worker_export.TABLE
    assert table.cells(_worker(), lang="en", tz=TZ) == [
        "W101",
        "张网格",
        "Grid worker",
        "Grid One",
        "530102001001001",
        datetime(2026, 11, 23, 13, 44),
        15,
        "On duty",
        2227,
        2,
        5,
    ]
    assert len(table.headers("zh")) == len(worker_export.COLUMNS)
    # The labels are the page's: one table (data_sources/labels.py), which layouts/i18n.py takes.
    roles = [table.cells(replace(_worker(), role=r), lang="zh", tz=TZ)[2] for r in WorkerRole]
    assert roles == [t(f"role_{r}", "zh") for r in WorkerRole]
    states = [
        _worker(),
        replace(_worker(), on_duty=False),
        replace(_worker(), last_fix_at=None, fix_age=None, on_duty=False),
    ]
    duty = [table.cells(w, lang="zh", tz=TZ)[7] for w in states]
    assert duty == [t(f"duty_{state}", "zh") for state in ("on", "off", "never")]


@pytest.mark.parametrize(
    ("tab", "drawn", "due"),
    [
        ("alarms", None, False),  # not shown: not read
        (None, None, False),
        ("workers", None, True),
        ("workers", "nonsense", True),
        ("workers", {"key": "530102|zh", "at": 1_000.0}, False),  # drawn 30 s ago
        ("workers", {"key": "530102|zh", "at": 1_030.0 - WORKER_REFRESH_S}, True),
        ("workers", {"key": "530103|zh", "at": 1_000.0}, True),  # another scope
        ("workers", {"key": "530102|en", "at": 1_000.0}, True),  # another language
        ("workers", {"key": "530102|zh", "at": "x"}, True),
    ],
)
def test_the_list_is_read_when_shown_and_stale(tab: object, drawn: object, due: bool) -> None:
    assert worker_list_due(tab, "530102|zh", drawn, now_s=1_030.0) is due
