"""The wall's ranking (红黑榜) in a real headless Chromium on every screen shape, in both languages, at
every level from the city to a grid: both ends of the ranking on screen, names whole and without the
parent's name in front, nothing clipped; a row drills down in the browser."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from data_sources.overview import load_overview
from data_sources.services import utc_now
from layouts import ids

from .browser import PageWatch
from .conftest import AS_OF, area
from .wall_city import CITY, GRID, PANLONG, YUANFENG, kpi_open, seeded_city, serving

pytestmark = pytest.mark.browser

TUODONG = "530103001"  # 拓东街道: 17 communities, more than a 16:9 ranking has rows

#: (width, height) of the walls of acceptance 2: 16:9 at 1080p and 4K, 32:9 and 48:9.
SCREENS = [(1920, 1080), (3840, 2160), (3840, 1080), (5760, 1080)]
#: One scope per level, city → grid (the seeded city has only Panlong; Tuodong has 17 children).
LEVELS = [CITY, PANLONG, TUODONG, YUANFENG, GRID]


@dataclass(frozen=True)
class Child:
    code: str
    name: dict[str, str]
    rank: int | None


@dataclass(frozen=True)
class Scope:
    code: str
    name: dict[str, str]
    children: list[Child]

    def ranked(self) -> list[Child]:
        return sorted((c for c in self.children if c.rank), key=lambda c: (c.rank, c.code))


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    yield from seeded_city(tmp_path_factory)


@pytest.fixture(scope="module")
def server(database: tuple[str, Engine]) -> Iterator[str]:
    with serving(database[0]) as base:
        yield base


@pytest.fixture(scope="module")
def scopes(database: tuple[str, Engine]) -> dict[str, Scope]:
    """Each level's scope with its children and their ranks, as the server computes them."""
    days = (utc_now() - AS_OF).days + 30  # as tests.wall_city.serving sets the window
    found = {}
    with Session(database[1]) as session:
        for code in LEVELS:
            overview = load_overview(
                session=session, scope=area(session, code), now=utc_now(), window_days=days
            )
            assert overview is not None
            node = overview.scope.node
            found[code] = Scope(
                code,
                {"zh": node.name_zh, "en": node.name_en},
                [
                    Child(c.node.code, {"zh": c.node.name_zh, "en": c.node.name_en}, c.rank)
                    for c in overview.children
                ],
            )
    assert len(found[TUODONG].ranked()) > 10
    return found


@pytest.fixture(scope="module", params=SCREENS, ids=lambda s: f"{s[0]}x{s[1]}")
def wall(request: pytest.FixtureRequest, server: str, browser: Browser) -> Iterator[Page]:
    """One wall page per screen shape, reused by the module's tests (a page load costs seconds)."""
    width, height = request.param
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": width, "height": height}))
    page.goto(f"{server}/wall?scope={PANLONG}", wait_until="load")
    expect(kpi_open(page)).not_to_have_text("", timeout=15_000)
    yield page
    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


def show(page: Page, search: str) -> None:
    """Go to `search` in the page, as a drill does (no reload)."""
    page.evaluate("(s) => window.dash_clientside.set_props('wall-url', {search: s})", search)


#: Every ranking row on screen, and whatever of the ranking or the KPI tiles is clipped: text wider
#: or taller than its box (an ellipsis, a hidden second line, a figure under its neighbour).
MEASURE = """() => {
  // Widths of boxes (an inline box has no client width); the height of a name: a line more than
  // its box holds (a glyph's descent below the last line box is no hidden line).
  const clipped = (el) => getComputedStyle(el).display !== "inline" && (
    el.scrollWidth > el.clientWidth + 1 ||
    (el.matches(".wall-rank-name") &&
      el.scrollHeight > el.clientHeight + parseFloat(getComputedStyle(el).lineHeight) / 2));
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const ranking = document.getElementById("wall-ranking");
  const rows = Array.from(ranking.querySelectorAll(".wall-rank-row[id]")).filter(shown).map((row) => ({
    id: row.id,
    no: row.querySelector(".wall-rank-no").textContent,
    name: row.querySelector(".wall-rank-name").textContent,
  }));
  const cells = ".wall-rank-row > *, .wall-rank-row > * > *, .wall-kpi-label, .wall-kpi-figure, " +
    ".wall-kpi-value, .wall-bars, .wall-bar-label, .wall-funnel-body, .wall-funnel-stage";
  const cut = Array.from(document.querySelectorAll(cells)).filter(shown).filter(clipped)
    .map((el) => `${el.className}: ${el.textContent}`);
  const body = ranking.querySelector(".wall-rank-cols");
  const used = Array.from(ranking.querySelectorAll(".wall-rank-row")).filter(shown)
    .reduce((sum, row) => sum + row.getBoundingClientRect().height, 0);
  return {rows, cut, fill: body ? used / body.getBoundingClientRect().height : 0};
}"""


