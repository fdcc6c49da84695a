"""The live stream's protocol: what a page learns from it (hello, `at` stamps) on a fresh start, on a
quiet spell and on a resume with Last-Event-ID."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from data_sources.stream import _events

from .test_hub import STREET, case, make, push

pytestmark = pytest.mark.anyio
HELLO = {"build": "b1", "heartbeat": 0.05, "reconnect_max": 5.0}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def parse(frame: str) -> tuple[str, dict[str, Any]]:
    fields = dict(line.split(": ", 1) for line in frame.strip().splitlines())
    return fields["event"], json.loads(fields["data"])


async def frames(stream: AsyncIterator[str], n: int) -> list[tuple[str, dict[str, Any]]]:
    assert (await anext(stream)).startswith("retry: ")
    return [parse(await anext(stream)) for _ in range(n)]


def recent(at: int) -> bool:
    return abs(time.time() * 1000 - at) < 5_000


async def test_a_fresh_stream_says_hello_and_stamps_every_message() -> None:
    hub, _ = make()
    stream = _events(hub, STREET, None, HELLO, HELLO["heartbeat"], 1000)
    (snapshot_event, snapshot), (ping_event, ping) = await frames(stream, 2)
    await stream.aclose()
    assert snapshot_event == "snapshot" and ping_event == "ping"
    for message in (snapshot, ping):
        assert {k: message[k] for k in HELLO} == HELLO
        assert recent(message["at"])


async def test_deltas_carry_when_they_were_built() -> None:
    hub, live = make()
    sub = hub.subscribe(STREET)
    push(hub, live, case(3, 1))
    assert recent(sub.queue.get_nowait()["at"])


async def test_a_resumed_stream_gets_its_backlog_then_a_current_hello() -> None:
    hub, live = make()
    first = hub.subscribe(STREET)  # the page's earlier stream: tracking starts here
    resume_from = hub.last_id
    push(hub, live, case(3, 1))
    built = first.queue.get_nowait()["at"]
    hub.unsubscribe(first)
    stream = _events(hub, STREET, resume_from, HELLO, 60.0, 1000)
    (delta_event, delta), (ping_event, ping) = await frames(stream, 2)
    await stream.aclose()
    assert delta_event == "delta" and delta["at"] == built  # the backlog keeps its own stamps
    assert ping_event == "ping" and {k: ping[k] for k in HELLO} == HELLO and recent(ping["at"])


async def test_event_ids_name_the_hubs_life_and_an_id_of_another_life_is_no_resume_point() -> None:
    """A busy hub numbers its deltas faster than the clock's milliseconds, so after a restart the
    numbers of the old life can fall inside the new one's: the id says whose it is."""
    hub, _ = make()
    stream = _events(hub, STREET, None, HELLO, 60.0, 1000)
    assert (await anext(stream)).startswith("retry: ")
    snapshot = await anext(stream)
    await stream.aclose()
    said = dict(line.split(": ", 1) for line in snapshot.strip().splitlines())["id"]
    assert said == f"{hub.life}-{hub.last_id}"
    assert hub.resume_point(said) == hub.last_id

    restarted, _ = make()
    assert restarted.life != hub.life
    for other in (said, f"{restarted.life}-x", str(hub.last_id), "", None):
        # From the old life (even if its number is one of this life's), malformed, bare, absent.
        assert restarted.resume_point(other) is None
    assert restarted.resume_point(f"{restarted.life}-{restarted.last_id}") == restarted.last_id
