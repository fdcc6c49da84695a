"""The shell of every page: its HTML, one location and the page the URL's path asks for (`/`,
`/wall`, `/case`, `/admin` or `/embed`)."""

from __future__ import annotations

from dash import dcc, html
from dash.development.base_component import Component

from layouts import admin as admin_layout
from layouts import case_page as case_layout
from layouts import ids
from layouts import overview as overview_layout
from layouts import wall as wall_layout

#: The HTML around every page (Dash's index string); `{build}` is the build the page came from.
INDEX_STRING = """<!DOCTYPE html>
<html lang="zh-CN" data-bs-theme="dark">
    <head>
        {%metas%}
        <meta name="gridcc-build" content="{build}">
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""

#: Paths served by the wall; every other path shows the overview (never a blank page).
WALL_PATHS = ("/wall", "/wall/")
#: Paths of the administrators' page (users, displays, API keys, audit log).
ADMIN_PATHS = ("/admin", "/admin/")
#: Paths of a case's page (`/case?id=…`: its lifecycle, place, alarm and supervision).
CASE_PATHS = ("/case", "/case/")
#: Paths of an embed (`/embed?token=…`: some of the wall's panels in another site's iframe).
EMBED_PATHS = ("/embed", "/embed/")


def shell() -> Component:
    """The app layout: the page itself is filled from the URL's path by a callback."""
    return html.Div(
        [dcc.Location(id=ids.App.URL, refresh=False), html.Div(id=ids.App.PAGE)],
        className="gridcc-app",
    )


def page_of(pathname: str) -> str:
    """Which page a path shows: "wall", "embed", "admin", "case" or "overview"."""
    if pathname in WALL_PATHS:
        return "wall"
    if pathname in EMBED_PATHS:
        return "embed"
    if pathname in CASE_PATHS:
        return "case"
    return "admin" if pathname in ADMIN_PATHS else "overview"


def validation_layout(tile_url: str | None, tz: str) -> Component:
    """The shell with every page in it: what the callbacks' ids are checked against, since the
    pages are swapped in by the router and their ids are not in the shell."""
    return html.Div(
        [
            shell(),
            overview_layout.page({}),
            case_layout.page(),
            wall_layout.page(tile_url, tz),
            admin_layout.validation_page(),
        ]
    )
