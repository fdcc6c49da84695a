"""The wall's edge states (issue 8, item 8): a scope that does not exist, a building with no data of
a window, and the note after an alarm action, as pure functions of what the page is given."""

from __future__ import annotations

import json

from plotly.io.json import to_json_plotly

from callbacks.wall import OUTPUTS, alarm_name, nowhere, result_text
from data_sources.alarm_actions import AlarmActionResult
from layouts.wall import kpi_tile
from layouts.wall_panels import categories_panel, funnel_panel

ZERO_FUNNEL = [(s, 0) for s in ("reported", "accepted", "dispatched", "handled", "closed")]


def text_of(component: object) -> str:
    """Every string in a component tree, joined (what the page would read)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, list):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("children", "props"):
                    walk(value)

    walk(json.loads(to_json_plotly(component)))
    return " ".join(found)


def test_a_window_with_no_cases_says_no_data_instead_of_zero_percent() -> None:
    funnel = text_of(funnel_panel(ZERO_FUNNEL, "zh", 30))
    assert "暂无数据" in funnel and "0%" not in funnel
    categories = text_of(categories_panel([], "en", 30))
    assert "No data yet" in categories
    assert "100%" in text_of(funnel_panel([("reported", 2), ("accepted", 2)], "zh", 30))


def test_a_tile_without_a_figure_has_no_unit() -> None:
    assert text_of(kpi_tile("closure_rate", "结案率", "—", "%")).split() == ["结案率", "—"]
    assert "%" in text_of(kpi_tile("closure_rate", "结案率", "95.5", "%"))


def test_the_note_after_an_action_names_the_alarm_not_its_id() -> None:
    done = AlarmActionResult("sim6b1-alarm-0005", True, "case-1", True, [], "fire", "东华路口")
    assert result_text(done, "zh") == "已确认告警并立案：烟火 · 东华路口"
    assert "sim6b1" not in result_text(done, "en")
    assert alarm_name("no_such_type", "", "zh") == "no_such_type"
    # An alarm the store could not name (no type, no camera): its id, rather than nothing.
    bare = AlarmActionResult("a-1", True, None, False, [])
    assert result_text(bare, "zh") == "已确认告警：a-1"


def test_an_unknown_scope_empties_the_wall_and_offers_the_way_up() -> None:
    regions = nowhere("999999", "/wall?scope=530100&lang=zh", "zh")
    assert set(regions) == set(OUTPUTS)
    notice = text_of(regions["notice"])
    assert "没有这个区域" in notice and "999999" in notice and "返回全市" in notice
    assert "530100" in to_json_plotly(regions["notice"])
    # No region keeps a scope: nothing on the page asks for a stream or shows another area.
    assert regions["kpis"] is None and regions["areas"]["features"] == []