def row_id(code: str) -> str:
    return ids.wall_rank_row(code)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_ranking_shows_both_ends_and_whole_names_at_every_level(
    wall: Page, scopes: dict[str, Scope], artifacts: Path, lang: str
) -> None:
    width = wall.viewport_size["width"] if wall.viewport_size else 0
    height = wall.viewport_size["height"] if wall.viewport_size else 0
    wide = width / height > 2.2
    for code in LEVELS:
        scope = scopes[code]
        show(wall, f"?scope={code}&lang={lang}")
        expect(wall.locator(".wall-breadcrumb-current")).to_have_text(
            scope.name[lang], timeout=15_000
        )
        best = (scope.ranked() or scope.children)[0]
        expect(wall.locator(f"#{row_id(best.code)}")).to_have_count(1)
        wall.wait_for_timeout(100)  # one frame for the layout
        wall.screenshot(path=str(artifacts / f"wall-ranking-{code}-{lang}-{width}x{height}.png"))
        found = wall.evaluate(MEASURE)
        where = f"{code} {lang} {width}x{height}"

        assert found["cut"] == [], where
        shown = {r["id"]: r for r in found["rows"]}
        ranked = scope.ranked()
        # Both ends: the best and the worst on screen, whatever the number of children.
        assert row_id(ranked[0].code) in shown, where
        assert row_id(ranked[-1].code) in shown, where
        rows = 20 if wide else 10
        expected = min(rows, len(ranked)) if len(ranked) > 10 else min(10, len(scope.children))
        assert len(shown) == expected, where
        for child in scope.children:
            row = shown.get(row_id(child.code))
            if row is None:
                continue
            # Without the parent's name in front: "第2网格", "Grid 2".
            assert not row["name"].startswith(scope.name[lang]), (where, row)
            assert row["no"] == (str(child.rank) if child.rank else "—"), (where, row)
            if len(child.code) == 15:  # a grid
                number = int(child.code[-3:])
                assert row["name"] == (f"第{number}网格" if lang == "zh" else f"Grid {number}")
        if wide and len(scope.children) >= 10:
            assert found["fill"] > 0.6, where  # the tall panel is not half empty


def test_a_row_of_the_worst_drills_down_keeping_the_other_parameters(
    server: str, browser: Browser, scopes: dict[str, Scope]
) -> None:
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?lang=en&scope={TUODONG}&fit=fill&rotate=600", wait_until="load")
    worst = scopes[TUODONG].ranked()[-1]
    row = page.locator(f"#{row_id(worst.code)}")
    expect(row).to_be_visible(timeout=15_000)
    row.click()
    expect(page).to_have_url(
        re.compile(rf"/wall\?scope={worst.code}&lang=en&fit=fill&rotate=600$"), timeout=5_000
    )
    expect(page.locator(".wall-breadcrumb-current")).to_have_text(worst.name["en"], timeout=15_000)
    expect(page.locator(".wall-kpi-grid")).to_have_attribute("data-scope", worst.code)
    page.go_back()  # the drill went into the browser's history
    expect(page.locator(".wall-breadcrumb-current")).to_have_text(
        scopes[TUODONG].name["en"], timeout=15_000
    )
    assert watch.errors == []
    page.close()
