"""The wall `/wall` in a real headless Chromium against a real server on a seeded database: it fits
1080p and 4K screens, shows the database's figures, and drills down by clicking map polygons."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from data_sources import store
from data_sources.schema import (
    WorkerRow,
)
from layouts import ids

from .browser import PageWatch, sign_in_page
from .conftest import PASSWORD
from .wall_city import (
    BUILDING,
    CITY,
    GRID,
    LIANMENG,
    OPERATOR,
    PANLONG,
    TREND_LENGTH,
    YUANFENG,
    kpi_open,
    open_cases,
    seeded_city,
    serving,
    todays_cases,
)

pytestmark = pytest.mark.browser


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
    yield from seeded_city(tmp_path_factory)


@pytest.fixture(scope="module")
def server(database: tuple[str, Engine]) -> Iterator[str]:
    with serving(database[0]) as base:
        yield base


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
    # An operator's wall: the ticker's buttons are on it (their English words must fit too).
    sign_in_page(page, server, OPERATOR, PASSWORD, then=f"/wall?scope={PANLONG}&lang=en&fit=fill")
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
