"""The projector: applies a batch of events once to SQL (the system of record) and reports what changed.

Idempotent by event id: an event whose id is already stored is skipped, so a redelivered batch changes
nothing. Order-insensitive: case and alarm rows are replayed from all their stored events (see
`lifecycle.py`). The caller owns the transaction; live state applies the returned `Projection` only
after the commit, so live counters never run ahead of SQL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, TypeVar, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from data_sources.bulk import insert_rows, select_in, update_rows
from data_sources.directory import Directory
from data_sources.events import (
    AlarmAcknowledged,
    AlarmRaised,
    AlarmRaisedEvent,
    AlarmResolved,
    AlarmUpdated,
    CaseReported,
    CaseReportedEvent,
    CaseTransitioned,
    Event,
    WorkerPosition,
)
from data_sources.lifecycle import (
    AlarmStep,
    CaseState,
    CaseStep,
    case_columns,
    case_event_rows,
    continue_case,
    replay_alarm,
    replay_case,
    state_of_row,
)
from data_sources.model import (
    AlarmStatus,
    CaseAction,
    CaseStatus,
    Category,
    ResolvedAt,
    Satisfaction,
    Severity,
)
from data_sources.schema import (
    AlarmEventRow,
    AlarmRow,
    CameraRow,
    CaseEventRow,
    CaseRow,
    PositionRow,
)

T = TypeVar("T")
# Core tables: the hot path writes through `bulk`, reads through Core (no ORM identity map).
CASES = cast(Table, CaseRow.__table__)
CASE_EVENTS = cast(Table, CaseEventRow.__table__)
ALARMS = cast(Table, AlarmRow.__table__)
ALARM_EVENTS = cast(Table, AlarmEventRow.__table__)
POSITIONS = cast(Table, PositionRow.__table__)
CAMERAS = cast(Table, CameraRow.__table__)
_OPEN_ALARM = (AlarmStatus.ACTIVE.value, AlarmStatus.ACKNOWLEDGED.value)


@dataclass(frozen=True, slots=True)
class CaseChange:
    case_id: str
    path: tuple[int, ...]
    old: CaseStatus | None
    new: CaseStatus
    title: str
    category: str
    at: datetime


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


def _existing_ids(session: Session, column: Any, ids: Sequence[str]) -> set[str]:
    return {row[0] for row in select_in(session, select(column), column, ids)}


def _fresh(session: Session, events: Sequence[Event], column: Any) -> tuple[list[Event], int]:
    """Events not seen before (neither stored nor earlier in the batch), and the duplicate count."""
    stored = _existing_ids(session, column, [e.id for e in events])
    fresh: dict[str, Event] = {}
    for event in events:
        if event.id not in stored and event.id not in fresh:
            fresh[event.id] = event
    return list(fresh.values()), len(events) - len(fresh)


def _path_of(row: Any) -> tuple[int, ...]:
    ids = (row.district_id, row.street_id, row.community_id, row.grid_id, row.building_id)
    return tuple(i for i in ids if i is not None)


def project(
    session: Session, events: Sequence[Event], *, directory: Directory, tz: tzinfo
) -> Projection:
    """Apply `events` to SQL within the caller's transaction; what changed."""
    result = Projection()
    case_events = [e for e in events if e.kind in ("case.reported", "case.transitioned")]
    alarm_events = [e for e in events if e.kind.startswith("alarm.")]
    position_events = [e for e in events if e.kind == "worker.position"]
    alarm_links = _project_cases(session, case_events, tz, result)
    _project_alarms(session, alarm_events, directory, result)
    # After the alarms: an alarm raised in this same batch is stored by now. The first case
    # opened from an alarm keeps the link; a later report naming the same alarm cannot take it.
    if alarm_links:
        session.execute(_LINK_ALARM, alarm_links)
    _project_positions(session, position_events, directory, result)
    return result


_LINK_ALARM = (
    update(ALARMS)
    .where(ALARMS.c.id == bindparam("alarm"), ALARMS.c.case_id.is_(None))
    .values(case_id=bindparam("case"))
)


# ------------------------------------------------------------------ cases


