"""A PostgreSQL database with the whole demo city and a year of 1,000,000 cases, for the case
table's benchmark (bench_case_table.py); kept between runs.

The city (every district's hierarchy and its grid workers) comes from `seed_city` with no
history; the cases are drawn here with numpy, a year ending at AS_OF spread over the buildings by
households, shaped by hour of day, with the seed's mix of channels, categories, rejections,
deferrals, rework, lateness and evaluations, and loaded with COPY (about a minute). Due times are
approximate (a working hour counted as three clock hours, not the working calendar): the
benchmark needs realistic spreads of values, not exact deadlines.

A database that already has `--cases` cases is reused as it is; `--fresh` builds it again.

    python bench/gen_cases.py [--cases 1000000] [--fresh]
        (GRIDCC_BENCH_DATABASE_URL, default postgresql+psycopg://postgres@127.0.0.1:5432/gridcc_bench_1m)
"""

from __future__ import annotations

import argparse
import io
import os
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url

from data_sources import db
from data_sources.model import DUE_WORKING_HOURS, CaseStatus, Category, Level
from data_sources.schema import CaseRow, NodeRow, WorkerRow
from data_sources.seed.city import seed_city
from data_sources.seed.history import CATEGORIES, CHANNELS, DESCRIPTIONS, HOURLY

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/gridcc_bench_1m"
TZ = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 11, 23, 6, 0)  # as the tests and the other benches: 14:00 in Kunming
DAYS = 365
CASES = 1_000_000
#: Rows per COPY chunk (and progress line).
CHUNK = 100_000
#: The migration that adds the case table's indexes: they are built after the load, as on a
#: database that upgrades with its cases already in it.
BEFORE_INDEXES = "0004"


def database_url() -> str:
    return os.environ.get("GRIDCC_BENCH_DATABASE_URL") or DEFAULT_URL


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _create_database(url: str, *, fresh: bool) -> None:
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if exists and fresh:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            if not exists or fresh:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def _count(engine: Engine) -> int:
    if not db.is_migrated(engine):
        return -1
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(CaseRow)).scalar_one())


def ensure_cases(url: str, *, cases: int = CASES, fresh: bool = False) -> Engine:
    """An engine on a migrated database with the city and `cases` cases (made if missing)."""
    _create_database(url, fresh=fresh)
    engine = db.make_engine(url)
    have = _count(engine)
    if have == cases:
        say(f"reusing {make_url(url).database}: {have:,} cases")
        db.upgrade(engine)
        return engine
    if have >= 0:
        engine.dispose()
        _create_database(url, fresh=True)
        engine = db.make_engine(url)
    started = time.perf_counter()
    db.upgrade(engine, BEFORE_INDEXES)
    say("seeding the city's hierarchy and workers (no history)")
    seed_city(
        engine,
        seed=7,
        as_of=AS_OF,
        tz=TZ,
        days=1,
        cases_per_day=0,
        progress=lambda stage, done, total: say(f"  {stage} {done}/{total}"),
    )
    load_cases(engine, cases)
    say("migrating to head (the case table's indexes)")
    migrated = time.perf_counter()
    db.upgrade(engine)
    say(f"  indexes built in {time.perf_counter() - migrated:.0f} s")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    say(f"ready: {cases:,} cases in {time.perf_counter() - started:.0f} s")
    return engine


def _buildings(engine: Engine) -> pd.DataFrame:
    n = NodeRow
    query = select(
        n.id,
        n.name_zh,
        n.households,
        n.lon,
        n.lat,
        n.district_id,
        n.street_id,
        n.community_id,
        n.grid_id,
    ).where(n.level == Level.BUILDING.value)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=list(query.selected_columns.keys()))
        codes = dict(
            conn.execute(select(n.id, n.code).where(n.level == Level.DISTRICT.value)).all()
        )
        workers = pd.DataFrame(
            conn.execute(
                select(WorkerRow.grid_id, func.min(WorkerRow.id))
                .where(WorkerRow.role == "grid_worker")
                .group_by(WorkerRow.grid_id)
            ).all(),
            columns=["grid_id", "worker_id"],
        )
    frame["district_code"] = frame["district_id"].map(codes)
    return frame.merge(workers, on="grid_id", how="left")


