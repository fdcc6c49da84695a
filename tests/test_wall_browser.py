"""The wall `/wall` in a real headless Chromium against a real server on a seeded database: it fits
1080p and 4K screens, shows the database's figures, and drills down by clicking map polygons."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app import utc_now
from data_sources import db, store
from data_sources.schema import NodeRow
from data_sources.seed.city import seed_city
from layouts import ids
from layouts.i18n import number

from .browser import PageWatch, running_server
from .conftest import AS_OF, SMALL_SEED, TZ
from .test_live_browser import KEY, post_case

pytestmark = pytest.mark.browser

CITY = "530100"
PANLONG = "530103"
LIANMENG = "530103004"  # 联盟街道

#: What must hold on every wall, whatever the screen: measured in the page, returned as lists of
#: offenders (empty when all is well).
LAYOUT_CHECKS = """() => {
  const canvas = document.getElementById("wall-canvas");
  const box = canvas.getBoundingClientRect();
  const scale = box.width / 1920;
  const outside = [], spilled = [], small = [];
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
  const doc = document.documentElement;
  return {
    scale,
    outside,
    spilled,
    small,
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


def click_area(page: Page, code: str) -> None:
    """A real mouse click on the polygon of node `code`, at its label (the stored surface point,
    always inside the polygon; labels let clicks through)."""
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
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


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

    post_case(server, "wall-live-1", building, "联盟街道大屏测试：井盖缺失")
    expect(tile).to_have_text(f"{before + 1:,}", timeout=2_000)
    expect(cell).to_have_text(f"{cell_before + 1:,}", timeout=2_000)
    feed = page.locator(f"#{ids.Wall.FEED_LIST}")
    expect(feed).to_contain_text("井盖缺失", timeout=2_000)
    expect(feed.locator(".wall-feed-item").first).to_contain_text("噪音扰民")
    expect(feed.locator(".wall-feed-item")).to_have_count(6)
    page.screenshot(path=str(artifacts / "wall-live-lianmeng.png"))
    assert watch.errors == []
    page.close()
