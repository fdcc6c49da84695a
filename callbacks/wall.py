"""Callbacks of the wall: the URL (scope, language, fit) → every region; a polygon click → the URL."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections import OrderedDict
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dash import ClientsideFunction, Dash, Input, Output, State, html, no_update
from plotly.io.json import to_json_plotly
from sqlalchemy.exc import SQLAlchemyError

from callbacks.query import parse_query
from data_sources.access.guard import CallbackPolicies, CallbackPolicy, current_access
from data_sources.access.model import Forbidden, Permission, Scope
from data_sources.access.scope import from_own_area, scope_of
from data_sources.alarm_actions import (
    AlarmActionError,
    AlarmActionResult,
    AlarmPlan,
    act_on_alarm,
)
from data_sources.events import ID_PATTERN
from data_sources.ingest import IngestError
from data_sources.model import AlarmType, Level, Node
from data_sources.wall import WallFigures, load_wall, map_areas, on_duty
from data_sources.wall_geo import Area
from data_sources.wall_layers import ALARM_POINT_LEVELS, NEARBY_M
from layouts import ids, wall_charts, wall_map, wall_panels, wall_ranking
from layouts import wall as layout
from layouts.i18n import LANGS, Lang, t

if TYPE_CHECKING:
    from data_sources.services import Services

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
    "cameras": Output(W.CAMERAS, "data"),
    "workers": Output(W.WORKERS, "data"),
    "alarm_points": Output(W.ALARM_POINTS, "data"),
    "viewport": Output(W.MAP, "viewport"),
    "trend": Output(W.TREND, "children"),
    "channels": Output(W.CHANNELS, "children"),
    "ranking": Output(W.RANKING, "children"),
    "alarms": Output(W.ALARMS, "children"),
    "feed": Output(W.FEED, "children"),
    "notice": Output(W.NOTICE, "children"),
}
#: The regions the hub's periodic refresh sends every page of a scope (`Hub.refresh_s`): what a
#: fresh render would show now that no delta carries (window rates, funnel, categories, ranking
#: values and order, trend, channels, workers on duty, the lists). The map's outlines and points
#: do not change with the window; its colours and labels follow the deltas.
REFRESHED = ("kpis", "funnel", "categories", "trend", "channels", "ranking", "alarms", "feed")
#: The outputs of each panel an embed may be granted (data_sources/embed/panels.py `PANELS`);
#: an embed's render sends nothing of the panels its token does not grant.
PANEL_OUTPUTS = {
    "kpis": ("kpis",),
    "map": (
        "map_title",
        "legend",
        "areas",
        "labels",
        "outline",
        "cameras",
        "workers",
        "alarm_points",
        "viewport",
    ),
    "alarms": ("alarms",),
    "feed": ("feed",),
    "trend": ("trend",),
    "channels": ("channels",),
    "ranking": ("ranking",),
    "funnel": ("funnel",),
    "categories": ("categories",),
}


def granted_regions(panels: frozenset[str]) -> frozenset[str]:
    """The component ids of `panels` (an embed's stream passes their refresh regions only)."""
    names = {name for panel in panels for name in PANEL_OUTPUTS.get(panel, ())}
    return frozenset(str(OUTPUTS[name].component_id) for name in names)


def granted(drawn: dict[str, Any], panels: frozenset[str]) -> dict[str, Any]:
    """`drawn` with nothing of the panels not in `panels` (an embed's token's)."""
    kept = {name for panel in panels for name in PANEL_OUTPUTS.get(panel, ())}
    withheld = {name for names in PANEL_OUTPUTS.values() for name in names} - kept
    return drawn | dict.fromkeys(withheld, no_update)


def parse_wall_search(search: object, default_lang: Lang) -> tuple[str | None, Lang, str]:
    """(scope code, language, fit) from a query string like "?scope=530103&lang=en&fit=fill".

    `search` comes from the request's JSON: anything that is not a string is no query at all.
    """
    query = parse_query(search)
    scope = query.get("scope", [None])[0]
    lang = query.get("lang", [default_lang])[0]
    fit = query.get("fit", [layout.DEFAULT_FIT])[0]
    return (
        scope,
        lang if lang in LANGS else default_lang,
        fit if fit in layout.FITS else layout.DEFAULT_FIT,
    )


def parse_rotate(search: object) -> int | None:
    """The carousel's period in seconds from "?rotate=60", or None (absent, not a positive integer).

    Only ASCII digits, at most 9: `str.isdigit` accepts "²³", which `int` refuses (a 500).
    """
    query = parse_query(search)
    value = query.get("rotate", [""])[0]
    ok = value.isascii() and value.isdigit() and len(value) <= 9
    return int(value) if ok and int(value) > 0 else None


def regions(
    figures: WallFigures,
    *,
    lang: Lang,
    fit: str,
    rotate: int | None = None,
    tz: ZoneInfo,
    days: int,
    workers_on_duty: int,
    alarms: dict[str, int],
    actions: bool = True,
) -> dict[str, Any]:
    """Every region of the wall for one scope (the callback's outputs, by name)."""
    overview = figures.overview
    scope = overview.scope.node
    load = {c.node.code: c.kpis.open for c in overview.children}
    cameras_per_child = {c.node.code: c.resources.cameras for c in overview.children}
    # The lists say where each line is: the child of the scope, named as the ranking names it.
    places = {
        c.node.code: wall_ranking.short_name(c.node.name(lang), scope.name(lang))
        for c in overview.children
    }
    child = scope.level.child
    note = f"{t(f'level_{child.value}', lang)} × {len(figures.areas)}" if child else ""
    return {
        "title": layout.title(figures, lang),
        "breadcrumb": layout.breadcrumb(overview.lineage, lang, fit, rotate),
        "kpis": layout.kpi_tiles(figures, workers_on_duty, alarms.get(scope.code, 0), lang),
        "funnel": wall_panels.funnel_panel(figures.funnel, lang, days),
        "categories": wall_panels.categories_panel(figures.categories, lang, days),
        "map_title": wall_panels.panel_title_parts(t("map", lang), note),
        "legend": wall_map.legend(figures.scale, lang, points=scope.level in ALARM_POINT_LEVELS),
        "areas": wall_map.areas_data(figures.areas, load, lang, figures.scale),
        "labels": wall_map.labels_data(
            figures.areas,
            load,
            lang,
            None if figures.cameras else cameras_per_child,
            None if scope.level in ALARM_POINT_LEVELS else figures.area_alarms,
            places,
        ),
        "outline": wall_map.outline_data(figures.outline),
        "cameras": wall_map.cameras_data(figures.cameras),
        "workers": wall_map.workers_data(figures.workers, scope.code),
        "alarm_points": wall_map.alarms_data(figures.alarm_points, scope.code),
        # The scope fills its panel at every level (a building too: its nearby cameras' alarms
        # are in the ticker, the map shows the building).
        "viewport": wall_map.viewport(figures.areas, figures.outline) or no_update,
        "trend": wall_charts.trend_panel(figures.trend, lang, tz),
        "channels": wall_charts.channels_panel(figures.channels, lang),
        "ranking": (
            wall_panels.workers_panel(figures.workers, lang, tz)
            if scope.level is Level.BUILDING
            else wall_ranking.ranking_panel(overview, alarms, lang)
        ),
        "alarms": wall_panels.alarm_panel(
            figures.alarms,
            scope.code,
            places,
            lang,
            tz,
            t("nearby_alarms", lang, metres=int(NEARBY_M)) if scope.level is Level.BUILDING else "",
            actions,
        ),
        "feed": wall_panels.feed_panel(figures.cases, scope.code, places, lang, tz),
        "notice": None,
    }


def register(app: Dash, services: Services, policies: CallbackPolicies) -> None:
    settings = services.settings
    # The guard resolves `?scope=` for the caller before either callback runs (404 / 403 there)
    # and lets only those who may act acknowledge (a refusal is audited).
    policies.declare(W.TITLE, CallbackPolicy(Permission.READ, scope_from=W.URL, embed=True))
    policies.declare(
        W.ACTION_RESULT,
        CallbackPolicy(Permission.ACT, scope_from=W.URL, action="alarm.acknowledge"),
    )
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

    def load(scope: Scope) -> WallFigures | None:
        """The wall's figures from SQL (a render's or a refresh's cost, timed for /metrics)."""
        started = time.perf_counter()
        try:
            with services.sessions() as session:
                return load_wall(
                    session=session,
                    scope=scope,
                    now=services.clock(),
                    tz=services.tz,
                    window_days=settings.kpi_window_days,
                    open_now=services.open_now,
                    areas=areas,
                )
        finally:
            services.metrics.observe_render("wall", time.perf_counter() - started)

    def stay(notice: Any) -> dict[str, Any]:
        """Keep the last frame; show why over it."""
        return dict.fromkeys(OUTPUTS, no_update) | {"notice": notice}

    def live_figures(figures: WallFigures) -> tuple[dict[str, int], int]:
        """(open alarms of the scope and of its children, workers on duty) from live state.

        Live state is moved along on the event loop: read it there, not in a thread."""
        live = services.live
        node = figures.overview.scope.node
        fixes = ((fix.path, fix.ts) for fix in live.positions.values())
        codes = [node, *(c.node for c in figures.overview.children)]
        alarms = {n.code: live.open_alarms.get(n.id, 0) for n in codes}
        return alarms, on_duty(fixes, node, services.clock())

    def compose(
        figures: WallFigures, lang: Lang, fit: str, rotate: int | None, *, actions: bool
    ) -> dict[str, Any]:
        alarms, duty = live_figures(figures)
        return regions(
            figures,
            lang=lang,
            fit=fit,
            rotate=rotate,
            tz=services.tz,
            days=settings.kpi_window_days,
            workers_on_duty=duty,
            alarms=alarms,
            actions=actions and settings.wall_actions,
        )

    async def refresh(node_id: int, lang: str, *, actions: bool) -> str | None:
        """The hub's periodic refresh of one scope (for all its walls in `lang`, with or without
        the action buttons): the regions of `REFRESHED` as a fresh render draws them now, with
        the live figures they were drawn with; encoded once."""
        places = services.directory
        code = places.codes.get(node_id)
        if code is None or lang not in LANGS:
            return None
        figures = await asyncio.to_thread(load, scope_of(code, places.nodes[code]))
        if figures is None or figures.overview.scope.node.code != code:
            return None
        drawn = compose(figures, lang, layout.DEFAULT_FIT, None, actions=actions)
        return str(
            to_json_plotly(
                {
                    "node": code,
                    "lang": lang,
                    "at": int(time.time() * 1000),
                    "figures": services.hub.snapshot(node_id),
                    "regions": {OUTPUTS[name].component_id: drawn[name] for name in REFRESHED},
                }
            )
        )

    # The stream of a page whose viewer may act watches "wall-act" (live_router): the same
    # regions with the ticker's buttons.
    services.hub.refreshers["wall"] = partial(refresh, actions=False)
    services.hub.refreshers["wall-act"] = partial(refresh, actions=True)

    @app.callback(
        output=OUTPUTS,
        # `resync`: the page's stream came back after a gap it could not replay (assets/wall.js).
        inputs={"search": Input(W.URL, "search"), "resync": Input(W.RESYNC, "data")},
    )
    async def render(search: object, resync: Any = None) -> dict[str, Any]:  # noqa: ARG001
        if not isinstance(search, str):  # None: the location has not read the browser's URL yet
            return stay(no_update)
        access = current_access()  # the scope was resolved for the viewer (404 / 403 before)
        # An embed starts in its token's language; `?lang=` (or the portal's message) changes it.
        default_lang = access.principal.lang or settings.default_lang
        _code, lang, fit = parse_wall_search(search, default_lang)
        if access.scope is None:  # nothing seeded yet
            return stay(layout.notice(t("no_data_title", lang), t("no_data_body", lang)))
        try:
            # The store is synchronous: keep the event loop free for streams and other pages.
            figures = await asyncio.to_thread(load, access.scope)
        except SQLAlchemyError:
            log.exception("wall query failed")
            return stay(layout.notice(t("error_title", lang), t("error_body", lang)))
        if figures is None:
            return stay(layout.notice(t("no_data_title", lang), t("no_data_body", lang)))
        actions = access.principal.may(Permission.ACT)
        drawn = compose(figures, lang, fit, parse_rotate(search), actions=actions)
        lineage = from_own_area(figures.overview.lineage, access.principal)
        drawn["breadcrumb"] = layout.breadcrumb(lineage, lang, fit, parse_rotate(search))
        if access.principal.panels is not None:  # an embed: its granted panels only
            return granted(drawn, access.principal.panels)
        return drawn

    @app.callback(
        Output(W.ACTION_RESULT, "children"),
        Input(W.ALARM_ACTION, "data"),
        State(W.URL, "search"),
        prevent_initial_call=True,
    )
    async def act(request: object, search: object) -> Any:
        """A ticker button: acknowledge the alarm (and open its case) as the signed-in operator
        (or operator display), who is the actor recorded and audited.

        `request` is whatever the callback's body says (assets/wall.js sends {alarm, case,
        nonce}): anything else, or an id no alarm can have, changes nothing (not a 500). The
        guard let only those who may act in the page's area through; an alarm outside that area
        is refused (403) and audited like any refusal.
        """
        _code, lang, _fit = parse_wall_search(search, settings.default_lang)
        access = current_access()
        if not settings.wall_actions:  # no buttons were drawn: a forged request
            log.warning("wall action refused: GRIDCC_WALL_ACTIONS is off")
            raise Forbidden("actions are switched off on this server")
        if not isinstance(request, dict):
            return no_update
        alarm_id = request.get("alarm")
        if not isinstance(alarm_id, str) or not re.fullmatch(ID_PATTERN, alarm_id):
            return no_update
        nonce = str(request.get("nonce", ""))[:64]
        create_case = request.get("case") is True
        detail: dict[str, Any] = {"case": create_case}

        async def audit(outcome: str, reason: str | None = None) -> None:
            more = {"reason": reason} if reason else {}
            await services.audit(
                access.principal,
                "alarm.acknowledge",
                outcome,
                scope_code=access.scope.code if access.scope else None,
                target=alarm_id,
                detail=detail | more,
                client=access.client,
            )

        audited = False

        def before_publish(plan: AlarmPlan) -> None:
            """In a thread, once the action will change something: the credential still holds
            (it may have been revoked while this request waited) and the audit line is written,
            or nothing is done."""
            nonlocal audited
            if services.identity.alive(access.principal) is False:
                raise AlarmActionError(403, "your sign-in has ended")
            more = {"case_id": plan.case_id} if plan.case_id else {}
            services.audit.record_now(
                access.principal,
                "alarm.acknowledge",
                "ok",
                scope_code=access.scope.code if access.scope else None,
                target=alarm_id,
                detail=detail | more,
                client=access.client,
            )
            audited = True

        try:
            result = await act_on_alarm(
                ingestor=services.ingestor(),
                sessions=services.sessions,
                directory=services.directory,
                alarm_id=alarm_id,
                actor=access.principal.name,
                create_case=create_case,
                now=services.clock(),
                scope=access.scope,
                before_publish=before_publish,
            )
        except AlarmActionError as exc:
            refused = exc.outside or exc.status_code == 403
            reason = "outside the area" if exc.outside else exc.reason
            await audit("denied" if refused else "failed", reason)
            if exc.status_code == 403:  # signed out while this request waited
                raise Forbidden(exc.reason) from None
            # Outside the area answers as unknown: ids elsewhere are not told apart.
            key = "ack_not_found" if exc.status_code == 404 else "ack_closed"
            return action_message(t(key, lang, alarm=alarm_id), nonce, failed=alarm_id)
        except (IngestError, SQLAlchemyError):
            log.exception("alarm action failed")
            await audit("failed", "store")
            return action_message(t("ack_failed", lang), nonce, failed=alarm_id)
        except Exception:  # the bus down, a directory out of date…: the page must hear it failed
            log.exception("alarm action failed unexpectedly")
            await audit("failed", "unexpected")
            return action_message(t("ack_failed", lang), nonce, failed=alarm_id)
        if not audited:  # nothing to change (acknowledged before): said so, once
            detail |= {"acknowledged": result.acknowledged, "case_id": result.case_id}
            await audit("ok", "unchanged")
        return action_message(result_text(result, lang), nonce)

    app.clientside_callback(  # type: ignore[no-untyped-call]
        ClientsideFunction(namespace="gridccWall", function_name="drill"),
        Output(W.URL, "search"),
        Input(W.AREAS, "clickData"),
        State(W.URL, "search"),
        prevent_initial_call=True,
    )


def alarm_name(alarm_type: str, place: str, lang: Lang) -> str:
    """An alarm as a duty officer names it: its type and its camera ("烟火 · 东华路口"), not its id."""
    kind = t(f"alarm_{alarm_type}", lang) if alarm_type in set(AlarmType) else alarm_type
    return " · ".join(part for part in (kind, place) if part)


def result_text(result: AlarmActionResult, lang: Lang) -> str:
    """What the wall says after a ticker button did its work."""
    name = alarm_name(result.type, result.place, lang) or result.alarm_id
    if result.case_created:
        return t("ack_case_done", lang, alarm=name)
    if result.acknowledged:
        return t("ack_done", lang, alarm=name)
    return t("ack_unchanged", lang, alarm=name)


def action_message(text: str, nonce: str, *, failed: str | None = None) -> Any:
    """A short-lived note over the ticker (keyed by the click, so each one shows afresh).

    `failed` is the alarm whose action failed: assets/wall.js takes back what it showed early.
    """
    if failed is None:
        return html.Div(text, key=nonce, className="wall-toast")
    data: dict[str, Any] = {"data-alarm": failed}
    return html.Div(text, key=nonce, className="wall-toast wall-toast-failed", **data)
