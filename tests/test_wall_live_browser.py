"""The wall `/wall` kept live in a real headless Chromium: figures, trend, lists and the map follow
posted events without a server callback; alarms are acknowledged and turned into cases from it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from data_sources import store
from data_sources.alarm_actions import case_id_for
from data_sources.schema import (
    AlarmEventRow,
    AlarmRow,
    CameraRow,
    CaseEventRow,
    CaseRow,
    NodeRow,
    WorkerRow,
)
from data_sources.services import utc_now
from layouts import ids

from .browser import PageWatch, sign_in_page
from .conftest import PASSWORD
from .test_live_browser import post_case
from .wall_city import (
    BUILDING,
    GRID,
    LIANMENG,
    OPERATOR,
    PANLONG,
    TREND_NOW,
    kpi_open,
    open_cases,
    post_alarm,
    post_event,
    post_fix,
    seeded_city,
    serving,
    todays_cases,
)

pytestmark = pytest.mark.browser


#: The operator who acts from the wall in these tests.
OFFICER = OPERATOR


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    yield from seeded_city(tmp_path_factory)


@pytest.fixture(scope="module")
def server(database: tuple[str, Engine]) -> Iterator[str]:
    with serving(database[0]) as base:
        yield base


def test_a_posted_case_updates_the_wall_live(
    server: str, browser: Browser, database: tuple[str, Engine], artifacts: Path
) -> None:
    with Session(database[1]) as session:
        building = session.scalars(
            select(NodeRow.code)
            .where(NodeRow.level == "building", NodeRow.code.startswith(LIANMENG))
            .order_by(NodeRow.code)
        ).first()
    assert building is not None
    community = building[:12]
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?scope={LIANMENG}", wait_until="load")
    expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text("实时", timeout=15_000)
    tile = kpi_open(page)
    expect(tile).to_have_text(open_cases(database[1], LIANMENG), timeout=15_000)
    before = int(tile.inner_text().replace(",", ""))
    cell = page.locator(f"#{ids.wall_rank_cell(community, 'open')}")
    cell_before = int(cell.inner_text().replace(",", ""))

    trend_before = page.evaluate(TREND_NOW)
    post_case(server, "wall-live-1", building, "联盟街道大屏测试：井盖缺失")
    expect(tile).to_have_text(f"{before + 1:,}", timeout=2_000)
    # The current hour's bar grows in the browser, with no server callback (every 15 s at most;
    # the server's periodic refresh draws it from SQL: tests/test_wall_truth_browser.py).
    page.wait_for_function(f"() => ({TREND_NOW})() === {trend_before + 1}", timeout=17_000)
    expect(cell).to_have_text(f"{cell_before + 1:,}", timeout=2_000)
    feed = page.locator(f"#{ids.Wall.FEED_LIST}")
    expect(feed).to_contain_text("井盖缺失", timeout=2_000)
    expect(feed.locator(".wall-feed-item").first).to_contain_text("噪音扰民")
    expect(feed.locator(".wall-feed-item")).to_have_count(6)
    page.screenshot(path=str(artifacts / "wall-live-lianmeng.png"))
    assert watch.errors == []
    page.close()


def post_report(base: str, event_id: str, building: str, channel: str, ts: datetime) -> None:
    payload = {
        "case_id": f"c-{event_id}",
        "channel": channel,
        "category": "noise",
        "title": f"今日新增测试 {event_id}",
        "lon": 102.75,
        "lat": 25.07,
        "reporter": "市民",
    }
    event = {"id": event_id, "kind": "case.reported", "ts": ts.isoformat(), "node": building}
    post_event(base, event | {"payload": payload})


def test_todays_new_cases_and_their_channels_grow_live(
    server: str, browser: Browser, database: tuple[str, Engine]
) -> None:
    """今日新增 grows at once and the channels' key and donut within a few seconds, with no server
    callback; a late report of yesterday counts in neither; the charts' refresh agrees with SQL."""
    engine = database[1]
    with Session(engine) as session:
        building = session.scalars(
            select(NodeRow.code)
            .where(NodeRow.level == "building", NodeRow.code.startswith(LIANMENG))
            .order_by(NodeRow.code.desc())
        ).first()
    assert building is not None
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?scope={LIANMENG}", wait_until="load")
    expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text("实时", timeout=15_000)
    tile = page.locator(f"#{ids.wall_kpi('new_today')}")
    expect(tile).to_have_text(todays_cases(engine, LIANMENG), timeout=15_000)
    before = int(tile.inner_text().replace(",", ""))
    hotline, video = (
        page.locator(f".wall-channel-row[data-channel='{c}'] .wall-channel-n")
        for c in ("hotline_12345", "video")
    )
    hotline_before, video_before = (int(x.inner_text().replace(",", "")) for x in (hotline, video))
    donut_total = "() => document.querySelector('#wall-channel-graph .js-plotly-plot').layout.annotations[0].text"
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "_dash-update" in r.url else None)

    now = datetime.now(UTC)
    post_report(server, "today-1", building, "hotline_12345", now)
    post_report(server, "today-2", building, "hotline_12345", now)
    post_report(server, "today-3", building, "video", now)
    post_report(server, "yesterday-1", building, "video", now - timedelta(days=1, hours=1))
    expect(tile).to_have_text(f"{before + 3:,}", timeout=2_000)
    expect(hotline).to_have_text(f"{hotline_before + 2:,}", timeout=17_000)
    expect(video).to_have_text(f"{video_before + 1:,}")
    page.wait_for_function(f"() => ({donut_total})() === '{before + 3:,}'", timeout=2_000)
    assert callbacks == []

    # What SQL says (the server's periodic refresh draws it: tests/test_wall_truth_browser.py).
    assert tile.inner_text() == todays_cases(engine, LIANMENG)
    assert watch.errors == []
    page.close()