def _draw(rng: np.random.Generator, options: dict[object, float], n: int) -> np.ndarray:
    keys = list(options)
    p = np.array(list(options.values()))
    return np.array([str(k) for k in keys], dtype=object)[rng.choice(len(keys), n, p=p / p.sum())]


def case_frame(buildings: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """`n` cases as the columns of `cases`."""
    hours = DAYS * 24
    start = AS_OF - timedelta(hours=hours)
    # Arrival instants: a day, then an hour of day by HOURLY (local), then a second.
    day = rng.integers(0, DAYS + 1, n)  # the first local day is partly before `start`
    hour_local = rng.choice(24, n, p=HOURLY / HOURLY.sum())
    offset = int(TZ.utcoffset(AS_OF).total_seconds())  # type: ignore[union-attr]
    midnight_local = (start + timedelta(seconds=offset)).replace(hour=0, minute=0, second=0)
    seconds = day * 86_400 + hour_local * 3_600 + rng.integers(0, 3_600, n)
    reported = (
        np.datetime64(midnight_local - timedelta(seconds=offset), "us")
        + (seconds * 1_000_000).astype("timedelta64[us]")
        + rng.integers(0, 1_000_000, n).astype("timedelta64[us]")
    )
    # Today's arrivals after AS_OF have not happened: they move to the same hour yesterday.
    future = reported >= np.datetime64(AS_OF, "us")
    reported[future] -= np.timedelta64(1, "D")
    # In time order, as a live system inserts them (the table's physical order follows).
    reported = np.sort(reported)
    weights = buildings["households"].to_numpy(dtype=np.float64) + 1.0
    where = buildings.iloc[rng.choice(len(buildings), n, p=weights / weights.sum())].reset_index(
        drop=True
    )
    category = _draw(rng, CATEGORIES, n)
    channel = _draw(rng, CHANNELS, n)
    now = np.datetime64(AS_OF, "us")
    minute = np.timedelta64(60_000_000, "us")

    def minutes(median: float, size: int = n) -> np.ndarray:
        return (rng.lognormal(np.log(median), 0.6, size) * minute).astype("timedelta64[us]")

    limit_h = pd.Series(category).map({c.value: h for c, h in DUE_WORKING_HOURS.items()})
    rejected = rng.random(n) < 0.04
    accepted_at = reported + minutes(25)
    due = accepted_at + (limit_h.to_numpy() * 3 * 60 * minute).astype("timedelta64[us]")
    dispatched_at = accepted_at + minutes(12)
    window = np.maximum(due - dispatched_at, 30 * minute)
    handled_at = dispatched_at + (window * rng.lognormal(np.log(0.45), 0.55, n)).astype(
        "timedelta64[us]"
    )
    deferred = (rng.random(n) < 0.03) & ~rejected
    handled_at = np.where(deferred, handled_at + window * 1.5, handled_at)
    reworked = (rng.random(n) < 0.06) & ~rejected
    handled_at = np.where(reworked, handled_at + minutes(90) + window // 3, handled_at)
    closed_at = handled_at + minutes(120)
    evaluated = rng.random(n) < 0.82
    late = handled_at > due

    status = np.full(n, CaseStatus.CLOSED.value, dtype=object)
    status[closed_at > now] = CaseStatus.HANDLED.value
    status[handled_at > now] = CaseStatus.DISPATCHED.value
    status[dispatched_at > now] = CaseStatus.ACCEPTED.value
    status[accepted_at > now] = CaseStatus.REPORTED.value
    status[rejected] = np.where(accepted_at[rejected] > now, "reported", "rejected")
    closed = status == CaseStatus.CLOSED.value
    accepted = ~np.isin(status, ["reported", "rejected"])
    handled = np.isin(status, ["handled", "closed"]) | (reworked & (status == "dispatched"))
    bad = 0.03 + 0.08 * late + 0.1 * reworked
    u = rng.random(n)
    satisfaction = np.where(
        u < bad, "dissatisfied", np.where(u < bad + 0.07, "basically_satisfied", "satisfied")
    )
    resolved = _draw(rng, {"grid": 0.70, "community": 0.25, "street": 0.04, "district": 0.01}, n)
    descriptions = {c.value: list(DESCRIPTIONS[c]) for c in Category}
    pick = rng.integers(0, 3, n)
    titles = [
        f"{name} {descriptions[cat][k % len(descriptions[cat])]}"
        for name, cat, k in zip(where["name_zh"], category, pick, strict=True)
    ]
    nat = np.datetime64("NaT")
    frame = pd.DataFrame(
        {
            "id": "",
            "title": titles,
            "channel": channel,
            "category": category,
            "status": status,
            "lon": where["lon"].round(6),
            "lat": where["lat"].round(6),
            "reported_at": reported,
            "accepted_at": np.where(accepted, accepted_at, nat),
            "dispatched_at": np.where(accepted & (dispatched_at <= now), dispatched_at, nat),
            "handled_at": np.where(handled, np.minimum(handled_at, now), nat),
            "closed_at": np.where(closed, closed_at, nat),
            "due_at": np.where(accepted, due, nat),
            "handling_seconds": np.where(
                closed, (closed_at - reported) // np.timedelta64(1, "s"), -1
            ),
            "deferred": deferred & accepted,
            "supervised": accepted & ~deferred & (np.minimum(handled_at, now) > due) & (due < now),
            "rework_count": (reworked & handled).astype(int),
            "satisfaction": np.where(closed & evaluated, satisfaction, None),
            "resolved_at": np.where(closed, resolved, None),
            "worker_id": np.where(accepted, where["worker_id"], np.nan),
            "alarm_id": None,
            "event_count": 1 + accepted * 2 + handled + closed + (closed & evaluated),
            "district_id": where["district_id"],
            "street_id": where["street_id"],
            "community_id": where["community_id"],
            "grid_id": where["grid_id"],
            "building_id": where["id"],
        }
    )
    # Case numbers as the seed makes them: district, local day, number of the day.
    local_day = pd.Series(reported + np.timedelta64(offset, "s")).dt.strftime("%Y%m%d")
    district = where["district_code"]
    number = frame.groupby([district, local_day]).cumcount() + 1
    frame["id"] = district + "-" + local_day + "-" + number.map("{:06d}".format)
    return frame


def load_cases(engine: Engine, total: int) -> None:
    """COPY `total` cases into `cases`, a chunk of a day-ordered year at a time."""
    buildings = _buildings(engine)
    say(f"loading {total:,} cases over {len(buildings):,} buildings")
    rng = np.random.default_rng(2026)
    frame = case_frame(buildings, total, rng)
    columns = list(frame.columns)
    frame["handling_seconds"] = frame["handling_seconds"].astype("Int64").replace(-1, pd.NA)
    frame["worker_id"] = frame["worker_id"].astype("Int64")
    frame["event_count"] = frame["event_count"].astype(int)
    sql = f"COPY cases ({', '.join(columns)}) FROM STDIN (FORMAT csv)"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for start in range(0, total, CHUNK):
            buffer = io.StringIO()
            frame.iloc[start : start + CHUNK].to_csv(
                buffer, header=False, index=False, date_format="%Y-%m-%d %H:%M:%S.%f"
            )
            with cursor.copy(sql) as copy:
                copy.write(buffer.getvalue())
            raw.commit()
            say(f"  {min(start + CHUNK, total):,} / {total:,} cases")
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=CASES)
    parser.add_argument("--fresh", action="store_true", help="drop and rebuild the database")
    args = parser.parse_args()
    ensure_cases(database_url(), cases=args.cases, fresh=args.fresh).dispose()


if __name__ == "__main__":
    main()
