"""The `gridcc` command line: seed, db upgrade, serve, demo."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import numpy as np
import typer
import uvicorn
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app import create_app
from data_sources import db, store
from data_sources.access import accounts, audit, displays, keys
from data_sources.access.model import Role
from data_sources.access.passwords import generate_password
from data_sources.access.sessions import SessionStore, open_session_store
from data_sources.dead_letters import (
    DeadLetter,
    count_dead_letters,
    drop_dead_letters,
    list_dead_letters,
    retry_dead_letters,
)
from data_sources.embed import grants as embed_grants
from data_sources.embed.panels import PANELS
from data_sources.embed.tokens import TokenLimits
from data_sources.schema import NodeRow
from data_sources.seed.city import SeedReport, seed_city
from data_sources.services import Services, utc_now
from data_sources.settings import Settings
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
            calendar=services.calendar,
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
    # X-Forwarded-For is believed only from the proxies named: uvicorn would take it from any
    # local process, which could then pick the address the login throttle and the audit see.
    proxies = settings.forwarded_allow_ips
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=3,
        proxy_headers=proxies is not None,
        forwarded_allow_ips=proxies,
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
            services.engine,
            seed=seed,
            as_of=as_of,
            tz=services.tz,
            calendar=services.calendar,
            progress=ProgressBar(),
        )
        _print_report(report)
    with services.sessions.begin() as session:
        root = store.root_node(session=session)
        assert root is not None
        logins = _demo_logins(session, services.session_store, root.code)
    services.session_store.close()
    services.engine.dispose()
    # A demo: anyone may read the whole city; acting and administering need the logins below.
    settings = settings.model_copy(update={"anonymous_scope": root.code})
    typer.echo("anonymous visitors read the whole city; to act or administer, sign in at /login:")
    for name, (role, password) in logins.items():
        typer.echo(f"  {role:<9} {name:<14} password {password}")
    _serve(settings, host, port)


#: The demo's accounts, given new passwords at every `gridcc demo` (printed, never stored).
DEMO_USERS = {"demo-operator": Role.OPERATOR, "demo-admin": Role.ADMIN}


def _demo_logins(
    session: Session, session_store: SessionStore, city: str
) -> dict[str, tuple[str, str]]:
    """The demo operator's and admin's names, roles and fresh passwords (accounts made once)."""
    known = {user.name for user in accounts.list_users(session=session)}
    logins = {}
    for name, role in DEMO_USERS.items():
        password = generate_password()
        if name in known:
            accounts.set_password(
                session=session,
                store=session_store,
                name=name,
                password=password,
                now=utc_now(),
            )
            _audit(session, "user.passwd", name)
        else:
            accounts.add_user(
                session=session,
                name=name,
                role=role,
                scope_code=city,
                password=password,
                now=utc_now(),
            )
            _audit(session, "user.add", name, role=role.value, scope=city)
        logins[name] = (role.value, password)
    return logins


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
        with services.sessions() as session, session.begin():
            done = [letter.id for letter in retried]
            _audit(session, "dead_letters.retry", f"{len(done)}", ids=done[:1000])
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
            _audit(session, "dead_letters.drop", f"{dropped} of {len(ids)}", ids=ids[:1000])
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


# ---------------------------------------------------------------- displays and API keys

display_cli = typer.Typer(help="Wall PCs enrolled with a device token (displays).")
cli.add_typer(display_cli, name="display")
key_cli = typer.Typer(help="API keys: ingest sources' and admins'.")
cli.add_typer(key_cli, name="key")
#: Who the audit log records for changes made here.
CLI_ACTOR = "cli"


@contextlib.contextmanager
def _admin_session(database_url: str | None) -> Iterator[Session]:
    """A session in a transaction on the configured database, for an admin change and its audit
    line (they commit together)."""
    engine = db.make_engine(_settings(database_url).database_url)
    try:
        if not db.is_migrated(engine):
            typer.echo("the database has no schema: run `gridcc db upgrade` first", err=True)
            raise typer.Exit(1)
        with db.make_sessionmaker(engine)() as session, session.begin():
            yield session
    finally:
        engine.dispose()


@contextlib.contextmanager
def _session_store(database_url: str | None) -> Iterator[SessionStore]:
    """Where the server keeps signed-in sessions (Redis when GRIDCC_REDIS_URL is set, else SQL):
    disabling a user or setting a password ends theirs there, at once."""
    session_store = open_session_store(_settings(database_url).redis_url)
    try:
        yield session_store
    finally:
        session_store.close()


def _audit(session: Session, action: str, target: str, **detail: Any) -> None:
    audit.record(
        session=session,
        at=utc_now(),
        actor=CLI_ACTOR,
        actor_kind=CLI_ACTOR,
        action=action,
        outcome="ok",
        scope_code=detail.get("scope"),
        target=target,
        detail=detail or None,
    )


@display_cli.command("add")
def display_add(
    name: Annotated[str, typer.Argument(help="A name for the display, e.g. wall-1.")],
    scope: Annotated[str, typer.Option(help="Code of the area it shows (and no more).")],
    operator: Annotated[
        bool, typer.Option(help="It may act (acknowledge alarms, open cases), not only read.")
    ] = False,
    url: Annotated[str, typer.Option(help="Base URL of the server as the display reaches it.")] = (
        "http://127.0.0.1:8050"
    ),
    database_url: DatabaseUrl = None,
) -> None:
    """Enrol a display; prints its URL with the device token, once (open it on the wall PC)."""
    with _admin_session(database_url) as session:
        try:
            token = displays.add_display(
                session=session, name=name, scope_code=scope, operator=operator, now=utc_now()
            )
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        _audit(session, "display.add", name, scope=scope, operator=operator)
    typer.echo(f"display {name!r} enrolled for {scope}{' (operator)' if operator else ''}")
    typer.echo("open this URL on the display (shown only now):")
    typer.echo(f"{url.rstrip('/')}/display/{token}")


@display_cli.command("revoke")
def display_revoke(
    name: Annotated[str, typer.Argument(help="The display's name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a display: its token stops working and its live stream ends."""
    with _admin_session(database_url) as session:
        if not displays.revoke_display(session=session, name=name, now=utc_now()):
            typer.echo(f"no enrolled display called {name!r}", err=True)
            raise typer.Exit(1)
        _audit(session, "display.revoke", name)
    typer.echo(f"display {name!r} revoked")


