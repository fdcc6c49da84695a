"""The `SessionStore` contract, run against every store: in SQL (SQLite and PostgreSQL) and in a real
Redis (its users in SQL). Times are injected: nothing sleeps, and Redis TTLs follow the injected
durations (asserted with `TTL`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
import redis
from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from data_sources import db
from data_sources.access.accounts import add_user, disable_user, enable_user, set_password
from data_sources.access.identity import SESSION_COOKIE, Identity
from data_sources.access.keys import sha256_hex
from data_sources.access.login import login_router
from data_sources.access.model import Permission, Principal, Role
from data_sources.access.sessions import (
    TOUCH_EVERY,
    NewSession,
    SessionStore,
    open_session_store,
    session_state,
    ttl_seconds,
)
from data_sources.access.sessions.redis_hashes import (
    SESSION_PREFIX,
    USER_SESSIONS_PREFIX,
    RedisSessions,
)
from data_sources.access.sessions.sql import SqlSessions
from data_sources.schema import UserRow, UserSessionRow

from .conftest import add_nodes

NOW = datetime(2026, 12, 5, 6, 0)
PASSWORD = "Correct-horse-42"
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
STREET = "530103"

#: The stores, each with its users in SQL: the contract holds for every one of them.
STORES = [
    pytest.param("sqlite", "sql", id="sql-sqlite"),
    pytest.param("postgres", "sql", id="sql-postgres", marks=pytest.mark.postgres),
    pytest.param("sqlite", "redis", id="redis", marks=pytest.mark.redis),
]
contract = pytest.mark.parametrize(("engine", "kind"), STORES, indirect=["engine"])


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """The system of record with a city and a district to give users a scope."""
    add_nodes(engine, (1, "530100", "city", None), (2, STREET, "district", 1))
    return db.make_sessionmaker(engine)


@pytest.fixture
def store(kind: str, request: pytest.FixtureRequest) -> Iterator[SessionStore]:
    made: SessionStore = (
        RedisSessions(request.getfixturevalue("redis_url")) if kind == "redis" else SqlSessions()
    )
    try:
        yield made
    finally:
        made.close()


class Sessions:
    """The store and the system of record it reads users from, driven at injected times."""

    def __init__(self, store: SessionStore, sessions: sessionmaker[Session]) -> None:
        self.store = store
        self.sessions = sessions

    def add(self, name: str = "li", role: Role = Role.OPERATOR) -> int:
        with self.sessions.begin() as session:
            return add_user(
                session=session, name=name, role=role, scope_code=STREET, password=PASSWORD, now=NOW
            )

    def start(self, user_id: int, at: datetime = NOW, absolute: timedelta = ABSOLUTE) -> NewSession:
        with self.sessions.begin() as session:
            return self.store.start(
                session=session,
                user_id=user_id,
                now=at,
                client="10.0.0.1",
                idle=IDLE,
                absolute=absolute,
            )

    def principal(self, token: str, at: datetime) -> Principal | None:
        with self.sessions.begin() as session:
            return self.store.principal(session=session, token=token, now=at, idle=IDLE)

    def alive(self, new: NewSession | str, at: datetime) -> bool:
        session_id = new.id if isinstance(new, NewSession) else new
        with self.sessions() as session:
            return self.store.alive(session=session, session_id=session_id, now=at, idle=IDLE)

    def end(self, new: NewSession | str, at: datetime = NOW) -> bool:
        session_id = new.id if isinstance(new, NewSession) else new
        with self.sessions.begin() as session:
            return self.store.end(session=session, session_id=session_id, now=at)

    def set_disabled(self, user_id: int, at: datetime | None) -> None:
        """Mark the user's row disabled (or not) in SQL only, ending nothing."""
        with self.sessions.begin() as session:
            user = session.get(UserRow, user_id)
            assert user is not None
            user.disabled_at = at


@pytest.fixture
def s(store: SessionStore, sessions: sessionmaker[Session]) -> Sessions:
    return Sessions(store, sessions)


def stored_strings(store: SessionStore, sessions: sessionmaker[Session]) -> list[str]:
    """Everything the store holds: every column of every session row, or every Redis key with
    its fields, values and members."""
    if isinstance(store, SqlSessions):
        with sessions() as session:
            rows = session.scalars(select(UserSessionRow))
            columns = UserSessionRow.__table__.columns
            return [str(getattr(row, column.key)) for row in rows for column in columns]
    assert isinstance(store, RedisSessions)
    found: list[str] = []
    for raw in store.redis.scan_iter():
        key = raw.decode() if isinstance(raw, bytes) else raw
        found.append(key)
        kind = store.redis.type(key)
        if kind in ("hash", b"hash"):
            found.extend(map(str, (x for kv in store.redis.hgetall(key).items() for x in kv)))
        elif kind in ("set", b"set"):
            found.extend(map(str, store.redis.smembers(key)))
        else:
            found.append(str(store.redis.get(key)))
    return found


