"""The leaders' laptop view `/` in a real headless Chromium, signed in as a leader: at 1280×800 and
1920×1080, in Chinese and English, light and dark, nothing scrolls sideways and no header is cut or
wrapped; a filter's KPIs and case table equal what SQL written here computes; a case opens from the
table and from a search, and its link reopens it (issue 11)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import Engine, text

from data_sources import db
from data_sources.seed.city import seed_city
from data_sources.services import utc_now
from data_sources.workhours import CN_CALENDAR, working_hours_between
from layouts import ids
from layouts.i18n import number, percent, t

from .browser import PageWatch, running_server, sign_in_page
from .conftest import AS_OF, PASSWORD, SMALL_SEED, TZ, add_account

pytestmark = pytest.mark.browser

PANLONG = "530103"
LEADER = "laptop-leader"
#: The seeded fortnight, as the custom range the tests filter on (local dates).
FIRST, LAST = (AS_OF - timedelta(days=14)).date(), AS_OF.date()
RANGE = {"period": "custom", "from": FIRST.isoformat(), "to": LAST.isoformat()}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('laptop') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=7, as_of=AS_OF, tz=TZ, **SMALL_SEED)  # type: ignore[arg-type]
    add_account(url, LEADER, "leader", PANLONG)
    yield url, engine
    engine.dispose()


@pytest.fixture(scope="module")
def server(database: tuple[str, Engine]) -> Iterator[str]:
    with running_server(database[0]) as base:
        yield base


def leader_page(browser: Browser, server: str, size: tuple[int, int], theme: str) -> Page:
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.add_init_script(f"window.localStorage.setItem('gridcc-theme', '{theme}')")
    sign_in_page(page, server, LEADER, PASSWORD, then="/")
    return page


def window_sql() -> tuple[datetime, datetime]:
    """The custom range in naive UTC (Kunming is UTC+8, no daylight saving)."""
    since = datetime.combine(FIRST, datetime.min.time()) - timedelta(hours=8)
    until = datetime.combine(LAST + timedelta(days=1), datetime.min.time()) - timedelta(hours=8)
    return since, until


def expected(engine: Engine, category: str | None) -> dict[str, Any]:
    """Panlong's figures for the range (and category), in SQL written for this test."""
    since, until = window_sql()
    now = utc_now()
    where = "district_id = (SELECT id FROM nodes WHERE code = :district)"
    where += " AND reported_at >= :since AND reported_at < :until"
    params: dict[str, Any] = {"district": PANLONG, "since": since, "until": until, "now": now}
    if category:
        where += " AND category = :category"
        params["category"] = category
    sql = f"""
        SELECT count(*),
               sum(CASE WHEN status NOT IN ('closed', 'rejected') THEN 1 ELSE 0 END),
               sum(CASE WHEN status NOT IN ('closed', 'rejected') AND NOT deferred
                        AND due_at < :now THEN 1 ELSE 0 END),
               sum(CASE WHEN status = 'closed' THEN 1 ELSE 0 END),
               sum(CASE WHEN status NOT IN ('reported', 'rejected') THEN 1 ELSE 0 END)
        FROM cases WHERE {where}"""
    newest = f"SELECT id FROM cases WHERE {where} ORDER BY reported_at DESC, id DESC LIMIT 5"
    with engine.connect() as connection:
        reported, open_, overdue, closed, accepted = connection.execute(text(sql), params).one()
        ids_ = [row[0] for row in connection.execute(text(newest), params)]
    return {
        "reported": number(reported),
        "open": number(open_),
        "overdue": number(overdue),
        "closure_rate": percent(closed / accepted if accepted else None),
        "count": reported,
        "newest": ids_,
    }


#: What does not fit on the page: sideways overflow of the page and of each grid's body, and the
#: headers and labels cut, or wrapped to one character per line ("Closure rate" on two lines is
#: fine, 排 over 名 not).
MISFITS = """() => ({
    page: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    grids: [...document.querySelectorAll('.ag-center-cols-viewport')]
        .filter(v => v.offsetParent !== null)  // a grid in a tab not shown has no width
        .map(v => v.scrollWidth - v.clientWidth),
    cut: [...document.querySelectorAll('.ag-header-cell-text, .gridcc-kpi-label, '
            + '.gridcc-segments label, .gridcc-switch label, .gridcc-case-head h5')]
        .filter(e => e.offsetParent !== null)
        .filter(e => {
            const text = e.textContent.trim().replace(/ /g, '');
            const line = parseFloat(getComputedStyle(e).lineHeight) || 20;
            const lines = Math.round(e.getBoundingClientRect().height / line);
            return e.scrollWidth > e.clientWidth + 1
                || (text.length > 1 && lines > 1 && lines >= text.length / 1.5);
        })
        .map(e => e.textContent),
})"""


