"""A realistic case history: arrivals shaped by time of day, lifecycles with realistic durations.

Some cases are rejected, some deferred, some reworked, some late (and then supervised, 督办); cases whose
lifecycle runs past `as_of` are still open at `as_of`, so the open and overdue counts are meaningful.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from functools import cache
from typing import Any, NamedTuple

import numpy as np

from data_sources.lifecycle import CaseStep, case_columns, case_event_rows, replay_case
from data_sources.model import (
    DUE_WORKING_HOURS,
    CaseAction,
    Category,
    Channel,
    ResolvedAt,
    Satisfaction,
)
from data_sources.workhours import WorkCalendar, add_working_hours

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

#: Share of arrivals per local hour of day (night quiet, peaks mid-morning and afternoon).
HOURLY = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.5, 3.5, 6.5, 8.5, 9, 8, 5.5, 5, 7, 8, 8, 7.5, 6, 5, 4, 3, 2, 1.4]
)
CHANNELS: dict[Channel, float] = {
    Channel.GRID_WORKER: 0.44,
    Channel.HOTLINE_12345: 0.26,
    Channel.PATROL_VEHICLE: 0.08,
    Channel.VIDEO: 0.10,
    Channel.ONLINE_PLATFORM: 0.08,
    Channel.POLICE_110: 0.04,
}
CATEGORIES: dict[Category, float] = {
    Category.SANITATION: 0.20,
    Category.STREET_ORDER: 0.14,
    Category.ILLEGAL_PARKING: 0.13,
    Category.PROPERTY_DISPUTE: 0.08,
    Category.NEIGHBOUR_DISPUTE: 0.06,
    Category.NOISE: 0.08,
    Category.BLOCKED_DRAIN: 0.06,
    Category.DAMAGED_FACILITY: 0.09,
    Category.DOGS: 0.04,
    Category.WAGE_DISPUTE: 0.03,
    Category.RENTAL_DISPUTE: 0.03,
    Category.SAFETY_HAZARD: 0.06,
}
DESCRIPTIONS: dict[Category, tuple[str, ...]] = {
    Category.SANITATION: ("生活垃圾未及时清运", "路面污水横流", "绿化带内堆放杂物"),
    Category.STREET_ORDER: ("占道堆放建筑材料", "乱张贴小广告", "店外经营"),
    Category.ILLEGAL_PARKING: ("车辆占用消防通道", "人行道违停", "路口违停影响通行"),
    Category.PROPERTY_DISPUTE: ("物业费收取争议", "电梯长期停运", "小区门禁故障无人维修"),
    Category.NEIGHBOUR_DISPUTE: ("楼上漏水引发纠纷", "公共走道堆物纠纷", "宠物扰邻"),
    Category.NOISE: ("夜间施工噪音", "广场舞音响扰民", "商铺外放音乐"),
    Category.BLOCKED_DRAIN: ("下水道堵塞外溢", "雨水井盖堵塞", "化粪池满溢"),
    Category.DAMAGED_FACILITY: ("路灯不亮", "井盖缺失", "健身器材损坏"),
    Category.DOGS: ("遛狗未拴绳", "流浪犬聚集", "犬只伤人隐患"),
    Category.WAGE_DISPUTE: ("装修工人工资拖欠", "餐饮店拖欠工资"),
    Category.RENTAL_DISPUTE: ("押金退还纠纷", "群租房安全隐患"),
    Category.SAFETY_HAZARD: ("电动车楼道充电", "燃气管道老化", "消防通道堵塞"),
}
SATISFACTION = {Satisfaction.SATISFIED: 0.90, Satisfaction.BASICALLY_SATISFIED: 0.07}
RESOLVED = {
    ResolvedAt.GRID: 0.70,
    ResolvedAt.COMMUNITY: 0.25,
    ResolvedAt.STREET: 0.04,
    ResolvedAt.DISTRICT: 0.01,
}
P_REJECT, P_DEFER, P_REWORK, P_EVALUATE = 0.04, 0.03, 0.06, 0.82


@dataclass(frozen=True, slots=True)
class Buildings:
    """The buildings of one district as parallel arrays (what cases are located in)."""

    ids: IntArray
    ancestors: IntArray  # (n, 4): district, street, community, grid ids
    lon: FloatArray
    lat: FloatArray
    households: FloatArray
    names: list[str]


def _choice(rng: np.random.Generator, options: dict[Any, float], n: int) -> list[Any]:
    keys = list(options)
    p = np.array(list(options.values()))
    return [keys[i] for i in rng.choice(len(keys), n, p=p / p.sum())]


class _Options(NamedTuple):
    """Options with the cumulative probabilities `Generator.choice` would compute for them."""

    keys: list[Any]
    cdf: list[float]

    @classmethod
    def of(cls, options: dict[Any, float]) -> _Options:
        p = np.array(list(options.values()))
        cdf = (p / p.sum()).cumsum()
        cdf /= cdf[-1]
        return cls(list(options), cdf.tolist())

    def pick(self, rng: np.random.Generator) -> Any:
        """The same draw as `_choice(rng, options, 1)[0]` (one uniform), without its set-up."""
        return self.keys[bisect_right(self.cdf, rng.random())]


_RESOLVED = _Options.of(RESOLVED)
_SATISFACTION = _Options.of(SATISFACTION)


@cache
def _log(median: float) -> float:
    """The lognormal location of a median, `np.log(median)`, computed once."""
    return float(np.log(median))


def _minutes(rng: np.random.Generator, median: float, sigma: float = 0.6) -> timedelta:
    return timedelta(minutes=rng.lognormal(_log(median), sigma))


class _Site(NamedTuple):
    """A building as cases need it, in plain Python values (numpy scalars are slow one by one)."""

    building_id: int
    ancestors: tuple[int, int, int, int]
    lon: float
    lat: float
    name: str
    workers: list[tuple[int, str]]


def _sites(buildings: Buildings, workers_by_grid: dict[int, list[tuple[int, str]]]) -> list[_Site]:
    nobody = [(0, "网格员")]
    return [
        _Site(b, (a[0], a[1], a[2], a[3]), lon, lat, name, workers_by_grid.get(a[3], nobody))
        for b, a, lon, lat, name in zip(
            buildings.ids.tolist(),
            buildings.ancestors.tolist(),
            buildings.lon.tolist(),
            buildings.lat.tolist(),
            buildings.names,
            strict=True,
        )
    ]


def case_history(
    *,
    district_code: str,
    buildings: Buildings,
    workers_by_grid: dict[int, list[tuple[int, str]]],
    per_day: float,
    days: int,
    as_of: datetime,
    tz: tzinfo,
    calendar: WorkCalendar,
    rng: np.random.Generator,
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Yield (case row, its case_event rows) for `days` of history ending at `as_of` (naive UTC).

    Days are counted in `tz`; due times run on `calendar`'s working days.
    """
    offset = tz.utcoffset(as_of) or timedelta(0)
    start_local = (as_of + offset).replace(hour=0, minute=0, second=0) - timedelta(days=days - 1)
    hour_p = HOURLY / HOURLY.sum()
    weights = buildings.households / buildings.households.sum()
    sites = _sites(buildings, workers_by_grid)
    for day in range(days):
        day_local = start_local + timedelta(days=day)
        rate = per_day * (0.8 if day_local.weekday() >= 5 else 1.06)
        n = int(rng.poisson(rate))
        hours = rng.choice(24, n, p=hour_p)
        seconds = np.sort(hours * 3600 + rng.integers(0, 3600, n)).tolist()
        where = rng.choice(len(buildings.ids), n, p=weights).tolist()
        channels = _choice(rng, CHANNELS, n)
        categories = _choice(rng, CATEGORIES, n)
        for i in range(n):
            reported = day_local + timedelta(seconds=seconds[i]) - offset
            if reported > as_of:
                return
            yield _lifecycle(
                case_id=f"{district_code}-{day_local:%Y%m%d}-{i + 1:05d}",
                reported=reported,
                channel=channels[i],
                category=categories[i],
                site=sites[where[i]],
                as_of=as_of,
                tz=tz,
                calendar=calendar,
                rng=rng,
            )


