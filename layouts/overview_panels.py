"""The panels of the laptop view: KPI tiles with their change and daily bars, the children's and
the case table's columns and rows, the breadcrumb and the latest cases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
import dash_leaflet as dl
from dash import html
from dash.development.base_component import Component

from data_sources.cases.filters import CaseFilter
from data_sources.cases.query import CaseListItem
from data_sources.laptop import KpiFigure, LaptopView
from data_sources.model import CaseStatus, Node
from data_sources.overview import FeedItem
from layouts import ids
from layouts.i18n import Lang, number, percent, t
from layouts.wall_map import EMPTY, START, load_colour, viewport

#: Eight heights of a text sparkline (a children's row's daily reports).
_BARS = "▁▂▃▄▅▆▇█"
#: At most this many bars per sparkline (longer series are summed into wider buckets).
SPARK_POINTS = 31
#: The KPIs whose rise is bad news (drawn red when they go up).
_WORSE_WHEN_UP = frozenset({"open", "overdue", "rework_rate", "mean_handling_hours"})


def fmt(value: float | None, kind: str, lang: Lang) -> str:
    if kind == "rate":
        return percent(value)
    if kind == "hours":
        return "—" if value is None else f"{value:.1f} {t('hours', lang)}"
    return number(value)


def change(figure: KpiFigure, lang: Lang) -> tuple[str, str]:
    """(text, CSS class) of a KPI's change against the previous period: percentage points for a
    rate, per cent for a count or a duration; "good"/"bad" by which way is better."""
    now, before = figure.value, figure.previous
    if now is None or before is None:
        return t("no_previous", lang), "gridcc-delta-none"
    diff = now - before
    if figure.kind == "rate":
        text = f"{diff * 100:+.1f} pp" if lang == "en" else f"{diff * 100:+.1f} 个百分点"
    elif before == 0:
        return t("no_previous", lang), "gridcc-delta-none"
    else:
        text = f"{diff / before * 100:+.1f}%"
    if diff == 0:
        return t("vs_previous", lang, change=text), "gridcc-delta-flat"
    worse = (diff > 0) == (figure.name in _WORSE_WHEN_UP)
    arrow = "▲" if diff > 0 else "▼"
    cls = "gridcc-delta-bad" if worse else "gridcc-delta-good"
    return t("vs_previous", lang, change=f"{arrow} {text}"), cls


def _buckets(series: list[float | None], points: int = SPARK_POINTS) -> list[float | None]:
    if len(series) <= points:
        return series
    size = -(-len(series) // points)
    out: list[float | None] = []
    for i in range(0, len(series), size):
        part = [v for v in series[i : i + size] if v is not None]
        out.append(sum(part) / len(part) if part else None)
    return out


def spark_heights(series: list[float | None]) -> list[str]:
    """A KPI's daily values as bar heights ("" for a day without a value)."""
    values = _buckets(series)
    top = max((v for v in values if v is not None), default=0) or 1
    return ["" if v is None else f"{max(4.0, v / top * 100):.0f}%" for v in values]


def _bar(height: str) -> Component:
    if not height:
        return html.Span(className="gridcc-spark-bar gridcc-spark-none", style={"height": "4%"})
    return html.Span(className="gridcc-spark-bar", style={"height": height})


def spark_bars(heights: list[str]) -> list[Component]:
    """A KPI's daily values as small bars (plain elements: no chart library for 9 tiles)."""
    return [_bar(h) for h in heights]


def spark_text(series: list[int]) -> str:
    """A children's row's daily reports as block characters (sortless, copyable text)."""
    values = [v or 0 for v in _buckets(list(map(float, series)), 14)]
    top = max(values, default=0)
    if top <= 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(7, int(v / top * 7.999))] for v in values)


def tile_models(view: LaptopView, lang: Lang) -> list[dict[str, Any]]:
    """What each KPI tile shows, as plain values: the page keeps them as drawn, so that a live
    refresh sets only what changed (`TileChanges`)."""
    models = []
    for figure in view.figures:
        text, cls = change(figure, lang)
        models.append(
            {
                "name": figure.name,
                "value": fmt(figure.value, figure.kind, lang),
                "delta": text,
                "cls": delta_class(cls),
                "tile": "gridcc-kpi" + (" gridcc-kpi-warn" if _warn(figure) else ""),
                "bars": spark_heights(figure.series),
            }
        )
    return models


