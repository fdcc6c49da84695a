"""Callbacks of the laptop view `/`: the filter controls write the URL; the URL (and the live
stream's ticks) draw the figures; the case table asks for its rows block by block."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from dash import ALL, ClientsideFunction, Dash, Input, Output, State, ctx, no_update
from sqlalchemy.exc import SQLAlchemyError

from callbacks.query import parse_query
from data_sources import store
from data_sources.access.guard import CallbackPolicies, CallbackPolicy, current_access
from data_sources.access.model import Permission, Scope
from data_sources.access.scope import from_own_area
from data_sources.cases.filters import CaseFilter, FilterError, Window
from data_sources.cases.query import case_count, filter_tally
from data_sources.laptop import LaptopView, load_laptop
from data_sources.overview import FEED_LENGTH, FeedItem
from layouts import ids
from layouts import overview as layout
from layouts import overview_panels as panels
from layouts.i18n import LANGS, Lang, number, t

if TYPE_CHECKING:
    from data_sources.services import Services

log = logging.getLogger(__name__)

#: Query parameters that are not the filter's.
_PAGE_KEYS = ("scope", "lang")
OV = ids.Overview
#: What the page's render draws, by name (a live tick redraws the figures only).
OUTPUTS = {
    "content": Output(OV.CONTENT, "children"),
    "title": Output(OV.TITLE, "children"),
    "lang_text": Output(OV.LANG_LINK, "children"),
    "lang_href": Output(OV.LANG_LINK, "href"),
    "account": Output(OV.ACCOUNT, "children"),
    "breadcrumb": Output(OV.BREADCRUMB, "children"),
    "covers": Output(OV.COVERS, "children"),
    "children_title": Output(OV.CHILDREN_TITLE, "children"),
    "children": Output(OV.CHILDREN, "rowData"),
    "feed": Output(OV.FEED_BOX, "children"),
    "wall": Output(OV.WALL_LINK, "href"),
    "export_csv": Output(OV.EXPORT_CSV, "href"),
    "export_xlsx": Output(OV.EXPORT_XLSX, "href"),
    "reset": Output(OV.RESET, "href"),
    "count": Output(OV.CASE_COUNT, "children"),
    "baseline": Output(OV.BASELINE, "data"),
    "new_rows": Output(OV.NEW_ROWS, "children"),
    "new_rows_class": Output(OV.NEW_ROWS, "className"),
    "map_areas": Output(OV.MAP_AREAS, "data"),
    "map_outline": Output(OV.MAP_OUTLINE, "data"),
    "map_viewport": Output(OV.MAP, "viewport"),
    "content_class": Output(OV.CONTENT, "className"),
    "drawn": Output(OV.DRAWN, "data"),
}
NEW_ROWS_CLASS = "btn btn-sm btn-info"
#: "N new": the filter's cases reported in this span before now, against as many before the
#: table was drawn. Not "reported since the draw": a case reported just before it but projected
#: just after (a feed's latency, a phone's clock) is new to the table too; and not the filter's
#: total against the total then, which old cases moving out of a status filter would cancel.
LOOKBACK = timedelta(minutes=10)


def parse_search(search: object, default_lang: Lang) -> tuple[str | None, Lang]:
    """(scope code, language) from a query string like "?scope=530103&lang=en" (anything but a
    string, as a forged callback body may send, is no query)."""
    query = parse_query(search)
    scope = query.get("scope", [None])[0]
    lang = query.get("lang", [default_lang])[0]
    return scope, lang if lang in LANGS else default_lang


def controls_query(
    period: Any,
    start: Any,
    end: Any,
    category: Any,
    channel: Any,
    status: Any,
    overdue: Any,
    supervised: Any,
    search: Any,
    follow: Any,
) -> dict[str, list[str]]:
    """The filter controls' values as URL parameters (checked by `CaseFilter.from_query`)."""

    def joined(values: Any) -> str:
        return ",".join(v for v in values if isinstance(v, str)) if isinstance(values, list) else ""

    query = {
        "period": str(period or ""),
        "category": joined(category),
        "channel": joined(channel),
        "status": joined(status),
        "overdue": "1" if overdue is True else "",
        "supervised": "1" if supervised is True else "",
        "q": search if isinstance(search, str) else "",
        "follow": follow if isinstance(follow, str) else "",
    }
    if period == "custom":
        query["from"] = start if isinstance(start, str) else ""
        query["to"] = end if isinstance(end, str) else ""
    return {k: [v[:10] if k in ("from", "to") else v] for k, v in query.items() if v}


