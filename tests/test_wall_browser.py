"""The wall `/wall` in a real headless Chromium against a real server on a seeded database: it fits
1080p and 4K screens, shows the database's figures, and drills down by clicking map polygons."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app import Settings, utc_now
from data_sources import db, store
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
from data_sources.seed.city import seed_city
from data_sources.wall import channels, day_start
from layouts import ids
from layouts.i18n import number

from .browser import PageWatch, running_server
from .conftest import AS_OF, SMALL_SEED, TZ
from .test_live_browser import KEY, post_case

pytestmark = pytest.mark.browser

CITY = "530100"
PANLONG = "530103"
LIANMENG = "530103004"  # 联盟街道
YUANFENG = "530103004001"  # 源丰社区
GRID = "530103004001001"  # 源丰社区第1网格
BUILDING = "530103004001001006"  # 1-6号楼, with open and closed cases

#: What must hold on every wall, whatever the screen: measured in the page, returned as lists of
#: offenders (empty when all is well).
LAYOUT_CHECKS = """() => {
  const canvas = document.getElementById("wall-canvas");
  const box = canvas.getBoundingClientRect();
  const scale = box.width / canvas.offsetWidth;  // 1920 design px wide, more on ultra-wide walls
  const outside = [], spilled = [], small = [], overlaps = [];
  for (const el of canvas.querySelectorAll("*")) {
    if (el.closest(".leaflet-pane")) continue;  // map layers: clipped by the map's own frame
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < box.left - 1 || r.top < box.top - 1 || r.right > box.right + 1 ||
        r.bottom > box.bottom + 1) outside.push(el.className || el.tagName);
  }
  for (const el of canvas.querySelectorAll(".wall-panel, .wall-kpi, .wall-list, .wall-rank-col")) {
    if (el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1) {
      spilled.push(el.className);
    }
  }
  for (const el of canvas.querySelectorAll("*")) {
    const text = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (text && getComputedStyle(el).visibility !== "hidden" && size < 16) {
      small.push(`${el.className}: ${size}px`);
    }
  }
  const regions = Array.from(canvas.querySelectorAll(".wall-panel, .wall-kpis, .wall-header"));
  regions.forEach((a, i) => regions.slice(i + 1).forEach((b) => {
    const r = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    if (r.left < q.right - 1 && q.left < r.right - 1 && r.top < q.bottom - 1 && q.top < r.bottom - 1) {
      overlaps.push(`${a.className} × ${b.className}`);
    }
  }));
  const doc = document.documentElement;
  return {
    scale,
    fill: box.width / innerWidth,
    outside,
    spilled,
    small,
    overlaps,
    scrollbars: doc.scrollWidth > innerWidth || doc.scrollHeight > innerHeight,
  };
}"""


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('wall') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=7, as_of=AS_OF, tz=TZ, **SMALL_SEED)  # type: ignore[arg-type]
    yield url, engine
    engine.dispose()


@pytest.fixture(scope="module")
def server(database: tuple[str, Engine]) -> Iterator[str]:
    # A window long enough that every seeded case counts whatever today's date is.
    days = (utc_now() - AS_OF).days + 30
    keys = json.dumps({"tests": KEY})
    with running_server(
        database[0], GRIDCC_KPI_WINDOW_DAYS=str(days), GRIDCC_API_KEYS=keys
    ) as base:
        yield base


def open_cases(engine: Engine, code: str) -> str:
    """Open cases of node `code` right now, as the wall formats them, straight from the database."""
    with Session(engine) as session:
        node = store.node_by_code(session=session, code=code)
        assert node is not None
        since = AS_OF - timedelta(days=3650)
        return number(store.node_tally(session=session, node=node, since=since, now=utc_now()).open)


#: The trend's hourly bars, and the current hour's (the last) count, as the browser has them.
TREND_LENGTH = "() => document.querySelector('#wall-trend-graph .js-plotly-plot').data[0].y.length"
TREND_NOW = "() => document.querySelector('#wall-trend-graph .js-plotly-plot').data[0].y.at(-1)"


def todays_cases(engine: Engine, code: str) -> str:
    """Cases of node `code` reported today (the command centre's day), straight from the database."""
    with Session(engine) as session:
        node = store.node_by_code(session=session, code=code)
        assert node is not None
        since = day_start(utc_now(), TZ)
        return number(sum(n for _, n in channels(session=session, node=node, since=since)))


def kpi_open(page: Page) -> object:
    return page.locator(f"#{ids.wall_kpi('open')}")


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (3840, 2160)])
def test_the_wall_fills_the_screen_with_the_scopes_figures(
    server: str,
    browser: Browser,
    database: tuple[str, Engine],
    artifacts: Path,
    width: int,
    height: int,
) -> None:
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": width, "height": height}))
    page.goto(f"{server}/wall?scope={PANLONG}", wait_until="load")

    expect(kpi_open(page)).to_have_text(open_cases(database[1], PANLONG), timeout=15_000)
    expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text("实时", timeout=15_000)
    expect(page.locator(f"#{ids.Wall.TITLE}")).to_have_text("盘龙区社会治理指挥中心")
    expect(page.locator(f"#{ids.Wall.CLOCK}")).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
    expect(page.locator(".wall-area")).to_have_count(12)  # Panlong's 12 streets on the map
    expect(page.locator(f"#{ids.wall_rank_row(LIANMENG)}")).to_be_visible()
    expect(page.locator(f"#{ids.Wall.FEED_LIST} .wall-feed-item")).to_have_count(6)
    # The 24-hour trend (24 hourly bars) and today's channels (the donut's total is SQL's).
    expect(page.locator(f"#{ids.Wall.TREND} .wall-panel-name")).to_have_text("24小时趋势")
    expect(page.locator(f"#{ids.Wall.TREND_GRAPH} .main-svg").first).to_be_visible()
    assert page.evaluate(TREND_LENGTH) == 24
    expect(page.locator(f"#{ids.Wall.CHANNELS} .wall-channel-row")).to_have_count(6)
    expect(page.locator(f"#{ids.Wall.CHANNELS} .wall-channel-name").nth(1)).to_have_text(
        "12345热线"
    )
    expect(page.locator(f"#{ids.Wall.CHANNEL_GRAPH} .annotation-text")).to_have_text(
        todays_cases(database[1], PANLONG)
    )
    page.wait_for_timeout(300)  # let the label declutter pass run
    page.screenshot(path=str(artifacts / f"wall-panlong-{width}x{height}.png"))

    checks = page.evaluate(LAYOUT_CHECKS)
    assert checks["scale"] == pytest.approx(width / 1920)
    assert checks["outside"] == []
    assert checks["spilled"] == []
    assert checks["small"] == []
    assert checks["scrollbars"] is False
    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


