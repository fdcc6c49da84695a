"""A Redis outage during ingest, end to end (issue 9, acceptance 3): a real gridcc on a Redis server
of the test's own, a wall in Chromium, and the Redis server stopped and started again (empty, no
persistence) while events are posted.

While Redis is down ingest answers 503 with Retry-After (not 500), /readyz fails, and the wall —
whose stream keeps pinging, as the app process is fine — turns its badge from "● 实时" to "● 延迟"
or "● 数据已过期" within 10 s and keeps its last figures. Within 10 s of Redis coming back all of
that recovers by itself, and every event that was accepted (202), and every one refused with 503
and sent again as a client should, is stored.

What a non-persistent Redis can lose: 202 means "on the Redis stream", so an event accepted
moments before Redis died, and not yet read by the projector, dies with it. The test therefore
waits until the events posted before the outage are applied (on the wall and in SQL) before it
stops Redis; the claim "none lost" is about what the pipeline holds after that point.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import redis
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources import db
from data_sources.schema import CaseRow, NodeRow
from data_sources.seed.city import seed_city
from layouts import ids

from .browser import KEY, Server, free_port
from .conftest import AS_OF, TZ, need
from .test_live_browser import post_case
from .test_wall_stale_browser import (
    LIANMENG,
    Console,
    badge,
    kpi_open,
    open_wall,
    server_env,
)

pytestmark = pytest.mark.browser
log = logging.getLogger(__name__)

#: What the badge may say while the pipeline is behind or stalled.
NOT_LIVE = re.compile(r"^● (延迟 \d+ 秒|数据已过期 自 \d\d:\d\d:\d\d)$")


class RedisServer:
    """`redis-server` on a fixed 127.0.0.1 port, nothing saved: stopped and started again, it is
    empty (its stream and consumer group gone), as a Redis without persistence after a crash."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [self.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    assert time.monotonic() < deadline, "redis-server did not start"
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A small Panlong and one building of 联盟街道 to post cases to."""
    url = f"sqlite:///{tmp_path_factory.mktemp('redis-outage') / 'city.db'}"
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
    return url, building


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    executable = shutil.which("redis-server")
    if executable is None:
        need("redis-server", "install Debian's redis-server package")
    assert executable is not None
    server = RedisServer(executable)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def case_event(event_id: str, building: str) -> dict[str, object]:
    return {
        "id": event_id,
        "kind": "case.reported",
        "ts": "2026-11-23T14:05:00+08:00",
        "node": building,
        "payload": {
            "case_id": f"c-{event_id}",
            "channel": "hotline_12345",
            "category": "noise",
            "title": f"Redis 停机测试 {event_id}",
            "lon": 102.75,
            "lat": 25.07,
            "reporter": "市民",
        },
    }


def post(base: str, event: dict[str, object]) -> tuple[int, dict[str, str]]:
    """POST one event; its status and headers, whatever the status."""
    request = urllib.request.Request(
        f"{base}/api/v1/events",
        data=json.dumps(event).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": KEY},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers)


def readyz(base: str) -> int:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:
            return error.code


def stored_cases(database_url: str, case_ids: list[str]) -> set[str]:
    engine = db.make_engine(database_url)
    try:
        with Session(engine) as session:
            return set(session.scalars(select(CaseRow.id).where(CaseRow.id.in_(case_ids))).all())
    finally:
        engine.dispose()


def within(seconds: float, check: Callable[[], bool]) -> float:
    """Poll `check()` until true; how long it took (fails after `seconds`)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < seconds, f"not within {seconds} s"
        time.sleep(0.2)
    return time.monotonic() - started


def test_a_redis_outage_is_visible_clean_and_loses_nothing_accepted(
    browser: Browser, city: tuple[str, str], redis_server: RedisServer
) -> None:
    url, building = city
    server = Server(url, **server_env(GRIDCC_REDIS_URL=redis_server.url))
    server.start()
    try:
        page, console = open_wall(browser, server.base)
        before = int(kpi_open(page).inner_text().replace(",", ""))
        # The laptop overview of the same scope: its badge follows the pipeline as the wall's.
        overview = browser.new_page(viewport={"width": 1600, "height": 1000})
        overview_console = Console(overview)
        overview.goto(f"{server.base}/?scope={LIANMENG}", wait_until="load")
        overview_badge = overview.locator(f"#{ids.Overview.LIVE}")
        expect(overview_badge).to_have_text("● 实时", timeout=15_000)
        assert readyz(server.base) == 200

        # Accepted and applied before the outage: on the wall, hence in SQL.
        pre = [f"redis-pre-{n}" for n in range(3)]
        for event_id in pre:
            post_case(server.base, event_id, building, f"Redis 停机前 {event_id}")
        expect(kpi_open(page)).to_have_text(f"{before + 3:,}", timeout=10_000)
        assert stored_cases(url, [f"c-{e}" for e in pre]) == {f"c-{e}" for e in pre}
        shown = kpi_open(page).inner_text()

        redis_server.stop()
        stopped = time.monotonic()
        during = [f"redis-during-{n}" for n in range(3)]
        for event_id in during:
            status, headers = post(server.base, case_event(event_id, building))
            assert status == 503, status
            assert int(headers["retry-after"]) > 0
        assert readyz(server.base) == 503
        expect(badge(page)).to_have_text(NOT_LIVE, timeout=10_000)
        went_stale_s = time.monotonic() - stopped
        expect(overview_badge).to_have_text(NOT_LIVE, timeout=10_000 - 1000 * went_stale_s)
        expect(overview_badge).to_have_class(re.compile(r"gridcc-live-(delayed|offline)"))
        expect(badge(page)).to_have_class(re.compile(r"wall-live-(delayed|offline)"))
        expect(kpi_open(page)).to_have_text(shown)  # the last figures stay on screen
        page.wait_for_timeout(3_000)
        expect(badge(page)).to_have_text(NOT_LIVE)  # and it says so for as long as it lasts
        assert readyz(server.base) == 503

        redis_server.start()  # empty: the stream and the projector's group are gone
        back = time.monotonic()
        expect(badge(page)).to_have_text("● 实时", timeout=10_000)
        live_again_s = time.monotonic() - back
        expect(overview_badge).to_have_text("● 实时", timeout=10_000 - 1000 * live_again_s)
        ready_again_s = within(10 - (time.monotonic() - back), lambda: readyz(server.base) == 200)
        # The refused events sent again, as a client told "retry later" does, and new ones.
        post_ = [f"redis-post-{n}" for n in range(3)]
        for event_id in [*during, *post_]:
            status, _ = post(server.base, case_event(event_id, building))
            assert status == 202, (event_id, status)
        assert time.monotonic() - back < 10
        expect(kpi_open(page)).to_have_text(f"{before + 9:,}", timeout=10_000)
        every = [f"c-{e}" for e in [*pre, *during, *post_]]
        assert stored_cases(url, every) == set(every)
        assert went_stale_s < 10 and live_again_s < 10
        log.info(
            "Redis outage: badge not live %.1f s after the stop; after the restart live in "
            "%.1f s, /readyz 200 %.1f s later",
            went_stale_s,
            live_again_s,
            ready_again_s,
        )
        assert console.errors == [] and overview_console.errors == []
        page.close()
        overview.close()
    finally:
        server.stop()
