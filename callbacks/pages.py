"""The router: the URL's path → the page shell (each page then fills itself from the URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dash import Dash, Input, Output, no_update
from dash.development.base_component import Component

from layouts import ids
from layouts import overview as overview_layout
from layouts import wall as wall_layout
from layouts.pages import page_of

if TYPE_CHECKING:
    from app import Services


def register(app: Dash, services: Services) -> None:
    tile_url, tz = services.settings.tile_url, services.settings.timezone

    @app.callback(Output(ids.App.PAGE, "children"), Input(ids.App.URL, "pathname"))
    def route(pathname: object) -> Component | Any:
        if not isinstance(pathname, str):  # None: the location has not read the browser's URL yet
            return no_update
        if page_of(pathname) == "wall":
            return wall_layout.page(tile_url, tz)
        return overview_layout.page()
