"""Case events → `cases` and `case_events`: each case replayed from all its stored steps (lifecycle.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources.bulk import insert_rows, select_in, update_rows
from data_sources.events import CaseReported, CaseReportedEvent, CaseTransitioned, Event
from data_sources.lifecycle import (
    CaseState,
    CaseStep,
    case_columns,
    case_event_rows,
    continue_case,
    replay_case,
    state_of_row,
)
from data_sources.model import CaseAction, CaseStatus, Category, ResolvedAt, Satisfaction
from data_sources.projector.common import (
    CASE_EVENTS,
    CASES,
    CaseChange,
    Projection,
    fresh_events,
    path_columns,
    path_of,
)
from data_sources.schema import CaseEventRow
from data_sources.workhours import WorkCalendar


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


def project_cases(
    session: Session,
    events: Sequence[Event],
    tz: tzinfo,
    calendar: WorkCalendar,
    result: Projection,
) -> list[dict[str, str]]:
    """Apply case events; the (alarm, case) links of new cases opened from an alarm."""
    fresh, duplicates = fresh_events(session, events, CaseEventRow.id)
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
                continued[case_id],
                new_steps,
                category=Category(row.category),
                tz=tz,
                calendar=calendar,
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
                    path_of(row),
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
        state = (
            replay_case(steps, category=Category(category), tz=tz, calendar=calendar)
            if category
            else None
        )
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
                    **path_columns(path),
                    **columns,
                }
            )
            old = None
            reported: tuple[str, datetime | None] = (payload.channel.value, report.ts_utc)
            if payload.alarm_id is not None:
                alarm_links.append({"alarm": payload.alarm_id, "case": case_id})
        else:
            path, title, old = path_of(row), row.title, CaseStatus(row.status)
            reported = ("", None)
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
                *reported,
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
