"""Sessions as rows of `user_sessions` in the system of record (the default `SessionStore`)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from data_sources.access.keys import sha256_hex
from data_sources.access.model import Principal
from data_sources.access.sessions import (
    CLIENT_MAX,
    TOUCH_EVERY,
    NewSession,
    SessionInfo,
    SessionState,
    plausible_token,
    session_principal,
    session_state,
)
from data_sources.schema import UserRow, UserSessionRow


class SqlSessions:
    """Sessions as rows of `user_sessions` in the system of record, in the caller's transaction."""

    def start(
        self,
        *,
        session: Session,
        user_id: int,
        now: datetime,
        client: str | None,
        idle: timedelta,  # noqa: ARG002 (a row's idle expiry is read from last_seen_at)
        absolute: timedelta,
    ) -> NewSession:
        token = secrets.token_urlsafe(32)
        row = UserSessionRow(
            token_hash=sha256_hex(token),
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
        return NewSession(str(row.id), token, row.csrf, row.expires_at)

    def principal(
        self, *, session: Session, token: str, now: datetime, idle: timedelta
    ) -> Principal | None:
        found = self._by_token(session, token)
        if found is None:
            return None
        row, user = found
        if self._state(row, user, now, idle) != "ok":
            return None
        if now - row.last_seen_at > TOUCH_EVERY:
            row.last_seen_at = now
        return session_principal(user, str(row.id), row.csrf)

    def alive(self, *, session: Session, session_id: str, now: datetime, idle: timedelta) -> bool:
        if not session_id.isdecimal():
            return False
        query = (
            select(UserSessionRow, UserRow)
            .join(UserRow, UserRow.id == UserSessionRow.user_id)
            .where(UserSessionRow.id == int(session_id))
        )
        found = session.execute(query).one_or_none()
        return found is not None and self._state(found[0], found[1], now, idle) == "ok"

    def find(self, *, session: Session, token: str) -> SessionInfo | None:
        found = self._by_token(session, token)
        if found is None or found[0].ended_at is not None:
            return None
        row, user = found
        return SessionInfo(str(row.id), user.id, user.name, user.scope_code, row.csrf)

    def end(self, *, session: Session, session_id: str, now: datetime) -> bool:
        if not session_id.isdecimal():
            return False
        result = session.execute(
            update(UserSessionRow)
            .where(UserSessionRow.id == int(session_id), UserSessionRow.ended_at.is_(None))
            .values(ended_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def end_all(self, *, session: Session, user_id: int, now: datetime) -> int:
        result = session.execute(
            update(UserSessionRow)
            .where(UserSessionRow.user_id == user_id, UserSessionRow.ended_at.is_(None))
            .values(ended_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def close(self) -> None:
        pass  # the caller's sessions are the caller's

    @staticmethod
    def _state(row: UserSessionRow, user: UserRow, now: datetime, idle: timedelta) -> SessionState:
        return session_state(
            ended=row.ended_at is not None,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            disabled=user.disabled_at is not None,
            now=now,
            idle=idle,
        )

    @staticmethod
    def _by_token(session: Session, token: str) -> tuple[UserSessionRow, UserRow] | None:
        if not plausible_token(token):
            return None
        query = (
            select(UserSessionRow, UserRow)
            .join(UserRow, UserRow.id == UserSessionRow.user_id)
            .where(UserSessionRow.token_hash == sha256_hex(token))
        )
        found = session.execute(query).one_or_none()
        return None if found is None else (found[0], found[1])
