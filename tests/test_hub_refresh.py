"""The hub's periodic refresh: once per watched (scope, view, language) and period, however many
pages watch it; to each of those pages only; on its cadence; never for a scope nobody watches."""

from __future__ import annotations

import json

import pytest

from data_sources.hub import Hub
from data_sources.stream import _events

from .test_hub import ROOT, STREET, make

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def counting(hub: Hub) -> list[tuple[int, str]]:
    """Registers a wall refresher on `hub` that records what it was asked to compute."""
    asked: list[tuple[int, str]] = []

    async def refresh(node: int, lang: str) -> str:
        asked.append((node, lang))
        return json.dumps({"node": node, "lang": lang})

    hub.refreshers["wall"] = refresh
    return asked


def events(queue_items: list[dict[str, object]]) -> list[dict[str, object]]:
    return [json.loads(bytes(m["refresh"]).split(b"data: ", 1)[1]) for m in queue_items]  # type: ignore[call-overload]


def drain(sub: object) -> list[dict[str, object]]:
    queue = sub.queue  # type: ignore[attr-defined]
    return [queue.get_nowait() for _ in range(queue.qsize())]


async def test_a_scope_is_refreshed_once_per_period_for_all_its_pages() -> None:
    hub, _ = make()
    asked = counting(hub)
    hub.refresh_s = 30.0
    pages = [hub.subscribe(STREET, "wall", "zh") for _ in range(200)]
    english = hub.subscribe(STREET, "wall", "en")
    overview = hub.subscribe(STREET)  # a page without the wall's view gets no refresh
    assert await hub.refresh_due(now=0.0) == 0  # its pages have just rendered it
    assert await hub.refresh_due(now=29.0) == 0
    assert await hub.refresh_due(now=34.0) == 2  # zh and en: two computations for 201 pages
    assert sorted(asked) == [(STREET, "en"), (STREET, "zh")]
    assert all(events(drain(p)) == [{"node": STREET, "lang": "zh"}] for p in pages)
    assert events(drain(english)) == [{"node": STREET, "lang": "en"}]
    assert drain(overview) == []
    # On its cadence: 4 s late once (a busy loop), the next one is still due at 60 s, not 64 s.
    assert await hub.refresh_due(now=59.0) == 0
    assert await hub.refresh_due(now=60.0) == 2


async def test_a_scope_nobody_watches_costs_nothing_and_starts_afresh() -> None:
    hub, _ = make()
    asked = counting(hub)
    hub.refresh_s = 30.0
    sub = hub.subscribe(ROOT, "wall", "zh")
    await hub.refresh_due(now=0.0)
    hub.unsubscribe(sub)
    assert await hub.refresh_due(now=90.0) == 0 and asked == []
    hub.subscribe(ROOT, "wall", "zh")  # a page comes back: its first refresh a period on
    assert await hub.refresh_due(now=91.0) == 0
    assert await hub.refresh_due(now=121.0) == 1


async def test_a_failing_refresh_is_skipped_and_the_others_go_on() -> None:
    hub, _ = make()
    hub.refresh_s = 10.0

    async def refresh(node: int, lang: str) -> str:
        if node == STREET:
            raise RuntimeError("the database went away")
        return json.dumps({"node": node, "lang": lang})

    hub.refreshers["wall"] = refresh
    broken, fine = hub.subscribe(STREET, "wall", "zh"), hub.subscribe(ROOT, "wall", "zh")
    await hub.refresh_due(now=0.0)
    assert await hub.refresh_due(now=10.0) == 1
    assert drain(broken) == [] and len(drain(fine)) == 1


async def test_the_stream_sends_the_refresh_as_it_was_encoded() -> None:
    hub, _ = make()
    counting(hub)
    hub.refresh_s = 5.0
    hello = {"build": "b1", "heartbeat": 60.0, "reconnect_max": 5.0}
    stream = _events(hub, STREET, None, hello, 60.0, 1000, "wall", "en")
    assert str(await anext(stream)).startswith("retry: ")
    assert "event: snapshot" in str(await anext(stream))
    await hub.refresh_due(now=0.0)
    await hub.refresh_due(now=5.0)
    frame = await anext(stream)
    assert frame == b'event: refresh\ndata: {"node": 2, "lang": "en"}\n\n'
    await stream.aclose()
