"""The demo city: real Panlong figures, polygons that tile their parents, determinism, the CLI."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import mapping, shape
from sqlalchemy import Engine, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cli import cli
from data_sources import db
from data_sources.model import LEVELS, Level
from data_sources.schema import Base, CaseRow, NodeRow
from data_sources.seed.city import SeedReport, seed_city
from data_sources.seed.geometry import DECIMALS, SIMPLIFY_DEG, Cuts, geojson_many, subdivide
from data_sources.seed.history import RESOLVED, SATISFACTION, _choice, _Options
from data_sources.seed.profile import CITY_GRIDS, district_profiles
from data_sources.seed.writer import Batch, sqlite_datetime

from .conftest import AS_OF, TZ

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


def test_node_ids_run_breadth_first(seeded: tuple[Engine, SeedReport]) -> None:
    """Ids go level by level, and within a level in the order of the parents."""
    engine, _ = seeded
    with Session(engine) as session:
        rows = session.execute(
            select(NodeRow.id, NodeRow.parent_id, NodeRow.level).order_by(NodeRow.id)
        ).all()
    assert [r.id for r in rows] == list(range(1, len(rows) + 1))
    depths = [LEVELS.index(Level(r.level)) for r in rows]
    assert depths == sorted(depths)
    for depth in set(depths) - {0}:
        parents = [r.parent_id for r, d in zip(rows, depths, strict=True) if d == depth]
        assert parents == sorted(parents)


def test_seeded_references_hold_and_sqlite_settings_come_back(
    seeded: tuple[Engine, SeedReport],
) -> None:
    """The bulk load skips foreign-key checks on SQLite: the rows must still satisfy them.

    PostgreSQL checks every reference as the rows go in; there the constraints must still exist.
    """
    engine, _ = seeded
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        else:
            foreign_keys = conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.table_constraints"
                    " WHERE constraint_type = 'FOREIGN KEY' AND table_schema = current_schema()"
                )
            ).scalar()
            assert foreign_keys and foreign_keys >= 5


def test_subdivide_gives_n_cells_inside() -> None:
    square = shapely.box(0, 0, 1, 1)
    cells = subdivide(square, 25, np.random.default_rng(1), relax=1)
    assert len(cells) == 25
    assert sum(c.area for c in cells) == pytest.approx(1.0)
    assert (
        shapely.union_all(cells).equals_exact(square, 1e-9)
        or shapely.union_all(cells).symmetric_difference(square).area < 1e-9
    )


def test_cuts_are_subdivide_done_together() -> None:
    """Cutting many polygons at once draws the same numbers and gives the same cells."""
    polygons = [
        shapely.box(0, 0, 1, 1),
        shapely.Polygon([(0, 0), (3, 0), (3, 1), (1, 1), (1, 3), (0, 3)]),
        shapely.box(5, 5, 6, 6).difference(shapely.box(5.4, 5.4, 5.6, 5.6)),
        shapely.box(2, 2, 3, 3),
    ]
    counts = [5, 7, 1, 3]
    one_by_one, together = np.random.default_rng(4), np.random.default_rng(4)
    expected = [
        c for p, n in zip(polygons, counts, strict=True) for c in subdivide(p, n, one_by_one)
    ]
    cuts = Cuts()
    for p, n in zip(polygons, counts, strict=True):
        cuts.add(p, n, together)
    cells = cuts.cells()
    assert [c.wkb for c in cells] == [c.wkb for c in expected]
    assert together.random() == one_by_one.random()


@pytest.mark.parametrize("options", [RESOLVED, SATISFACTION])
def test_options_pick_draws_what_choice_draws(options: dict[object, float]) -> None:
    picker, chooser = np.random.default_rng(11), np.random.default_rng(11)
    table = _Options.of(options)
    for _ in range(2_000):
        assert table.pick(picker) == _choice(chooser, options, 1)[0]
        assert picker.integers(7) == chooser.integers(7)  # and the streams stay in step


def _geojson_one_by_one(geometry: shapely.Geometry) -> str:
    """What `geojson` stores, written the plain way: simplify, round, `json.dumps(mapping)`."""
    simple = shapely.simplify(geometry, SIMPLIFY_DEG, preserve_topology=True)
    simple = geometry if simple.is_empty else simple
    rounded = shapely.set_precision(simple, 10**-DECIMALS)
    rounded = simple if rounded.is_empty else rounded
    return json.dumps(mapping(rounded), separators=(",", ":"))


def test_geojson_many_writes_what_json_would() -> None:
    shapes = [
        shapely.box(102.7, 25.0, 102.71, 25.013),
        shapely.box(0, 0, 1, 1).difference(shapely.box(0.2, 0.2, 0.4, 0.4)),  # with a hole
        shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)]),
        shapely.Polygon(),
        shapely.Point(102.123456789, 25.987654321).buffer(0.01),
    ]
    geometries = np.empty(len(shapes), dtype=object)
    geometries[:] = shapes
    assert geojson_many(geometries) == [_geojson_one_by_one(g) for g in shapes]


@pytest.mark.parametrize(
    "value", [datetime(2026, 11, 23, 6), datetime(2026, 1, 2, 3, 4, 5, 60), datetime(999, 1, 1)]
)
def test_sqlite_datetime_is_how_sqlalchemy_stores_it(value: datetime) -> None:
    dialect = sqlite.dialect()
    process = CaseRow.__table__.c.reported_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert sqlite_datetime(value) == process(value)
    batch = Batch("cases", ("id", "reported_at", "closed_at"), [("a", value, None)])
    assert batch.with_text_datetimes().rows == [("a", process(value), None)]


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


def _dump_digest(path: Path) -> str:
    """The digest CI compares: of `sqlite3 iterdump`, which also sees the order rows went in."""
    conn = sqlite3.connect(path)
    try:
        return hashlib.sha256("\n".join(conn.iterdump()).encode()).hexdigest()
    finally:
        conn.close()


@pytest.mark.slow
def test_seed_does_not_depend_on_the_number_of_processes(tmp_path: Path) -> None:
    paths = [tmp_path / f"{n}.db" for n in (1, 2)]
    for processes, path in zip((1, 2), paths, strict=True):
        engine = db.make_engine(f"sqlite:///{path}")
        db.upgrade(engine)
        seed_city(
            engine,
            seed=3,
            as_of=AS_OF,
            tz=TZ,
            districts=["530126", "530124"],
            days=2,
            processes=processes,
        )
        engine.dispose()
    assert _dump_digest(paths[0]) == _dump_digest(paths[1])


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
