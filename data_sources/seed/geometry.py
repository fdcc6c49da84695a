"""Subdividing a polygon into n cells that tile it (Voronoi cells of points inside, clipped)."""

from __future__ import annotations

import itertools
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
POLYGON = 3  # shapely.GeometryType.POLYGON

ObjectArray = np.ndarray[Any, np.dtype[np.object_]]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
_ENCODER = json.JSONEncoder(separators=(",", ":"))


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
    cuts = Cuts()
    cuts.add(polygon, n, rng)
    cells = cuts.cells()
    for _ in range(relax if n > 1 else 0):
        centroids = shapely.get_coordinates(shapely.point_on_surface(cells))
        sites = centroids + rng.normal(0, 1e-9, centroids.shape)
        cells = list(_clipped_voronoi(_objects([polygon]), [sites]))
    return cells


class Cuts:
    """Subdivisions (without relaxation) whose sites are drawn now and whose cells are cut later.

    The random draws happen in `add`, in call order, exactly as `subdivide` makes them; the
    geometry, which draws nothing, is done for all of them at once in `cells`, where shapely's
    vectorised calls spare a Python round trip per polygon.
    """

    def __init__(self) -> None:
        self.polygons: list[BaseGeometry] = []
        self.counts: list[int] = []
        self.sites: list[FloatArray] = []

    def add(self, polygon: BaseGeometry, n: int, rng: np.random.Generator) -> None:
        self.polygons.append(polygon)
        self.counts.append(max(n, 1))
        if n > 1:
            points = points_inside(polygon, n, rng)
            # Jitter duplicates apart: Voronoi needs distinct sites.
            self.sites.append(points + rng.normal(0, 1e-9, points.shape))

    def cells(self) -> list[BaseGeometry]:
        """The cells of every subdivision, in the order they were added."""
        cut = [p for p, n in zip(self.polygons, self.counts, strict=True) if n > 1]
        cells = iter(_clipped_voronoi(_objects(cut), self.sites).tolist())
        out: list[BaseGeometry] = []
        for polygon, n in zip(self.polygons, self.counts, strict=True):
            out.extend(itertools.islice(cells, n) if n > 1 else [polygon])
        return out


def _objects(items: list[BaseGeometry]) -> ObjectArray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _clipped_voronoi(polygons: ObjectArray, sites: list[FloatArray]) -> ObjectArray:
    """Each polygon's Voronoi cells of its sites, clipped to it: one cell per site, in site order."""
    if not sites:
        return _objects([])
    counts = np.array([len(s) for s in sites])
    owner = np.repeat(np.arange(len(sites)), counts)
    site_points = shapely.points(np.concatenate(sites))
    diagrams = shapely.voronoi_polygons(
        shapely.multipoints(site_points, indices=owner), extend_to=polygons
    )
    regions, region_owner = shapely.get_parts(diagrams, return_index=True)
    matched = _match_regions(site_points, counts, regions, region_owner)
    cells = shapely.intersection(matched, polygons[owner])
    empty = shapely.is_empty(cells)
    if empty.any():
        cells[empty] = shapely.buffer(site_points[empty], 1e-6)
    return cells  # type: ignore[no-any-return]


