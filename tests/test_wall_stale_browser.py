"""The wall left alone: it marks itself stale when the server goes away, keeps its last numbers, and
comes back by itself with fresh ones within 10 s of the server's return — after a short restart, after
a long outage, after a proxy answered 503 for a while — and a quiet city is never shown as stale,
while a stalled stream or data arriving late show "● 延迟" (delayed) first.

The server is a real uvicorn process that the tests stop and start again on the same port; the proxy
is a small asyncio TCP relay in this process that can answer 503, hold or delay what it relays
(tests/outage.py).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources import db
from data_sources.schema import CameraRow, NodeRow
from data_sources.seed.city import seed_city
from data_sources.services import utc_now
from layouts import ids

from .browser import KEY, Server
from .conftest import AS_OF, TZ
from .outage import Proxy
from .test_live_browser import post_case
from .wall_city import post_event

pytestmark = pytest.mark.browser

LIANMENG = "530103004"  # 联盟街道
STALE = re.compile(r"数据已过期 自 \d\d:\d\d:\d\d$")
#: The only console errors an outage may cause: the stream's failed requests.
EXPECTED_OUTAGE_ERRORS = (
    re.compile(r"^Failed to load resource: net::ERR_CONNECTION_REFUSED$"),
    re.compile(
        r"^Failed to load resource: net::ERR_(EMPTY_RESPONSE|CONNECTION_RESET|INCOMPLETE_CHUNKED_ENCODING)$"
    ),
    re.compile(
        r"^Failed to load resource: the server responded with a status of 503 \(Service Unavailable\)$"
    ),
    re.compile(
        r"^EventSource's response has a status 503 that is not 200\. Aborting the connection\.$"
    ),
)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A small Panlong and one building of 联盟街道 to post cases to."""
    url = f"sqlite:///{tmp_path_factory.mktemp('stale') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=["530103"], days=3, cases_per_day=900)
    with Session(engine) as session:
        building = session.scalars(
            select(NodeRow.code)
            .where(NodeRow.level == "building", NodeRow.code.startswith(LIANMENG))
            .order_by(NodeRow.code)
        ).first()
    engine.dispose()
    assert building is not None
    yield url, building


def server_env(**env: str) -> dict[str, str]:
    days = (utc_now() - AS_OF).days + 30  # every seeded case counts, whatever today's date is
    return {
        "GRIDCC_KPI_WINDOW_DAYS": str(days),
        "GRIDCC_API_KEYS": json.dumps({"tests": KEY}),
        **env,
    }


@pytest.fixture
def server(city: tuple[str, str], request: pytest.FixtureRequest) -> Iterator[Server]:
    """A started server; the test's `settings` marker-less parameter gives extra environment."""
    env = getattr(request, "param", {})
    running = Server(city[0], **server_env(**env))
    running.start()
    try:
        yield running
    finally:
        running.stop()