def _lifecycle(
    *,
    case_id: str,
    reported: datetime,
    channel: Channel,
    category: Category,
    site: _Site,
    as_of: datetime,
    tz: tzinfo,
    calendar: WorkCalendar,
    rng: np.random.Generator,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    worker_id, worker = site.workers[int(rng.integers(len(site.workers)))]
    reporter = worker if channel is Channel.GRID_WORKER else f"channel:{channel.value}"
    steps: list[tuple[CaseAction, datetime, str]] = [(CaseAction.REPORT, reported, reporter)]
    reviewed = reported + _minutes(rng, 25)
    late = reworked = False
    if rng.random() < P_REJECT:
        steps.append((CaseAction.REJECT, reviewed, "指挥中心受理员"))
    else:
        steps.append((CaseAction.ACCEPT, reviewed, "指挥中心受理员"))
        due = add_working_hours(reviewed, DUE_WORKING_HOURS[category], tz=tz, calendar=calendar)
        dispatched = reviewed + _minutes(rng, 12)
        steps.append((CaseAction.DISPATCH, dispatched, "指挥中心派遣员"))
        window = max(due - dispatched, timedelta(minutes=30))
        handled = dispatched + window * rng.lognormal(_log(0.45), 0.55)
        deferred = rng.random() < P_DEFER
        if deferred:
            steps.append(
                (CaseAction.DEFER, dispatched + (handled - dispatched) * 0.3, "街道分中心")
            )
            handled += window * rng.uniform(0.5, 2.5)
        steps.append((CaseAction.HANDLE, handled, worker))
        if not deferred and handled > due:
            steps.append((CaseAction.SUPERVISE, due, "区督查员"))
        if rng.random() < P_REWORK:
            reworked = True
            rework = handled + _minutes(rng, 90)
            steps.append((CaseAction.REWORK, rework, "街道监督员"))
            handled = rework + window * rng.uniform(0.2, 0.6)
            steps.append((CaseAction.HANDLE, handled, worker))
        late = handled > due
        closed = handled + _minutes(rng, 120)
        steps.append((CaseAction.CLOSE, closed, "街道监督员"))
        if rng.random() < P_EVALUATE:
            steps.append((CaseAction.EVALUATE, closed + _minutes(rng, 900), "回访专员"))
    steps.sort(key=lambda step: step[1])
    resolved = _RESOLVED.pick(rng)
    bad = 0.03 + 0.08 * late + 0.1 * reworked
    satisfaction = Satisfaction.DISSATISFIED if rng.random() < bad else _SATISFACTION.pick(rng)
    case_steps = [
        CaseStep(
            id=f"{case_id}-{i}",
            action=action,
            at=at,
            actor=actor,
            satisfaction=satisfaction if action is CaseAction.EVALUATE else None,
            resolved_at=resolved if action is CaseAction.CLOSE else None,
        )
        for i, (action, at, actor) in enumerate(steps)
        if at <= as_of
    ]
    state = replay_case(case_steps, category=category, tz=tz, calendar=calendar)
    assert state is not None  # the report is at or before as_of by construction
    a = site.ancestors
    description = DESCRIPTIONS[category][int(rng.integers(len(DESCRIPTIONS[category])))]
    row: dict[str, Any] = {
        "id": case_id,
        "title": f"{site.name} {description}",
        "channel": channel.value,
        "category": category.value,
        "lon": round(site.lon + rng.normal(0, 2e-4), 6),
        "lat": round(site.lat + rng.normal(0, 2e-4), 6),
        **case_columns(state),
        "worker_id": worker_id if state.dispatched_at is not None and worker_id else None,
        "alarm_id": None,
        "district_id": a[0],
        "street_id": a[1],
        "community_id": a[2],
        "grid_id": a[3],
        "building_id": site.building_id,
    }
    return row, case_event_rows(case_id, case_steps, state)
