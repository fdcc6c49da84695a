"""The wall's map: the scope's children as polygons coloured by load on their level's absolute
scale, with labels (and a count of open alarms per area above the street level); vector only.

Styles and labels are drawn by functions of assets/wall_map.js (`gridccWall.*`), referenced by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dash_leaflet as dl
from dash import html
from dash.development.base_component import Component

from data_sources.level_scale import LoadScale
from data_sources.wall_geo import Area, bounds_of
from data_sources.wall_layers import HIGH_SEVERITY, AlarmPoint, CameraPoint, WorkerPoint
from layouts import ids
from layouts.i18n import Lang, number, t

EMPTY: dict[str, Any] = {"type": "FeatureCollection", "features": []}
#: One hue from calm to loaded: cyan → amber → red (never a rainbow), at a `LoadScale`'s stops.
COLOURS: tuple[tuple[int, int, int], ...] = ((34, 211, 238), (245, 158, 11), (239, 68, 68))
#: The map's margin around the scope (px): small, so the scope fills its panel on every screen.
MARGIN = 12
#: Where Kunming is, before the first scope is shown.
START = (25.04, 102.71)


def _js(name: str) -> dict[str, str]:
    return {"variable": f"gridccWall.{name}"}


def map_view(tile_url: str | None) -> Component:
    """The map, created once per page; the callback swaps its data and viewport on a drill."""
    layers: list[Component] = []
    if tile_url:
        layers.append(dl.TileLayer(url=tile_url, maxZoom=20))
    layers += [
        dl.GeoJSON(id=ids.Wall.OUTLINE, data=EMPTY, style=_js("outlineStyle"), interactive=False),
        dl.GeoJSON(
            id=ids.Wall.AREAS,
            data=EMPTY,
            style=_js("areaStyle"),
            hoverStyle=_js("areaHover"),
            bubblingMouseEvents=False,
        ),
        dl.GeoJSON(id=ids.Wall.LABELS, data=EMPTY, pointToLayer=_js("label"), interactive=False),
        # Points never take clicks: a click anywhere on an area drills into it.
        dl.GeoJSON(id=ids.Wall.CAMERAS, data=EMPTY, pointToLayer=_js("camera"), interactive=False),
        dl.GeoJSON(id=ids.Wall.WORKERS, data=EMPTY, pointToLayer=_js("worker"), interactive=False),
        dl.GeoJSON(
            id=ids.Wall.ALARM_POINTS, data=EMPTY, pointToLayer=_js("alarm"), interactive=False
        ),
    ]
    view: Component = dl.MapContainer(
        layers,
        id=ids.Wall.MAP,
        center=list(START),
        zoom=10,
        zoomSnap=0.1,
        zoomControl=False,
        attributionControl=False,
        scrollWheelZoom=False,
        doubleClickZoom=False,
        dragging=False,
        boxZoom=False,
        keyboard=False,
        trackViewport=False,
        className="wall-map",
        style={"width": "100%", "height": "100%"},
    )
    return view


def _hex(rgb: Iterable[int]) -> str:
    return "#" + "".join(f"{v:02x}" for v in rgb)


def load_colour(value: float, stops: Sequence[float]) -> str:
    """The colour of `value` open cases on a level's scale, as "#rrggbb": cyan at `stops[0]`,
    amber at `stops[1]`, red from `stops[2]` on (a `LoadScale`'s thresholds)."""
    points = list(zip(stops, COLOURS, strict=True))
    for (x0, c0), (x1, c1) in zip(points, points[1:], strict=False):
        if value <= x1:
            f = 0.0 if x1 <= x0 else min(max((value - x0) / (x1 - x0), 0.0), 1.0)
            return _hex(round(a + (b - a) * f) for a, b in zip(c0, c1, strict=True))
    return _hex(COLOURS[-1])


def scale_config(scale: LoadScale, *, points: bool) -> str:
    """What assets/wall_map.js recolours by and draws, as JSON: the scale's thresholds with their
    colours, and whether single alarm markers belong on this map (else a count per area)."""
    stops = [[v, _hex(c)] for v, c in zip(scale.stops, COLOURS, strict=True)]
    return json.dumps({"stops": stops, "points": points}, separators=(",", ":"))


def _feature(geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def areas_data(
    areas: list[Area], load: Mapping[str, int], lang: Lang, scale: LoadScale | None
) -> dict[str, Any]:
    """The children as GeoJSON, each with its code, name, open cases and fill colour on `scale`."""
    stops = scale.stops if scale is not None else (0, 1, 2)
    return {
        "type": "FeatureCollection",
        "features": [
            _feature(
                a.geometry,
                {
                    "code": a.node.code,
                    "name": a.node.name(lang),
                    "open": load.get(a.node.code, 0),
                    "color": load_colour(load.get(a.node.code, 0), stops),
                },
            )
            for a in areas
        ],
    }


def labels_data(
    areas: list[Area],
    load: Mapping[str, int],
    lang: Lang,
    cameras: Mapping[str, int] | None = None,
    alarms: Mapping[str, tuple[int, int]] | None = None,
    names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A label point per child at its anchor (inside its polygon, where it has the most room),
    named by `names` (the short names the ranking and the lists use) or its own name, with the
    child's camera count when `cameras` is given (the map's cameras, aggregated per child) and its
    open alarms when `alarms` is given ((all, high-severity) per child: the map counts alarms per
    area instead of drawing each)."""
    names = names or {}
    counts = cameras or {}
    return {
        "type": "FeatureCollection",
        "features": [
            _feature(
                {"type": "Point", "coordinates": list(a.anchor or (a.node.lon, a.node.lat))},
                {
                    "code": a.node.code,
                    "name": names.get(a.node.code) or a.node.name(lang),
                    "open": number(load.get(a.node.code, 0)),
                    "cameras": t("camera_count", lang, n=number(counts[a.node.code]))
                    if counts.get(a.node.code)
                    else "",
                }
                | (
                    {}
                    if alarms is None
                    else {
                        "alarms": alarms.get(a.node.code, (0, 0))[0],
                        "high": alarms.get(a.node.code, (0, 0))[1] > 0,
                    }
                ),
            )
            for a in areas
        ],
    }


def outline_data(outline: Area | None) -> dict[str, Any]:
    if outline is None:
        return EMPTY
    return {"type": "FeatureCollection", "features": [_feature(outline.geometry, {})]}


def viewport(
    areas: list[Area], outline: Area | None, points: Iterable[tuple[float, float]] = ()
) -> dict[str, Any] | None:
    """Fit the map to the scope (or its children when it has no outline) and any (lon, lat)
    `points` it must show, with a small margin, without animation (assets/wall_map.js fits the
    same bounds again whenever the map's panel changes size)."""
    bounds = bounds_of([outline] if outline is not None else areas)
    if bounds is None:
        return None
    west, south, east, north = bounds
    for lon, lat in points:
        west, south, east, north = min(west, lon), min(south, lat), max(east, lon), max(north, lat)
    return {
        "bounds": [[south, west], [north, east]],
        "transition": "fitBounds",
        "options": {"padding": [MARGIN, MARGIN], "animate": False},
    }


def legend(scale: LoadScale | None, lang: Lang, *, points: bool = True) -> list[Component]:
    """The colour scale on the map: the level's thresholds (the same for every scope of the
    level), carrying them as JSON for the live recolour (`data-scale`)."""
    if scale is None:
        return []  # a building: no children to colour
    low, mid, high = scale.stops
    config: dict[str, Any] = {"data-scale": scale_config(scale, points=points)}
    return [
        html.Span(t("load_legend", lang), className="wall-legend-label"),
        html.Span(number(low), id=ids.Wall.LEGEND_LOW, className="wall-legend-value"),
        html.Span(className="wall-legend-bar wall-legend-bar-low", **config),
        html.Span(number(mid), className="wall-legend-value"),
        html.Span(className="wall-legend-bar wall-legend-bar-high"),
        html.Span(f"{number(high)}+", id=ids.Wall.LEGEND_HIGH, className="wall-legend-value"),
    ]


def _point(lon: float, lat: float, properties: dict[str, Any]) -> dict[str, Any]:
    return _feature({"type": "Point", "coordinates": [lon, lat]}, properties)


def _collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def workers_data(workers: list[WorkerPoint], scope: str) -> dict[str, Any]:
    """The grid workers with a known position; `on` = on duty (else drawn dimmed). `scope` lets
    assets/wall_map.js move only the workers of the map it shows."""
    return _collection(
        [
            _point(
                w.lon,
                w.lat,
                {
                    "code": w.code,
                    "name": w.name,
                    "on": w.on_duty,
                    "at": w.at.isoformat() + "Z" if w.at else None,
                    "scope": scope,
                },
            )
            for w in workers
            if w.lon is not None and w.lat is not None
        ]
    )


def cameras_data(cameras: list[CameraPoint]) -> dict[str, Any]:
    """The single cameras (only low levels have any: above, the labels carry a count per child)."""
    return _collection([_point(c.lon, c.lat, {"code": c.code}) for c in cameras])


def alarms_data(alarms: list[AlarmPoint], scope: str) -> dict[str, Any]:
    """Active alarms at their cameras; `high` ones are red and pulse faster."""
    return _collection(
        [
            _point(
                a.lon,
                a.lat,
                {
                    "id": a.id,
                    "type": a.type,
                    "severity": a.severity,
                    "status": a.status,
                    "high": a.severity >= HIGH_SEVERITY,
                    "scope": scope,
                },
            )
            for a in alarms
        ]
    )
