"""The wall's edge states (issue 8, item 8): a scope that does not exist, a building with no data of
a window, and the note after an alarm action, as pure functions of what the page is given."""

from __future__ import annotations

import json
from html import escape

import pytest
from playwright.sync_api import Browser
from plotly.io.json import to_json_plotly

from callbacks.wall import alarm_name, result_text
from data_sources.alarm_actions import AlarmActionResult
from layouts.i18n import t
from layouts.wall import kpi_tile
from layouts.wall_panels import categories_panel, funnel_panel

from .browser import ROOT

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


def html_of(component: object) -> str:
    """A component tree as HTML (div and span, id and class: what the tiles are made of)."""
    if isinstance(component, str):
        return escape(component)
    if isinstance(component, list):
        return "".join(html_of(c) for c in component)
    tree = component.to_plotly_json()  # type: ignore[attr-defined]
    props = tree["props"]
    tag = tree["type"].lower()
    attrs = f' class="{props.get("className", "")}"' + (
        f' id="{props["id"]}"' if "id" in props else ""
    )
    return f"<{tag}{attrs}>{html_of(props.get('children') or '')}</{tag}>"


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_whole_citys_figures_fit_their_tiles(browser: Browser, lang: str) -> None:
    """The 在岗网格员 tile of a city lost its unit ("7,000 / 7,000" and no 人): cut, not shown."""
    people = t("unit_people", lang)
    tiles = [
        kpi_tile("new_today", "今日新增", "1,624", t("unit_cases", lang)),
        kpi_tile("open", "在办", "13,377", t("unit_cases", lang)),
        kpi_tile("on_duty", t("on_duty", lang), "7,000", f"/ 7,000 {people}".rstrip()),
        kpi_tile("on_duty", t("on_duty", lang), "25,000", f"/ 25,000 {people}".rstrip()),
        kpi_tile("closure_rate", "结案率", "100.0", "%"),
    ]
    css = (ROOT / "assets" / "wall.css").read_text()
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.set_content(
        f'<style>{css}</style><div class="wall-canvas"><div class="wall-region wall-kpis">'
        f'<div class="wall-kpi-grid">{html_of(tiles)}</div></div></div>'
    )
    page.evaluate("document.fonts.ready")
    cut = page.evaluate(
        """() => Array.from(document.querySelectorAll('.wall-kpi, .wall-kpi-figure'))
        .filter(el => el.scrollWidth > el.clientWidth || (el.classList.contains('wall-kpi-figure')
          && el.getBoundingClientRect().right > el.parentElement.getBoundingClientRect().right - 16))
        .map(el => el.textContent)"""
    )
    page.close()
    assert cut == []
