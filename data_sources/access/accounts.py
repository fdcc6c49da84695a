"""User accounts and their signed-in sessions: pure rules (`login_rule`, `session_state`) and
thin writers around them.

Every function takes an open SQLAlchemy session keyword-only and never commits: the caller owns
the transaction (and adds its audit row to the same one). Times are naive UTC, passed in as `now`.

A session's cookie holds a random token (`secrets.token_urlsafe(32)`, 256 bits); the row keeps
only its SHA-256, so a copy of the database cannot be replayed as cookies. A session ends at
logout, when its user is disabled or gets a new password (`ended_at`), at `expires_at` whatever
the activity (absolute expiry) and after `idle` without a request (idle expiry).
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from data_sources.access.model import Principal, Role, user_principal
from data_sources.access.passwords import (
    check_password_policy,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from data_sources.schema import NodeRow, UserRow, UserSessionRow

#: Wrong passwords in a row that lock an account, and for how long. With the login page's
#: throttle of 10 attempts a minute per address, a guesser gets 5 tries per 15 minutes per name.
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
#: `last_seen_at` is written at most this often: idle expiry is minutes, a write per request
#: (each Dash callback) would be most of the database's traffic for nothing.
TOUCH_EVERY = timedelta(seconds=60)
NAME_MAX = 64
CLIENT_MAX = 64
#: A cookie token longer than this is not one of ours (ours are 43 characters).
TOKEN_MAX = 128

LoginReason = Literal["ok", "bad_credentials", "locked", "disabled"]
SessionState = Literal["ok", "ended", "expired", "idle", "disabled"]


class AccountError(ValueError):
    """An account change that cannot be made; the message says why (shown by the CLI)."""


@dataclass(frozen=True, slots=True)
class UserInfo:
    """A user account as the CLI and the admin page list it (never the password hash)."""

    id: int
    name: str
    role: Role
    scope_code: str
    created_at: datetime
    disabled_at: datetime | None
    locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """How a sign-in ended. `user_id` is set whenever the name exists (for the audit log), `ok`
    only when a session may be started; `locked_until` while the account is locked."""

    ok: bool
    user_id: int | None
    reason: LoginReason
    locked_until: datetime | None = None
    #: The account's area (for the audit log), when the name exists.
    scope_code: str | None = None


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just started: `token` goes into the cookie (and nowhere else), `csrf` into the
    `_csrf_token` cookie that Dash echoes as `X-CSRFToken`."""

    id: int
    token: str
    csrf: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session row found by its token, whatever its state (logout ends even an idle one)."""

    id: int
    user_id: int
    user_name: str
    scope_code: str
    csrf: str
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class Lockout:
    """The lockout counters of an account: failures in a row, and until when it is locked."""

    failed_logins: int
    locked_until: datetime | None


# ---------------------------------------------------------------- pure rules


def token_hash(token: str) -> str:
    """What a session row stores of its cookie token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_user_name(name: str) -> str | None:
    """Why `name` cannot be a user name, or None: 1–64 characters, no control characters and no
    spaces at either end (a name is typed on the login page and shown in the audit log)."""
    if not 1 <= len(name) <= NAME_MAX:
        return f"a user name has 1 to {NAME_MAX} characters"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return "a user name cannot contain control characters"
    if name != name.strip():
        return "a user name cannot start or end with a space"
    return None


def login_rule(
    counters: Lockout, *, disabled: bool, password_ok: bool, now: datetime
) -> tuple[LoginReason, Lockout]:
    """The outcome of a sign-in to an existing account and its lockout counters afterwards.

    - While locked, every attempt is "locked", the right password included, and the lock is not
      extended (a guesser cannot keep the owner out for longer than `LOCKOUT` from the last lock).
    - A lock that has run out starts the count afresh.
    - A wrong password counts; the `MAX_FAILURES`-th in a row locks (reason "locked").
    - A disabled account says so only to someone who knows its password.
    - The right password resets the count.
    """
    if counters.locked_until is not None and now < counters.locked_until:
        return "locked", counters
    failures = 0 if counters.locked_until is not None else counters.failed_logins
    if not password_ok:
        failures += 1
        if failures >= MAX_FAILURES:
            return "locked", Lockout(failures, now + LOCKOUT)
        return "bad_credentials", Lockout(failures, None)
    if disabled:
        return "disabled", Lockout(0, None)
    return "ok", Lockout(0, None)