# ---------------------------------------------------------------- the pure rules


def test_session_state() -> None:
    def state(**change: object) -> str:
        args: dict[str, object] = {
            "ended": False,
            "last_seen_at": NOW,
            "expires_at": NOW + ABSOLUTE,
            "disabled": False,
            "now": NOW + IDLE,
            "idle": IDLE,
        }
        return session_state(**{**args, **change})  # type: ignore[arg-type]

    assert state() == "ok"  # idle is "more than `idle` without a request"
    assert state(now=NOW + IDLE + timedelta(seconds=1)) == "idle"
    assert state(expires_at=NOW + IDLE) == "expired"
    assert state(ended=True, disabled=True) == "ended"
    assert state(disabled=True) == "disabled"


def test_ttl_is_the_idle_period_capped_by_the_absolute_end() -> None:
    assert ttl_seconds(now=NOW, expires_at=NOW + ABSOLUTE, idle=IDLE) == 1800
    assert ttl_seconds(now=NOW, expires_at=NOW + timedelta(seconds=90.2), idle=IDLE) == 91
    assert ttl_seconds(now=NOW, expires_at=NOW, idle=IDLE) == 1  # never "persist"


def test_the_configured_store() -> None:
    assert isinstance(open_session_store(None), SqlSessions)
    made = open_session_store("redis://127.0.0.1:1/0")  # connects only when used
    assert isinstance(made, RedisSessions) and isinstance(made, SessionStore)
    made.close()


# ---------------------------------------------------------------- the contract


@contract
def test_a_session_signs_its_user_in(s: Sessions) -> None:
    user_id = s.add()
    new = s.start(user_id)
    assert len(new.token) >= 43 and len(new.csrf) >= 43 and new.expires_at == NOW + ABSOLUTE
    principal = s.principal(new.token, NOW)
    assert principal is not None
    assert (principal.kind, principal.name, principal.scope, principal.role) == (
        "user",
        "li",
        STREET,
        Role.OPERATOR,
    )
    assert (principal.id, principal.session_id, principal.csrf) == (user_id, new.id, new.csrf)
    assert principal.may(Permission.ACT) and not principal.may(Permission.ADMIN)
    assert s.alive(new, NOW)
    for wrong in (new.token[:-1], new.token + "x", "", "x" * 1000, new.id):
        assert s.principal(wrong, NOW) is None, wrong
    assert not s.alive("no-such-session", NOW) and not s.alive("123456789", NOW)


@contract
def test_the_token_is_stored_hashed_only(s: Sessions) -> None:
    new = s.start(s.add())
    stored = stored_strings(s.store, s.sessions)
    assert not any(new.token in value for value in stored)
    assert any(sha256_hex(new.token) in value for value in stored)


@contract
def test_the_user_is_read_from_sql_at_every_check(s: Sessions) -> None:
    user_id = s.add()
    new = s.start(user_id)
    with s.sessions.begin() as session:
        user = session.get(UserRow, user_id)
        assert user is not None
        user.role, user.scope_code = Role.LEADER.value, "530100"
    principal = s.principal(new.token, NOW)
    assert principal is not None and (principal.role, principal.scope) == (Role.LEADER, "530100")


@contract
def test_last_seen_is_written_at_most_once_a_minute(s: Sessions) -> None:
    quiet, touched = s.start(s.add()), s.start(s.add("wang"))
    early, late = NOW + TOUCH_EVERY - timedelta(seconds=1), NOW + TOUCH_EVERY + timedelta(seconds=1)
    assert s.principal(quiet.token, early) is not None  # not written: still last seen at NOW
    assert s.principal(touched.token, late) is not None  # written
    after_idle = NOW + IDLE + timedelta(seconds=30)
    assert s.principal(quiet.token, after_idle) is None
    assert s.principal(touched.token, after_idle) is not None


@contract
def test_idle_expiry(s: Sessions) -> None:
    new = s.start(s.add())
    at = NOW
    for _ in range(4):  # active every 29 minutes: signed in well past the idle period
        at += IDLE - timedelta(minutes=1)
        assert s.principal(new.token, at) is not None
    assert s.alive(new, at + IDLE)
    gone = at + IDLE + timedelta(seconds=1)
    assert not s.alive(new, gone)
    assert s.principal(new.token, gone) is None
    assert s.principal(new.token, at + IDLE / 2) is not None  # idle is a state, not an end


