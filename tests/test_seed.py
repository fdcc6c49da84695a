"""The demo city: real Panlong figures, polygons that tile their parents, determinism, the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli import cli
from data_sources import db
from data_sources.model import Level
from data_sources.schema import Base, NodeRow
from data_sources.seed.city import SeedReport
from data_sources.seed.geometry import subdivide
from data_sources.seed.profile import CITY_GRIDS, district_profiles

PANLONG_STREETS = "拓东 鼓楼 东华 联盟 金辰 青云 龙泉 茨坝 双龙 松华 滇源 阿子营".split()


def test_panlong_has_its_real_figures(seeded: tuple[Engine, SeedReport]) -> None:
    engine, report = seeded
    assert report.nodes == {
        "city": 1,
        "district": 1,
        "street": 12,
        "community": 103,
        "grid": 620,
        "building": report.nodes["building"],
    }
    assert 620 * 3 <= report.nodes["building"] <= 620 * 7
    assert report.cameras == 4000
    assert report.workers == 520 + 12  # grid workers + one supervisor per street
    with Session(engine) as session:
        streets = session.scalars(
            select(NodeRow.name_zh).where(NodeRow.level == "street").order_by(NodeRow.code)
        ).all()
    assert [s.removesuffix("街道") for s in streets] == PANLONG_STREETS


def test_city_profile_sizes() -> None:
    profiles = district_profiles()
    assert len(profiles) == 14
    assert abs(sum(p.grids for p in profiles.values()) - CITY_GRIDS) < 10
    assert 130 <= sum(p.streets for p in profiles.values()) <= 145
    assert abs(sum(p.workers for p in profiles.values()) - 7000) < 10
    assert abs(sum(p.cameras for p in profiles.values()) - 50_000) < 10


def test_children_tile_their_parent(seeded: tuple[Engine, SeedReport]) -> None:
    """The children's polygons cover the parent and do not overlap (up to storage rounding)."""
    engine, _ = seeded
    with Session(engine) as session:
        rows = session.execute(
            select(NodeRow.id, NodeRow.parent_id, NodeRow.level, NodeRow.geometry)
        ).all()
    geometry = {r.id: shape(json.loads(r.geometry)) for r in rows}
    by_parent: dict[int, list[int]] = {}
    for r in rows:
        if r.parent_id is not None:
            by_parent.setdefault(r.parent_id, []).append(r.id)
    checked = 0
    for parent_id, kids in by_parent.items():
        level = next(r.level for r in rows if r.id == parent_id)
        if level == Level.GRID.value and checked > 60:
            continue
        parent = geometry[parent_id]
        cells = [geometry[k] for k in kids]
        union = shapely.union_all(cells)
        assert union.symmetric_difference(parent).area < 0.01 * parent.area
        assert sum(c.area for c in cells) == pytest.approx(parent.area, rel=0.01)
        checked += 1


def test_subdivide_gives_n_cells_inside() -> None:
    import numpy as np

    square = shapely.box(0, 0, 1, 1)
    cells = subdivide(square, 25, np.random.default_rng(1), relax=1)
    assert len(cells) == 25
    assert sum(c.area for c in cells) == pytest.approx(1.0)
    assert (
        shapely.union_all(cells).equals_exact(square, 1e-9)
        or shapely.union_all(cells).symmetric_difference(square).area < 1e-9
    )


def _digest(url: str) -> str:
    engine = db.make_engine(url)
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            order = ", ".join(c.name for c in table.primary_key.columns)
            for row in conn.execute(text(f"SELECT * FROM {table.name} ORDER BY {order}")):
                digest.update(repr(tuple(row)).encode())
    engine.dispose()
    return digest.hexdigest()


SEED_ARGS = [
    "--district",
    "530103",
    "--district",
    "530126",
    "--days",
    "7",
    "--as-of",
    "2026-11-23T06:00:00",
]


@pytest.mark.slow
def test_seed_twice_gives_identical_databases(tmp_path: Path) -> None:
    runner = CliRunner()
    urls = [f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db", "c.db")]
    outputs = []
    for url, seed in zip(urls, ["7", "7", "8"], strict=True):
        result = runner.invoke(cli, ["seed", "--seed", seed, "--database-url", url, *SEED_ARGS])
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "seeded in" in outputs[0]
    assert "district 2, street 17" in outputs[0]  # Panlong 12 + Shilin 5
    assert "cases" in outputs[0] and "workers" in outputs[0] and "cameras" in outputs[0]
    a, b, c = (_digest(url) for url in urls)
    assert a == b
    assert a != c


def test_seed_refuses_a_seeded_database(tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'x.db'}"
    args = ["seed", "--database-url", url, "--district", "530126", "--days", "1"]
    assert runner.invoke(cli, args).exit_code == 0
    again = runner.invoke(cli, args)
    assert again.exit_code == 1
    assert "already seeded" in again.output


def test_db_upgrade_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    result = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 0, result.output
    engine = db.make_engine(url)
    assert db.is_migrated(engine)
    engine.dispose()
