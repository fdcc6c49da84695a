"""The wall's map read at a glance, in a real headless Chromium on the seeded Panlong: on 16:9, 4K,
32:9 and 48:9 screens, in Chinese and English, at every level from the city to a building, no two
map labels overlap, the largest area is named, and the scope's outline spans ≥ 80 % of the map panel
in one dimension; colours follow the level's absolute scale and alarms are counted per area above
the street level (issue 8, item 3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine

from layouts import ids

from .browser import PageWatch
from .wall_city import (
    BUILDING,
    CITY,
    GRID,
    LIANMENG,
    PANLONG,
    YUANFENG,
    kpi_open,
    open_cases,
    seeded_city,
    serving,
)

pytestmark = pytest.mark.browser

SCREENS = [(1920, 1080), (3840, 2160), (3840, 1080), (5760, 1080)]
LEVELS = [CITY, PANLONG, LIANMENG, YUANFENG, GRID, BUILDING]
#: Share of the map panel the scope's outline must span in one dimension at least.
COVERAGE = 0.8

#: The map as the duty officer sees it, measured in the page: the shown labels' boxes and the
#: pairs that overlap, the labels hidden, how much of the panel the scope spans, and the label of
#: the largest area on screen.
MAP_CHECKS = """() => {
  const frame = document.querySelector(".wall-map-frame").getBoundingClientRect();
  const shown = [], hidden = [];
  for (const el of document.querySelectorAll(".wall-map .wall-label")) {
    const code = (el.className.match(/wall-label-(\\d+)/) || [])[1];
    const inner = el.firstElementChild || el;
    if (getComputedStyle(inner).visibility === "hidden" || getComputedStyle(el).visibility === "hidden") {
      hidden.push(code);
      continue;
    }
    const r = inner.getBoundingClientRect();
    const named = Array.from(el.querySelectorAll(".wall-label-name"))
      .some((n) => getComputedStyle(n).display !== "none" && n.textContent.trim());
    shown.push({code, named, left: r.left, top: r.top, right: r.right, bottom: r.bottom});
  }
  const overlaps = [];
  shown.forEach((a, i) => shown.slice(i + 1).forEach((b) => {
    if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) {
      overlaps.push(`${a.code} × ${b.code}`);
    }
  }));
  const outside = shown.filter((a) => a.left < frame.left - 1 || a.right > frame.right + 1 ||
    a.top < frame.top - 1 || a.bottom > frame.bottom + 1).map((a) => a.code);
  let outline = Array.from(document.querySelectorAll(".wall-map path.wall-outline"));
  if (!outline.length) outline = Array.from(document.querySelectorAll(".wall-map path.wall-area"));
  const boxes = outline.map((p) => p.getBoundingClientRect());
  const span = boxes.length ? {
    left: Math.max(frame.left, Math.min(...boxes.map((b) => b.left))),
    right: Math.min(frame.right, Math.max(...boxes.map((b) => b.right))),
    top: Math.max(frame.top, Math.min(...boxes.map((b) => b.top))),
    bottom: Math.min(frame.bottom, Math.max(...boxes.map((b) => b.bottom))),
  } : null;
  const areas = Array.from(document.querySelectorAll(".wall-map path.wall-area")).map((p) => {
    const r = p.getBoundingClientRect();
    return {code: (p.getAttribute("class").match(/wall-area-(\\d+)/) || [])[1], size: r.width * r.height};
  }).sort((a, b) => b.size - a.size);
  const largest = areas.length ? areas[0].code : null;
  return {
    shown: shown.length,
    hidden,
    overlaps,
    outside,
    coverage: span ? Math.max((span.right - span.left) / frame.width,
                              (span.bottom - span.top) / frame.height) : 0,
    largest,
    largestNamed: largest === null || shown.some((a) => a.code === largest && a.named),
  };
}"""


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    yield from seeded_city(tmp_path_factory)


@pytest.fixture(scope="module")
def server(database: tuple[str, Engine]) -> Iterator[str]:
    with serving(database[0]) as base:
        yield base


def settled(page: Page) -> None:
    """Wait until the map stops moving (it fits its bounds after its data and on a resize) and the
    labels' placement pass has run."""
    previous = None
    for _ in range(40):
        now = page.evaluate(
            """() => {
              const o = document.querySelector('.wall-map path.wall-outline, .wall-map path.wall-area');
              const r = o ? o.getBoundingClientRect() : null;
              const l = document.querySelectorAll('.wall-map .wall-label').length;
              return r ? [r.left, r.top, r.width, r.height, l].map(Math.round).join(',') : null;
            }"""
        )
        if now is not None and now == previous:
            break
        previous = now
        page.wait_for_timeout(150)
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_map_reads_at_a_glance_on_every_screen_and_level(
    server: str,
    browser: Browser,
    database: tuple[str, Engine],
    artifacts: Path,
    lang: str,
) -> None:
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    failures: list[str] = []
    measured: dict[str, float] = {}
    for code in LEVELS:
        # Loaded at the last screen of the level before (48:9 from the second level on), then
        # resized through every screen: fresh loads and resized walls both fit.
        page.goto(f"{server}/wall?scope={code}&lang={lang}", wait_until="load")
        expect(kpi_open(page)).to_have_text(open_cases(database[1], code), timeout=15_000)
        for width, height in SCREENS:
            page.set_viewport_size({"width": width, "height": height})
            settled(page)
            checks = page.evaluate(MAP_CHECKS)
            where = f"{code} {lang} {width}x{height}"
            measured[where] = round(checks["coverage"], 3)
            page.locator(".wall-map-panel").screenshot(
                path=str(artifacts / f"wall-map-{code}-{lang}-{width}x{height}.png")
            )
            if checks["overlaps"]:
                failures.append(f"{where}: labels overlap {checks['overlaps']}")
            if checks["outside"]:
                failures.append(f"{where}: labels cut by the panel {checks['outside']}")
            if checks["coverage"] < COVERAGE:
                failures.append(f"{where}: the outline spans {checks['coverage']:.0%}")
            if not checks["largestNamed"]:
                failures.append(f"{where}: the largest area {checks['largest']} has no name")
    (artifacts / f"wall-map-coverage-{lang}.json").write_text(json.dumps(measured, indent=1))
    assert failures == [], "\n".join(failures)
    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


