"""The overview page in a real headless Chromium against a real server on a seeded database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from data_sources import db, store
from data_sources.seed.city import seed_city
from data_sources.services import utc_now
from layouts import ids
from layouts.i18n import number

from .browser import PageWatch, running_server
from .conftest import AS_OF, SMALL_SEED, TZ

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=7, as_of=AS_OF, tz=TZ, **SMALL_SEED)  # type: ignore[arg-type]
    yield url, engine
    engine.dispose()


@pytest.fixture(scope="module")
def server(database: tuple[str, Engine]) -> Iterator[str]:
    with running_server(database[0]) as base:
        yield base


#: The seeded fortnight as the page's custom range (its figures then never age out of a window).
RANGE = f"period=custom&from={(AS_OF - timedelta(days=14)).date()}&to={AS_OF.date()}"


def child(code: str, column: str) -> str:
    """The cell of the children's table (an AG Grid) in child `code`'s row and `column`."""
    return f"#{ids.Overview.CHILDREN} .ag-row[row-id='{code}'] [col-id='{column}']"


def _expected(engine: Engine, code: str) -> tuple[str, dict[str, str]]:
    """(open cases of `code`, reported cases per child code) straight from the database."""
    since = AS_OF - timedelta(days=3650)
    with Session(engine) as session:
        node = store.node_by_code(session=session, code=code)
        assert node is not None
        tally = store.node_tally(session=session, node=node, since=since, now=utc_now())
        children = store.child_tallies(session=session, node=node, since=since, now=utc_now())
        reported = {
            child.code: number(children[child.id].reported)
            for child in store.children(session=session, node=node)
            if child.id in children
        }
    return number(tally.open), reported


def test_overview_shows_database_figures_and_drills_down(
    server: str, browser: Browser, database: tuple[str, Engine], artifacts: Path
) -> None:
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1600, "height": 1000}))
    page.goto(f"{server}/?scope=530103&{RANGE}", wait_until="load")

    open_cases, reported = _expected(database[1], "530103")
    expect(page.locator(ids.kpi("open"))).to_have_text(open_cases, timeout=15_000)
    assert int(open_cases.replace(",", "")) > 0
    street = "530103004"  # 联盟街道
    expect(page.locator(child(street, "reported"))).to_have_text(reported[street])
    expect(page.locator(".breadcrumb")).to_contain_text("盘龙区")
    # An anonymous visitor reads, but exports are for signed-in users: no buttons to be refused.
    expect(page.locator(f"#{ids.Overview.EXPORT_CSV}")).to_be_hidden()
    page.screenshot(path=str(artifacts / "overview-panlong.png"), full_page=True)

    page.locator(child(street, "name") + " a").click()  # the drill keeps the filter
    expect(page).to_have_url(f"{server}/?scope={street}&lang=zh&{RANGE}")
    open_cases, _ = _expected(database[1], street)
    expect(page.locator(ids.kpi("open"))).to_have_text(open_cases, timeout=15_000)
    expect(page.locator(".breadcrumb")).to_contain_text("联盟街道")

    page.locator(f"#{ids.Overview.LANG_LINK}").click()
    expect(page.locator(".breadcrumb")).to_contain_text("Lianmeng Subdistrict")
    expect(page.locator(f"#{ids.Overview.TITLE}")).to_contain_text("Command Centre")

    page.locator(".breadcrumb a", has_text="Kunming").click()
    expect(page.locator(f"#{ids.Overview.TITLE}")).to_contain_text("Kunming")
    page.screenshot(path=str(artifacts / "overview-city-en.png"), full_page=True)

    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


def test_overview_of_an_empty_database_explains_what_to_do(
    browser: Browser, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    watch = PageWatch()
    with running_server(url) as base:
        page = watch.attach(browser.new_page())
        page.goto(f"{base}/", wait_until="load")
        expect(page.locator(".alert")).to_contain_text("gridcc seed", timeout=15_000)
        page.close()
    assert watch.errors == []