def test_the_map_follows_workers_cases_and_alarms_live(
    server: str, browser: Browser, database: tuple[str, Engine], artifacts: Path
) -> None:
    """At a grid: the worker's marker moves and comes on duty, a building's colour and label follow
    its open cases, a new high-severity alarm flashes, all without a server callback."""
    engine = database[1]
    quiet = "530103004001001001"  # 1-1号楼: no open case yet, so a new one makes it the most loaded
    with Session(engine) as session:
        grid = store.node_by_code(session=session, code=GRID)
        building = store.node_by_code(session=session, code=quiet)
        assert grid is not None and building is not None
        worker = session.scalars(select(WorkerRow.code).where(WorkerRow.grid_id == grid.id)).one()
        camera, camera_name = session.execute(
            select(CameraRow.code, CameraRow.name).where(CameraRow.building_id == building.id)
        ).first() or (None, None)
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?scope={GRID}", wait_until="load")
    expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text("实时", timeout=15_000)
    expect(page.locator(".wall-worker-off")).to_have_count(1, timeout=15_000)  # fixes of 2026-11-23
    callbacks: list[str] = []
    page.on("request", lambda r: callbacks.append(r.url) if "_dash-update" in r.url else None)

    now = datetime.now(UTC).isoformat()
    post_fix(server, "wall-gps-1", worker, building.lon, building.lat)
    expect(page.locator(".wall-worker-on")).to_have_count(1, timeout=3_000)
    expect(page.locator(f"#{ids.wall_kpi('on_duty')}")).to_have_text("1")
    # The marker stands on the building's stored point, inside its area.
    marker = page.locator(".wall-worker-on").bounding_box()
    area = page.locator(f".wall-area-{quiet}").bounding_box()
    assert marker is not None and area is not None
    x, y = marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2
    assert area["x"] <= x <= area["x"] + area["width"]
    assert area["y"] <= y <= area["y"] + area["height"]

    post_case(server, "wall-map-live-1", quiet, "源丰社区1-1号楼 楼道堆物")
    value = page.locator(f".wall-label-{quiet} .wall-label-value")
    expect(value).to_have_text("1", timeout=3_000)
    # Recoloured on the level's absolute scale: one open case is not red (issue 8, item 3).
    fill = f"document.querySelector('.wall-area-{quiet}').style.fill"
    one = page.evaluate("gridccWallMap.colour(1)")
    assert one != "#ef4444"
    rgb = "rgb(" + ", ".join(str(int(one[i : i + 2], 16)) for i in (1, 3, 5)) + ")"
    page.wait_for_function(f"{fill} === '{rgb}'", timeout=3_000)

    dots, red = page.locator(".wall-alarm-dot"), page.locator(".wall-alarm-high")
    dots_before, red_before = dots.count(), red.count()
    raised = {"alarm_id": "wall-fire-1", "camera": camera, "type": "fire", "severity": 4}
    post_event(
        server,
        {"id": "wall-alarm-1", "kind": "alarm.raised", "ts": now, "node": quiet, "payload": raised},
    )
    expect(page.locator(f".wall-area-{quiet}.wall-flash")).to_have_count(1, timeout=3_000)
    expect(page.locator(".wall-map-frame.wall-flash")).to_have_count(1)
    # The new alarm pulses on the map at its camera, without a reload.
    expect(dots).to_have_count(dots_before + 1, timeout=3_000)
    expect(red).to_have_count(red_before + 1)
    # It pulses on the map's beat (every 8 s, once), and nothing animates in between.
    pulse = "getComputedStyle(document.querySelector('.wall-alarm-high'), '::after').animationName"
    page.wait_for_function(f"() => {pulse} === 'wall-pulse'", timeout=10_000)
    page.wait_for_function(f"() => {pulse} === 'none'", timeout=3_000)
    newest = page.locator(f"#{ids.Wall.ALARM_LIST} .wall-alarm-item").first
    expect(newest).to_contain_text("烟火")
    # Where, live too: the building (the grid's child) and the camera within it, by the name
    # left of the camera's once the building is named ("源丰社区1-1号楼摄像机3": "1-1号楼 · 摄像机3").
    building, _, rest = str(camera_name).removeprefix("源丰社区").partition("号楼")
    expect(newest.locator(".wall-alarm-place")).to_have_text(f"{building}号楼 · {rest}")
    page.screenshot(path=str(artifacts / "wall-grid-live.png"))
    assert callbacks == []  # every change above was applied in the browser
    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


