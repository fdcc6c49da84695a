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
from data_sources.schema import NodeRow
from data_sources.seed.city import SeedReport, seed_city
from data_sources.simulator import EventFactory, LiveSimulator, SimPlaces
from data_sources.simulator_pace import FixedLoad, HistoryPace, Pace

cli = typer.Typer(help="gridcc: real-time command-centre dashboard for grid governance.")
db_cli = typer.Typer(help="Database schema.")
cli.add_typer(db_cli, name="db")

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
