"""Signed-in sessions (会话): one `SessionStore` contract, kept in SQL (`sql.SqlSessions`, the
default) or in Redis (`redis_hashes.RedisSessions`, when configured); tests/test_session_store.py
runs it on both.

A session's cookie holds a random token (`secrets.token_urlsafe(32)`, 256 bits); a store keeps only
its SHA-256, so a copy of the database or of Redis cannot be replayed as cookies. A session ends at
logout (`end`), when its user is disabled or gets a new password (`end_all`), at its absolute end
whatever the activity, and after `idle` without a request (`session_state`, the one rule of both).
Its user (name, role, scope, disabled) is read from SQL, the system of record, at every check:
nothing about a user is kept longer than the request.

Every method takes the caller's SQL session keyword-only and never commits. `SqlSessions` writes in
the caller's transaction, so a sign-in and its audit line commit together (and SQLite never sees two
writers in one request). `RedisSessions` writes at once: an `end_all` whose transaction is then
rolled back has still ended the sessions (the safe side), a rolled-back `start` leaves a session
whose token nobody holds (it expires).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from sqlalchemy.orm import Session

from data_sources.access.model import Principal, Role, user_principal
from data_sources.schema import UserRow

#: `last_seen` (and a Redis session's TTL) is written at most this often: idle expiry is minutes,
#: a write per request (each Dash callback) would be most of the store's traffic for nothing.
TOUCH_EVERY = timedelta(seconds=60)
CLIENT_MAX = 64
#: A cookie token longer than this is not one of ours (ours are 43 characters).
TOKEN_MAX = 128

SessionState = Literal["ok", "ended", "expired", "idle", "disabled"]


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just started: `token` goes into the cookie (and nowhere else), `csrf` into the
    `_csrf_token` cookie that Dash echoes as `X-CSRFToken`; `id` is `Principal.session_id`."""

    id: str
    token: str
    csrf: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session found by its token and not ended, even if expired: logout ends an idle one too
    (in Redis, a session whose TTL ran out is gone)."""

    id: str
    user_id: int
    user_name: str
    scope_code: str
    csrf: str


# ---------------------------------------------------------------- pure rules


def session_state(
    *,
    ended: bool,
    last_seen_at: datetime,
    expires_at: datetime,
    disabled: bool,
    now: datetime,
    idle: timedelta,
) -> SessionState:
    """Whether a session still signs its user in, and if not why."""
    if ended:
        return "ended"
    if now >= expires_at:
        return "expired"
    if now - last_seen_at > idle:
        return "idle"
    if disabled:
        return "disabled"
    return "ok"


def ttl_seconds(*, now: datetime, expires_at: datetime, idle: timedelta) -> int:
    """A Redis session's time to live from `now` (a touch): until it would go idle, and never
    past its absolute end; rounded up, so the key outlives the rule that refuses it."""
    return max(1, math.ceil(min(idle, expires_at - now).total_seconds()))


def plausible_token(token: str) -> bool:
    """Whether a cookie value could be one of our tokens (else it is not looked up)."""
    return bool(token) and len(token) <= TOKEN_MAX


def session_principal(user: UserRow, session_id: str, csrf: str) -> Principal:
    """The principal of a live session, from its user's row as it is now."""
    return user_principal(
        user_id=user.id,
        name=user.name,
        role=Role(user.role),
        scope=user.scope_code,
        session_id=session_id,
        csrf=csrf,
    )


# ---------------------------------------------------------------- the contract


@runtime_checkable
class SessionStore(Protocol):
    """Where signed-in sessions live. Times are naive UTC, passed in as `now`."""

    def start(
        self,
        *,
        session: Session,
        user_id: int,
        now: datetime,
        client: str | None,
        idle: timedelta,
        absolute: timedelta,
    ) -> NewSession:
        """Start a session for a user who just signed in (after `authenticate` said "ok")."""
        ...

    def principal(
        self, *, session: Session, token: str, now: datetime, idle: timedelta
    ) -> Principal | None:
        """Who the cookie `token` signs in, or None (no such session, ended, expired, idle, or
        its user disabled). Refreshes `last_seen` when it is more than `TOUCH_EVERY` old."""
        ...

    def alive(self, *, session: Session, session_id: str, now: datetime, idle: timedelta) -> bool:
        """Whether a session still signs its user in (live streams ask at every heartbeat); writes
        nothing: a stream left open is not activity."""
        ...

    def find(self, *, session: Session, token: str) -> SessionInfo | None:
        """The session of a cookie token if it has not been ended (for logout)."""
        ...

    def end(self, *, session: Session, session_id: str, now: datetime) -> bool:
        """End a session (logout); False when it had ended already or does not exist."""
        ...

    def end_all(self, *, session: Session, user_id: int, now: datetime) -> int:
        """End every open session of a user at once (disabled, new password); how many."""
        ...

    def close(self) -> None:
        """Release the store's connections."""
        ...


def open_session_store(redis_url: str | None) -> SessionStore:
    """The configured store: in Redis when a Redis URL is set, else in SQL."""
    # Imported here: both implementations import this module's types.
    from data_sources.access.sessions.redis_hashes import RedisSessions
    from data_sources.access.sessions.sql import SqlSessions

    return RedisSessions(redis_url) if redis_url else SqlSessions()