@display_cli.command("list")
def display_list(database_url: DatabaseUrl = None) -> None:
    """Enrolled displays: name, area, whether they may act, when enrolled and revoked (UTC)."""
    with _admin_session(database_url) as session:
        enrolled = displays.list_displays(session=session)
    if not enrolled:
        typer.echo("no displays")
        return
    typer.echo(f"{'name':<24} {'scope':<14} {'may act':<8} {'enrolled (UTC)':<16}  revoked (UTC)")
    for d in enrolled:
        revoked = f"{d.revoked_at:%Y-%m-%d %H:%M}" if d.revoked_at else "-"
        acts = "yes" if d.operator else "no"
        typer.echo(
            f"{d.name:<24} {d.scope_code:<14} {acts:<8} {d.created_at:%Y-%m-%d %H:%M}  {revoked}"
        )


@key_cli.command("add")
def key_add(
    source: Annotated[str, typer.Argument(help="The source's name, e.g. hotline or frigate.")],
    role: Annotated[
        keys.KeyRole, typer.Option(help="ingest: send events; admin: also the admin APIs.")
    ] = keys.KeyRole.INGEST,
    database_url: DatabaseUrl = None,
) -> None:
    """Make an API key; prints it once (only its hash is stored)."""
    with _admin_session(database_url) as session:
        try:
            key = keys.add_key(
                session=session, source=source, role=role, now=utc_now(), created_by=CLI_ACTOR
            )
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        info = keys.key_info(session=session, key=key)
        assert info is not None
        _audit(session, "key.add", str(info.id), source=source, role=role.value)
    typer.echo(f"key {info.id} for {source} ({role.value}); send it as X-API-Key (shown only now):")
    typer.echo(key)


