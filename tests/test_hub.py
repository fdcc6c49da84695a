"""The hub: deltas only for watched scopes, resume from the ring, slow streams cut off cleanly."""

from __future__ import annotations

from datetime import datetime

from data_sources.directory import Bounds, Directory
from data_sources.hub import QUEUE, UNWATCHED_S, Hub
from data_sources.live import LiveState
from data_sources.model import AlarmStatus, CaseStatus
from data_sources.projector import AlarmChange, CaseChange, PositionFix, Projection

ROOT, STREET, A, B = 1, 2, 3, 4
DIRECTORY = Directory(
    ROOT,
    {},
    {},
    {},
    Bounds(0, 0, 1, 1),
    {ROOT: "530100", STREET: "530103004", A: "530103004001", B: "530103004002"},
    {ROOT: [STREET], STREET: [A, B]},
)


def case(community: int, n: int) -> Projection:
    change = CaseChange(
        f"c{n}",
        (STREET, community),
        None,
        CaseStatus.REPORTED,
        "t",
        "noise",
        datetime(2026, 11, 23),
    )
    return Projection(applied=1, cases=[change])


def make() -> tuple[Hub, LiveState]:
    live = LiveState(ROOT)
    return Hub(lambda: live, lambda: DIRECTORY), live


def push(hub: Hub, live: LiveState, projection: Projection) -> None:
    live.apply(projection)
    hub.on_projection(projection)
    hub.flush()


def test_deltas_carry_absolute_figures_of_the_scope_and_its_changed_children() -> None:
    hub, live = make()
    sub = hub.subscribe(STREET)
    push(hub, live, case(A, 1))
    delta = sub.queue.get_nowait()
    assert delta["node"] == "530103004" and delta["open"] == 1
    assert delta["children"] == {"530103004001": {"open": 1, "alarms": 0}}
    assert [item["id"] for item in delta["feed"]] == ["c1"]


def test_resume_returns_what_was_missed_or_none_when_too_old() -> None:
    hub, live = make()
    sub = hub.subscribe(STREET)
    snapshot_id = hub.last_id
    push(hub, live, case(A, 1))
    push(hub, live, case(B, 2))
    missed = hub.since(STREET, snapshot_id)
    assert missed is not None and [d["children"] for d in missed] == [
        {"530103004001": {"open": 1, "alarms": 0}},
        {"530103004002": {"open": 1, "alarms": 0}},
    ]
    assert hub.since(STREET, snapshot_id - 1000) is None  # before tracking began
    assert hub.since(STREET, hub.last_id + 5) is None  # an id from another life of the server
    hub.unsubscribe(sub)


def test_a_slow_stream_is_cut_and_its_resume_misses_nothing() -> None:
    hub, live = make()
    sub = hub.subscribe(STREET)
    start = hub.last_id
    push(hub, live, case(B, 0))  # the only change of B, soon buried under A's
    for n in range(1, QUEUE + 5):
        push(hub, live, case(A, n))
    assert sub.closed
    assert sub.queue.get_nowait() == {"cut": True}  # nothing else: the browser resumes from start
    resumed = hub.since(STREET, start)
    assert resumed is not None
    assert any("530103004002" in d["children"] for d in resumed)


def test_unwatched_nodes_are_forgotten() -> None:
    hub, live = make()
    hub.unsubscribe(hub.subscribe(STREET))
    push(hub, live, case(A, 1))
    assert hub.since(STREET, hub.last_id - 1) is not None  # still tracked for a while
    hub.forget_unwatched(now=10**9 + UNWATCHED_S * 2)
    assert hub.since(STREET, hub.last_id - 1) is None


def test_deltas_carry_alarm_changes_and_the_latest_fix_of_each_moved_worker() -> None:
    hub, live = make()
    sub = hub.subscribe(STREET)
    at = datetime(2026, 11, 23, 6)
    alarm = AlarmChange("a1", (STREET, A), False, True, "smoke_fire", 3, AlarmStatus.ACTIVE, at)
    fixes = [
        PositionFix(7, (STREET, A), at, 102.70, 25.05, "w7"),
        PositionFix(7, (STREET, A), at.replace(second=30), 102.71, 25.06, "w7"),
        PositionFix(8, (STREET, B), at, 102.72, 25.07, "w8"),
    ]
    push(hub, live, Projection(applied=4, alarms=[alarm], positions=fixes))
    delta = sub.queue.get_nowait()
    assert delta["alarms"] == 1
    assert [(a["id"], a["severity"], a["new"]) for a in delta["alarm_feed"]] == [("a1", 3, True)]
    assert {w["id"]: (w["lon"], w["lat"]) for w in delta["workers"]} == {
        "w7": (102.71, 25.06),
        "w8": (102.72, 25.07),
    }
