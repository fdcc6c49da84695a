"""Capacity that page renders cannot take from ingest: own thread pools, and a gate on renders.

Issue 9, finding 4: one client running 40 wall render loops raised ingest's p95 from 9 ms to
2,254 ms (bench/bench_ingest_load.py --short, 2 shared cores) and cut accepted events from 992/s
to 281/s. Three things were shared: asyncio's default thread pool (min(32, cores + 4) = 6 threads
here), where 40 renders' SQL queued ahead of ingest validation and the projector; the GIL; and
the event loop, where Dash runs each callback's layout building and JSON encoding (a Panlong wall
render: 27 ms of SQL in a thread, ~20 ms on the loop, 69 kB). So:

- ingest validation and the projector run in pools of their own (`run_ingest`,
  `run_projector`), never queued behind a render;
- `RenderGate` (on `POST …/_dash-update-component`) gives each client a token bucket (over it:
  429 with `Retry-After`), starts renders only while the event loop has headroom (`LoopLag`),
  and runs at most `concurrency` at once, queueing the others: a queued request costs nothing,
  a running one takes the GIL and the loop from ingest. Measured ingest p95 ratios (loaded ÷
  alone, interleaved, same run): 1 at a time 1.15–1.57, 2 at a time 4.7–5.0; without the
  headroom wait 1.68–2.32;
- `tune_gil` shortens the GIL's switch interval.

The client is the peer address Uvicorn puts in the ASGI scope: it takes `X-Forwarded-For` only
from the proxies `--forwarded-allow-ips` names (127.0.0.1 by default), so a client elsewhere
cannot pick its own key.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import math
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import ParamSpec, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

P = ParamSpec("P")
T = TypeVar("T")

#: Validation looks ids up in SQL (a few ms per batch of 100); two threads let one batch's
#: lookup overlap another's parsing without giving ingest more threads than there are cores.
INGEST_THREADS = 2
#: The projector applies one batch at a time (order matters): one thread is all it can use.
PROJECTOR_THREADS = 1
#: The projector's read ahead, its acks and the readiness probe overlap at most.
BUS_THREADS = 2

#: The GIL's switch interval while gridcc serves. A thread that wants the GIL (the event loop back
#: from a socket, ingest's thread back from SQL) waits up to this long for a busy render thread to
#: drop it, at each of the many times a request needs it: 5 ms (CPython's default) → 1 ms took
#: the ingest p95 ratio under 40 render loops from 1.58–2.67 to 1.15–1.57 (bench_ingest_load).
SWITCH_INTERVAL_S = 0.001


def tune_gil() -> None:
    """Hand the GIL over sooner (see `SWITCH_INTERVAL_S`); process-wide, so called once at start."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(name: str, threads: int) -> ThreadPoolExecutor:
    """The named pool, made on first use (no threads at import time)."""
    with _pools_lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ThreadPoolExecutor(threads, thread_name_prefix=f"gridcc-{name}")
        return pool