class Console:
    """Console errors of a page, with the ones an outage is expected to cause filtered precisely."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        stream = "/live/stream" in (message.location.get("url") or "")
        if stream and any(p.match(message.text) for p in EXPECTED_OUTAGE_ERRORS):
            return
        self.errors.append(f"{message.text} @ {message.location.get('url')}")


def open_wall(browser: Browser, base: str, lang: str = "zh") -> tuple[Page, Console]:
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    console = Console(page)
    page.goto(f"{base}/wall?scope={LIANMENG}&lang={lang}", wait_until="load")
    expect(badge(page)).to_have_text("● 实时" if lang == "zh" else "● Live", timeout=15_000)
    expect(kpi_open(page)).not_to_have_text("", timeout=15_000)
    # Every state the badge takes, as the page sees it (no polling gaps).
    page.evaluate(
        """() => {
          window.__badgeStates = [];
          const el = document.getElementById("wall-live");
          new MutationObserver(() => window.__badgeStates.push(el.className + "|" + el.textContent))
            .observe(el, {attributes: true, childList: true, characterData: true, subtree: true});
        }"""
    )
    return page, console


def badge(page: Page) -> Locator:
    return page.locator(f"#{ids.Wall.LIVE}")


def kpi_open(page: Page) -> Locator:
    return page.locator(f"#{ids.wall_kpi('open')}")


def figure(locator: Locator) -> int:
    return int(locator.inner_text().replace(",", ""))


def expect_stale_with_last_frame(page: Page, before: str) -> None:
    expect(badge(page)).to_have_text(STALE, timeout=5_000)
    expect(badge(page)).to_have_class(re.compile(r"wall-live-offline"))
    expect(kpi_open(page)).to_have_text(before)  # the last numbers stay
    expect(page.locator(".wall-kpi")).to_have_count(8)  # the canvas is all there
    expect(page.locator(f"#{ids.Wall.NOTICE}")).to_be_empty()
    assert page.evaluate("document.documentElement.getAttribute('data-wall-state')") == "offline"


def expect_recovery(page: Page, post_to: str, building: str, event_id: str, before: int) -> float:
    """Post a case once the server answers; the page shows it within 10 s. Returns the seconds."""
    started = time.monotonic()
    post_case(post_to, event_id, building, f"无人值守测试 {event_id}")
    expect(kpi_open(page)).to_have_text(f"{before + 1:,}", timeout=10_000)
    expect(badge(page)).to_have_text("● 实时", timeout=10_000 - 1000 * (time.monotonic() - started))
    return time.monotonic() - started


# ---------------------------------------------------------------- tests


def test_a_short_restart_is_marked_stale_and_recovers_by_itself(
    server: Server, browser: Browser, city: tuple[str, str], artifacts: Path
) -> None:
    page, console = open_wall(browser, server.base)
    before = kpi_open(page).inner_text()

    server.stop()
    expect_stale_with_last_frame(page, before)
    page.wait_for_timeout(5_000)
    expect_stale_with_last_frame(page, before)
    page.screenshot(path=str(artifacts / "wall-stale.png"))

    server.start()
    took = expect_recovery(page, server.base, city[1], "stale-a-1", int(before.replace(",", "")))
    assert took < 10
    assert console.errors == []
    page.close()


@pytest.mark.parametrize(
    ("server", "outage_s"),
    [
        # Heartbeat 1 s instead of 15 s: the watchdog's reopens run 15× as often, so a 20 s outage
        # exercises what a 5-minute one does (the stream's own retries, every `retry:` 1 s, are as
        # many as in 20 s of a real outage: past the Dash renderer's 10 retries either way).
        pytest.param({"GRIDCC_HEARTBEAT_S": "1"}, 20, id="heartbeat-1s"),
        # The real thing, opt-in (3.5 minutes): GRIDCC_TEST_REAL_OUTAGE=1.
        pytest.param(
            {},
            190,
            id="real-3min",
            marks=[
                pytest.mark.slow,
                pytest.mark.skipif(
                    not os.environ.get("GRIDCC_TEST_REAL_OUTAGE"),
                    reason="a real 3-minute outage: set GRIDCC_TEST_REAL_OUTAGE=1",
                ),
            ],
        ),
    ],
    indirect=["server"],
)
def test_a_long_outage_recovers_within_10s_of_the_server_returning(
    server: Server, browser: Browser, city: tuple[str, str], outage_s: int
) -> None:
    page, console = open_wall(browser, server.base)
    before = kpi_open(page).inner_text()
    server.stop()
    expect_stale_with_last_frame(page, before)
    page.wait_for_timeout(outage_s * 1000)
    expect_stale_with_last_frame(page, before)

    server.start()
    took = expect_recovery(page, server.base, city[1], "stale-b-1", int(before.replace(",", "")))
    assert took < 10
    assert console.errors == []
    page.close()


@pytest.mark.parametrize(
    "server",
    # The default heartbeat (15 s): the page's own backoff reopens the stream, not the watchdog
    # (which would only every 30 s). The backoff's cap 2 s instead of 5 s: reached in 12 s.
    [pytest.param({"GRIDCC_RECONNECT_MAX_S": "2"}, id="reconnect-max-2s")],
    indirect=True,
)
def test_a_proxy_answering_503_does_not_close_the_stream_for_good(
    server: Server, browser: Browser, city: tuple[str, str]
) -> None:
    with Proxy(server.port) as proxy:
        page, console = open_wall(browser, proxy.base)
        before = kpi_open(page).inner_text()

        proxy.set_mode("503")  # a deploy behind the load balancer
        expect_stale_with_last_frame(page, before)
        page.wait_for_timeout(12_000)  # backoff 1, 2, 2, 2, … s (±20 %)
        expect_stale_with_last_frame(page, before)
        refused = proxy.refused_streams
        gaps = [b - a for a, b in zip(refused, refused[1:], strict=False)]
        assert len(refused) >= 5, f"the page reopened its stream only {len(refused)} times in 12 s"
        assert max(gaps) < 2 * 1.2 + 0.5, f"backoff not capped: {gaps}"

        proxy.set_mode("relay")
        took = expect_recovery(page, proxy.base, city[1], "stale-c-1", int(before.replace(",", "")))
        assert took < 10
        assert console.errors == []
        page.close()


@pytest.mark.parametrize(
    # Heartbeat 2 s: pings may come a second late on a busy machine before the page says "delayed".
    "server",
    [pytest.param({"GRIDCC_HEARTBEAT_S": "2"}, id="heartbeat-2s")],
    indirect=True,
)
def test_a_quiet_city_stays_live_and_gets_the_next_event(
    server: Server, browser: Browser, city: tuple[str, str]
) -> None:
    page, console = open_wall(browser, server.base)
    before = figure(kpi_open(page))
    page.wait_for_timeout(16_000)  # 8 heartbeats without a single event
    states = page.evaluate("window.__badgeStates")
    assert [s for s in states if "wall-live-live" not in s] == []
    expect(badge(page)).to_have_text("● 实时")

    post_case(server.base, "stale-d-1", city[1], "无人值守测试 安静之后")
    expect(kpi_open(page)).to_have_text(f"{before + 1:,}", timeout=2_000)
    assert console.errors == []
    page.close()


@pytest.mark.parametrize(
    "server", [pytest.param({"GRIDCC_HEARTBEAT_S": "3"}, id="heartbeat-3s")], indirect=True
)
def test_a_stalled_stream_turns_delayed_then_stale_then_live_again(
    server: Server, browser: Browser, city: tuple[str, str]
) -> None:
    with Proxy(server.port) as proxy:
        page, console = open_wall(browser, proxy.base, lang="en")  # the English words as well
        before = figure(kpi_open(page))
        page.evaluate("window.__badgeStates = []")
        proxy.set_mode("hold")  # the connection stays up, nothing comes through

        # One heartbeat missed: amber, with how late; two: stale (and the stream is reopened).
        expect(badge(page)).to_have_text(re.compile(r"^● Delayed \d+ s$"), timeout=6_000)
        expect(badge(page)).to_have_class(re.compile(r"wall-live-delayed"))
        expect(badge(page)).to_have_text(
            re.compile(r"^● Stale since \d\d:\d\d:\d\d$"), timeout=6_000
        )
        proxy.set_mode("relay")
        post_case(server.base, "stale-e-1", city[1], "无人值守测试 延迟之后")
        expect(kpi_open(page)).to_have_text(f"{before + 1:,}", timeout=10_000)
        expect(badge(page)).to_have_text("● Live", timeout=5_000)
        states = [s.split("|")[0].split()[-1] for s in page.evaluate("window.__badgeStates")]
        order = [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]
        assert order[:3] == ["wall-live-delayed", "wall-live-offline", "wall-live-live"], order
        assert console.errors == []
        page.close()


def test_data_arriving_late_turn_the_badge_delayed_and_back_to_live(
    server: Server, browser: Browser, city: tuple[str, str]
) -> None:
    # The default heartbeat (15 s): the page hears from the server often enough; only its data are late.
    with Proxy(server.port) as proxy:
        page, console = open_wall(browser, proxy.base)
        before = figure(kpi_open(page))
        stop = threading.Event()
        posted: list[str] = []

        def post_every_half_second() -> None:
            while not stop.is_set():
                event_id = f"stale-f-{len(posted)}"
                post_case(server.base, event_id, city[1], f"无人值守测试 {event_id}")
                posted.append(event_id)
                stop.wait(0.5)

        poster = threading.Thread(target=post_every_half_second)
        poster.start()
        try:
            proxy.set_lag(7)
            expect(badge(page)).to_have_text(re.compile(r"^● 延迟 [6-8] 秒$"), timeout=12_000)
            expect(badge(page)).to_have_class(re.compile(r"wall-live-delayed"))
            proxy.set_lag(0)
            expect(badge(page)).to_have_text("● 实时", timeout=12_000)
        finally:
            stop.set()
            poster.join()
        expect(kpi_open(page)).to_have_text(f"{before + len(posted):,}", timeout=5_000)
        states = page.evaluate("window.__badgeStates")
        assert [s for s in states if "wall-live-offline" in s] == []  # late is not stale
        assert console.errors == []
        page.close()


def post_alarm_event(
    base: str, event_id: str, kind: str, node: str, payload: dict[str, object]
) -> None:
    ts = utc_now().isoformat() + "Z"
    post_event(base, {"id": event_id, "kind": kind, "ts": ts, "node": node, "payload": payload})


def a_camera_of(url: str, street_code: str) -> tuple[str, str]:
    """A camera of the street that stands at a building, and the building's code."""
    engine = db.make_engine(url)
    with Session(engine) as session:
        street = session.scalars(select(NodeRow.id).where(NodeRow.code == street_code)).one()
        found = session.execute(
            select(CameraRow.code, NodeRow.code)
            .join(NodeRow, NodeRow.id == CameraRow.building_id)
            .where(CameraRow.street_id == street)
            .order_by(CameraRow.code)
        ).first()
    engine.dispose()
    assert found is not None
    return found[0], found[1]


