"""The `gridcc` command line: seed, db upgrade, serve, demo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from typing import Annotated, Any

import numpy as np
import typer
import uvicorn
from sqlalchemy import Engine, func, select

from app import Services, Settings, create_app, utc_now
from data_sources import db
from data_sources.dead_letters import (
    DeadLetter,
    count_dead_letters,
    drop_dead_letters,
    list_dead_letters,
    retry_dead_letters,
)
from data_sources.schema import NodeRow
from data_sources.seed.city import SeedReport, seed_city
from data_sources.simulator import EventFactory, LiveSimulator, SimPlaces
from data_sources.simulator_pace import FixedLoad, HistoryPace, Pace

cli = typer.Typer(help="gridcc: real-time command-centre dashboard for grid governance.")
db_cli = typer.Typer(help="Database schema.")
cli.add_typer(db_cli, name="db")
dead_letters_cli = typer.Typer(help="Events the projector could not apply (dead letters).")
cli.add_typer(dead_letters_cli, name="dead-letters")

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]
Rate = Annotated[
    float | None,
    typer.Option(
        min=0.1,
        help="Stress test: a fixed load of this many events/s (new case, alarm and GPS storylines "
        "in a fixed mix, shaped by the time of day) whatever the seeded history says; 40 reports "
        "~250 times the demo city's new cases. Unset: the seeded city's pace (new cases by the "
        "history's daily volume and hourly profile, ~1,600 a day; alarms and GPS fixes by the "
        "seed's rates, ~8 events/s in all).",
    ),
]


class ProgressBar:
    """A one-line progress bar on stderr (a line per stage when stderr is not a terminal)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def __call__(self, stage: str, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        if self.tty:
            filled = int(30 * done / total) if total else 30
            bar = "█" * filled + "·" * (30 - filled)
            sys.stderr.write(f"\r{elapsed:6.1f}s {bar} {done:>9,}/{total:<9,} {stage:<28}")
            if done >= total:
                sys.stderr.write("\n")
        elif done and (done >= total or total <= 20):  # no terminal: whole lines, not too many
            sys.stderr.write(f"{elapsed:6.1f}s {stage}: {done:,}/{total:,}\n")
        sys.stderr.flush()


def _settings(database_url: str | None) -> Settings:
    settings = Settings()
    return settings.model_copy(update={"database_url": database_url}) if database_url else settings


def _is_seeded(engine: Engine) -> bool:
    if not db.is_migrated(engine):
        return False
    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(NodeRow)).scalar_one())


def _print_report(report: SeedReport) -> None:
    levels = ", ".join(f"{level} {count:,}" for level, count in report.nodes.items())
    typer.echo(f"seeded in {report.seconds:.1f} s")
    typer.echo(f"  nodes: {levels}")
    typer.echo(
        f"  workers {report.workers:,} · cameras {report.cameras:,} · alarms {report.alarms:,}"
        f" · cases {report.cases:,} · case events {report.case_events:,}"
    )


DatabaseUrl = Annotated[
    str | None, typer.Option(help="SQLAlchemy URL (default: GRIDCC_DATABASE_URL or sqlite).")
]


