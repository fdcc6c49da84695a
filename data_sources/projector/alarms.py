"""Alarm events → `alarms` and `alarm_events`: each alarm replayed from its stored events."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources.bulk import insert_rows, select_in, update_rows
from data_sources.directory import Directory
from data_sources.events import (
    AlarmAcknowledged,
    AlarmRaised,
    AlarmRaisedEvent,
    AlarmResolved,
    AlarmUpdated,
    Event,
)
from data_sources.lifecycle import AlarmStep, replay_alarm
from data_sources.model import Severity
from data_sources.projector.common import (
    ALARM_EVENTS,
    ALARMS,
    CAMERAS,
    OPEN_ALARM,
    AlarmChange,
    Projection,
    fresh_events,
    path_columns,
    path_of,
)
from data_sources.schema import AlarmEventRow


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


def project_alarms(
    session: Session, events: Sequence[Event], directory: Directory, result: Projection
) -> None:
    fresh, duplicates = fresh_events(session, events, AlarmEventRow.id)
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
                    **path_columns(camera.path),
                    **columns,
                }
            )
            path, alarm_type, was_open = camera.path, payload.type.value, False
            was_severity = 0
            spot = (payload.camera, camera.name, camera.lon, camera.lat)
        else:
            updates.append({"id": alarm_id, **columns})
            path = path_of(existing)
            alarm_type, was_open = existing.type, existing.status in OPEN_ALARM
            was_severity = int(existing.severity)
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
                state.status.value in OPEN_ALARM,
                alarm_type,
                int(state.severity),
                state.status,
                max(r["at"] for r in by_alarm[alarm_id]),
                *spot,
                was_severity=was_severity,
            )
        )
    result.applied += len(fresh)
    insert_rows(session, ALARM_EVENTS, new_rows)
    insert_rows(session, ALARMS, inserts)
    update_rows(session, ALARMS, updates)
