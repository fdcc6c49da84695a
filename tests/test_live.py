"""Live state rebuilt from SQL: the newest fix of each worker within the window."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from data_sources.live import load_live_state
from data_sources.schema import PositionRow, WorkerRow
from data_sources.seed.city import SeedReport

from .conftest import AS_OF


def test_restart_keeps_each_workers_newest_fix_within_the_window(
    seeded: tuple[Engine, SeedReport],
) -> None:
    engine, _ = seeded
    with Session(engine) as session:
        newest = dict(
            session.execute(
                select(PositionRow.worker_id, func.max(PositionRow.ts))
                .where(PositionRow.ts >= AS_OF - timedelta(hours=1))
                .group_by(PositionRow.worker_id)
            ).all()
        )
        live = load_live_state(
            session=session, root_id=None, positions_since=AS_OF - timedelta(hours=1)
        )
        assert newest, "the seed leaves recent positions"
        assert {w: f.ts for w, f in live.positions.items()} == newest
        worker_id, fix = next(iter(live.positions.items()))
        worker = session.get(WorkerRow, worker_id)
        assert worker is not None and fix.code == worker.code
        assert fix.path[-1] == worker.grid_id
        assert load_live_state(session=session, root_id=None).positions == {}