def test_a_buildings_map_follows_its_grids_worker_live(
    server: str, browser: Browser, database: tuple[str, Engine]
) -> None:
    """A worker's fixes belong to their grid, yet a building's wall shows the grid's workers: the
    marker moves there too, without a reload."""
    engine = database[1]
    with Session(engine) as session:
        grid = store.node_by_code(session=session, code=GRID)
        building = store.node_by_code(session=session, code=BUILDING)
        assert grid is not None and building is not None
        worker = session.scalars(select(WorkerRow.code).where(WorkerRow.grid_id == grid.id)).one()
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?scope={BUILDING}", wait_until="load")
    expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text("实时", timeout=15_000)
    marker = page.locator(".wall-worker")
    expect(marker).to_have_count(1, timeout=15_000)
    page.wait_for_timeout(300)  # the map has framed the building
    before = marker.bounding_box()
    post_fix(server, "wall-gps-building", worker, building.lon, building.lat)
    expect(page.locator(".wall-worker-on")).to_have_count(1, timeout=3_000)
    expect(page.locator(f"#{ids.wall_kpi('on_duty')}")).to_have_text("1")
    page.wait_for_function(
        "b => { const r = document.querySelector('.wall-worker').getBoundingClientRect();"
        " return Math.abs(r.x - b.x) + Math.abs(r.y - b.y) > 2; }",
        arg=before,
        timeout=3_000,
    )
    assert watch.errors == []
    page.close()


