"""Nothing accepted is lost or stuck (issue 9): a poison on the bus, next to good events, on SQLite and
PostgreSQL, on the in-process bus and on Redis. Every good event is applied within seconds and seen
once, the poison waits in the dead-letter list with its error, the bus has nothing pending; an outage
is retried, never dead-lettered; dead letters are listed, retried and dropped (CLI and API)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from data_sources import db
from data_sources.access.keys import KeyRing, KeyRole
from data_sources.bus import Bus
from data_sources.bus.memory import MemoryBus
from data_sources.bus.redis_streams import RedisStreamBus
from data_sources.bus.sql import SqlBus
from data_sources.dead_letters import (
    NewDeadLetter,
    bury,
    dead_letters_router,
    list_dead_letters,
    retry_dead_letters,
    utc_now,
)
from data_sources.directory import Directory, load_directory
from data_sources.events import Event, encode
from data_sources.live import load_live_state
from data_sources.pipeline import GROUP, ProjectorLoop
from data_sources.projector import Projection
from data_sources.schema import AlarmEventRow, CaseEventRow, DeadLetterRow, PositionRow
from data_sources.seed.city import seed_city
from data_sources.simulator import EventFactory, SimPlaces
from data_sources.workhours import CN_CALENDAR

from .conftest import AS_OF, BACKENDS, TZ, fresh_database_url

City = tuple[Engine, Directory, SimPlaces]
#: Good events must be applied, and a poison dead-lettered, within this (the loop's tries are
#: 0.2 s + 0.4 s apart here; the defaults, 0.5 s + 1.5 s, put a poison away in 2–4 s).
DEADLINE_S = 10.0
BACKOFF_S = (0.2, 0.4)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module", params=BACKENDS)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[City]:
    """A small seeded district on each backend, shared by the module's tests (each uses fresh ids
    and starts with no dead letters)."""
    engine = db.make_engine(fresh_database_url(request, tmp_path_factory.mktemp("dead")))
    db.upgrade(engine)
    seed_city(engine, seed=4, as_of=AS_OF, tz=TZ, districts=["530126"], days=1, cases_per_day=50)
    with Session(engine) as session:
        directory = load_directory(session=session)
        places = SimPlaces.load(session=session)
    yield engine, directory, places
    engine.dispose()


@pytest.fixture
def clean_city(city: City) -> City:
    with city[0].begin() as conn:
        conn.execute(delete(DeadLetterRow))
    return city


@pytest.fixture(params=["memory", "sql", pytest.param("redis", marks=pytest.mark.redis)])
async def bus(request: pytest.FixtureRequest, clean_city: City) -> AsyncIterator[Bus]:
    """The in-process bus, the SQL bus in the city's database (the default without Redis), Redis."""
    if request.param == "memory":
        yield MemoryBus()
        return
    if request.param == "sql":
        sql_bus = SqlBus(clean_city[0], poll_ms=20)
        yield sql_bus
        await sql_bus.aclose()
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisStreamBus(client, stream=f"test:{uuid.uuid4().hex}")
    await client.aclose()


def factory_for(city: City) -> EventFactory:
    _, directory, places = city
    return EventFactory(places, directory, np.random.default_rng(5), prefix=uuid.uuid4().hex[:8])


def good_events(factory: EventFactory) -> list[Event]:
    """The finding's mix: 10 new cases, 1 alarm, 1 GPS fix."""
    start = AS_OF + timedelta(minutes=1)
    cases = [factory.case_story(start + timedelta(seconds=i))[0] for i in range(10)]
    return [*cases, factory.alarm_story(start)[0], factory.position(start)]


def raw_report(factory: EventFactory, **changes: Any) -> tuple[str, bytes]:
    """A case report as JSON bytes written past the model (a foreign writer, a validator gap)."""
    raw = factory.case_story(AS_OF + timedelta(minutes=2))[0].model_dump(mode="json")
    payload = {**raw["payload"], **changes.pop("payload", {})}
    return raw["id"], json.dumps({**raw, **changes, "payload": payload}).encode()


def poison(kind: str, factory: EventFactory) -> tuple[str | None, bytes]:
    """(its event id if it has one, the entry)."""
    if kind == "ts-overflow":  # 10000-01-01 in UTC: OverflowError converting it
        return raw_report(factory, ts="9999-12-31T23:59:59-14:00")
    if kind == "nul-title":  # PostgreSQL refuses NUL in text (DataError); SQLite stores it
        return raw_report(factory, payload={"title": "井盖\x00缺失"})
    if kind == "unknown-worker":  # decodes, then fails to project (KeyError in the directory)
        raw = factory.position(AS_OF + timedelta(minutes=2)).model_dump(mode="json")
        raw["payload"]["worker"] = "ghost-worker-1"
        return raw["id"], json.dumps(raw).encode()
    return None, b'\xff{"kind": "case.reported", not json'