def assert_fits(page: Page) -> None:
    """Nothing scrolls sideways and no header or label is cut or wrapped a character per line,
    once the grids have laid out (a grid sizes its columns again when its scrollbar appears)."""
    fits = f"() => {{ const m = ({MISFITS})(); return m.page <= 0 && m.cut.length === 0"
    fits += " && m.grids.every(w => w <= 1); }"
    try:
        page.wait_for_function(fits, timeout=5_000)
    except PlaywrightTimeout:
        pass
    misfits = page.evaluate(MISFITS)
    assert misfits["page"] <= 0, misfits
    assert all(w <= 1 for w in misfits["grids"]), misfits
    assert misfits["cut"] == [], misfits


LOOKS = [
    ((1280, 800), "zh", "light"),
    ((1280, 800), "en", "dark"),
    ((1920, 1080), "zh", "dark"),
    ((1920, 1080), "en", "light"),
]


@pytest.mark.parametrize(("size", "lang", "theme"), LOOKS, ids=lambda v: str(v))
def test_a_filter_shows_what_sql_computes_in_every_size_language_and_theme(
    server: str,
    browser: Browser,
    database: tuple[str, Engine],
    artifacts: Path,
    size: tuple[int, int],
    lang: str,
    theme: str,
) -> None:
    watch = PageWatch()
    page = watch.attach(leader_page(browser, server, size, theme))
    query = {"scope": PANLONG, "lang": lang, **RANGE}
    page.goto(f"{server}/?{urlencode(query)}", wait_until="load")
    figures = expected(database[1], None)
    expect(page.locator(ids.kpi("reported"))).to_have_text(str(figures["reported"]), timeout=15_000)
    expect(page.locator("html")).to_have_attribute("data-bs-theme", theme)
    expect(page.locator(f"#{ids.Overview.CASES} .ag-row").first).to_be_visible(timeout=10_000)
    assert_fits(page)
    name = f"laptop-{size[0]}-{lang}-{theme}.png"
    page.screenshot(path=str(artifacts / name), full_page=True)

    # The leader narrows it to one category: the tiles and the table follow, and the URL holds it.
    category = "sanitation"
    label = {"zh": "环境卫生", "en": "Sanitation"}[lang]
    page.locator(f"#{ids.Overview.CATEGORY}").click()
    page.get_by_role("option", name=label).click()
    page.keyboard.press("Escape")
    expect(page).to_have_url(re.compile(f"category={category}"), timeout=10_000)
    figures = expected(database[1], category)
    for name in ("reported", "open", "overdue", "closure_rate"):
        expect(page.locator(ids.kpi(name))).to_have_text(str(figures[name]), timeout=10_000)
    count = {"zh": f"共 {number(int(figures['count']))} 件", "en": f"{figures['count']:,} cases"}
    expect(page.locator(f"#{ids.Overview.CASE_COUNT}")).to_have_text(count[lang])
    newest = page.locator(f"#{ids.Overview.CASES} .ag-row[row-index='0'] [col-id='id']")
    expect(newest).to_have_text(str(figures["newest"][0]), timeout=10_000)
    shown = page.evaluate(
        """() => [...document.querySelectorAll(
                '#overview-cases .ag-center-cols-container .ag-row')]
            .sort((a, b) => +a.getAttribute('row-index') - +b.getAttribute('row-index'))
            .slice(0, 5).map(r => r.querySelector('[col-id="id"]').textContent)"""
    )
    assert shown == figures["newest"]
    assert_fits(page)
    if size == (1920, 1080):
        assert_export_is_the_table(page, int(figures["count"]))

    # The other follow-up lists: the alarm history (shown first) and the grid workers.
    expect(page.locator(f"#{ids.Lists.ALARMS} .ag-row").first).to_be_visible(timeout=10_000)
    page.get_by_role("tab", name=t("lists_workers", lang)).click()
    expect(page.locator(f"#{ids.Lists.WORKERS} .ag-row").first).to_be_visible(timeout=10_000)
    assert_fits(page)
    assert watch.errors == []
    assert watch.off_host() == []
    page.close()


