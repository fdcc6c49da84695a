"""The demo city's simulator lives at the seeded city's pace: a simulated day of `gridcc demo` keeps
今日新增 and the 24-hour trend in the seeded history's range; `--rate` is a stress load.

A simulated day runs in seconds: the simulator is driven by its own clock argument (`due(now)`) in
30-second ticks, and its case and alarm events go through ingest's validation and the projector into
the seeded database, inside a transaction that is rolled back (the seeded city stays as it was); the
wall's own queries (`new_cases`, `trend`) count both the simulated day and the history.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from data_sources import db, store
from data_sources.bus.memory import MemoryBus
from data_sources.directory import Directory, load_directory
from data_sources.ingest import Ingestor
from data_sources.model import Node
from data_sources.projector import project
from data_sources.schema import AlarmRow
from data_sources.seed.activity import ALARM_RATE
from data_sources.seed.city import SeedReport, seed_city
from data_sources.seed.history import HOURLY
from data_sources.seed.profile import district_profiles
from data_sources.simulator import EventFactory, LiveSimulator, RawEvent, SimPlaces
from data_sources.simulator_pace import FIX_INTERVAL, CaseIntake, FixedLoad, HistoryPace
from data_sources.wall import ON_DUTY, day_start, new_cases, trend
from data_sources.workhours import CN_CALENDAR

from .conftest import AS_OF, SMALL_SEED, TZ

TICK = timedelta(seconds=30)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
PANLONG = "530103"
POPULATION = {code: profile.population for code, profile in district_profiles().items()}
#: `gridcc demo` seeds 1,600 cases a day over the city; seeding the whole city takes ~25 s, so the
#: demo city here is Panlong taking the whole city's volume (an hour holds as many cases as the
#: demo's city does; SMALL_SEED's Panlong gets ~90 a day, 2–8 in a busy hour).
CITY_PER_DAY = 1600 * sum(POPULATION.values()) / POPULATION[PANLONG]
DEMO_SEED = {"districts": [PANLONG], "days": 14, "cases_per_day": CITY_PER_DAY}
#: The seeded history's whole days (it starts at local midnight; `AS_OF`'s own day is partial).
WHOLE_DAYS = [day_start(AS_OF, TZ) - DAY * k for k in range(int(DEMO_SEED["days"]) - 1, 0, -1)]


@pytest.fixture(scope="module")
def demo_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, SeedReport]]:
    engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'city.db'}")
    db.upgrade(engine)
    report = seed_city(engine, seed=7, as_of=AS_OF, tz=TZ, **DEMO_SEED)  # type: ignore[arg-type]
    yield engine, report
    engine.dispose()


async def _unused_sink(_raw: list[RawEvent]) -> None:
    raise AssertionError("driven through due(), not run()")


def _unused_clock() -> datetime:
    raise AssertionError("driven through due(), not run()")


def _simulator(engine: Engine, seed: int) -> tuple[LiveSimulator, Directory, SimPlaces]:
    """The simulator as `gridcc demo` builds it: the database's city at its history's pace."""
    with Session(engine) as session:
        directory = load_directory(session=session)
        places = SimPlaces.load(session=session)
        pace = HistoryPace.load(session=session, tz=TZ)
    factory = EventFactory(places, directory, np.random.default_rng(seed), prefix=f"day{seed}")
    simulator = LiveSimulator(factory, _unused_sink, pace, speed=60, clock=_unused_clock)
    return simulator, directory, places


def in_history_range(value: int, history: Sequence[int]) -> tuple[bool, str]:
    """Whether `value` is within the range of the history's days, give or take 2 Poisson
    standard deviations at the history's mean.

    Arrivals are a Poisson process, so even a simulator at exactly the history's rate gives a
    day (or an hour) outside the range of n past days with probability 2 / (n + 1): 15 % with the
    13 whole days here, and a night hour holds only a handful of cases. Two more standard
    deviations beyond the extremes (≈ 3.7 from the mean above the busiest of 13 days) a faithful
    simulator fails a check about once in a thousand, a few percent over the ~70 checks of a day:
    the seeds are fixed, so that is the chance that a change to the simulator's draws needs a
    second look, not a flaky test. A simulator 30 % too busy fails the day's total; the runaway
    one failed every check by two orders of magnitude.
    """
    low, high = min(history), max(history)
    slack = 2 * math.sqrt(max(statistics.mean(history), 1))
    ok = low - slack <= value <= high + slack
    return ok, f"{value} vs history {low}–{high} (±{slack:.1f})"


@dataclass(frozen=True)
class DemoDay:
    """What a wall would have shown over a simulated day from `AS_OF`, and what was sent."""

    #: (local hour just completed, 今日新增 of the city) at the end of every hour.
    new_today: list[tuple[int, int]]
    #: The city's 24-hour trend at the end of the day: (local hour, cases reported).
    trend: list[tuple[int, int]]
    #: Cases reported over the day per area below the city (its districts, or the streets of a
    #: city of one district, as the test seed's), by code.
    areas: dict[str, int]
    #: Events sent, by kind.
    kinds: Counter[str]
    #: GPS fix times per worker code.
    fixes: dict[str, list[datetime]]
    #: Grid workers in the city (those who carry a GPS phone).
    grid_workers: int


def _local(utc: datetime) -> datetime:
    return utc + (TZ.utcoffset(utc) or timedelta(0))


def _local_hour(utc: datetime) -> int:
    return _local(utc).hour


def _project(
    session: Session, ingestor: Ingestor, directory: Directory, raw: list[RawEvent]
) -> None:
    for start in range(0, len(raw), 1000):
        events = ingestor.validate(raw[start : start + 1000]).events
        project(session, events, directory=directory, tz=TZ, calendar=CN_CALENDAR)


def _areas(session: Session) -> tuple[Node, list[Node]]:
    """The city and the areas below it that are checked: its districts, or if it has only one
    (as the test seed), that district's streets."""
    city = store.root_node(session=session)
    assert city is not None
    below = store.children(session=session, node=city)
    if len(below) == 1:
        below = store.children(session=session, node=below[0])
    return city, below