def test_one_open_case_is_not_red_and_the_legend_shows_the_levels_thresholds(
    server: str, browser: Browser
) -> None:
    """The colours are absolute for the level: the legend carries the thresholds the server used
    (as JSON, for the live recolour too), and an area's colour follows its own count on them."""
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?scope={LIANMENG}", wait_until="load")
    scale_el = page.locator(f"#{ids.Wall.LEGEND} [data-scale]")
    expect(scale_el).to_have_count(1, timeout=15_000)
    scale = json.loads(scale_el.get_attribute("data-scale") or "{}")
    values = [v for v, _ in scale["stops"]]
    assert values == sorted(values) and values[0] == 0 and values[-1] > 1
    expect(page.locator(f"#{ids.Wall.LEGEND}")).to_contain_text(str(int(values[-1])))
    # The browser's own colour function, on the server's thresholds: one open case is not red.
    one = page.evaluate("() => gridccWallMap.colour(1)")
    assert one != "#ef4444"
    assert page.evaluate(f"() => gridccWallMap.colour({values[-1]})") == "#ef4444"
    assert watch.errors == []
    page.close()


def test_above_the_street_alarms_are_counted_per_area(server: str, browser: Browser) -> None:
    """At city and district level no single alarm markers: a count on each area's label."""
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?scope={PANLONG}", wait_until="load")
    expect(page.locator(".wall-map .wall-label")).to_have_count(12, timeout=15_000)
    expect(page.locator(".wall-alarm-dot")).to_have_count(0)
    expect(page.locator(".wall-label-alarms")).not_to_have_count(0)
    page.goto(f"{server}/wall?scope={LIANMENG}", wait_until="load")
    expect(page.locator(".wall-alarm-dot")).not_to_have_count(0, timeout=15_000)
    assert watch.errors == []
    page.close()