@pytest.mark.parametrize(
    ("server", "restart"),
    [
        # A deploy's blip: the page's new stream says where it was and the ring replays the gap.
        pytest.param({"GRIDCC_RECONNECT_MAX_S": "2"}, False, id="blip-replayed"),
        # A restart: the new server's ring holds nothing of the old one, the stream starts with a
        # snapshot, and a snapshot carries figures, not the alarm's end: the wall is drawn again.
        pytest.param({"GRIDCC_RECONNECT_MAX_S": "2"}, True, id="restart-redrawn"),
    ],
    indirect=["server"],
)
def test_an_alarm_resolved_while_the_page_could_not_hear_leaves_its_map(
    server: Server, browser: Browser, city: tuple[str, str], restart: bool
) -> None:
    """An alarm raised live is resolved while a proxy answers the page 503 (and the browser has
    given up on its stream): once back, the alarm leaves the map and the ticker shows it closed,
    instead of pulsing on for days."""
    camera, building = a_camera_of(city[0], LIANMENG)
    run = "restart" if restart else "blip"  # the city is shared by the module's tests
    with Proxy(server.port) as proxy:
        page, console = open_wall(browser, proxy.base)
        dots = page.locator(".wall-alarm-dot")
        expect(page.locator(".wall-area").first).to_be_attached(timeout=10_000)
        before = dots.count()  # the street's open alarms, from SQL
        ticker = page.locator(f"#{ids.Wall.ALARM_LIST} .wall-alarm-item[data-key='gap-fire-{run}']")
        raised = {"alarm_id": f"gap-fire-{run}", "camera": camera, "type": "fire", "severity": 4}
        post_alarm_event(server.base, f"gap-raise-{run}", "alarm.raised", building, raised)
        expect(dots).to_have_count(before + 1, timeout=3_000)  # drawn live
        expect(ticker).not_to_have_class(re.compile("wall-closed"))

        proxy.set_mode("503")
        expect(badge(page)).to_have_text(STALE, timeout=5_000)
        if restart:
            server.stop()
            server.start()
        resolved = {"alarm_id": f"gap-fire-{run}", "actor": "值班员"}
        post_alarm_event(server.base, f"gap-resolve-{run}", "alarm.resolved", building, resolved)
        # The browser's own retry (which sends Last-Event-ID) refused too: the page opens a new
        # EventSource itself.
        deadline = time.monotonic() + 10
        while len(proxy.refused_streams) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert len(proxy.refused_streams) >= 2
        renders: list[str] = []
        page.on("request", lambda r: renders.append(r.url) if "_dash-update" in r.url else None)
        proxy.set_mode("relay")

        expect(badge(page)).to_have_text("● 实时", timeout=10_000)
        expect(dots).to_have_count(before, timeout=5_000)
        expect(ticker).to_have_class(re.compile("wall-closed"))
        # Replayed: no server callback at all; redrawn: one render, not one per message.
        assert len(renders) == (1 if restart else 0), renders
        # And live again afterwards: the next alarm is drawn without a render.
        raised = {"alarm_id": f"gap-fire-{run}-2", "camera": camera, "type": "fire", "severity": 4}
        post_alarm_event(server.base, f"gap-raise-{run}-2", "alarm.raised", building, raised)
        expect(dots).to_have_count(before + 1, timeout=3_000)
        assert len(renders) == (1 if restart else 0), renders
        assert console.errors == []
        page.close()
