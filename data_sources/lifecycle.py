"""Case and alarm state as a pure function of their events, whatever order those arrived in.

Feeds are not ordered and may repeat themselves, so the projector never applies a transition to a
stored status: it stores the event, then replays all events of that entity sorted by (time, id).
Same set of events → same state, which is what makes the pipeline idempotent and replayable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Any

from data_sources.model import (
    DUE_WORKING_HOURS,
    TRANSITIONS,
    AlarmStatus,
    CaseAction,
    CaseStatus,
    Category,
    ResolvedAt,
    Satisfaction,
    Severity,
)
from data_sources.workhours import WorkCalendar, add_working_hours


@dataclass(frozen=True, slots=True)
class CaseStep:
    """One stored event of a case."""

    id: str
    action: CaseAction
    at: datetime
    actor: str
    note: str | None = None
    satisfaction: Satisfaction | None = None
    resolved_at: ResolvedAt | None = None


@dataclass(frozen=True, slots=True)
class ReplayedStep:
    """A step as it fell in the timeline: its order and the statuses around it."""

    id: str
    seq: int
    from_status: CaseStatus | None
    to_status: CaseStatus
    #: Why the replay ignored this step (None when it applied).
    replay_note: str | None


@dataclass(slots=True)
class CaseState:
    """The lifecycle columns of a case row."""

    status: CaseStatus = CaseStatus.REPORTED
    reported_at: datetime | None = None
    accepted_at: datetime | None = None
    dispatched_at: datetime | None = None
    handled_at: datetime | None = None
    closed_at: datetime | None = None
    due_at: datetime | None = None
    handling_seconds: int | None = None
    deferred: bool = False
    supervised: bool = False
    rework_count: int = 0
    satisfaction: Satisfaction | None = None
    resolved_at: ResolvedAt | None = None
    #: The last step in timeline order and how many steps there are: where a replay continues.
    last_at: datetime | None = None
    last_id: str | None = None
    count: int = 0
    #: The steps this replay placed (all of them, or only the new ones when continuing).
    steps: list[ReplayedStep] = field(default_factory=list)

    def follows(self, step: CaseStep) -> bool:
        """Whether `step` sorts after every step already in this state (so it can continue it)."""
        return (
            step.action is not CaseAction.REPORT
            and self.last_at is not None
            and self.last_id is not None
            and (step.at, step.id) > (self.last_at, self.last_id)
        )


def _order(step: CaseStep) -> tuple[bool, datetime, str]:
    # The report opens the timeline even if a device clock put a later step before it.
    return (step.action is not CaseAction.REPORT, step.at, step.id)


def replay_case(
    steps: Iterable[CaseStep], *, category: Category, tz: tzinfo, calendar: WorkCalendar
) -> CaseState | None:
    """The state of a case from its events; None while its report has not arrived.

    Args:
        tz, calendar: where and on which working days the due time's working hours run.
    """
    ordered = sorted(steps, key=_order)
    if not ordered or ordered[0].action is not CaseAction.REPORT:
        return None
    report = ordered[0]
    state = CaseState(reported_at=report.at, last_at=report.at, last_id=report.id, count=1)
    state.steps.append(ReplayedStep(report.id, 0, None, CaseStatus.REPORTED, None))
    return continue_case(state, ordered[1:], category=category, tz=tz, calendar=calendar)


def continue_case(
    state: CaseState,
    steps: Iterable[CaseStep],
    *,
    category: Category,
    tz: tzinfo,
    calendar: WorkCalendar,
) -> CaseState:
    """Apply `steps`, which all sort after the state's last step, in timeline order."""
    status = state.status
    for step in sorted(steps, key=_order):
        seq = state.count
        new, note = status, None
        if step.action is CaseAction.REPORT:
            note = "ignored: duplicate report"
        else:
            allowed, target = TRANSITIONS[step.action]
            if status in allowed:
                new = target or status
                _mark(state, step, category, tz, calendar)
            else:
                note = f"ignored: '{step.action.value}' not allowed in status '{status.value}'"
        state.steps.append(ReplayedStep(step.id, seq, status, new, note))
        status = new
        state.count, state.last_at, state.last_id = seq + 1, step.at, step.id
    state.status = status
    return state


def state_of_row(row: Any) -> CaseState:
    """The state stored in a `cases` row (to continue it with later steps)."""
    return CaseState(
        status=CaseStatus(row.status),
        reported_at=row.reported_at,
        accepted_at=row.accepted_at,
        dispatched_at=row.dispatched_at,
        handled_at=row.handled_at,
        closed_at=row.closed_at,
        due_at=row.due_at,
        handling_seconds=row.handling_seconds,
        deferred=bool(row.deferred),
        supervised=bool(row.supervised),
        rework_count=row.rework_count,
        satisfaction=Satisfaction(row.satisfaction) if row.satisfaction else None,
        resolved_at=ResolvedAt(row.resolved_at) if row.resolved_at else None,
        last_at=row.last_event_at,
        last_id=row.last_event_id,
        count=row.event_count or 0,
    )


