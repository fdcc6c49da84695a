"""The wall's ranking (红黑榜) as layouts/wall_panels.py builds it: which children, in which order,
under which names."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from data_sources.kpi import Kpis
from data_sources.model import Level, Node
from data_sources.overview import NodeFigures, Overview
from data_sources.store import Resources
from layouts import ids
from layouts.wall_ranking import (
    RANK_END_ROWS,
    RANK_END_ROWS_WIDE,
    rank_ends,
    ranking_panel,
    short_name,
)

#: The city's 14 districts, as the demo seeds them (data_sources/seed/data/kunming_districts.geojson).
KUNMING = [
    ("530102", "五华区", "Wuhua District"),
    ("530103", "盘龙区", "Panlong District"),
    ("530111", "官渡区", "Guandu District"),
    ("530112", "西山区", "Xishan District"),
    ("530113", "东川区", "Dongchuan District"),
    ("530114", "呈贡区", "Chenggong District"),
    ("530115", "晋宁区", "Jinning District"),
    ("530124", "富民县", "Fumin County"),
    ("530125", "宜良县", "Yiliang County"),
    ("530126", "石林彝族自治县", "Shilin Yi Autonomous County"),
    ("530127", "嵩明县", "Songming County"),
    ("530128", "禄劝彝族苗族自治县", "Luquan Yi and Miao Autonomous County"),
    ("530129", "寻甸回族彝族自治县", "Xundian Hui and Yi Autonomous County"),
    ("530181", "安宁市", "Anning City"),
]


def node(code: str, zh: str, en: str, level: Level) -> Node:
    return Node(1, code, level, None, zh, en, 102.7, 25.0)


def figures(n: Node, rank: int | None, rate: float | None = 0.9) -> NodeFigures:
    kpis = Kpis(10, 3, 1, 0.9, rate if rank else None, 0.0, 0.95, 0.5, 20.0)
    return NodeFigures(n, kpis, Resources(), rank)


def overview(scope: Node, children: list[NodeFigures]) -> Overview:
    now = datetime(2026, 11, 23, 6)
    return Overview(figures(scope, None), [scope], children, now, now, [])


def city(ranks: dict[str, int | None] | None = None) -> Overview:
    """Kunming with its districts ranked in the order above (五华区 1st … 安宁市 14th)."""
    children = [
        figures(node(code, zh, en, Level.DISTRICT), (ranks or {}).get(code, i))
        for i, (code, zh, en) in enumerate(KUNMING, 1)
    ]
    return overview(node("530100", "昆明市", "Kunming", Level.CITY), children)


def dump(component: Any) -> str:
    return json.dumps(component, default=lambda c: c.to_plotly_json())


def rows(panel: list[Any]) -> list[dict[str, Any]]:
    """The ranking's rows (not the heads), column by column, as plain props."""
    tree = json.loads(dump(panel[1]))
    found = []
    for column in tree["props"]["children"]:
        for row in column["props"]["children"]:
            props = row["props"]
            if "wall-rank-head" in props["className"]:
                continue
            no, name, *_ = (cell["props"] for cell in props["children"])
            found.append(
                {
                    "code": props["data-code"],
                    "id": props["id"],
                    "no": no["children"],
                    "badge": no["className"],
                    "name": name["children"],
                    "column": column["props"]["className"],
                    "wide_only": "wall-rank-wide-only" in props["className"],
                }
            )
    return found


@pytest.mark.parametrize(
    ("name", "parent", "short"),
    [
        ("源丰社区第2网格", "源丰社区", "第2网格"),
        ("Yuanfeng Community Grid 2", "Yuanfeng Community", "Grid 2"),
        ("联盟街道", "盘龙区", "联盟街道"),
        ("Lianmeng Subdistrict", "Panlong District", "Lianmeng Subdistrict"),
        ("Fuminville", "Fumin", "Fuminville"),  # a whole word only
        ("源丰社区", "源丰社区", "源丰社区"),  # nothing would be left
        ("石林彝族自治县", "昆明市", "石林县"),
        ("禄劝彝族苗族自治县", "昆明市", "禄劝县"),
        ("寻甸回族彝族自治县", "昆明市", "寻甸县"),
        ("Xundian Hui and Yi Autonomous County", "Kunming", "Xundian County"),
        ("五华区", "昆明市", "五华区"),
        ("1-6号楼", "源丰社区第1网格", "1-6号楼"),
    ],
)
def test_short_name_drops_the_parents_name_and_long_forms(
    name: str, parent: str, short: str
) -> None:
    assert short_name(name, parent) == short


