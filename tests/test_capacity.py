"""Page renders cannot starve ingest: the render gate's token buckets and concurrency cap, the
dedicated pools, and the proof that a video wall's own traffic never meets the limits."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Message

from app import create_app
from data_sources.capacity import RenderGate, RenderLimits, TokenBucket, run_ingest, run_projector
from data_sources.settings import Settings

from .conftest import as_page

PATH = "/_dash-update-component"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def ok(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("rendered")


def gated(limits: RenderLimits, clock: Clock) -> Starlette:
    app = Starlette(routes=[Route(PATH, ok, methods=["POST", "GET"]), Route("/other", ok)])
    app.add_middleware(RenderGate, limits=limits, clock=clock)
    return app


def test_a_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, at=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token in 1 / rate
    assert bucket.take(0.25) == pytest.approx(0.25)  # refused: nothing taken
    assert bucket.take(0.5) == 0.0
    assert bucket.take(100.0) == 0.0
    assert bucket.tokens == pytest.approx(2.0)  # capped at the burst, less the one taken


def test_over_its_budget_a_client_gets_429_with_retry_after_and_a_reason() -> None:
    clock = Clock()
    app = gated(RenderLimits(rate=0.5, burst=2, concurrency=2, hold_s=0), clock)
    with TestClient(app) as client:
        assert [client.post(PATH).status_code for _ in range(2)] == [200, 200]
        refused = client.post(PATH)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "2"  # one token in 1 / 0.5 s
        body = refused.json()
        assert body["error"] == "render_rate_limited"
        assert body["retry_after_s"] == 2
        assert "retry in 2 s" in body["detail"]
        # Only renders are counted: other paths and methods pass whatever the budget.
        assert client.get("/other").status_code == 200
        assert client.get(PATH).status_code == 200
        clock.now += 2
        assert client.post(PATH).status_code == 200


def test_each_client_address_has_a_budget_of_its_own() -> None:
    clock = Clock()
    app = gated(RenderLimits(rate=0.1, burst=1, concurrency=2, hold_s=0), clock)
    with (
        TestClient(app, client=("10.0.0.1", 5000)) as first,
        TestClient(app, client=("10.0.0.2", 5000)) as second,
    ):
        assert first.post(PATH).status_code == 200
        assert first.post(PATH).status_code == 429
        assert second.post(PATH).status_code == 200


def test_a_refusal_is_held_so_that_a_client_ignoring_retry_after_cannot_spin() -> None:
    async def main() -> tuple[int, float]:
        gate = RenderGate(app_ok, RenderLimits(rate=10, burst=1, concurrency=1, hold_s=1))
        assert await call(gate) == 200
        loop = asyncio.get_running_loop()
        started = loop.time()
        status = await call(gate)
        return status, loop.time() - started

    status, held = asyncio.run(main())
    assert status == 429
    # Held for the whole wait (0.1 s: one token at 10/s), not the hold's full second.
    assert 0.09 < held < 0.6


async def app_ok(_scope: Any, _receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def call(gate: RenderGate, client: str = "10.0.0.9") -> int:
    """One render request through `gate`; its status."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": PATH, "client": (client, 1), "headers": []}
    await gate(scope, receive, send)
    return int(sent[0]["status"])


def test_renders_beyond_the_concurrency_cap_queue_and_all_complete() -> None:
    running, most = 0, 0

    async def slow(_scope: Any, receive: Any, send: Any) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        await app_ok(_scope, receive, send)

    async def main() -> list[int]:
        gate = RenderGate(slow, RenderLimits(rate=1, burst=20, concurrency=2, hold_s=0))
        return await asyncio.gather(*(call(gate) for _ in range(8)))

    assert asyncio.run(main()) == [200] * 8
    assert most == 2


def test_a_client_that_does_not_read_its_answer_does_not_hold_the_only_slot() -> None:
    """Review of issue 9: the slot was held while the answer was sent, and sending waits for the
    client to read; one client that never reads would have frozen every wall's renders."""

    async def main() -> int:
        gate = RenderGate(app_ok, RenderLimits(rate=1, burst=20, concurrency=1, hold_s=0))
        never = asyncio.Event()

        async def receive() -> Message:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def stuck(_message: Message) -> None:
            await never.wait()  # the client's socket is full: the server waits to send

        scope = {"type": "http", "method": "POST", "path": PATH, "client": ("10.0.0.1", 1)}
        reader_that_never_reads = asyncio.create_task(
            gate({**scope, "headers": []}, receive, stuck)
        )
        await asyncio.sleep(0.05)
        try:
            return await asyncio.wait_for(call(gate, "10.0.0.2"), 2)
        finally:
            reader_that_never_reads.cancel()

    assert asyncio.run(main()) == 200


