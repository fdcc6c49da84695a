"""The laptop view's live refresh sets only the parts of the KPI tiles that changed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from layouts.overview_panels import TileChanges


def tiles() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "value": "12",
            "delta": "▲ +1.0%",
            "cls": "gridcc-delta gridcc-delta-bad",
            "tile": "gridcc-kpi",
            "bars": ["4%", "", "100%"],
        }
        for name in ("reported", "open", "overdue")
    ]


def test_nothing_changed_is_nothing_to_set() -> None:
    assert not TileChanges.between(tiles(), tiles())


def test_only_the_parts_that_changed_are_set() -> None:
    now = copy.deepcopy(tiles())
    now[1]["value"] = "13"
    now[2]["bars"] = ["4%", "50%", "100%"]
    now[2]["tile"] = "gridcc-kpi gridcc-kpi-warn"
    changes = TileChanges.between(tiles(), now)
    assert changes.value == {"open": "13"}
    assert changes.bars == {"overdue": ["4%", "50%", "100%"]}
    assert changes.tile == {"overdue": "gridcc-kpi gridcc-kpi-warn"}
    assert changes.delta == {}


def test_other_tiles_are_drawn_whole() -> None:
    with pytest.raises(ValueError, match="other tiles"):
        TileChanges.between(tiles()[:2], tiles())
    with pytest.raises(KeyError):
        TileChanges.between([{"name": "reported"}, *tiles()[1:]], tiles())
