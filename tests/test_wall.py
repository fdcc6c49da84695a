"""The wall's pure parts (colour scale, geometry, URL, time) and its store queries on SQLite and
PostgreSQL, checked against plain counts over the same rows."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from callbacks.wall import parse_rotate, parse_wall_search
from data_sources import store
from data_sources.level_scale import scale_of
from data_sources.model import AlarmStatus, Level, Node
from data_sources.schema import AlarmRow, CaseRow, NodeRow
from data_sources.seed.city import SeedReport
from data_sources.wall import (
    Trend,
    categories,
    channels,
    day_start,
    funnel,
    hour_start,
    latest_alarms,
    load_wall,
    map_areas,
    new_cases,
    on_duty,
    trend,
)
from data_sources.wall_geo import areas_of, bounds_of, simplify_geometry, vertex_count
from layouts.pages import page_of
from layouts.wall import href
from layouts.wall_charts import channels_figure, trend_figure, trend_panel
from layouts.wall_map import MARGIN, load_colour, viewport
from layouts.wall_panels import alarm_panel

from .conftest import AS_OF, TZ, area

SINCE = AS_OF - timedelta(days=30)
PANLONG = "530103"


# ---------------------------------------------------------------- pure functions


def test_load_colour_runs_from_cyan_through_amber_to_red_on_the_levels_thresholds() -> None:
    stops = (0, 5, 10)
    assert load_colour(0, stops) == "#22d3ee"
    assert load_colour(5, stops) == "#f59e0b"
    assert load_colour(10, stops) == "#ef4444"
    assert load_colour(99, stops) == "#ef4444"  # clamped
    assert load_colour(-1, stops) == "#22d3ee"
    # Absolute, not relative to siblings: one open case among empty siblings is not red.
    assert load_colour(1, scale_of(Level.COMMUNITY, [0] * 50 + [1]).stops) != "#ef4444"


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
        "options": {"padding": [MARGIN, MARGIN], "animate": False},
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


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("?scope=1&rotate=60", 60),
        ("?rotate=0", None),
        ("?rotate=-5", None),
        ("?rotate=x", None),
        (None, None),
    ],
)
def test_parse_rotate(search: str | None, expected: int | None) -> None:
    assert parse_rotate(search) == expected


def test_links_keep_language_and_fit_and_paths_pick_the_page() -> None:
    assert href("530103", "en", "letterbox") == "/wall?scope=530103&lang=en"
    assert href("530103", "zh", "fill") == "/wall?scope=530103&lang=zh&fit=fill"
    assert href("530103", "zh", "letterbox", 60) == "/wall?scope=530103&lang=zh&rotate=60"
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
        # What needs action first: the most severe, then the newest.
        waiting = [(-item.severity, item.at) for item in items if item.status in open_]
        assert [s for s, _ in waiting] == sorted(s for s, _ in waiting)
        # Closed ones leave a few minutes after they ended (here: all ended long before).
        later = latest_alarms(session=session, node=node, limit=8, now=AS_OF + timedelta(days=9))
        assert [item.status in open_ for item in later] == [True] * len(later)
        assert len(later) == min(n_open, 8)


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
        wall = load_wall(
            session=session, scope=area(session, "530103004"), now=AS_OF, tz=TZ, window_days=30
        )
        assert wall is not None
        assert wall.overview.scope.node.code == "530103004"
        assert [n.code for n in wall.overview.lineage][-2:] == [PANLONG, "530103004"]
        assert len(wall.areas) == len(wall.overview.children) > 0
        assert 0 < len(wall.cases) <= 6 and wall.funnel[0][0] == "reported"
        assert wall.new_today >= 0


# ---------------------------------------------------------------- trend and channels, by hand

NOW = datetime(
    2026, 11, 23, 6, 20
)  # 14:20 in Kunming; the trend's hours run 22 Nov 07:00–23 Nov 06:59 UTC


def _hand_city(engine: Engine) -> None:
    """A city with two districts and a handful of cases whose hours and channels are known."""
    square = json.dumps(_circle(4))
    with Session(engine) as session:
        for id_, code, level, parent in (
            (1, "530100", "city", None),
            (2, "530103", "district", 1),
            (3, "530102", "district", 1),
        ):
            session.add(
                NodeRow(
                    id=id_,
                    code=code,
                    level=level,
                    parent_id=parent,
                    name_zh=code,
                    name_en=code,
                    lon=102.7,
                    lat=25.0,
                    area_km2=1.0,
                    geometry=square,
                    district_id=id_ if parent else None,
                )
            )
        session.flush()
        cases = [
            # id, district, channel, reported, closed
            ("a", 2, "hotline_12345", datetime(2026, 11, 23, 6, 5), None),
            ("f", 2, "hotline_12345", datetime(2026, 11, 23, 6, 59, 59), None),
            ("b", 2, "video", datetime(2026, 11, 23, 5, 10), datetime(2026, 11, 23, 6, 30)),
            ("c", 2, "grid_worker", datetime(2026, 11, 22, 7, 0), None),  # first hour, exactly
            ("d", 2, "grid_worker", datetime(2026, 11, 22, 6, 59), datetime(2026, 11, 22, 8, 15)),
            ("e", 3, "police_110", datetime(2026, 11, 23, 6, 10), None),
            ("g", 3, "wechat", datetime(2026, 11, 23, 1, 0), None),  # a channel the model lacks
            ("h", 2, "hotline_12345", datetime(2026, 11, 23, 7, 0), None),  # the next hour
        ]
        for id_, district, channel, reported, closed in cases:
            session.add(
                CaseRow(
                    id=id_,
                    title=id_,
                    channel=channel,
                    category="noise",
                    status="closed" if closed else "reported",
                    lon=102.7,
                    lat=25.0,
                    reported_at=reported,
                    closed_at=closed,
                    district_id=district,
                )
            )
        session.commit()


def test_trend_counts_reported_and_closed_per_hour(engine: Engine) -> None:
    _hand_city(engine)
    with Session(engine) as session:
        district = _node(session, "530103")
        city = _node(session, "530100")
        found = trend(session=session, node=district, now=NOW)
        assert len(found.hours) == len(found.reported) == len(found.closed) == 24
        assert found.hours[0] == datetime(2026, 11, 22, 7, 0)
        assert found.hours[-1] == hour_start(NOW) == datetime(2026, 11, 23, 6, 0)
        expected_reported = [0] * 24
        expected_reported[0] = 1  # c at 07:00 sharp; d at 06:59 is before the window
        expected_reported[22] = 1  # b at 05:10
        expected_reported[23] = 2  # a and f, the current hour; h is in the next hour
        assert found.reported == expected_reported
        expected_closed = [0] * 24
        expected_closed[1] = 1  # d, closed at 08:15 the day before
        expected_closed[23] = 1  # b
        assert found.closed == expected_closed
        everywhere = trend(session=session, node=city, now=NOW)
        assert everywhere.reported[23] == 3  # e in the other district too
        assert everywhere.reported[18] == 1  # g at 01:00
        assert sum(everywhere.reported) == 6


def test_channels_count_todays_cases_per_channel(engine: Engine) -> None:
    _hand_city(engine)
    with Session(engine) as session:
        today = day_start(NOW, TZ)  # 16:00 UTC on the 22nd
        district = channels(session=session, node=_node(session, "530103"), since=today)
        assert district == [
            ("grid_worker", 0),
            ("hotline_12345", 3),  # a, f, h
            ("patrol_vehicle", 0),
            ("video", 1),
            ("online_platform", 0),
            ("police_110", 0),
        ]
        city = dict(channels(session=session, node=_node(session, "530100"), since=today))
        assert city["police_110"] == 1 and city["wechat"] == 1 and sum(city.values()) == 6


def test_trend_of_the_seeded_city_matches_plain_counts(seeded: tuple[Engine, SeedReport]) -> None:
    with Session(seeded[0]) as session:
        street = _node(session, "530103004")
        found = trend(session=session, node=street, now=AS_OF)
        for i in (0, 12, 23):
            start = found.hours[i]
            window = (
                CaseRow.reported_at >= start,
                CaseRow.reported_at < start + timedelta(hours=1),
            )
            expected = session.scalar(
                select(func.count())
                .select_from(CaseRow)
                .where(CaseRow.street_id == street.id, *window)
            )
            assert found.reported[i] == expected
        assert sum(found.reported) > 0 and sum(found.closed) > 0


def _epoch_ms(at: datetime) -> str:
    return str(int(at.replace(tzinfo=UTC).timestamp() * 1000))


def test_trend_panel_says_when_its_hour_ends_and_shows_local_hours() -> None:
    hours = [datetime(2026, 11, 22, 7) + timedelta(hours=i) for i in range(24)]
    early = Trend(hours, [0] * 23 + [2], [0] * 24, as_of=datetime(2026, 11, 23, 6, 20))
    body = trend_panel(early, "zh", TZ)[1]
    assert getattr(body, "data-hour-end") == _epoch_ms(datetime(2026, 11, 23, 7))
    figure = trend_figure(early, "en", TZ)
    assert figure["data"][0]["x"][-1] == "2026-11-23 14:00"  # Kunming time
    assert figure["data"][0]["y"][-1] == 2 and figure["data"][0]["name"] == "Reported"


def test_channels_figure_labels_and_total() -> None:
    items = [("hotline_12345", 3), ("video", 1), ("grid_worker", 0)]
    figure = channels_figure(items, "zh")
    assert figure["data"][0]["labels"] == ["12345热线", "视频监控"]
    assert figure["data"][0]["values"] == [3, 1]
    assert figure["layout"]["annotations"][0]["text"] == "4"
    empty = channels_figure([("video", 0)], "en")
    assert empty["data"][0]["values"] == [1] and empty["layout"]["annotations"][0]["text"] == "0"


def test_the_ticker_offers_actions_only_where_the_instance_allows_them() -> None:
    """GRIDCC_WALL_ACTIONS=false (a display-only instance): the ticker's words carry no actions, so
    assets/wall_lists.js draws no 确认 / 转案件 buttons."""

    def labels(actions: bool) -> dict[str, object]:
        (_, body) = alarm_panel([], "530103", {}, "zh", TZ, actions=actions)
        return json.loads(body.to_plotly_json()["props"]["data-labels"])

    assert labels(True)["actions"] == {
        "acknowledge": "确认",
        "to_case": "转案件",
        "has_case": "已立案",
    }
    assert labels(False)["actions"] is None