@pytest.mark.parametrize(
    ("width", "height", "scope", "lang"),
    [(3840, 1080, PANLONG, "zh"), (5760, 1080, BUILDING, "en")],
)
def test_an_ultra_wide_wall_fills_the_screen_with_the_wide_layout(
    server: str,
    browser: Browser,
    database: tuple[str, Engine],
    artifacts: Path,
    width: int,
    height: int,
    scope: str,
    lang: str,
) -> None:
    """32:9 and 48:9 walls: no black bars, the same panels side by side with a wider map, nothing
    overlapping, overflowing or under 16 design px."""
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": width, "height": height}))
    page.goto(f"{server}/wall?scope={scope}&lang={lang}", wait_until="load")
    expect(kpi_open(page)).to_have_text(open_cases(database[1], scope), timeout=15_000)
    expect(page.locator("html")).to_have_attribute("data-wall-aspect", "wide")
    expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text(
        "实时" if lang == "zh" else "Live", timeout=15_000
    )
    expect(page.locator(f"#{ids.Wall.FEED_LIST} .wall-feed-item")).not_to_have_count(0)
    page.wait_for_timeout(300)  # let the label declutter pass run
    page.screenshot(path=str(artifacts / f"wall-{scope}-{lang}-{width}x{height}.png"))

    checks = page.evaluate(LAYOUT_CHECKS)
    assert checks["scale"] == pytest.approx(height / 1080)
    assert checks["fill"] >= 0.95
    assert checks["outside"] == []
    assert checks["spilled"] == []
    assert checks["small"] == []
    assert checks["overlaps"] == []
    assert checks["scrollbars"] is False
    map_box = page.locator(".wall-map-panel").bounding_box()
    assert map_box is not None and map_box["width"] > 0.45 * width  # the room went to the map
    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


#: How much of the map frame's width Leaflet draws its vector layers over (1.0: all of it).
DRAWN_SHARE = """() => {
  const frame = document.querySelector(".wall-map-frame").getBoundingClientRect();
  const svg = document.querySelector(".wall-map .leaflet-overlay-pane svg").getBoundingClientRect();
  return (Math.min(svg.right, frame.right) - Math.max(svg.left, frame.left)) / frame.width;
}"""


