"""An embed's stream carries its granted panels only (review of issue 12: the stream sent every
embed the case feed's titles, alarms' places and workers' fixes, and every refresh region)."""

from __future__ import annotations

import json

from callbacks.wall import granted_regions
from data_sources.stream import EmbedView, sse
from layouts import ids

DELTA = {
    "id": 7,
    "node": "530103004",
    "open": 12,
    "children": {"530103004001": {"open": 3, "alarms": 0, "high": 0}},
    "feed": [{"id": "c-1", "title": "井盖缺失"}],
    "alarm_feed": [{"id": "a-1", "camera": "cam-1"}],
    "workers": [{"id": "w-1", "lon": 102.7, "lat": 25.0}],
}
REGIONS = {ids.Wall.KPIS: "k", ids.Wall.FEED: "f", ids.Wall.ALARMS: "a", ids.Wall.TREND: "t"}
#: As the hub encodes a refresh once for every page of a scope.
REFRESH = sse("refresh", {"node": "530103004", "lang": "zh", "regions": REGIONS}).encode()


def view(*panels: str) -> EmbedView:
    granted = frozenset(panels)
    return EmbedView(granted, granted_regions(granted))


def test_a_kpi_embed_gets_figures_and_no_titles_places_or_fixes() -> None:
    shown = view("kpis").delta(DELTA)
    assert (shown["open"], shown["children"]) == (12, DELTA["children"])
    assert (shown["feed"], shown["alarm_feed"], shown["workers"]) == ([], [], [])
    refresh = view("kpis").refresh(REFRESH)
    assert refresh is not None
    regions = json.loads(refresh.split("data: ", 1)[1])["regions"]
    assert regions == {ids.Wall.KPIS: "k"}


def test_each_panel_gets_what_it_draws() -> None:
    assert view("feed").delta(DELTA)["feed"] == DELTA["feed"]
    assert view("alarms").delta(DELTA)["workers"] == []
    on_map = view("map").delta(DELTA)
    assert (on_map["alarm_feed"], on_map["workers"]) == (DELTA["alarm_feed"], DELTA["workers"])
    assert view("map").refresh(REFRESH) is None  # no refreshed region is the map's
    assert view("channels").refresh(sse("refresh", {"regions": {}})) is None
    everything = view("kpis", "map", "alarms", "feed", "trend")
    assert everything.delta(DELTA) == DELTA