def session_state(
    row: UserSessionRow, user: UserRow, now: datetime, idle: timedelta
) -> SessionState:
    """Whether a session still signs its user in, and if not why."""
    if row.ended_at is not None:
        return "ended"
    if now >= row.expires_at:
        return "expired"
    if now - row.last_seen_at > idle:
        return "idle"
    if user.disabled_at is not None:
        return "disabled"
    return "ok"


# ---------------------------------------------------------------- users


def _user(session: Session, name: str) -> UserRow:
    user = session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()
    if user is None:
        raise AccountError(f"no user named {name!r}")
    return user


def _check_password(password: str) -> None:
    reason = check_password_policy(password)
    if reason is not None:
        raise AccountError(reason)


def add_user(
    *, session: Session, name: str, role: Role, scope_code: str, password: str, now: datetime
) -> int:
    """Create an account and return its id.

    Raises:
        AccountError (a ValueError): a bad or taken name, an unknown scope, a weak password.
    """
    reason = check_user_name(name)
    if reason is not None:
        raise AccountError(reason)
    role = Role(role)
    node = session.scalars(select(NodeRow.id).where(NodeRow.code == scope_code)).one_or_none()
    if node is None:
        raise AccountError(f"no area has the code {scope_code!r}: a user's scope must be a node")
    _check_password(password)
    if session.scalars(select(UserRow.id).where(UserRow.name == name)).one_or_none() is not None:
        raise AccountError(f"a user named {name!r} exists already")
    user = UserRow(
        name=name,
        role=role.value,
        scope_code=scope_code,
        password_hash=hash_password(password),
        created_at=now,
        disabled_at=None,
        failed_logins=0,
        locked_until=None,
    )
    session.add(user)
    session.flush()
    return user.id


