"""Builds one district's tree: streets → communities → grids → buildings tiling its real outline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from data_sources.model import Level
from data_sources.seed.geometry import area_km2, geojson, subdivide
from data_sources.seed.profile import PANLONG_STREETS, SYLLABLES, DistrictProfile

BUILDINGS_PER_GRID = (3, 7)  # uniform, inclusive bounds
PERSONS_PER_HOUSEHOLD = 2.8


@dataclass(slots=True)
class SeedNode:
    """A node before ids are assigned; `path` holds the indexes of its ancestors' codes."""

    code: str
    level: Level
    parent_code: str | None
    name_zh: str
    name_en: str
    lon: float
    lat: float
    area_km2: float
    households: int
    geometry: str
    children: list[SeedNode] = field(default_factory=list)


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


def _node(
    geometry: BaseGeometry,
    *,
    code: str,
    level: Level,
    parent: str | None,
    names: tuple[str, str],
    households: int = 0,
) -> SeedNode:
    point = geometry.point_on_surface()
    return SeedNode(
        code=code,
        level=level,
        parent_code=parent,
        name_zh=names[0],
        name_en=names[1],
        lon=round(point.x, 6),
        lat=round(point.y, 6),
        area_km2=round(area_km2(geometry), 4),
        households=households,
        geometry=geojson(geometry),
    )


def _urban_first(cells: list[BaseGeometry], center: tuple[float, float]) -> list[BaseGeometry]:
    """Cells ordered by distance from the city centre, so the first ones are the urban core."""
    points = shapely.point_on_surface(np.array(cells, dtype=object))
    dist = shapely.distance(points, shapely.Point(center))
    return [cells[i] for i in np.argsort(dist, kind="stable")]


CITY_CENTRE = (102.712, 25.040)  # 昆明 五一路/东风广场, GCJ-02


def build_district(
    feature: dict[str, Any], profile: DistrictProfile, seed: int
) -> tuple[SeedNode, dict[str, int]]:
    """The district node with its whole subtree, and its counts per level."""
    rng = np.random.default_rng([seed, int(profile.adcode)])
    props = feature["properties"]
    outline = shapely.make_valid(shape(feature["geometry"]))
    district = _node(
        outline,
        code=profile.adcode,
        level=Level.DISTRICT,
        parent=None,
        names=(props["name_zh"], props["name_en"]),
    )
    counts = dict.fromkeys(("street", "community", "grid", "building", "households"), 0)
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
        street = _node(
            street_cell,
            code=street_code,
            level=Level.STREET,
            parent=district.code,
            names=street_names,
        )
        district.children.append(street)
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
            community = _node(
                community_cell,
                code=community_code,
                level=Level.COMMUNITY,
                parent=street.code,
                names=community_names,
            )
            street.children.append(community)
            n_grids = grids_per_community[community_index]
            community_index += 1
            for g, grid_cell in enumerate(subdivide(community_cell, n_grids, rng)):
                grid_code = f"{community_code}{g + 1:03d}"
                grid = _node(
                    grid_cell,
                    code=grid_code,
                    level=Level.GRID,
                    parent=community.code,
                    names=(
                        f"{community_names[0]}第{g + 1}网格",
                        f"{community_names[1]} Grid {g + 1}",
                    ),
                )
                community.children.append(grid)
                n_buildings = int(rng.integers(BUILDINGS_PER_GRID[0], BUILDINGS_PER_GRID[1] + 1))
                households = np.rint(rng.uniform(0.5, 1.5, n_buildings) * mean_households).astype(
                    int
                )
                for b, building_cell in enumerate(subdivide(grid_cell, n_buildings, rng)):
                    grid.children.append(
                        _node(
                            building_cell,
                            code=f"{grid_code}{b + 1:03d}",
                            level=Level.BUILDING,
                            parent=grid.code,
                            names=(f"{g + 1}-{b + 1}号楼", f"Building {g + 1}-{b + 1}"),
                            households=int(households[b]),
                        )
                    )
                grid.households = int(households.sum())
                counts["building"] += n_buildings
                counts["households"] += grid.households
            community.households = sum(x.households for x in community.children)
            counts["grid"] += n_grids
        street.households = sum(x.households for x in street.children)
        counts["community"] += len(community_cells)
    district.households = sum(x.households for x in district.children)
    counts["street"] = len(street_cells)
    return district, counts
