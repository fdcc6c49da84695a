"""The baseline of bench_latency: an ordinary Dash page that polls SQL every second.

A `dcc.Interval(interval=1000)` fires a server callback that reads the newest cases of the page's
scope with gridcc's own feed query (`store.latest_cases`, as many as the overview's feed shows) and
renders their titles with the overview's feed classes. Same database as the gridcc server under test.

    GRIDCC_DATABASE_URL=sqlite:///city.db uvicorn bench.polling_app:create_app --factory
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

import dash
from dash import Input, Output, State, dcc, html
from dash.development.base_component import Component
from fastapi import FastAPI
from pydantic_settings import BaseSettings, SettingsConfigDict

from data_sources import store
from data_sources.db import make_engine, make_sessionmaker
from data_sources.overview import FEED_LENGTH


class Settings(BaseSettings):
    """Only the database, from the same variable as gridcc's. Not `app.Settings`: importing `app`
    would register gridcc's component libraries (Bootstrap, Leaflet) and load them on this page."""

    model_config = SettingsConfigDict(env_prefix="GRIDCC_", extra="ignore")

    database_url: str = "sqlite:///gridcc.db"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The polling page on `/?scope=<code>`, and `/healthz`."""
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            engine.dispose()

    server = FastAPI(title="polling baseline", lifespan=lifespan)

    @server.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app = dash.Dash(
        __name__,
        server=server,  # type: ignore[arg-type]  # Dash's stubs still say Flask-only
        backend="fastapi",
        title="polling baseline",
        update_title=None,  # type: ignore[arg-type]
        serve_locally=True,
    )
    app.layout = html.Div(
        [
            dcc.Location(id="poll-url", refresh=False),
            dcc.Interval(id="poll-interval", interval=1000),
            html.Div(id="poll-feed", className="gridcc-feed"),
        ]
    )

    def titles(scope: str | None) -> list[str]:
        with sessions() as session:
            node = store.node_by_code(session=session, code=scope) if scope else None
            node = node or store.root_node(session=session)
            if node is None:
                return []
            cases = store.latest_cases(session=session, node=node, limit=FEED_LENGTH)
            return [c.title for c in cases]

    @app.callback(
        Output("poll-feed", "children"),
        Input("poll-interval", "n_intervals"),
        State("poll-url", "search"),
    )
    async def feed(_n: int | None, search: str | None) -> list[Component]:
        scope = parse_qs((search or "").lstrip("?")).get("scope", [None])[0]
        # The store is synchronous: keep the event loop free, as gridcc's own callbacks do.
        found = await asyncio.to_thread(titles, scope)
        return [
            html.Div(html.Span(title, className="gridcc-feed-title"), className="gridcc-feed-item")
            for title in found
        ]

    return server
