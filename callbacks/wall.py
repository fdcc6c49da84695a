"""Callbacks of the wall: the URL (scope, language, fit) → every region; a polygon click → the URL."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from dash import ClientsideFunction, Dash, Input, Output, State, no_update
from sqlalchemy.exc import SQLAlchemyError

from data_sources.model import Node
from data_sources.wall import WallFigures, load_wall, map_areas, on_duty
from data_sources.wall_geo import Area
from layouts import ids, wall_map, wall_panels
from layouts import wall as layout
from layouts.i18n import LANGS, Lang, t

if TYPE_CHECKING:
    from app import Services

log = logging.getLogger(__name__)
#: Scopes whose map outlines are kept in memory (outlines change only with the hierarchy).
AREA_CACHE = 256
W = ids.Wall
OUTPUTS = {
    "title": Output(W.TITLE, "children"),
    "breadcrumb": Output(W.BREADCRUMB, "children"),
    "kpis": Output(W.KPIS, "children"),
    "funnel": Output(W.FUNNEL, "children"),
    "categories": Output(W.CATEGORIES, "children"),
    "map_title": Output(W.MAP_TITLE, "children"),
    "legend": Output(W.LEGEND, "children"),
    "areas": Output(W.AREAS, "data"),
    "labels": Output(W.LABELS, "data"),
    "outline": Output(W.OUTLINE, "data"),
    "viewport": Output(W.MAP, "viewport"),
    "ranking": Output(W.RANKING, "children"),
    "alarms": Output(W.ALARMS, "children"),
    "feed": Output(W.FEED, "children"),
    "notice": Output(W.NOTICE, "children"),
}


def parse_wall_search(search: str | None, default_lang: Lang) -> tuple[str | None, Lang, str]:
    """(scope code, language, fit) from a query string like "?scope=530103&lang=en&fit=fill"."""
    query = parse_qs((search or "").lstrip("?"))
    scope = query.get("scope", [None])[0]
    lang = query.get("lang", [default_lang])[0]
    fit = query.get("fit", [layout.DEFAULT_FIT])[0]
    return (
        scope,
        lang if lang in LANGS else default_lang,
        fit if fit in layout.FITS else layout.DEFAULT_FIT,
    )


def regions(
    figures: WallFigures,
    *,
    lang: Lang,
    fit: str,
    tz: ZoneInfo,
    days: int,
    workers_on_duty: int,
    alarms: dict[str, int],
) -> dict[str, Any]:
    """Every region of the wall for one scope (the callback's outputs, by name)."""
    overview = figures.overview
    scope = overview.scope.node
    load = {c.node.code: c.kpis.open for c in overview.children}
    links = {c.node.code: layout.href(c.node.code, lang, fit) for c in overview.children}
    child = scope.level.child
    note = f"{t(f'level_{child.value}', lang)} × {len(figures.areas)}" if child else ""
    return {
        "title": layout.title(figures, lang),
        "breadcrumb": layout.breadcrumb(overview.lineage, lang, fit),
        "kpis": layout.kpi_tiles(figures, workers_on_duty, alarms.get(scope.code, 0), lang),
        "funnel": wall_panels.funnel_panel(figures.funnel, lang, days),
        "categories": wall_panels.categories_panel(figures.categories, lang, days),
        "map_title": wall_panels.panel_title_parts(t("map", lang), note),
        "legend": wall_map.legend(load.values(), lang),
        "areas": wall_map.areas_data(figures.areas, load, lang),
        "labels": wall_map.labels_data(figures.areas, load, lang),
        "outline": wall_map.outline_data(figures.outline),
        "viewport": wall_map.viewport(figures.areas, figures.outline) or no_update,
        "ranking": wall_panels.ranking_panel(overview, alarms, lang, links),
        "alarms": wall_panels.alarm_panel(figures.alarms, lang, tz),
        "feed": wall_panels.feed_panel(figures.cases, lang, tz),
        "notice": None,
    }


def register(app: Dash, services: Services) -> None:
    settings = services.settings
    cache: OrderedDict[int, tuple[list[Area], Area | None]] = OrderedDict()
    lock = threading.Lock()  # renders run in worker threads

    def areas(node: Node) -> tuple[list[Area], Area | None]:
        with lock:
            found = cache.get(node.id)
        if found is None:
            with services.sessions() as session:
                found = map_areas(session=session, node=node)
            with lock:
                cache[node.id] = found
                while len(cache) > AREA_CACHE:
                    cache.popitem(last=False)
        return found

    def load(scope: str | None) -> WallFigures | None:
        with services.sessions() as session:
            return load_wall(
                session=session,
                code=scope,
                now=services.clock(),
                tz=services.tz,
                window_days=settings.kpi_window_days,
                open_now=services.open_now,
                areas=areas,
            )

    def stay(notice: Any) -> dict[str, Any]:
        """Keep the last frame; show why over it."""
        return dict.fromkeys(OUTPUTS, no_update) | {"notice": notice}

    @app.callback(output=OUTPUTS, inputs={"search": Input(W.URL, "search")})
    async def render(search: str | None) -> dict[str, Any]:
        if search is None:
            return stay(no_update)  # the location has not read the browser's URL yet
        scope, lang, fit = parse_wall_search(search, settings.default_lang)
        try:
            # The store is synchronous: keep the event loop free for streams and other pages.
            figures = await asyncio.to_thread(load, scope)
        except SQLAlchemyError:
            log.exception("wall query failed")
            return stay(layout.notice(t("error_title", lang), t("error_body", lang)))
        if figures is None:
            return stay(layout.notice(t("no_data_title", lang), t("no_data_body", lang)))
        # Live state is moved along on the event loop: read it here, not in the thread.
        live = services.live
        node = figures.overview.scope.node
        fixes = ((fix.path, fix.ts) for fix in live.positions.values())
        codes = [node, *(c.node for c in figures.overview.children)]
        alarms = {n.code: live.open_alarms.get(n.id, 0) for n in codes}
        duty = on_duty(fixes, node, services.clock())
        return regions(
            figures,
            lang=lang,
            fit=fit,
            tz=services.tz,
            days=settings.kpi_window_days,
            workers_on_duty=duty,
            alarms=alarms,
        )

    app.clientside_callback(  # type: ignore[no-untyped-call]
        ClientsideFunction(namespace="gridccWall", function_name="drill"),
        Output(W.URL, "search"),
        Input(W.AREAS, "clickData"),
        State(W.URL, "search"),
        prevent_initial_call=True,
    )