def test_beyond_the_queue_limit_renders_are_refused_503_and_the_queue_drains() -> None:
    """Each address within its budget, many addresses together must not queue without bound."""
    release = asyncio.Event()

    async def held(scope: Any, receive: Any, send: Any) -> None:
        await release.wait()
        await app_ok(scope, receive, send)

    async def main() -> list[int]:
        limits = RenderLimits(rate=1, burst=20, concurrency=1, hold_s=0, max_queue=3)
        gate = RenderGate(held, limits)
        first = [asyncio.create_task(call(gate, f"10.0.1.{n}")) for n in range(4)]  # 1 + 3 queued
        await asyncio.sleep(0.05)
        refused = await call(gate, "10.0.1.99")
        release.set()
        return [refused, *await asyncio.gather(*first)]

    assert asyncio.run(main()) == [503, 200, 200, 200, 200]


def test_while_the_loop_runs_late_renders_start_one_per_max_wait() -> None:
    async def main() -> tuple[list[int], float]:
        limits = RenderLimits(rate=1, burst=20, concurrency=4, hold_s=0, max_wait_s=0.1)
        gate = RenderGate(app_ok, limits)
        gate.lag.start = lambda: None  # type: ignore[method-assign]  # the figure is the test's
        gate.lag.lag_s = 1.0  # far over max_lag_s: no headroom
        loop = asyncio.get_running_loop()
        started = loop.time()
        statuses = await asyncio.gather(*(call(gate) for _ in range(3)))
        return list(statuses), loop.time() - started

    statuses, took = asyncio.run(main())
    assert statuses == [200] * 3  # delayed, never refused
    assert took >= 0.3  # one after another, each after max_wait_s


def test_with_headroom_renders_start_at_once() -> None:
    async def main() -> float:
        gate = RenderGate(app_ok, RenderLimits(rate=1, burst=20, concurrency=4, hold_s=0))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(call(gate) for _ in range(3)))
        return loop.time() - started

    assert asyncio.run(main()) < 0.1


def test_a_video_wall_pcs_own_traffic_never_meets_the_default_limits() -> None:
    """One address drives 8 screens. Captured from Chromium: a wall page asks for 2 renders when
    it loads (the router, then the regions) and 1 per carousel step, drill or resync. The day:
    all screens load at once, carousel every 10 s (staggered), a drill on each, then a deploy
    reloads them all at once, and a stream gap makes every one of them resync."""
    settings = Settings()
    limits = RenderLimits(settings.render_rate, settings.render_burst, settings.render_concurrency)
    bucket = TokenBucket(limits.rate, limits.burst, at=0.0)
    screens, t = 8, 0.0
    requests = [0.0] * (2 * screens)  # all load at once
    for second in range(1, 601):  # ten minutes of carousel, every screen every 10 s
        requests += [second + i / screens for i in range(screens) if (second + i) % 10 == 0]
    requests += [601.0] * screens  # a drill on every screen at once
    requests += [602.0] * (2 * screens)  # a deploy: every page reloads
    requests += [603.0] * screens  # the stream came back with a gap: every page resyncs
    refused = []
    for t in sorted(requests):
        if bucket.take(t) > 0:
            refused.append(t)
    assert refused == []


def test_the_app_gates_dash_renders_by_its_settings(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", render_burst=2)
    router = {  # the router's callback: needs no database
        "output": "app-page.children",
        "outputs": {"id": "app-page", "property": "children"},
        "inputs": [{"id": "app-url", "property": "pathname", "value": "/wall"}],
        "state": [{"id": "app-url", "property": "search", "value": ""}],
        "changedPropIds": ["app-url.pathname"],
    }
    with TestClient(create_app(settings)) as client:
        as_page(client)
        statuses = [client.post(PATH, json=router).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_ingest_and_projector_work_run_in_their_own_threads() -> None:
    async def main() -> tuple[str, str]:
        return (
            await run_ingest(lambda: threading.current_thread().name),
            await run_projector(lambda: threading.current_thread().name),
        )

    ingest, projector = asyncio.run(main())
    assert ingest.startswith("gridcc-ingest")
    assert projector.startswith("gridcc-projector")
