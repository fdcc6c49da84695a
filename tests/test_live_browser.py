"""Acceptance of the live pipeline in a real browser: a case posted through the API shows up on the
page watching its street within 2 s, and a case elsewhere changes nothing there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Response, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources import db
from data_sources.schema import NodeRow
from data_sources.seed.city import seed_city
from layouts import ids

from .browser import KEY, PageWatch, post_event, running_server
from .conftest import AS_OF, TZ

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('live') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=9, as_of=AS_OF, tz=TZ, districts=["530103"], days=3, cases_per_day=900)
    with Session(engine) as session:

        def first_building(street: str) -> str:
            return (
                session.scalars(
                    select(NodeRow.code)
                    .where(NodeRow.level == "building", NodeRow.code.startswith(street))
                    .order_by(NodeRow.code)
                ).first()
                or ""
            )

        places = {
            "street": "530103004",
            "building": first_building("530103004"),
            "elsewhere": first_building("530103001"),
        }
    engine.dispose()
    yield url, places


@pytest.fixture(scope="module")
def server(city: tuple[str, dict[str, str]]) -> Iterator[str]:
    # The laptop page draws its figures again at most every 2 s (30 s by default).
    env = {"GRIDCC_API_KEYS": json.dumps({"tests": KEY}), "GRIDCC_LAPTOP_REFRESH_S": "2"}
    with running_server(city[0], **env) as base:
        yield base


def post_case(base: str, event_id: str, building: str, title: str, ts: str | None = None) -> None:
    """A citizen's report of `title` at `building`, reported at `ts` (ISO 8601; default a time
    in the seeded days)."""
    event = {
        "id": event_id,
        "kind": "case.reported",
        "ts": ts or "2026-11-23T14:05:00+08:00",
        "node": building,
        "payload": {
            "case_id": f"c-{event_id}",
            "channel": "hotline_12345",
            "category": "noise",
            "title": title,
            "lon": 102.75,
            "lat": 25.07,
            "reporter": "市民",
        },
    }
    post_event(base, event)


def test_a_posted_case_appears_live_on_its_street_only(
    server: str, browser: Browser, city: tuple[str, dict[str, str]], artifacts: Path
) -> None:
    _, places = city
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1600, "height": 1000}))
    # Today's cases: the ones posted now.
    page.goto(f"{server}/?scope={places['street']}&period=today", wait_until="load")
    tile = page.locator(ids.kpi("open"))
    expect(page.locator(f"#{ids.Overview.LIVE}")).to_contain_text("实时", timeout=15_000)
    before = int(tile.inner_text().replace(",", ""))
    community = places["building"][:12]  # the building's community: a row of the street's table
    cell = page.locator(f"#{ids.Overview.CHILDREN} .ag-row[row-id='{community}'] [col-id='open']")
    cell_before = int(cell.inner_text().replace(",", ""))
    newest = page.locator(f"#{ids.Overview.CASES} .ag-row[row-index='0'] [col-id='title']")
    show = page.locator(f"#{ids.Overview.NEW_ROWS}")

    now = datetime.now(UTC).isoformat()
    post_case(server, "live-1", places["building"], "联盟街道测试案件：井盖缺失", now)
    expect(page.locator(f"#{ids.Overview.FEED}")).to_contain_text("井盖缺失", timeout=2_000)
    # The figures are the filter's: the delta makes the page draw them again (within the
    # refresh period).
    expect(tile).to_have_text(f"{before + 1:,}", timeout=5_000)
    expect(cell).to_have_text(f"{cell_before + 1:,}", timeout=5_000)
    # The case table offers the new rows; it shows them when asked.
    expect(show).to_have_text("1 件新案件 — 显示", timeout=5_000)
    show.click()
    expect(newest).to_have_text("联盟街道测试案件：井盖缺失", timeout=5_000)
    expect(show).to_be_hidden()
    # Another one does not move the rows under the reader's cursor.
    post_case(server, "live-3", places["building"], "联盟街道测试案件：路灯不亮", now)
    expect(show).to_have_text("1 件新案件 — 显示", timeout=15_000)
    expect(newest).to_have_text("联盟街道测试案件：井盖缺失")
    page.screenshot(path=str(artifacts / "live-street.png"))
    show.click()
    expect(newest).to_have_text("联盟街道测试案件：路灯不亮", timeout=5_000)

    post_case(server, "live-2", places["elsewhere"], "拓东街道测试案件：第二条测试", now)
    page.wait_for_timeout(1_500)
    expect(tile).to_have_text(f"{before + 2:,}")
    expect(page.locator(f"#{ids.Overview.FEED}")).not_to_contain_text("第二条测试")
    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


def _tick_answers(page: Page) -> list[Response]:
    """The page's live refreshes as they are answered (its render callback fired by the tick)."""
    answers: list[Response] = []

    def keep(response: Response) -> None:
        if "_dash-update-component" not in response.url:
            return
        body = json.loads(response.request.post_data or "{}")
        if body.get("changedPropIds") == [f"{ids.Overview.TICK}.data"]:
            answers.append(response)

    page.on("response", keep)
    return answers


