"""The command-centre wall `/wall`: a fixed 1920×1080 canvas that assets/wall.js scales to the screen.

The shell is static; a callback fills each region from the URL (scope, language). Live figures are
applied in the browser by assets/live.js and assets/wall.js.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from dash import dcc, html
from dash.development.base_component import Component

from data_sources.model import Node
from data_sources.wall import WallFigures
from layouts import ids
from layouts.i18n import Lang, number, t
from layouts.wall_map import map_view

FITS = ("letterbox", "fill", "width", "height")
DEFAULT_FIT = "letterbox"


def href(code: str, lang: Lang, fit: str, rotate: int | None = None) -> str:
    """The wall URL of node `code`, keeping the language, the fit and the carousel."""
    query = {"scope": code, "lang": lang}
    if fit != DEFAULT_FIT:
        query["fit"] = fit
    if rotate:
        query["rotate"] = str(rotate)
    return "/wall?" + urlencode(query)


def page(tile_url: str | None = None, tz: str = "Asia/Shanghai") -> Component:
    """The wall's shell: every region empty until the URL's callback fills it."""
    clock_data: dict[str, Any] = {"data-tz": tz}  # the clock shows the command centre's time
    canvas = html.Div(
        [
            html.Header(
                [
                    html.Div(
                        [
                            html.H1(id=ids.Wall.TITLE, className="wall-title"),
                            html.Nav(id=ids.Wall.BREADCRUMB, className="wall-breadcrumb"),
                        ],
                        className="wall-header-left",
                    ),
                    html.Div(
                        [
                            html.Span("●", id=ids.Wall.LIVE, className="wall-live"),
                            html.Span(id=ids.Wall.CLOCK, className="wall-clock", **clock_data),
                            html.Span(id=ids.Wall.DATE, className="wall-date"),
                        ],
                        className="wall-header-right",
                    ),
                ],
                className="wall-header",
            ),
            html.Div(id=ids.Wall.KPIS, className="wall-region wall-kpis"),
            html.Section(id=ids.Wall.FUNNEL, className="wall-panel wall-funnel"),
            html.Section(id=ids.Wall.CATEGORIES, className="wall-panel wall-categories"),
            html.Section(
                [
                    html.Div(id=ids.Wall.MAP_TITLE, className="wall-panel-title"),
                    html.Div(map_view(tile_url), className="wall-map-frame"),
                    html.Div(id=ids.Wall.LEGEND, className="wall-legend"),
                ],
                className="wall-panel wall-map-panel",
            ),
            html.Section(id=ids.Wall.TREND, className="wall-panel wall-trend"),
            html.Section(id=ids.Wall.CHANNELS, className="wall-panel wall-channels"),
            html.Section(id=ids.Wall.RANKING, className="wall-panel wall-ranking"),
            html.Section(id=ids.Wall.ALARMS, className="wall-panel wall-alarms"),
            html.Div(id=ids.Wall.ACTION_RESULT, className="wall-action-result"),
            html.Section(id=ids.Wall.FEED, className="wall-panel wall-feed"),
            html.Div(id=ids.Wall.NOTICE, className="wall-notice"),
        ],
        id=ids.Wall.CANVAS,
        className="wall-canvas",
    )
    return html.Div(
        [
            dcc.Location(id=ids.Wall.URL, refresh=False),
            dcc.Store(id=ids.Wall.ALARM_ACTION),
            dcc.Store(id=ids.Wall.RESYNC),
            html.Div(canvas, id=ids.Wall.VIEWPORT, className="wall-viewport"),
        ]
    )


def title(figures: WallFigures, lang: Lang) -> str:
    """The wall's title, named after the district (the city at city level): 盘龙区社会治理指挥中心."""
    lineage = figures.overview.lineage
    return t("command_centre", lang, place=lineage[min(1, len(lineage) - 1)].name(lang))


