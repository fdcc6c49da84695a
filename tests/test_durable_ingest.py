"""A 202 means stored (issue 9): on the embedded default a `kill -9` right after the 202s loses
nothing, the restarted process projects every event once, and a re-send is a duplicate (409)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, func, select, union_all
from sqlalchemy.orm import Session, sessionmaker

from data_sources import db
from data_sources.bus.sql import SqlBus
from data_sources.directory import load_directory
from data_sources.ingest import IngestError, Ingestor
from data_sources.schema import AlarmEventRow, BusEntryRow, CaseEventRow, PositionRow
from data_sources.seed.city import seed_city
from data_sources.services import utc_now
from data_sources.simulator import EventFactory, SimPlaces, as_raw

from .browser import ROOT, free_port
from .conftest import AS_OF, TZ

KEY = "durable-key"
BATCH = 1_000


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small seeded city in a SQLite file: the embedded default's system of record."""
    url = f"sqlite:///{tmp_path_factory.mktemp('durable') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=["530126"], days=1, cases_per_day=500)
    engine.dispose()
    return url


def raw_events(url: str, n: int, prefix: str) -> list[dict[str, Any]]:
    """`n` valid events as a feed sends them (the simulator's mix), all in the last two days."""
    engine = db.make_engine(url)
    with Session(engine) as session:
        directory = load_directory(session=session)
        places = SimPlaces.load(session=session)
    engine.dispose()
    factory = EventFactory(places, directory, np.random.default_rng(9), prefix=prefix)
    now = utc_now()
    events = factory.mixed(2 * n, now - timedelta(days=2), timedelta(days=1))
    past = [e for e in events if e.ts_utc < now - timedelta(minutes=5)][:n]
    assert len(past) == n
    return [as_raw(e, e.ts_utc) for e in past]


def stored_counts(engine: Engine, ids: list[str]) -> dict[str, int]:
    """How many rows of the projected tables hold each of `ids` (an id stored once counts 1)."""
    found = union_all(
        select(CaseEventRow.id.label("id")).where(CaseEventRow.id.in_(ids)),
        select(AlarmEventRow.id).where(AlarmEventRow.id.in_(ids)),
        select(PositionRow.event_id).where(PositionRow.event_id.in_(ids)),
    ).subquery()
    with engine.connect() as conn:
        rows = conn.execute(select(found.c.id, func.count()).group_by(found.c.id)).all()
    return {row[0]: row[1] for row in rows}


def on_bus(engine: Engine, ids: list[str]) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(BusEntryRow.event_id.in_(ids))
        return int(conn.execute(query).scalar_one())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_resend_of_published_events_not_yet_projected_is_a_duplicate(city: str) -> None:
    """Ids on the SQL bus count as accepted: a fresh process (empty in-memory id cache, nothing
    projected yet) answers a re-send with 409."""
    more = raw_events(city, 60, "unprojected")
    raw = more[:50]
    engine = db.make_engine(city)
    with Session(engine) as session:
        directory = load_directory(session=session)
    bus = SqlBus(engine)
    try:
        first = Ingestor(bus, sessionmaker(engine), lambda: directory)
        await first.publish(first.validate(raw).events)
        restarted = Ingestor(bus, sessionmaker(engine), lambda: directory)
        with pytest.raises(IngestError) as refused:
            restarted.validate(raw)
        assert refused.value.status_code == 409
        assert len(refused.value.errors) == 50
        # A batch mixing old and new ids publishes only the new ones.
        valid = restarted.validate(more)
        assert [e.id for e in valid.events] == [e["id"] for e in more[50:]]
        assert len(valid.duplicates) == 50
    finally:
        await bus.aclose()
        engine.dispose()


class Demo:
    """`gridcc demo --no-simulate` on `url` (the default set-up: embedded bus, no Redis)."""

    def __init__(self, url: str, log: Path) -> None:
        self.url, self.log = url, log
        self.process: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDCC_")}
        env |= {"GRIDCC_DATABASE_URL": self.url, "GRIDCC_API_KEYS": json.dumps({"tests": KEY})}
        command = ["-c", "from cli import main; main()", "demo", "--no-simulate"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *command, "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"demo exited with {self.process.returncode}: see {self.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"demo did not come up in 60 s: see {self.log}")
            time.sleep(0.1)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(sig)
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture
def demo(city: str, tmp_path: Path) -> Iterator[Demo]:
    server = Demo(city, tmp_path / "demo.log")
    try:
        yield server
    finally:
        server.kill()


def post(base: str, raw: list[dict[str, Any]]) -> tuple[int, Any]:
    """POST `raw` to the ingest API: the status and the JSON body."""
    request = urllib.request.Request(
        f"{base}/api/v1/events",
        data=json.dumps(raw).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": KEY},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.mark.slow
def test_kill_9_right_after_202_loses_nothing(city: str, demo: Demo) -> None:
    raw = raw_events(city, 2 * BATCH, "durable")
    ids = [e["id"] for e in raw]
    batches = [raw[:BATCH], raw[BATCH:]]
    demo.start()
    for batch in batches:
        status, body = post(demo.base, batch)
        assert (status, body["accepted"]) == (202, BATCH), body
    demo.kill(signal.SIGKILL)  # at once: the 202s are all the process had to give

    engine = db.make_engine(city)
    try:
        # Every accepted event is in the database file, projected or not.
        assert on_bus(engine, ids) == 2 * BATCH
        demo.start()
        # Before the projector has caught up: the ids are known from the bus alone.
        for batch in batches:
            status, body = post(demo.base, batch)
            assert (status, len(body["detail"])) == (409, BATCH), body
        # A crashed consumer's entries come back once stale (pipeline.STALE_MS, 30 s).
        deadline = time.monotonic() + 120
        while len(counts := stored_counts(engine, ids)) < len(ids):
            assert time.monotonic() < deadline, f"{len(counts)} of {len(ids)} projected"
            time.sleep(0.5)
        assert set(counts) == set(ids)
        assert set(counts.values()) == {1}, "an event stored twice"
        assert post(demo.base, batches[0])[0] == 409
    finally:
        engine.dispose()


def test_the_default_bus_is_durable(city: str) -> None:
    """Without Redis, `Services` publishes to the database (not to process memory)."""
    from data_sources.services import Services
    from data_sources.settings import Settings

    services = Services.create(Settings(database_url=city))
    try:
        assert isinstance(services.bus, SqlBus)
    finally:
        asyncio.run(services.bus.aclose())
        services.engine.dispose()