def _mark(
    state: CaseState, step: CaseStep, category: Category, tz: tzinfo, calendar: WorkCalendar
) -> None:
    action, at = step.action, step.at
    if action is CaseAction.ACCEPT:
        state.accepted_at = at
        hours = DUE_WORKING_HOURS[category]
        state.due_at = add_working_hours(at, hours, tz=tz, calendar=calendar)
    elif action is CaseAction.DISPATCH:
        state.dispatched_at = at
    elif action is CaseAction.DEFER:
        state.deferred = True
    elif action is CaseAction.SUPERVISE:
        state.supervised = True
    elif action is CaseAction.HANDLE:
        state.handled_at = at
    elif action is CaseAction.REWORK:
        state.rework_count += 1
    elif action is CaseAction.CLOSE:
        state.closed_at = at
        assert state.reported_at is not None
        state.handling_seconds = int((at - state.reported_at).total_seconds())
        state.resolved_at = step.resolved_at or ResolvedAt.GRID
    elif action is CaseAction.EVALUATE:
        state.satisfaction = step.satisfaction


def case_columns(state: CaseState) -> dict[str, Any]:
    """The lifecycle columns of a `cases` row."""
    return {
        "status": state.status.value,
        "reported_at": state.reported_at,
        "accepted_at": state.accepted_at,
        "dispatched_at": state.dispatched_at,
        "handled_at": state.handled_at,
        "closed_at": state.closed_at,
        "due_at": state.due_at,
        "handling_seconds": state.handling_seconds,
        "deferred": state.deferred,
        "supervised": state.supervised,
        "rework_count": state.rework_count,
        "satisfaction": state.satisfaction.value if state.satisfaction else None,
        "resolved_at": state.resolved_at.value if state.resolved_at else None,
        "last_event_at": state.last_at,
        "last_event_id": state.last_id,
        "event_count": state.count,
    }


def case_event_rows(
    case_id: str, steps: Iterable[CaseStep], state: CaseState
) -> list[dict[str, Any]]:
    """`case_events` rows of `steps`, with their place in the replayed timeline."""
    placed = {r.id: r for r in state.steps}
    rows = []
    for step in steps:
        where = placed.get(step.id)
        if where is None:
            continue  # placed by an earlier replay, unchanged
        rows.append(
            {
                "id": step.id,
                "case_id": case_id,
                "seq": where.seq,
                "action": step.action.value,
                "from_status": where.from_status.value if where.from_status else None,
                "to_status": where.to_status.value,
                "actor": step.actor,
                "at": step.at,
                "note": step.note,
                "replay_note": where.replay_note,
                "satisfaction": step.satisfaction.value if step.satisfaction else None,
                "resolved_at": step.resolved_at.value if step.resolved_at else None,
            }
        )
    return rows


@dataclass(frozen=True, slots=True)
class AlarmStep:
    """One stored event of an alarm (kind is the event kind without "alarm.")."""

    id: str
    kind: str  # raised | updated | acknowledged | resolved
    at: datetime
    actor: str | None = None
    severity: Severity | None = None
    snapshot_url: str | None = None
    false_alarm: bool = False


@dataclass(frozen=True, slots=True)
class AlarmState:
    status: AlarmStatus
    severity: Severity
    started_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    ended_at: datetime | None = None
    snapshot_url: str | None = None


def replay_alarm(steps: Iterable[AlarmStep]) -> AlarmState | None:
    """The state of an alarm from its events; None until it has been raised."""
    ordered = sorted(steps, key=lambda s: (s.kind != "raised", s.at, s.id))
    if not ordered or ordered[0].kind != "raised":
        return None
    first = ordered[0]
    if first.severity is None:
        return None
    state = AlarmState(
        AlarmStatus.ACTIVE, first.severity, first.at, snapshot_url=first.snapshot_url
    )
    for step in ordered[1:]:
        if state.status in (AlarmStatus.RESOLVED, AlarmStatus.FALSE_ALARM):
            break  # an ended alarm stays ended; a new occurrence is a new alarm
        if step.kind == "updated":
            state = replace(
                state,
                severity=step.severity or state.severity,
                snapshot_url=step.snapshot_url or state.snapshot_url,
            )
        elif step.kind == "acknowledged" and state.status is AlarmStatus.ACTIVE:
            state = replace(
                state,
                status=AlarmStatus.ACKNOWLEDGED,
                acknowledged_at=step.at,
                acknowledged_by=step.actor,
            )
        elif step.kind == "resolved":
            ended = AlarmStatus.FALSE_ALARM if step.false_alarm else AlarmStatus.RESOLVED
            state = replace(state, status=ended, ended_at=step.at)
    return state
