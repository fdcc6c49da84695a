"""How fast the simulated city lives: which storylines start in each moment of the clock.

`HistoryPace` (the default) follows the seeded city: new cases at the seeded history's daily volume
for the simulated area (weekday or weekend) spread over the day by `HOURLY`, camera alarms at the
seed's rate per camera, and one GPS fix per grid worker every `FIX_INTERVAL`. `FixedLoad` is the
stress-test load: a fixed number of events per second in a fixed mix, whatever the history says.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data_sources.events import Event
from data_sources.model import Level
from data_sources.schema import CaseRow, NodeRow
from data_sources.seed.activity import ALARM_RATE
from data_sources.seed.history import HOURLY

if TYPE_CHECKING:
    from data_sources.simulator import EventFactory

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

#: One GPS fix per grid worker every 15 minutes. The seed gives each worker a last fix 5–900 s old,
#: the cadence of a fix every 15 min; keeping it keeps every worker within `ON_DUTY` (30 min) of a
#: fix, so 在岗网格员 stays what the freshly seeded city showed. ≈ 7.9 fixes/s for the city's 7,139
#: grid workers, 0.6/s for Panlong's 520.
FIX_INTERVAL = timedelta(minutes=15)
#: Days of history the intake is learnt from (the newest ones: the seed's default is 90).
INTAKE_DAYS = 28
#: Share of each storyline among new events under `FixedLoad` (positions are one event each).
MIX = (("case", 0.35), ("alarm", 0.15), ("position", 0.50))
#: Spreads workers' fixes evenly over a round, for any contiguous run of workers (a district's).
_GOLDEN = (math.sqrt(5) - 1) / 2


class Pace(Protocol):
    """Which storylines start in a stretch of the clock."""

    def stories(
        self, factory: EventFactory, since: datetime, until: datetime
    ) -> Iterator[list[Event]]:
        """The storylines starting in [`since`, `until`) (naive UTC), each as its events."""
        ...


def _local(ts: datetime, tz: tzinfo) -> datetime:
    return ts + (tz.utcoffset(ts) or timedelta(0))


def _weekend(day: date) -> int:
    return int(day.weekday() >= 5)


@dataclass(frozen=True, slots=True)
class CaseIntake:
    """The seeded history's case intake (每日受理量), for the simulator's new cases to follow.

    `per_day[k]`: cases per day over the simulated area on a weekday (k = 0) and on a weekend day
    (k = 1), the sum of each district's median day; `cdf[k]`: the cumulative share of those cases
    per building, in `SimPlaces.buildings` order (a district's share of the history, then by
    households within the district, as the seed spreads cases).
    """

    per_day: tuple[float, float]
    cdf: tuple[FloatArray, FloatArray]

    @classmethod
    def load(cls, *, session: Session, tz: tzinfo, days: int = INTAKE_DAYS) -> CaseIntake:
        """The intake of the last `days` days of cases in the database.

        Medians of whole local days, not means: a day on which a feed ran away (as the simulator
        did when its default was a fixed 40 events/s) does not make the simulator run away too.
        """
        b, c = NodeRow, CaseRow
        buildings = [
            (district or 0, households or 0)
            for district, households in session.execute(
                select(b.district_id, b.households)
                .where(b.level == Level.BUILDING.value)
                .order_by(b.id)
            )
        ]
        newest = session.scalar(select(func.max(c.reported_at)))
        if newest is None:
            return cls.of(buildings, {})
        window = c.reported_at > newest - timedelta(days=days)
        oldest = session.scalar(select(func.min(c.reported_at)).where(window))
        assert oldest is not None  # the newest case at least
        counts: dict[int, Counter[date]] = {}
        for district, reported in session.execute(
            select(c.district_id, c.reported_at).where(window)
        ):
            counts.setdefault(district or 0, Counter())[_local(reported, tz).date()] += 1
        # The window's first and last days are partial: only the days between are whole.
        first, last = _local(oldest, tz).date(), _local(newest, tz).date()
        whole = [first + timedelta(days=i) for i in range(1, (last - first).days)]
        if whole:
            volume = {d: _per_day(by_day, whole) for d, by_day in counts.items()}
        else:  # under two days of history: what there is, extrapolated by the hourly profile
            share = _day_share(oldest, newest, tz) or 1.0  # a single instant: call it a day
            volume = {d: (by_day.total() / share,) * 2 for d, by_day in counts.items()}
        return cls.of(buildings, volume)

    @classmethod
    def of(
        cls, buildings: list[tuple[int, int]], volume: dict[int, tuple[float, float]]
    ) -> CaseIntake:
        """From (district id, households) per building and (weekday, weekend) cases per district."""
        district = np.array([r[0] for r in buildings], dtype=np.int64)
        households = np.array([max(1, r[1]) for r in buildings], dtype=float)
        per_day: list[float] = []
        cdf: list[FloatArray] = []
        for kind in (0, 1):
            weights = np.zeros(len(buildings))
            for d, per_kind in volume.items():
                here = district == d
                if here.any():
                    weights[here] = per_kind[kind] * households[here] / households[here].sum()
            total = float(weights.sum())
            per_day.append(total)
            cdf.append(np.cumsum(weights) / total if total else weights)
        return cls((per_day[0], per_day[1]), (cdf[0], cdf[1]))

    def per_second(self, local: datetime) -> float:
        """New cases per second at local time `local`: the day's volume by the hourly profile."""
        share = float(HOURLY[local.hour] / HOURLY.sum())
        return self.per_day[_weekend(local.date())] * share / 3600

    def building(self, rng: np.random.Generator, day: date) -> int:
        """Where a new case is (an index into `SimPlaces.buildings`), drawn as the history has them."""
        cdf = self.cdf[_weekend(day)]
        return min(int(np.searchsorted(cdf, rng.random(), side="right")), len(cdf) - 1)


