"""Replaying a case's events: any arrival order gives the same state and keeps the sources' notes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from data_sources.kpi import tally_of_case
from data_sources.lifecycle import CaseStep, case_event_rows, replay_case
from data_sources.model import CaseAction, CaseFacts, CaseStatus, Category
from data_sources.workhours import CN_CALENDAR, WorkCalendar

from .conftest import TZ

T0 = datetime(2026, 11, 23, 2, 0)
STEPS = [
    CaseStep("e0", CaseAction.REPORT, T0, "市民"),
    CaseStep("e1", CaseAction.ACCEPT, T0 + timedelta(minutes=10), "受理员"),
    CaseStep("e2", CaseAction.DISPATCH, T0 + timedelta(minutes=20), "派遣员", note="send team 3"),
    CaseStep("e3", CaseAction.HANDLE, T0 + timedelta(hours=2), "网格员"),
]


def test_every_order_gives_the_same_state_and_rows() -> None:
    expected = replay_case(STEPS, category=Category.NOISE, tz=TZ, calendar=CN_CALENDAR)
    assert expected is not None and expected.status is CaseStatus.HANDLED
    rows = case_event_rows("c", STEPS, expected)
    for order in itertools.permutations(STEPS):
        state = replay_case(order, category=Category.NOISE, tz=TZ, calendar=CN_CALENDAR)
        assert state is not None
        assert state.status == expected.status and state.due_at == expected.due_at
        assert sorted(case_event_rows("c", order, state), key=lambda r: r["id"]) == rows


def test_an_ignored_step_keeps_its_note_and_says_why_separately() -> None:
    # Dispatch before accept has arrived: ignored for now, its note kept.
    partial = [STEPS[0], STEPS[2]]
    state = replay_case(partial, category=Category.NOISE, tz=TZ, calendar=CN_CALENDAR)
    assert state is not None and state.status is CaseStatus.REPORTED
    dispatch = next(r for r in case_event_rows("c", partial, state) if r["id"] == "e2")
    assert dispatch["note"] == "send team 3"
    assert dispatch["replay_note"] == "ignored: 'dispatch' not allowed in status 'reported'"
    complete = replay_case(STEPS[:3], category=Category.NOISE, tz=TZ, calendar=CN_CALENDAR)
    assert complete is not None and complete.status is CaseStatus.DISPATCHED
    dispatch = next(r for r in case_event_rows("c", STEPS[:3], complete) if r["id"] == "e2")
    assert (dispatch["note"], dispatch["replay_note"]) == ("send team 3", None)


def test_no_state_until_the_report_arrives() -> None:
    assert replay_case(STEPS[1:], category=Category.NOISE, tz=TZ, calendar=CN_CALENDAR) is None


def _local(text: str) -> datetime:
    """Naive UTC of a Kunming local 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ).astimezone(UTC).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("calendar", "due", "overdue_on_oct_5"),
    [
        (CN_CALENDAR, "2026-10-08 17:00", 0),  # National Day, Oct 1-7: the clock stops
        (WorkCalendar("weekdays"), "2026-10-01 17:00", 1),
    ],
)
def test_no_case_falls_overdue_during_national_day(
    calendar: WorkCalendar, due: str, overdue_on_oct_5: int
) -> None:
    # A noise case (8 working hours) accepted on Wednesday Sep 30, 2026 at 16:00.
    reported = _local("2026-09-30 15:40")
    steps = [
        CaseStep("n0", CaseAction.REPORT, reported, "市民"),
        CaseStep("n1", CaseAction.ACCEPT, _local("2026-09-30 16:00"), "受理员"),
        CaseStep("n2", CaseAction.DISPATCH, _local("2026-09-30 16:10"), "派遣员"),
    ]
    state = replay_case(steps, category=Category.NOISE, tz=TZ, calendar=calendar)
    assert state is not None and state.due_at == _local(due)
    facts = CaseFacts(CaseStatus.DISPATCHED, reported, due_at=state.due_at)
    assert tally_of_case(facts, now=_local("2026-10-05 10:00")).overdue == overdue_on_oct_5
    assert tally_of_case(facts, now=_local("2026-10-08 16:59")).overdue == overdue_on_oct_5
    assert tally_of_case(facts, now=_local("2026-10-08 17:01")).overdue == 1
