"""The wall's ranking of the scope's children as a 红黑榜 by 按期结案率: the best and the worst both
on screen, names without the parent's, rows that drill down in the browser (assets/wall_ranking.js).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dash import html
from dash.development.base_component import Component

from data_sources.overview import NodeFigures, Overview
from layouts import ids
from layouts.i18n import Lang, number, t
from layouts.wall_panels import panel_title


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
