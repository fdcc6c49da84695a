"""The top-level shell: one location and the page the URL's path asks for (`/` or `/wall`)."""

from __future__ import annotations

from dash import dcc, html
from dash.development.base_component import Component

from layouts import ids

#: Paths served by the wall; every other path shows the overview (never a blank page).
WALL_PATHS = ("/wall", "/wall/")


def shell() -> Component:
    """The app layout: the page itself is filled from the URL's path by a callback."""
    return html.Div(
        [dcc.Location(id=ids.App.URL, refresh=False), html.Div(id=ids.App.PAGE)],
        className="gridcc-app",
    )


def page_of(pathname: str) -> str:
    """Which page a path shows: "wall" or "overview"."""
    return "wall" if pathname in WALL_PATHS else "overview"
