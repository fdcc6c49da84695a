"""Wiring: settings, services, lifespan and the app factory. The only module that reads the environment.

Run with `uvicorn app:create_app --factory` (or `gridcc serve` / `gridcc demo`).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dash
import flask_bootstrap
import numpy as np
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import ClientDisconnect

from callbacks import overview as overview_callbacks
from callbacks import pages as page_callbacks
from callbacks import wall as wall_callbacks
from data_sources.alarm_actions import alarm_router
from data_sources.bus import Bus
from data_sources.bus.redis_streams import RedisStreamBus
from data_sources.bus.sql import SqlBus
from data_sources.capacity import RenderGate, RenderLimits, run_ingest, tune_gil
from data_sources.db import is_migrated, make_engine, make_sessionmaker
from data_sources.dead_letters import dead_letters_router
from data_sources.directory import Directory, empty_directory, load_directory
from data_sources.health import (
    UNAVAILABLE_ERRORS,
    ReadyLimits,
    StoreProbe,
    readiness,
    unavailable_handler,
)
from data_sources.hub import Hub, open_count
from data_sources.ingest import Ingestor, ingest_router
from data_sources.live import LiveState, load_live_state
from data_sources.metrics import CONTENT_TYPE, Metrics
from data_sources.pipeline import PipelineHealth, ProjectorLoop, tune_gc
from data_sources.simulator import EventFactory, LiveSimulator, SimPlaces
from data_sources.simulator_pace import FixedLoad, HistoryPace, Pace
from data_sources.stream import live_router
from data_sources.wall import ON_DUTY
from data_sources.web import (
    DashGuard,
    HeadAsGet,
    PagesOnly,
    client_gone,
    serve_api_docs,
    validation_problem,
)
from layouts import overview as overview_layout
from layouts import pages

HERE = Path(__file__).resolve().parent
BOOTSTRAP_DIR = Path(flask_bootstrap.__file__).parent / "static" / "bootstrap5"
log = logging.getLogger("gridcc")
#: How long a Redis command may take before Redis counts as unavailable (503 + Retry-After).
REDIS_TIMEOUT_S = 5.0


class Settings(BaseSettings):
    """gridcc's configuration, from `GRIDCC_*` environment variables (or a `.env` file)."""

    model_config = SettingsConfigDict(env_prefix="GRIDCC_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///gridcc.db", description="SQLAlchemy URL of the system of record."
    )
    redis_url: str | None = Field(
        None, description="Redis URL for the event bus and live state; unset = in-process."
    )
    timezone: str = Field("Asia/Shanghai", description="Zone for 'today' and working hours.")
    kpi_window_days: int = Field(30, ge=1, le=3660, description="Days of cases the KPIs cover.")
    default_lang: str = Field("zh", pattern="^(zh|en)$", description="UI language without ?lang=.")
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description='Ingest API keys per source, as JSON: {"hotline": "key1", "frigate": "key2"}.',
    )
    bus_maxlen: int = Field(1_000_000, ge=1_000, description="Events kept on the bus stream.")
    # 100 ms, not 250: under a steady flow of events a change waits up to one frame period for
    # its frame, so with 250 ms the wait alone has a p95 of 237 ms, leaving nothing of the
    # p95 ≤ 250 ms event→browser target (bench/bench_latency.py) for the pipeline and the browser.
    tick_ms: int = Field(100, ge=10, le=10_000, description="Frame period of live view deltas.")
    heartbeat_s: float = Field(15, gt=0, le=300, description="Live stream heartbeat period.")
    reconnect_max_s: float = Field(
        5,
        ge=0.5,
        le=300,
        description="Cap of a page's reconnect backoff after a refused stream (e.g. a proxy's 503): "
        "a page recovers at most this long (+20 % jitter) after the server is back.",
    )
    simulate: bool = Field(
        False,
        description="Run the city simulator in-process (`gridcc demo` sets it): new cases follow "
        "the seeded history's daily volume and hourly profile, alarms and GPS fixes the seed's rates.",
    )
    simulate_rate: float = Field(
        0,
        ge=0,
        le=100_000,
        description="0: the simulator follows the seeded history. > 0: instead a fixed stress-test "
        "load of this many events/s (case, alarm and GPS storylines in a fixed mix, shaped by the "
        "time of day), whatever the history; also turns the simulator on.",
    )
    simulate_speed: float = Field(
        60,
        gt=0,
        le=10_000,
        description="How much faster than real time a simulated case's steps follow its report "
        "(not how many cases are reported).",
    )
    duty_officer: str = Field(
        "值班员",
        min_length=1,
        max_length=64,
        description="Who acknowledges alarms from the wall (recorded as the actor); "
        "until there are user accounts, one name per command centre.",
    )
    wall_actions: bool = Field(
        True,
        description="Offer 确认 / 转案件 on the wall's alarm ticker; false for a display-only "
        "instance (portals, leaders' laptops): no buttons, and the wall's action callback refuses.",
    )
    wall_refresh_s: float = Field(
        30,
        ge=0.5,
        le=3_600,
        description="How often the window figures of each watched scope (rates, funnel, "
        "categories, ranking, trend, channels, lists) are computed again and pushed to its walls: "
        "once per scope and period, however many walls watch it.",
    )
    # A wall page asks for 2 renders when it loads, 1 per drill, carousel step or resync: a
    # video-wall PC loading 8 screens at once takes 16 of the burst (data_sources/capacity.py).
    render_rate: float = Field(
        5, gt=0, le=10_000, description="Page renders per second per client address, sustained."
    )
    render_burst: int = Field(
        30, ge=1, le=100_000, description="Page renders a client address may ask for at once."
    )
    # 40 render loops at once took ingest's p95 from 9 ms to 2.3 s. Queued, they cannot: ingest's
    # p95 under them is 1.15-1.57x its p95 alone with 1 running, 4.7-5x with 2 (a render holds the
    # GIL and the loop); bench/bench_ingest_load.py, data_sources/capacity.py.
    render_concurrency: int = Field(
        1, ge=1, le=1_000, description="Page renders running at once (the others queue)."
    )
    tile_url: str | None = Field(
        None,
        description="Map tile URL template ({z}/{x}/{y}) of an intranet tile server; unset = vector only.",
    )
    ready_max_lag_s: float = Field(
        60,
        gt=0,
        description="/readyz fails while the oldest event not yet applied is older than this.",
    )
    ready_max_stalled_s: float = Field(
        10,
        gt=0,
        description="/readyz fails while the projector has not completed a step for this long.",
    )


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