def test_a_wall_resized_to_ultra_wide_and_back_relays_itself_out(
    server: str, browser: Browser
) -> None:
    """A window dragged across a second screen: the layout follows, and so does the map's drawing."""
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?scope={PANLONG}", wait_until="load")
    expect(page.locator(".wall-area")).to_have_count(12, timeout=15_000)
    html_root = page.locator("html")
    expect(html_root).not_to_have_attribute("data-wall-aspect", "wide")
    for width, wide in ((3840, True), (1920, False)):
        page.set_viewport_size({"width": width, "height": 1080})
        if wide:
            expect(html_root).to_have_attribute("data-wall-aspect", "wide")
        else:
            expect(html_root).not_to_have_attribute("data-wall-aspect", "wide")
        page.wait_for_timeout(500)  # Leaflet re-measures on the next frame
        checks = page.evaluate(LAYOUT_CHECKS)
        assert checks["fill"] >= 0.95
        assert (checks["outside"], checks["spilled"], checks["overlaps"]) == ([], [], [])
        assert page.evaluate(DRAWN_SHARE) >= 0.99
    assert watch.errors == []
    page.close()


def click_area(page: Page, code: str) -> None:
    """A real mouse click on the polygon of node `code`, at its label's anchor (the stored surface
    point, always inside the polygon; labels and map points let clicks through)."""
    label = page.locator(f".wall-label-{code}")
    expect(label).to_have_count(1, timeout=15_000)
    # The map fits its new bounds after the data arrive: wait until the label stops moving.
    box, previous = label.bounding_box(), None
    for _ in range(50):
        if box is not None and box == previous:
            break
        page.wait_for_timeout(200)
        box, previous = label.bounding_box(), box
    assert box is not None
    page.mouse.click(box["x"], box["y"])


def expect_scope(page: Page, server: str, engine: Engine, code: str, crumb: str) -> None:
    expect(page).to_have_url(re.compile(rf"^{re.escape(server)}/wall\?scope={code}(&|$)"))
    # A first visit of a scope reads and simplifies its outlines: give a busy machine time.
    expect(page.locator(f"#{ids.Wall.BREADCRUMB}")).to_contain_text(crumb, timeout=15_000)
    expect(page.locator(".wall-breadcrumb-current")).to_have_text(crumb)
    expect(kpi_open(page)).to_have_text(open_cases(engine, code), timeout=15_000)


def test_drill_down_by_clicking_polygons_and_back_up_by_the_breadcrumb(
    server: str, browser: Browser, database: tuple[str, Engine], artifacts: Path
) -> None:
    engine = database[1]
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?lang=zh", wait_until="load")
    expect(kpi_open(page)).to_have_text(open_cases(engine, CITY), timeout=15_000)
    expect(page.locator(".wall-breadcrumb-current")).to_have_text("昆明市")

    click_area(page, PANLONG)
    expect_scope(page, server, engine, PANLONG, "盘龙区")
    click_area(page, LIANMENG)
    expect_scope(page, server, engine, LIANMENG, "联盟街道")
    assert "lang=zh" in page.url
    expect(page.locator(".wall-area")).not_to_have_count(0)
    page.screenshot(path=str(artifacts / "wall-lianmeng.png"))

    page.locator(f"#{ids.Wall.BREADCRUMB} a", has_text="盘龙区").click()
    expect_scope(page, server, engine, PANLONG, "盘龙区")
    page.locator(f"#{ids.Wall.BREADCRUMB} a", has_text="昆明市").click()
    expect(page).to_have_url(re.compile(rf"scope={CITY}"))
    expect(kpi_open(page)).to_have_text(open_cases(engine, CITY), timeout=15_000)

    page.go_back()  # the browser's history follows the drill too
    expect_scope(page, server, engine, PANLONG, "盘龙区")
    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


def name_of(engine: Engine, code: str) -> str:
    with Session(engine) as session:
        node = store.node_by_code(session=session, code=code)
        assert node is not None
        return node.name_zh


def grid_workers(engine: Engine, grid: str) -> list[str]:
    with Session(engine) as session:
        node = store.node_by_code(session=session, code=grid)
        assert node is not None
        return list(
            session.scalars(
                select(WorkerRow.name).where(
                    WorkerRow.grid_id == node.id, WorkerRow.role == "grid_worker"
                )
            )
        )