@db_cli.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Create or migrate the schema to the newest revision."""
    services = Services.create(_settings(database_url))
    db.upgrade(services.engine)
    typer.echo(f"schema up to date: {services.engine.url.render_as_string()}")
    services.engine.dispose()


@cli.command()
def seed(
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same city.")] = 7,
    as_of: Annotated[
        datetime | None,
        typer.Option(help="End of the seeded history, UTC (default: this hour)."),
    ] = None,
    district: Annotated[
        list[str] | None, typer.Option(help="Only this district adcode (repeatable).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=730, help="Days of case history.")] = 90,
    cases_per_day: Annotated[float, typer.Option(min=0, help="City-wide cases per day.")] = 1600,
    database_url: DatabaseUrl = None,
) -> None:
    """Build the Kunming demo city (hierarchy, workers, cameras, history) into an empty database."""
    settings = _settings(database_url)
    services = Services.create(settings)
    try:
        db.upgrade(services.engine)
        if _is_seeded(services.engine):
            typer.echo("database already seeded; seed into an empty database", err=True)
            raise typer.Exit(1)
        report = seed_city(
            services.engine,
            seed=seed,
            as_of=as_of or utc_now().replace(minute=0, second=0, microsecond=0),
            tz=services.tz,
            districts=district or None,
            days=days,
            cases_per_day=cases_per_day,
            progress=ProgressBar(),
        )
        _print_report(report)
    finally:
        services.engine.dispose()


def _serve(settings: Settings, host: str, port: int) -> None:
    typer.echo(f"gridcc on http://{host}:{port}/  (Ctrl+C to stop)")
    # Open live streams never end by themselves: give them 3 s, then close them on shutdown.
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=3,
    )


@cli.command()
def serve(host: Host = "127.0.0.1", port: Port = 8050, database_url: DatabaseUrl = None) -> None:
    """Serve the dashboard on an existing database."""
    _serve(_settings(database_url), host, port)


@cli.command()
def demo(
    host: Host = "127.0.0.1",
    port: Port = 8050,
    simulate: Annotated[bool, typer.Option(help="Run the live city simulator.")] = True,
    rate: Rate = None,
    seed: Annotated[int, typer.Option(help="Random seed of the demo city.")] = 7,
    database_url: DatabaseUrl = None,
) -> None:
    """Seed the Kunming demo city if the database is empty, then serve it, live."""
    settings = _settings(database_url)
    if simulate:
        settings = settings.model_copy(update={"simulate": True, "simulate_rate": rate or 0})
    services = Services.create(settings)
    db.upgrade(services.engine)
    if not _is_seeded(services.engine):
        typer.echo("empty database: seeding the Kunming demo city (about 20 s on 2 cores)…")
        as_of = utc_now().replace(second=0, microsecond=0) - timedelta(minutes=1)
        report = seed_city(
            services.engine, seed=seed, as_of=as_of, tz=services.tz, progress=ProgressBar()
        )
        _print_report(report)
    services.engine.dispose()
    _serve(settings, host, port)


@cli.command()
def simulate(
    rate: Rate = None,
    url: Annotated[
        str, typer.Option(help="Base URL of a running gridcc.")
    ] = "http://127.0.0.1:8050",
    api_key: Annotated[
        str, typer.Option(envvar="GRIDCC_SIMULATOR_KEY", help="Ingest API key.")
    ] = "",
    speed: Annotated[
        float,
        typer.Option(
            min=1, help="How much faster a case's steps follow its report (not more reports)."
        ),
    ] = 60,
    database_url: DatabaseUrl = None,
) -> None:
    """Post a living city's events to a running gridcc's ingest API, like a real feed."""
    settings = _settings(database_url)
    services = Services.create(settings)
    services.load()
    if services.directory.root_id is None:
        typer.echo("the database has no city: run `gridcc seed` first", err=True)
        raise typer.Exit(1)
    with services.sessions() as session:
        places = SimPlaces.load(session=session)
        pace: Pace = (
            FixedLoad(rate, services.tz)
            if rate
            else HistoryPace.load(session=session, tz=services.tz)
        )
    services.engine.dispose()
    started = int(time.time())
    factory = EventFactory(
        places, services.directory, np.random.default_rng(started), prefix=f"sim{started:x}"
    )

    async def post(raw: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(_post_events, url, api_key, raw)

    simulator = LiveSimulator(factory, post, pace, speed=speed, clock=utc_now)
    load = f"{rate:g} events/s" if rate else "the seeded history's pace"
    typer.echo(f"simulating {load} (speed ×{speed:g}) into {url}  (Ctrl+C to stop)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(simulator.run())


DeadLetterIds = Annotated[list[int], typer.Argument(help="Ids from `gridcc dead-letters list`.")]


@dead_letters_cli.command("list")
def dead_letters_list(
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many, oldest first.")] = 100,
    database_url: DatabaseUrl = None,
) -> None:
    """Dead letters: id, event id, kind, attempts, when it failed (UTC) and the error."""
    services = Services.create(_settings(database_url))
    try:
        with services.sessions() as session:
            total = count_dead_letters(session=session)
            letters = list_dead_letters(session=session, limit=limit)
    finally:
        services.engine.dispose()
    if not letters:
        typer.echo("no dead letters")
        return
    typer.echo(
        f"{'id':>6}  {'event id':<34} {'kind':<18} {'tries':>5}  {'failed at (UTC)':<19}  error"
    )
    for letter in letters:
        typer.echo(_dead_letter_line(letter))
    if total > len(letters):
        typer.echo(f"… {total - len(letters):,} more (--limit)")


def _dead_letter_line(letter: DeadLetter) -> str:
    error = letter.error.splitlines()[0] if letter.error else ""
    return (
        f"{letter.id:>6}  {letter.event_id or '-':<34} {letter.kind or '-':<18} "
        f"{letter.attempts:>5}  {letter.failed_at:%Y-%m-%d %H:%M:%S}  {error[:120]}"
    )


@dead_letters_cli.command("retry")
def dead_letters_retry(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Ids to retry.", show_default=False)
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Retry every dead letter.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Republish dead letters (after a fix) to the server's bus: Redis with GRIDCC_REDIS_URL, else
    the database's own bus table; the projector applies them and they leave the list."""
    if bool(ids) == all_:
        typer.echo("give dead-letter ids or --all", err=True)
        raise typer.Exit(2)
    services = Services.create(_settings(database_url))

    async def retry() -> list[DeadLetter]:
        try:
            return await retry_dead_letters(
                sessions=services.sessions, bus=services.bus, ids=None if all_ else ids
            )
        finally:
            await services.bus.aclose()
            if services.redis is not None:
                await services.redis.aclose()

    try:
        retried = asyncio.run(retry())
    finally:
        services.engine.dispose()
    typer.echo(f"retried {len(retried):,}: " + " ".join(str(letter.id) for letter in retried))
    missing = sorted(set(ids or ()) - {letter.id for letter in retried})
    if missing:
        typer.echo(f"no dead letters with ids {' '.join(map(str, missing))}", err=True)
        raise typer.Exit(1)


@dead_letters_cli.command("drop")
def dead_letters_drop(ids: DeadLetterIds, database_url: DatabaseUrl = None) -> None:
    """Delete dead letters for good (their events are never applied)."""
    services = Services.create(_settings(database_url))
    try:
        with services.sessions() as session, session.begin():
            dropped = drop_dead_letters(session=session, ids=ids)
    finally:
        services.engine.dispose()
    typer.echo(f"dropped {dropped:,} of {len(ids):,}")


def _post_events(url: str, api_key: str, raw: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/v1/events",
        data=json.dumps(raw).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": api_key},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 202:
            raise RuntimeError(f"ingest answered {response.status}")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
