"""KPI definitions against hand-computed values, including the edge cases."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from data_sources.kpi import Kpis, Tally, kpis, tally_of_case, tally_of_cases
from data_sources.model import CaseFacts, CaseStatus, ResolvedAt, Satisfaction

NOW = datetime(2026, 11, 23, 6, 0)
H = timedelta(hours=1)


def case(status: CaseStatus, **kw: object) -> CaseFacts:
    return CaseFacts(status=status, reported_at=kw.pop("reported_at", NOW - 48 * H), **kw)  # type: ignore[arg-type]


def closed(hours: float, *, due_in: float, **kw: object) -> CaseFacts:
    """A case reported 48 h ago, closed after `hours`, due `due_in` hours after it was reported."""
    reported = NOW - 48 * H
    return case(
        CaseStatus.CLOSED,
        reported_at=reported,
        closed_at=reported + hours * H,
        due_at=reported + due_in * H,
        handled=True,
        **kw,
    )


#: Ten cases whose KPIs are worked out by hand below.
CASES = [
    # 1-4: closed on time; 1 resolved in the grid, 2 in the community, 3 at street, 4 in the grid
    closed(10, due_in=24, resolved_at=ResolvedAt.GRID, satisfaction=Satisfaction.SATISFIED),
    closed(20, due_in=24, resolved_at=ResolvedAt.COMMUNITY, satisfaction=Satisfaction.SATISFIED),
    closed(
        4, due_in=8, resolved_at=ResolvedAt.STREET, satisfaction=Satisfaction.BASICALLY_SATISFIED
    ),
    closed(6, due_in=8, resolved_at=ResolvedAt.GRID, rework_count=1),
    # 5: closed late, reworked, dissatisfied
    closed(
        30,
        due_in=24,
        resolved_at=ResolvedAt.GRID,
        rework_count=2,
        satisfaction=Satisfaction.DISSATISFIED,
    ),
    # 6: closed late but deferred (缓办): not counted for timeliness
    closed(40, due_in=24, resolved_at=ResolvedAt.DISTRICT, deferred=True),
    # 7: dispatched, past due → overdue
    case(CaseStatus.DISPATCHED, due_at=NOW - 2 * H),
    # 8: handled, not yet due
    case(CaseStatus.HANDLED, due_at=NOW + 5 * H, handled=True),
    # 9: still waiting for review
    case(CaseStatus.REPORTED),
    # 10: rejected
    case(CaseStatus.REJECTED),
]


def test_tally_of_hand_computed_cases() -> None:
    tally = tally_of_cases(CASES, now=NOW)
    assert tally == Tally(
        reported=10,
        open=3,  # 7, 8, 9
        accepted=8,  # all but 9 and 10
        rejected=1,
        closed=6,
        due=6,  # 1-5 (closed, not deferred) and 7 (past due); 8 not yet due; 6 deferred
        closed_on_time=4,  # 1-4
        overdue=1,  # 7
        handled=7,  # 1-6 and 8
        reworked=2,  # 4 and 5
        evaluated=4,  # 1, 2, 3, 5
        satisfied=3,  # 1, 2, 3
        closed_grassroots=4,  # 1, 2, 4, 5
        handling_seconds=(10 + 20 + 4 + 6 + 30 + 40) * 3600,
    )


def test_kpis_of_hand_computed_cases() -> None:
    result = kpis(tally_of_cases(CASES, now=NOW))
    assert result == Kpis(
        reported=10,
        open=3,
        overdue=1,
        closure_rate=pytest.approx(6 / 8),
        on_time_rate=pytest.approx(4 / 6),
        rework_rate=pytest.approx(2 / 7),
        satisfaction_rate=pytest.approx(3 / 4),
        grassroots_rate=pytest.approx(4 / 6),
        mean_handling_hours=pytest.approx(110 / 6),
    )


def test_no_cases_gives_no_rates_not_zero() -> None:
    assert kpis(Tally()) == Kpis(0, 0, 0, None, None, None, None, None, None)


def test_all_deferred_has_no_on_time_rate() -> None:
    cases = [
        closed(40, due_in=24, deferred=True, resolved_at=ResolvedAt.GRID),
        case(CaseStatus.DISPATCHED, due_at=NOW - H, deferred=True),
    ]
    result = kpis(tally_of_cases(cases, now=NOW))
    assert result.on_time_rate is None
    assert result.overdue == 0  # deferred cases are never overdue
    assert result.closure_rate == pytest.approx(1 / 2)
    assert result.grassroots_rate == 1.0


def test_closed_exactly_at_due_time_is_on_time() -> None:
    t = tally_of_case(closed(24, due_in=24), now=NOW)
    assert (t.due, t.closed_on_time) == (1, 1)


def test_open_case_not_yet_due_is_not_counted_as_due() -> None:
    t = tally_of_case(case(CaseStatus.DISPATCHED, due_at=NOW + H), now=NOW)
    assert (t.due, t.overdue, t.open) == (0, 0, 1)


def test_reported_and_rejected_cases_have_no_closure_denominator() -> None:
    result = kpis(tally_of_cases([case(CaseStatus.REPORTED), case(CaseStatus.REJECTED)], now=NOW))
    assert result.closure_rate is None
    assert result.reported == 2


def test_tallies_add_up() -> None:
    a = tally_of_cases(CASES[:5], now=NOW)
    b = tally_of_cases(CASES[5:], now=NOW)
    assert a + b == tally_of_cases(CASES, now=NOW)