TABLE_ROWS = """() => [...document.querySelectorAll(
        '#overview-cases .ag-center-cols-container .ag-row')]
    .sort((a, b) => +a.getAttribute('row-index') - +b.getAttribute('row-index'))
    .map(r => ['id', 'title', 'category', 'status', 'reported_at', 'due_at', 'place']
        .map(c => r.querySelector(`[col-id="${c}"]`).textContent))"""


def assert_export_is_the_table(page: Page, count: int) -> None:
    """The CSV export of the filter shown: UTF-8 with a BOM, as many rows as the table says, and
    the table's rows (as far as it has drawn them) with the same values, in the same order."""
    with page.expect_download() as download:
        page.locator(f"#{ids.Overview.EXPORT_CSV}").click()
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert len(body) == count
    table = page.evaluate(TABLE_ROWS)
    assert len(table) >= min(count, 10)
    at = {name: header.index(name) for name in header}
    lang = "en" if "Case no." in at else "zh"
    names = {
        "zh": ("案件编号", "标题", "类别", "状态", "上报时间", "办理时限", "地点"),
        "en": ("Case no.", "Title", "Category", "Status", "Reported", "Due", "Place"),
    }[lang]
    exported = [[row[at[n]] or "—" for n in names] for row in body[: len(table)]]
    assert exported == table


#: The lifecycle steps that end one stage and start the next (not defer, supervise, rework).
STAGE_STEPS = ("report", "accept", "dispatch", "handle", "close", "evaluate")


def stage_hours(engine: Engine, case_id: str) -> list[str]:
    """The working time of each finished stage of a case without rework, from its events:
    report→accept, accept→dispatch, dispatch→handle, handle→close, close→evaluate."""
    with engine.connect() as connection:
        steps = connection.execute(
            text(
                "SELECT action, at FROM case_events WHERE case_id = :id"
                " AND replay_note IS NULL ORDER BY seq"
            ),
            {"id": case_id},
        ).all()
    # SQLite gives a raw query's times as text.
    chain = [datetime.fromisoformat(str(at)) for action, at in steps if action in STAGE_STEPS]
    spans = [
        working_hours_between(a, b, tz=TZ, calendar=CN_CALENDAR)
        for a, b in zip(chain, chain[1:], strict=False)
    ]
    return [f"{span.total_seconds() / 3600:.1f} h" for span in spans]


def closed_case_without_rework(engine: Engine) -> str:
    since, until = window_sql()
    with engine.connect() as connection:
        return str(
            connection.execute(
                text(
                    "SELECT id FROM cases WHERE status = 'closed' AND rework_count = 0"
                    " AND satisfaction IS NOT NULL AND reported_at >= :since"
                    " AND reported_at < :until ORDER BY id LIMIT 1"
                ),
                {"since": since, "until": until},
            ).scalar_one()
        )


def case_steps(engine: Engine, case_id: str) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT action, actor FROM case_events WHERE case_id = :id ORDER BY seq"),
            {"id": case_id},
        )
        return [(row[0], row[1]) for row in rows]