def breadcrumb(
    lineage: list[Node], lang: Lang, fit: str, rotate: int | None = None
) -> list[Component]:
    """Links up the hierarchy, ending with the scope itself (not a link)."""
    *ancestors, current = lineage
    parts: list[Component] = []
    for node in ancestors:
        parts.append(dcc.Link(node.name(lang), href=href(node.code, lang, fit, rotate)))
        parts.append(html.Span("›", className="wall-breadcrumb-sep"))
    parts.append(html.Span(current.name(lang), className="wall-breadcrumb-current"))
    # To the laptop view of the same area (a leader who opened the wall on a laptop): quiet on
    # the wall, where nobody clicks.
    laptop = "/?" + urlencode({"scope": current.code, "lang": lang})
    parts.append(html.A(t("to_laptop", lang), href=laptop, className="wall-to-laptop"))
    return parts


#: Characters of a tile's figure (value and unit) from which its type is set smaller, so that a
#: whole city's "7,000 / 7,000 人" or "25,000 / 25,000 people" fits its 183 design px.
LONG_FIGURE = (12, 14)


def kpi_tile(name: str, label: str, value: str, unit: str = "", tone: str = "") -> Component:
    """One tile; a value of "—" (no data: a building's rates) carries no unit ("— %" reads as a
    broken figure); a long figure is set smaller rather than cut."""
    if value == "—":
        unit = ""
    size = len(value) + len(unit)
    classes = ["wall-kpi", f"wall-kpi-{tone}" if tone else ""]
    classes += ["wall-kpi-long" if size >= LONG_FIGURE[0] else ""]
    classes += ["wall-kpi-longer" if size >= LONG_FIGURE[1] else ""]
    return html.Div(
        [
            html.Div(label, className="wall-kpi-label"),
            html.Div(
                [
                    html.Span(value, id=ids.wall_kpi(name), className="wall-kpi-value"),
                    html.Span(unit, className="wall-kpi-unit"),
                ],
                className="wall-kpi-figure",
            ),
        ],
        className=" ".join(c for c in classes if c),
    )


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}"


def kpi_tiles(figures: WallFigures, on_duty: int, alarms: int, lang: Lang) -> Component:
    """The 2×4 KPI tiles; `data-scope` and `data-lang` tell assets/live.js which scope they belong
    to (and in which language its refresh is drawn), and
    `data-children` (codes, comma-separated, in code order) tells the carousel where to go."""
    scope = figures.overview.scope
    k = scope.kpis
    cases, people = t("unit_cases", lang), t("unit_people", lang)
    tiles = [
        kpi_tile("new_today", t("new_today", lang), number(figures.new_today), cases),
        kpi_tile("open", t("open", lang), number(k.open), cases),
        kpi_tile("overdue", t("overdue", lang), number(k.overdue), cases, _warn(k.overdue, "red")),
        kpi_tile("closure_rate", t("closure_rate", lang), _rate(k.closure_rate), "%"),
        kpi_tile("on_time_rate", t("on_time_rate", lang), _rate(k.on_time_rate), "%", "good"),
        kpi_tile(
            "satisfaction_rate", t("satisfaction_rate", lang), _rate(k.satisfaction_rate), "%"
        ),
        kpi_tile(
            "active_alarms", t("alarms_now", lang), number(alarms), "", _warn(alarms, "amber")
        ),
        kpi_tile(
            "on_duty",
            t("on_duty", lang),
            number(on_duty),
            f"/ {number(figures.worker_total)} {people}".rstrip(),
        ),
    ]
    children = sorted(c.node.code for c in figures.overview.children)
    data: dict[str, Any] = {
        "data-scope": scope.node.code,
        "data-lang": lang,
        "data-children": ",".join(children),
    }
    return html.Div(tiles, className="wall-kpi-grid", **data)


def _warn(value: int, tone: str) -> str:
    return tone if value > 0 else ""


def notice(title_text: str, body: str, way: Component | None = None) -> Component:
    """Shown over the canvas when there is nothing to show: never a blank wall; `way` out."""
    parts = [html.H2(title_text), html.P(body)]
    if way is not None:
        parts.append(html.P(way))
    return html.Div(parts, className="wall-notice-box")
