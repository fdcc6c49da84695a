"""User accounts: a pure rule (`login_rule`) and thin writers around it.

Every function takes an open SQLAlchemy session keyword-only and never commits: the caller owns
the transaction (and adds its audit row to the same one). Times are naive UTC, passed in as `now`.
Signed-in sessions live in a `SessionStore` (access/sessions.py): disabling a user or giving them
a new password ends theirs there, in whichever store the server uses.
"""

from __future__ import annotations

import unicodedata
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from data_sources.access.model import Role
from data_sources.access.passwords import (
    check_password_policy,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from data_sources.access.scope import account_area_problem
from data_sources.access.sessions import SessionStore
from data_sources.model import Level
from data_sources.schema import NodeRow, UserRow

#: Wrong passwords in a row that lock an account, and for how long. With the login page's
#: throttle of 10 attempts a minute per address, a guesser gets 5 tries per 15 minutes per name.
#: Unknown names whose failures are remembered (the oldest are forgotten first).
UNKNOWN_NAMES_KEPT = 10_000
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
NAME_MAX = 64

LoginReason = Literal["ok", "bad_credentials", "locked", "disabled"]


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
class Lockout:
    """The lockout counters of an account: failures in a row, and until when it is locked."""

    failed_logins: int
    locked_until: datetime | None


# ---------------------------------------------------------------- pure rules


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
        AccountError (a ValueError): a bad or taken name, an unknown scope or one below a
            community (`scope.ACCOUNT_LEVELS`), an admin not of the city, a weak password.
    """
    reason = check_user_name(name)
    if reason is not None:
        raise AccountError(reason)
    role = Role(role)
    level = session.scalars(select(NodeRow.level).where(NodeRow.code == scope_code)).one_or_none()
    if (problem := account_area_problem(scope_code, level)) is not None:
        raise AccountError(problem)
    if role is Role.ADMIN and level != Level.CITY.value:
        # An admin manages every account, display and key: an area admin could otherwise make
        # themselves a city admin.
        raise AccountError("an administrator's area is the whole city")
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


def set_password(
    *, session: Session, store: SessionStore, name: str, password: str, now: datetime
) -> None:
    """Give a user a new password; ends the user's open sessions in `store` and clears a lockout."""
    _check_password(password)
    user = _user(session, name)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    _end_sessions(session, store, user, now)


def disable_user(*, session: Session, store: SessionStore, name: str, now: datetime) -> int:
    """Refuse the user's sign-ins from now on and end their open sessions in `store` at once;
    returns how many sessions were ended (their live streams close at their next heartbeat)."""
    user = _user(session, name)
    if user.disabled_at is None:
        user.disabled_at = now
    return _end_sessions(session, store, user, now)


def _end_sessions(session: Session, store: SessionStore, user: UserRow, now: datetime) -> int:
    # The user's row is written (and on PostgreSQL locked) first: a sign-in that holds it
    # (`authenticate` locks it) has started its session by the time the sessions are ended.
    session.flush()
    return store.end_all(session=session, user_id=user.id, now=now)


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


def authenticate(
    *,
    session: Session,
    name: str,
    password: str,
    now: datetime,
    unknown: MutableMapping[str, Lockout] | None = None,
) -> LoginOutcome:
    """Check a sign-in and record its effect on the lockout counters (see `login_rule`).

    An unknown name costs one argon2 verify like a known one and is counted in `unknown` (the
    caller's memory) by the same rule, so it too answers "locked" after `MAX_FAILURES`: the
    answers do not tell which names exist. The password is verified first (~70 ms), then the
    user's row is taken for writing and its counters read afresh until the caller commits: a
    no-op UPDATE takes SQLite's write lock (which ignores FOR UPDATE; 6 parallel guesses had
    counted as 1) and PostgreSQL's row lock, so parallel guesses are counted one after another.
    """
    user = None
    if check_user_name(name) is None:
        user = session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()
    if user is None:
        verify_password(dummy_hash(), password)
        if unknown is None:
            return LoginOutcome(False, None, "bad_credentials")
        reason, counters = login_rule(
            unknown.get(name, Lockout(0, None)), disabled=False, password_ok=False, now=now
        )
        unknown[name] = counters
        while len(unknown) > UNKNOWN_NAMES_KEPT:
            del unknown[next(iter(unknown))]
        return LoginOutcome(False, None, reason, counters.locked_until)
    # Verified even while locked: the time taken must not tell a locked account from another.
    password_ok = verify_password(user.password_hash, password)
    session.execute(
        update(UserRow)
        .where(UserRow.id == user.id)
        .values(failed_logins=UserRow.failed_logins)
        .execution_options(synchronize_session=False)
    )
    session.refresh(user)
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