async def run_ingest(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in the ingest pool: validation and publishing work of every feed
    (HTTP, the simulator, the wall's alarm actions), never queued behind a page render."""
    return await _run(_pool("ingest", INGEST_THREADS), partial(fn, *args, **kwargs))


async def run_projector(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in the projector's own thread."""
    return await _run(_pool("projector", PROJECTOR_THREADS), partial(fn, *args, **kwargs))


async def run_bus(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` in the pool of the SQL bus's reads and acks and of the readiness
    probe: short statements that must not queue behind page renders in asyncio's default pool
    (the projector's lag would grow, and /readyz would time out on a store that is fine)."""
    return await _run(_pool("bus", BUS_THREADS), partial(fn, *args, **kwargs))


async def _run(pool: ThreadPoolExecutor, call: Callable[[], T]) -> T:
    """`call()` in `pool` with the caller's context variables, as `asyncio.to_thread` does."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(pool, context.run, call)


# ------------------------------------------------------------------ the render gate


@dataclass
class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; a request takes one."""

    rate: float
    burst: float
    tokens: float = field(init=False)
    at: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def take(self, now: float) -> float:
        """0 when a token was taken; else the seconds until there is one (nothing taken)."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.at) * self.rate >= self.burst


@dataclass(frozen=True)
class RenderLimits:
    """How much rendering a client may ask for, and how much runs at once.

    A wall page asks for 2 renders when it loads (the router's page, then the wall's regions:
    captured from Chromium), 1 per drill, 1 per carousel step and 1 per resync after a stream gap;
    the overview the same. A video-wall PC drives several screens from one address: 8 screens
    loading at once take 16 tokens, each then rotating every 10 s takes 0.8/s.
    """

    rate: float = 5.0  # tokens per second per client
    burst: int = 30  # tokens a client may spend at once
    concurrency: int = 2  # renders running at once, all clients together
    #: A refused request is answered after min(its wait, hold_s): a client that retries at once
    #: (ignoring Retry-After) makes at most one request per hold_s per connection, not thousands.
    hold_s: float = 1.0
    #: Headroom: while the event loop runs this late, renders start one per `max_wait_s` (they
    #: are delayed, never refused): a render's Python work holds the GIL and the loop ingest
    #: needs, so on a busy machine even two at a time took ingest's p95 from 43 ms to 1.3 s.
    max_lag_s: float = 0.015
    max_wait_s: float = 1.0
    #: Renders that may wait for a slot, all clients together; beyond, 503 with `Retry-After`:
    #: many addresses (each within its budget) must not queue work without bound.
    max_queue: int = 200


class LoopLag:
    """How late the event loop runs: a task sleeps `tick_s` and notes by how much it overslept.

    The figure decays slowly and rises at once, so one quiet tick does not open the gate."""

    def __init__(self, tick_s: float = 0.02) -> None:
        self.tick_s = tick_s
        self.lag_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Watch the running loop (again, if the loop the last watch ran in is gone)."""
        if self._task is None or self._task.done() or self._task.get_loop().is_closed():
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="gridcc-lag")

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.tick_s)
            late = max(0.0, loop.time() - started - self.tick_s)
            self.lag_s = late if late > self.lag_s else 0.7 * self.lag_s + 0.3 * late


class RenderGate:
    """ASGI middleware: per-client token buckets and a cap on concurrent renders for Dash's
    callback endpoint (`POST {prefix}_dash-update-component`); everything else passes untouched.

    Refused: 429, `Retry-After` in whole seconds, and a JSON body saying why. Admitted requests
    wait, in arrival order, for headroom (`LoopLag` under `max_lag_s`, or `max_wait_s` passed)
    and then for one of `concurrency` slots (asyncio's semaphore and lock are FIFO).
    """

    #: Idle clients whose buckets are full again are forgotten once there are this many.
    PRUNE_AT = 10_000

    def __init__(
        self,
        app: ASGIApp,
        limits: RenderLimits,
        prefix: str = "/",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limits = limits
        self.path = prefix.rstrip("/") + "/_dash-update-component"
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}
        self.running = 0  # renders past the semaphore now (for tests and logs)
        self.waiting = 0  # renders waiting for headroom or a slot
        self.lag = LoopLag()
        # Made in the serving loop, on the first render.
        self._slots: asyncio.Semaphore | None = None
        self._headroom: asyncio.Lock | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        wait = self._take(key)
        if wait > 0:
            await self._refuse(wait, send)
            return
        if self._slots is None or self._headroom is None:
            self._slots = asyncio.Semaphore(self.limits.concurrency)
            self._headroom = asyncio.Lock()
        if self.waiting >= self.limits.max_queue:
            await self._refuse(1.0, send, status=503, reason="too many page renders are waiting")
            return
        self.lag.start()
        self.waiting += 1
        try:
            async with self._headroom:  # one render at a time waits for headroom, in order
                deadline = asyncio.get_running_loop().time() + self.limits.max_wait_s
                while self.lag.lag_s > self.limits.max_lag_s:
                    if asyncio.get_running_loop().time() >= deadline:
                        break
                    await asyncio.sleep(self.lag.tick_s)
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        # The answer is kept and sent after the slot is released: a client that does not read
        # its (70 kB) wall must not hold the only slot while the server waits to send it.
        answer: list[Message] = []

        async def keep(message: Message) -> None:
            answer.append(message)

        self.running += 1
        try:
            await self.app(scope, receive, keep)
        finally:
            self.running -= 1
            self._slots.release()
        for message in answer:
            await send(message)

    def _take(self, key: str) -> float:
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.PRUNE_AT:
                self.buckets = {k: b for k, b in self.buckets.items() if not b.full(now)}
            bucket = self.buckets[key] = TokenBucket(self.limits.rate, self.limits.burst, at=now)
        return bucket.take(now)

    async def _refuse(
        self, wait: float, send: Send, *, status: int = 429, reason: str | None = None
    ) -> None:
        if self.limits.hold_s > 0 and status == 429:
            await asyncio.sleep(min(wait, self.limits.hold_s))
            wait = max(0.0, wait - self.limits.hold_s)
        retry = max(1, math.ceil(wait))
        reason = reason or (
            f"more than {self.limits.burst} page renders at once or "
            f"{self.limits.rate:g} per second from this address"
        )
        body = json.dumps(
            {
                "error": "render_rate_limited" if status == 429 else "render_queue_full",
                "detail": f"{reason}; retry in {retry} s",
                "retry_after_s": retry,
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