def _match_regions(
    site_points: ObjectArray, counts: IntArray, regions: ObjectArray, region_owner: IntArray
) -> ObjectArray:
    """For each site, the region of its own diagram that contains it.

    voronoi_polygons does not keep input order. All site-region pairs within each diagram are
    tested at once; a site in exactly one region (the normal case) gets it. A diagram where some
    site is not is matched on its own through an STRtree, as it was when each polygon was cut by
    itself (a site lost to a degenerate diagram gets a tiny circle instead).
    """
    owner = np.repeat(np.arange(len(counts)), counts)
    region_count = np.bincount(region_owner, minlength=len(counts))
    region_first = np.cumsum(region_count) - region_count
    pairs = region_count[owner]
    pair_site = np.repeat(np.arange(len(owner)), pairs)
    pair_first = np.cumsum(pairs) - pairs
    pair_region = np.repeat(region_first[owner] - pair_first, pairs) + np.arange(len(pair_site))
    hit = shapely.intersects(site_points[pair_site], regions[pair_region])
    matched = np.empty(len(owner), dtype=object)
    matched[pair_site[hit]] = regions[pair_region[hit]]
    hits = np.bincount(pair_site[hit], minlength=len(owner))
    site_first = np.cumsum(counts) - counts
    for k in np.unique(owner[hits != 1]).tolist():
        sites = slice(site_first[k], site_first[k] + counts[k])
        own = regions[region_first[k] : region_first[k] + region_count[k]]
        site_idx, region_idx = shapely.STRtree(own).query(
            site_points[sites], predicate="intersects"
        )
        order = np.full(counts[k], -1)
        order[site_idx] = region_idx
        matched[sites] = [
            own[j] if j >= 0 else point.buffer(1e-6)
            for point, j in zip(site_points[sites], order.tolist(), strict=True)
        ]
    return matched


def geojson(geometry: BaseGeometry) -> str:
    """Compact GeoJSON of a polygonal geometry, simplified and rounded for storage."""
    return geojson_many(_objects([geometry]))[0]


def geojson_many(geometries: ObjectArray) -> list[str]:
    """`geojson` of each geometry, computed for the whole array at once."""
    simple = shapely.simplify(geometries, SIMPLIFY_DEG, preserve_topology=True)
    simple = np.where(shapely.is_empty(simple), geometries, simple)
    rounded = shapely.set_precision(simple, 10**-DECIMALS)
    rounded = np.where(shapely.is_empty(rounded), simple, rounded)
    return _dumps(rounded)


def _dumps(geometries: ObjectArray) -> list[str]:
    """`json.dumps(mapping(g))` of each geometry, with a fast path for polygons.

    The fast path writes polygon coordinates from one `get_coordinates` call, as JSON does (with
    `repr`), instead of going through a Python object per ring and point: the same text, sooner.
    """
    kinds = shapely.get_type_id(geometries)
    out = [""] * len(geometries)
    for i in np.flatnonzero(kinds != POLYGON).tolist():
        out[i] = _ENCODER.encode(shapely.geometry.mapping(geometries[i]))
    polygons = np.flatnonzero(kinds == POLYGON)
    rings, ring_polygon = shapely.get_rings(geometries[polygons], return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    points = [f"[{x!r},{y!r}]" for x, y in coords.tolist()]
    ring_texts = []
    start = 0
    for end in np.cumsum(np.bincount(coord_ring, minlength=len(rings))).tolist():
        ring_texts.append("[" + ",".join(points[start:end]) + "]")
        start = end
    start = 0
    polygon_ends = np.cumsum(np.bincount(ring_polygon, minlength=len(polygons))).tolist()
    for i, end in zip(polygons.tolist(), polygon_ends, strict=True):
        out[i] = '{"type":"Polygon","coordinates":[' + ",".join(ring_texts[start:end]) + "]}"
        start = end
    return out


def surface_points(geometries: ObjectArray) -> tuple[list[float], list[float]]:
    """A point inside each geometry, as (lon, lat) lists rounded for storage."""
    points = shapely.point_on_surface(geometries)
    return (
        [round(x, DECIMALS) for x in shapely.get_x(points).tolist()],
        [round(y, DECIMALS) for y in shapely.get_y(points).tolist()],
    )


def area_km2(geometry: BaseGeometry) -> float:
    """Approximate area in km² of a lon/lat geometry (local equirectangular scale)."""
    return areas_km2(_objects([geometry]))[0]


def areas_km2(geometries: ObjectArray) -> list[float]:
    """`area_km2` of each geometry."""
    lats = shapely.get_y(shapely.centroid(geometries)).tolist()
    areas = shapely.area(geometries).tolist()
    return [
        area * KM_PER_DEG**2 * math.cos(math.radians(lat))
        for area, lat in zip(areas, lats, strict=True)
    ]