def create_dash(server: FastAPI, services: Services) -> dash.Dash:
    """The Dash app on `server`, with every asset served locally (command centres are offline)."""
    app = dash.Dash(
        __name__,
        server=server,  # type: ignore[arg-type]  # Dash's stubs still say Flask-only
        backend="fastapi",
        assets_folder=str(HERE / "assets"),
        title="gridcc",
        update_title=None,  # type: ignore[arg-type]  # None turns the tab-title flicker off
        serve_locally=True,
        external_stylesheets=["/vendor/bootstrap/css/bootstrap.min.css"],
        # The pages (`/`, `/wall`) are swapped in by the router: their ids are not in the shell.
        suppress_callback_exceptions=True,
    )
    app.index_string = overview_layout.INDEX_STRING.replace("{build}", services.build)
    app.layout = pages.shell
    page_callbacks.register(app, services)
    overview_callbacks.register(app, services)
    wall_callbacks.register(app, services)
    return app


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app: FastAPI routes plus the Dash pages, sharing one `Services`."""
    settings = settings or Settings()
    services = Services.create(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("gridcc up: database %s", services.engine.url.render_as_string())
        # Dash's FastAPI backend sets itself up (assets, scripts) on the first request for "/" or
        # "/_dash-*" only: a fresh process's first "/wall" would be served without assets/.
        server.state.dash._setup_server()
        tune_gil()  # renders must hand the GIL back to ingest and the loop soon
        await services.start()
        try:
            yield
        finally:
            await services.aclose()

    server = FastAPI(title="gridcc", lifespan=lifespan, docs_url=None, redoc_url=None)
    server.state.services = services
    server.mount("/vendor/bootstrap", StaticFiles(directory=BOOTSTRAP_DIR), name="bootstrap")
    serve_api_docs(server, "/api/docs")

    for error in UNAVAILABLE_ERRORS:  # Redis or the database down: 503 + Retry-After, not 500
        server.add_exception_handler(error, unavailable_handler)
    server.add_exception_handler(RequestValidationError, validation_problem)
    server.add_exception_handler(ClientDisconnect, client_gone)

    @server.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """The process is alive (nothing else is asked: a restart would not help the rest)."""
        return {"status": "ok"}

    store_probe = StoreProbe(services.engine)
    limits = ReadyLimits(settings.ready_max_lag_s, settings.ready_max_stalled_s)

    @server.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Ready for traffic: the store and the bus answer, the projector is within its limits."""
        ready, body = await readiness(
            store_probe, services.redis, services.pipeline_health(), limits
        )
        return JSONResponse(body, status_code=200 if ready else 503)

    @server.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(services.metrics.exposition(), media_type=CONTENT_TYPE)

    server.include_router(
        ingest_router(services.ingestor, settings.api_keys, services.metrics.count_ingest)
    )
    server.include_router(
        dead_letters_router(services.sessions, lambda: services.bus, settings.api_keys)
    )
    server.include_router(
        alarm_router(
            ingestor=services.ingestor,
            sessions=services.sessions,
            directory=lambda: services.directory,
            clock=lambda: services.clock(),
            api_keys=settings.api_keys,
        )
    )
    server.include_router(
        live_router(
            lambda: services.hub,
            lambda: services.directory,
            build_id=services.build,
            heartbeat_s=settings.heartbeat_s,
            reconnect_max_s=settings.reconnect_max_s,
        )
    )
    server.state.dash = create_dash(server, services)
    render_limits = RenderLimits(
        settings.render_rate, settings.render_burst, settings.render_concurrency
    )
    # Outside Dash's middleware, which reads every callback body before the route runs.
    server.add_middleware(RenderGate, limits=render_limits)
    # Outside the render gate: a callback's body is read and checked before a slot is taken.
    server.add_middleware(DashGuard, dash_app=server.state.dash)
    server.add_middleware(PagesOnly, pages=("/", *pages.WALL_PATHS))  # other paths: 404
    server.add_middleware(HeadAsGet)  # `HEAD` wherever `GET` is, Dash's routes included
    return server
