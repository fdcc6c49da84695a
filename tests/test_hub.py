"""The hub: deltas only for watched scopes, resume from the ring, slow streams cut off cleanly."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from data_sources.directory import Bounds, CameraPlace, Directory, Place, Points
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


def make(directory: Directory = DIRECTORY) -> tuple[Hub, LiveState]:
    live = LiveState(ROOT)
    return Hub(lambda: live, lambda: directory), live


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
    assert delta["children"] == {"530103004001": {"open": 1, "alarms": 0, "high": 0}}
    assert [item["id"] for item in delta["feed"]] == ["c1"]


def test_resume_returns_what_was_missed_or_none_when_too_old() -> None:
    hub, live = make()
    sub = hub.subscribe(STREET)
    snapshot_id = hub.last_id
    push(hub, live, case(A, 1))
    push(hub, live, case(B, 2))
    missed = hub.since(STREET, snapshot_id)
    assert missed is not None and [d["children"] for d in missed] == [
        {"530103004001": {"open": 1, "alarms": 0, "high": 0}},
        {"530103004002": {"open": 1, "alarms": 0, "high": 0}},
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
    alarm = AlarmChange(
        "a1", (STREET, A), False, True, "smoke_fire", 3, AlarmStatus.ACTIVE, at,
        "cam-9", "源丰路口", 102.705, 25.055,
    )  # fmt: skip
    fixes = [
        PositionFix(7, (STREET, A), at, 102.70, 25.05, "w7"),
        PositionFix(7, (STREET, A), at.replace(second=30), 102.71, 25.06, "w7"),
        PositionFix(8, (STREET, B), at, 102.72, 25.07, "w8"),
    ]
    push(hub, live, Projection(applied=4, alarms=[alarm], positions=fixes))
    delta = sub.queue.get_nowait()
    assert delta["alarms"] == 1
    assert [(a["id"], a["severity"], a["new"]) for a in delta["alarm_feed"]] == [("a1", 3, True)]
    # Where its camera stands: a live map draws the new alarm without a reload.
    (item,) = delta["alarm_feed"]
    assert (item["camera"], item["place"], item["lon"], item["lat"]) == (
        "cam-9",
        "源丰路口",
        102.705,
        25.055,
    )
    assert {w["id"]: (w["lon"], w["lat"]) for w in delta["workers"]} == {
        "w7": (102.71, 25.06),
        "w8": (102.72, 25.07),
    }


# A full path: district, street, community, grid, and two buildings of the grid (one in another grid).
D, S, C, G, H, B1, B2, B3 = 10, 11, 12, 13, 14, 15, 16, 17
CODES = {D: "530103", S: "530103004", C: "530103004001", G: "530103004001001"}
CODES |= {H: "530103004001002", B1: "530103004001001001", B2: "530103004001001002"}
CODES |= {B3: "530103004001002001"}
FULL = Directory(
    ROOT,
    {
        CODES[D]: Place(D, (D,)),
        CODES[S]: Place(S, (D, S)),
        CODES[C]: Place(C, (D, S, C)),
        CODES[G]: Place(G, (D, S, C, G)),
        CODES[H]: Place(H, (D, S, C, H)),
        CODES[B1]: Place(B1, (D, S, C, G, B1)),
        CODES[B2]: Place(B2, (D, S, C, G, B2)),
        CODES[B3]: Place(B3, (D, S, C, H, B3)),
    },
    {},
    {},
    Bounds(0, 0, 1, 1),
    {ROOT: "530100", **CODES},
    {ROOT: [D], D: [S], S: [C], C: [G, H], G: [B1, B2], H: [B3]},
)


def test_a_buildings_stream_carries_its_grids_moved_workers_and_nearby_alarms() -> None:
    """A worker's path stops at the grid, yet a building's wall shows its grid's workers: their
    moves reach the building's stream; so do the alarms of the grid's other cameras (nearby)."""
    hub, live = make(FULL)
    building = hub.subscribe(B1)
    grid = hub.subscribe(G)
    other_grid = hub.subscribe(B3)
    at = datetime(2026, 11, 23, 6)
    fix = PositionFix(7, (D, S, C, G), at, 102.71, 25.06, "w7")
    push(hub, live, Projection(applied=1, positions=[fix]))
    delta = building.queue.get_nowait()
    assert delta["node"] == CODES[B1] and delta["children"] == {}
    assert delta["workers"] == [
        {"id": "w7", "lon": 102.71, "lat": 25.06, "at": at.isoformat() + "Z"}
    ]
    assert [w["id"] for w in grid.queue.get_nowait()["workers"]] == ["w7"]
    assert other_grid.queue.empty()  # another grid's building

    def alarm(alarm_id: str, path: tuple[int, ...]) -> AlarmChange:
        status = AlarmStatus.ACTIVE
        return AlarmChange(alarm_id, path, False, True, "fire", 4, status, at, "c", "n", 1.0, 2.0)

    own, next_door = alarm("own", (D, S, C, G, B1)), alarm("next", (D, S, C, G, B2))
    push(hub, live, Projection(applied=2, alarms=[own, next_door]))
    delta = building.queue.get_nowait()
    assert [a["id"] for a in delta["alarm_feed"]] == ["own", "next"]  # its own only once
    assert delta["alarms"] == 1  # the tile counts the building's own alarms
    assert other_grid.queue.empty()


# B1 stands at (102.7000, 25.0500); B3, in the next grid, 200 m east; two cameras in B3's grid: one
# 100 m east of B1 (nearby: within 300 m) and one 1 km east (not).
NEAR_CAM, FAR_CAM = 51, 52
NEARBY = Directory(
    ROOT,
    FULL.nodes,
    {
        "cam-near": CameraPlace(NEAR_CAM, (D, S, C, H, B3), 102.7010, 25.05, "源丰路口"),
        "cam-far": CameraPlace(FAR_CAM, (D, S, C, H, B3), 102.7100, 25.05, "金星立交"),
    },
    {},
    Bounds(0, 0, 1, 1),
    FULL.codes,
    FULL.children,
    Points.build([(B1, 102.7, 25.05), (B2, 102.7005, 25.0505), (B3, 102.702, 25.05)]),
    Points.build([(NEAR_CAM, 102.7010, 25.05), (FAR_CAM, 102.7100, 25.05)]),
)


def test_points_near_a_building_by_great_circle_distance() -> None:
    assert NEARBY.cameras_at.near(102.7, 25.05, 300) == [NEAR_CAM]
    assert NEARBY.cameras_at.near(102.7, 25.05, 1_100) == [NEAR_CAM, FAR_CAM]
    assert NEARBY.buildings_at.at(B3) == (102.702, 25.05)
    assert NEARBY.buildings_at.at(999) is None
    assert len(Points.empty()) == 0 and Points.empty().near(102.7, 25.05, 300) == []


def test_a_buildings_stream_carries_alarms_of_nearby_cameras_in_another_grid() -> None:
    """What the building's first render shows live as well: cameras within 300 m count as nearby
    even across the grid's border (wall_layers.scope_cameras), so their alarms reach its stream."""
    hub, live = make(NEARBY)
    building = hub.subscribe(B1)
    at = datetime(2026, 11, 23, 6)

    def alarm(alarm_id: str, camera: str, lon: float, status: AlarmStatus) -> AlarmChange:
        is_open = status is AlarmStatus.ACTIVE
        return AlarmChange(
            alarm_id, (D, S, C, H, B3), not is_open, is_open, "fire", 4, status, at, camera, "n",
            lon, 25.05,
        )  # fmt: skip

    near, far = (
        alarm("near", "cam-near", 102.701, AlarmStatus.ACTIVE),
        alarm("far", "cam-far", 102.71, AlarmStatus.ACTIVE),
    )
    push(hub, live, Projection(applied=2, alarms=[near, far]))
    delta = building.queue.get_nowait()
    assert [a["id"] for a in delta["alarm_feed"]] == ["near"]
    assert delta["alarms"] == 0  # the tile counts the building's own alarms only
    # Its end as well: a resolved alarm leaves the building's map.
    push(
        hub,
        live,
        Projection(applied=1, alarms=[alarm("near", "cam-near", 102.701, AlarmStatus.RESOLVED)]),
    )
    assert [a["status"] for a in building.queue.get_nowait()["alarm_feed"]] == ["resolved"]

    # Forgotten: it follows the camera no more.
    hub.unsubscribe(building)
    hub.forget_unwatched(now=10**9 + UNWATCHED_S * 2)
    assert hub._near == {} and hub._cameras_near == {}