def test_a_case_opens_from_the_table_and_from_a_search_and_its_link_reopens_it(
    server: str, browser: Browser, database: tuple[str, Engine]
) -> None:
    watch = PageWatch()
    page = watch.attach(leader_page(browser, server, (1440, 900), "light"))
    query = {"scope": PANLONG, "lang": "en", **RANGE, "status": "closed"}
    page.goto(f"{server}/?{urlencode(query)}", wait_until="load")
    first = page.locator(f"#{ids.Overview.CASES} .ag-row[row-index='0']")
    expect(first).to_be_visible(timeout=15_000)
    expect(first.locator("[col-id='id']")).to_have_text(re.compile(f"^{PANLONG}-"))
    case_id = first.locator("[col-id='id']").inner_text()
    first.locator("a.gridcc-link").click()
    expect(page).to_have_url(re.compile(r"/case\?id="), timeout=10_000)
    detail = page.locator(f"#{ids.Case.CONTENT} [data-case='{case_id}']")
    expect(detail).to_be_visible(timeout=10_000)
    steps = case_steps(database[1], case_id)
    shown = page.locator(".gridcc-timeline tbody tr")
    expect(shown).to_have_count(len(steps))
    for i, (_action, actor) in enumerate(steps):
        expect(shown.nth(i).locator("td").nth(2)).to_have_text(actor)
    stages = page.locator(".gridcc-stages tbody tr")
    assert stages.count() >= 4  # intake, dispatch, handling, verification (and more)

    # The address bar's link opens the same case in a new page.
    again = watch.attach(browser.new_page())
    sign_in_page(again, server, LEADER, PASSWORD, then="/")
    again.goto(page.url, wait_until="load")
    expect(again.locator(f"[data-case='{case_id}']")).to_be_visible(timeout=10_000)
    expect(again.locator(".gridcc-timeline tbody tr")).to_have_count(len(steps))
    again.close()

    # Each stage's working time is what its events say (a case without rework: one round each).
    plain = closed_case_without_rework(database[1])
    page.goto(f"{server}/case?{urlencode({'id': plain, 'lang': 'en'})}")
    hours = page.locator(".gridcc-stages tbody tr td:nth-child(5)")
    expected_hours = stage_hours(database[1], plain)
    assert len(expected_hours) == 5
    expect(hours).to_have_text(expected_hours, timeout=10_000)

    # From a search: the case number alone finds it; its link opens it.
    page.goto(f"{server}/?{urlencode({'scope': PANLONG, 'lang': 'en', **RANGE})}")
    search = page.locator(f"#{ids.Overview.SEARCH}")
    search.fill(case_id)
    search.press("Enter")
    expect(page).to_have_url(re.compile(f"q={re.escape(case_id)}"), timeout=10_000)
    found = page.locator(f"#{ids.Overview.CASES} .ag-center-cols-container .ag-row")
    expect(found).to_have_count(1, timeout=10_000)
    found.first.locator("a.gridcc-link").click()
    expect(page.locator(f"[data-case='{case_id}']")).to_be_visible(timeout=10_000)
    assert watch.errors == []
    page.close()


def test_back_and_forward_bring_the_filter_controls_with_the_view(
    server: str, browser: Browser
) -> None:
    watch = PageWatch()
    page = watch.attach(leader_page(browser, server, (1440, 900), "light"))
    page.goto(f"{server}/?{urlencode({'scope': PANLONG, 'lang': 'en', **RANGE})}")
    expect(page.locator(f"#{ids.Overview.CASES} .ag-row").first).to_be_visible(timeout=15_000)
    count = page.locator(f"#{ids.Overview.CASE_COUNT}")
    expect(count).not_to_be_empty()
    total = count.inner_text()
    category = page.locator(f"#{ids.Overview.CATEGORY}")
    category.click()
    page.get_by_role("option", name="Noise").click()
    page.keyboard.press("Escape")
    expect(page).to_have_url(re.compile("category=noise"), timeout=10_000)
    expect(count).not_to_have_text(total, timeout=10_000)
    noise = count.inner_text()
    page.get_by_text("Overdue only").click()
    expect(page).to_have_url(re.compile("overdue=1"), timeout=10_000)
    expect(count).not_to_have_text(noise, timeout=10_000)
    overdue = count.inner_text()

    page.go_back()
    expect(page).not_to_have_url(re.compile("overdue=1"), timeout=10_000)
    expect(count).to_have_text(noise, timeout=10_000)  # the view of that URL, drawn again
    expect(page.locator(f"#{ids.Overview.OVERDUE}")).not_to_be_checked()
    expect(category).to_contain_text("Noise")
    page.go_back()
    expect(page).not_to_have_url(re.compile("category="), timeout=10_000)
    expect(count).to_have_text(total, timeout=10_000)
    expect(category).not_to_contain_text("Noise")
    page.go_forward()
    expect(category).to_contain_text("Noise", timeout=10_000)
    expect(page).to_have_url(re.compile("category=noise"))
    expect(count).to_have_text(noise, timeout=10_000)
    assert overdue != noise
    assert watch.errors == []
    page.close()