@contract
def test_absolute_expiry(s: Sessions) -> None:
    new = s.start(s.add())
    at = NOW
    while at + IDLE / 2 < NOW + ABSOLUTE:  # active all along
        at += IDLE / 2
        assert s.principal(new.token, at) is not None
    assert s.alive(new, NOW + ABSOLUTE - timedelta(seconds=1))
    assert s.principal(new.token, NOW + ABSOLUTE) is None
    assert not s.alive(new, NOW + ABSOLUTE)


@contract
def test_end_and_find(s: Sessions) -> None:
    user_id = s.add()
    new = s.start(user_id)
    with s.sessions() as session:
        found = s.store.find(session=session, token=new.token)
        assert s.store.find(session=session, token=new.token[:-1]) is None
    assert found is not None
    assert (found.id, found.user_id, found.user_name, found.scope_code, found.csrf) == (
        new.id,
        user_id,
        "li",
        STREET,
        new.csrf,
    )
    assert s.end(new)
    assert not s.end(new)
    assert not s.end("no-such-session") and not s.end("123456789")
    assert s.principal(new.token, NOW) is None
    assert not s.alive(new, NOW)
    with s.sessions() as session:
        assert s.store.find(session=session, token=new.token) is None


@contract
def test_disabling_a_user_ends_all_their_sessions_at_once(s: Sessions) -> None:
    li = s.add()
    first, second = s.start(li), s.start(li, NOW + timedelta(minutes=1))
    other = s.start(s.add("wang"))
    at = NOW + timedelta(minutes=2)
    for new in (first, second):
        assert s.alive(new, at)  # a live stream's heartbeat
    with s.sessions.begin() as session:
        assert disable_user(session=session, store=s.store, name="li", now=at) == 2
    for new in (first, second):
        assert not s.alive(new, at)
        assert s.principal(new.token, at) is None
    assert s.alive(other, at) and s.principal(other.token, at) is not None
    with s.sessions.begin() as session:
        enable_user(session=session, name="li", now=at)
        assert disable_user(session=session, store=s.store, name="wang", now=at) == 1
        enable_user(session=session, name="wang", now=at)
    for new in (first, second, other):  # ended sessions stay ended
        assert s.principal(new.token, at) is None and not s.alive(new, at)


@contract
def test_a_new_password_ends_the_users_sessions(s: Sessions) -> None:
    li = s.add()
    new, other = s.start(li), s.start(s.add("wang"))
    with s.sessions.begin() as session:
        set_password(session=session, store=s.store, name="li", password="Another-pass-7", now=NOW)
    assert s.principal(new.token, NOW) is None and not s.alive(new, NOW)
    assert s.principal(other.token, NOW) is not None
    after = s.start(li)
    assert s.principal(after.token, NOW) is not None  # signing in again works


@contract
def test_a_disabled_users_session_signs_nobody_in_even_if_not_ended(s: Sessions) -> None:
    li = s.add()
    new = s.start(li)
    s.set_disabled(li, NOW)  # in SQL only, as another process or an operator would
    assert s.principal(new.token, NOW) is None
    assert not s.alive(new, NOW)
    s.set_disabled(li, None)
    assert s.principal(new.token, NOW) is not None and s.alive(new, NOW)


@contract
def test_identity_resolves_cookies_and_streams_see_the_end(s: Sessions) -> None:
    new = s.start(s.add())
    identity = Identity(
        s.sessions, lambda: NOW, store=s.store, idle=IDLE, anonymous_scope=lambda: None
    )
    resolved = identity.resolve({SESSION_COOKIE: new.token})
    assert resolved.principal is not None and resolved.principal.session_id == new.id
    assert identity.alive(resolved.principal)
    assert s.end(new)
    assert not identity.alive(resolved.principal)
    refused = identity.resolve({SESSION_COOKIE: new.token})
    assert (refused.principal, refused.refused) == (None, "session")


@contract
def test_login_and_logout_through_the_routes(s: Sessions) -> None:
    s.add()
    app = FastAPI()
    app.include_router(
        login_router(
            sessions=s.sessions, store=s.store, clock=lambda: NOW, idle=IDLE, absolute=ABSOLUTE
        )
    )
    with TestClient(app) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert csrf is not None
        form = urlencode({"name": "li", "password": PASSWORD, "csrf": csrf[1], "next": "/"})
        form_type = {"Content-Type": "application/x-www-form-urlencoded"}
        signed_in = client.post("/login", content=form, headers=form_type, follow_redirects=False)
        assert signed_in.status_code == 303
        token = client.cookies[SESSION_COOKIE]
        principal = s.principal(token, NOW)
        assert principal is not None and principal.csrf == client.cookies["_csrf_token"]
        assert client.get("/login", follow_redirects=False).status_code == 303  # signed in
        assert client.post("/logout", headers={"X-CSRFToken": "wrong"}).status_code == 403
        assert s.principal(token, NOW) is not None
        out = client.post(
            "/logout", headers={"X-CSRFToken": principal.csrf or ""}, follow_redirects=False
        )
        assert out.status_code == 303
    assert s.principal(token, NOW) is None
    assert principal.session_id is not None and not s.alive(principal.session_id, NOW)