def test_a_forgotten_building_no_longer_follows_its_grid() -> None:
    hub, live = make(FULL)
    hub.unsubscribe(hub.subscribe(B1))
    hub.forget_unwatched(now=10**9 + UNWATCHED_S * 2)
    fix = PositionFix(7, (D, S, C, G), datetime(2026, 11, 23, 6), 102.71, 25.06, "w7")
    push(hub, live, Projection(applied=1, positions=[fix]))
    assert hub.since(B1, hub.last_id - 1) is None
    assert hub.frames == 0  # nothing watched: no frame built


def test_deltas_count_todays_new_cases_per_channel_uncapped() -> None:
    """The wall's 今日新增 tile and channel donut grow by these counts: every new case reported
    today (the command centre's day), however many came in one frame; not a transition, not a
    late report of yesterday."""
    live = LiveState(ROOT)
    now = datetime(2026, 11, 23, 6)  # naive UTC: 14:00 in Kunming
    hub = Hub(lambda: live, lambda: DIRECTORY, tz=ZoneInfo("Asia/Shanghai"), clock=lambda: now)
    sub = hub.subscribe(STREET)

    def new(n: int, channel: str, reported: datetime) -> CaseChange:
        return CaseChange(
            f"r{n}", (STREET, A), None, CaseStatus.REPORTED, "t", "noise", reported, channel,
            reported,
        )  # fmt: skip

    midnight = datetime(2026, 11, 22, 16)  # 00:00 in Kunming, as naive UTC
    cases = [new(n, "hotline_12345", midnight + timedelta(minutes=n)) for n in range(30)]
    cases += [new(30, "grid_worker", midnight), new(31, "app", midnight - timedelta(seconds=1))]
    moved = CaseChange(
        "c0", (STREET, A), CaseStatus.REPORTED, CaseStatus.ACCEPTED, "t", "noise", now
    )
    push(hub, live, Projection(applied=33, cases=[*cases, moved]))
    delta = sub.queue.get_nowait()
    assert delta["reported"] == {"hotline_12345": 30, "grid_worker": 1}
    assert len(delta["feed"]) < 30  # the feed is capped; the counts are not

    push(hub, live, Projection(applied=1, cases=[moved]))
    assert "reported" not in sub.queue.get_nowait()