def test_a_worker_stays_on_duty_on_a_wall_pc_whose_clock_is_hours_off(
    server: str, browser: Browser, database: tuple[str, Engine]
) -> None:
    """On duty is "a fix in the last 30 minutes" by the server's clock: a wall PC three hours ahead
    must not turn every worker off duty at its next check, nor show the room the wrong time."""
    with Session(database[1]) as session:
        grid = store.node_by_code(session=session, code=GRID)
        assert grid is not None
        worker = session.scalars(select(WorkerRow.code).where(WorkerRow.grid_id == grid.id)).one()
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.clock.install(time=datetime.now(UTC) + timedelta(hours=3))
    page.goto(f"{server}/wall?scope={GRID}", wait_until="load")
    expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text("实时", timeout=15_000)
    post_fix(server, "wall-gps-skewed", worker, grid.lon, grid.lat)
    expect(page.locator(".wall-worker-on")).to_have_count(1, timeout=3_000)
    clock = page.locator(f"#{ids.Wall.CLOCK}")
    tz = ZoneInfo(clock.get_attribute("data-tz") or "UTC")

    def clock_drift() -> timedelta:
        shown = datetime.strptime(clock.inner_text(), "%H:%M:%S").time()
        real = datetime.now(tz)
        drift = abs(datetime.combine(real.date(), shown) - real.replace(tzinfo=None))
        return min(drift, timedelta(days=1) - drift)

    # The clock ticks every second; its first ticks, before any message, had only the PC's time.
    deadline = time.monotonic() + 3
    while clock_drift() >= timedelta(seconds=5) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert clock_drift() < timedelta(seconds=5), clock.inner_text()
    # Plotly loaded (a jump of the page's clock would time its loader out) and the charts drawn.
    expect(page.locator(".js-plotly-plot").first).to_be_attached(timeout=15_000)
    page.clock.fast_forward(61_000)  # the page's on-duty check runs every minute
    page.wait_for_timeout(1_000)
    assert page.locator(f"#{ids.wall_kpi('on_duty')}").inner_text() == "1"
    assert page.locator(".wall-worker-off").count() == 0
    assert watch.errors == []
    page.close()


def test_a_resolved_alarm_leaves_the_map(
    server: str, browser: Browser, database: tuple[str, Engine]
) -> None:
    engine = database[1]
    with Session(engine) as session:
        alarm, building = session.execute(
            select(AlarmRow.id, NodeRow.code)
            .join(NodeRow, NodeRow.id == AlarmRow.building_id)
            .where(AlarmRow.status == "acknowledged", AlarmRow.district_id.is_not(None))
            .order_by(AlarmRow.id)
        ).first() or (None, None)
    assert alarm is not None and building is not None
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?scope={PANLONG}", wait_until="load")
    expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text("实时", timeout=15_000)
    # A district's map counts alarms per street (no single markers): the street's count drops.
    expect(page.locator(".wall-alarm-dot")).to_have_count(0)
    badge = page.locator(f".wall-label-{building[:9]} .wall-label-alarms")
    expect(badge).to_have_count(1, timeout=15_000)
    before = int(badge.get_attribute("data-n") or "0")
    assert before > 0
    resolved = {"alarm_id": alarm, "actor": "值班员"}
    now = datetime.now(UTC).isoformat()
    event = {"id": "wall-resolve-1", "kind": "alarm.resolved", "ts": now, "node": building}
    post_event(server, event | {"payload": resolved})
    expect(badge).to_have_attribute("data-n", str(before - 1), timeout=3_000)


