"""Fixtures: real SQLite and PostgreSQL databases, a real Redis, a real server for browser tests.

A test that needs a service which is not configured is skipped on a developer machine and fails in CI
(`CI` set): CI must prove the real parts work.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
import redis
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from data_sources import db
from data_sources.access.accounts import add_user
from data_sources.access.model import Role, Scope
from data_sources.model import Level
from data_sources.schema import NodeRow
from data_sources.seed.city import SeedReport, seed_city

from .browser import launch

TZ = ZoneInfo("Asia/Shanghai")
AS_OF = datetime(2026, 11, 23, 6, 0)  # 14:00 on a Monday in Kunming
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
#: The city's code. The suite's servers (in-process and subprocesses, which inherit this) let
#: anonymous visitors read it, as `gridcc demo` does: tests of the pipeline and the pages need no
#: login. The access tests set their own `anonymous_scope` (None: login required).
CITY = "530100"
os.environ.setdefault("GRIDCC_ANONYMOUS_SCOPE", CITY)


def need(what: str, reason: str) -> None:
    """Skip for want of `what`, except in CI, where a missing service is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI: {reason}", pytrace=False)
    pytest.skip(f"{what} not available: {reason}")


# ---------------------------------------------------------------- databases


#: Where the services run on these machines when no GRIDCC_TEST_* variable says otherwise.
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A PostgreSQL URL whose user may create databases."""
    return os.environ.get("GRIDCC_TEST_DATABASE_URL") or DEFAULT_POSTGRES


@pytest.fixture(scope="session")
def new_postgres_database(postgres_admin_url: str) -> Iterator[Callable[[], str]]:
    """Makes throwaway databases on the test server (each test fixture gets its own: one that
    downgrades its schema must not take another's data with it); all dropped at the end."""
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make() -> str:
        name = f"gridcc_test_{uuid.uuid4().hex[:10]}"
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except Exception as exc:  # any connection failure means "no server"
            need("PostgreSQL", f"cannot create a database at {postgres_admin_url}: {exc}")
        made.append(name)
        return make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url(new_postgres_database: Callable[[], str]) -> str:
    return new_postgres_database()


def _backend_url(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / name}"


def fresh_database_url(request: pytest.FixtureRequest, folder: Path) -> str:
    """A new, empty database on the backend of `request.param`: a PostgreSQL database of its own,
    or a SQLite file in `folder`."""
    if request.param == "postgres":
        return str(request.getfixturevalue("new_postgres_database")())
    return f"sqlite:///{folder / 'city.db'}"


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty, migrated database on each backend; emptied again on teardown."""
    eng = db.make_engine(_backend_url(request, tmp_path, "test.db"))
    db.upgrade(eng)
    try:
        yield eng
    finally:
        db.downgrade(eng, "base")
        with eng.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        eng.dispose()


#: A small but real slice of the city: Panlong with its real figures, two weeks of history.
SMALL_SEED = {"districts": ["530103"], "days": 14, "cases_per_day": 900.0}


@pytest.fixture(scope="session", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, SeedReport]]:
    """Panlong seeded once per session on each backend (read-only for the tests that use it)."""
    url = fresh_database_url(request, tmp_path_factory.mktemp("seeded"))
    eng = db.make_engine(url)
    db.upgrade(eng)
    report = seed_city(eng, seed=7, as_of=AS_OF, tz=TZ, **SMALL_SEED)  # type: ignore[arg-type]
    try:
        yield eng, report
    finally:
        eng.dispose()


# ---------------------------------------------------------------- redis


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis database, flushed before and after the test."""
    url = os.environ.get("GRIDCC_TEST_REDIS_URL") or DEFAULT_REDIS
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        client.close()
        need("Redis", f"cannot reach {url}: {exc}")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


# ---------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("GRIDCC_TEST_CHROMIUM") or shutil.which("chromium")
    if not path:
        need("Chromium", "install Debian's chromium package (apt-get install chromium)")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    """A headless Chromium per test module. Not per session: Playwright's sync API keeps an event
    loop running while it is open, which would stop the async tests of later modules."""
    with sync_playwright() as playwright:
        chromium = launch(playwright, chromium_path)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# ---------------------------------------------------------------- signing in


#: The password of every account the tests make (passes the password policy).
PASSWORD = "correct horse 42"


def add_account(database_url: str, name: str, role: str, scope: str) -> str:
    """An account on `database_url` (migrated, with node `scope`); returns its password."""
    engine = db.make_engine(database_url)
    try:
        with Session(engine) as session, session.begin():
            add_user(
                session=session,
                name=name,
                role=Role(role),
                scope_code=scope,
                password=PASSWORD,
                now=datetime.now(UTC).replace(tzinfo=None),
            )
    finally:
        engine.dispose()
    return PASSWORD


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> None:
    """Sign `client` in through the login form, as a browser does; from then on it sends the
    session's CSRF token with every request, as Dash's renderer does."""
    form = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None, form.text
    answer = client.post(
        "/login",
        content=urlencode({"name": name, "password": password, "csrf": csrf[1], "next": "/"}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    client.headers["X-CSRFToken"] = client.cookies["_csrf_token"]


def as_page(client: TestClient) -> TestClient:
    """`client` as a page's scripts are: it loaded a page (which set the CSRF cookie) and echoes
    the token in `X-CSRFToken` on every request."""
    page = client.get("/")
    assert page.status_code == 200, page.status_code
    client.headers["X-CSRFToken"] = client.cookies["_csrf_token"]
    return client


def area(session: Session, code: str) -> Scope:
    """The `Scope` of node `code` as `resolve_scope` makes it (from the store, not a directory);
    a code no node has gives a scope whose node is missing."""
    row = session.scalars(select(NodeRow).where(NodeRow.code == code)).one_or_none()
    if row is None:
        return Scope(-1, code, Level.CITY, ())
    ancestors = (row.district_id, row.street_id, row.community_id, row.grid_id)
    path = tuple(i for i in ancestors if i is not None)
    path += (row.id,) if row.level == Level.BUILDING.value else ()
    return Scope(row.id, code, Level(row.level), path)


def add_nodes(engine: Engine, *nodes: tuple[int, str, str, int | None]) -> None:
    """Hierarchy nodes `(id, code, level, parent id)` on an empty database: the areas that
    accounts, displays and keys are given (a district is its own `district_id`)."""
    square = json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})
    with Session(engine) as session, session.begin():
        for id_, code, level, parent in nodes:
            session.add(
                NodeRow(
                    id=id_,
                    code=code,
                    level=level,
                    parent_id=parent,
                    name_zh=code,
                    name_en=code,
                    lon=102.7,
                    lat=25.0,
                    area_km2=1.0,
                    geometry=square,
                    district_id=id_ if level == "district" else None,
                )
            )
