"""The `Bus` contract, run against every implementation: in process, on a real Redis, and in SQL
(SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event

from data_sources import db
from data_sources.bus import Bus, Delivery, parse_position
from data_sources.bus.memory import MemoryBus
from data_sources.bus.redis_streams import RedisStreamBus
from data_sources.bus.sql import SqlBus
from data_sources.schema import Base, BusEntryRow, BusGroupRow, BusPendingRow

pytestmark = pytest.mark.anyio

MakeBus = Callable[..., Bus]
BUS_TABLES = [
    Base.metadata.tables[row.__tablename__] for row in (BusEntryRow, BusGroupRow, BusPendingRow)
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
        pytest.param("sql-sqlite", id="sql-sqlite"),
        pytest.param("sql-postgres", id="sql-postgres", marks=pytest.mark.postgres),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend's name; the Redis one flushed and the PostgreSQL server reachable."""
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    if request.param == "sql-postgres":
        request.getfixturevalue("new_postgres_database")
    return str(request.param)


@pytest.fixture
async def make_bus(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[MakeBus]:
    """Makes fresh buses on the backend (each on its own stream or database), closed at teardown."""
    client = (
        aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
        if backend == "redis"
        else None
    )
    buses: list[Bus] = []
    engines: list[Engine] = []

    def sql_engine() -> Engine:
        if backend == "sql-postgres":
            url = request.getfixturevalue("new_postgres_database")()
        else:
            url = f"sqlite:///{tmp_path / f'bus{len(engines)}.db'}"
        engine = db.make_engine(url)
        Base.metadata.create_all(engine, tables=BUS_TABLES)
        engines.append(engine)
        return engine

    def make(maxlen: int = 1_000_000) -> Bus:
        if client is not None:
            bus: Bus = RedisStreamBus(client, f"test:{uuid.uuid4().hex}", maxlen=maxlen)
        elif backend.startswith("sql"):
            bus = SqlBus(sql_engine(), maxlen=maxlen, poll_ms=50)
        else:
            bus = MemoryBus(maxlen=maxlen)
        buses.append(bus)
        return bus

    try:
        yield make
    finally:
        for bus in buses:
            await bus.aclose()
        if client is not None:
            await client.aclose()
        for engine in engines:
            engine.dispose()


@pytest.fixture
def bus(make_bus: MakeBus) -> Bus:
    return make_bus()


def items(n: int, prefix: str = "e") -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(n)]


def positions_of(deliveries: list[Delivery]) -> list[str]:
    return [d.position for d in deliveries]


async def test_implements_the_protocol(bus: Bus) -> None:
    assert isinstance(bus, Bus)


async def test_publish_returns_increasing_positions_in_order(bus: Bus) -> None:
    first = await bus.publish(items(50))
    second = await bus.publish([b"late"])
    assert await bus.publish([]) == []
    keys = [parse_position(p) for p in first + second]
    assert keys == sorted(set(keys))
    assert await bus.length() == 51


async def test_read_delivers_everything_once_in_order(bus: Bus) -> None:
    published = await bus.publish(items(10))
    await bus.ensure_group("g")
    await bus.ensure_group("g")  # idempotent
    got = await bus.read("g", "a", count=100, block_ms=0)
    assert positions_of(got) == published
    assert [d.data for d in got] == items(10)
    assert {d.deliveries for d in got} == {1}
    # Pending entries are not delivered again by `read`, to anyone.
    assert await bus.read("g", "a", count=100, block_ms=0) == []
    assert await bus.read("g", "b", count=100, block_ms=0) == []
    assert await bus.pending_count("g") == 10


async def test_read_respects_count(bus: Bus) -> None:
    published = await bus.publish(items(5))
    await bus.ensure_group("g")
    first = await bus.read("g", "a", count=2, block_ms=0)
    rest = await bus.read("g", "a", count=10, block_ms=0)
    assert positions_of(first + rest) == published
    assert len(first) == 2


async def test_read_with_block_ms_0_returns_at_once(bus: Bus) -> None:
    await bus.ensure_group("g")
    with anyio.fail_after(5):  # Redis's BLOCK 0 would wait forever
        assert await bus.read("g", "a", count=1, block_ms=0) == []


