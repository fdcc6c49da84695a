"""`gridcc seed`: builds the Kunming demo city into an empty, migrated database.

Deterministic for a given `seed` and `as_of`: ids, geometry, people and history are all drawn from
per-district random streams, so two runs give identical rows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

import numpy as np
from sqlalchemy import Engine, Table, func, insert, select

from data_sources.model import AlarmStatus, AlarmType, Level, Severity, WorkerRole
from data_sources.schema import (
    AlarmEventRow,
    AlarmRow,
    CameraRow,
    CaseEventRow,
    CaseRow,
    NodeRow,
    PositionRow,
    WorkerRow,
)
from data_sources.seed.geometry import geojson
from data_sources.seed.hierarchy import SeedNode, build_district
from data_sources.seed.history import Buildings, case_history
from data_sources.seed.profile import (
    CITY_CODE,
    CITY_NAME,
    DistrictProfile,
    district_features,
    district_profiles,
)

#: Progress callback: (stage, done, total).
Progress = Callable[[str, int, int], None]
CHUNK = 5_000
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段"  # noqa: E501
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文红玉兰志云春燕晓东海鹏飞琳婷"
#: Alarms per camera per day in the seeded alarm history (last `ALARM_DAYS` days).
ALARM_RATE, ALARM_DAYS = 0.04, 7


@dataclass(slots=True)
class SeedReport:
    """What a seed run made and how long it took."""

    nodes: dict[str, int] = field(default_factory=dict)
    workers: int = 0
    cameras: int = 0
    cases: int = 0
    case_events: int = 0
    alarms: int = 0
    seconds: float = 0.0


def _noop(_stage: str, _done: int, _total: int) -> None:
    pass


def seed_city(
    engine: Engine,
    *,
    seed: int,
    as_of: datetime,
    tz: tzinfo,
    districts: Iterable[str] | None = None,
    days: int = 90,
    cases_per_day: float = 1_600,
    processes: int = 2,
    progress: Progress = _noop,
) -> SeedReport:
    """Seed the demo city (or only `districts`, by adcode) into the empty database behind `engine`.

    Args:
        as_of: naive UTC end of the seeded history.
        cases_per_day: city-wide arrivals per day, shared among districts by population.
    """
    started = time.perf_counter()
    with engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(NodeRow)).scalar_one():
            raise RuntimeError("database already has nodes: seed only an empty database")
    profiles = district_profiles()
    features = {f["properties"]["adcode"]: f for f in district_features()}
    wanted = sorted(set(districts) if districts else profiles)
    unknown = set(wanted) - set(profiles)
    if unknown:
        raise ValueError(f"unknown district adcodes: {sorted(unknown)}")
    report = SeedReport(nodes=dict.fromkeys((level.value for level in Level), 0))

    trees: list[SeedNode] = []
    progress("hierarchy", 0, len(wanted))
    with ProcessPoolExecutor(max_workers=max(1, processes)) as pool:
        futures = [
            pool.submit(build_district, features[code], profiles[code], seed) for code in wanted
        ]
        for done, future in enumerate(futures, 1):
            tree = future.result()[0]
            tree.parent_code = CITY_CODE
            trees.append(tree)
            progress("hierarchy", done, len(wanted))

    city_geometry = _union_geojson([features[code] for code in wanted])
    city = SeedNode(
        code=CITY_CODE,
        level=Level.CITY,
        parent_code=None,
        name_zh=CITY_NAME[0],
        name_en=CITY_NAME[1],
        lon=102.833,
        lat=25.040,
        area_km2=sum(t.area_km2 for t in trees),
        households=sum(t.households for t in trees),
        geometry=city_geometry,
        children=trees,
    )
    node_rows = list(_node_rows(city))
    for row in node_rows:
        report.nodes[row["level"]] += 1
    _insert(engine, NodeRow.__table__, node_rows, progress)  # type: ignore[arg-type]

    population = sum(profiles[code].population for code in profiles)
    progress("people, cameras, history", 0, len(wanted))
    for done, (code, tree) in enumerate(zip(wanted, trees, strict=True), 1):
        rng = np.random.default_rng([seed, int(code), 1])
        district_id = next(r["id"] for r in node_rows if r["code"] == tree.code)
        district_rows = [r for r in node_rows if r["district_id"] == district_id]
        buildings = _buildings(district_rows)
        workers, by_grid = _workers(profiles[code], district_rows, rng)
        cameras = _cameras(profiles[code], buildings, rng)
        _insert(engine, WorkerRow.__table__, workers)  # type: ignore[arg-type]
        _insert(engine, CameraRow.__table__, cameras)  # type: ignore[arg-type]
        positions = _positions(workers, district_rows, as_of, rng)
        _insert(engine, PositionRow.__table__, positions)  # type: ignore[arg-type]
        alarms = _alarms(cameras, as_of, rng)
        _insert(engine, AlarmRow.__table__, alarms)  # type: ignore[arg-type]
        _insert(engine, AlarmEventRow.__table__, _alarm_events(alarms, cameras))  # type: ignore[arg-type]
        report.workers += len(workers)
        report.cameras += len(cameras)
        report.alarms += len(alarms)
        cases: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for case, case_events in case_history(
            district_code=code,
            buildings=buildings,
            workers_by_grid=by_grid,
            per_day=cases_per_day * profiles[code].population / population,
            days=days,
            as_of=as_of,
            tz=tz,
            rng=rng,
        ):
            cases.append(case)
            events.extend(case_events)
        _insert(engine, CaseRow.__table__, cases)  # type: ignore[arg-type]
        _insert(engine, CaseEventRow.__table__, events)  # type: ignore[arg-type]
        report.cases += len(cases)
        report.case_events += len(events)
        progress("people, cameras, history", done, len(wanted))
    report.seconds = time.perf_counter() - started
    return report


def _union_geojson(features: list[dict[str, Any]]) -> str:
    import shapely
    from shapely.geometry import shape

    return geojson(shapely.union_all([shapely.make_valid(shape(f["geometry"])) for f in features]))


def _node_rows(city: SeedNode) -> Iterator[dict[str, Any]]:
    """Rows in breadth-first order with sequential ids and ancestor-id columns."""
    next_id = 1
    ancestors_of: dict[str, dict[str, int | None]] = {}
    parent_id_of: dict[str, int] = {}
    level_nodes: list[SeedNode] = [city]
    while level_nodes:
        children: list[SeedNode] = []
        for node in level_nodes:
            inherited = ancestors_of.get(node.parent_code or "", {})
            ancestors = {
                f"{level.value}_id": inherited.get(f"{level.value}_id")
                for level in (Level.DISTRICT, Level.STREET, Level.COMMUNITY, Level.GRID)
            }
            if node.level is not Level.CITY and node.level is not Level.BUILDING:
                ancestors[f"{node.level.value}_id"] = next_id
            ancestors_of[node.code] = ancestors
            parent_id_of[node.code] = next_id
            yield {
                "id": next_id,
                "code": node.code,
                "level": node.level.value,
                "parent_id": parent_id_of[node.parent_code] if node.parent_code else None,
                "name_zh": node.name_zh,
                "name_en": node.name_en,
                "lon": node.lon,
                "lat": node.lat,
                "area_km2": node.area_km2,
                "households": node.households,
                "geometry": node.geometry,
                **ancestors,
            }
            next_id += 1
            children.extend(node.children)
        level_nodes = children


def _buildings(rows: list[dict[str, Any]]) -> Buildings:
    b = [r for r in rows if r["level"] == Level.BUILDING.value]
    grid_names = {r["id"]: r["name_zh"] for r in rows if r["level"] == Level.GRID.value}
    return Buildings(
        ids=np.array([r["id"] for r in b]),
        ancestors=np.array(
            [[r["district_id"], r["street_id"], r["community_id"], r["grid_id"]] for r in b]
        ),
        lon=np.array([r["lon"] for r in b]),
        lat=np.array([r["lat"] for r in b]),
        households=np.array([max(1, r["households"]) for r in b], dtype=float),
        names=[f"{grid_names[r['grid_id']].split('第')[0]}{r['name_zh']}" for r in b],
    )


def _person(rng: np.random.Generator) -> str:
    surname = SURNAMES[int(rng.integers(len(SURNAMES)))]
    given = "".join(GIVEN[int(i)] for i in rng.integers(len(GIVEN), size=int(rng.integers(1, 3))))
    return surname + given


def _workers(
    profile: DistrictProfile, rows: list[dict[str, Any]], rng: np.random.Generator
) -> tuple[list[dict[str, Any]], dict[int, list[tuple[int, str]]]]:
    """Grid workers spread over the grids (some cover two), plus one supervisor per street."""
    grids = [r for r in rows if r["level"] == Level.GRID.value]
    streets = [r for r in rows if r["level"] == Level.STREET.value]
    homes = [grids[i] for i in rng.permutation(len(grids))[: profile.workers]]
    homes += [grids[int(i)] for i in rng.integers(len(grids), size=profile.workers - len(homes))]
    out: list[dict[str, Any]] = []
    by_grid: dict[int, list[tuple[int, str]]] = {}
    base_id = int(profile.adcode[-3:]) * 100_000
    people = [(grid, WorkerRole.GRID_WORKER) for grid in homes]
    people += [(street, WorkerRole.SUPERVISOR) for street in streets]
    for n, (home, role) in enumerate(people, 1):
        worker_id = base_id + n
        name = _person(rng)
        out.append(
            {
                "id": worker_id,
                "code": f"W{profile.adcode}{n:05d}",
                "name": name,
                "role": role.value,
                "phone": f"1{int(rng.integers(30, 99))}{int(rng.integers(0, 10**8)):08d}",
                "district_id": home["district_id"],
                "street_id": home["street_id"],
                "community_id": home["community_id"],
                "grid_id": home["grid_id"],
                "building_id": None,
            }
        )
        if role is WorkerRole.GRID_WORKER:
            by_grid.setdefault(home["id"], []).append((worker_id, f"网格员{name}"))
    return out, by_grid


def _cameras(
    profile: DistrictProfile, buildings: Buildings, rng: np.random.Generator
) -> list[dict[str, Any]]:
    weights = buildings.households / buildings.households.sum()
    where = np.sort(rng.choice(len(buildings.ids), profile.cameras, p=weights))
    return [
        {
            "id": int(profile.adcode[-3:]) * 100_000 + n,
            "code": f"CAM{profile.adcode}{n:06d}",
            "name": f"{buildings.names[b]}摄像机{n % 4 + 1}",
            "lon": round(float(buildings.lon[b] + rng.normal(0, 1e-4)), 6),
            "lat": round(float(buildings.lat[b] + rng.normal(0, 1e-4)), 6),
            "district_id": int(buildings.ancestors[b, 0]),
            "street_id": int(buildings.ancestors[b, 1]),
            "community_id": int(buildings.ancestors[b, 2]),
            "grid_id": int(buildings.ancestors[b, 3]),
            "building_id": int(buildings.ids[b]),
        }
        for n, b in enumerate((int(x) for x in where), 1)
    ]


def _positions(
    workers: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    as_of: datetime,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """The last GPS fix of each grid worker, near their grid (history comes from the live feed)."""
    where = {r["id"]: (r["lon"], r["lat"]) for r in rows if r["level"] == Level.GRID.value}
    return [
        {
            "event_id": f"seed-pos-{w['code']}",
            "worker_id": w["id"],
            "ts": as_of - timedelta(seconds=int(rng.integers(5, 900))),
            "lon": round(where[w["grid_id"]][0] + float(rng.normal(0, 5e-4)), 6),
            "lat": round(where[w["grid_id"]][1] + float(rng.normal(0, 5e-4)), 6),
            "speed": round(float(rng.uniform(0, 1.6)), 2),
            "bearing": round(float(rng.uniform(0, 360)), 1),
            "accuracy": round(float(rng.uniform(3, 25)), 1),
            "battery": round(float(rng.uniform(0.15, 1.0)), 2),
        }
        for w in workers
        if w["role"] == WorkerRole.GRID_WORKER.value
    ]


def _alarms(
    cameras: list[dict[str, Any]], as_of: datetime, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """A week of camera alarms; most resolved or false, the most recent ones still active."""
    n = int(rng.poisson(ALARM_RATE * ALARM_DAYS * len(cameras)))
    types = list(AlarmType)
    type_p = np.array([0.03, 0.12, 0.08, 0.25, 0.2, 0.22, 0.04, 0.06])
    severity_of = {
        AlarmType.FIRE: Severity.CRITICAL,
        AlarmType.PERSON_DOWN: Severity.HIGH,
        AlarmType.THROWN_OBJECT: Severity.HIGH,
        AlarmType.CROWD: Severity.MEDIUM,
        AlarmType.INTRUSION: Severity.MEDIUM,
    }
    out: list[dict[str, Any]] = []
    starts = np.sort(rng.uniform(0, ALARM_DAYS * 86400, n))
    for i, offset in enumerate(starts):
        camera = cameras[int(rng.integers(len(cameras)))]
        alarm_type = types[int(rng.choice(len(types), p=type_p / type_p.sum()))]
        started = as_of - timedelta(seconds=ALARM_DAYS * 86400 - float(offset))
        age = (as_of - started).total_seconds()
        ack_after = timedelta(seconds=float(rng.lognormal(np.log(180), 0.7)))
        end_after = ack_after + timedelta(seconds=float(rng.lognormal(np.log(1800), 0.8)))
        status = AlarmStatus.FALSE_ALARM if rng.random() < 0.12 else AlarmStatus.RESOLVED
        if age < end_after.total_seconds():
            status = AlarmStatus.ACKNOWLEDGED
        if age < ack_after.total_seconds():
            status = AlarmStatus.ACTIVE
        out.append(
            {
                "id": f"AL-{camera['code']}-{i:06d}",
                "camera_id": camera["id"],
                "type": alarm_type.value,
                "severity": int(severity_of.get(alarm_type, Severity.LOW)),
                "status": status.value,
                "started_at": started,
                "acknowledged_at": started + ack_after
                if status is not AlarmStatus.ACTIVE
                else None,
                "acknowledged_by": "值班员" if status is not AlarmStatus.ACTIVE else None,
                "ended_at": started + end_after
                if status in (AlarmStatus.RESOLVED, AlarmStatus.FALSE_ALARM)
                else None,
                "snapshot_url": None,
                "case_id": None,
                **{
                    k: camera[k]
                    for k in ("district_id", "street_id", "community_id", "grid_id", "building_id")
                },
            }
        )
    return out


def _alarm_events(
    alarms: list[dict[str, Any]], cameras: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The events the seeded alarms were made of, so later events replay on top of them."""
    camera_code = {c["id"]: c["code"] for c in cameras}
    rows = []
    for a in alarms:
        raised = {
            "alarm_id": a["id"],
            "camera": camera_code[a["camera_id"]],
            "type": a["type"],
            "severity": a["severity"],
        }
        rows.append(_alarm_event(a, "raised", a["started_at"], None, raised))
        if a["acknowledged_at"] is not None:
            body = {"alarm_id": a["id"], "actor": a["acknowledged_by"]}
            rows.append(
                _alarm_event(a, "acknowledged", a["acknowledged_at"], a["acknowledged_by"], body)
            )
        if a["ended_at"] is not None:
            false_alarm = a["status"] == AlarmStatus.FALSE_ALARM.value
            body = {"alarm_id": a["id"], "actor": "值班员", "false_alarm": false_alarm}
            rows.append(_alarm_event(a, "resolved", a["ended_at"], "值班员", body))
    return rows


def _alarm_event(
    alarm: dict[str, Any], kind: str, at: datetime, actor: str | None, body: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": f"{alarm['id']}-{kind}",
        "alarm_id": alarm["id"],
        "kind": kind,
        "actor": actor,
        "at": at,
        "body": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    }


def _insert(
    engine: Engine, table: Table, rows: list[dict[str, Any]], progress: Progress = _noop
) -> None:
    progress(table.name, 0, len(rows))
    for start in range(0, len(rows), CHUNK):
        with engine.begin() as conn:
            conn.execute(insert(table), rows[start : start + CHUNK])
        progress(table.name, min(start + CHUNK, len(rows)), len(rows))
