"""Builds one district's tree: streets → communities → grids → buildings tiling its real outline."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from data_sources.model import Level
from data_sources.seed.geometry import Cuts, areas_km2, geojson_many, subdivide, surface_points
from data_sources.seed.profile import PANLONG_STREETS, SYLLABLES, DistrictProfile

BUILDINGS_PER_GRID = (3, 7)  # uniform, inclusive bounds
PERSONS_PER_HOUSEHOLD = 2.8
#: The levels a district tree holds, in breadth-first order; `DistrictNodes.level` indexes these.
TREE_LEVELS = (Level.DISTRICT, Level.STREET, Level.COMMUNITY, Level.GRID, Level.BUILDING)
DISTRICT, STREET, COMMUNITY, GRID, BUILDING = range(len(TREE_LEVELS))

#: The columns of `node_rows`, as in the `nodes` table.
NODE_COLUMNS = (
    "id",
    "code",
    "level",
    "parent_id",
    "name_zh",
    "name_en",
    "lon",
    "lat",
    "area_km2",
    "households",
    "geometry",
    "district_id",
    "street_id",
    "community_id",
    "grid_id",
)
CITY_ID = 1

IntArray = np.ndarray[Any, np.dtype[np.int64]]
#: Positions of a node's district, street, community and grid within their levels (-1: none).
Ancestors = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DistrictNodes:
    """One district's nodes as columns, level by level (the district first, buildings last).

    Within a level, nodes are in breadth-first order. Nodes refer to each other by their position
    within their own level, so ids can be given once every district is built: `ancestors[i, k]` is
    the position of node i's ancestor at level k (district, street, community, grid; the node itself
    at its own level, -1 below it). A node's parent is its ancestor one level up.
    """

    level: IntArray
    ancestors: IntArray
    code: list[str]
    name_zh: list[str]
    name_en: list[str]
    lon: list[float]
    lat: list[float]
    area_km2: list[float]
    households: list[int]
    geometry: list[str]

    def count(self, level: int) -> int:
        return int(np.count_nonzero(self.level == level))

    def without_geometry(self) -> DistrictNodes:
        """A copy with blank geometry, cheaper to send to another process that does not need it."""
        return replace(self, geometry=[""] * len(self.code))


def first_ids(districts: list[DistrictNodes]) -> list[list[int]]:
    """For each district, the id of its first node at each level.

    Ids run breadth-first over the whole city from the city node (`CITY_ID`): all districts, then
    all streets (district by district), and so on down to the buildings.
    """
    counts = np.array([[d.count(level) for level in range(len(TREE_LEVELS))] for d in districts])
    level_first = CITY_ID + 1 + np.concatenate([[0], np.cumsum(counts.sum(axis=0))[:-1]])
    before = np.cumsum(counts, axis=0) - counts
    return [[int(i) for i in district] for district in level_first + before]


def node_rows(nodes: DistrictNodes, first: list[int], level: int) -> list[tuple[Any, ...]]:
    """The `nodes` rows (`NODE_COLUMNS`) of a district's nodes at `level`, given `first_ids`."""
    start, stop = np.searchsorted(nodes.level, [level, level + 1]).tolist()
    ancestors = nodes.ancestors[start:stop]
    ancestor_ids = [
        [None if p < 0 else first[k] + p for p in ancestors[:, k].tolist()] for k in range(4)
    ]
    parent_ids = [CITY_ID] * (stop - start) if level == DISTRICT else ancestor_ids[level - 1]
    return list(
        zip(
            range(first[level], first[level] + stop - start),
            nodes.code[start:stop],
            [TREE_LEVELS[level].value] * (stop - start),
            parent_ids,
            nodes.name_zh[start:stop],
            nodes.name_en[start:stop],
            nodes.lon[start:stop],
            nodes.lat[start:stop],
            nodes.area_km2[start:stop],
            nodes.households[start:stop],
            nodes.geometry[start:stop],
            *ancestor_ids,
            strict=True,
        )
    )