async def test_read_waits_up_to_block_ms(bus: Bus) -> None:
    await bus.ensure_group("g")
    start = time.monotonic()
    assert await bus.read("g", "a", count=1, block_ms=300) == []
    assert 0.25 <= time.monotonic() - start < 5


async def test_read_wakes_up_when_something_is_published(bus: Bus) -> None:
    await bus.ensure_group("g")
    got: list[Delivery] = []

    async def reader() -> None:
        got.extend(await bus.read("g", "a", count=10, block_ms=20_000))

    start = time.monotonic()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(reader)
        await anyio.sleep(0.2)
        published = await bus.publish([b"news"])
    assert time.monotonic() - start < 10
    assert got == [Delivery(published[0], b"news", 1)]


async def test_consumers_of_one_group_share_the_entries(bus: Bus) -> None:
    published = await bus.publish(items(10))
    await bus.ensure_group("g")
    a = await bus.read("g", "a", count=4, block_ms=0)
    b = await bus.read("g", "b", count=100, block_ms=0)
    assert len(a) == 4
    assert sorted(positions_of(a + b), key=parse_position) == published
    more = await bus.publish(items(3, "x"))
    a2 = await bus.read("g", "a", count=100, block_ms=0)
    assert positions_of(a2) == more


async def test_each_group_sees_everything(bus: Bus) -> None:
    published = await bus.publish(items(6))
    for group in ("g1", "g2"):
        await bus.ensure_group(group)
    for group in ("g1", "g2"):
        assert positions_of(await bus.read(group, "a", count=100, block_ms=0)) == published
    await bus.ack("g1", published)
    assert await bus.pending_count("g1") == 0
    assert await bus.pending_count("g2") == 6


async def test_ack_reduces_pending_and_twice_is_harmless(bus: Bus) -> None:
    await bus.publish(items(5))
    await bus.ensure_group("g")
    got = positions_of(await bus.read("g", "a", count=5, block_ms=0))
    await bus.ack("g", got[:2])
    assert await bus.pending_count("g") == 3
    await bus.ack("g", got[:2])
    await bus.ack("g", [])
    assert await bus.pending_count("g") == 3
    await bus.ack("g", got)
    assert await bus.pending_count("g") == 0


async def test_claim_stale_takes_only_old_entries(bus: Bus) -> None:
    published = await bus.publish(items(3))
    await bus.ensure_group("g")
    await bus.read("g", "a", count=3, block_ms=0)
    assert await bus.claim_stale("g", "b", min_idle_ms=60_000, count=10) == []
    await anyio.sleep(0.25)
    claimed = await bus.claim_stale("g", "b", min_idle_ms=100, count=10)
    assert claimed == [Delivery(p, d, 2) for p, d in zip(published, items(3), strict=True)]
    # Claiming resets the idle time.
    assert await bus.claim_stale("g", "c", min_idle_ms=100, count=10) == []
    assert await bus.pending_count("g") == 3
    await bus.ack("g", positions_of(claimed))
    assert await bus.pending_count("g") == 0
    assert await bus.claim_stale("g", "b", min_idle_ms=0, count=10) == []


async def test_claim_stale_respects_count(bus: Bus) -> None:
    published = await bus.publish(items(5))
    await bus.ensure_group("g")
    await bus.read("g", "a", count=5, block_ms=0)
    first = await bus.claim_stale("g", "b", min_idle_ms=0, count=2)
    assert positions_of(first) == published[:2]
    again = await bus.claim_stale("g", "c", min_idle_ms=0, count=5)
    assert positions_of(again) == published
    assert [d.deliveries for d in again] == [3, 3, 2, 2, 2]


async def test_a_crashed_consumers_entries_are_recovered(bus: Bus) -> None:
    published = await bus.publish(items(10))
    await bus.ensure_group("g")
    taken = await bus.read("g", "a", count=10, block_ms=0)
    await bus.ack("g", positions_of(taken[:4]))
    # Consumer "a" crashes here; "b" takes over once "a"'s entries have sat long enough.
    await anyio.sleep(0.25)
    recovered = await bus.claim_stale("g", "b", min_idle_ms=100, count=100)
    assert positions_of(recovered) == published[4:]
    assert {d.deliveries for d in recovered} == {2}
    await bus.ack("g", positions_of(recovered))
    assert positions_of(taken[:4]) + positions_of(recovered) == published
    assert await bus.pending_count("g") == 0
    assert await bus.read("g", "b", count=100, block_ms=0) == []
    assert await bus.claim_stale("g", "b", min_idle_ms=0, count=100) == []


