"""Subdividing a polygon into n cells that tile it (Voronoi cells of points inside, clipped)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

#: Simplification tolerance in degrees (~5 m) and coordinate precision of stored geometry.
SIMPLIFY_DEG = 5e-5
DECIMALS = 6
#: km per degree of latitude; longitude is scaled by cos(lat).
KM_PER_DEG = 111.32


def points_inside(
    polygon: BaseGeometry, n: int, rng: np.random.Generator
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """`n` distinct random points strictly inside `polygon`, as an (n, 2) array."""
    minx, miny, maxx, maxy = polygon.bounds
    shapely.prepare(polygon)
    found: list[np.ndarray[Any, np.dtype[np.float64]]] = []
    have = 0
    batch = max(16, n * 2)
    for _ in range(200):
        xs = rng.uniform(minx, maxx, batch)
        ys = rng.uniform(miny, maxy, batch)
        inside = shapely.contains_xy(polygon, xs, ys)
        pts = np.column_stack([xs[inside], ys[inside]])
        found.append(pts)
        have += len(pts)
        if have >= n:
            break
        batch *= 2
    points = np.concatenate(found)[:n]
    if len(points) < n:  # a sliver too thin to hit: fall back to points on its surface
        extra = [shapely.get_coordinates(polygon.point_on_surface())[0]] * (n - len(points))
        points = np.concatenate([points, np.array(extra)])
    return points


def subdivide(
    polygon: BaseGeometry, n: int, rng: np.random.Generator, *, relax: int = 0
) -> list[BaseGeometry]:
    """Split `polygon` into `n` non-overlapping cells whose union is `polygon`.

    Cells are Voronoi regions of random interior points, clipped to the polygon; `relax` rounds of
    Lloyd relaxation make their sizes more even (worth it for streets and communities).
    """
    if n <= 1:
        return [polygon]
    points = points_inside(polygon, n, rng)
    # Jitter duplicates apart: Voronoi needs distinct sites.
    points = points + rng.normal(0, 1e-9, points.shape)
    cells = _clipped_voronoi(polygon, points)
    for _ in range(relax):
        centroids = shapely.get_coordinates(shapely.point_on_surface(cells))
        cells = _clipped_voronoi(polygon, centroids + rng.normal(0, 1e-9, centroids.shape))
    return cells


def _clipped_voronoi(
    polygon: BaseGeometry, points: np.ndarray[Any, np.dtype[np.float64]]
) -> list[BaseGeometry]:
    sites = shapely.multipoints(points)
    regions = shapely.get_parts(shapely.voronoi_polygons(sites, extend_to=polygon))
    # voronoi_polygons does not keep input order: match each region to the site it contains.
    site_points = shapely.points(points)
    tree = shapely.STRtree(regions)
    site_idx, region_idx = tree.query(site_points, predicate="intersects")
    order = np.full(len(points), -1)
    order[site_idx] = region_idx
    matched = np.array(
        [regions[j] if j >= 0 else site_points[i].buffer(1e-6) for i, j in enumerate(order)],
        dtype=object,
    )
    cells = shapely.intersection(matched, polygon)
    empty = shapely.is_empty(cells)
    cells[empty] = shapely.buffer(site_points[empty], 1e-6)
    return list(cells)


def geojson(geometry: BaseGeometry) -> str:
    """Compact GeoJSON of a polygonal geometry, simplified and rounded for storage."""
    simple = shapely.simplify(geometry, SIMPLIFY_DEG, preserve_topology=True)
    if simple.is_empty:
        simple = geometry
    rounded = shapely.set_precision(simple, 10**-DECIMALS)
    if rounded.is_empty:
        rounded = simple
    return json.dumps(shapely.geometry.mapping(rounded), separators=(",", ":"))


def area_km2(geometry: BaseGeometry) -> float:
    """Approximate area in km² of a lon/lat geometry (local equirectangular scale)."""
    lat = geometry.centroid.y
    return float(geometry.area * KM_PER_DEG**2 * math.cos(math.radians(lat)))