# ---------------------------------------------------------------- Redis: keys and TTLs


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisSessions]:
    made = RedisSessions(redis.Redis.from_url(redis_url, decode_responses=True))
    yield made
    made.redis.close()


@pytest.mark.redis
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_redis_ttl_follows_idle_and_the_absolute_end(
    redis_store: RedisSessions, sessions: sessionmaker[Session]
) -> None:
    s = Sessions(redis_store, sessions)
    li = s.add()
    new = s.start(li)
    key = SESSION_PREFIX + new.id
    assert 1799 <= redis_store.redis.ttl(key) <= 1800  # the idle period
    members = USER_SESSIONS_PREFIX + str(li)
    assert redis_store.redis.smembers(members) == {new.id}
    assert ABSOLUTE.total_seconds() - 1 <= redis_store.redis.ttl(members)
    fields = redis_store.redis.hgetall(key)
    assert set(fields) == {"user", "csrf", "created", "last_seen", "expires", "client"}
    assert (fields["user"], fields["last_seen"]) == (str(li), NOW.isoformat())
    # A touch within the minute writes nothing; after it, last_seen and the TTL.
    redis_store.redis.expire(key, 1000)
    assert s.principal(new.token, NOW + timedelta(seconds=59)) is not None
    assert redis_store.redis.ttl(key) <= 1000
    touch = NOW + timedelta(minutes=5)
    assert s.principal(new.token, touch) is not None
    assert 1799 <= redis_store.redis.ttl(key) <= 1800
    assert redis_store.redis.hget(key, "last_seen") == touch.isoformat()
    # Near the absolute end, the TTL is what is left of it.
    short = s.start(li, absolute=timedelta(minutes=10))
    short_key = SESSION_PREFIX + short.id
    assert 599 <= redis_store.redis.ttl(short_key) <= 600
    assert s.principal(short.token, NOW + timedelta(minutes=2)) is not None
    assert 479 <= redis_store.redis.ttl(short_key) <= 480
    # The user's set lives as long as the longest session in it.
    assert ABSOLUTE.total_seconds() - 1 <= redis_store.redis.ttl(members)


@pytest.mark.redis
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_redis_end_all_deletes_every_key_of_the_user_at_once(
    redis_store: RedisSessions, sessions: sessionmaker[Session]
) -> None:
    s = Sessions(redis_store, sessions)
    li, wang = s.add(), s.add("wang")
    mine = [s.start(li) for _ in range(3)]
    theirs = s.start(wang)
    redis_store.redis.delete(SESSION_PREFIX + mine[0].id)  # expired: its TTL ran out
    with sessions() as session:
        assert redis_store.end_all(session=session, user_id=li, now=NOW) == 2
    left = set(redis_store.redis.scan_iter())
    assert left == {SESSION_PREFIX + theirs.id, USER_SESSIONS_PREFIX + str(wang)}
    with sessions() as session:
        assert redis_store.end_all(session=session, user_id=li, now=NOW) == 0


@pytest.mark.redis
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_redis_a_users_set_forgets_expired_sessions(
    redis_store: RedisSessions, sessions: sessionmaker[Session]
) -> None:
    s = Sessions(redis_store, sessions)
    li = s.add()
    old = s.start(li)
    redis_store.redis.delete(SESSION_PREFIX + old.id)  # its TTL ran out
    new = s.start(li)
    assert redis_store.redis.smembers(USER_SESSIONS_PREFIX + str(li)) == {new.id}
    assert s.end(new) and not redis_store.redis.exists(SESSION_PREFIX + new.id)
    assert redis_store.redis.smembers(USER_SESSIONS_PREFIX + str(li)) == set()


@pytest.mark.redis
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_redis_a_touch_never_brings_an_ended_session_back(
    redis_store: RedisSessions, sessions: sessionmaker[Session]
) -> None:
    s = Sessions(redis_store, sessions)
    new = s.start(s.add())
    key = SESSION_PREFIX + new.id
    assert s.end(new)
    assert redis_store._touch(keys=[key], args=[NOW.isoformat(), 60]) == 0
    assert not redis_store.redis.exists(key)
