"""One district's people, cameras, alarms and case history, as rows ready to insert.

Runs in a worker process once the district's node ids are known; everything is drawn from the
district's own random stream, so the rows do not depend on which process made them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, tzinfo
from typing import Any

import numpy as np

from data_sources.model import AlarmStatus, AlarmType, Level, Severity, WorkerRole
from data_sources.seed.hierarchy import NODE_COLUMNS, TREE_LEVELS, DistrictNodes, node_rows
from data_sources.seed.history import Buildings, case_history
from data_sources.seed.profile import DistrictProfile
from data_sources.seed.writer import Batch
from data_sources.workhours import WorkCalendar

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段"  # noqa: E501
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国文红玉兰志云春燕晓东海鹏飞琳婷"
#: Alarms per camera per day in the seeded alarm history (last `ALARM_DAYS` days).
ALARM_RATE, ALARM_DAYS = 0.04, 7


def district_activity(
    profile: DistrictProfile,
    nodes: DistrictNodes,
    first_ids: list[int],
    *,
    seed: int,
    as_of: datetime,
    tz: tzinfo,
    calendar: WorkCalendar,
    days: int,
    cases_per_day: float,
    text_datetimes: bool = False,
) -> list[Batch]:
    """The district's workers, cameras, positions, alarms and cases, in insertion order.

    Args:
        cases_per_day: this district's share of the city's arrivals.
        text_datetimes: give datetimes as text, as the SQLite driver takes them (`Batch`).
    """
    rng = np.random.default_rng([seed, int(profile.adcode), 1])
    rows = [
        dict(zip(NODE_COLUMNS, row, strict=True))
        for level in range(len(TREE_LEVELS))
        for row in node_rows(nodes, first_ids, level)
    ]
    buildings = _buildings(rows)
    workers, by_grid = _workers(profile, rows, rng)
    cameras = _cameras(profile, buildings, rng)
    positions = _positions(workers, rows, as_of, rng)
    alarms = _alarms(cameras, as_of, rng)
    alarm_events = _alarm_events(alarms, cameras)
    cases: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for case, case_events in case_history(
        district_code=profile.adcode,
        buildings=buildings,
        workers_by_grid=by_grid,
        per_day=cases_per_day,
        days=days,
        as_of=as_of,
        tz=tz,
        calendar=calendar,
        rng=rng,
    ):
        cases.append(case)
        events.extend(case_events)
    tables = {
        "workers": workers,
        "cameras": cameras,
        "positions": positions,
        "alarms": alarms,
        "alarm_events": alarm_events,
        "cases": cases,
        "case_events": events,
    }
    return [Batch.of(t, rows, text_datetimes=text_datetimes) for t, rows in tables.items()]


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
