"""The projector's consumer loop: bus → projector (SQL) → live state, then acknowledge.

Acknowledge only after the SQL commit: a crash between the two redelivers the batch, and the
projector's idempotency makes the redelivery a no-op. On start the live state is rebuilt from SQL,
which already holds everything applied before the crash.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from data_sources.bus import Bus, Delivery
from data_sources.directory import Directory
from data_sources.events import Event, decode
from data_sources.live import LiveState
from data_sources.projector import Projection, project

log = logging.getLogger(__name__)
GROUP = "projector"
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

    def _project(self, events: list[Event]) -> Projection:
        with self.sessions() as session, session.begin():
            return project(session, events, directory=self.directory(), tz=self.tz)

    async def step(self) -> int:
        """Process one batch (stale entries first); how many entries it handled."""
        deliveries = await self.bus.claim_stale(
            GROUP, self.consumer, min_idle_ms=self.stale_ms, count=self.batch
        )
        if not deliveries:
            deliveries = await self.bus.read(
                GROUP, self.consumer, count=self.batch, block_ms=self.block_ms
            )
        if not deliveries:
            return 0
        events = self._decode(deliveries)
        projection = await asyncio.to_thread(self._project, events)
        self.live.apply(projection)
        self.applied += projection.applied
        if self.on_projection is not None:
            self.on_projection(projection)
        await self.bus.ack(GROUP, [d.position for d in deliveries])
        return len(deliveries)

    def _decode(self, deliveries: list[Delivery]) -> list[Event]:
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

        The group is (re)created after every failure: a Redis restarted without persistence has
        lost it, and reading a missing group would fail forever.
        """
        healthy = False
        while True:
            try:
                if not healthy:
                    await self.bus.ensure_group(GROUP)
                    healthy = True
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                healthy = False
                log.exception("projector step failed; retrying in 1 s")
                await asyncio.sleep(1)
