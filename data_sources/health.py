"""Health: the pipeline's state for every page, readiness for load balancers, 503 on an outage.

Heartbeats are not freshness (DESIGN "Traps seen" 10): a stream pings happily while Redis is down
and the projector applies nothing. So the projector's health (`PipelineHealth`, from
`ProjectorLoop.health()`) becomes one of three states that the hub pushes to every page — live,
behind (its data arrive late), stalled (they have stopped) — and `/readyz` fails when the store,
the bus or the projector is out of its limits. An outage of Redis or the database reaches a
client as 503 with `Retry-After`, never as a bare 500.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, cast

import redis.asyncio as aioredis
import redis.exceptions as redis_errors
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text
from sqlalchemy import exc as sa_errors

from data_sources.capacity import run_bus

log = logging.getLogger(__name__)

#: Lag over which a page shows "● 延迟 n 秒": the same 5 s as assets/live.js's DELAYED_MS, over
#: which a page already calls its own stream's data late.
BEHIND_LAG_S = 5.0
#: A healthy loop ends a step at least every `ProjectorLoop.block_ms` (1 s) even when idle, and a
#: batch of 1,000 story events takes ≈80 ms (README, bench_pipeline): 3 s without one is a stall.
STALLED_S = 3.0
#: Data this late are stale, not merely late ("● 数据已过期"), even if the loop still moves.
STALLED_LAG_S = 30.0
#: What a client should wait before trying again after a 503: the projector retries each second
#: and a prototype resumed 0.55 s after Redis came back (DESIGN "Traps seen" 9).
RETRY_AFTER_S = 5
#: A readiness probe answers within this, whatever hangs behind it (load balancers time out ~5 s).
PROBE_TIMEOUT_S = 2.0


class PipelineHealthLike(Protocol):
    """What `data_sources.pipeline.PipelineHealth` says (structural: any object with these)."""

    @property
    def lag_s(self) -> float: ...
    @property
    def stalled_s(self) -> float: ...
    @property
    def dead_letters(self) -> int: ...
    @property
    def applied(self) -> int: ...


class PipelineState(StrEnum):
    """What a page's badge says of the pipeline behind its stream."""

    LIVE = "live"  # 实时
    BEHIND = "behind"  # 延迟
    STALLED = "stalled"  # 数据已过期


def pipeline_state(health: PipelineHealthLike | None) -> PipelineState:
    """The state of a pipeline of `health` (no projector to ask: nothing says it is late)."""
    if health is None:
        return PipelineState.LIVE
    if health.stalled_s > STALLED_S or health.lag_s > STALLED_LAG_S:
        return PipelineState.STALLED
    if health.lag_s > BEHIND_LAG_S:
        return PipelineState.BEHIND
    return PipelineState.LIVE


def pipeline_status(
    health: PipelineHealthLike | None, previous: dict[str, Any] | None = None, now_ms: int = 0
) -> dict[str, Any]:
    """The `status` a page gets: `state`, `lag` (whole seconds its data are late) and, when
    stalled, `since` (server ms when its data were last current; None otherwise). A stall keeps
    the `since` it started with, so the badge's "自 hh:mm:ss" does not creep with each check."""
    state = pipeline_state(health)
    if health is None or state is PipelineState.LIVE:
        return {"state": state.value, "lag": 0, "since": None}
    since = None
    if state is PipelineState.STALLED:
        if previous is not None and previous["state"] == state.value and previous["since"]:
            since = previous["since"]  # the same stall: it began when the first check saw it
        else:
            now_ms = now_ms or int(time.time() * 1000)
            since = now_ms - int(max(health.stalled_s, health.lag_s) * 1000)
    return {"state": state.value, "lag": round(health.lag_s), "since": since}


# ---------------------------------------------------------------- readiness


@dataclass(frozen=True, slots=True)
class ReadyLimits:
    """Over these the projector is not ready (`Settings.ready_max_*`)."""

    max_lag_s: float = 60.0
    max_stalled_s: float = 10.0