def new_loop(city: City, bus: Bus, seen: list[Projection]) -> ProjectorLoop:
    engine, directory, _ = city
    with Session(engine) as session:
        live = load_live_state(session=session, root_id=directory.root_id)
    return ProjectorLoop(
        bus,
        sessionmaker(engine),
        lambda: directory,
        live,
        TZ,
        CN_CALENDAR,
        block_ms=50,
        on_projection=seen.append,
        retry_backoff_s=BACKOFF_S,
    )


def stored_ids(engine: Engine, ids: list[str]) -> set[str]:
    with Session(engine) as session:
        found: set[str] = set()
        for column in (CaseEventRow.id, AlarmEventRow.id, PositionRow.event_id):
            found.update(session.scalars(select(column).where(column.in_(ids))))
    return found


def dead_rows(engine: Engine) -> list[DeadLetterRow]:
    with Session(engine) as session:
        return list(session.scalars(select(DeadLetterRow).order_by(DeadLetterRow.id)))


async def wait_for(check: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> float:
    """Seconds until `check()` held; fails after `timeout`."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["ts-overflow", "nul-title", "undecodable", "unknown-worker"])
async def test_a_poison_is_dead_lettered_and_blocks_no_good_event(
    clean_city: City, bus: Bus, kind: str
) -> None:
    engine = clean_city[0]
    factory = factory_for(clean_city)
    good = good_events(factory)
    poison_id, poison_data = poison(kind, factory)
    positions = await bus.publish([poison_data, *(encode(e) for e in good)])
    await bus.ensure_group(GROUP)
    seen: list[Projection] = []
    loop = new_loop(clean_city, bus, seen)
    task = asyncio.create_task(loop.run())
    try:
        good_ids = [e.id for e in good]
        took = await wait_for(lambda: stored_ids(engine, good_ids) == set(good_ids), "good events")
        # The poison is either applied (a NUL on SQLite is just a character) or a dead letter.
        poison_stored = bool(poison_id and stored_ids(engine, [poison_id]))
        if not poison_stored:
            await wait_for(lambda: len(dead_rows(engine)) == 1, "the poison's dead letter")
        await wait_for(lambda: loop.health().lag_s == 0, "caught up")
        assert await bus.pending_count(GROUP) == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert took < 3, f"good events took {took:.1f} s"
    letters = dead_rows(engine)
    if poison_stored:
        assert kind == "nul-title" and engine.dialect.name == "sqlite"
        assert letters == []
    else:
        (letter,) = letters
        assert (letter.position, letter.data, letter.event_id) == (
            positions[0],
            poison_data,
            poison_id,
        )
        assert letter.error and letter.failed_at
        # An entry the validator rejects fails the same way every time: one try, no waits.
        undecodable = letter.error.startswith("ValidationError")
        assert letter.attempts == (1 if undecodable else 3)
        if kind == "nul-title" and not undecodable:
            assert "DataError" in letter.error and "NUL" in letter.error, letter.error
        if kind == "unknown-worker":
            assert letter.error == "KeyError: 'ghost-worker-1'"
            assert letter.kind == "worker.position"
        assert loop.health().dead_letters == 1
    # Each good event reached live state and the views once, however the batch was split.
    applied = sum(p.applied for p in seen)
    assert applied == loop.applied == len(good) + poison_stored
    reported = Counter(change.case_id for p in seen for change in p.cases)
    assert set(reported.values()) == {1}
    assert Counter(a.alarm_id for p in seen for a in p.alarms) == {good[10].payload.alarm_id: 1}  # type: ignore[union-attr]
    assert sum(len(p.positions) for p in seen) == 1
    health = loop.health()
    assert (health.lag_s, health.stalled_s, health.applied) == (0, 0.0, applied)


@pytest.mark.anyio
@pytest.mark.parametrize("outage_s", [2.0])
async def test_a_database_outage_is_retried_not_dead_lettered(
    clean_city: City, tmp_path: Path, outage_s: float
) -> None:
    """The database is unreachable for longer than a poison's tries take: every event waits, none is
    a dead letter, and all are applied within seconds of the database's return (neither the batch
    in hand nor the one read ahead waits 30 s for `claim_stale`)."""
    engine = clean_city[0]
    factory = factory_for(clean_city)
    bus = MemoryBus()
    await bus.ensure_group(GROUP)
    seen: list[Projection] = []
    loop = new_loop(clean_city, bus, seen)
    working = loop.sessions
    if engine.dialect.name == "sqlite":  # a database file that cannot be opened
        down = db.make_engine(f"sqlite:///{tmp_path / 'missing' / 'city.db'}")
    else:  # nothing listens on port 1: connection refused
        down = db.make_engine(engine.url.set(port=1).render_as_string(hide_password=False))
    task = asyncio.create_task(loop.run())
    try:
        loop.sessions = sessionmaker(down)
        first, second = good_events(factory), good_events(factory)
        await bus.publish([encode(e) for e in first])
        await asyncio.sleep(0.3)
        await bus.publish([encode(e) for e in second])  # read ahead while the first fails
        await asyncio.sleep(outage_s / 2)
        lag = loop.health().lag_s
        assert lag >= outage_s / 2 and loop.health().stalled_s > 0
        await asyncio.sleep(outage_s / 2)
        assert loop.health().lag_s > lag  # still growing
        assert dead_rows(engine) == []
        loop.sessions = working
        ids = [e.id for e in first + second]
        took = await wait_for(
            lambda: stored_ids(engine, ids) == set(ids), "events after the outage"
        )
        await wait_for(lambda: loop.health().lag_s == 0, "caught up")
        assert await bus.pending_count(GROUP) == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        down.dispose()
    assert took < 5, f"took {took:.1f} s after the database came back"
    assert dead_rows(engine) == []
    assert sum(p.applied for p in seen) == loop.applied == len(ids)
    assert loop.health().stalled_s == 0.0


def bury_good(engine: Engine, events: list[Event]) -> list[int]:
    """Dead letters of good events, as if a since-fixed bug had failed them; their ids."""
    letters = [
        NewDeadLetter(f"1-{i}", encode(e), "KeyError: 'w1'", 3, e.id, e.kind)
        for i, e in enumerate(events)
    ]
    with Session(engine) as session, session.begin():
        bury(session=session, letters=letters, failed_at=utc_now())
    with Session(engine) as session:
        return [letter.id for letter in list_dead_letters(session=session)]


@pytest.mark.anyio
async def test_retried_dead_letters_are_applied_and_leave_the_list(clean_city: City) -> None:
    engine = clean_city[0]
    events = good_events(factory_for(clean_city))[:3]
    ids = bury_good(engine, events)
    bus = MemoryBus()
    await bus.ensure_group(GROUP)
    loop = new_loop(clean_city, bus, [])
    retried = await retry_dead_letters(sessions=sessionmaker(engine), bus=bus, ids=ids[:2])
    assert [letter.id for letter in retried] == ids[:2]
    assert [row.id for row in dead_rows(engine)] == ids[2:]
    while await loop.step():
        pass
    assert stored_ids(engine, [e.id for e in events]) == {events[0].id, events[1].id}


def test_the_api_lists_and_retries_dead_letters(clean_city: City) -> None:
    engine = clean_city[0]
    events = good_events(factory_for(clean_city))[:2]
    ids = bury_good(engine, events)
    bus = MemoryBus()
    keys = KeyRing(sessionmaker(engine), utc_now)
    key = {"X-API-Key": keys.add("ops", KeyRole.ADMIN, created_by="tests")}
    feed = {"X-API-Key": keys.add("hotline", KeyRole.INGEST, created_by="tests")}
    app = FastAPI()
    app.include_router(dead_letters_router(sessionmaker(engine), lambda: bus, keys))
    with TestClient(app) as client:
        assert client.get("/api/v1/dead-letters").status_code == 401
        for refused in (
            client.get("/api/v1/dead-letters", headers=feed),
            client.post("/api/v1/dead-letters/retry", json={"all": True}, headers=feed),
        ):  # an ingest source's key is no admin's
            assert refused.status_code == 403
            assert refused.json() == {"detail": "this key may not use the admin APIs"}
        listed = client.get("/api/v1/dead-letters", headers=key).json()
        assert listed["total"] == 2
        assert [d["event_id"] for d in listed["dead_letters"]] == [e.id for e in events]
        assert listed["dead_letters"][0]["error"] == "KeyError: 'w1'"
        assert client.post("/api/v1/dead-letters/retry", json={}, headers=key).status_code == 422
        done = client.post("/api/v1/dead-letters/retry", json={"all": True}, headers=key)
        assert done.json() == {"retried": ids}
        assert client.get("/api/v1/dead-letters", headers=key).json()["total"] == 0
    assert [entry.data for entry in bus._log] == [encode(e) for e in events]


@pytest.mark.redis
def test_the_cli_lists_retries_to_the_servers_redis_and_drops(
    clean_city: City, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import cli

    engine = clean_city[0]
    events = good_events(factory_for(clean_city))[:3]
    ids = bury_good(engine, events)
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("GRIDCC_REDIS_URL", redis_url)
    runner = CliRunner()
    listed = runner.invoke(cli, ["dead-letters", "list", "--database-url", url])
    assert listed.exit_code == 0, listed.output
    assert all(e.id in listed.output for e in events) and "KeyError: 'w1'" in listed.output
    retried = runner.invoke(cli, ["dead-letters", "retry", str(ids[0]), "--database-url", url])
    assert retried.exit_code == 0, retried.output
    dropped = runner.invoke(cli, ["dead-letters", "drop", str(ids[1]), "--database-url", url])
    assert dropped.exit_code == 0, dropped.output
    assert [row.id for row in dead_rows(engine)] == [ids[2]]

    async def on_the_stream() -> list[bytes]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            entries = await client.xrange("gridcc:events")
        finally:
            await client.aclose()
        return [fields[b"e"] for _, fields in entries]

    assert asyncio.run(on_the_stream()) == [encode(events[0])]