def register(app: Dash, services: Services, policies: CallbackPolicies) -> None:
    settings = services.settings
    tz = services.tz
    policies.declare(ids.Overview.URL, CallbackPolicy(Permission.READ))
    # The guard resolves `?scope=` for the caller before the render runs (404 / 403 there).
    policies.declare(
        ids.Overview.CONTENT, CallbackPolicy(Permission.READ, scope_from=ids.Overview.URL)
    )

    @app.callback(
        Output(ids.Overview.URL, "search"),
        Output(ids.Overview.FILTER_ERROR, "children"),
        Output(ids.Overview.DATES_BOX, "className"),
        Input(ids.Overview.PERIOD, "value"),
        Input(ids.Overview.DATES, "start_date"),
        Input(ids.Overview.DATES, "end_date"),
        Input(ids.Overview.CATEGORY, "value"),
        Input(ids.Overview.CHANNEL, "value"),
        Input(ids.Overview.STATUS, "value"),
        Input(ids.Overview.OVERDUE, "value"),
        Input(ids.Overview.SUPERVISED, "value"),
        Input(ids.Overview.SEARCH, "value"),
        Input(ids.Overview.FOLLOW, "value"),
        State(ids.Overview.URL, "search"),
        prevent_initial_call=True,
    )
    def write_url(*values: Any) -> tuple[Any, ...]:
        *controls, search = values
        query = parse_query(search)
        _, lang = parse_search(search, settings.default_lang)
        dates = layout.dates_class(str(controls[0]))
        wanted = controls_query(*controls)
        try:
            filt = CaseFilter.from_query(wanted)
        except FilterError as exc:
            if controls[0] == "custom" and exc.field in ("from", "to"):
                return no_update, None, dates  # choosing the dates: not yet a range
            message = layout.notice_line(t("filter_bad", lang, detail=str(exc)))
            return no_update, message, dates
        keep = {k: query[k][0] for k in _PAGE_KEYS if k in query}
        new = "?" + urlencode({**keep, **filt.to_query()})
        return (no_update if new == search else new), None, dates

    # The figures of a new URL are awaited dimmed (the render puts CONTENT_CLASS back).
    app.clientside_callback(  # type: ignore[no-untyped-call]
        ClientsideFunction(namespace="gridccOverview", function_name="busy"),
        Output(OV.CONTENT, "className", allow_duplicate=True),
        Input(OV.URL, "search"),
        prevent_initial_call=True,
    )

    # A click on the map drills, keeping the filter (the wall's clientside drill: assets/wall.js).
    app.clientside_callback(  # type: ignore[no-untyped-call]
        ClientsideFunction(namespace="gridccWall", function_name="drill"),
        Output(ids.Overview.URL, "search", allow_duplicate=True),
        Input(ids.Overview.MAP_AREAS, "clickData"),
        State(ids.Overview.URL, "search"),
        prevent_initial_call=True,
    )

    def load(scope: Scope, filt: CaseFilter, drawn: datetime | None) -> Loaded:
        """The view's figures from SQL (a render's cost, timed for /metrics), and the filter's
        cases reported in the last `LOOKBACK` before `drawn` (when the page's table was drawn;
        now, for a full render)."""
        started = time.perf_counter()
        now = services.clock()
        try:
            with services.sessions() as session:
                view = load_laptop(
                    session=session, scope=scope, filt=filt, now=now, tz=tz, outlines=drawn is None
                )
                if view is None:
                    return Loaded(None, 0, [], 0, now)
                count = case_count(session=session, scope=scope, filt=filt, now=now, tz=tz)
                window = filt.window(now=now, tz=tz)
                recent = Window(max(window.since, (drawn or now) - LOOKBACK), window.until)
                reported = 0
                if recent.since < recent.until:
                    reported = filter_tally(
                        session=session, scope=scope, filt=filt, window=recent, now=now
                    ).reported
                latest = store.latest_cases(session=session, node=view.node, limit=FEED_LENGTH)
                feed = [FeedItem(c.id, c.title, c.status, c.reported_at) for c in latest]
                return Loaded(view, count, feed, reported, now)
        finally:
            services.metrics.observe_render("overview", time.perf_counter() - started)

    @app.callback(
        output=OUTPUTS,
        inputs={
            "search": Input(OV.URL, "search"),
            # The page's stream came back after a gap it could not replay (assets/live.js).
            "resync": Input(OV.RESYNC, "data"),
            # "N new — show": the table is drawn again (assets/overview.js), the count with it.
            "show": Input(OV.NEW_ROWS, "n_clicks"),
        },
    )
    async def render(
        search: object,
        resync: Any,  # noqa: ARG001  # an input only: it says "draw again"
        show: Any,  # noqa: ARG001
    ) -> dict[str, Any]:
        answer: dict[str, Any] = dict.fromkeys(OUTPUTS, no_update)
        answer["content_class"] = layout.CONTENT_CLASS  # whatever it shows, it is not awaited
        _, lang = parse_search(search, settings.default_lang)
        query = parse_query(search)
        access = current_access()
        area = access.scope  # None only before anything is seeded
        me = access.principal
        here = "/?" + urlencode({k: query[k][0] for k in _PAGE_KEYS if k in query})
        answer["title"] = t("app_title", lang)
        answer["lang_text"] = t("switch_lang", lang)
        answer["lang_href"] = "/?" + urlencode(
            {**{k: v[0] for k, v in query.items()}, "lang": other(lang)}
        )
        answer["account"] = layout.account(
            me.kind, me.name, me.csrf, me.may(Permission.ADMIN), lang, here
        )
        try:
            filt = CaseFilter.from_query(query)
        except FilterError as exc:
            answer["content"] = layout.notice(t("filter_bad", lang, detail=str(exc)), "", "warning")
            return answer
        try:
            # The store is synchronous: keep the event loop free for streams and other pages.
            loaded = await asyncio.to_thread(load, area, filt, None) if area is not None else None
        except SQLAlchemyError:
            log.exception("overview query failed")
            answer["content"] = layout.notice(
                t("error_title", lang), t("error_body", lang), "danger"
            )
            return answer
        view = loaded.view if loaded is not None else None
        if loaded is None or view is None:
            answer["content"] = layout.notice(
                t("no_data_title", lang), t("no_data_body", lang), "warning"
            )
            answer |= {"breadcrumb": [], "covers": None, "children_title": None, "children": []}
            return answer
        models = panels.tile_models(view, lang)
        rows = panels.children_rows(view, lang, filt)
        lineage = from_own_area(view.lineage, me)
        child_level = view.node.level.child
        answer |= {
            "content": panels.figures(
                view,
                models,
                lang,
                tz,
                exports=me.kind == "user",
                refresh_s=settings.laptop_refresh_s,
            ),
            "drawn": {"search": search, "tiles": models, "children": _digest(rows)},
            "title": f"{lineage[min(1, len(lineage) - 1)].name(lang)} · {t('app_title', lang)}",
            "breadcrumb": panels.breadcrumb(lineage, lang, filt),
            "covers": panels.covers(view, lang, tz),
            "children_title": (
                t("children", lang, level=t(f"level_{child_level.value}", lang)).capitalize()
                if child_level
                else t("no_children", lang)
            ),
            "children": rows,
        }
        areas, outline, viewport = panels.map_data(view, lang)
        export = urlencode({"scope": view.node.code, "lang": lang, **filt.to_query()})
        answer |= {
            "feed": panels.feed_panel(loaded.feed, lang),
            "wall": layout.wall_href(view.node.code, lang),
            "export_csv": f"/api/v1/export/cases.csv?{export}",
            "export_xlsx": f"/api/v1/export/cases.xlsx?{export}",
            "reset": layout.href(view.node.code, lang),
            "count": t("case_count", lang, n=number(loaded.count)),
            "baseline": {"at": loaded.now.isoformat(), "recent": loaded.recent},
            "new_rows": "",
            "new_rows_class": NEW_ROWS_CLASS + " d-none",
            "map_areas": areas,
            "map_outline": outline,
            "map_viewport": viewport,
        }
        return answer

    policies.declare(OV.DRAWN, CallbackPolicy(Permission.READ, scope_from=ids.Overview.URL))

    @app.callback(
        output={
            # First: the access policy is the first output's (OV.DRAWN's, declared above).
            "drawn": Output(OV.DRAWN, "data", allow_duplicate=True),
            "value": Output(_parts(ids.KpiPart.VALUE), "children"),
            "delta": Output(_parts(ids.KpiPart.DELTA), "children"),
            "delta_class": Output(_parts(ids.KpiPart.DELTA), "className"),
            "bars": Output(_parts(ids.KpiPart.SPARK), "children"),
            "tile": Output(_parts(ids.KpiPart.TILE), "className"),
            "covers": Output(OV.COVERS, "children", allow_duplicate=True),
            "children": Output(OV.CHILDREN, "rowData", allow_duplicate=True),
            "count": Output(OV.CASE_COUNT, "children", allow_duplicate=True),
            "new_rows": Output(OV.NEW_ROWS, "children", allow_duplicate=True),
            "new_rows_class": Output(OV.NEW_ROWS, "className", allow_duplicate=True),
            # The page shows something else than this refresh knows of: draw it whole.
            "redraw": Output(OV.RESYNC, "data", allow_duplicate=True),
        },
        inputs={
            # The stream says the scope changed (assets/live.js, at most once a period).
            "tick": Input(OV.TICK, "data"),
            "search": State(OV.URL, "search"),
            "baseline": State(OV.BASELINE, "data"),
            # The tiles and the children's rows as drawn.
            "drawn": State(OV.DRAWN, "data"),
        },
        prevent_initial_call=True,
    )
    async def refresh(tick: Any, search: object, baseline: Any, drawn: Any) -> dict[str, Any]:
        """A live refresh: what changed in the figures and the children's rows, set part by part
        (a tile's elements are not drawn anew), and the cases reported since the table was drawn
        offered, not shown (the rows under the reader's cursor stay where they are). The map
        keeps its outlines and colours until the next full draw."""
        answer: dict[str, Any] = dict.fromkeys(ctx.outputs_grouping, no_update)
        grouping: dict[str, Any] = ctx.outputs_grouping
        redraw = {**answer, "redraw": f"refresh:{tick}"}
        area = current_access().scope
        _, lang = parse_search(search, settings.default_lang)
        drawn_at, shown = _baseline(baseline)
        if area is None or drawn_at is None or not isinstance(drawn, dict):
            return redraw
        try:
            filt = CaseFilter.from_query(parse_query(search))
            loaded = await asyncio.to_thread(load, area, filt, drawn_at)
        except FilterError:
            return answer  # the page shows why already
        except SQLAlchemyError:
            log.exception("overview refresh failed")
            return answer  # the page keeps its figures; the next change tries again
        view = loaded.view
        if view is None or drawn.get("search") != search:
            return redraw
        models = panels.tile_models(view, lang)
        rows = panels.children_rows(view, lang, filt)
        try:
            changes = panels.TileChanges.between(drawn.get("tiles"), models)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            return redraw  # other tiles (or a forged store)
        digest = _digest(rows)

        def each(specs: list[dict[str, Any]], values: dict[str, Any]) -> list[Any]:
            return [values.get(spec["id"]["kpi"], no_update) for spec in specs]

        fresh = loaded.recent - shown
        return answer | {
            "drawn": {"search": search, "tiles": models, "children": digest},
            "value": each(grouping["value"], changes.value),
            "delta": each(grouping["delta"], {k: v[0] for k, v in changes.delta.items()}),
            "delta_class": each(
                grouping["delta_class"], {k: v[1] for k, v in changes.delta.items()}
            ),
            "bars": each(
                grouping["bars"], {k: panels.spark_bars(v) for k, v in changes.bars.items()}
            ),
            "tile": each(grouping["tile"], changes.tile),
            "covers": panels.covers(view, lang, tz),
            "children": no_update if drawn.get("children") == digest else rows,
            "count": t("case_count", lang, n=number(loaded.count)),
            "new_rows": t("new_rows", lang, n=number(fresh)) if fresh > 0 else "",
            "new_rows_class": NEW_ROWS_CLASS + ("" if fresh > 0 else " d-none"),
        }


def _parts(part: ids.KpiPart) -> dict[str, Any]:
    return {"type": part.value, "kpi": ALL}


@dataclass(frozen=True, slots=True)
class Loaded:
    view: LaptopView | None
    count: int
    feed: list[FeedItem]
    #: The filter's cases reported in the `LOOKBACK` before the table was drawn.
    recent: int
    now: datetime


def _digest(rows: list[dict[str, Any]]) -> str:
    return hashlib.blake2b(json.dumps(rows, sort_keys=True).encode(), digest_size=12).hexdigest()


def _baseline(value: Any) -> tuple[datetime | None, int]:
    """(when the table was drawn, the filter's cases reported in the `LOOKBACK` before then) as
    the page keeps them; anything else (a forged store) is not known: (None, 0)."""
    at = value.get("at") if isinstance(value, dict) else None
    recent = value.get("recent") if isinstance(value, dict) else None
    if not isinstance(at, str) or len(at) > 32 or not isinstance(recent, int):
        return None, 0
    try:
        return datetime.fromisoformat(at).replace(tzinfo=None), recent
    except ValueError:
        return None, 0


def other(lang: Lang) -> Lang:
    return "en" if lang == "zh" else "zh"