def test_drill_down_to_a_building_and_back_up(
    server: str, browser: Browser, database: tuple[str, Engine], artifacts: Path
) -> None:
    engine = database[1]
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall", wait_until="load")
    expect(kpi_open(page)).to_have_text(open_cases(engine, CITY), timeout=15_000)
    expect(page.locator(".wall-label-cameras")).not_to_have_count(0)  # a count per district

    for code in (PANLONG, LIANMENG, YUANFENG, GRID):
        click_area(page, code)
        expect_scope(page, server, engine, code, name_of(engine, code))
    # A grid: its buildings as polygons, its cameras and its worker as points.
    expect(page.locator(".wall-area")).not_to_have_count(0)
    expect(page.locator(f".wall-area-{BUILDING}")).to_have_count(1)
    expect(page.locator(".wall-camera")).not_to_have_count(0)
    expect(page.locator(".wall-worker")).not_to_have_count(0)
    page.screenshot(path=str(artifacts / "wall-grid.png"))

    click_area(page, BUILDING)
    expect_scope(page, server, engine, BUILDING, name_of(engine, BUILDING))
    expect(page.locator(".wall-area")).to_have_count(0)  # a building has no children
    expect(page.locator(".wall-outline")).to_have_count(1)
    ranking = page.locator(f"#{ids.Wall.RANKING}")
    expect(ranking).to_contain_text("本网格网格员")
    for name in grid_workers(engine, GRID):
        expect(ranking).to_contain_text(name)
    expect(page.locator(f"#{ids.Wall.ALARMS}")).to_contain_text("周边300米")
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "wall-building.png"))
    checks = page.evaluate(LAYOUT_CHECKS)
    assert (checks["outside"], checks["spilled"], checks["small"]) == ([], [], [])

    crumbs = page.locator(f"#{ids.Wall.BREADCRUMB} a")
    for code in (GRID, YUANFENG, LIANMENG):
        crumbs.filter(has_text=name_of(engine, code)).click()
        expect_scope(page, server, engine, code, name_of(engine, code))
    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


def test_a_ranking_row_drills_down_and_english_is_kept(
    server: str, browser: Browser, database: tuple[str, Engine]
) -> None:
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?scope={PANLONG}&lang=en&fit=fill", wait_until="load")
    expect(page.locator(f"#{ids.Wall.TITLE}")).to_have_text("Panlong District Command Centre")
    page.locator(f"#{ids.wall_rank_row(LIANMENG)}").click()
    expect(page).to_have_url(f"{server}/wall?scope={LIANMENG}&lang=en&fit=fill")
    expect(kpi_open(page)).to_have_text(open_cases(database[1], LIANMENG), timeout=15_000)
    expect(page.locator(".wall-breadcrumb-current")).to_have_text("Lianmeng Subdistrict")
    expect(page.locator(f"#{ids.Wall.TREND} .wall-panel-name")).to_have_text("24-hour trend")
    expect(page.locator(f"#{ids.Wall.CHANNELS} .wall-panel-name")).to_have_text("Intake channels")
    expect(page.locator(f"#{ids.Wall.CHANNELS} .wall-channel-name").nth(1)).to_have_text(
        "12345 hotline"
    )
    expect(page.locator(f"#{ids.Wall.ALARM_LIST} .wall-act").first).to_have_text(
        re.compile(r"^(Ack|To case)$")
    )
    page.set_viewport_size({"width": 1920, "height": 1080})  # English words are longer: re-check
    checks = page.evaluate(LAYOUT_CHECKS)
    assert (checks["outside"], checks["spilled"], checks["small"]) == ([], [], [])
    assert watch.errors == []
    page.close()


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
    # The current hour's bar grows in the browser, with no server callback (every 5 s at most).
    page.wait_for_function(f"() => ({TREND_NOW})() === {trend_before + 1}", timeout=7_000)
    # When the hour is over, both charts are reloaded from SQL (and say when their hour ends).
    body = page.locator(f"#{ids.Wall.TREND_BODY}")
    body.evaluate("el => el.setAttribute('data-refresh-at', '0')")
    expect(body).not_to_have_attribute("data-refresh-at", "0", timeout=10_000)
    expect(cell).to_have_text(f"{cell_before + 1:,}", timeout=2_000)
    feed = page.locator(f"#{ids.Wall.FEED_LIST}")
    expect(feed).to_contain_text("井盖缺失", timeout=2_000)
    expect(feed.locator(".wall-feed-item").first).to_contain_text("噪音扰民")
    expect(feed.locator(".wall-feed-item")).to_have_count(6)
    page.screenshot(path=str(artifacts / "wall-live-lianmeng.png"))
    assert watch.errors == []
    page.close()