@dataclass(slots=True)
class _Tree:
    """Nodes collected level by level while the district is being cut up.

    Buildings are the leaves and three quarters of the nodes: their cells are cut all at once at
    the end (`Cuts`), since no later step depends on them.
    """

    cells: list[list[BaseGeometry]] = field(default_factory=lambda: [[] for _ in TREE_LEVELS])
    rows: list[list[tuple[str, str, str, Ancestors]]] = field(
        default_factory=lambda: [[] for _ in TREE_LEVELS]
    )
    building_cuts: Cuts = field(default_factory=Cuts)
    building_households: list[int] = field(default_factory=list)

    def add(
        self,
        level: int,
        cell: BaseGeometry,
        code: str,
        names: tuple[str, str],
        parent: Ancestors = (-1, -1, -1, -1),
    ) -> Ancestors:
        """Add a node under the ancestors `parent`; returns the ancestors of its children."""
        ancestors = (*parent[:level], len(self.rows[level]), *parent[level + 1 :])
        self.cells[level].append(cell)
        self.rows[level].append((code, names[0], names[1], ancestors))
        return ancestors

    def add_buildings(
        self,
        grid_cell: BaseGeometry,
        grid: Ancestors,
        rows: list[tuple[str, str, str]],
        households: list[int],
        rng: np.random.Generator,
    ) -> None:
        """Buildings (code and names, households) tiling `grid_cell`."""
        self.building_cuts.add(grid_cell, len(rows), rng)
        # A building has no column of its own: its ancestors are its grid's.
        self.rows[BUILDING] += [(code, zh, en, grid) for code, zh, en in rows]
        self.building_households += households

    def columns(self) -> DistrictNodes:
        self.cells[BUILDING] = self.building_cuts.cells()
        cells = np.array([c for level in self.cells for c in level], dtype=object)
        rows = [r for level in self.rows for r in level]
        level = np.repeat(np.arange(len(TREE_LEVELS)), [len(r) for r in self.rows])
        ancestors = np.array([r[3] for r in rows], dtype=np.int64).reshape(-1, 4)
        lon, lat = surface_points(cells)
        return DistrictNodes(
            level=level,
            ancestors=ancestors,
            code=[r[0] for r in rows],
            name_zh=[r[1] for r in rows],
            name_en=[r[2] for r in rows],
            lon=lon,
            lat=lat,
            area_km2=[round(a, 4) for a in areas_km2(cells)],
            households=self._summed_households(level, ancestors),
            geometry=geojson_many(cells),
        )

    def _summed_households(self, level: IntArray, ancestors: IntArray) -> list[int]:
        """Buildings keep theirs; every other node holds the sum of the buildings under it."""
        buildings = level == BUILDING
        weights = np.array(self.building_households, dtype=np.float64)
        out: list[int] = []
        for k in range(BUILDING):
            sums = np.bincount(ancestors[buildings, k], weights, minlength=len(self.rows[k]))
            out += sums.astype(np.int64).tolist()
        return out + self.building_households


def allocate(total: int, weights: np.ndarray[Any, np.dtype[np.float64]]) -> list[int]:
    """Split `total` into len(weights) integers ≥ 1 proportional to weights (largest remainder)."""
    n = len(weights)
    if total < n:
        total = n
    raw = weights / weights.sum() * (total - n)
    counts = np.floor(raw).astype(int)
    remainder = int(total - n - counts.sum())
    if remainder:
        counts[np.argsort(-(raw - counts), kind="stable")[:remainder]] += 1
    return [int(c) + 1 for c in counts]