def test_rank_ends_keep_the_best_and_the_worst() -> None:
    children = city().children
    ends = rank_ends(children)
    assert ends.split
    assert [c.rank for c in ends.best] == [1, 2, 3, 4, 5, 6, 7]
    assert [c.rank for c in ends.worst] == [8, 9, 10, 11, 12, 13, 14]
    many = [
        figures(node(f"5301{i:02d}", f"区{i}", f"D{i}", Level.DISTRICT), i) for i in range(1, 31)
    ]
    ends = rank_ends(many)
    assert [c.rank for c in ends.best] == list(range(1, RANK_END_ROWS_WIDE + 1))
    assert [c.rank for c in ends.worst] == list(range(31 - RANK_END_ROWS_WIDE, 31))
    few = city({code: None for code, *_ in KUNMING[4:]}).children  # 4 ranked, 10 unranked
    ends = rank_ends(few)
    assert not ends.split
    assert [c.rank for c in ends.best + ends.worst] == [1, 2, 3, 4] + [None] * 6
    assert ends.unranked == 4


def test_the_city_ranking_shows_the_bottom_on_a_16_9_wall() -> None:
    """五华区 11th and 石林 14th: a director looks for the bottom of the list (红黑榜)."""
    order = [code for code, *_ in KUNMING if code not in ("530102", "530126")]
    order[10:10] = ["530102"]  # 五华区 11th
    order.append("530126")  # 石林 14th
    ranks: dict[str, int | None] = {code: i for i, code in enumerate(order, 1)}
    panel = ranking_panel(city(ranks), {}, "zh")
    found = rows(panel)
    on_16_9 = [r for r in found if not r["wide_only"]]
    assert [r["no"] for r in on_16_9] == ["1", "2", "3", "4", "5", "10", "11", "12", "13", "14"]
    names = {r["no"]: r["name"] for r in on_16_9}
    assert names["11"] == "五华区"
    assert names["14"] == "石林县"
    assert len(found) == 14  # an ultra-wide wall shows all of them
    assert all("wall-rank-best" in r["column"] for r in found[:7])
    assert all("wall-rank-worst" in r["column"] for r in found[7:])
    badges = {r["no"]: r["badge"] for r in found}
    assert "wall-rank-top" in badges["1"] and "wall-rank-bottom" in badges["14"]
    assert badges["7"] == "wall-rank-no"
    assert all(r["id"] == ids.wall_rank_row(r["code"]) for r in found)
    title = panel[0].children[0].children
    assert "红黑榜" in title and "按期结案率" in title


def test_the_ranking_shows_names_without_the_parents_and_no_page_parameter() -> None:
    community = node("530103004001", "源丰社区", "Yuanfeng Community", Level.COMMUNITY)
    grids = [
        figures(
            node(
                f"530103004001{g:03d}",
                f"源丰社区第{g}网格",
                f"Yuanfeng Community Grid {g}",
                Level.GRID,
            ),
            g,
        )
        for g in range(1, 4)
    ]
    for lang, names in (
        ("zh", ["第1网格", "第2网格", "第3网格"]),
        ("en", ["Grid 1", "Grid 2", "Grid 3"]),
    ):
        panel = ranking_panel(overview(community, grids), {}, lang)
        found = rows(panel)
        assert [r["name"] for r in found] == names
        assert not any(r["wide_only"] for r in found)  # all fit a 16:9 wall
        dumped = dump(panel[1])
        assert "href" not in dumped and "/wall?" not in dumped  # drilled in the browser


def test_the_ranking_at_rank_ends_rows_shows_everything_on_every_wall() -> None:
    children = city().children[: 2 * RANK_END_ROWS]
    found = rows(ranking_panel(overview(city().scope.node, children), {}, "en"))
    assert [r["no"] for r in found] == [str(i) for i in range(1, 11)]
    assert not any(r["wide_only"] for r in found)
