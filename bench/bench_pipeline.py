"""Ingest throughput sustained through the projector, on the in-process bus and on Redis Streams.

Prints events/s for: validate (ingest), publish + read (the bus alone: the baseline), and
publish → projector → SQL commit → live state → ack (the pipeline), and the pipeline's ratio to the
bus baseline, so noisy machines still compare like with like.

    python bench/bench_pipeline.py [--events 20000] [--short] [--redis redis://127.0.0.1:6379/15]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import redis.asyncio as aioredis
from sqlalchemy.orm import Session, sessionmaker

from data_sources import db
from data_sources.bus import Bus
from data_sources.bus.memory import MemoryBus
from data_sources.bus.redis_streams import RedisStreamBus
from data_sources.directory import load_directory
from data_sources.events import Event, encode
from data_sources.ingest import Ingestor
from data_sources.live import load_live_state
from data_sources.pipeline import GROUP, ProjectorLoop, tune_gc
from data_sources.seed.city import seed_city
from data_sources.simulator import EventFactory, SimPlaces, as_raw
from data_sources.workhours import CN_CALENDAR

TZ = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 11, 23, 6, 0)


async def bus_baseline(bus: Bus, payloads: list[bytes]) -> float:
    """Events/s through publish + read + ack alone."""
    group = f"baseline-{uuid.uuid4().hex[:6]}"
    await bus.ensure_group(group)
    started = time.perf_counter()
    for i in range(0, len(payloads), 1000):
        await bus.publish(payloads[i : i + 1000])
    done = 0
    while done < len(payloads):
        batch = await bus.read(group, "b", count=1000, block_ms=10)
        await bus.ack(group, [d.position for d in batch])
        done += len(batch)
    return len(payloads) / (time.perf_counter() - started)


async def pipeline(bus: Bus, batches: list[list[bytes]], url: str) -> float:
    """Events/s from the first publish to the last acknowledgement, publishing while the
    projector's own run loop consumes (into SQL and live state), as in the running app."""
    engine = db.make_engine(url)
    with Session(engine) as session:
        directory = load_directory(session=session)
        live = load_live_state(session=session, root_id=directory.root_id)
    await bus.ensure_group(GROUP)
    loop = ProjectorLoop(
        bus, sessionmaker(engine), lambda: directory, live, TZ, CN_CALENDAR, block_ms=10
    )
    total = sum(len(b) for b in batches)
    started = time.perf_counter()
    consumer = asyncio.create_task(loop.run())
    for batch in batches:
        await bus.publish(batch)
        await asyncio.sleep(0)  # let the projector's loop take its turn, as requests would
    while loop.applied < total:
        await asyncio.sleep(0.002)
    rate = total / (time.perf_counter() - started)
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    engine.dispose()
    return rate


def fresh_city(folder: Path, name: str) -> str:
    url = f"sqlite:///{folder / name}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=7, as_of=AS_OF, tz=TZ, districts=["530103"], days=2, cases_per_day=1000)
    engine.dispose()
    return url


def copy_city(template: str, folder: Path, name: str) -> str:
    """A fresh copy of the seeded template (SQLite file; its WAL is checkpointed on dispose)."""
    shutil.copyfile(template.removeprefix("sqlite:///"), folder / name)
    return f"sqlite:///{folder / name}"


def story_mix(factory: EventFactory, n: int) -> list[Event]:
    """The simulator's mix: whole case and alarm stories (≈ 65 % case steps), the costly kind."""
    return factory.mixed(n, AS_OF + timedelta(minutes=1), timedelta(hours=4))[:n]


def city_mix(factory: EventFactory, n: int) -> list[Event]:
    """A real city's mix by the seed facts: 7,139 workers reporting every 30 s (≈ 238/s) next to
    ≈ 1,600 cases a day (≈ 7 steps each) and ≈ 2,000 camera alarms a day (3 steps each)."""
    positions_per_s = 7_139 / 30
    stories_per_s = (1_600 + 2_000) / 86_400
    start, events = AS_OF + timedelta(minutes=1), []
    span = timedelta(seconds=n / positions_per_s)
    for _ in range(max(1, round(n * stories_per_s / positions_per_s))):
        t = start + span * float(factory.rng.random())
        events += factory.case_story(t) if factory.rng.random() < 0.45 else factory.alarm_story(t)
    while len(events) < n:
        events.append(factory.position(start + span * float(factory.rng.random())))
    events.sort(key=lambda e: (e.ts, e.id))
    return events[:n]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--short", action="store_true", help="CI mode: 5,000 events")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    n = 5_000 if args.short else args.events
    tune_gc()  # as the app does when it starts its projector

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        template = fresh_city(folder, "template.db")
        engine = db.make_engine(template)
        with Session(engine) as session:
            directory = load_directory(session=session)
            places = SimPlaces.load(session=session)
        engine.dispose()
        client = aioredis.Redis.from_url(args.redis)
        buses = ["in-process"]
        try:
            await client.ping()  # type: ignore[misc]  # redis-py types it sync-or-async
            buses.append("redis streams")
        except Exception as exc:
            print(f"redis not reachable ({exc}); only the in-process bus is measured")

        def make(name: str) -> Bus:
            if name == "in-process":
                return MemoryBus()
            return RedisStreamBus(client, stream=f"bench:{uuid.uuid4().hex}")

        print(f"events: {n:,} per run, projector on SQLite; the baseline is the bus alone")
        for label, mix in (("story mix", story_mix), ("city mix", city_mix)):
            factory = EventFactory(places, directory, np.random.default_rng(1), prefix="bench")
            events = mix(factory, n)
            kinds = Counter(e.kind.split(".")[0] for e in events)
            shares = ", ".join(f"{k} {100 * v / len(events):.0f} %" for k, v in kinds.items())
            payloads = [encode(e) for e in events]
            raw = [as_raw(e, e.ts_utc) for e in events]
            engine = db.make_engine(template)
            ingestor = Ingestor(MemoryBus(), sessionmaker(engine), lambda: directory)
            started = time.perf_counter()
            for i in range(0, len(raw), 1000):
                ingestor.validate(raw[i : i + 1000])
            validate_rate = n / (time.perf_counter() - started)
            engine.dispose()
            print(f"{label} ({shares})")
            print(f"  ingest validation                  {validate_rate:>9,.0f} events/s")
            for name in buses:
                baseline = await bus_baseline(make(name), payloads)
                url = copy_city(template, folder, f"run-{label}-{name}.db".replace(" ", "-"))
                batches = [payloads[i : i + 1000] for i in range(0, len(payloads), 1000)]
                rate = await pipeline(make(name), batches, url)
                print(
                    f"  {name:<14} through projector {rate:>9,.0f} events/s · bus alone "
                    f"{baseline:>9,.0f} events/s · ratio {rate / baseline:.2f}"
                )
        await client.flushdb()
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main())