@key_cli.command("revoke")
def key_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id, from `gridcc key list`.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key (the servers refuse it within seconds)."""
    with _admin_session(database_url) as session:
        if not keys.revoke_key(session=session, key_id=key_id, now=utc_now()):
            typer.echo(f"no valid key with id {key_id}", err=True)
            raise typer.Exit(1)
        _audit(session, "key.revoke", str(key_id))
    typer.echo(f"key {key_id} revoked")


@key_cli.command("list")
def key_list(database_url: DatabaseUrl = None) -> None:
    """API keys (never the keys themselves): id, source, role, made when and by whom, revoked."""
    with _admin_session(database_url) as session:
        stored = keys.list_keys(session=session)
    if not stored:
        typer.echo("no API keys")
        return
    typer.echo(
        f"{'id':>5}  {'source':<20} {'role':<7} {'made (UTC)':<16}  {'by':<16} revoked (UTC)"
    )
    for k in stored:
        revoked = f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-"
        typer.echo(
            f"{k.id:>5}  {k.source:<20} {k.role.value:<7} {k.created_at:%Y-%m-%d %H:%M}  "
            f"{k.created_by or '-':<16} {revoked}"
        )


# ---------------------------------------------------------------- embeds (portals' iframes)

embed_cli = typer.Typer(help="Panels embedded in other sites' portals.")
cli.add_typer(embed_cli, name="embed")
grant_cli = typer.Typer(help="Embed grants: which portal may embed which panels of which area.")
embed_cli.add_typer(grant_cli, name="grant")


def _refused(reason: str) -> typer.Exit:
    """Say why on one line (stderr); the exit to raise (2: the request was refused)."""
    typer.echo(reason, err=True)
    return typer.Exit(2)


def _token_limits(settings: Settings) -> TokenLimits:
    return TokenLimits(settings.embed_token_default_s, settings.embed_token_max_s)


@grant_cli.command("add")
def embed_grant_add(
    name: Annotated[str, typer.Option(help="A name for the grant, e.g. the portal's.")],
    scope: Annotated[str, typer.Option(help="Code of the area its embeds show (and no more).")],
    panels: Annotated[
        str, typer.Option(help=f"Panels it may show, comma-separated: {','.join(PANELS)}.")
    ],
    origin: Annotated[
        list[str] | None,
        typer.Option(
            help="An origin (scheme://host[:port]) that may frame its embeds (repeatable); "
            "none: GRIDCC_EMBED_ALLOWED_ORIGINS."
        ),
    ] = None,
    max_ttl: Annotated[
        int | None,
        typer.Option(help="Its longest token, in seconds (default: GRIDCC_EMBED_TOKEN_MAX_S)."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Make an embed grant; tokens are then minted under it (`gridcc embed-token`)."""
    settings = _settings(database_url)
    with _admin_session(database_url) as session:
        try:
            grant = embed_grants.add_grant(
                session=session,
                name=name,
                scope_code=scope,
                panels=panels,
                origins=origin or (),
                max_ttl_s=settings.embed_token_max_s if max_ttl is None else max_ttl,
                created_by=CLI_ACTOR,
                now=utc_now(),
                limits=_token_limits(settings),
            )
        except ValueError as exc:
            raise _refused(f"{getattr(exc, 'field', 'grant')}: {exc}") from None
        _audit(
            session,
            "embed.add",
            name,
            scope=scope,
            panels=list(grant.panels),
            origins=list(grant.origins),
            max_ttl_s=grant.max_ttl_s,
        )
    origins = " ".join(grant.origins) or "GRIDCC_EMBED_ALLOWED_ORIGINS"
    typer.echo(
        f"embed grant {grant.name!r} (id {grant.id}): {','.join(grant.panels)} of {grant.scope_code}"
        f", framed by {origins}, tokens up to {grant.max_ttl_s} s"
    )


