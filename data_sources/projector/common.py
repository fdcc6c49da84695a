"""What the projector's parts share: the Core tables it writes, what a batch changed, and helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from data_sources.bulk import select_in
from data_sources.events import Event
from data_sources.model import AlarmStatus, CaseStatus
from data_sources.schema import (
    AlarmEventRow,
    AlarmRow,
    CameraRow,
    CaseEventRow,
    CaseRow,
    PositionRow,
)

# Core tables: the hot path writes through `bulk`, reads through Core (no ORM identity map).
CASES = cast(Table, CaseRow.__table__)
CASE_EVENTS = cast(Table, CaseEventRow.__table__)
ALARMS = cast(Table, AlarmRow.__table__)
ALARM_EVENTS = cast(Table, AlarmEventRow.__table__)
POSITIONS = cast(Table, PositionRow.__table__)
CAMERAS = cast(Table, CameraRow.__table__)
OPEN_ALARM = (AlarmStatus.ACTIVE.value, AlarmStatus.ACKNOWLEDGED.value)


@dataclass(frozen=True, slots=True)
class CaseChange:
    case_id: str
    path: tuple[int, ...]
    old: CaseStatus | None
    new: CaseStatus
    title: str
    category: str
    at: datetime
    #: A new case's intake channel and report time (今日新增 by channel); "" and None otherwise.
    channel: str = ""
    reported_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlarmChange:
    alarm_id: str
    path: tuple[int, ...]
    was_open: bool
    is_open: bool
    type: str
    severity: int
    status: AlarmStatus
    at: datetime
    #: The camera (code, name) and where it stands, so a live map can draw the alarm.
    camera: str = ""
    place: str = ""
    lon: float | None = None
    lat: float | None = None
    #: Its severity before this change (0 for a new alarm): whether it was high can change too.
    was_severity: int = 0


@dataclass(frozen=True, slots=True)
class PositionFix:
    worker_id: int
    path: tuple[int, ...]
    ts: datetime
    lon: float
    lat: float
    #: The worker's own id (as the feed and the browser know it).
    code: str = ""


@dataclass(slots=True)
class Projection:
    """What one batch changed (for live state and view deltas)."""

    applied: int = 0
    duplicates: int = 0
    cases: list[CaseChange] = field(default_factory=list)
    alarms: list[AlarmChange] = field(default_factory=list)
    positions: list[PositionFix] = field(default_factory=list)


def existing_ids(session: Session, column: Any, ids: Sequence[str]) -> set[str]:
    return {row[0] for row in select_in(session, select(column), column, ids)}


def fresh_events(session: Session, events: Sequence[Event], column: Any) -> tuple[list[Event], int]:
    """Events not seen before (neither stored nor earlier in the batch), and the duplicate count."""
    stored = existing_ids(session, column, [e.id for e in events])
    fresh: dict[str, Event] = {}
    for event in events:
        if event.id not in stored and event.id not in fresh:
            fresh[event.id] = event
    return list(fresh.values()), len(events) - len(fresh)


def path_of(row: Any) -> tuple[int, ...]:
    ids = (row.district_id, row.street_id, row.community_id, row.grid_id, row.building_id)
    return tuple(i for i in ids if i is not None)


def path_columns(path: tuple[int, ...]) -> dict[str, int | None]:
    names = ("district_id", "street_id", "community_id", "grid_id", "building_id")
    return {name: (path[i] if i < len(path) else None) for i, name in enumerate(names)}
