"""A living city: events for cases moving through their lifecycle, camera alarms and patrolling workers.

`EventFactory` makes the events of whole storylines (a case from report to evaluation, an alarm from
raise to resolve, a worker's GPS fix) with realistic gaps; `LiveSimulator` (`gridcc demo`, `gridcc
simulate`) starts them at a `Pace` (the seeded history's by default, see `simulator_pace`) and
publishes their events through the ingest path as their times come. Deterministic for a given rng.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources.directory import Directory
from data_sources.events import Event, EventAdapter
from data_sources.ingest import MAX_BATCH
from data_sources.model import AlarmType, CaseAction, Level, Satisfaction, Severity, WorkerRole
from data_sources.schema import CameraRow, NodeRow, WorkerRow
from data_sources.seed.history import CATEGORIES, CHANNELS, DESCRIPTIONS
from data_sources.simulator_pace import MIX as MIX  # the stress mix, for the benchmarks
from data_sources.simulator_pace import Pace

log = logging.getLogger(__name__)

SEVERITY = {
    AlarmType.FIRE: Severity.CRITICAL,
    AlarmType.PERSON_DOWN: Severity.HIGH,
    AlarmType.THROWN_OBJECT: Severity.HIGH,
    AlarmType.CROWD: Severity.MEDIUM,
}


@dataclass(frozen=True, slots=True)
class SimPlaces:
    """What the simulator needs of the city: building codes and centres, cameras, grid workers."""

    buildings: list[tuple[str, float, float]]
    cameras: list[str]
    workers: list[tuple[str, float, float]]

    @classmethod
    def load(cls, *, session: Session) -> SimPlaces:
        buildings = [
            (r.code, r.lon, r.lat)
            for r in session.execute(
                select(NodeRow.code, NodeRow.lon, NodeRow.lat)
                .where(NodeRow.level == Level.BUILDING.value)
                .order_by(NodeRow.id)
            )
        ]
        cameras = list(session.scalars(select(CameraRow.code).order_by(CameraRow.id)))
        grids = {
            r.id: (r.lon, r.lat)
            for r in session.execute(
                select(NodeRow.id, NodeRow.lon, NodeRow.lat).where(
                    NodeRow.level == Level.GRID.value
                )
            )
        }
        workers = [
            (r.code, *grids[r.grid_id])
            for r in session.execute(
                select(WorkerRow.code, WorkerRow.grid_id)
                .where(WorkerRow.role == WorkerRole.GRID_WORKER.value)
                .order_by(WorkerRow.id)
            )
        ]
        return cls(buildings, cameras, workers)


def _iso(ts: datetime) -> str:
    return ts.replace(tzinfo=UTC).isoformat()


class EventFactory:
    """Makes events; `directory` resolves paths the way ingest does."""

    def __init__(
        self, places: SimPlaces, directory: Directory, rng: np.random.Generator, prefix: str
    ) -> None:
        self.places, self.directory, self.rng, self.prefix = places, directory, rng, prefix
        self.serial = 0
        self._categories = list(CATEGORIES)
        self._category_p = np.array(list(CATEGORIES.values()))
        self._category_p /= self._category_p.sum()
        self._channels = list(CHANNELS)
        self._channel_p = np.array(list(CHANNELS.values()))
        self._channel_p /= self._channel_p.sum()

    def _id(self, kind: str) -> str:
        self.serial += 1
        return f"{self.prefix}-{kind}-{self.serial:08d}"

    def _event(self, kind: str, ts: datetime, node: str, payload: dict[str, Any]) -> Event:
        place = self.directory.nodes[node]
        return EventAdapter.validate_python(
            {
                "id": self._id(kind.split(".")[0]),
                "kind": kind,
                "ts": _iso(ts),
                "node": node,
                "path": place.path,
                "payload": payload,
            }
        )

    def _minutes(self, median: float) -> timedelta:
        return timedelta(minutes=float(self.rng.lognormal(np.log(median), 0.6)))

    def case_story(self, start: datetime, *, building: int | None = None) -> list[Event]:
        """Report → accept/reject → dispatch → handle (→ rework → handle) → close → evaluate.

        Args:
            building: where (an index into `places.buildings`); any building, uniformly, if None.
        """
        rng = self.rng
        if building is None:
            building = int(rng.integers(len(self.places.buildings)))
        code, lon, lat = self.places.buildings[building]
        category = self._categories[int(rng.choice(len(self._categories), p=self._category_p))]
        channel = self._channels[int(rng.choice(len(self._channels), p=self._channel_p))]
        case_id = self._id("case")
        title = DESCRIPTIONS[category][int(rng.integers(len(DESCRIPTIONS[category])))]
        events = [
            self._event(
                "case.reported",
                start,
                code,
                {
                    "case_id": case_id,
                    "channel": channel.value,
                    "category": category.value,
                    "title": title,
                    "lon": round(lon + float(rng.normal(0, 2e-4)), 6),
                    "lat": round(lat + float(rng.normal(0, 2e-4)), 6),
                    "reporter": "市民",
                },
            )
        ]
        t = start

        def step(action: CaseAction, median: float, actor: str, **extra: str) -> None:
            nonlocal t
            t = t + self._minutes(median)
            events.append(
                self._event(
                    "case.transitioned",
                    t,
                    code,
                    {"case_id": case_id, "action": action.value, "actor": actor, **extra},
                )
            )

        if rng.random() < 0.04:
            step(CaseAction.REJECT, 20, "指挥中心受理员")
            return events
        step(CaseAction.ACCEPT, 20, "指挥中心受理员")
        step(CaseAction.DISPATCH, 10, "指挥中心派遣员")
        step(CaseAction.HANDLE, 120, "网格员")
        if rng.random() < 0.06:
            step(CaseAction.REWORK, 60, "街道监督员")
            step(CaseAction.HANDLE, 90, "网格员")
        step(CaseAction.CLOSE, 60, "街道监督员", resolved_at="grid")
        if rng.random() < 0.8:
            verdict = Satisfaction.SATISFIED if rng.random() < 0.95 else Satisfaction.DISSATISFIED
            step(CaseAction.EVALUATE, 600, "回访专员", satisfaction=verdict.value)
        return events

    def alarm_story(self, start: datetime) -> list[Event]:
        """Raise → (update) → acknowledge → resolve or false alarm."""
        rng = self.rng
        camera = self.places.cameras[int(rng.integers(len(self.places.cameras)))]
        place = self.directory.cameras[camera]
        node = self.directory.codes[place.path[-1]]
        alarm_type = list(AlarmType)[int(rng.integers(len(AlarmType)))]
        alarm_id = self._id("alarm")
        severity = SEVERITY.get(alarm_type, Severity.LOW)
        events = [
            self._event(
                "alarm.raised",
                start,
                node,
                {
                    "alarm_id": alarm_id,
                    "camera": camera,
                    "type": alarm_type.value,
                    "severity": int(severity),
                },
            )
        ]
        t = start + self._minutes(2)
        events.append(
            self._event("alarm.acknowledged", t, node, {"alarm_id": alarm_id, "actor": "值班员"})
        )
        t += self._minutes(20)
        events.append(
            self._event(
                "alarm.resolved",
                t,
                node,
                {"alarm_id": alarm_id, "actor": "值班员", "false_alarm": bool(rng.random() < 0.12)},
            )
        )
        return events

    def position(self, ts: datetime, *, worker: int | None = None) -> Event:
        """A GPS fix of grid worker `worker` (an index into `places.workers`; any, if None)."""
        if worker is None:
            worker = int(self.rng.integers(len(self.places.workers)))
        code, lon, lat = self.places.workers[worker]
        home = self.directory.workers[code]
        node = self.directory.codes[home.path[-1]]
        return self._event(
            "worker.position",
            ts,
            node,
            {
                "worker": code,
                "lon": round(lon + float(self.rng.normal(0, 8e-4)), 6),
                "lat": round(lat + float(self.rng.normal(0, 8e-4)), 6),
                "speed": round(float(self.rng.uniform(0, 1.8)), 2),
                "battery": round(float(self.rng.uniform(10, 100)), 1),
            },
        )

    def mixed(self, n: int, start: datetime, span: timedelta) -> list[Event]:
        """About `n` events of every kind starting within `span` of `start`, in time order."""
        events: list[Event] = []
        while len(events) < n:
            t = start + span * float(self.rng.random())
            roll = self.rng.random()
            if roll < 0.55:
                events += self.case_story(t)
            elif roll < 0.75:
                events += self.alarm_story(t)
            else:
                events.append(self.position(t))
        events.sort(key=lambda e: (e.ts, e.id))
        return events


#: What a published event looks like to ingest: the source's JSON, no resolved path.
RawEvent = dict[str, Any]
Sink = Callable[[list[RawEvent]], Awaitable[None]]


def as_raw(event: Event, ts: datetime) -> RawEvent:
    """`event` as a source would send it, stamped `ts` (naive UTC)."""
    raw: RawEvent = event.model_dump(mode="json", exclude={"path"}, exclude_none=True)
    raw["ts"] = _iso(ts)
    return raw


@dataclass
class LiveSimulator:
    """Publishes a living city into `sink`: storylines start at `pace`, as the `clock` runs.

    A storyline's steps keep their relative timing divided by `speed`, so with speed 60 a case that
    takes two hours to handle is handled two minutes after its report; `speed` changes nothing of
    when storylines start. Each event is stamped with the moment it is due.
    """

    factory: EventFactory
    sink: Sink
    pace: Pace
    speed: float
    clock: Callable[[], datetime]
    tick_s: float = 0.2
    published: int = 0
    _pending: list[tuple[datetime, int, Event]] = field(default_factory=list)
    _serial: int = 0
    _last: datetime | None = None

    def due(self, now: datetime) -> list[RawEvent]:
        """Starts the storylines of the time since the last call; the events due by `now` (naive
        UTC), oldest first, at most one ingest batch (the rest stay due)."""
        if self._last is not None and now > self._last:
            for story in self.pace.stories(self.factory, self._last, now):
                start = story[0].ts_utc
                for event in story:
                    self._serial += 1
                    when = start + (event.ts_utc - start) / self.speed
                    heapq.heappush(self._pending, (when, self._serial, event))
        if self._last is None or now > self._last:
            self._last = now  # a clock that steps back starts nothing twice
        out: list[RawEvent] = []
        while self._pending and self._pending[0][0] <= now and len(out) < MAX_BATCH:
            when, _, event = heapq.heappop(self._pending)
            out.append(as_raw(event, when))
        return out

    async def run(self) -> None:
        while True:
            due = self.due(self.clock())
            if due:
                try:
                    await self.sink(due)
                    self.published += len(due)
                except Exception:
                    log.exception("simulator: %d events not accepted", len(due))
            await asyncio.sleep(self.tick_s)
