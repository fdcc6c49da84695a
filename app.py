"""Wiring: the app factory, its lifespan and its routes. The only module that reads the environment
(`Settings()`, here or in cli.py); imported by nothing but the ASGI server and cli.py.

Run with `uvicorn app:create_app --factory` (or `gridcc serve` / `gridcc demo`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import dash
import flask_bootstrap
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.requests import ClientDisconnect, Request

from callbacks import admin as admin_callbacks
from callbacks import case_page as case_page_callbacks
from callbacks import case_table as case_table_callbacks
from callbacks import follow_lists as follow_list_callbacks
from callbacks import overview as overview_callbacks
from callbacks import pages as page_callbacks
from callbacks import wall as wall_callbacks
from data_sources.access.guard import AccessGuard, CallbackPolicies
from data_sources.access.headers import SecurityHeaders, content_security_policy
from data_sources.access.login import login_router
from data_sources.access.model import AccessError
from data_sources.access.routes import display_router
from data_sources.alarm_actions import alarm_router
from data_sources.capacity import RenderGate, RenderLimits, tune_gil
from data_sources.cases.routes import READ_PREFIXES, register_case_routes
from data_sources.dead_letters import dead_letters_router
from data_sources.embed.api import embed_router
from data_sources.embed.tokens import TokenLimits
from data_sources.health import (
    UNAVAILABLE_ERRORS,
    ReadyLimits,
    StoreProbe,
    readiness,
    unavailable_handler,
)
from data_sources.ingest import ingest_router
from data_sources.metrics import CONTENT_TYPE
from data_sources.services import Services
from data_sources.settings import Settings
from data_sources.stream import live_router
from data_sources.web import (
    DashGuard,
    HeadAsGet,
    PagesOnly,
    client_gone,
    serve_api_docs,
    validation_problem,
)
from layouts import pages

HERE = Path(__file__).resolve().parent
BOOTSTRAP_DIR = Path(flask_bootstrap.__file__).parent / "static" / "bootstrap5"
log = logging.getLogger("gridcc")


def create_dash(server: FastAPI, services: Services, policies: CallbackPolicies) -> dash.Dash:
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
    )
    app.index_string = pages.INDEX_STRING.replace("{build}", services.build)
    # The pages (`/`, `/wall`) are swapped in by the router: their ids are not in the shell. Set
    # before the layout, or Dash would take the shell alone for the validation layout.
    settings = services.settings
    app.validation_layout = pages.validation_layout(  # type: ignore[assignment]  # stubs: None
        settings.tile_url, settings.timezone
    )
    app.layout = pages.shell
    # Each registers its callbacks with the access policy each needs (data_sources/access/guard).
    page_callbacks.register(app, services, policies)
    overview_callbacks.register(app, services, policies)
    case_table_callbacks.register(app, services, policies)
    follow_list_callbacks.register(app, services, policies)
    case_page_callbacks.register(app, services, policies)
    wall_callbacks.register(app, services, policies)
    admin_callbacks.register(app, services, policies)
    page_callbacks.check_ids(app)  # an id typo fails here, at startup
    server_callbacks = [key for key, spec in app.callback_map.items() if "callback" in spec]
    if unguarded := policies.undeclared(server_callbacks):
        raise RuntimeError(f"callbacks without an access policy: {unguarded}")
    return app


async def access_refused(_request: Request, exc: Exception) -> JSONResponse:
    """401 / 403 / 404 for a request refused inside a route or a callback (never a 500)."""
    assert isinstance(exc, AccessError)
    return JSONResponse({"detail": exc.reason}, status_code=exc.status_code)


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
    server.add_exception_handler(AccessError, access_refused)

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
        ingest_router(services.ingestor, services.keys, services.metrics.count_ingest)
    )
    server.include_router(
        dead_letters_router(services.sessions, lambda: services.bus, services.keys, services.audit)
    )
    server.include_router(
        alarm_router(
            ingestor=services.ingestor,
            sessions=services.sessions,
            directory=lambda: services.directory,
            clock=lambda: services.clock(),
            keys=services.keys,
            audit=services.audit,
        )
    )
    server.include_router(
        live_router(
            lambda: services.hub,
            lambda: services.directory,
            build_id=services.build,
            heartbeat_s=settings.heartbeat_s,
            reconnect_max_s=settings.reconnect_max_s,
            alive=services.still_allowed,
            embed_regions=wall_callbacks.granted_regions,
        )
    )
    server.include_router(
        login_router(
            sessions=services.sessions,
            store=services.session_store,
            clock=lambda: services.clock(),
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_hours),
            default_lang=settings.default_lang,
            tz=services.tz,
        )
    )
    server.include_router(display_router(services.sessions, lambda: services.clock()))
    server.include_router(
        embed_router(
            sessions=services.sessions,
            keys=services.keys,
            secret=services.embed.secret,
            clock=lambda: services.clock(),
            limits=TokenLimits(settings.embed_token_default_s, settings.embed_token_max_s),
            audit=services.audit,
        )
    )
    register_case_routes(server, services)  # the case API and exports (read routes below)
    policies = CallbackPolicies()
    dash_app = server.state.dash = create_dash(server, services, policies)

    def embed_csp(origins: tuple[str, ...]) -> str:
        """An embed page's policy: framed by its grant's origins only (none: by no one)."""
        return content_security_policy(
            dash_app.csp_hashes(),
            tile_url=settings.tile_url,
            frame_ancestors=" ".join(origins) or "'none'",
        )

    render_limits = RenderLimits(
        settings.render_rate, settings.render_burst, settings.render_concurrency
    )
    # Outside Dash's middleware, which reads every callback body before the route runs.
    server.add_middleware(RenderGate, limits=render_limits)
    # Outside the render gate: whoever may not render never takes a render slot.
    server.add_middleware(
        AccessGuard,
        identity=services.identity,
        directory=lambda: services.directory,
        policies=policies,
        pages=("/", *pages.WALL_PATHS, *pages.CASE_PATHS),
        admin_pages=pages.ADMIN_PATHS,
        read_prefixes=READ_PREFIXES,
        embed_pages=pages.EMBED_PATHS,
        embed=services.embed,
        embed_csp=embed_csp,
        audit=services.audit,
    )
    # Outside the access guard: a callback's body is read and checked (and handed to it) first.
    server.add_middleware(DashGuard, dash_app=dash_app)
    # Other paths: 404.
    server.add_middleware(
        PagesOnly,
        pages=("/", *pages.WALL_PATHS, *pages.ADMIN_PATHS, *pages.CASE_PATHS, *pages.EMBED_PATHS),
    )
    server.add_middleware(HeadAsGet)  # `HEAD` wherever `GET` is, Dash's routes included
    # Outermost: every answer carries them, 404s, 503s and refusals included.
    csp = content_security_policy(dash_app.csp_hashes(), tile_url=settings.tile_url)
    server.add_middleware(SecurityHeaders, csp=csp)
    return server
