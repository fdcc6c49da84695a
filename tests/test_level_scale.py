"""The map's absolute colour scale per level, the alarm counts per area, and what the map sends the
browser about them (issue 8, item 3)."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session

from data_sources import store
from data_sources.level_scale import (
    MIN_MID,
    LevelScales,
    LoadScale,
    level_scale,
    open_per_node,
    quantile,
    scale_of,
)
from data_sources.model import CaseStatus, Level, Node
from data_sources.schema import AlarmRow, CaseRow, NodeRow
from data_sources.seed.city import SeedReport
from data_sources.wall_geo import Area, areas_of
from data_sources.wall_layers import HIGH_SEVERITY, alarms_per_child
from layouts.wall_map import labels_data, legend, load_colour


def test_quantiles_interpolate_between_ranks() -> None:
    assert quantile([], 0.5) == 0
    assert quantile([4], 0.9) == 4
    assert quantile([0, 10], 0.5) == 5
    assert quantile([3, 1, 2, 4, 5], 0.5) == 3


def test_a_level_where_most_areas_are_empty_keeps_one_case_far_from_red() -> None:
    scale = scale_of(Level.BUILDING, [0] * 900 + [1] * 90 + [3] * 10)
    assert scale.stops == (0, MIN_MID, MIN_MID + 1)
    assert load_colour(1, scale.stops) not in ("#ef4444", "#f59e0b")


def test_thresholds_follow_the_levels_spread() -> None:
    scale = scale_of(Level.DISTRICT, list(range(0, 1001, 100)))  # 0, 100 … 1000
    assert scale.stops == (0, 500, 900)
    assert load_colour(900, scale.stops) == load_colour(2000, scale.stops) == "#ef4444"


def test_open_per_node_counts_every_node_of_the_level(seeded: tuple[Engine, SeedReport]) -> None:
    open_ = [s.value for s in CaseStatus if s.is_open]
    with Session(seeded[0]) as session:
        counts = open_per_node(session=session, level=Level.STREET)
        streets = session.scalar(select(func.count()).where(NodeRow.level == "street"))
        total = session.scalar(
            select(func.count()).where(CaseRow.status.in_(open_), CaseRow.street_id.is_not(None))
        )
    assert len(counts) == streets and sum(counts) == total


def test_scales_are_read_once_per_refresh_period(seeded: tuple[Engine, SeedReport]) -> None:
    now = [0.0]
    scales = LevelScales(refresh=300, clock=lambda: now[0])
    with Session(seeded[0]) as session:
        first = scales.get(session=session, level=Level.COMMUNITY)
        assert isinstance(first, LoadScale) and first.level is Level.COMMUNITY
        statements = Counter[str]()

        def count(*_args: object) -> None:
            statements["n"] += 1

        event.listen(seeded[0], "before_cursor_execute", count)
        try:
            assert scales.get(session=session, level=Level.COMMUNITY) is first
            assert statements["n"] == 0
            now[0] = 301
            assert scales.get(session=session, level=Level.COMMUNITY) == first
            assert statements["n"] == 2
        finally:
            event.remove(seeded[0], "before_cursor_execute", count)
        assert level_scale(session=session, level=None) is None
        assert level_scale(session=session, level=Level.CITY) is None


def test_alarms_are_counted_per_child_with_the_high_ones(seeded: tuple[Engine, SeedReport]) -> None:
    with Session(seeded[0]) as session:
        panlong = store.node_by_code(session=session, code="530103")
        assert panlong is not None
        found = alarms_per_child(session=session, node=panlong)
        open_ = AlarmRow.status.in_(["active", "acknowledged"])
        rows = session.execute(
            select(NodeRow.code, AlarmRow.severity)
            .join(NodeRow, NodeRow.id == AlarmRow.street_id)
            .where(open_, AlarmRow.district_id == panlong.id)
        ).all()
    expected: dict[str, tuple[int, int]] = {}
    for code, severity in rows:
        n, high = expected.get(code, (0, 0))
        expected[code] = (n + 1, high + int(severity >= HIGH_SEVERITY))
    assert found == expected and found


def _square(x: float, size: float) -> str:
    ring = [[x, 25.0], [x + size, 25.0], [x + size, 25.0 + size], [x, 25.0 + size], [x, 25.0]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def test_labels_sit_inside_their_area_and_carry_alarm_counts_when_asked() -> None:
    nodes = [
        (Node(i, f"s{i}", Level.STREET, None, "街", "s", 0.0, 0.0), _square(102.0 + i, 0.5))
        for i in range(2)
    ]
    areas = areas_of(nodes)
    assert all(isinstance(a, Area) and a.anchor is not None for a in areas)
    assert areas[0].anchor == pytest.approx((102.25, 25.25))
    data = labels_data(areas, {"s0": 2}, "zh", alarms={"s0": (3, 1)})
    props = [f["properties"] for f in data["features"]]
    assert data["features"][0]["geometry"]["coordinates"] == pytest.approx([102.25, 25.25])
    assert [(p["alarms"], p["high"]) for p in props] == [(3, True), (0, False)]
    assert "alarms" not in labels_data(areas, {}, "zh")["features"][0]["properties"]


def test_the_legend_shows_the_thresholds_and_carries_them_for_the_browser() -> None:
    scale = LoadScale(Level.STREET, (0, 12, 30))
    parts = [c.to_plotly_json()["props"] for c in legend(scale, "zh", points=False)]
    texts = [p.get("children") for p in parts]
    assert texts == ["在办案件", "0", None, "12", None, "30+"]
    config = json.loads(next(p["data-scale"] for p in parts if "data-scale" in p))
    assert config == {
        "stops": [[0, "#22d3ee"], [12, "#f59e0b"], [30, "#ef4444"]],
        "points": False,
    }
    assert legend(None, "zh") == []