def simulate_day(engine: Engine, seed: int) -> DemoDay:
    """A simulated day of the demo city from `AS_OF`, projected into the database and rolled back."""
    simulator, directory, places = _simulator(engine, seed)
    kinds: Counter[str] = Counter()
    fixes: dict[str, list[datetime]] = {}
    new_today: list[tuple[int, int]] = []
    with Session(engine) as session:
        city, areas = _areas(session)
        # Ingest's duplicate check reads through the same connection: it sees this transaction.
        # The simulated day is the seed's: ingest's time window follows the simulated clock.
        ingestor = Ingestor(
            MemoryBus(),
            sessionmaker(bind=session.connection()),
            lambda: directory,
            clock=lambda: now + timedelta(hours=1),
        )
        now = AS_OF
        simulator.due(now)
        for _ in range(24):
            raw: list[RawEvent] = []
            for _ in range(HOUR // TICK):
                now += TICK
                for event in simulator.due(now):
                    kinds[event["kind"]] += 1
                    if event["kind"] == "worker.position":  # not what 今日新增 is about
                        fixes.setdefault(event["payload"]["worker"], []).append(
                            datetime.fromisoformat(event["ts"]).replace(tzinfo=None)
                        )
                    else:
                        raw.append(event)
            _project(session, ingestor, directory, raw)
            today = new_cases(session=session, node=city, since=day_start(now, TZ))
            new_today.append(((_local_hour(now) - 1) % 24, today))
        day = trend(session=session, node=city, now=now - SECOND)
        reported = _reported(session, areas, AS_OF, AS_OF + DAY)
        session.rollback()
    return DemoDay(
        new_today=new_today,
        trend=[(_local_hour(h), n) for h, n in zip(day.hours, day.reported, strict=True)],
        areas=reported,
        kinds=kinds,
        fixes=fixes,
        grid_workers=len(places.workers),
    )


def _reported(
    session: Session, nodes: list[Node], since: datetime, until: datetime
) -> dict[str, int]:
    """Cases reported per node in [since, until) (whole hours), as the wall's trend counts them."""
    hours, end = int((until - since) / HOUR), until - SECOND
    return {
        n.code: sum(trend(session=session, node=n, now=end, hours=hours).reported) for n in nodes
    }


@pytest.fixture(scope="module")
def demo_day(demo_city: tuple[Engine, SeedReport]) -> DemoDay:
    return simulate_day(demo_city[0], seed=7)


def history_days(engine: Engine) -> dict[str, list[list[int]]]:
    """The seeded history's whole days, as the wall's trend counts them: per area code (the city
    first), a list of 24 hourly counts of reported cases (local hours 0–23) per day."""
    days: dict[str, list[list[int]]] = {}
    with Session(engine) as session:
        city, areas = _areas(session)
        for node in [city, *areas]:
            for midnight in WHOLE_DAYS:
                end = midnight + DAY - SECOND
                day = trend(session=session, node=node, now=end, hours=24)
                assert [_local_hour(h) for h in day.hours] == list(range(24))
                days.setdefault(node.code, []).append(day.reported)
    return days


@pytest.fixture(scope="module")
def history(demo_city: tuple[Engine, SeedReport]) -> dict[str, list[list[int]]]:
    return history_days(demo_city[0])


def test_a_simulated_day_keeps_new_today_in_the_history_range(
    demo_day: DemoDay, history: dict[str, list[list[int]]]
) -> None:
    """今日新增 at the end of every hour of a simulated day, against the history's same hour."""
    city = next(iter(history))
    cumulative = [np.cumsum(day).tolist() for day in history[city]]
    misses = []
    for hour, today in demo_day.new_today:
        if hour == 23:
            continue  # the day has just ended: 今日新增 starts again from 0
        ok, how = in_history_range(today, [day[hour] for day in cumulative])
        if not ok:
            misses.append(f"今日新增 at {hour + 1:02d}:00: {how}")
    assert not misses, misses
    reported = demo_day.kinds["case.reported"]
    ok, how = in_history_range(reported, [sum(day) for day in history[city]])
    assert ok, f"cases reported in the simulated day: {how}"


def test_a_simulated_day_keeps_the_hourly_trend_in_the_history_range(
    demo_day: DemoDay, history: dict[str, list[list[int]]]
) -> None:
    """The 24-hour trend after a simulated day: each hour against the history's same hour."""
    city = next(iter(history))
    assert sorted(hour for hour, _ in demo_day.trend) == list(range(24))
    misses = []
    for hour, reported in demo_day.trend:
        ok, how = in_history_range(reported, [day[hour] for day in history[city]])
        if not ok:
            misses.append(f"{hour:02d}:00: {how}")
    assert not misses, misses
    # …and it has the history's shape: the night is quiet, the mornings and afternoons busy.
    by_hour = dict(demo_day.trend)
    assert max(by_hour[h] for h in range(0, 6)) < min(by_hour[h] for h in range(9, 11))


def test_each_area_gets_its_share_of_the_history(
    demo_day: DemoDay, history: dict[str, list[list[int]]]
) -> None:
    """Cases reported in the simulated day in each street of the test seed's district."""
    misses = []
    for code, reported in demo_day.areas.items():
        ok, how = in_history_range(reported, [sum(day) for day in history[code]])
        if not ok:
            misses.append(f"area {code}: {how}")
    assert not misses, misses
    assert sum(demo_day.areas.values()) == demo_day.kinds["case.reported"]


def test_alarms_and_gps_fixes_follow_the_seeded_rates(
    demo_day: DemoDay, demo_city: tuple[Engine, SeedReport]
) -> None:
    engine, report = demo_city
    # Alarms: the seeded alarm history's whole days (it covers the 7 days before AS_OF).
    with Session(engine) as session:
        started = session.scalars(select(AlarmRow.started_at)).all()
    per_day = Counter(day_start(t, TZ) for t in started)
    whole = [n for day, n in per_day.items() if AS_OF - 7 * DAY < day and day + DAY <= AS_OF]
    assert len(whole) >= 5
    assert statistics.mean(whole) == pytest.approx(ALARM_RATE * report.cameras, rel=0.15)
    ok, how = in_history_range(demo_day.kinds["alarm.raised"], whole)
    assert ok, f"alarms raised in the simulated day: {how}"
    # GPS: every grid worker sends a fix every FIX_INTERVAL, so none drops off duty (在岗): the
    # seeded last fixes are at most FIX_INTERVAL old, the first live ones at most FIX_INTERVAL late.
    assert 2 * FIX_INTERVAL <= ON_DUTY
    assert len(demo_day.fixes) == demo_day.grid_workers
    for code, times in demo_day.fixes.items():
        assert times[0] - AS_OF <= FIX_INTERVAL, code
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert max(gaps) <= FIX_INTERVAL, code
    assert demo_day.kinds["worker.position"] == pytest.approx(
        demo_day.grid_workers * (DAY / FIX_INTERVAL), abs=demo_day.grid_workers
    )


def test_the_same_rng_gives_the_same_city(demo_city: tuple[Engine, SeedReport]) -> None:
    engine, _ = demo_city
    runs = []
    for _ in range(2):
        simulator, _, _ = _simulator(engine, seed=3)
        sent = simulator.due(AS_OF)
        for i in range(1, 121):
            sent += simulator.due(AS_OF + TICK * i)
        runs.append(sent)
    assert runs[0] == runs[1]
    assert {e["kind"] for e in runs[0]} >= {"case.reported", "case.transitioned", "worker.position"}


def test_a_fixed_rate_is_a_stress_load_of_that_many_events_per_second(
    demo_city: tuple[Engine, SeedReport], history: dict[str, list[list[int]]]
) -> None:
    """`--rate 40`, the demo's default before it followed the history (what ran away): 40
    events/s on average over the day, whatever the city; at 14:00, over a hundred times the
    history's new cases."""
    engine, _ = demo_city
    simulator, _, _ = _simulator(engine, seed=5)
    load = FixedLoad(40, TZ)
    minute = list(load.stories(simulator.factory, AS_OF, AS_OF + timedelta(minutes=1)))
    shape = HOURLY[_local_hour(AS_OF)] / HOURLY.mean()
    assert sum(len(s) for s in minute) == pytest.approx(40 * shape * 60, abs=10)
    cases_per_hour = 60 * sum(s[0].kind == "case.reported" for s in minute)
    city = next(iter(history))
    busiest = max(day[_local_hour(AS_OF)] for day in history[city])
    assert cases_per_hour > 100 * busiest


def test_the_intake_is_the_history_s_median_day(seeded: tuple[Engine, SeedReport]) -> None:
    """On each backend: the intake learnt from SMALL_SEED's history is its weekdays' and weekend
    days' median volume."""
    engine, _ = seeded
    with Session(engine) as session:
        intake = CaseIntake.load(session=session, tz=TZ)
        city = store.root_node(session=session)
        assert city is not None
        # The history's whole days but its first: the intake cannot tell a history that starts
        # at midnight from one that starts later, and takes no first day as whole.
        days = [day_start(AS_OF, TZ) - DAY * k for k in range(int(SMALL_SEED["days"]) - 2, 0, -1)]
        totals = {
            midnight: sum(trend(session=session, node=city, now=midnight + DAY - SECOND).reported)
            for midnight in days
        }
    weekdays = [n for midnight, n in totals.items() if _local(midnight).weekday() < 5]
    weekends = [n for midnight, n in totals.items() if _local(midnight).weekday() >= 5]
    assert intake.per_day == pytest.approx(
        (statistics.median(weekdays), statistics.median(weekends)), abs=1e-6
    )
    assert intake.per_day[1] < intake.per_day[0]


def test_a_history_under_two_days_is_extrapolated_by_the_hourly_profile(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """One partial day of history (a Monday, 00:00–14:00) still gives the day's volume."""
    engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('short') / 'city.db'}")
    db.upgrade(engine)
    city_per_day, shilin = 100_000, "530126"
    seed_city(
        engine, seed=4, as_of=AS_OF, tz=TZ, districts=[shilin], days=1, cases_per_day=city_per_day
    )
    with Session(engine) as session:
        intake = CaseIntake.load(session=session, tz=TZ)
    engine.dispose()
    share = POPULATION[shilin] / sum(POPULATION.values())
    weekday = city_per_day * share * 1.06  # the seed's weekday volume: ≈ 2,600, ≈ 1,300 seeded
    assert intake.per_day[0] == pytest.approx(weekday, rel=0.1)
    assert intake.per_day == (intake.per_day[0], intake.per_day[0])