def _case_step(event: Event) -> CaseStep:
    payload = event.payload
    if isinstance(payload, CaseReported):
        return CaseStep(event.id, CaseAction.REPORT, event.ts_utc, payload.reporter)
    assert isinstance(payload, CaseTransitioned)
    return CaseStep(
        event.id,
        payload.action,
        event.ts_utc,
        payload.actor,
        payload.note,
        payload.satisfaction,
        payload.resolved_at,
    )


def _stored_step(row: Any) -> CaseStep:
    return CaseStep(
        row.id,
        CaseAction(row.action),
        row.at,
        row.actor,
        row.note,
        Satisfaction(row.satisfaction) if row.satisfaction else None,
        ResolvedAt(row.resolved_at) if row.resolved_at else None,
    )


WAITING = "waiting for the case's report"


def _project_cases(
    session: Session, events: Sequence[Event], tz: tzinfo, result: Projection
) -> list[dict[str, str]]:
    """Apply case events; the (alarm, case) links of new cases opened from an alarm."""
    fresh, duplicates = _fresh(session, events, CaseEventRow.id)
    result.duplicates += duplicates
    if not fresh:
        return []
    by_case: dict[str, list[Event]] = defaultdict(list)
    for event in fresh:
        by_case[event.payload.case_id].append(event)  # type: ignore[union-attr]
    case_ids = sorted(by_case)
    rows: dict[str, Any] = {}
    for case_row in select_in(session, select(*CASES.columns), CASES.c.id, case_ids):
        rows[case_row.id] = case_row
    # Most events come after everything stored for their case: continue the stored state.
    # Others (late, reordered, or ahead of their report) replay the case's whole timeline.
    continued: dict[str, CaseState] = {}
    for case_id in case_ids:
        row = rows.get(case_id)
        if row is not None and row.last_event_at is not None:
            stored_state = state_of_row(row)
            if all(stored_state.follows(_case_step(e)) for e in by_case[case_id]):
                continued[case_id] = stored_state
    stored: dict[str, list[Any]] = defaultdict(list)
    replayed = [c for c in case_ids if c not in continued]
    for stored_event in select_in(
        session, select(*CASE_EVENTS.columns), CASE_EVENTS.c.case_id, replayed
    ):
        stored[stored_event.case_id].append(stored_event)
    new_events: list[dict[str, Any]] = []
    new_cases: list[dict[str, Any]] = []
    alarm_links: list[dict[str, str]] = []
    case_updates: list[dict[str, Any]] = []
    event_updates: list[dict[str, Any]] = []
    for case_id in case_ids:
        incoming = by_case[case_id]
        row = rows.get(case_id)
        if case_id in continued:
            assert row is not None
            new_steps = [_case_step(e) for e in incoming]
            before = case_columns(continued[case_id])  # continue_case moves the state on
            ahead = continue_case(
                continued[case_id], new_steps, category=Category(row.category), tz=tz
            )
            new_events += case_event_rows(case_id, new_steps, ahead)
            # Only what the steps changed: fewer values to convert and bind, and the indexed
            # columns (status, reported_at) are rewritten only when they change.
            after = case_columns(ahead)
            changed = {k: v for k, v in after.items() if v != before[k]}
            case_updates.append({"id": case_id, **changed})
            result.cases.append(
                CaseChange(
                    case_id,
                    _path_of(row),
                    CaseStatus(row.status),
                    ahead.status,
                    row.title,
                    row.category,
                    max(e.ts_utc for e in incoming),
                )
            )
            continue
        steps = [_stored_step(r) for r in stored[case_id]] + [_case_step(e) for e in incoming]
        report = min(
            (e for e in incoming if isinstance(e, CaseReportedEvent)),
            key=lambda e: (e.ts_utc, e.id),
            default=None,
        )
        category = row.category if row else (report.payload.category if report else None)
        state = replay_case(steps, category=Category(category), tz=tz) if category else None
        if state is None:  # transitions ahead of their report: keep them, replay later
            new_events += [_waiting_row(case_id, _case_step(e)) for e in incoming]
            continue
        placed = case_event_rows(case_id, steps, state)
        fresh_ids = {e.id for e in incoming}
        new_events += [r for r in placed if r["id"] in fresh_ids]
        before = {r.id: r for r in stored[case_id]}
        event_updates += [
            {k: r[k] for k in ("id", "seq", "from_status", "to_status", "replay_note")}
            for r in placed
            if r["id"] in before and _moved(before[r["id"]], r)
        ]
        columns = case_columns(state)
        if row is None:
            assert report is not None
            payload = report.payload
            path = report.path
            title = payload.title
            new_cases.append(
                {
                    "id": case_id,
                    "title": payload.title,
                    "channel": payload.channel.value,
                    "category": payload.category.value,
                    "lon": payload.lon,
                    "lat": payload.lat,
                    "worker_id": None,
                    "alarm_id": payload.alarm_id,
                    **_path_columns(path),
                    **columns,
                }
            )
            old = None
            if payload.alarm_id is not None:
                alarm_links.append({"alarm": payload.alarm_id, "case": case_id})
        else:
            path, title, old = _path_of(row), row.title, CaseStatus(row.status)
            case_updates.append({"id": case_id, **columns})
        result.cases.append(
            CaseChange(
                case_id,
                path,
                old,
                state.status,
                title,
                str(category),
                max(e.ts_utc for e in incoming),
            )
        )
    result.applied += len(fresh)
    insert_rows(session, CASES, new_cases)
    update_rows(session, CASES, case_updates)
    insert_rows(session, CASE_EVENTS, new_events)
    update_rows(session, CASE_EVENTS, event_updates)
    return alarm_links


