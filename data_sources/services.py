"""The long-lived clients of one app process (`Services`), the build id and the store's clock."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import redis.asyncio as aioredis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from data_sources.access.audit import Auditor
from data_sources.access.identity import Identity
from data_sources.access.keys import KeyRing
from data_sources.access.model import Principal
from data_sources.access.sessions import SessionStore, open_session_store
from data_sources.bus import Bus
from data_sources.bus.redis_streams import RedisStreamBus
from data_sources.bus.sql import SqlBus
from data_sources.capacity import run_ingest
from data_sources.db import is_migrated, make_engine, make_sessionmaker
from data_sources.directory import Directory, empty_directory, load_directory
from data_sources.embed.identity import EmbedIdentity
from data_sources.health import unavailable
from data_sources.hub import Hub, open_count
from data_sources.ingest import Ingestor
from data_sources.live import LiveState, load_live_state
from data_sources.metrics import Metrics
from data_sources.pipeline import PipelineHealth, ProjectorLoop, tune_gc
from data_sources.settings import Settings
from data_sources.simulator import EventFactory, LiveSimulator, SimPlaces
from data_sources.simulator_pace import FixedLoad, HistoryPace, Pace
from data_sources.wall import ON_DUTY
from data_sources.workhours import WorkCalendar

#: The repository root (this file is data_sources/services.py): what `build_id` hashes.
HERE = Path(__file__).resolve().parent.parent
log = logging.getLogger("gridcc")
#: How long a Redis command may take before Redis counts as unavailable (503 + Retry-After).
REDIS_TIMEOUT_S = 5.0


def utc_now() -> datetime:
    """Now as naive UTC, the convention of the whole store."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Services:
    """The long-lived clients of one app process, created once and closed in the lifespan."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    bus: Bus
    redis: aioredis.Redis | None = None
    clock: Callable[[], datetime] = field(default=utc_now)
    directory: Directory = field(default_factory=empty_directory)
    live: LiveState = field(default_factory=lambda: LiveState(None))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: The projector's loop once started (its `health()` feeds /readyz, metrics and the pages).
    projector: ProjectorLoop | None = None
    hub: Hub = field(init=False)
    metrics: Metrics = field(init=False)
    build: str = field(init=False)
    #: Ingest and admin API keys (hashed in SQL, cached briefly).
    keys: KeyRing = field(init=False)
    #: Where signed-in sessions live: Redis when GRIDCC_REDIS_URL is set, else SQL.
    session_store: SessionStore = field(init=False)
    #: Who a request comes from (sessions, displays, anonymous visitors).
    identity: Identity = field(init=False)
    #: Who an embed's token stands for (portals' iframes).
    embed: EmbedIdentity = field(init=False)
    #: The audit log's writer for async code.
    audit: Auditor = field(init=False)
    #: The working days of case time limits (GRIDCC_WORK_CALENDAR and its extra days).
    calendar: WorkCalendar = field(init=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @classmethod
    def create(cls, settings: Settings) -> Services:
        """The clients for `settings`. Without Redis the bus is `SqlBus` on the system of record's
        own database: an event is committed there before its 202, so a crash loses nothing."""
        engine = make_engine(settings.database_url)
        # Timeouts: a hung Redis (kill -STOP) held an ingest for 30 s and answered 202; now it is
        # a 503 after REDIS_TIMEOUT_S. Longer than the projector's 1 s XREADGROUP block.
        redis = (
            aioredis.from_url(
                settings.redis_url,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
            if settings.redis_url
            else None
        )
        bus: Bus = (
            RedisStreamBus(redis, maxlen=settings.bus_maxlen)
            if redis is not None
            else SqlBus(engine, maxlen=settings.bus_maxlen)
        )
        return cls(settings, engine, make_sessionmaker(engine), bus, redis)

    def ingestor(self) -> Ingestor:
        return self._ingestor

    def __post_init__(self) -> None:
        self.build = build_id()
        self.calendar = WorkCalendar(
            self.settings.work_calendar,
            frozenset(self.settings.extra_holidays),
            frozenset(self.settings.extra_workdays),
        )
        self._ingestor = Ingestor(
            self.bus, self.sessions, lambda: self.directory, clock=lambda: self.clock()
        )
        self.hub = Hub(
            lambda: self.live,
            lambda: self.directory,
            tick_s=self.settings.tick_ms / 1000,
            tz=self.tz,
            clock=self.clock,
            refresh_s=self.settings.wall_refresh_s,
            health=self.pipeline_health,
        )
        self.metrics = Metrics(self.pipeline_health, lambda: self.hub.open_streams)
        self.keys = KeyRing(self.sessions, lambda: self.clock())
        self.session_store = open_session_store(self.settings.redis_url)
        self.identity = Identity(
            self.sessions,
            lambda: self.clock(),
            store=self.session_store,
            idle=timedelta(minutes=self.settings.session_idle_minutes),
            anonymous_scope=lambda: self.settings.anonymous_scope,
        )
        secret = self.settings.embed_secret
        self.embed = EmbedIdentity(
            self.sessions,
            configured_secret=secret.get_secret_value() if secret is not None else None,
            default_origins=tuple(self.settings.embed_allowed_origins),
            clock=lambda: self.clock().replace(tzinfo=UTC).timestamp(),
        )
        self.audit = Auditor(self.sessions, lambda: self.clock())

    async def still_allowed(self, principal: Principal) -> bool | None:
        """Whether `principal`'s credential still holds (live streams ask every heartbeat); None
        when the database cannot tell (the stream ends; the page, stale, reconnects)."""
        try:
            if principal.kind == "embed":
                return await asyncio.to_thread(lambda: self.embed.alive(principal) is None)
            return await asyncio.to_thread(self.identity.alive, principal)
        except Exception as exc:
            if unavailable(exc) is None:
                raise
            return None

    def pipeline_health(self) -> PipelineHealth | None:
        """The projector's health; None until it runs."""
        return self.projector.health() if self.projector is not None else None

    def open_now(self, node_id: int) -> int:
        """Open cases of a node right now, from live state."""
        return open_count(self.live.counts_of(node_id))

    def load(self) -> None:
        """Load the directory and rebuild live state from SQL (blocking: run in a thread)."""
        if not is_migrated(self.engine):
            log.warning("database has no schema yet: run `gridcc db upgrade` (or `gridcc demo`)")
            return
        if seeded := self.keys.seed(self.settings.api_keys):
            log.info("API keys: %d seeded from GRIDCC_API_KEYS", seeded)
        with self.sessions() as session:
            self.directory = load_directory(session=session)
            self.live = load_live_state(
                session=session,
                root_id=self.directory.root_id,
                positions_since=self.clock() - ON_DUTY,
            )
        log.info(
            "directory: %d nodes, %d cameras, %d workers",
            len(self.directory.nodes),
            len(self.directory.cameras),
            len(self.directory.workers),
        )

    async def start(self) -> None:
        tune_gc()
        await asyncio.to_thread(self.load)
        self.projector = ProjectorLoop(
            self.bus,
            self.sessions,
            lambda: self.directory,
            self.live,
            self.tz,
            self.calendar,
            on_projection=self.hub.on_projection,
            sole_consumer=isinstance(self.bus, SqlBus),
        )
        self.tasks.append(asyncio.create_task(self.projector.run(), name="gridcc-projector"))
        self.tasks.append(asyncio.create_task(self.hub.run(), name="gridcc-hub"))
        self.tasks.append(asyncio.create_task(self.hub.run_refreshes(), name="gridcc-refresh"))
        self.tasks.append(asyncio.create_task(self.hub.run_status(), name="gridcc-status"))
        simulate = self.settings.simulate or self.settings.simulate_rate > 0
        if simulate and self.directory.root_id is not None:
            simulator = await asyncio.to_thread(self._simulator)
            self.tasks.append(asyncio.create_task(simulator.run(), name="gridcc-simulator"))

    def _simulator(self) -> LiveSimulator:
        rate = self.settings.simulate_rate
        with self.sessions() as session:
            places = SimPlaces.load(session=session)
            pace: Pace = (
                FixedLoad(rate, self.tz) if rate else HistoryPace.load(session=session, tz=self.tz)
            )
        started = int(time.time())
        factory = EventFactory(
            places, self.directory, np.random.default_rng(started), prefix=f"sim{started:x}"
        )
        ingestor = self.ingestor()

        async def publish(raw: list[dict[str, Any]]) -> None:
            # The same path as real feeds: validation, resolution, bus.
            valid = await run_ingest(ingestor.validate, raw)
            await ingestor.publish(valid.events)

        return LiveSimulator(
            factory,
            publish,
            pace,
            speed=self.settings.simulate_speed,
            clock=self.clock,
        )

    async def aclose(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.bus.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        self.session_store.close()
        self.engine.dispose()


def build_id() -> str:
    """Changes with the code or the assets: open pages reload when a new build serves them."""
    digest = hashlib.sha256(importlib.metadata.version("gridcc").encode())
    sources = [
        HERE / "app.py",
        *(HERE / d for d in ("assets", "layouts", "callbacks", "data_sources")),
    ]
    for root in sources:
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if path.is_file() and path.suffix in (".py", ".js", ".css"):
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
