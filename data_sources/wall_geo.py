"""Map outlines for the wall: the stored GeoJSON of a few nodes, simplified for the screen.

A wall shows one scope's children on a ~1,000 px map, so detail finer than about a pixel of the
scope's extent is dropped (the city's real district outlines shrink several-fold) and coordinates are
rounded; only the nodes the scope needs are ever read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import mapping, shape
from shapely.ops import polylabel

from data_sources.model import Node

#: Tolerance as a share of the scope's larger side: about one pixel of a 1,000 px map.
TOLERANCE_SHARE = 1 / 1500
#: Decimal places kept (1e-6 degrees ≈ 0.1 m).
DIGITS = 6


@dataclass(frozen=True, slots=True)
class Area:
    """A node and its outline as a GeoJSON geometry mapping; `bounds` is (west, south, east, north)."""

    node: Node
    geometry: dict[str, Any]
    bounds: tuple[float, float, float, float]
    #: Where the label goes, (lon, lat): the point of the largest part farthest from its edges
    #: (a label there has the most room); None: the node's stored surface point.
    anchor: tuple[float, float] | None = None


def _rounded(coords: Any, digits: int) -> Any:
    if isinstance(coords, float | int):
        return round(float(coords), digits)
    return [_rounded(c, digits) for c in coords]


def simplify_geometry(geometry: dict[str, Any], tolerance: float) -> dict[str, Any]:
    """`geometry` (a GeoJSON Polygon or MultiPolygon) without detail below `tolerance` degrees,
    topology kept (no polygon collapses or self-intersects), coordinates rounded to `DIGITS`."""
    return _simplified(shape(geometry), tolerance)


def _simplified(geometry: Any, tolerance: float) -> dict[str, Any]:
    out = dict(mapping(shapely.simplify(geometry, tolerance, preserve_topology=True)))
    out["coordinates"] = _rounded(out["coordinates"], DIGITS)
    return out


def vertex_count(geometry: dict[str, Any]) -> int:
    """How many positions a GeoJSON geometry holds (what the browser has to draw)."""
    return int(shapely.get_num_coordinates(shape(geometry)))


def areas_of(nodes: list[tuple[Node, str]]) -> list[Area]:
    """Areas of (node, stored GeoJSON) pairs, simplified together for their common extent."""
    shapes = [shape(json.loads(text)) for _, text in nodes]
    if not shapes:
        return []
    west, south, east, north = shapely.total_bounds(shapes)
    tolerance = max(east - west, north - south) * TOLERANCE_SHARE
    return [
        Area(
            node,
            _simplified(geom, tolerance),
            tuple(float(b) for b in geom.bounds),  # type: ignore[arg-type]
            label_anchor(geom, tolerance),
        )
        for (node, _), geom in zip(nodes, shapes, strict=True)
    ]


def label_anchor(geometry: Any, tolerance: float) -> tuple[float, float] | None:
    """The pole of inaccessibility of `geometry`'s largest polygon (within `tolerance` degrees),
    rounded to `DIGITS`; None for an empty or non-areal geometry."""
    parts = [g for g in getattr(geometry, "geoms", [geometry]) if g.geom_type == "Polygon"]
    if not parts:
        return None
    largest = max(parts, key=lambda g: g.area)
    if largest.is_empty or largest.area == 0:
        return None
    point = polylabel(largest, tolerance=max(tolerance, 1e-7))
    # The centroid reads better (a long area's label in its middle, not at one end) wherever it
    # has nearly as much room around it.
    centroid = largest.centroid
    room = largest.boundary.distance(point)
    if largest.contains(centroid) and largest.boundary.distance(centroid) >= 0.8 * room:
        point = centroid
    return round(point.x, DIGITS), round(point.y, DIGITS)


def bounds_of(areas: list[Area]) -> tuple[float, float, float, float] | None:
    """(west, south, east, north) around all `areas`, or None when there are none."""
    if not areas:
        return None
    return (
        min(a.bounds[0] for a in areas),
        min(a.bounds[1] for a in areas),
        max(a.bounds[2] for a in areas),
        max(a.bounds[3] for a in areas),
    )
