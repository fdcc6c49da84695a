"""The load of bench_latency: a living city posted to gridcc's ingest API at a set rate.

It runs in a process of its own, so the work of making and posting 1,000 events/s never delays a
probe between the moment its send time is noted and the moment it leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import multiprocessing
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2
import numpy as np
from latency_rig import AS_OF, HEADERS, city

from data_sources.events import Event
from data_sources.ingest import MAX_BATCH
from data_sources.simulator import MIX, EventFactory, as_raw

#: Storylines run this much faster than real time: a case is accepted ~2 s after its report and
#: handled ~15 s later, so within seconds the load is the steady mix of reports and transitions.
SPEED = 600
STORY_KINDS = [kind for kind, _ in MIX]
STORY_P = np.array([share for _, share in MIX]) / sum(share for _, share in MIX)


@dataclass
class Load:
    """Posts a living city to the ingest API at `rate` events/s, one batch every `tick_s`.

    New storylines start as needed to keep the rate; their later steps (a case's acceptance,
    dispatch…, an alarm's acknowledgement) are sent when due at `SPEED`. Every event is stamped
    with the moment it is sent. When the server falls behind (more than 2 × `in_flight` posts
    waiting) the generator drops its deficit instead of bursting: `accepted` shows what got through.
    """

    client: httpx2.AsyncClient
    factory: EventFactory
    rate: float = 0.0
    tick_s: float = 0.1
    in_flight: int = 4
    accepted: int = 0
    failed: int = 0
    skipped: int = 0
    error: str = ""
    post_s: list[float] = field(default_factory=list)
    _pending: list[tuple[float, int, Event]] = field(default_factory=list)
    _serial: int = 0
    _planned: int = 0
    _since: float = 0.0
    _posts: set[asyncio.Task[None]] = field(default_factory=set)

    def set_rate(self, rate: float) -> None:
        if rate < self.rate:
            self._pending.clear()  # steps of the faster phase would crowd out new stories
        self.rate, self._since, self._planned = rate, time.monotonic(), 0

    def _story(self) -> list[Event]:
        kind = STORY_KINDS[int(self.factory.rng.choice(len(STORY_KINDS), p=STORY_P))]
        if kind == "case":
            return self.factory.case_story(AS_OF)
        if kind == "alarm":
            return self.factory.alarm_story(AS_OF)
        return [self.factory.position(AS_OF)]

    def _take(self, n: int, now: float) -> list[Event]:
        out: list[Event] = []
        while self._pending and self._pending[0][0] <= now and len(out) < n:
            out.append(heapq.heappop(self._pending)[2])
        while len(out) < n:
            first, *later = self._story()
            out.append(first)
            for event in later:
                self._serial += 1
                due = now + (event.ts_utc - first.ts_utc).total_seconds() / SPEED
                heapq.heappush(self._pending, (due, self._serial, event))
        return out

    def tick(self, gate: asyncio.Semaphore) -> None:
        """Post what is due now (as a task)."""
        now = time.monotonic()
        due = int(self.rate * (now - self._since)) - self._planned
        if due <= 0:
            return
        self._planned += due
        if len(self._posts) > 2 * self.in_flight:
            self.skipped += due
            return
        events = self._take(min(due, MAX_BATCH), now)
        stamp = datetime.now(UTC).replace(tzinfo=None)
        body = json.dumps([as_raw(e, stamp) for e in events], ensure_ascii=False).encode()
        task = asyncio.create_task(self._post(gate, body, len(events)))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _post(self, gate: asyncio.Semaphore, body: bytes, n: int) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                response = await self.client.post("/api/v1/events", content=body)
            except httpx2.HTTPError as exc:
                self.failed += n
                self.error = repr(exc)
                return
            self.post_s.append(time.perf_counter() - started)
            if response.status_code == 202:
                self.accepted += n
            else:
                self.failed += n
                self.error = f"{response.status_code} {response.text[:300]}"

    async def drain(self) -> None:
        await asyncio.gather(*self._posts, return_exceptions=True)


def _load_main(database_url: str, base: str, shared: dict[str, Any], done: Any) -> None:
    """The load process: post at the shared rate until `stop` is set; counters in `shared`."""

    async def go() -> dict[str, Any]:
        directory, places = city(database_url)
        rng = np.random.default_rng(11)
        factory = EventFactory(places, directory, rng, prefix=f"load{uuid.uuid4().hex[:8]}")
        async with httpx2.AsyncClient(base_url=base, headers=HEADERS, timeout=60) as client:
            load = Load(client, factory)
            gate = asyncio.Semaphore(load.in_flight)
            shared["ready"].set()
            next_tick = time.monotonic()
            while not shared["stop"].is_set():
                if shared["rate"].value != load.rate:
                    load.set_rate(shared["rate"].value)
                load.tick(gate)
                shared["accepted"].value = load.accepted
                next_tick += load.tick_s
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            await load.drain()
            posts = np.percentile(load.post_s, [50, 95]) * 1000 if load.post_s else [0, 0]
            return {
                "accepted": load.accepted,
                "failed": load.failed,
                "skipped": load.skipped,
                "post_p50_ms": float(posts[0]),
                "post_p95_ms": float(posts[1]),
                "error": load.error,
            }

    done.send(asyncio.run(go()))


class LoadProcess:
    """`Load` in a process of its own; `rate` and `accepted` are shared with this one."""

    def __init__(self, database_url: str, base: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._shared: dict[str, Any] = {
            "rate": ctx.Value("d", 0.0, lock=False),
            "accepted": ctx.Value("q", 0, lock=False),
            "ready": ctx.Event(),
            "stop": ctx.Event(),
        }
        self._done, child_end = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_load_main, args=(database_url, base, self._shared, child_end), daemon=True
        )

    def start(self, rate: float) -> None:
        self.set_rate(rate)
        self.process.start()
        deadline = time.monotonic() + 60
        while not self._shared["ready"].wait(0.2):
            if not self.process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the load process did not start ({self.process.exitcode})")

    def set_rate(self, rate: float) -> None:
        self._shared["rate"].value = rate

    @property
    def accepted(self) -> int:
        return int(self._shared["accepted"].value)

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def stop(self) -> dict[str, Any]:
        """Stop posting; the totals."""
        self._shared["stop"].set()
        summary: dict[str, Any] = self._done.recv() if self._done.poll(60) else {}
        self.process.join(10)
        with contextlib.suppress(ValueError):
            self.process.close()
        return summary
