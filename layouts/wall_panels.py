"""The wall's panels: status funnel, categories, ranking of the children, alarm ticker, case feed.

The ticker and the feed are rendered here first and then kept current by assets/wall_lists.js, which
builds the same elements from live items (their `data-initial`, `data-labels` and `data-tz` say how).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from dash import html
from dash.development.base_component import Component

from data_sources.model import AlarmStatus, AlarmType, CaseStatus, Category
from data_sources.overview import NodeFigures, Overview
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


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


#: Rows of each end of the ranking, 红榜 and 黑榜: on a 16:9 wall (a 976×256 panel) and on an
#: ultra-wide one (600×968, where assets/wall.css stacks the two lists).
RANK_END_ROWS = 5
RANK_END_ROWS_WIDE = 10

#: Short forms of autonomous counties, as walls and the press write them (石林彝族自治县 → 石林县).
_SHORT_FORMS = (
    (re.compile(r"^(.{2}).+族自治([县州旗])$"), r"\1\2"),
    (re.compile(r"^(\S+) .*\bAutonomous (County|Prefecture|Banner)$"), r"\1 \2"),
)


def short_name(name: str, parent: str) -> str:
    """A child's name as its parent's ranking shows it: without the parent's name in front.

    "源丰社区第2网格" under "源丰社区" → "第2网格", "Yuanfeng Community Grid 2" → "Grid 2"; only a
    whole word is dropped ("Fuminville" stays under "Fumin"). Autonomous counties by their short
    form: "石林彝族自治县" → "石林县", "Shilin Yi Autonomous County" → "Shilin County".
    """
    if parent and name.startswith(parent):
        rest = name[len(parent) :]
        mid_word = rest[:1].isascii() and rest[:1].isalnum() and parent[-1].isalnum()
        if not mid_word and rest.strip(" ·-"):
            name = rest.strip(" ·-")
    for pattern, short in _SHORT_FORMS:
        name = pattern.sub(short, name)
    return name


#: Widths in em of what one line of a 16:9 ranking column holds (177 design px at 18 px), and of
#: a character: CJK 1, Latin about 0.52 in Noto Sans (measured: "Aziying Subdistrict" fits).
_NAME_EM = 9.8
_LATIN_EM = 0.52


def _long(name: str) -> bool:
    """Whether `name` needs two lines on a 16:9 wall (assets/wall.css sets them smaller)."""
    return sum(_LATIN_EM if ord(ch) < 0x2E80 else 1.0 for ch in name) > _NAME_EM


@dataclass(frozen=True, slots=True)
class RankEnds:
    """The children a ranking shows, in two columns: the first rows and the last rows."""

    best: list[NodeFigures]
    worst: list[NodeFigures]
    #: More ranked children than a 16:9 wall has rows: the columns are 红榜 and 黑榜, a 16:9 wall
    #: shows the first `RANK_END_ROWS` of `best` and the last of `worst`, a wide wall all of them.
    split: bool
    #: Children not shown for want of a rate (nothing due in the window).
    unranked: int


def rank_ends(children: list[NodeFigures]) -> RankEnds:
    """The best and the worst of `children` by rank (both ends, whatever their number).

    Up to 2 × `RANK_END_ROWS` children are all shown, best first (the unranked last); beyond, the
    ranked ones only, the top and the bottom `RANK_END_ROWS_WIDE` (a wide wall shows all of those).
    """
    ranked = sorted((c for c in children if c.rank), key=lambda c: (c.rank, c.node.code))
    unranked = sorted((c for c in children if not c.rank), key=lambda c: c.node.code)
    if len(ranked) > 2 * RANK_END_ROWS:
        if len(ranked) > 2 * RANK_END_ROWS_WIDE:
            ranked = ranked[:RANK_END_ROWS_WIDE] + ranked[-RANK_END_ROWS_WIDE:]
        half = (len(ranked) + 1) // 2
        return RankEnds(ranked[:half], ranked[half:], True, len(unranked))
    shown = (ranked + unranked)[: 2 * RANK_END_ROWS]
    half = (len(shown) + 1) // 2
    return RankEnds(shown[:half], shown[half:], False, len(children) - len(shown))


def _rank_row(
    child: NodeFigures, alarms: int, parent: str, lang: Lang, end: str, wide_only: bool
) -> Component:
    """One child: rank, name, open cases and alarms (kept current by assets/wall.js), rate.

    A plain element, not a link: the ranking is the same for every page watching a scope (its
    `fit`, `rotate`…), and assets/wall_ranking.js drills on a click keeping the page's own.
    `end` "top" / "bottom" marks the badge of the first and last three.
    """
    code = child.node.code
    rate = child.kpis.on_time_rate
    rank = child.rank
    name = child.node.name(lang)
    shown = short_name(name, parent)
    data: dict[str, Any] = {"data-code": code}
    return html.Div(
        [
            html.Span(
                str(rank) if rank else "—",
                className="wall-rank-no" + (f" wall-rank-{end}" if end else ""),
            ),
            html.Span(
                shown,
                className="wall-rank-name" + (" wall-rank-name-long" if _long(shown) else ""),
                title=name,
            ),
            html.Span(
                number(child.kpis.open), id=ids.wall_rank_cell(code, "open"), className="wall-num"
            ),
            html.Span(
                number(alarms),
                id=ids.wall_rank_cell(code, "alarms"),
                className="wall-num wall-num-amber",
            ),
            html.Span(
                html.Span(style={"width": f"{(rate or 0) * 100:.1f}%"}),
                className="wall-rank-bar",
            ),
            html.Span(_rate(rate), className="wall-num wall-rank-rate"),
        ],
        id=ids.wall_rank_row(code),
        className="wall-rank-row" + (" wall-rank-wide-only" if wide_only else ""),
        role="link",
        tabIndex="0",
        **data,
    )


def ranking_panel(overview: Overview, alarms: dict[str, int], lang: Lang) -> list[Component]:
    """红黑榜: the children by on-time closure rate, the best and the worst both on screen.

    The same for every page watching the scope in `lang` (no page parameters): a row drills down
    in the browser (assets/wall_ranking.js).
    """
    title = t("rank_board", lang)
    child_level = overview.scope.node.level.child
    if child_level is None or not overview.children:
        return [panel_title(title), html.Div(t("no_children", lang), className="wall-empty")]
    ends = rank_ends(overview.children)
    ranked = sorted((c.rank, c.node.code) for c in overview.children if c.rank)
    top = {code for rank, code in ranked if rank <= 3}
    # The last three, when they are not also the first ones.
    bottom = {code for _, code in ranked[-3:]} - top if len(ranked) > 2 * 3 else set()
    parent = overview.scope.node.name(lang)
    level = t(f"level_{child_level.value}", lang)

    def column(rows: list[NodeFigures], name: str, which: str, shown: slice) -> Component:
        visible = set(range(len(rows))[shown])
        head = html.Div(
            [
                html.Span("#", className="wall-rank-no"),
                html.Span(name, className="wall-rank-name"),
                html.Span(t("open", lang), className="wall-num"),
                html.Span(t("alarms_short", lang), className="wall-num"),
                html.Span(t("on_time_short", lang), className="wall-rank-head-rate"),
            ],
            className="wall-rank-row wall-rank-head",
        )
        body = [
            _rank_row(
                c,
                alarms.get(c.node.code, 0),
                parent,
                lang,
                "top" if c.node.code in top else "bottom" if c.node.code in bottom else "",
                i not in visible,
            )
            for i, c in enumerate(rows)
        ]
        return html.Div([head, *body], className=f"wall-rank-col wall-rank-{which}")

    n = RANK_END_ROWS
    columns = [
        column(ends.best, t("rank_best", lang) if ends.split else level, "best", slice(0, n))
    ]
    if ends.worst:
        name = t("rank_worst", lang) if ends.split else level
        columns.append(column(ends.worst, name, "worst", slice(-n, None)))
    note = f"{level} × {len(overview.children)}"
    if ends.unranked:
        note += " · " + t("rank_unranked", lang, n=ends.unranked)
    data: dict[str, Any] = {"data-scope": overview.scope.node.code, "data-lang": lang}
    split = " wall-rank-split" if ends.split else ""
    body = html.Div(columns, className="wall-rank-cols wall-rank-board" + split, **data)
    return [panel_title(title, note), body]


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
