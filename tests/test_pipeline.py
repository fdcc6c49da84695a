"""The projector loop over a real bus: a crash between the SQL commit and the ack loses nothing and
counts nothing twice; the simulator publishes valid events through the ingest path."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from data_sources import db
from data_sources.bus import Bus
from data_sources.bus.memory import MemoryBus
from data_sources.bus.redis_streams import RedisStreamBus
from data_sources.dead_letters import list_dead_letters
from data_sources.directory import Directory, load_directory
from data_sources.events import encode
from data_sources.ingest import Ingestor
from data_sources.live import case_counts_from_sql, load_live_state
from data_sources.pipeline import GROUP, ProjectorLoop, is_transient
from data_sources.schema import CaseEventRow, PositionRow
from data_sources.seed.city import seed_city
from data_sources.simulator import EventFactory, LiveSimulator, SimPlaces
from data_sources.simulator_pace import HistoryPace
from data_sources.workhours import CN_CALENDAR

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
            CN_CALENDAR,
            consumer=consumer,
            batch=500,
            block_ms=10,
            stale_ms=50,
        )

    first = new_loop("a")
    await first.step()
    real_ack = bus.ack

    async def crash(group: str, positions: Sequence[str]) -> None:
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
    # Events around the seed's day: ingest's time window is around it, not around today.
    ingestor = Ingestor(
        bus, sessionmaker(engine), lambda: directory, clock=lambda: AS_OF + timedelta(days=1)
    )
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
async def test_the_sole_consumer_takes_a_dead_processs_entries_at_start_not_after_30_s(
    city: tuple[Engine, Directory, SimPlaces],
) -> None:
    """The embedded default has one projector per database: what the process killed after a 202
    had been handed is taken over at once by the next one (before: after `STALE_MS`, 30 s during
    which the wall showed the hole as live), each entry once, oldest first."""
    engine, directory, places = city
    factory = EventFactory(places, directory, np.random.default_rng(3), prefix=uuid.uuid4().hex[:8])
    payloads = [encode(factory.position(AS_OF + timedelta(minutes=1))) for _ in range(30)]
    with Session(engine) as session:
        live = load_live_state(session=session, root_id=directory.root_id)

    async def after_a_kill(sole: bool) -> tuple[list[str], list[str]]:
        """(the log's positions, what a new loop is handed in its first five fetches)."""
        bus = MemoryBus()
        positions = await bus.publish(payloads)
        await bus.ensure_group(GROUP)
        assert len(await bus.read(GROUP, "killed", count=20, block_ms=10)) == 20  # then kill -9
        await asyncio.sleep(0.05)
        loop = ProjectorLoop(
            bus, sessionmaker(engine), lambda: directory, live, TZ, CN_CALENDAR, batch=8, block_ms=10,
            sole_consumer=sole,
        )  # fmt: skip
        handed: list[str] = []
        for _ in range(5):  # as the loop fetches: claims first (8 at a time), then new entries
            handed += [d.position for d in await loop.fetch()]
        return positions, handed

    positions, handed = await after_a_kill(sole=True)
    assert handed == positions  # the 20 orphans at once, then the rest; none twice
    positions, handed = await after_a_kill(sole=False)  # a peer may still hold them: wait
    assert handed == positions[20:]


@pytest.mark.anyio
async def test_an_undecodable_entry_becomes_a_dead_letter_and_its_batch_is_still_projected(
    city: tuple[Engine, Directory, SimPlaces], caplog: pytest.LogCaptureFixture
) -> None:
    """A batch is decoded in one call; one bad entry (a foreign writer) must not cost the others,
    and it is kept, with its error, rather than dropped."""
    engine, directory, places = city
    factory = EventFactory(places, directory, np.random.default_rng(9), prefix=uuid.uuid4().hex[:8])
    events = [factory.position(AS_OF + timedelta(minutes=1)) for _ in range(5)]
    payloads = [encode(e) for e in events]
    bad = b'{"kind": "worker.position", "id": 7}'
    payloads.insert(2, bad)
    bus = MemoryBus()
    positions = await bus.publish(payloads)
    await bus.ensure_group(GROUP)
    with Session(engine) as session:
        live = load_live_state(session=session, root_id=directory.root_id)
    loop = ProjectorLoop(
        bus, sessionmaker(engine), lambda: directory, live, TZ, CN_CALENDAR, block_ms=10
    )
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
        (letter,) = list_dead_letters(session=session)
    assert stored == 5
    assert (letter.position, letter.data, letter.attempts) == (positions[2], bad, 1)
    assert letter.error.startswith("ValidationError") and letter.kind == "worker.position"
    assert loop.health().dead_letters == 1
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM positions WHERE event_id NOT LIKE 'seed-%'"))
        conn.execute(text("DELETE FROM dead_letters"))


def _error_of(call: Callable[[], object]) -> Exception:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def _execute(engine: Engine, sql: str, **params: object) -> Callable[[], object]:
    def run() -> object:
        with engine.begin() as conn:
            return conn.execute(text(sql), params)

    return run


@pytest.mark.postgres
def test_real_driver_errors_are_told_apart_poison_from_outage(
    postgres_url: str, tmp_path: Path
) -> None:
    """What the projector dead-letters (the event's fault) and what it retries (an outage), on the
    errors the drivers really raise."""
    pg = db.make_engine(postgres_url)
    refused = db.make_engine(make_url(postgres_url).set(port=1).render_as_string(False))
    missing = db.make_engine(f"sqlite:///{tmp_path / 'no' / 'such.db'}")
    try:
        _execute(pg, "CREATE TABLE t (title text, n smallint)")()
        nul = _error_of(_execute(pg, "INSERT INTO t (title) VALUES (:v)", v="a\x00b"))
        too_big = _error_of(_execute(pg, "INSERT INTO t (n) VALUES (:v)", v=40_000))
        poison = [nul, too_big, _error_of(lambda: datetime.max.replace(tzinfo=UTC) + timedelta(1))]
        outages = [
            _error_of(_execute(refused, "SELECT 1")),
            _error_of(_execute(missing, "SELECT 1")),
            _error_of(redis.Redis(port=1).ping),
        ]
    finally:
        for engine in (pg, refused, missing):
            engine.dispose()
    assert [type(e).__name__ for e in poison] == ["DataError", "DataError", "OverflowError"]
    assert [is_transient(e) for e in poison] == [False] * 3
    assert [is_transient(e) for e in outages] == [True] * 3, outages