def _end_sessions(session: Session, user_id: int, now: datetime) -> int:
    result = session.execute(
        update(UserSessionRow)
        .where(UserSessionRow.user_id == user_id, UserSessionRow.ended_at.is_(None))
        .values(ended_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def set_password(*, session: Session, name: str, password: str, now: datetime) -> None:
    """Give a user a new password; ends the user's open sessions and clears a lockout."""
    _check_password(password)
    user = _user(session, name)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    _end_sessions(session, user.id, now)


def disable_user(*, session: Session, name: str, now: datetime) -> int:
    """Refuse the user's sign-ins from now on and end their open sessions at once; returns how
    many sessions were ended (their live streams close at their next heartbeat)."""
    user = _user(session, name)
    if user.disabled_at is None:
        user.disabled_at = now
    return _end_sessions(session, user.id, now)


def enable_user(*, session: Session, name: str, now: datetime) -> None:  # noqa: ARG001
    """Let a disabled user sign in again (sessions ended when disabling stay ended)."""
    _user(session, name).disabled_at = None


def list_users(*, session: Session) -> list[UserInfo]:
    rows = session.scalars(select(UserRow).order_by(UserRow.name))
    return [
        UserInfo(
            id=row.id,
            name=row.name,
            role=Role(row.role),
            scope_code=row.scope_code,
            created_at=row.created_at,
            disabled_at=row.disabled_at,
            locked_until=row.locked_until,
        )
        for row in rows
    ]


def authenticate(*, session: Session, name: str, password: str, now: datetime) -> LoginOutcome:
    """Check a sign-in and record its effect on the lockout counters (see `login_rule`).

    An unknown name costs one argon2 verify like a known one, and answers "bad_credentials".
    The user's row is locked (SELECT … FOR UPDATE on PostgreSQL) until the caller commits, so
    parallel guesses at one account are counted one after the other.
    """
    user = None
    if check_user_name(name) is None:
        query = select(UserRow).where(UserRow.name == name).with_for_update()
        user = session.scalars(query).one_or_none()
    if user is None:
        verify_password(dummy_hash(), password)
        return LoginOutcome(False, None, "bad_credentials")
    # Verified even while locked: the time taken must not tell a locked account from another.
    password_ok = verify_password(user.password_hash, password)
    reason, counters = login_rule(
        Lockout(user.failed_logins, user.locked_until),
        disabled=user.disabled_at is not None,
        password_ok=password_ok,
        now=now,
    )
    user.failed_logins = counters.failed_logins
    user.locked_until = counters.locked_until
    if reason == "ok" and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return LoginOutcome(reason == "ok", user.id, reason, counters.locked_until, user.scope_code)


# ---------------------------------------------------------------- sessions


def start_session(
    *, session: Session, user_id: int, now: datetime, client: str | None, absolute: timedelta
) -> NewSession:
    """Start a session for a user who just signed in (after `authenticate` said "ok")."""
    token = secrets.token_urlsafe(32)
    row = UserSessionRow(
        token_hash=token_hash(token),
        user_id=user_id,
        csrf=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + absolute,
        ended_at=None,
        client=client[:CLIENT_MAX] if client else None,
    )
    session.add(row)
    session.flush()
    return NewSession(row.id, token, row.csrf, row.expires_at)


def _by_token(session: Session, token: str) -> tuple[UserSessionRow, UserRow] | None:
    if not token or len(token) > TOKEN_MAX:
        return None
    query = (
        select(UserSessionRow, UserRow)
        .join(UserRow, UserRow.id == UserSessionRow.user_id)
        .where(UserSessionRow.token_hash == token_hash(token))
    )
    found = session.execute(query).one_or_none()
    return None if found is None else (found[0], found[1])


def principal_of_session(
    *, session: Session, token: str, now: datetime, idle: timedelta
) -> Principal | None:
    """Who the cookie `token` signs in, or None (no such session, ended, expired, idle, or its
    user disabled). Refreshes `last_seen_at` when it is more than `TOUCH_EVERY` old."""
    found = _by_token(session, token)
    if found is None:
        return None
    row, user = found
    if session_state(row, user, now, idle) != "ok":
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        row.last_seen_at = now
    return user_principal(
        user_id=user.id,
        name=user.name,
        role=Role(user.role),
        scope=user.scope_code,
        session_id=row.id,
        csrf=row.csrf,
    )


def session_alive(*, session: Session, session_id: int, now: datetime, idle: timedelta) -> bool:
    """Whether a session still signs its user in (live streams ask at every heartbeat); writes
    nothing: a stream left open is not activity."""
    query = (
        select(UserSessionRow, UserRow)
        .join(UserRow, UserRow.id == UserSessionRow.user_id)
        .where(UserSessionRow.id == session_id)
    )
    found = session.execute(query).one_or_none()
    return found is not None and session_state(found[0], found[1], now, idle) == "ok"


def find_session(*, session: Session, token: str) -> SessionInfo | None:
    """The session row of a cookie token, in whatever state (for logout)."""
    found = _by_token(session, token)
    if found is None:
        return None
    row, user = found
    return SessionInfo(row.id, user.id, user.name, user.scope_code, row.csrf, row.ended_at)


def end_session(*, session: Session, session_id: int, now: datetime) -> bool:
    """End a session (logout); False when it had ended already or does not exist."""
    result = session.execute(
        update(UserSessionRow)
        .where(UserSessionRow.id == session_id, UserSessionRow.ended_at.is_(None))
        .values(ended_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