@dataclass
class StoreProbe:
    """`SELECT 1` on the store in a thread, at most one at a time: a database that hangs (a
    blackholed PostgreSQL) would otherwise leave one stuck thread per probe."""

    engine: Engine
    _running: asyncio.Future[None] | None = field(default=None, init=False)

    def _select_one(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    async def check(self, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
        """None when the store answered within `timeout_s`, else why not."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(run_bus(self._select_one))
        try:
            await asyncio.wait_for(asyncio.shield(self._running), timeout_s)
        except TimeoutError:
            return f"no answer within {timeout_s:g} s"
        except Exception as exc:
            return _reason(exc)
        return None


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


async def bus_problem(
    redis: aioredis.Redis | None, timeout_s: float = PROBE_TIMEOUT_S
) -> str | None:
    """None when the bus answers (Redis PING; the in-process bus always does), else why not."""
    if redis is None:
        return None
    try:
        # redis-py types PING sync-or-async; on an asyncio client it is a coroutine.
        await asyncio.wait_for(cast(Awaitable[bool], redis.ping()), timeout_s)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except redis_errors.RedisError as exc:
        return _reason(exc)
    return None


def projector_problem(health: PipelineHealthLike | None, limits: ReadyLimits) -> str | None:
    """None when the projector runs within `limits`, else why not."""
    if health is None:
        return "not running"
    if health.stalled_s > limits.max_stalled_s:
        return f"stalled for {health.stalled_s:.1f} s (limit {limits.max_stalled_s:g} s)"
    if health.lag_s > limits.max_lag_s:
        return f"{health.lag_s:.1f} s behind (limit {limits.max_lag_s:g} s)"
    return None


async def readiness(
    store: StoreProbe,
    redis: aioredis.Redis | None,
    health: PipelineHealthLike | None,
    limits: ReadyLimits,
) -> tuple[bool, dict[str, Any]]:
    """Whether the process is ready, and the body `/readyz` answers with: each check's "ok" or
    its problem, and the projector's figures."""
    store_problem, bus = await asyncio.gather(store.check(), bus_problem(redis))
    problems = {
        "store": store_problem,
        "bus": bus,
        "projector": projector_problem(health, limits),
    }
    ready = all(p is None for p in problems.values())
    body: dict[str, Any] = {
        "status": "ready" if ready else "unavailable",
        "checks": {name: problem or "ok" for name, problem in problems.items()},
    }
    if health is not None:
        body["projector"] = {
            "lag_s": round(health.lag_s, 3),
            "stalled_s": round(health.stalled_s, 3),
            "dead_letters": health.dead_letters,
            "applied": health.applied,
        }
    return ready, body


# ---------------------------------------------------------------- 503 on an outage

#: SQLite's messages for a file that is there but cannot be used now (another writer, the disk).
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "unable to open",
    "disk i/o",
    "database or disk is full",
)
#: SQLSTATE classes of failures that are not the request's or the event's fault, for HTTP (503)
#: and for the projector (retry, never a dead letter) alike: connection (08), invalid transaction
#: state such as a read-only replica after a failover (25), authorization (28), missing database
#: (3D), rollback: deadlock, serialization (40), schema or permission (42), resources (53), lock
#: not available (55), shutdown, cancel (57), system (58), configuration (F0). Data exceptions
#: (22), integrity (23) and program limits (54) are the input's.
OUTAGE_SQLSTATES = frozenset({"08", "25", "28", "3D", "40", "42", "53", "55", "57", "58", "F0"})


def unavailable(exc: BaseException) -> str | None:
    """Which service an exception says is unavailable ("event bus", "database"), or None when it
    is a bug or a bad request rather than an outage (those stay 500 / 4xx)."""
    if isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError):
        return "event bus"  # BusyLoadingError (Redis loading its data) is a ConnectionError
    if isinstance(exc, redis_errors.ReadOnlyError | redis_errors.TryAgainError):
        return "event bus"  # a replica after a failover, a cluster slot moving
    if isinstance(exc, redis_errors.MasterDownError | redis_errors.ClusterDownError):
        return "event bus"
    if isinstance(exc, sa_errors.DBAPIError) and exc.connection_invalidated:
        return "database"
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if isinstance(exc, sa_errors.DBAPIError) and isinstance(sqlstate, str) and sqlstate:
        return "database" if sqlstate[:2] in OUTAGE_SQLSTATES else None  # as the projector says
    if isinstance(exc, sa_errors.InterfaceError | sa_errors.DisconnectionError):
        return "database"
    if isinstance(exc, sa_errors.TimeoutError):
        return "database"  # the pool had no connection to give within its timeout
    if isinstance(exc, sa_errors.OperationalError):
        if isinstance(exc.orig, sqlite3.OperationalError):
            # On SQLite OperationalError is also "no such column": a bug, not an outage.
            message = str(exc.orig).lower()
            return "database" if message.startswith(_SQLITE_UNAVAILABLE) else None
        return "database"  # PostgreSQL's: refused, shut down, too many clients, …
    return None


async def unavailable_handler(_request: Request, exc: Exception) -> JSONResponse:
    """The app's handler for the exceptions of `UNAVAILABLE_ERRORS`: 503 with `Retry-After` when
    a service is down; anything else of those types is re-raised (a 500, logged as a bug)."""
    what = unavailable(exc)
    if what is None:
        raise exc
    log.warning("%s unavailable: %s", what, _reason(exc))
    return JSONResponse(
        {"detail": f"{what} unavailable, retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


#: The exception types `unavailable_handler` is installed for.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.TryAgainError,
    redis_errors.MasterDownError,
    redis_errors.ClusterDownError,
    sa_errors.DBAPIError,  # OperationalError, InterfaceError and every other driver error
    sa_errors.DisconnectionError,
    sa_errors.TimeoutError,
)