def _moved(stored: Any, placed: dict[str, Any]) -> bool:
    return (stored.seq, stored.from_status, stored.to_status, stored.replay_note) != (
        placed["seq"],
        placed["from_status"],
        placed["to_status"],
        placed["replay_note"],
    )


def _waiting_row(case_id: str, step: CaseStep) -> dict[str, Any]:
    return {
        "id": step.id,
        "case_id": case_id,
        "seq": 0,
        "action": step.action.value,
        "from_status": None,
        "to_status": "",
        "actor": step.actor,
        "at": step.at,
        "note": step.note,
        "replay_note": WAITING,
        "satisfaction": step.satisfaction.value if step.satisfaction else None,
        "resolved_at": step.resolved_at.value if step.resolved_at else None,
    }


def _path_columns(path: tuple[int, ...]) -> dict[str, int | None]:
    names = ("district_id", "street_id", "community_id", "grid_id", "building_id")
    return {name: (path[i] if i < len(path) else None) for i, name in enumerate(names)}


# ------------------------------------------------------------------ alarms


def _alarm_step(event_id: str, kind: str, at: datetime, actor: str | None, body: str) -> AlarmStep:
    data = json.loads(body)
    severity = data.get("severity")
    return AlarmStep(
        event_id,
        kind,
        at,
        actor,
        Severity(severity) if severity is not None else None,
        data.get("snapshot_url"),
        bool(data.get("false_alarm", False)),
    )


def _alarm_row(event: Event) -> dict[str, Any]:
    payload = event.payload
    assert isinstance(payload, AlarmRaised | AlarmUpdated | AlarmAcknowledged | AlarmResolved)
    actor = payload.actor if isinstance(payload, AlarmAcknowledged | AlarmResolved) else None
    return {
        "id": event.id,
        "alarm_id": payload.alarm_id,
        "kind": event.kind.removeprefix("alarm."),
        "actor": actor,
        "at": event.ts_utc,
        "body": payload.model_dump_json(exclude_none=True),
    }