def test_a_live_refresh_sends_and_draws_only_what_changed(
    server: str, browser: Browser, city: tuple[str, dict[str, str]]
) -> None:
    """bench_latency's 20 laptop pages at 1,000 events/s missed p95 ≤ 250 ms (2.6 s) while every
    refresh sent and drew the 9 tiles' 350 elements again: a 160-200 ms task in each page. A
    refresh now sets the parts that changed, and the tiles' elements stay."""
    _, places = city
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1600, "height": 1000}))
    page.goto(f"{server}/?scope={places['street']}&period=today", wait_until="load")
    expect(page.locator(f"#{ids.Overview.LIVE}")).to_contain_text("实时", timeout=15_000)
    tile = page.locator(ids.kpi("reported"))
    before = int(tile.inner_text().replace(",", ""))
    mark = f"document.querySelector('{ids.kpi('reported')}').closest('.gridcc-kpi')"
    page.evaluate(f"{mark}.gridccMark = 'kept'")
    answers = _tick_answers(page)

    now = datetime.now(UTC).isoformat()
    post_case(server, "patch-1", places["building"], "联盟街道测试案件：只送变化", now)
    expect(tile).to_have_text(f"{before + 1:,}", timeout=5_000)
    assert page.evaluate(f"{mark}.gridccMark") == "kept"  # the tile was not drawn anew
    assert answers, "the figures changed without a live refresh"
    drawn = answers[-1].json()["response"]
    # The tiles' parts that changed, set one by one; not the tiles' element drawn whole.
    assert ids.Overview.CONTENT not in drawn
    parts = {json.loads(key)["type"] for key in drawn if key.startswith("{")}
    assert ids.KpiPart.VALUE in parts, drawn.keys()
    # The header, breadcrumb and map are the full draw's: a refresh leaves them.
    for name in (ids.Overview.TITLE, ids.Overview.ACCOUNT, ids.Overview.BREADCRUMB):
        assert name not in drawn
    assert ids.Overview.MAP_AREAS not in drawn

    # A refresh with nothing new changes nothing on the page.
    def refreshed(count: int) -> Response:
        for _ in range(50):
            if len(answers) > count:
                return answers[count]
            page.wait_for_timeout(100)
        raise AssertionError("no live refresh")

    count = len(answers)
    page.evaluate(f"window.dash_clientside.set_props('{ids.Overview.TICK}', {{data: Date.now()}})")
    idle = refreshed(count).json()["response"]
    assert [key for key in idle if key.startswith("{")] == []  # no tile part
    assert ids.Overview.CHILDREN not in idle

    # A tab in the background is not refreshed until it is shown again.
    count = len(answers)
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    post_case(server, "patch-2", places["building"], "联盟街道测试案件：后台标签", now)
    expect(page.locator(f"#{ids.Overview.FEED}")).to_contain_text("后台标签", timeout=2_000)
    page.wait_for_timeout(3_000)  # over the 2 s refresh period
    assert len(answers) == count
    expect(tile).to_have_text(f"{before + 1:,}")
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});"
        "document.dispatchEvent(new Event('visibilitychange'))"
    )
    expect(tile).to_have_text(f"{before + 2:,}", timeout=5_000)
    assert watch.errors == []
    page.close()