class _Names:
    """Unique generated place names within one scope."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def pick(self) -> tuple[str, str]:
        for _ in range(1000):
            a, b = self.rng.choice(len(SYLLABLES), 2, replace=False)
            zh = SYLLABLES[a][0] + SYLLABLES[b][0]
            if zh not in self.used:
                self.used.add(zh)
                en = SYLLABLES[a][1] + SYLLABLES[b][1]
                return zh, en.capitalize()
        raise RuntimeError("ran out of generated names")


def _urban_first(cells: list[BaseGeometry], center: tuple[float, float]) -> list[BaseGeometry]:
    """Cells ordered by distance from the city centre, so the first ones are the urban core."""
    points = shapely.point_on_surface(np.array(cells, dtype=object))
    dist = shapely.distance(points, shapely.Point(center))
    return [cells[i] for i in np.argsort(dist, kind="stable")]


CITY_CENTRE = (102.712, 25.040)  # 昆明 五一路/东风广场, GCJ-02


def build_district(feature: dict[str, Any], profile: DistrictProfile, seed: int) -> DistrictNodes:
    """The district node with its whole subtree.

    Geometry-derived columns (surface point, area, stored GeoJSON) are computed for all nodes at
    once at the end: shapely's vectorised calls cost a fraction of one call per node.
    """
    rng = np.random.default_rng([seed, int(profile.adcode)])
    props = feature["properties"]
    outline = shapely.make_valid(shape(feature["geometry"]))
    tree = _Tree()
    district = tree.add(DISTRICT, outline, profile.adcode, (props["name_zh"], props["name_en"]))
    street_cells = _urban_first(subdivide(outline, profile.streets, rng, relax=2), CITY_CENTRE)
    # Urban streets are small and dense: weight communities towards the centre.
    weights = np.array([1.0 / (1 + i) ** 0.5 for i in range(len(street_cells))])
    communities_per_street = allocate(profile.communities, weights)
    grid_weights = rng.uniform(0.7, 1.3, profile.communities)
    grids_per_community = allocate(profile.grids, grid_weights)
    district_names = _Names(rng)
    mean_buildings = sum(BUILDINGS_PER_GRID) / 2 * profile.grids
    mean_households = profile.population * 10_000 / PERSONS_PER_HOUSEHOLD / mean_buildings
    community_index = 0
    for s, street_cell in enumerate(street_cells):
        town = not profile.urban and s >= 2
        if profile.adcode == "530103":
            base = PANLONG_STREETS[s]
        else:
            base = district_names.pick()
        street_names = (
            (base[0] + "镇", base[1] + " Town")
            if town
            else (base[0] + "街道", base[1] + " Subdistrict")
        )
        street_code = f"{profile.adcode}{s + 1:03d}"
        street = tree.add(STREET, street_cell, street_code, street_names, district)
        community_cells = subdivide(street_cell, communities_per_street[s], rng, relax=1)
        names = _Names(rng)
        for c, community_cell in enumerate(community_cells):
            base = names.pick()
            village = town and c % 3 != 0
            community_names = (
                (base[0] + "村", base[1] + " Village")
                if village
                else (base[0] + "社区", base[1] + " Community")
            )
            community_code = f"{street_code}{c + 1:03d}"
            community = tree.add(COMMUNITY, community_cell, community_code, community_names, street)
            n_grids = grids_per_community[community_index]
            community_index += 1
            for g, grid_cell in enumerate(subdivide(community_cell, n_grids, rng)):
                grid_code = f"{community_code}{g + 1:03d}"
                grid_names = (
                    f"{community_names[0]}第{g + 1}网格",
                    f"{community_names[1]} Grid {g + 1}",
                )
                grid = tree.add(GRID, grid_cell, grid_code, grid_names, community)
                n_buildings = int(rng.integers(BUILDINGS_PER_GRID[0], BUILDINGS_PER_GRID[1] + 1))
                households = np.rint(rng.uniform(0.5, 1.5, n_buildings) * mean_households).astype(
                    int
                )
                buildings = [
                    (f"{grid_code}{b + 1:03d}", f"{g + 1}-{b + 1}号楼", f"Building {g + 1}-{b + 1}")
                    for b in range(n_buildings)
                ]
                tree.add_buildings(grid_cell, grid, buildings, households.tolist(), rng)
    return tree.columns()
