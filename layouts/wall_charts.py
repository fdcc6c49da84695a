"""The wall's two charts: the 24-hour trend (reported and closed per hour) and today's channels donut.

Both are compact dark Plotly figures drawn as static plots (a wall is looked at, not hovered). The
trend's current hour grows in the browser (assets/wall.js) from the live counters until the panel's
`data-hour-end`; the server's periodic refresh of the scope (`Hub.refresh_s`) draws both again from
SQL (the trend's live growth is an estimate: it counts every new case in the current hour, whatever
its report time).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dash import dcc, html
from dash.dcc import Graph
from dash.development.base_component import Component

from data_sources.model import Channel
from data_sources.wall import Trend
from layouts import ids
from layouts.i18n import Lang, number, t
from layouts.wall_panels import panel_title

CYAN = "#22d3ee"
GREEN = "#22c55e"
#: One hue family for the channels (cyan → blue → amber), never a rainbow.
CHANNEL_COLOURS = {
    Channel.GRID_WORKER.value: "#22d3ee",
    Channel.HOTLINE_12345.value: "#1f6feb",
    Channel.PATROL_VEHICLE.value: "#0e7490",
    Channel.VIDEO.value: "#f59e0b",
    Channel.ONLINE_PLATFORM.value: "#67e8f9",
    Channel.POLICE_110.value: "#ef4444",
}
OTHER_COLOUR = "#64748b"
FONT: dict[str, Any] = {
    "family": '"Noto Sans CJK SC", "Source Han Sans SC", sans-serif',
    "size": 16,
    "color": "#93b4d4",
}
GRAPH_CONFIG: Graph.Config = {"staticPlot": True, "displayModeBar": False, "responsive": True}


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    return at.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)


def trend_figure(trend: Trend, lang: Lang, tz: ZoneInfo) -> dict[str, Any]:
    """Bars of cases reported per hour, a line of cases closed per hour; local hours on x."""
    x = [_local(h, tz).strftime("%Y-%m-%d %H:%M") for h in trend.hours]
    grid = "rgba(148, 163, 184, 0.14)"
    return {
        "data": [
            {
                "type": "bar",
                "name": t("trend_reported", lang),
                "x": x,
                "y": list(trend.reported),
                "marker": {"color": CYAN, "opacity": 0.85},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": t("trend_closed", lang),
                "x": x,
                "y": list(trend.closed),
                "line": {"color": GREEN, "width": 3, "shape": "spline", "smoothing": 0.6},
            },
        ],
        "layout": {
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "font": FONT,
            "margin": {"l": 48, "r": 12, "t": 10, "b": 30},
            "showlegend": False,
            "bargap": 0.25,
            "xaxis": {
                "type": "date",
                "tickformat": "%H:%M",
                "dtick": 6 * 3600 * 1000,
                "gridcolor": grid,
                "linecolor": grid,
                "tickfont": FONT,
                "fixedrange": True,
            },
            "yaxis": {
                "gridcolor": grid,
                "zeroline": False,
                "rangemode": "tozero",
                # Whole cases only, and a visible scale even for a quiet scope (0 to 4 at least).
                "tickformat": ",d",
                "autorangeoptions": {"include": [0, 4]},
                "nticks": 4,
                "tickfont": FONT,
                "fixedrange": True,
            },
        },
    }


def _epoch_ms(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp() * 1000)


def _swatch(colour: str, text: str) -> Component:
    return html.Span(
        [html.Span(className="wall-swatch", style={"background": colour}), text],
        className="wall-chart-key",
    )


def trend_panel(trend: Trend, lang: Lang, tz: ZoneInfo) -> list[Component]:
    """The 24-hour trend panel's contents; the legend is HTML in the title bar (saves the plot's room)."""
    keys = html.Span(
        [_swatch(CYAN, t("trend_reported", lang)), _swatch(GREEN, t("trend_closed", lang))],
        className="wall-panel-note wall-chart-keys",
    )
    end = trend.hours[-1] + timedelta(hours=1)
    data: dict[str, Any] = {"data-hour-end": str(_epoch_ms(end))}
    graph = dcc.Graph(
        id=ids.Wall.TREND_GRAPH,
        figure=trend_figure(trend, lang, tz),
        config=GRAPH_CONFIG,
        className="wall-chart",
        style={"height": "100%", "width": "100%"},
    )
    title = html.Div(
        [html.Span(t("trend", lang), className="wall-panel-name"), keys],
        className="wall-panel-title",
    )
    return [title, html.Div(graph, id=ids.Wall.TREND_BODY, className="wall-chart-body", **data)]


def channel_label(channel: str, lang: Lang) -> str:
    return t(f"channel_{channel}", lang) if channel in set(Channel) else channel


def channels_figure(items: list[tuple[str, int]], lang: Lang) -> dict[str, Any]:
    """A donut of today's cases per channel with the total in its hole."""
    shown = [(k, n) for k, n in items if n > 0] or [("", 0)]
    total = sum(n for _, n in items)
    return {
        "data": [
            {
                "type": "pie",
                "hole": 0.62,
                "sort": False,
                "direction": "clockwise",
                "labels": [channel_label(k, lang) if k else "—" for k, _ in shown],
                "values": [n for _, n in shown] if total else [1],
                "marker": {
                    "colors": [CHANNEL_COLOURS.get(k, OTHER_COLOUR) for k, _ in shown],
                    "line": {"color": "#0b1a33", "width": 2},
                },
                "textinfo": "none",
                "hoverinfo": "skip",
            }
        ],
        "layout": {
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "font": FONT,
            "margin": {"l": 4, "r": 4, "t": 4, "b": 4},
            "showlegend": False,
            "annotations": [
                {
                    "text": number(total),
                    "showarrow": False,
                    "x": 0.5,
                    "y": 0.5,
                    "font": {**FONT, "size": 24, "color": "#f8fafc"},
                }
            ],
        },
    }


def _channel_data(channel: str, n: int, lang: Lang) -> dict[str, Any]:
    """What assets/wall.js needs of a key row to grow it and redraw the donut from live counts."""
    return {
        "data-channel": channel,
        "data-n": str(n),
        "data-label": channel_label(channel, lang),
        "data-colour": CHANNEL_COLOURS.get(channel, OTHER_COLOUR),
    }


def channels_panel(items: list[tuple[str, int]], lang: Lang) -> list[Component]:
    """Today's channels: the donut on the left, a key with counts and shares on the right."""
    total = sum(n for _, n in items)
    rows = [
        html.Div(
            [
                html.Span(
                    className="wall-swatch",
                    style={"background": CHANNEL_COLOURS.get(k, OTHER_COLOUR)},
                ),
                html.Span(channel_label(k, lang), className="wall-channel-name"),
                html.Span(number(n), className="wall-channel-n"),
                html.Span(
                    f"{n / total * 100:.0f}%" if total else "—", className="wall-channel-share"
                ),
            ],
            className="wall-channel-row",
            **_channel_data(k, n, lang),
        )
        for k, n in items
    ]
    graph = dcc.Graph(
        id=ids.Wall.CHANNEL_GRAPH,
        figure=channels_figure(items, lang),
        config=GRAPH_CONFIG,
        className="wall-donut",
        style={"height": "100%"},
    )
    body = html.Div(
        [graph, html.Div(rows, className="wall-channel-key")], className="wall-channels-body"
    )
    return [panel_title(t("channels", lang), t("today", lang)), body]