def _per_day(by_day: dict[date, int], whole: list[date]) -> tuple[float, float]:
    """A district's median whole day, (weekday, weekend); a kind without days takes the other's."""
    kinds = [[by_day.get(d, 0) for d in whole if _weekend(d) == k] for k in (0, 1)]
    medians = [float(statistics.median(days)) if days else None for days in kinds]
    weekday = medians[0] if medians[0] is not None else medians[1]
    weekend = medians[1] if medians[1] is not None else medians[0]
    assert weekday is not None and weekend is not None  # `whole` is not empty here
    return weekday, weekend


def _day_share(since: datetime, until: datetime, tz: tzinfo) -> float:
    """How many days' worth of `HOURLY` arrivals fall between `since` and `until` (naive UTC)."""
    share, hour = 0.0, since.replace(minute=0, second=0, microsecond=0)
    while hour < until:
        start, end = max(hour, since), min(hour + timedelta(hours=1), until)
        covered = (end - start).total_seconds() / 3600
        share += covered * float(HOURLY[_local(hour, tz).hour] / HOURLY.sum())
        hour += timedelta(hours=1)
    return share


@dataclass
class HistoryPace:
    """The seeded city's own pace: its cases, camera alarms and grid workers' GPS fixes.

    Arrivals follow the clock (every event is stamped with the moment it is due), whatever the
    simulator's `speed`: speed compresses what happens after a case's report, not how many are
    reported, so 今日新增 and the 24-hour trend stay in the history's range.
    """

    intake: CaseIntake
    tz: tzinfo
    fix_interval: timedelta = FIX_INTERVAL
    _round: list[int] = field(default_factory=list)
    _start: datetime | None = None
    _sent: int = 0  # fixes sent so far

    @classmethod
    def load(cls, *, session: Session, tz: tzinfo) -> HistoryPace:
        """The pace of the city in the database, from its seeded history."""
        return cls(CaseIntake.load(session=session, tz=tz), tz)

    def stories(
        self, factory: EventFactory, since: datetime, until: datetime
    ) -> Iterator[list[Event]]:
        rng = factory.rng
        for begin, end in _by_hour(since, until):
            seconds = (end - begin).total_seconds()
            local = _local(begin, self.tz)
            for start in _arrivals(rng, begin, end, self.intake.per_second(local) * seconds):
                yield factory.case_story(start, building=self.intake.building(rng, local.date()))
            alarms = ALARM_RATE * len(factory.places.cameras) / 86_400 * seconds
            for start in _arrivals(rng, begin, end, alarms):
                yield factory.alarm_story(start)
        for t, worker in self._fixes(factory, since, until):
            yield [factory.position(t, worker=worker)]

    def _fixes(
        self, factory: EventFactory, since: datetime, until: datetime
    ) -> Iterator[tuple[datetime, int]]:
        """Every worker in turn, each once per `fix_interval`, from the first stretch on."""
        workers = len(factory.places.workers)
        if not workers:
            return
        if self._start is None:
            self._start = since
            self._round = np.argsort((np.arange(workers) * _GOLDEN) % 1, kind="stable").tolist()
        step = self.fix_interval / workers
        due = int((until - self._start) / step)
        # After a stall (a suspended laptop) only the last round: older fixes are stale at once.
        self._sent = max(self._sent, due - workers)
        for i in range(self._sent, due):
            yield self._start + step * i, self._round[i % workers]
        self._sent = max(self._sent, due)


def _by_hour(since: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[`since`, `until`) cut at the hours, whose rates differ (UTC hours: local ones in China)."""
    while since < until:
        end = min(since.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1), until)
        yield since, end
        since = end


def _arrivals(
    rng: np.random.Generator, since: datetime, until: datetime, expected: float
) -> list[datetime]:
    """Poisson arrivals in [`since`, `until`): `expected` on average, uniform, in time order."""
    n = int(rng.poisson(expected)) if expected > 0 else 0
    return [since + (until - since) * float(u) for u in np.sort(rng.random(n))] if n else []


@dataclass
class FixedLoad:
    """A fixed load for stress tests: `rate` events/s (shaped by the time of day, mean `rate`) of
    case, alarm and GPS storylines in the `MIX`, whatever the history says."""

    rate: float
    tz: tzinfo
    _budget: float = 0.0

    def stories(
        self, factory: EventFactory, since: datetime, until: datetime
    ) -> Iterator[list[Event]]:
        shape = float(HOURLY[_local(since, self.tz).hour] / HOURLY.mean())
        self._budget += self.rate * shape * (until - since).total_seconds()
        kinds = [k for k, _ in MIX]
        p = np.array([w for _, w in MIX])
        p /= p.sum()
        while self._budget >= 1:
            kind = kinds[int(factory.rng.choice(len(kinds), p=p))]
            if kind == "position":
                story = [factory.position(until)]
            elif kind == "case":
                story = factory.case_story(until)
            else:
                story = factory.alarm_story(until)
            self._budget -= len(story)
            yield story