def _warn(figure: KpiFigure) -> bool:
    return figure.name == "overdue" and (figure.value or 0) > 0


def delta_class(cls: str) -> str:
    return f"gridcc-delta {cls}"


def kpi_tiles(models: list[dict[str, Any]], lang: Lang) -> Component:
    hidden: dict[str, Any] = {"aria-hidden": "true"}
    tiles = [
        html.Div(
            [
                html.Div(t(m["name"], lang), className="gridcc-kpi-label"),
                html.Div(
                    m["value"],
                    id=ids.kpi_part(ids.KpiPart.VALUE, m["name"]),
                    className="gridcc-kpi-value",
                    **{"data-kpi": m["name"]},
                ),
                html.Div(
                    m["delta"], id=ids.kpi_part(ids.KpiPart.DELTA, m["name"]), className=m["cls"]
                ),
                html.Div(
                    spark_bars(m["bars"]),
                    id=ids.kpi_part(ids.KpiPart.SPARK, m["name"]),
                    className="gridcc-spark",
                    **hidden,
                ),
            ],
            id=ids.kpi_part(ids.KpiPart.TILE, m["name"]),
            className=m["tile"],
        )
        for m in models
    ]
    return html.Div(tiles, className="gridcc-kpi-grid")


@dataclass(frozen=True, slots=True)
class TileChanges:
    """What a live refresh sets on the tiles, by KPI name: only what changed. Setting a tile's
    elements anew on every refresh (its 35 elements, 9 tiles) was a 160-200 ms task in each
    page: 20 pages at 1,000 events/s on a 2-core machine then showed their streams late
    (bench/bench_latency.py, p95 2.6 s)."""

    value: dict[str, str]
    delta: dict[str, tuple[str, str]]  # (text, class)
    bars: dict[str, list[str]]
    tile: dict[str, str]  # class

    @classmethod
    def between(cls, drawn: list[dict[str, Any]], models: list[dict[str, Any]]) -> TileChanges:
        """From the tiles as `drawn` to `models`. Raises ValueError when they are not the same
        KPIs (KeyError, TypeError when `drawn` is not what `tile_models` gives)."""
        if [m["name"] for m in drawn] != [m["name"] for m in models]:
            raise ValueError("other tiles")
        found = cls({}, {}, {}, {})
        for old, new in zip(drawn, models, strict=True):
            name = new["name"]
            if old["value"] != new["value"]:
                found.value[name] = new["value"]
            if (old["delta"], old["cls"]) != (new["delta"], new["cls"]):
                found.delta[name] = (new["delta"], new["cls"])
            if old["bars"] != new["bars"]:
                found.bars[name] = new["bars"]
            if old["tile"] != new["tile"]:
                found.tile[name] = new["tile"]
        return found

    def __bool__(self) -> bool:
        return bool(self.value or self.delta or self.bars or self.tile)


def figures(
    view: LaptopView,
    models: list[dict[str, Any]],
    lang: Lang,
    tz: ZoneInfo,
    *,
    exports: bool,
    refresh_s: float,
) -> Component:
    """The KPI tiles in the element that says which scope and language they are of (the live
    stream follows `data-scope`; its deltas make the page draw the figures again), and whether
    the viewer may export (only signed-in users: assets/gridcc.css hides the buttons otherwise)."""
    data: dict[str, Any] = {
        "data-exports": "1" if exports else "0",
        # At most how often the stream's changes make the page draw the figures (assets/live.js).
        "data-refresh-ms": str(round(refresh_s * 1000)),
        "data-scope": view.node.code,
        "data-lang": lang,
        "data-tz": str(tz),
    }
    return html.Div(kpi_tiles(models, lang), **data)


def covers(view: LaptopView, lang: Lang, tz: ZoneInfo) -> str:
    """What the figures cover: the window's first and last local day, and when they were read."""
    since = view.window.since.replace(tzinfo=UTC).astimezone(tz)
    until = (view.window.until - timedelta(microseconds=1)).replace(tzinfo=UTC).astimezone(tz)
    text = t("covers", lang, since=f"{since:%Y-%m-%d}", until=f"{until:%Y-%m-%d}")
    return f"{text} · {t('as_of', lang, time=view.as_of(tz))}"


