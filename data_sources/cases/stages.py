"""A case's lifecycle stages (办理环节) from its timeline, each with the working time it took
against its limit: pure, no I/O (`detail.load_case_detail` reads the timeline).

The stages of the closed loop, each from the step that opens it to the step that ends it:

- 受理 intake review: report → accept / reject
- 派遣 dispatch: accept → dispatch
- 处置 handling: dispatch → handle, and again from each rework → handle
- 核查 verification: handle → close / rework
- 回访 evaluation: close → evaluate

A stage still running is measured to `now`. Only the steps the replay applied open or end a stage;
ignored ones (a duplicate report, a step out of order) stay in the timeline, marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from data_sources.model import (
    DUE_WORKING_HOURS,
    CaseAction,
    CaseStatus,
    Category,
    ResolvedAt,
    Satisfaction,
)
from data_sources.workhours import WorkCalendar, working_hours_between


class Stage(StrEnum):
    INTAKE = "intake"  # 受理 (review)
    DISPATCH = "dispatch"  # 派遣
    HANDLING = "handling"  # 处置
    VERIFICATION = "verification"  # 核查
    EVALUATION = "evaluation"  # 回访


#: Review of a report before it is accepted (立案审核): a fixed allowance, before the case's own
#: limit starts (`due_at` counts from the acceptance).
INTAKE_HOURS = 1.0
#: The return visit (回访) after closing: two working days, after the case's own limit.
EVALUATION_HOURS = 16.0
#: Dispatch and verification are hand-offs: each gets this share of the case's limit, at most
#: `HANDOFF_MAX_HOURS`; handling gets the rest, so the three add up to the limit.
HANDOFF_SHARE = 0.125
HANDOFF_MAX_HOURS = 2.0


def stage_limits(limit_hours: float) -> dict[Stage, float]:
    """The working hours each stage may take, for a case whose limit is `limit_hours`."""
    handoff = min(HANDOFF_MAX_HOURS, limit_hours * HANDOFF_SHARE)
    return {
        Stage.INTAKE: INTAKE_HOURS,
        Stage.DISPATCH: handoff,
        Stage.HANDLING: limit_hours - 2 * handoff,
        Stage.VERIFICATION: handoff,
        Stage.EVALUATION: EVALUATION_HOURS,
    }


#: Working hours per stage and category. These are gridcc's defaults, not a national standard:
#: the case's limit (`DUE_WORKING_HOURS[category]`, from acceptance to closing: what `due_at` is)
#: is split into dispatch, handling and verification by `stage_limits`, so a case whose stages all
#: kept their limits closes by its `due_at`; review and the return visit lie outside that limit
#: and get fixed allowances. Each handling round after a rework gets the handling allowance
#: again, but the case's own limit is not extended: a reworked case can keep every stage's
#: limit and still close late (the case's `overdue` is `due_at`'s, as in the KPIs).
STAGE_LIMIT_HOURS: dict[Category, dict[Stage, float]] = {
    category: stage_limits(hours) for category, hours in DUE_WORKING_HOURS.items()
}

#: The stage each applied step ends (the one running), and the stage it starts.
_ENDS: dict[CaseAction, Stage] = {
    CaseAction.ACCEPT: Stage.INTAKE,
    CaseAction.REJECT: Stage.INTAKE,
    CaseAction.DISPATCH: Stage.DISPATCH,
    CaseAction.HANDLE: Stage.HANDLING,
    CaseAction.REWORK: Stage.VERIFICATION,
    CaseAction.CLOSE: Stage.VERIFICATION,
    CaseAction.EVALUATE: Stage.EVALUATION,
}
_STARTS: dict[CaseAction, Stage] = {
    CaseAction.REPORT: Stage.INTAKE,
    CaseAction.ACCEPT: Stage.DISPATCH,
    CaseAction.DISPATCH: Stage.HANDLING,
    CaseAction.REWORK: Stage.HANDLING,
    CaseAction.HANDLE: Stage.VERIFICATION,
    CaseAction.CLOSE: Stage.EVALUATION,
}


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One stored step of the case, in timeline (`seq`) order."""

    id: str
    seq: int
    action: CaseAction
    actor: str
    at: datetime  # naive UTC
    from_status: CaseStatus | None
    to_status: CaseStatus
    note: str | None
    #: Why the replay ignored this step; None when it applied.
    replay_note: str | None
    satisfaction: Satisfaction | None
    resolved_at: ResolvedAt | None

    @property
    def ignored(self) -> bool:
        return self.replay_note is not None


@dataclass(frozen=True, slots=True)
class StageSpan:
    """A stage as it ran: from the step that opened it to the one that ended it (None: running)."""

    stage: Stage
    #: 1, or the handling/verification round after each rework (2, 3…).
    round: int
    start: datetime
    end: datetime | None
    started_by: str
    ended_by: str | None
    #: The step that ended it (accept or reject, close or rework…).
    outcome: CaseAction | None
    #: Working time spent (to `now` while running), clock time, and the stage's limit.
    working: timedelta
    elapsed: timedelta
    limit: timedelta
    #: Over its limit, unless the case was deferred (缓办) before the stage ended.
    overdue: bool


# ---------------------------------------------------------------- the stages, from the timeline


def stages_of(
    timeline: Sequence[TimelineEvent],
    *,
    category: Category,
    now: datetime,
    tz: tzinfo,
    calendar: WorkCalendar,
) -> tuple[StageSpan, ...]:
    """The stages of a case from its timeline (applied steps only), a running one measured to
    `now` (naive UTC)."""
    limits = STAGE_LIMIT_HOURS[category]
    applied = [e for e in timeline if not e.ignored]
    deferred_at = next((e.at for e in applied if e.action is CaseAction.DEFER), None)
    spans: list[StageSpan] = []
    running: TimelineEvent | None = None  # the step that opened the running stage
    rounds: dict[Stage, int] = {}

    def span(opened: TimelineEvent, closed: TimelineEvent | None) -> StageSpan:
        stage = _STARTS[opened.action]
        end = closed.at if closed is not None else None
        until = max(end or now, opened.at)
        working = working_hours_between(opened.at, until, tz=tz, calendar=calendar)
        limit = timedelta(hours=limits[stage])
        suspended = deferred_at is not None and deferred_at <= until
        return StageSpan(
            stage,
            rounds[stage],
            opened.at,
            end,
            opened.actor,
            closed.actor if closed is not None else None,
            closed.action if closed is not None else None,
            working,
            until - opened.at,
            limit,
            working > limit and not suspended,
        )

    for event in applied:
        ended = _ENDS.get(event.action)
        if ended is not None and running is not None and _STARTS[running.action] is ended:
            spans.append(span(running, event))
            running = None
        started = _STARTS.get(event.action)
        if started is not None:
            rounds[started] = rounds.get(started, 0) + 1
            running = event
    if running is not None:
        spans.append(span(running, None))
    return tuple(spans)
