"""KPI definitions: the one place that says what each figure on a screen means.

A KPI is a ratio of additive counts. The counts of a node are a `Tally`; tallies add up (two streets'
tallies summed are their district's), so SQL can compute them with one GROUP BY at any level and live
state can keep them as counters. `store.tallies()` computes the same counts in SQL; a test checks that
both agree case by case.

Definitions, over the cases reported in the window:

- 结案率 closure rate = closed ÷ accepted (accepted = passed review: not still reported, not rejected).
- 按期结案率 on-time closure rate = closed on time ÷ due, both excluding deferred (缓办) cases;
  due = accepted, not deferred, and either closed or past its due time.
- 返工率 rework rate = cases reworked at least once ÷ cases handled at least once.
- 满意率 satisfaction = satisfied or basically satisfied ÷ evaluated.
- 基层解决率 resolved at grassroots = closed at grid or community level ÷ closed.
- mean handling time = mean of (closed − reported) over closed cases, in hours.
- 超期 overdue = open, not deferred, past its due time (derived from `now`, never stored).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime

from data_sources.model import GRASSROOTS, CaseFacts, CaseStatus, Satisfaction

_SATISFIED = frozenset({Satisfaction.SATISFIED, Satisfaction.BASICALLY_SATISFIED})


@dataclass(frozen=True, slots=True)
class Tally:
    """Additive case counts of one node."""

    reported: int = 0
    open: int = 0
    accepted: int = 0
    rejected: int = 0
    closed: int = 0
    due: int = 0
    closed_on_time: int = 0
    overdue: int = 0
    handled: int = 0
    reworked: int = 0
    evaluated: int = 0
    satisfied: int = 0
    closed_grassroots: int = 0
    handling_seconds: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


TALLY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Tally))


def tally_of_case(case: CaseFacts, *, now: datetime) -> Tally:
    """The tally of a single case: each field 0 or 1 (or its handling seconds)."""
    accepted = case.status not in (CaseStatus.REPORTED, CaseStatus.REJECTED)
    closed = case.status is CaseStatus.CLOSED
    counted_for_time = accepted and not case.deferred and case.due_at is not None
    past_due = counted_for_time and case.due_at is not None and case.due_at < now
    on_time = (
        closed
        and counted_for_time
        and case.closed_at is not None
        and case.due_at is not None
        and case.closed_at <= case.due_at
    )
    handling = 0
    if closed and case.closed_at is not None:
        handling = int((case.closed_at - case.reported_at).total_seconds())
    return Tally(
        reported=1,
        open=int(case.status.is_open),
        accepted=int(accepted),
        rejected=int(case.status is CaseStatus.REJECTED),
        closed=int(closed),
        due=int(counted_for_time and (closed or past_due)),
        closed_on_time=int(on_time),
        overdue=int(case.status.is_open and past_due),
        handled=int(case.handled),
        reworked=int(case.handled and case.rework_count > 0),
        evaluated=int(case.satisfaction is not None),
        satisfied=int(case.satisfaction in _SATISFIED),
        closed_grassroots=int(closed and case.resolved_at in GRASSROOTS),
        handling_seconds=handling,
    )


def tally_of_cases(cases: Iterable[CaseFacts], *, now: datetime) -> Tally:
    total = Tally()
    for case in cases:
        total = total + tally_of_case(case, now=now)
    return total


def _ratio(numerator: int, denominator: int) -> float | None:
    """A rate in [0, 1], or None when there is nothing to divide by (shown as "—", never as 0 %)."""
    return numerator / denominator if denominator else None


@dataclass(frozen=True, slots=True)
class Kpis:
    """The figures of one node. Rates are fractions in [0, 1]; None means "no data"."""

    reported: int
    open: int
    overdue: int
    closure_rate: float | None
    on_time_rate: float | None
    rework_rate: float | None
    satisfaction_rate: float | None
    grassroots_rate: float | None
    mean_handling_hours: float | None


def kpis(tally: Tally) -> Kpis:
    """The KPIs of a node from its tally."""
    mean_hours = tally.handling_seconds / tally.closed / 3600 if tally.closed else None
    return Kpis(
        reported=tally.reported,
        open=tally.open,
        overdue=tally.overdue,
        closure_rate=_ratio(tally.closed, tally.accepted),
        on_time_rate=_ratio(tally.closed_on_time, tally.due),
        rework_rate=_ratio(tally.reworked, tally.handled),
        satisfaction_rate=_ratio(tally.satisfied, tally.evaluated),
        grassroots_rate=_ratio(tally.closed_grassroots, tally.closed),
        mean_handling_hours=mean_hours,
    )