async def test_maxlen_bounds_the_log(make_bus: MakeBus) -> None:
    maxlen = 100
    bus = make_bus(maxlen=maxlen)
    published: list[str] = []
    for batch in range(20):
        published += await bus.publish(items(50, f"b{batch}-"))
    # Redis trims approximately, in whole nodes of (by default) 100 small entries, never below maxlen.
    length = await bus.length()
    assert maxlen <= length <= 2 * maxlen
    await bus.ensure_group("g")
    kept = await bus.read("g", "a", count=10_000, block_ms=0)
    assert positions_of(kept) == published[-length:]


async def test_pending_entries_beyond_maxlen(make_bus: MakeBus, backend: str) -> None:
    bus = make_bus(maxlen=100)
    await bus.ensure_group("g")
    first = await bus.publish(items(5))
    await bus.read("g", "a", count=5, block_ms=0)
    for _ in range(10):
        await bus.publish(items(100, "later"))
    assert await bus.pending_count("g") == 5
    claimed = await bus.claim_stale("g", "b", min_idle_ms=0, count=5)
    if backend.startswith("sql"):
        # The SQL bus is the outbox behind a 202: it never trims an entry still pending.
        assert claimed == [Delivery(p, d, 2) for p, d in zip(first, items(5), strict=True)]
        await bus.ack("g", first)
    else:
        # As in Redis: the pending list still holds them, but there is nothing left to deliver.
        assert claimed == []
    assert await bus.pending_count("g") == 0


@pytest.mark.parametrize(
    "backend",
    ["sql-sqlite", pytest.param("sql-postgres", marks=pytest.mark.postgres)],
    indirect=True,
)
async def test_sql_bus_trims_only_what_every_group_is_done_with(make_bus: MakeBus) -> None:
    """An entry not yet delivered to, or pending in, some group is kept whatever maxlen says."""
    bus = make_bus(maxlen=100)
    for group in ("fast", "slow"):
        await bus.ensure_group(group)
    published: list[str] = []
    for batch in range(10):
        published += await bus.publish(items(50, f"b{batch}-"))
        fast = await bus.read("fast", "a", count=1_000, block_ms=0)
        await bus.ack("fast", positions_of(fast))
    assert await bus.length() == 500  # "slow" has read nothing yet
    taken = await bus.read("slow", "a", count=450, block_ms=0)
    await bus.ack("slow", positions_of(taken[:400]))
    await bus.publish([b"nudge"])  # trimming runs on publish and on ack
    # Everything up to the first entry still pending in "slow" may go, and down to maxlen only.
    kept = await bus.read("slow", "a", count=1_000, block_ms=0)
    assert positions_of(kept) == published[450:] + positions_of(kept)[-1:]
    assert 100 <= await bus.length() <= 101
    await bus.ack("slow", positions_of(taken[400:]) + positions_of(kept))
    assert await bus.length() == 101
    stale = await bus.claim_stale("slow", "b", min_idle_ms=0, count=1_000)
    assert stale == []


async def test_an_unknown_group_is_an_error(bus: Bus) -> None:
    with pytest.raises(ValueError, match="'nope'"):
        await bus.read("nope", "a", count=1, block_ms=0)
    await bus.publish([b"x"])
    await bus.ensure_group("g")
    with pytest.raises(ValueError, match="'nope'"):
        await bus.read("nope", "a", count=1, block_ms=0)
    with pytest.raises(ValueError, match="'nope'"):
        await bus.claim_stale("nope", "a", min_idle_ms=0, count=1)
    with pytest.raises(ValueError, match="'nope'"):
        await bus.pending_count("nope")
    await bus.ack("nope", ["0-1"])  # like XACK: nothing was pending there


async def test_count_must_be_positive(bus: Bus) -> None:
    await bus.ensure_group("g")
    with pytest.raises(ValueError, match="count"):
        await bus.read("g", "a", count=0, block_ms=0)
    with pytest.raises(ValueError, match="count"):
        await bus.claim_stale("g", "a", min_idle_ms=0, count=0)


