"""`gridcc seed`: builds the Kunming demo city into an empty, migrated database.

Deterministic for a given `seed` and `as_of`: ids, geometry, people and history are all drawn from
per-district random streams, so two runs give identical rows whichever process built a district.

Two rounds of work run in a process pool, district by district: first the hierarchy (the slow part
is geometry); then, once every district's node count and so its ids are known, the people, cameras
and history. The main process only inserts (`writer`), in a fixed order, while the pool computes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import shapely
from shapely.geometry import shape
from sqlalchemy import Engine, func, select

from data_sources.model import Level
from data_sources.schema import NodeRow
from data_sources.seed.activity import district_activity
from data_sources.seed.geometry import geojson
from data_sources.seed.hierarchy import (
    CITY_ID,
    NODE_COLUMNS,
    TREE_LEVELS,
    DistrictNodes,
    build_district,
    first_ids,
    node_rows,
)
from data_sources.seed.profile import (
    CITY_CODE,
    CITY_NAME,
    district_features,
    district_profiles,
)
from data_sources.seed.writer import Batch, BulkWriter, Spool, bulk_writer, spool
from data_sources.workhours import CN_CALENDAR, WorkCalendar

#: Progress callback: (stage, done, total).
Progress = Callable[[str, int, int], None]
#: Node rows per transaction (and progress step).
NODE_CHUNK = 20_000


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
    calendar: WorkCalendar = CN_CALENDAR,
    districts: Iterable[str] | None = None,
    days: int = 90,
    cases_per_day: float = 1_600,
    processes: int = 2,
    progress: Progress = _noop,
) -> SeedReport:
    """Seed the demo city (or only `districts`, by adcode) into the empty database behind `engine`.

    Args:
        as_of: naive UTC end of the seeded history.
        calendar: the working days of due times (the official calendar unless a deployment
            configures another: `Services.calendar`).
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
    with (
        tempfile.TemporaryDirectory(prefix="gridcc-seed-") as scratch,
        _pool(processes) as pool,
        bulk_writer(engine) as writer,
    ):
        progress("hierarchy", 0, len(wanted))
        # Biggest districts first, so that neither process is left with a big one at the end.
        built = {
            code: pool.submit(build_district, features[code], profiles[code], seed)
            for code in sorted(wanted, key=lambda code: -profiles[code].grids)
        }
        for done, _ in enumerate(as_completed(built.values()), 1):
            progress("hierarchy", done, len(wanted))
        trees = [built[code].result() for code in wanted]
        firsts = first_ids(trees)

        population = sum(profile.population for profile in profiles.values())
        # Submitted in the order they are inserted in, so inserting overlaps computing.
        rows = [
            pool.submit(
                _district_rows,
                os.path.join(scratch, f"{code}.db") if writer.spools else None,
                profiles[code],
                tree.without_geometry(),
                first,
                seed=seed,
                as_of=as_of,
                tz=tz,
                calendar=calendar,
                days=days,
                cases_per_day=cases_per_day * profiles[code].population / population,
                text_datetimes=writer.spools,
            )
            for code, tree, first in zip(wanted, trees, firsts, strict=True)
        ]
        city = _city_row([features[code] for code in wanted], trees)
        _insert_nodes(writer, city, trees, firsts, progress)
        report.nodes[Level.CITY.value] = 1
        for level, name in enumerate(TREE_LEVELS):
            report.nodes[name.value] = sum(tree.count(level) for tree in trees)

        progress("people, cameras, history", 0, len(wanted))
        for done, future in enumerate(rows, 1):
            counts = writer.load(future.result())
            report.workers += counts.get("workers", 0)
            report.cameras += counts.get("cameras", 0)
            report.alarms += counts.get("alarms", 0)
            report.cases += counts.get("cases", 0)
            report.case_events += counts.get("case_events", 0)
            progress("people, cameras, history", done, len(wanted))
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _pool(processes: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool that drops its queued work if the seed fails (instead of finishing it)."""
    pool = ProcessPoolExecutor(max_workers=max(1, processes))
    try:
        yield pool
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()


def _district_rows(spool_to: str | None, *args: Any, **kwargs: Any) -> list[Batch] | Spool:
    """`district_activity`, run in a worker process: spooled to a file if given one."""
    batches = district_activity(*args, **kwargs)
    return spool(batches, spool_to) if spool_to else batches


def _city_row(features: list[dict[str, Any]], districts: list[DistrictNodes]) -> tuple[Any, ...]:
    outline = shapely.union_all([shapely.make_valid(shape(f["geometry"])) for f in features])
    return (
        CITY_ID,
        CITY_CODE,
        Level.CITY.value,
        None,
        CITY_NAME[0],
        CITY_NAME[1],
        102.833,
        25.040,
        sum(d.area_km2[0] for d in districts),
        sum(d.households[0] for d in districts),
        geojson(outline),
        None,
        None,
        None,
        None,
    )


def _insert_nodes(
    writer: BulkWriter,
    city: tuple[Any, ...],
    districts: list[DistrictNodes],
    firsts: list[list[int]],
    progress: Progress,
) -> None:
    """All node rows in id order: the city, then level by level, district by district."""
    total = 1 + sum(len(d.code) for d in districts)
    rows = [city]
    done = 0
    progress("nodes", 0, total)
    for level in range(len(TREE_LEVELS)):
        for district, first in zip(districts, firsts, strict=True):
            rows += node_rows(district, first, level)
            if len(rows) >= NODE_CHUNK:
                done += _insert_node_chunk(writer, rows)
                progress("nodes", done, total)
                rows = []
    if rows:
        done += _insert_node_chunk(writer, rows)
        progress("nodes", done, total)


def _insert_node_chunk(writer: BulkWriter, rows: list[tuple[Any, ...]]) -> int:
    return writer.load([Batch("nodes", NODE_COLUMNS, rows)])["nodes"]