def test_an_alarm_is_acknowledged_and_turned_into_a_case_from_the_wall(
    server: str, browser: Browser, database: tuple[str, Engine], artifacts: Path
) -> None:
    engine = database[1]
    with Session(engine) as session:
        camera = session.execute(
            select(CameraRow.code, CameraRow.name, NodeRow.code.label("node"))
            .join(NodeRow, NodeRow.id == CameraRow.building_id)
            .where(NodeRow.code.startswith(LIANMENG))
            .order_by(CameraRow.code)
            .limit(1)
        ).one()
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    # Signed in as an operator: the actor of what the wall's buttons do.
    sign_in_page(page, server, OFFICER, PASSWORD, then=f"/wall?scope={LIANMENG}")
    expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text("实时", timeout=15_000)
    expect(kpi_open(page)).to_have_text(open_cases(engine, LIANMENG), timeout=15_000)

    post_alarm(server, "wall-fire-2", camera.code, camera.node)
    ticker = page.locator(f"#{ids.Wall.ALARM_LIST}")
    item = ticker.locator(".wall-alarm-item").first
    expect(item).to_contain_text("烟火", timeout=2_000)
    expect(item).to_contain_text("告警中")
    expect(item).to_have_class(re.compile(r"wall-sev-4.*wall-new"))  # flashes as it slides in
    expect(item.locator(".wall-act-ack")).to_have_text("确认")

    item.locator(".wall-act-case").click()  # a mouse click: 转案件
    expect(item).to_contain_text("已确认", timeout=5_000)
    expect(item).to_have_class(re.compile(r"wall-acked"))
    expect(item.locator(".wall-act-done")).to_have_text("已立案")
    expect(item.locator(".wall-act")).to_have_count(0)
    feed = page.locator(f"#{ids.Wall.FEED_LIST}")
    expect(feed.locator(".wall-feed-item").first).to_contain_text(
        f"视频告警·烟火：{camera.name}", timeout=5_000
    )
    # The toast names the alarm as the officer sees it, not by its id.
    toast = page.locator(f"#{ids.Wall.ACTION_RESULT}")
    expect(toast).to_contain_text(f"已确认告警并立案：烟火 · {camera.name}")
    expect(toast).not_to_contain_text("wall-fire-2")
    page.screenshot(path=str(artifacts / "wall-alarm-to-case.png"))

    # An alarm acknowledged before (from the server's list, no live change to come) as well.
    acked = ticker.locator(".wall-acked", has=page.locator(".wall-act-case")).first
    acked_type = acked.locator(".wall-alarm-type").inner_text()
    acked.locator(".wall-act-case").click()
    expect(feed.locator(".wall-feed-item").first).to_contain_text(
        f"视频告警·{acked_type}", timeout=5_000
    )
    expect(ticker.locator(".wall-act-done")).to_have_count(2)

    # An alarm gone from the database in the meantime: the wall says so, nothing else happens.
    page.evaluate(
        "() => dash_clientside.set_props('wall-alarm-action', "
        "{data: {alarm: 'gone-1', case: true, nonce: 1}})"
    )
    toast = page.locator(f"#{ids.Wall.ACTION_RESULT} .wall-toast-failed")
    expect(toast).to_have_text("告警 gone-1 不存在")

    officer = OFFICER
    with Session(engine) as session:
        alarm = session.get(AlarmRow, "wall-fire-2")
        case = session.get(CaseRow, case_id_for("wall-fire-2"))
        assert alarm is not None and case is not None
        assert (alarm.status, alarm.acknowledged_by, alarm.case_id) == (
            "acknowledged",
            officer,
            case.id,
        )
        assert (case.channel, case.alarm_id) == ("video", "wall-fire-2")
        acked = session.execute(
            select(AlarmEventRow.actor, AlarmEventRow.at).where(
                AlarmEventRow.alarm_id == "wall-fire-2", AlarmEventRow.kind == "acknowledged"
            )
        ).one()
        reported = session.execute(
            select(CaseEventRow.actor, CaseEventRow.at).where(CaseEventRow.case_id == case.id)
        ).one()
    assert acked.actor == reported.actor == officer
    assert abs((acked.at - utc_now()).total_seconds()) < 60
    assert watch.errors == []
    page.close()


def test_a_display_only_instance_offers_no_alarm_actions_and_refuses_a_forged_one(
    browser: Browser, database: tuple[str, Engine]
) -> None:
    engine = database[1]
    with Session(engine) as session:
        camera = session.execute(
            select(CameraRow.code, NodeRow.code.label("node"))
            .join(NodeRow, NodeRow.id == CameraRow.building_id)
            .where(NodeRow.code.startswith(LIANMENG))
            .order_by(CameraRow.code.desc())
            .limit(1)
        ).one()
    with serving(database[0], GRIDCC_WALL_ACTIONS="false") as display_only:
        watch = PageWatch()
        page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
        # Even an operator gets no buttons here, and the action callback refuses.
        sign_in_page(page, display_only, OFFICER, PASSWORD, then=f"/wall?scope={LIANMENG}")
        expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text("实时", timeout=15_000)
        post_alarm(display_only, "wall-display-only-1", camera.code, camera.node)
        item = page.locator(f"#{ids.Wall.ALARM_LIST} .wall-alarm-item").first
        expect(item).to_contain_text("告警中", timeout=2_000)
        expect(page.locator(f"#{ids.Wall.ALARM_LIST} .wall-act")).to_have_count(0)
        # What a button would send, sent by hand: refused, the alarm stays as it was.
        page.evaluate(
            """() => window.dash_clientside.set_props("wall-alarm-action",
                 {data: {alarm: "wall-display-only-1", case: true, nonce: 1}})"""
        )
        page.wait_for_timeout(1_500)
        with Session(engine) as session:
            alarm = session.get(AlarmRow, "wall-display-only-1")
            assert alarm is not None and alarm.status == "active" and alarm.case_id is None
        # The refusal (403, "actions are switched off") is all the console says.
        assert [e for e in watch.errors if "403" not in e and "switched off" not in e] == []
        page.close()
