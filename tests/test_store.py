"""The SQL store on SQLite and PostgreSQL: schema, hierarchy queries, SQL KPIs equal Python KPIs."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from data_sources import store
from data_sources.kpi import Tally, kpis, tally_of_cases
from data_sources.model import FACT_LEVELS, Level
from data_sources.overview import load_overview, rank_by
from data_sources.schema import Base, CameraRow, CaseRow, NodeRow, WorkerRow
from data_sources.seed.city import SeedReport

from .conftest import AS_OF, area

SINCE = AS_OF - timedelta(days=30)


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_root_and_lineage(seeded: tuple[Engine, SeedReport]) -> None:
    engine, _ = seeded
    with Session(engine) as session:
        root = store.root_node(session=session)
        assert root is not None and root.level is Level.CITY and root.name_zh == "昆明市"
        building = session.scalars(
            select(NodeRow.code).where(NodeRow.level == Level.BUILDING.value).limit(1)
        ).one()
        node = store.node_by_code(session=session, code=building)
        assert node is not None
        chain = store.lineage(session=session, node=node)
        assert [n.level for n in chain] == list(Level)
        assert chain[1].name_zh == "盘龙区"


def test_ancestor_columns_are_consistent_with_parents(seeded: tuple[Engine, SeedReport]) -> None:
    engine, _ = seeded
    with Session(engine) as session:
        nodes = {r.id: r for r in session.scalars(select(NodeRow))}
        for row in nodes.values():
            if row.level == Level.BUILDING.value:
                grid = nodes[row.parent_id]  # type: ignore[index]
                assert row.grid_id == grid.id
                assert (row.district_id, row.street_id, row.community_id) == (
                    grid.district_id,
                    grid.street_id,
                    grid.community_id,
                )
        for case in session.scalars(select(CaseRow).limit(500)):
            building = nodes[case.building_id]  # type: ignore[index]
            assert (case.district_id, case.street_id, case.community_id, case.grid_id) == (
                building.district_id,
                building.street_id,
                building.community_id,
                building.grid_id,
            )


@pytest.mark.parametrize("level", [Level.CITY, *FACT_LEVELS[:-1]])
def test_sql_tallies_equal_python_tallies(seeded: tuple[Engine, SeedReport], level: Level) -> None:
    """For a node of each level: SQL GROUP BY per child == KPI module over the same cases."""
    engine, _ = seeded
    with Session(engine) as session:
        code = session.scalars(
            select(NodeRow.code).where(NodeRow.level == level.value).order_by(NodeRow.id).limit(1)
        ).one()
        node = store.node_by_code(session=session, code=code)
        assert node is not None
        facts = store.case_facts(session=session, node=node, since=SINCE)
        assert facts, "the seeded history should give every scope some cases"
        sql = store.node_tally(session=session, node=node, since=SINCE, now=AS_OF)
        assert sql == tally_of_cases(facts, now=AS_OF)
        children = store.child_tallies(session=session, node=node, since=SINCE, now=AS_OF)
        total = Tally()
        for child in children.values():
            total = total + child
        assert total == sql
        for child in store.children(session=session, node=node)[:3]:
            child_facts = store.case_facts(session=session, node=child, since=SINCE)
            assert children.get(child.id, Tally()) == tally_of_cases(child_facts, now=AS_OF)


def test_seeded_history_is_realistic(seeded: tuple[Engine, SeedReport]) -> None:
    engine, _ = seeded
    with Session(engine) as session:
        root = store.root_node(session=session)
        assert root is not None
        k = kpis(store.node_tally(session=session, node=root, since=SINCE, now=AS_OF))
    assert k.overdue > 0 and k.open > 0
    assert k.closure_rate is not None and 0.75 < k.closure_rate < 1.0
    assert k.on_time_rate is not None and 0.75 < k.on_time_rate < 1.0
    assert k.satisfaction_rate is not None and 0.9 < k.satisfaction_rate < 0.99
    assert k.rework_rate is not None and 0.02 < k.rework_rate < 0.12
    assert k.grassroots_rate is not None and 0.9 < k.grassroots_rate < 0.99


def test_resources_by_child(seeded: tuple[Engine, SeedReport]) -> None:
    engine, report = seeded
    with Session(engine) as session:
        root = store.root_node(session=session)
        assert root is not None
        total = store.node_resources(session=session, node=root)
        cameras = session.scalar(select(func.count()).select_from(CameraRow))
        grid_workers = session.scalar(
            select(func.count()).select_from(WorkerRow).where(WorkerRow.role == "grid_worker")
        )
    assert total.cameras == cameras == report.cameras == 4000
    assert total.workers == grid_workers == 520


def test_overview_of_a_street(seeded: tuple[Engine, SeedReport]) -> None:
    engine, _ = seeded
    with Session(engine) as session:
        overview = load_overview(
            session=session, scope=area(session, "530103004"), now=AS_OF, window_days=30
        )
    assert overview is not None
    assert overview.scope.node.name_zh == "联盟街道"
    assert [n.name_zh for n in overview.lineage] == ["昆明市", "盘龙区", "联盟街道"]
    assert overview.children and all(c.node.level is Level.COMMUNITY for c in overview.children)
    assert sum(c.kpis.open for c in overview.children) == overview.scope.kpis.open
    ranks = sorted(c.rank for c in overview.children if c.rank is not None)
    assert ranks[0] == 1


def test_overview_of_a_node_not_in_the_store_is_none_never_the_city(
    seeded: tuple[Engine, SeedReport],
) -> None:
    engine, _ = seeded
    with Session(engine) as session:
        overview = load_overview(
            session=session, scope=area(session, "999"), now=AS_OF, window_days=30
        )
    assert overview is None


def test_overview_of_empty_database(engine: Engine) -> None:
    with Session(engine) as session:
        now = datetime(2026, 1, 1)
        city = area(session, "530100")
        assert load_overview(session=session, scope=city, now=now, window_days=30) is None


def test_rank_by_competition_ranking() -> None:
    assert rank_by({1: 0.9, 2: 0.95, 3: 0.9, 4: None, 5: 0.5}) == {2: 1, 1: 2, 3: 2, 5: 4}