# ---------------------------------------------------------------- properties (MemoryBus, SqlBus)

GROUPS = ("g1", "g2")
CONSUMERS = ("a", "b", "c")

#: (what, group, n, picks): publish n items, read or claim up to n, or ack the delivered entries picked.
Op = tuple[str, str, int, list[int]]
OPS = st.lists(
    st.tuples(
        st.sampled_from(["publish", "read", "ack", "claim"]),
        st.sampled_from(GROUPS),
        st.integers(0, 5),
        st.lists(st.integers(0, 50), max_size=6),
    ),
    min_size=8,
    max_size=40,
)


@dataclass
class GroupModel:
    delivered: list[str] = field(default_factory=list)  # first deliveries, in order
    acked: set[str] = field(default_factory=set)
    deliveries: dict[str, int] = field(default_factory=dict)


async def run_scenario(ops: list[Op], bus: Bus) -> None:
    published: dict[str, bytes] = {}
    model = {group: GroupModel() for group in GROUPS}
    for group in GROUPS:
        await bus.ensure_group(group)
    for step, (what, group, n, picks) in enumerate(ops):
        consumer = CONSUMERS[step % len(CONSUMERS)]
        m = model[group]
        if what == "publish":
            data = items(n, f"s{step}-")
            published.update(zip(await bus.publish(data), data, strict=True))
        elif what == "read" and n > 0:
            got = await bus.read(group, consumer, count=n, block_ms=0)
            expected = list(published)[len(m.delivered) : len(m.delivered) + n]
            assert got == [Delivery(p, published[p], 1) for p in expected]
            m.delivered += expected
            m.deliveries.update(dict.fromkeys(expected, 1))
        elif what == "ack":
            chosen = [m.delivered[i % len(m.delivered)] for i in picks] if m.delivered else []
            await bus.ack(group, chosen)
            m.acked.update(chosen)
        elif what == "claim" and n > 0:
            expected = [p for p in m.delivered if p not in m.acked][:n]
            got = await bus.claim_stale(group, consumer, min_idle_ms=0, count=n)
            for p in expected:
                m.deliveries[p] += 1
            assert got == [Delivery(p, published[p], m.deliveries[p]) for p in expected]
        for name, gm in model.items():
            assert await bus.pending_count(name) == len(gm.delivered) - len(gm.acked)
    for group, m in model.items():
        rest = await bus.read(group, "drain", count=1_000, block_ms=0)
        assert m.delivered + positions_of(rest) == list(published)
    await bus.aclose()


@settings(max_examples=50, deadline=None, database=None)
@given(ops=OPS)
def test_memory_bus_delivers_each_entry_once_per_group_until_acked(ops: list[Op]) -> None:
    asyncio.run(run_scenario(ops, MemoryBus()))


@settings(max_examples=15, deadline=None, database=None)
@given(ops=OPS)
def test_sql_bus_delivers_each_entry_once_per_group_until_acked(ops: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = db.make_engine(f"sqlite:///{folder}/bus.db")
        Base.metadata.create_all(engine, tables=BUS_TABLES)
        try:
            asyncio.run(run_scenario(ops, SqlBus(engine)))
        finally:
            engine.dispose()


def test_a_sqlite_publish_is_on_disk_before_it_returns(tmp_path: Path) -> None:
    """A 202 promises the events are stored: the outbox's commit runs `synchronous=FULL` (review
    of issue 9: NORMAL under WAL could lose the last commits to a power cut), and the
    connection goes back to NORMAL for the projector's commits, which the outbox can redo."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'bus.db'}")
    db.upgrade(engine)
    statements: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()[:3]).upper())

    event.listen(engine, "before_cursor_execute", note)
    try:
        asyncio.run(SqlBus(engine).publish([b'{"id": "synced-1"}']))
    finally:
        event.remove(engine, "before_cursor_execute", note)
        engine.dispose()
    full = statements.index("PRAGMA SYNCHRONOUS=FULL")
    insert = next(i for i, s in enumerate(statements) if s.startswith("INSERT INTO BUS_ENTRIES"))
    normal = statements.index("PRAGMA SYNCHRONOUS=NORMAL")
    assert full < insert < normal
