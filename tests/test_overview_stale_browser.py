"""The laptop overview `/` after a gap its stream could not replay (a server restart while a proxy kept
the page off): the case that came in meanwhile is in its feed, drawn again from SQL."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from layouts import ids

from .browser import Server
from .outage import Proxy
from .test_live_browser import post_case
from .test_wall_stale_browser import LIANMENG, Console, server_env
from .test_wall_stale_browser import city as city  # the same small Panlong (module fixture)

pytestmark = pytest.mark.browser


@pytest.fixture
def server(city: tuple[str, str]) -> Iterator[Server]:
    running = Server(city[0], **server_env(GRIDCC_RECONNECT_MAX_S="2"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_the_overview_after_a_restart_shows_the_case_that_came_meanwhile(
    server: Server, browser: Browser, city: tuple[str, str]
) -> None:
    with Proxy(server.port) as proxy:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        console = Console(page)
        page.goto(f"{proxy.base}/?scope={LIANMENG}", wait_until="load")
        live = page.locator(f"#{ids.Overview.LIVE}")
        expect(live).to_have_class(re.compile(r"gridcc-live-live"), timeout=15_000)
        feed = page.locator(f"#{ids.Overview.FEED}")
        expect(feed.locator(".gridcc-feed-item").first).to_be_attached()

        proxy.set_mode("503")
        expect(live).to_have_class(re.compile(r"gridcc-live-offline"), timeout=5_000)
        server.stop()
        server.start()  # a new life: the page's last id resumes nothing
        post_case(server.base, "overview-gap-1", city[1], "概览断线期间的新案件")
        deadline = time.monotonic() + 10
        while len(proxy.refused_streams) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        proxy.set_mode("relay")

        expect(live).to_have_class(re.compile(r"gridcc-live-live"), timeout=10_000)
        expect(feed).to_contain_text("概览断线期间的新案件", timeout=5_000)
        assert console.errors == []
        page.close()
