"""The wall's carousel `?rotate=N` in a real Chromium: it shows each child scope in turn and comes back
to its own scope, with no input; a click pauses it, and it goes on after `?rotate_pause=` seconds;
it holds while the server is away."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources import db
from data_sources.schema import NodeRow
from data_sources.seed.city import seed_city
from layouts import ids

from .browser import PageWatch, Server, running_server
from .conftest import AS_OF, TZ
from .test_wall_stale_browser import Console

pytestmark = pytest.mark.browser

COMMUNITY = "530103004002"  # a community of 联盟街道 with a handful of grids
ROTATE = 2


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('carousel') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=7, as_of=AS_OF, tz=TZ, districts=["530103"], days=1, cases_per_day=300)
    with Session(engine) as session:
        grids = list(
            session.scalars(
                select(NodeRow.code)
                .where(NodeRow.level == "grid", NodeRow.code.startswith(COMMUNITY))
                .order_by(NodeRow.code)
            )
        )
    engine.dispose()
    assert 3 <= len(grids) <= 8, grids  # a round that a test can wait for
    yield url, grids


@pytest.fixture(scope="module")
def server(city: tuple[str, list[str]]) -> Iterator[str]:
    with running_server(city[0]) as base:
        yield base


#: Each scope the wall shows, with when it was first shown (ms), as the page sees it.
RECORD_SCOPES = """() => {
  window.__scopes = [];
  setInterval(() => {
    const grid = document.querySelector(".wall-kpi-grid[data-scope]");
    const scope = grid && grid.getAttribute("data-scope");
    const last = window.__scopes[window.__scopes.length - 1];
    if (scope && (!last || last[0] !== scope)) window.__scopes.push([scope, Date.now()]);
  }, 50);
}"""


def scopes(page: Page) -> list[str]:
    return [s for s, _ in page.evaluate("window.__scopes")]


def wait_for_scopes(page: Page, count: int, timeout_s: float) -> list[list[object]]:
    deadline = time.monotonic() + timeout_s
    while len(page.evaluate("window.__scopes")) < count:
        assert time.monotonic() < deadline, f"the carousel stopped at {scopes(page)}"
        page.wait_for_timeout(200)
    return list(page.evaluate("window.__scopes"))


def test_the_carousel_goes_round_the_children_and_back_and_pauses_on_a_click(
    server: str, browser: Browser, city: tuple[str, list[str]]
) -> None:
    grids = city[1]
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1920, "height": 1080}))
    page.goto(f"{server}/wall?scope={COMMUNITY}&rotate={ROTATE}&rotate_pause=6", wait_until="load")
    page.evaluate(RECORD_SCOPES)

    # A round: the community, each grid in code order, the community again; each shown ≥ N s.
    seen = wait_for_scopes(page, len(grids) + 2, timeout_s=(len(grids) + 2) * (ROTATE + 4))
    assert [s for s, _ in seen[: len(grids) + 2]] == [COMMUNITY, *grids, COMMUNITY]
    dwell = [b[1] - a[1] for a, b in zip(seen, seen[1:], strict=False)]  # type: ignore[operator]
    assert min(dwell) >= ROTATE * 1000 - 100, dwell
    assert page.evaluate("document.documentElement.dataset.wallRotate") == "running"
    assert f"rotate={ROTATE}" in page.url

    # A click on a ranking row drills there and pauses the round for rotate_pause (6 s).
    target = grids[1]
    row = page.locator(f"#{ids.wall_rank_row(target)}")
    expect(row).to_be_visible(timeout=15_000)
    row.click()
    clicked = time.monotonic()
    expect(page.locator(".wall-kpi-grid")).to_have_attribute("data-scope", target, timeout=10_000)
    assert page.evaluate("document.documentElement.dataset.wallRotate") == "paused"
    assert f"rotate={ROTATE}" in page.url  # the links keep the carousel
    page.wait_for_timeout(max(0, int((clicked + 4.5 - time.monotonic()) * 1000)))
    assert scopes(page)[-1] == target  # still there, well past the 2 s period

    # Then it goes on from where the operator left it: the next grid.
    expect(page.locator(".wall-kpi-grid")).to_have_attribute("data-scope", grids[2], timeout=12_000)
    expect(page).to_have_url(re.compile(rf"scope={grids[2]}&.*rotate={ROTATE}"))  # reloadable
    expect(page.locator(f"#{ids.wall_kpi('open')}")).not_to_have_text("")
    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


def test_the_carousel_holds_while_the_server_is_away(
    browser: Browser, city: tuple[str, list[str]]
) -> None:
    """With the stream down the wall shows its stale state on the scope it was on, not a drill that
    cannot render; it goes on once the server is back."""
    grids = city[1]
    server = Server(city[0])
    server.start()
    try:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        console = Console(page)
        # A longer period here: the server is stopped just after a drill, and its graceful shutdown
        # (up to 2 s, refusing new requests while the stream still runs) ends before the next one.
        rotate = 5
        page.goto(f"{server.base}/wall?scope={COMMUNITY}&rotate={rotate}", wait_until="load")
        page.evaluate(RECORD_SCOPES)
        wait_for_scopes(page, 2, timeout_s=rotate + 15)  # rotating
        page.wait_for_timeout(300)  # rendered

        server.stop()
        expect(page.locator("html")).to_have_attribute("data-wall-rotate", "held", timeout=5_000)
        held = scopes(page)
        page.wait_for_timeout(2 * rotate * 1000)
        assert scopes(page) == held  # two periods on one scope

        server.start()
        expect(page.locator("html")).to_have_attribute(
            "data-wall-rotate", "running", timeout=15_000
        )
        seen = wait_for_scopes(page, len(held) + 1, timeout_s=rotate + 15)
        order = [COMMUNITY, *grids]
        assert seen[-1][0] == order[(order.index(held[-1]) + 1) % len(order)]
        # No callback sent into the outage (the browser's own favicon request may fail).
        assert [e for e in console.errors if "_favicon.ico" not in e] == []
        page.close()
    finally:
        server.stop()
