"""The wall's panels: status funnel, categories, the grid's workers, alarm ticker, case feed (the
ranking of the children is layouts/wall_ranking.py's).

The ticker and the feed are rendered here first and then kept current by assets/wall_lists.js, which
builds the same elements from live items (their `data-initial`, `data-labels` and `data-tz` say how).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import html
from dash.development.base_component import Component

from data_sources.model import AlarmStatus, AlarmType, CaseStatus, Category
from data_sources.wall import AlarmItem, CaseItem
from data_sources.wall_layers import WorkerPoint
from layouts import ids
from layouts.i18n import Lang, number, t


def panel_title_parts(text: str, note: str = "") -> list[Component]:
    parts: list[Component] = [html.Span(text, className="wall-panel-name")]
    if note:
        parts.append(html.Span(note, className="wall-panel-note"))
    return parts


def panel_title(text: str, note: str = "") -> Component:
    return html.Div(panel_title_parts(text, note), className="wall-panel-title")


def _share(part: int, whole: int) -> float:
    return 0.0 if whole <= 0 else part / whole


def funnel_panel(stages: list[tuple[str, int]], lang: Lang, days: int) -> list[Component]:
    """上报→受理→派遣→处置→结案: bars as wide as each stage's share of the reported cases;
    "暂无数据" when the window has none (not a row of 0 %)."""
    total = stages[0][1] if stages else 0
    note = t("window_short", lang, days=days)
    if total == 0:
        return [panel_title(t("funnel", lang), note), _no_data(lang)]
    rows = [
        html.Div(
            [
                html.Span(t(f"stage_{stage}", lang), className="wall-funnel-stage"),
                html.Div(
                    html.Div(
                        number(count),
                        className="wall-funnel-bar",
                        style={"width": f"{max(_share(count, total), 0.12) * 100:.1f}%"},
                    ),
                    className="wall-funnel-track",
                ),
                html.Span(f"{_share(count, total) * 100:.0f}%", className="wall-funnel-share"),
            ],
            className="wall-funnel-row",
        )
        for stage, count in stages
    ]
    return [panel_title(t("funnel", lang), note), html.Div(rows, className="wall-funnel-body")]


def _no_data(lang: Lang) -> Component:
    return html.Div(t("no_data_title", lang), className="wall-empty")


def categories_panel(items: list[tuple[str, int]], lang: Lang, days: int) -> list[Component]:
    top = max((n for _, n in items), default=0)
    if top == 0:
        return [
            panel_title(t("categories", lang), t("window_short", lang, days=days)),
            _no_data(lang),
        ]
    rows = [
        html.Div(
            [
                html.Span(_category(name, lang), className="wall-bar-label"),
                html.Div(
                    html.Div(
                        className="wall-bar-fill",
                        style={"width": f"{_share(n, top) * 100:.1f}%"},
                    ),
                    className="wall-bar-track",
                ),
                html.Span(number(n), className="wall-bar-value"),
            ],
            className="wall-bar-row",
        )
        for name, n in items
    ]
    note = t("window_short", lang, days=days)
    return [panel_title(t("categories", lang), note), html.Div(rows, className="wall-bars")]


def _category(name: str, lang: Lang) -> str:
    return t(f"cat_{name}", lang) if name in set(Category) else name


#: Worker rows the panel holds (a grid has one or two).
WORKER_ROWS = 8


def workers_panel(workers: list[WorkerPoint], lang: Lang, tz: ZoneInfo) -> list[Component]:
    """At a building, instead of a ranking: its grid's workers, on duty or not, last fix time."""
    if not workers:
        body: Component = html.Div(t("no_workers", lang), className="wall-empty")
        return [panel_title(t("grid_workers", lang)), body]
    rows = [
        html.Div(
            [
                html.Span("●", className="wall-worker-dot"),
                html.Span(w.name, className="wall-rank-name"),
                html.Span(
                    t("duty_on" if w.on_duty else "duty_off", lang),
                    className="wall-chip wall-chip-" + ("on" if w.on_duty else "off"),
                ),
                html.Span(
                    _hhmm(w.at, tz) if w.at else "—",
                    className="wall-time",
                ),
            ],
            id=ids.wall_worker_row(w.code),
            className="wall-rank-row wall-worker-row" + ("" if w.on_duty else " wall-off-duty"),
        )
        for w in workers[:WORKER_ROWS]
    ]
    title = panel_title(t("grid_workers", lang), t("last_fix", lang))
    return [title, html.Div(html.Div(rows, className="wall-rank-col"), className="wall-rank-cols")]


