"""One case in full (案件详情): its facts, place, handler, linked alarm, its timeline and the
stages it went through (`stages.py`), each stage's working time against its limit, and its
supervision (督办) history: what the case drawer and `GET /api/v1/cases/{id}` show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from data_sources.access.model import Scope
from data_sources.cases.sql import scope_condition
from data_sources.cases.stages import StageSpan, TimelineEvent, stages_of
from data_sources.kpi import tally_of_case
from data_sources.model import (
    DUE_WORKING_HOURS,
    AlarmStatus,
    AlarmType,
    CaseAction,
    CaseFacts,
    CaseStatus,
    Category,
    Channel,
    Level,
    ResolvedAt,
    Satisfaction,
    Severity,
)
from data_sources.schema import AlarmRow, CameraRow, CaseEventRow, CaseRow, NodeRow, WorkerRow
from data_sources.workhours import WorkCalendar, working_hours_between


@dataclass(frozen=True, slots=True)
class PlaceNode:
    """One node of the case's location, district down to building."""

    level: Level
    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Handler:
    """The grid worker handling the case."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class LinkedAlarm:
    """The camera alarm the case came from (or that names it)."""

    id: str
    type: AlarmType
    severity: Severity
    status: AlarmStatus
    started_at: datetime
    camera_code: str
    camera_name: str


@dataclass(frozen=True, slots=True)
class Supervision:
    """A 督办 step: who put the case under supervision, when, and why."""

    actor: str
    at: datetime
    note: str | None


@dataclass(frozen=True, slots=True)
class CaseDetail:
    id: str
    title: str
    category: Category
    channel: Channel
    status: CaseStatus
    reported_at: datetime
    accepted_at: datetime | None
    due_at: datetime | None
    closed_at: datetime | None
    #: Open, not deferred, past `due_at` at `as_of` (the KPIs' 超期, `kpi.tally_of_case`).
    overdue: bool
    supervised: bool
    deferred: bool
    rework_count: int
    satisfaction: Satisfaction | None
    resolved_at: ResolvedAt | None
    lon: float
    lat: float
    places: tuple[PlaceNode, ...]
    worker: Handler | None
    alarm: LinkedAlarm | None
    timeline: tuple[TimelineEvent, ...]
    stages: tuple[StageSpan, ...]
    supervision: tuple[Supervision, ...]
    #: The case's limit (accept → close) and the working time it has taken so far (None until
    #: accepted), measured at `as_of`.
    limit: timedelta
    working: timedelta | None
    as_of: datetime

    def to_json(self) -> dict[str, Any]:
        """JSON for the REST route: ISO-8601 UTC times ("…Z"), durations in hours (2 decimals)."""
        return {
            "id": self.id,
            "title": self.title,
            "category": self.category.value,
            "channel": self.channel.value,
            "status": self.status.value,
            "reported_at": _ts(self.reported_at),
            "accepted_at": _ts(self.accepted_at),
            "due_at": _ts(self.due_at),
            "closed_at": _ts(self.closed_at),
            "overdue": self.overdue,
            "supervised": self.supervised,
            "deferred": self.deferred,
            "rework_count": self.rework_count,
            "satisfaction": _value(self.satisfaction),
            "resolved_at": _value(self.resolved_at),
            "lon": self.lon,
            "lat": self.lat,
            "limit_hours": _hours(self.limit),
            "working_hours": _hours(self.working),
            "places": [
                {"level": p.level.value, "code": p.code, "name_zh": p.name_zh, "name_en": p.name_en}
                for p in self.places
            ],
            "worker": None
            if self.worker is None
            else {"code": self.worker.code, "name": self.worker.name},
            "alarm": None if self.alarm is None else _alarm_json(self.alarm),
            "timeline": [_event_json(e) for e in self.timeline],
            "stages": [_stage_json(s) for s in self.stages],
            "supervision": [
                {"actor": s.actor, "at": _ts(s.at), "note": s.note} for s in self.supervision
            ],
            "as_of": _ts(self.as_of),
        }


def _ts(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat() + "Z"


def _hours(span: timedelta | None) -> float | None:
    return None if span is None else round(span.total_seconds() / 3600, 2)


def _value(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def _alarm_json(alarm: LinkedAlarm) -> dict[str, Any]:
    return {
        "id": alarm.id,
        "type": alarm.type.value,
        "severity": int(alarm.severity),
        "status": alarm.status.value,
        "started_at": _ts(alarm.started_at),
        "camera": {"code": alarm.camera_code, "name": alarm.camera_name},
    }


def _event_json(event: TimelineEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "id": event.id,
        "action": event.action.value,
        "actor": event.actor,
        "at": _ts(event.at),
        "from_status": _value(event.from_status),
        "to_status": event.to_status.value,
        "note": event.note,
        "replay_note": event.replay_note,
        "ignored": event.ignored,
        "satisfaction": _value(event.satisfaction),
        "resolved_at": _value(event.resolved_at),
    }


def _stage_json(span: StageSpan) -> dict[str, Any]:
    return {
        "stage": span.stage.value,
        "round": span.round,
        "start": _ts(span.start),
        "end": _ts(span.end),
        "running": span.end is None,
        "started_by": span.started_by,
        "ended_by": span.ended_by,
        "outcome": _value(span.outcome),
        "working_hours": _hours(span.working),
        "elapsed_hours": _hours(span.elapsed),
        "limit_hours": _hours(span.limit),
        "overdue": span.overdue,
    }


# ---------------------------------------------------------------- loading


def _alarm_in(scope: Scope) -> ColumnElement[bool]:
    """Alarms inside `scope` (`sql.scope_condition` is the same rule over `cases`)."""
    if scope.level is Level.CITY:
        return true()
    column: ColumnElement[bool] = getattr(AlarmRow, f"{scope.level.value}_id") == scope.id
    return column


def load_case_detail(
    *,
    session: Session,
    case_id: str,
    scope: Scope,
    now: datetime,
    tz: tzinfo,
    calendar: WorkCalendar,
) -> CaseDetail | None:
    """Case `case_id` in full, or None when there is no such case **or** it lies outside `scope`
    (callers answer both alike: nobody learns that a case exists in another area).

    Args:
        now: naive UTC; running stages and `overdue` are measured to it.
    """
    scoped = scope_condition(scope)
    query = select(CaseRow).where(CaseRow.id == case_id)
    row = session.scalars(query if scoped is None else query.where(scoped)).one_or_none()
    if row is None:
        return None
    category = Category(row.category)
    timeline = tuple(
        TimelineEvent(
            e.id,
            e.seq,
            CaseAction(e.action),
            e.actor,
            e.at,
            CaseStatus(e.from_status) if e.from_status else None,
            CaseStatus(e.to_status),
            e.note,
            e.replay_note,
            Satisfaction(e.satisfaction) if e.satisfaction else None,
            ResolvedAt(e.resolved_at) if e.resolved_at else None,
        )
        for e in session.scalars(
            select(CaseEventRow)
            .where(CaseEventRow.case_id == case_id)
            .order_by(CaseEventRow.seq, CaseEventRow.id)
        )
    )
    status = CaseStatus(row.status)
    satisfaction = Satisfaction(row.satisfaction) if row.satisfaction else None
    facts = CaseFacts(
        status=status,
        reported_at=row.reported_at,
        due_at=row.due_at,
        closed_at=row.closed_at,
        handled=row.handled_at is not None,
        deferred=bool(row.deferred),
        rework_count=row.rework_count,
        satisfaction=satisfaction,
    )
    working = None
    if row.accepted_at is not None:
        until = row.closed_at or max(now, row.accepted_at)
        working = working_hours_between(row.accepted_at, until, tz=tz, calendar=calendar)
    return CaseDetail(
        id=row.id,
        title=row.title,
        category=category,
        channel=Channel(row.channel),
        status=status,
        reported_at=row.reported_at,
        accepted_at=row.accepted_at,
        due_at=row.due_at,
        closed_at=row.closed_at,
        overdue=tally_of_case(facts, now=now).overdue == 1,
        supervised=bool(row.supervised),
        deferred=bool(row.deferred),
        rework_count=row.rework_count,
        satisfaction=satisfaction,
        resolved_at=ResolvedAt(row.resolved_at) if row.resolved_at else None,
        lon=row.lon,
        lat=row.lat,
        places=_places(session, row),
        worker=_worker(session, row.worker_id),
        alarm=_alarm(session, row, scope),
        timeline=timeline,
        stages=stages_of(timeline, category=category, now=now, tz=tz, calendar=calendar),
        supervision=tuple(
            Supervision(e.actor, e.at, e.note)
            for e in timeline
            if e.action is CaseAction.SUPERVISE and not e.ignored
        ),
        limit=timedelta(hours=DUE_WORKING_HOURS[category]),
        working=working,
        as_of=now,
    )


def _places(session: Session, row: CaseRow) -> tuple[PlaceNode, ...]:
    ids = [row.district_id, row.street_id, row.community_id, row.grid_id, row.building_id]
    wanted = [i for i in ids if i is not None]
    nodes = {n.id: n for n in session.scalars(select(NodeRow).where(NodeRow.id.in_(wanted)))}
    return tuple(
        PlaceNode(Level(n.level), n.code, n.name_zh, n.name_en)
        for n in (nodes.get(i) for i in wanted)
        if n is not None
    )


def _worker(session: Session, worker_id: int | None) -> Handler | None:
    worker = session.get(WorkerRow, worker_id) if worker_id is not None else None
    return None if worker is None else Handler(worker.code, worker.name)


def _alarm(session: Session, row: CaseRow, scope: Scope) -> LinkedAlarm | None:
    """The alarm `cases.alarm_id` names, else one whose `case_id` is this case; only within
    `scope` (a camera near an area's edge may stand outside it)."""
    linked = AlarmRow.case_id == row.id
    if row.alarm_id is not None:
        linked = or_(AlarmRow.id == row.alarm_id, linked)
    found = session.execute(
        select(AlarmRow, CameraRow.code, CameraRow.name)
        .join(CameraRow, CameraRow.id == AlarmRow.camera_id)
        .where(linked, _alarm_in(scope))
        # The alarm the case names first, then the earliest that names the case.
        .order_by((AlarmRow.id == (row.alarm_id or "")).desc(), AlarmRow.started_at, AlarmRow.id)
        .limit(1)
    ).one_or_none()
    if found is None:
        return None
    alarm, camera_code, camera_name = found
    return LinkedAlarm(
        alarm.id,
        AlarmType(alarm.type),
        Severity(alarm.severity),
        AlarmStatus(alarm.status),
        alarm.started_at,
        camera_code,
        camera_name,
    )
