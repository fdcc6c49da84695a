"""The wall's pure parts (colour scale, geometry, URL, time) and its store queries on SQLite and
PostgreSQL, checked against plain counts over the same rows."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from callbacks.wall import parse_wall_search
from data_sources import store
from data_sources.model import AlarmStatus, Level, Node
from data_sources.schema import AlarmRow, CaseRow
from data_sources.seed.city import SeedReport
from data_sources.wall import (
    categories,
    day_start,
    funnel,
    latest_alarms,
    load_wall,
    map_areas,
    new_cases,
    on_duty,
)
from data_sources.wall_geo import areas_of, bounds_of, simplify_geometry, vertex_count
from layouts.pages import page_of
from layouts.wall import href
from layouts.wall_map import load_colour, viewport

from .conftest import AS_OF, TZ

SINCE = AS_OF - timedelta(days=30)
PANLONG = "530103"


# ---------------------------------------------------------------- pure functions


def test_load_colour_runs_from_cyan_through_amber_to_red() -> None:
    assert load_colour(0, 0, 10) == "#22d3ee"
    assert load_colour(5, 0, 10) == "#f59e0b"
    assert load_colour(10, 0, 10) == "#ef4444"
    assert load_colour(12, 2, 12) == "#ef4444"
    assert load_colour(99, 0, 10) == "#ef4444"  # clamped
    assert load_colour(-1, 0, 10) == "#22d3ee"
    assert load_colour(7, 7, 7) == "#22d3ee"  # siblings all alike: calm, not alarming


def _circle(n: int, radius: float = 0.01) -> dict[str, object]:
    ring = [
        [
            102.7 + radius * math.cos(2 * math.pi * i / n),
            25.0 + radius * math.sin(2 * math.pi * i / n),
        ]
        for i in range(n)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def test_simplify_geometry_drops_sub_pixel_detail_and_rounds() -> None:
    dense = _circle(4_000)
    simple = simplify_geometry(dense, 1e-4)
    assert vertex_count(simple) < vertex_count(dense) / 10
    assert shape(simple).is_valid
    assert shape(simple).area == pytest.approx(shape(dense).area, rel=0.02)
    for lon, lat in simple["coordinates"][0]:  # type: ignore[index]
        assert round(lon, 6) == lon and round(lat, 6) == lat


def test_areas_are_simplified_for_their_common_extent() -> None:
    nodes = [
        (
            Node(i, f"n{i}", Level.STREET, None, "街", "street", 102.7, 25.0),
            json.dumps(_circle(2_000)),
        )
        for i in range(3)
    ]
    areas = areas_of(nodes)
    assert [a.node.code for a in areas] == ["n0", "n1", "n2"]
    assert all(vertex_count(a.geometry) < 400 for a in areas)
    west, south, east, north = bounds_of(areas) or (0, 0, 0, 0)
    assert west == pytest.approx(102.69) and east == pytest.approx(102.71)
    assert south == pytest.approx(24.99) and north == pytest.approx(25.01)
    assert viewport(areas, None) == {
        "bounds": [[south, west], [north, east]],
        "transition": "fitBounds",
        "options": {"padding": [36, 36], "animate": False},
    }
    assert areas_of([]) == [] and bounds_of([]) is None and viewport([], None) is None


def test_day_start_is_local_midnight_in_utc() -> None:
    # 02:48 on 25 November in Kunming (UTC+8) → the day started at 16:00 UTC on the 24th.
    assert day_start(datetime(2026, 11, 24, 18, 48), TZ) == datetime(2026, 11, 24, 16, 0)
    assert day_start(datetime(2026, 11, 24, 15, 59), TZ) == datetime(2026, 11, 23, 16, 0)


def test_on_duty_counts_recent_fixes_inside_the_node() -> None:
    now = datetime(2026, 11, 23, 6, 0)
    street = Node(5, "s", Level.STREET, 2, "街", "street", 0, 0)
    city = Node(1, "c", Level.CITY, None, "市", "city", 0, 0)
    fixes = [
        ((2, 5, 9), now - timedelta(minutes=5)),
        ((2, 5, 9), now - timedelta(minutes=29)),
        ((2, 5, 9), now - timedelta(minutes=31)),  # gone quiet: off duty
        ((2, 6, 9), now - timedelta(minutes=1)),  # another street
    ]
    assert on_duty(fixes, street, now) == 2
    assert on_duty(fixes, city, now) == 3


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("", (None, "zh", "letterbox")),
        ("?scope=530103&lang=en&fit=fill", ("530103", "en", "fill")),
        ("?fit=stretch&lang=fr", (None, "zh", "letterbox")),
        (None, (None, "zh", "letterbox")),
    ],
)
def test_parse_wall_search(search: str | None, expected: tuple[str | None, str, str]) -> None:
    assert parse_wall_search(search, "zh") == expected


def test_links_keep_language_and_fit_and_paths_pick_the_page() -> None:
    assert href("530103", "en", "letterbox") == "/wall?scope=530103&lang=en"
    assert href("530103", "zh", "fill") == "/wall?scope=530103&lang=zh&fit=fill"
    assert page_of("/wall") == page_of("/wall/") == "wall"
    assert page_of("/") == page_of("/anything") == "overview"


# ---------------------------------------------------------------- store queries


def _node(session: Session, code: str) -> Node:
    node = store.node_by_code(session=session, code=code)
    assert node is not None
    return node


def test_funnel_counts_the_cases_that_reached_each_stage(seeded: tuple[Engine, SeedReport]) -> None:
    with Session(seeded[0]) as session:
        node = _node(session, PANLONG)
        stages = dict(funnel(session=session, node=node, since=SINCE))
        recent = CaseRow.reported_at >= SINCE
        count = select(func.count()).select_from(CaseRow).where(recent)
        assert stages["reported"] == session.scalar(count)
        assert stages["dispatched"] == session.scalar(
            count.where(CaseRow.dispatched_at.is_not(None))
        )
        assert stages["closed"] == session.scalar(count.where(CaseRow.status == "closed"))
        values = list(stages.values())
        assert values == sorted(values, reverse=True) and values[-1] > 0


def test_new_cases_and_categories(seeded: tuple[Engine, SeedReport]) -> None:
    with Session(seeded[0]) as session:
        street = _node(session, "530103004")
        since = AS_OF - timedelta(days=1)
        expected = session.scalar(
            select(func.count())
            .select_from(CaseRow)
            .where(CaseRow.reported_at >= since, CaseRow.street_id == street.id)
        )
        assert new_cases(session=session, node=street, since=since) == expected > 0
        top = categories(session=session, node=street, since=SINCE, limit=3)
        assert len(top) == 3 and [n for _, n in top] == sorted((n for _, n in top), reverse=True)
        everything = categories(session=session, node=street, since=SINCE, limit=99)
        reported = store.node_tally(session=session, node=street, since=SINCE, now=AS_OF).reported
        assert sum(n for _, n in everything) == reported


def test_latest_alarms_put_open_ones_first(seeded: tuple[Engine, SeedReport]) -> None:
    open_ = (AlarmStatus.ACTIVE.value, AlarmStatus.ACKNOWLEDGED.value)
    with Session(seeded[0]) as session:
        node = _node(session, PANLONG)
        items = latest_alarms(session=session, node=node, limit=8)
        n_open = session.scalar(select(func.count()).where(AlarmRow.status.in_(open_))) or 0
        assert len(items) == 8
        flags = [item.status in open_ for item in items]
        assert flags == sorted(flags, reverse=True) and sum(flags) == min(n_open, 8)
        assert all(item.place for item in items)  # the camera's name


def test_map_areas_are_the_children_with_valid_simplified_outlines(
    seeded: tuple[Engine, SeedReport],
) -> None:
    with Session(seeded[0]) as session:
        node = _node(session, PANLONG)
        areas, outline = map_areas(session=session, node=node)
        kids = store.children(session=session, node=node)
        assert [a.node.code for a in areas] == [k.code for k in kids]
        assert outline is not None and outline.node.code == PANLONG
        for area in [*areas, outline]:
            geometry = shape(area.geometry)
            assert geometry.is_valid and not geometry.is_empty
            # The stored surface point (where the label goes) is inside the outline.
            assert geometry.contains(shapely.Point(area.node.lon, area.node.lat))


def test_load_wall_gathers_one_scope(seeded: tuple[Engine, SeedReport]) -> None:
    with Session(seeded[0]) as session:
        wall = load_wall(session=session, code="530103004", now=AS_OF, tz=TZ, window_days=30)
        assert wall is not None
        assert wall.overview.scope.node.code == "530103004"
        assert [n.code for n in wall.overview.lineage][-2:] == [PANLONG, "530103004"]
        assert len(wall.areas) == len(wall.overview.children) > 0
        assert 0 < len(wall.cases) <= 6 and wall.funnel[0][0] == "reported"
        assert wall.new_today >= 0