def _iso(at: datetime) -> str:
    return at.isoformat() + "Z"


def _hhmm(at: datetime, tz: ZoneInfo) -> str:
    return at.replace(tzinfo=UTC).astimezone(tz).strftime("%H:%M")


def _labels(lang: Lang, actions: bool = True) -> dict[str, dict[str, str] | None]:
    """The words assets/wall_lists.js draws the lines with; `actions` None: no buttons."""
    return {
        "status": {s.value: t(f"status_{s.value}", lang) for s in CaseStatus},
        "category": {c.value: t(f"cat_{c.value}", lang) for c in Category},
        "alarm": {a.value: t(f"alarm_{a.value}", lang) for a in AlarmType},
        "alarm_status": {s.value: t(f"alarm_status_{s.value}", lang) for s in AlarmStatus},
        "actions": (
            {key: t(key, lang) for key in ("acknowledge", "to_case", "has_case")}
            if actions
            else None
        ),
    }


def _live_list(
    initial: list[dict[str, Any]],
    scope: str,
    places: dict[str, str],
    lang: Lang,
    tz: ZoneInfo,
    empty: str,
    actions: bool = True,
    **kw: Any,
) -> Component:
    """A list whose lines assets/wall_lists.js draws: from `data-initial`, then with the live items on top.

    Its lines belong to wall_lists.js, not to Dash: Dash renders the element with no children, so React
    never reconciles them. A `set_props` of the list on every live message made Dash's renderer
    re-check every component of the wall (three store updates each); with several lists, the
    workers and the trend that was most of a wall's CPU at 100 events/s. `scope` (`data-scope`):
    live items of another scope are never merged over these lines. `places`: the names of the
    scope's children, by code (`data-places`): each line says where it is.
    """
    data: dict[str, Any] = {
        "data-scope": scope,
        "data-places": json.dumps(places, ensure_ascii=False),
        "data-initial": json.dumps(initial, ensure_ascii=False),
        "data-labels": json.dumps(_labels(lang, actions), ensure_ascii=False),
        "data-tz": str(tz),
        "data-empty": empty,
    }
    return html.Div(**kw, **data)


def feed_panel(
    cases: list[CaseItem], scope: str, places: dict[str, str], lang: Lang, tz: ZoneInfo
) -> list[Component]:
    initial = [
        {
            "id": c.id,
            "title": c.title,
            "category": c.category,
            "status": c.status,
            "at": _iso(c.at),
            "area": c.area,
        }
        for c in cases
    ]
    body = _live_list(
        initial,
        scope,
        places,
        lang,
        tz,
        t("no_feed", lang),
        id=ids.Wall.FEED_LIST,
        className="wall-list",
    )
    return [panel_title(t("case_feed", lang)), body]


def alarm_panel(
    alarms: list[AlarmItem],
    scope: str,
    places: dict[str, str],
    lang: Lang,
    tz: ZoneInfo,
    note: str = "",
    actions: bool = True,
) -> list[Component]:
    """The live alarm ticker; with `actions`, 确认 / 转案件 on the alarms still open."""
    initial = [
        {
            "id": a.id,
            "type": a.type,
            "severity": a.severity,
            "status": a.status,
            "at": _iso(a.at),
            "place": a.place,
            "case_id": a.case_id,
            "area": a.area,
        }
        for a in alarms
    ]
    body = _live_list(
        initial,
        scope,
        places,
        lang,
        tz,
        t("no_alarms", lang),
        actions,
        id=ids.Wall.ALARM_LIST,
        className="wall-list",
    )
    return [panel_title(t("alarm_ticker", lang), note), body]
