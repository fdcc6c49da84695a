"""The projector's consumer loop: bus → projector (SQL) → live state, then acknowledge.

Acknowledge only after the SQL commit: a crash between the two redelivers the batch, and the
projector's idempotency makes the redelivery a no-op. On start the live state is rebuilt from SQL,
which already holds everything applied before the crash.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from data_sources.bus import Bus, Delivery
from data_sources.directory import Directory
from data_sources.events import Event, decode, decode_many
from data_sources.live import LiveState
from data_sources.projector import Projection, project

log = logging.getLogger(__name__)
GROUP = "projector"
#: Allocations between first-generation garbage collections while the projector runs. Each event
#: makes dozens of short-lived objects (refcounting frees nearly all of them), so at the default
#: 700 the collector ran every few events and, scanning the long-lived directory and live state
#: in its older generations, took about a third of the projector's CPU (story mix: 9,700 → 14,000
#: events/s of CPU with 10,000; the same as with the collector off).
GC_GEN0 = 10_000


def tune_gc() -> None:
    """Set the process's collector for a projector's allocation pattern (see `GC_GEN0`)."""
    gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])


#: A consumer's pending entries older than this are taken over by another (it crashed).
STALE_MS = 30_000


@dataclass
class ProjectorLoop:
    bus: Bus
    sessions: sessionmaker[Session]
    directory: Callable[[], Directory]
    live: LiveState
    tz: tzinfo
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{id(object())}")
    batch: int = 1_000
    block_ms: int = 1_000
    stale_ms: int = STALE_MS
    #: Called after each committed batch (the hub's hook for view deltas).
    on_projection: Callable[[Projection], None] | None = None
    applied: int = 0
    #: When stale entries were last looked for (time.monotonic(); None: never).
    _claimed_at: float | None = None

    def _project(self, deliveries: list[Delivery]) -> Projection:
        events = self._decode(deliveries)
        with self.sessions() as session, session.begin():
            return project(session, events, directory=self.directory(), tz=self.tz)

    async def fetch(self) -> list[Delivery]:
        """The next batch: a crashed consumer's stale entries when it is time to look for them
        (at start, then every `stale_ms / 2`; looking on every batch would cost a round trip
        each), else new entries."""
        now = time.monotonic()
        if self._claimed_at is None or now - self._claimed_at >= self.stale_ms / 2000:
            self._claimed_at = now
            stale = await self.bus.claim_stale(
                GROUP, self.consumer, min_idle_ms=self.stale_ms, count=self.batch
            )
            if stale:
                self._claimed_at = None  # there may be more: look again next time
                return stale
        return await self.bus.read(GROUP, self.consumer, count=self.batch, block_ms=self.block_ms)

    async def handle(self, deliveries: list[Delivery]) -> None:
        """Project a batch (SQL commit), move live state along, then acknowledge."""
        if not deliveries:
            return
        projection = await asyncio.to_thread(self._project, deliveries)
        self.live.apply(projection)
        self.applied += projection.applied
        if self.on_projection is not None:
            self.on_projection(projection)
        await self.bus.ack(GROUP, [d.position for d in deliveries])

    async def step(self) -> int:
        """Fetch and handle one batch; how many entries it handled."""
        deliveries = await self.fetch()
        await self.handle(deliveries)
        return len(deliveries)

    def _decode(self, deliveries: list[Delivery]) -> list[Event]:
        try:
            events = decode_many([d.data for d in deliveries])
            # An entry holding two objects ("{…},{…}", invalid alone) would decode as two events.
            if len(events) == len(deliveries):
                return events
        except ValidationError:
            pass  # find the bad entry (or entries) one by one
        events = []
        for delivery in deliveries:
            try:
                events.append(decode(delivery.data))
            except ValidationError:
                # Only ingest publishes, and it validates: an undecodable entry is a bug or a
                # foreign writer. Log it and let it be acknowledged rather than block the stream.
                log.exception("undecodable bus entry %s dropped", delivery.position)
        return events

    async def run(self) -> None:
        """Consume until cancelled; survives bus and database outages by retrying each second.

        The next batch is fetched while the current one is projected (bus round trips overlap the
        SQL work). The group is (re)created after every failure: a Redis restarted without
        persistence has lost it, and reading a missing group would fail forever. Entries fetched
        but not handled when a step fails stay pending and come back through `claim_stale`.
        """
        healthy = False
        ahead: asyncio.Task[list[Delivery]] | None = None
        try:
            while True:
                try:
                    if not healthy:
                        await self.bus.ensure_group(GROUP)
                        healthy = True
                    deliveries = await (ahead if ahead is not None else self.fetch())
                    ahead = asyncio.create_task(self.fetch())
                    await self.handle(deliveries)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    healthy = False
                    _discard(ahead)
                    ahead = None
                    log.exception("projector step failed; retrying in 1 s")
                    await asyncio.sleep(1)
        finally:
            _discard(ahead)


def _discard(task: asyncio.Task[list[Delivery]] | None) -> None:
    """Cancel a fetch ahead whose result will not be used (its entries stay pending)."""
    if task is not None:
        task.cancel()
        task.add_done_callback(_ignore_result)


def _ignore_result(task: asyncio.Task[list[Delivery]]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log "exception never retrieved"
