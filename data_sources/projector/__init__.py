"""The projector: applies a batch of events once to SQL (the system of record) and reports what changed.

Idempotent by event id: an event whose id is already stored is skipped, so a redelivered batch changes
nothing. Order-insensitive: case and alarm rows are replayed from all their stored events (see
`lifecycle.py`). The caller owns the transaction; live state applies the returned `Projection` only
after the commit, so live counters never run ahead of SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from data_sources.bulk import insert_rows
from data_sources.directory import Directory
from data_sources.events import Event, WorkerPosition
from data_sources.projector.alarms import project_alarms
from data_sources.projector.cases import project_cases
from data_sources.projector.common import (
    ALARMS,
    POSITIONS,
    AlarmChange,
    CaseChange,
    PositionFix,
    Projection,
    fresh_events,
)
from data_sources.schema import PositionRow
from data_sources.workhours import WorkCalendar

__all__ = ["AlarmChange", "CaseChange", "PositionFix", "Projection", "project"]


def project(
    session: Session,
    events: Sequence[Event],
    *,
    directory: Directory,
    tz: tzinfo,
    calendar: WorkCalendar,
) -> Projection:
    """Apply `events` to SQL within the caller's transaction; what changed.

    Args:
        tz, calendar: the zone and working days of due times (时限).
    """
    result = Projection()
    case_events = [e for e in events if e.kind in ("case.reported", "case.transitioned")]
    alarm_events = [e for e in events if e.kind.startswith("alarm.")]
    position_events = [e for e in events if e.kind == "worker.position"]
    alarm_links = project_cases(session, case_events, tz, calendar, result)
    project_alarms(session, alarm_events, directory, result)
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


def _project_positions(
    session: Session, events: Sequence[Event], directory: Directory, result: Projection
) -> None:
    fresh, duplicates = fresh_events(session, events, PositionRow.event_id)
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