def breadcrumb(lineage: list[Node], lang: Lang, filt: CaseFilter) -> Component:
    *ancestors, current = lineage
    items: list[dict[str, str | bool]] = [
        {"label": n.name(lang), "href": overview_href(n.code, lang, filt)} for n in ancestors
    ]
    items.append({"label": current.name(lang), "active": True})
    crumbs: Component = dbc.Breadcrumb(items=items, className="gridcc-breadcrumb mb-1")
    return crumbs


def overview_href(code: str, lang: Lang, filt: CaseFilter) -> str:
    return "/?" + urlencode({"scope": code, "lang": lang, **filt.to_query()})


def case_href(case_id: str, lang: Lang) -> str:
    return "/case?" + urlencode({"id": case_id, "lang": lang})


def _col(field: str, header: str, **more: Any) -> dict[str, Any]:
    return {"field": field, "headerName": header, **more}


def _num(field: str, lang: Lang, formatter: str, width: int = 104) -> dict[str, Any]:
    return _col(
        field,
        t(field, lang),
        type="numericColumn",
        minWidth=width,
        flex=1,
        valueFormatter={"function": f"{formatter}(params.value)"},
        headerTooltip=t(field, lang),
    )


def children_columns(lang: Lang) -> list[dict[str, Any]]:
    """Columns of the children's table: rank, name (drill link), the KPIs, the daily trend."""
    return [
        _col(
            "rank",
            t("rank", lang),
            minWidth=64,
            maxWidth=90,
            sort="asc",
            valueFormatter={"function": "gridccRank(params.value)"},
        ),
        _col("name", t("name", lang), minWidth=180, flex=2, cellRenderer="GridccLink"),
        _num("reported", lang, "gridccCount"),
        _num("open", lang, "gridccCount"),
        _num("overdue", lang, "gridccCount"),
        _num("closure_rate", lang, "gridccPercent"),
        _num("on_time_rate", lang, "gridccPercent", 112),
        _num("rework_rate", lang, "gridccPercent"),
        _num("satisfaction_rate", lang, "gridccPercent", 116),
        _num("mean_handling_hours", lang, "gridccHours", 132),
        _col(
            "trend",
            t("col_trend", lang),
            minWidth=100,
            flex=1,
            sortable=False,
            cellClass="gridcc-trend",
        ),
    ]


#: A rank no child has: unranked rows sort after the ranked ones.
UNRANKED = 10_000


def children_rows(view: LaptopView, lang: Lang, filt: CaseFilter) -> list[dict[str, Any]]:
    return [
        {
            "code": child.node.code,
            "rank": child.rank if child.rank is not None else UNRANKED,
            "name": child.node.name(lang),
            "href": overview_href(child.node.code, lang, filt),
            "reported": child.kpis.reported,
            "open": child.kpis.open,
            "overdue": child.kpis.overdue,
            "closure_rate": child.kpis.closure_rate,
            "on_time_rate": child.kpis.on_time_rate,
            "rework_rate": child.kpis.rework_rate,
            "satisfaction_rate": child.kpis.satisfaction_rate,
            "mean_handling_hours": child.kpis.mean_handling_hours,
            "trend": spark_text(child.trend),
        }
        for child in view.children
    ]


def case_columns(lang: Lang) -> list[dict[str, Any]]:
    def sortable(field: str, header: str, **more: Any) -> dict[str, Any]:
        return _col(field, header, sortable=True, sortingOrder=["desc", "asc"], **more)

    return [
        sortable("id", t("col_case_id", lang), width=190, cellRenderer="GridccLink"),
        _col("title", t("col_title", lang), minWidth=160, flex=3, tooltipField="title"),
        # Not sortable: the server would sort by code, not by the label shown.
        _col("category", t("col_category", lang), minWidth=110, flex=1),
        _col("status", t("col_status", lang), minWidth=100, flex=1),
        sortable("reported_at", t("col_reported_at", lang), width=150, sort="desc"),
        sortable("due_at", t("col_due_at", lang), width=150),
        _col("place", t("col_place", lang), minWidth=120, flex=2, tooltipField="place"),
        _col("flags", t("col_flags", lang), minWidth=90, flex=1, tooltipField="flags"),
    ]