def _project_alarms(
    session: Session, events: Sequence[Event], directory: Directory, result: Projection
) -> None:
    fresh, duplicates = _fresh(session, events, AlarmEventRow.id)
    result.duplicates += duplicates
    if not fresh:
        return
    new_rows = [_alarm_row(e) for e in fresh]
    by_alarm: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in new_rows:
        by_alarm[row["alarm_id"]].append(row)
    alarm_ids = sorted(by_alarm)
    current: dict[str, Any] = {}
    stored: dict[str, list[Any]] = defaultdict(list)
    # The camera rides along on the same query (a primary-key join): no query per alarm. Outer:
    # an alarm whose camera row is gone is still updated, only without a place on the map.
    with_camera = select(
        *ALARMS.columns,
        CAMERAS.c.code.label("camera_code"),
        CAMERAS.c.name.label("camera_name"),
        CAMERAS.c.lon.label("camera_lon"),
        CAMERAS.c.lat.label("camera_lat"),
    ).join_from(ALARMS, CAMERAS, CAMERAS.c.id == ALARMS.c.camera_id, isouter=True)
    for alarm in select_in(session, with_camera, ALARMS.c.id, alarm_ids):
        current[alarm.id] = alarm
    for ev in select_in(session, select(*ALARM_EVENTS.columns), ALARM_EVENTS.c.alarm_id, alarm_ids):
        stored[ev.alarm_id].append(ev)
    raised = {e.payload.alarm_id: e for e in fresh if isinstance(e, AlarmRaisedEvent)}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for alarm_id in alarm_ids:
        steps = [_alarm_step(s.id, s.kind, s.at, s.actor, s.body) for s in stored[alarm_id]]
        steps += [
            _alarm_step(r["id"], r["kind"], r["at"], r["actor"], r["body"])
            for r in by_alarm[alarm_id]
        ]
        state = replay_alarm(steps)
        if state is None:
            continue
        columns = {
            "status": state.status.value,
            "severity": int(state.severity),
            "started_at": state.started_at,
            "acknowledged_at": state.acknowledged_at,
            "acknowledged_by": state.acknowledged_by,
            "ended_at": state.ended_at,
            "snapshot_url": state.snapshot_url,
        }
        existing = current.get(alarm_id)
        if existing is None:
            event = raised.get(alarm_id)
            if event is None:  # raised long ago but its row is gone: nothing to update
                continue
            payload = event.payload
            camera = directory.cameras[payload.camera]
            inserts.append(
                {
                    "id": alarm_id,
                    "camera_id": camera.id,
                    "type": payload.type.value,
                    "case_id": None,
                    **_path_columns(camera.path),
                    **columns,
                }
            )
            path, alarm_type, was_open = camera.path, payload.type.value, False
            spot = (payload.camera, camera.name, camera.lon, camera.lat)
        else:
            updates.append({"id": alarm_id, **columns})
            path = _path_of(existing)
            alarm_type, was_open = existing.type, existing.status in _OPEN_ALARM
            spot = (
                existing.camera_code or "",
                existing.camera_name or "",
                existing.camera_lon,
                existing.camera_lat,
            )
        result.alarms.append(
            AlarmChange(
                alarm_id,
                path,
                was_open,
                state.status.value in _OPEN_ALARM,
                alarm_type,
                int(state.severity),
                state.status,
                max(r["at"] for r in by_alarm[alarm_id]),
                *spot,
            )
        )
    result.applied += len(fresh)
    insert_rows(session, ALARM_EVENTS, new_rows)
    insert_rows(session, ALARMS, inserts)
    update_rows(session, ALARMS, updates)


# ------------------------------------------------------------------ positions


def _project_positions(
    session: Session, events: Sequence[Event], directory: Directory, result: Projection
) -> None:
    fresh, duplicates = _fresh(session, events, PositionRow.event_id)
    result.duplicates += duplicates
    if not fresh:
        return
    rows = []
    for event in fresh:
        payload = event.payload
        assert isinstance(payload, WorkerPosition)
        worker = directory.workers[payload.worker]
        rows.append(
            {
                "event_id": event.id,
                "worker_id": worker.id,
                "ts": event.ts_utc,
                "lon": payload.lon,
                "lat": payload.lat,
                "speed": payload.speed,
                "bearing": payload.bearing,
                "accuracy": payload.accuracy,
                "battery": payload.battery,
            }
        )
        result.positions.append(
            PositionFix(
                worker.id, worker.path, event.ts_utc, payload.lon, payload.lat, payload.worker
            )
        )
    insert_rows(session, POSITIONS, rows, skip_conflicts_on="event_id")
    result.applied += len(fresh)