@grant_cli.command("list")
def embed_grant_list(database_url: DatabaseUrl = None) -> None:
    """Embed grants: name, area, panels, origins, longest token, when made and revoked (UTC)."""
    with _admin_session(database_url) as session:
        made = embed_grants.list_grants(session=session)
    if not made:
        typer.echo("no embed grants")
        return
    typer.echo(
        f"{'id':>5}  {'name':<24} {'scope':<14} {'max ttl':>7}  {'made (UTC)':<16}  "
        f"{'revoked (UTC)':<16}  panels  origins"
    )
    for g in made:
        revoked = f"{g.revoked_at:%Y-%m-%d %H:%M}" if g.revoked_at else "-"
        typer.echo(
            f"{g.id:>5}  {g.name:<24} {g.scope_code:<14} {g.max_ttl_s:>7}  "
            f"{g.created_at:%Y-%m-%d %H:%M}  {revoked:<16}  {','.join(g.panels)}  "
            f"{' '.join(g.origins) or '(deployment)'}"
        )


@grant_cli.command("revoke")
def embed_grant_revoke(
    name: Annotated[str, typer.Argument(help="The grant's name.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an embed grant: every token issued under it is refused at its next request."""
    with _admin_session(database_url) as session:
        if not embed_grants.revoke_grant(session=session, name=name, now=utc_now()):
            raise _refused(f"no valid embed grant called {name!r}")
        _audit(session, "embed.revoke", name)
    typer.echo(f"embed grant {name!r} revoked")


@cli.command("embed-token")
def embed_token(
    grant: Annotated[str, typer.Option(help="The grant to mint it under.")],
    ttl: Annotated[
        int | None,
        typer.Option(help="Its lifetime in seconds (default: GRIDCC_EMBED_TOKEN_DEFAULT_S)."),
    ] = None,
    scope: Annotated[
        str | None, typer.Option(help="An area within the grant's (default: the grant's).")
    ] = None,
    lang: Annotated[str, typer.Option(help="zh or en.")] = "zh",
    panels: Annotated[
        str | None,
        typer.Option(help="Some of the grant's panels, comma-separated (default: all)."),
    ] = None,
    base_url: Annotated[
        str, typer.Option(help="Base URL of the server as the portal's viewers reach it.")
    ] = "http://127.0.0.1:8050",
    database_url: DatabaseUrl = None,
) -> None:
    """Mint an embed token: prints the token, when it expires and the URL of its embed."""
    settings = _settings(database_url)
    configured = settings.embed_secret.get_secret_value() if settings.embed_secret else None
    with _admin_session(database_url) as session:
        try:
            token, claims = embed_grants.issue_token(
                session=session,
                secret=embed_grants.signing_secret(session=session, configured=configured),
                grant_name=grant,
                ttl_s=ttl,
                now=utc_now(),
                limits=_token_limits(settings),
                scope=scope,
                panels=panels,
                lang=lang,
            )
        except (ValueError, LookupError) as exc:
            raise _refused(f"{getattr(exc, 'field', 'grant')}: {exc}") from None
        _audit(
            session,
            "embed.token",
            grant,
            scope=claims.scope,
            panels=list(claims.panels),
            lang=claims.lang,
            exp=claims.exp,
        )
    expires = datetime.fromtimestamp(claims.exp, UTC)
    typer.echo(token)
    typer.echo(f"expires {expires:%Y-%m-%d %H:%M:%S} UTC (exp {claims.exp})")
    typer.echo(f"{base_url.rstrip('/')}/embed?token={token}")


# ---------------------------------------------------------------- user accounts

user_cli = typer.Typer(help="User accounts that sign in on the login page.")
cli.add_typer(user_cli, name="user")
UserName = Annotated[str, typer.Argument(help="The user's sign-in name.")]
PasswordStdin = Annotated[
    bool, typer.Option(help="Read the password from the first line of stdin (for scripts).")
]
Generate = Annotated[bool, typer.Option(help="Generate a random password and print it, once.")]


def _new_password(password_stdin: bool, generate: bool) -> str:
    """The password to set: generated, read from stdin, or typed twice without echo."""
    if password_stdin and generate:
        typer.echo("give --password-stdin or --generate, not both", err=True)
        raise typer.Exit(2)
    if generate:
        return generate_password()
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@user_cli.command("add")
def user_add(
    name: UserName,
    role: Annotated[Role, typer.Option(help="leader: reads; operator: also acts; admin: all.")],
    scope: Annotated[str, typer.Option(help="Code of the area the user sees (and no more).")],
    password_stdin: PasswordStdin = False,
    generate: Generate = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user account (the password is asked twice unless given another way)."""
    password = _new_password(password_stdin, generate)
    with _admin_session(database_url) as session:
        try:
            user_id = accounts.add_user(
                session=session,
                name=name,
                role=role,
                scope_code=scope,
                password=password,
                now=utc_now(),
            )
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        _audit(session, "user.add", name, scope=scope, role=role.value, id=user_id)
    typer.echo(f"user {name!r} added: {role.value} of {scope}")
    if generate:
        typer.echo(f"password (shown only now): {password}")


@user_cli.command("passwd")
def user_passwd(
    name: UserName,
    password_stdin: PasswordStdin = False,
    generate: Generate = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a user's password; ends the user's sessions and clears a lockout."""
    password = _new_password(password_stdin, generate)
    with _admin_session(database_url) as session, _session_store(database_url) as session_store:
        try:
            accounts.set_password(
                session=session,
                store=session_store,
                name=name,
                password=password,
                now=utc_now(),
            )
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        _audit(session, "user.passwd", name)
    typer.echo(f"password of {name!r} changed; their sessions are ended")
    if generate:
        typer.echo(f"password (shown only now): {password}")


@user_cli.command("disable")
def user_disable(name: UserName, database_url: DatabaseUrl = None) -> None:
    """Disable a user: sign-ins are refused and open sessions end at once."""
    with _admin_session(database_url) as session, _session_store(database_url) as session_store:
        try:
            ended = accounts.disable_user(
                session=session, store=session_store, name=name, now=utc_now()
            )
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        _audit(session, "user.disable", name, sessions_ended=ended)
    typer.echo(f"user {name!r} disabled ({ended} open session(s) ended)")


@user_cli.command("enable")
def user_enable(name: UserName, database_url: DatabaseUrl = None) -> None:
    """Let a disabled user sign in again."""
    with _admin_session(database_url) as session:
        try:
            accounts.enable_user(session=session, name=name, now=utc_now())
        except ValueError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        _audit(session, "user.enable", name)
    typer.echo(f"user {name!r} enabled")


@user_cli.command("list")
def user_list(database_url: DatabaseUrl = None) -> None:
    """User accounts: name, role, area, when created (UTC), and whether disabled or locked."""
    with _admin_session(database_url) as session:
        users = accounts.list_users(session=session)
    if not users:
        typer.echo("no users")
        return
    now = utc_now()
    typer.echo(f"{'id':>5}  {'name':<24} {'role':<9} {'scope':<14} {'created (UTC)':<16}  state")
    for u in users:
        state = "active"
        if u.disabled_at is not None:
            state = f"disabled {u.disabled_at:%Y-%m-%d %H:%M}"
        elif u.locked_until is not None and u.locked_until > now:
            state = f"locked until {u.locked_until:%H:%M} UTC"
        typer.echo(
            f"{u.id:>5}  {u.name:<24} {u.role.value:<9} {u.scope_code:<14} "
            f"{u.created_at:%Y-%m-%d %H:%M}  {state}"
        )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