def test_open_high_severity_alarms_are_counted_per_area_as_they_change() -> None:
    """The wall's area badge pulses while an area has an open high-severity alarm: the count
    follows raise, a lowered severity, acknowledgement and resolution, and reaches the deltas."""
    hub, live = make()
    sub = hub.subscribe(STREET)

    def alarm(status: AlarmStatus, severity: int, was: tuple[bool, int]) -> Projection:
        change = AlarmChange(
            "a1", (STREET, A), was[0], status.value in ("active", "acknowledged"), "fire",
            severity, status, datetime(2026, 11, 23), was_severity=was[1],
        )  # fmt: skip
        return Projection(applied=1, alarms=[change])

    push(hub, live, alarm(AlarmStatus.ACTIVE, 4, (False, 0)))
    assert sub.queue.get_nowait()["children"]["530103004001"] == {"open": 0, "alarms": 1, "high": 1}
    push(hub, live, alarm(AlarmStatus.ACTIVE, 2, (True, 4)))  # lowered: still open, not high
    assert (live.open_alarms[A], live.open_high[A]) == (1, 0)
    push(hub, live, alarm(AlarmStatus.ACKNOWLEDGED, 3, (True, 2)))
    assert (live.open_alarms[STREET], live.open_high[STREET], live.open_high[ROOT]) == (1, 1, 1)
    push(hub, live, alarm(AlarmStatus.RESOLVED, 3, (True, 3)))
    assert (live.open_alarms[A], live.open_high[A]) == (0, 0)