def post_event(base: str, event: dict[str, object]) -> None:
    request = urllib.request.Request(
        f"{base}/api/v1/events",
        data=json.dumps(event).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": KEY},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202


def post_fix(base: str, event_id: str, worker: str, lon: float, lat: float) -> None:
    """A GPS fix of a worker of GRID, stamped now."""
    fix = {"worker": worker, "lon": lon, "lat": lat}
    now = datetime.now(UTC).isoformat()
    post_event(
        base,
        {"id": event_id, "kind": "worker.position", "ts": now, "node": GRID, "payload": fix},
    )


def post_alarm(base: str, alarm_id: str, camera: str, node: str) -> None:
    event = {
        "id": f"raise-{alarm_id}",
        "kind": "alarm.raised",
        "ts": utc_now().isoformat() + "Z",
        "node": node,
        "payload": {"alarm_id": alarm_id, "camera": camera, "type": "fire", "severity": 4},
    }
    post_event(base, event)


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
    # The marker stands on the building's stored point, which its label marks too.
    marker = page.locator(".wall-worker-on").bounding_box()
    label = page.locator(f".wall-label-{quiet}").bounding_box()
    assert marker is not None and label is not None
    assert abs(marker["x"] + marker["width"] / 2 - label["x"]) < 2
    assert abs(marker["y"] + marker["height"] / 2 - label["y"]) < 2

    post_case(server, "wall-map-live-1", quiet, "源丰社区1-1号楼 楼道堆物")
    value = page.locator(f".wall-label-{quiet} .wall-label-value")
    expect(value).to_have_text("1", timeout=3_000)
    fill = f"document.querySelector('.wall-area-{quiet}').style.fill"
    page.wait_for_function(f"{fill} === 'rgb(239, 68, 68)'", timeout=3_000)  # the top: red

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
    pulse = page.evaluate(
        "getComputedStyle(document.querySelector('.wall-alarm-high'), '::after').animationName"
    )
    assert pulse == "wall-pulse"
    newest = page.locator(f"#{ids.Wall.ALARM_LIST} .wall-alarm-item").first
    expect(newest).to_contain_text("烟火")
    expect(newest.locator(".wall-alarm-place")).to_have_text(str(camera_name))  # live, too
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


def test_a_building_in_english_on_a_4k_screen(
    server: str, browser: Browser, database: tuple[str, Engine], artifacts: Path
) -> None:
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 3840, "height": 2160}))
    page.goto(f"{server}/wall?scope={BUILDING}&lang=en", wait_until="load")
    expect(kpi_open(page)).to_have_text(open_cases(database[1], BUILDING), timeout=15_000)
    expect(page.locator(".wall-breadcrumb-current")).to_have_text("Building 1-6")
    expect(page.locator(f"#{ids.Wall.RANKING}")).to_contain_text("Grid workers of this grid")
    expect(page.locator(f"#{ids.Wall.ALARMS}")).to_contain_text("cameras within 300 m")
    expect(page.locator(".wall-camera")).not_to_have_count(0)  # the cameras that watch it
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "wall-building-en-4k.png"))
    checks = page.evaluate(LAYOUT_CHECKS)
    assert checks["scale"] == pytest.approx(2)
    assert (checks["outside"], checks["spilled"], checks["small"]) == ([], [], [])
    assert checks["scrollbars"] is False
    assert watch.errors == []
    assert watch.off_host() == []
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
    dots = page.locator(".wall-alarm-dot")
    expect(dots).not_to_have_count(0, timeout=15_000)
    before = dots.count()
    resolved = {"alarm_id": alarm, "actor": "值班员"}
    now = datetime.now(UTC).isoformat()
    event = {"id": "wall-resolve-1", "kind": "alarm.resolved", "ts": now, "node": building}
    post_event(server, event | {"payload": resolved})
    expect(dots).to_have_count(before - 1, timeout=3_000)


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
    page.goto(f"{server}/wall?scope={LIANMENG}", wait_until="load")
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
    expect(page.locator(f"#{ids.Wall.ACTION_RESULT}")).to_contain_text("已确认告警并立案")
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

    officer = Settings.model_fields["duty_officer"].default
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
