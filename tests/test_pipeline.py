"""The projector loop over a real bus: a crash between the SQL commit and the ack loses nothing and
counts nothing twice; the simulator publishes valid events through the ingest path."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import numpy as np
import pytest
import redis.asyncio as aioredis
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from data_sources import db
from data_sources.bus import Bus
from data_sources.bus.memory import MemoryBus
from data_sources.bus.redis_streams import RedisStreamBus
from data_sources.directory import Directory, load_directory
from data_sources.events import encode
from data_sources.ingest import Ingestor
from data_sources.live import case_counts_from_sql, load_live_state
from data_sources.pipeline import GROUP, ProjectorLoop
from data_sources.schema import CaseEventRow, PositionRow
from data_sources.seed.city import seed_city
from data_sources.simulator import EventFactory, LiveSimulator, SimPlaces
from data_sources.simulator_pace import HistoryPace

from .conftest import AS_OF, TZ


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Directory, SimPlaces]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('pipe') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=4, as_of=AS_OF, tz=TZ, districts=["530126"], days=1, cases_per_day=3000)
    with Session(engine) as session:
        directory = load_directory(session=session)
        places = SimPlaces.load(session=session)
    yield engine, directory, places
    engine.dispose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        yield MemoryBus()
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisStreamBus(client, stream=f"test:{uuid.uuid4().hex}")
    await client.aclose()


class Crash(Exception):
    pass


@pytest.mark.anyio
async def test_crash_between_commit_and_ack_loses_nothing_and_counts_nothing_twice(
    city: tuple[Engine, Directory, SimPlaces], bus: Bus
) -> None:
    engine, directory, places = city
    factory = EventFactory(places, directory, np.random.default_rng(8), prefix=uuid.uuid4().hex[:8])
    events = factory.mixed(3_000, AS_OF + timedelta(minutes=1), timedelta(hours=2))
    await bus.publish([encode(e) for e in events])
    await bus.ensure_group(GROUP)
    sessions = sessionmaker(engine)

    def new_loop(consumer: str) -> ProjectorLoop:
        with Session(engine) as session:
            live = load_live_state(session=session, root_id=directory.root_id)  # as after a restart
        return ProjectorLoop(
            bus,
            sessions,
            lambda: directory,
            live,
            TZ,
            consumer=consumer,
            batch=500,
            block_ms=10,
            stale_ms=50,
        )

    first = new_loop("a")
    await first.step()
    real_ack = bus.ack

    async def crash(group: str, positions: list[str]) -> None:
        if positions:
            raise Crash
        await real_ack(group, positions)

    bus.ack = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await first.step()  # committed to SQL, never acknowledged: the process dies here
    bus.ack = real_ack  # type: ignore[method-assign]
    assert await bus.pending_count(GROUP) == 500

    await asyncio.sleep(0.1)  # the dead consumer's entries go stale
    second = new_loop("b")
    while await second.step():
        pass
    assert await bus.pending_count(GROUP) == 0
    with Session(engine) as session:
        expected = case_counts_from_sql(session=session, root_id=directory.root_id)
        stored = session.scalar(
            select(func.count())
            .select_from(CaseEventRow)
            .where(CaseEventRow.id.in_([e.id for e in events if e.kind.startswith("case.")]))
        )
        positions = session.scalar(
            select(func.count())
            .select_from(PositionRow)
            .where(PositionRow.event_id.in_([e.id for e in events if e.kind == "worker.position"]))
        )
    assert stored == sum(e.kind.startswith("case.") for e in events)  # nothing lost
    assert positions == sum(e.kind == "worker.position" for e in events)
    for node, counts in expected.items():
        assert second.live.counts_of(node) == counts  # nothing counted twice
    # clean up this test's rows so the other bus parameter starts from the same city
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM positions WHERE event_id NOT LIKE 'seed-%'"))


@pytest.mark.anyio
async def test_simulator_publishes_valid_events_through_ingest(
    city: tuple[Engine, Directory, SimPlaces],
) -> None:
    engine, directory, places = city
    bus = MemoryBus()
    ingestor = Ingestor(bus, sessionmaker(engine), lambda: directory)
    batches: list[int] = []

    async def publish(raw: list[dict[str, object]]) -> None:
        await ingestor.publish(ingestor.validate(raw).events)  # raises on anything invalid
        batches.append(len(raw))

    clock_now = [AS_OF]

    def clock():  # a fast clock: each tick is ten simulated seconds
        clock_now[0] += timedelta(seconds=10)
        return clock_now[0]

    with Session(engine) as session:
        pace = HistoryPace.load(session=session, tz=TZ)  # one day of history: extrapolated
    simulator = LiveSimulator(
        EventFactory(places, directory, np.random.default_rng(1), prefix="simtest"),
        publish,
        pace,
        speed=60,
        clock=clock,
        tick_s=0.001,
    )
    task = asyncio.create_task(simulator.run())
    while simulator.published < 500:
        await asyncio.sleep(0.01)
    task.cancel()
    assert sum(batches) == simulator.published == await bus.length()


@pytest.mark.anyio
async def test_an_undecodable_entry_is_dropped_and_its_batch_still_projected(
    city: tuple[Engine, Directory, SimPlaces], caplog: pytest.LogCaptureFixture
) -> None:
    """A batch is decoded in one call; one bad entry (a foreign writer) must not cost the others."""
    engine, directory, places = city
    factory = EventFactory(places, directory, np.random.default_rng(9), prefix=uuid.uuid4().hex[:8])
    events = [factory.position(AS_OF + timedelta(minutes=1)) for _ in range(5)]
    payloads = [encode(e) for e in events]
    payloads.insert(2, b'{"kind": "worker.position", "id": 7}')
    bus = MemoryBus()
    await bus.publish(payloads)
    await bus.ensure_group(GROUP)
    with Session(engine) as session:
        live = load_live_state(session=session, root_id=directory.root_id)
    loop = ProjectorLoop(bus, sessionmaker(engine), lambda: directory, live, TZ, block_ms=10)
    assert await loop.step() == 6
    assert loop.applied == 5
    assert await bus.pending_count(GROUP) == 0
    assert "undecodable bus entry" in caplog.text
    with Session(engine) as session:
        stored = session.scalar(
            select(func.count())
            .select_from(PositionRow)
            .where(PositionRow.event_id.in_([e.id for e in events]))
        )
    assert stored == 5
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM positions WHERE event_id NOT LIKE 'seed-%'"))