def local(at: datetime | None, tz: ZoneInfo) -> str:
    if at is None:
        return "—"
    return f"{at.replace(tzinfo=UTC).astimezone(tz):%Y-%m-%d %H:%M}"


def flags(item: CaseListItem, lang: Lang) -> str:
    marks = []
    if item.overdue:
        marks.append(t("flag_overdue", lang))
    if item.supervised:
        marks.append(t("flag_supervised", lang))
    if item.deferred:
        marks.append(t("flag_deferred", lang))
    if item.rework_count:
        marks.append(t("flag_reworked", lang, n=item.rework_count))
    return " · ".join(marks)


def case_rows(items: list[CaseListItem], lang: Lang, tz: ZoneInfo) -> list[dict[str, Any]]:
    return [
        {
            "id": item.id,
            "name": item.id,
            "href": case_href(item.id, lang),
            "title": item.title,
            "category": t(f"cat_{item.category.value}", lang),
            "channel": t(f"channel_{item.channel.value}", lang),
            "status": t(f"status_{item.status.value}", lang),
            "reported_at": local(item.reported_at, tz),
            "due_at": local(item.due_at, tz),
            "place": item.place_en if lang == "en" else item.place_zh,
            "flags": flags(item, lang),
            "overdue": item.overdue,
        }
        for item in items
    ]


def scope_map() -> Component:
    """The scope's map (the wall's, in the page's light or dark panel): the children's outlines
    coloured by the filter's open cases, a tooltip each; a click drills (assets/overview.js)."""
    layers = [
        dl.GeoJSON(
            id=ids.Overview.MAP_OUTLINE,
            data=EMPTY,
            style={"variable": "gridccWall.outlineStyle"},
            interactive=False,
        ),
        dl.GeoJSON(
            id=ids.Overview.MAP_AREAS,
            data=EMPTY,
            style={"variable": "gridccWall.areaStyle"},
            hoverStyle={"variable": "gridccWall.areaHover"},
            bubblingMouseEvents=False,
        ),
    ]
    view: Component = dl.MapContainer(
        layers,
        id=ids.Overview.MAP,
        center=list(START),
        zoom=10,
        zoomSnap=0.1,
        attributionControl=False,
        scrollWheelZoom=False,
        trackViewport=False,
        className="gridcc-laptop-map",
        style={"width": "100%", "height": "420px"},
    )
    return view


def map_data(
    view: LaptopView, lang: Lang
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """(children's areas, the scope's outline, the map's viewport) of `view`."""
    open_cases = {c.node.code: c.kpis.open for c in view.children}
    top = max(open_cases.values(), default=0) or 1
    stops = (0.0, top / 2, float(top))
    features = []
    for area in view.areas:
        n = open_cases.get(area.node.code, 0)
        name = area.node.name(lang)
        properties = {
            "code": area.node.code,
            "name": name,
            "open": n,
            "color": load_colour(n, stops),
            # Leaflet puts a tooltip in as HTML: a name is text.
            "tooltip": escape(f"{name} · {t('open', lang)} {number(n)}"),
        }
        features.append({"type": "Feature", "geometry": area.geometry, "properties": properties})
    outline = (
        {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "geometry": view.outline.geometry, "properties": {}}],
        }
        if view.outline is not None
        else EMPTY
    )
    areas = {"type": "FeatureCollection", "features": features}
    return areas, outline, viewport(view.areas, view.outline)


def feed_panel(items: list[FeedItem], lang: Lang) -> Component:
    """The latest cases of the scope, as data: assets/live.js renders them and prepends new ones.

    The list's elements belong to live.js, not to Dash: a `set_props` of the list on every delta
    made Dash's renderer re-check every component of the page, most of a browser's work with many
    pages open. Dash renders the element with no children, so React never touches what is in it.
    """
    initial = [{"id": i.id, "title": i.title, "status": i.status} for i in items]
    labels = {s.value: t(f"status_{s.value}", lang) for s in CaseStatus}
    data: dict[str, Any] = {
        "data-initial": json.dumps(initial, ensure_ascii=False),
        "data-labels": json.dumps(labels, ensure_ascii=False),
        "data-empty": t("no_feed", lang),
    }
    return html.Div(
        [
            html.H5(t("feed", lang), className="mb-2"),
            html.Div(id=ids.Overview.FEED, className="gridcc-feed", **data),
        ]
    )
