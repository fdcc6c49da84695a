"""Sessions in Redis (the `SessionStore` of a server with GRIDCC_REDIS_URL set): a hash per session
and a set of each user's sessions, so that ending all of them is one step."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import redis
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
    ttl_seconds,
)
from data_sources.schema import UserRow

#: How long a Redis command may take before Redis counts as unavailable (as services.py's).
REDIS_TIMEOUT_S = 5.0
SESSION_PREFIX = "gridcc:session:"
USER_SESSIONS_PREFIX = "gridcc:user-sessions:"

# Each change is one script, so that it is atomic against the others: a touch never brings back
# a session that `end_all` just deleted, and a session started while `end_all` runs is either
# deleted by it or started after it. The user's set lives as long as its longest-lived session.
_START = """
redis.call('HSET', KEYS[1], unpack(ARGV, 5))
redis.call('EXPIRE', KEYS[1], ARGV[1])
for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[4] .. member) == 0 then redis.call('SREM', KEYS[2], member) end
end
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
return 1
"""
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
_END = """
local user = redis.call('HGET', KEYS[1], 'user')
if not user then return 0 end
redis.call('SREM', ARGV[1] .. user, ARGV[2])
return redis.call('DEL', KEYS[1])
"""
_END_ALL = """
local ended = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  ended = ended + redis.call('DEL', ARGV[1] .. member)
end
redis.call('DEL', KEYS[1])
return ended
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class _Stored:
    """A session hash as Redis returns it."""

    user_id: int
    csrf: str
    last_seen_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, fields: dict[Any, Any]) -> _Stored | None:
        values = {_text(k): _text(v) for k, v in fields.items()}
        try:
            return cls(
                int(values["user"]),
                values["csrf"],
                datetime.fromisoformat(values["last_seen"]),
                datetime.fromisoformat(values["expires"]),
            )
        except (KeyError, ValueError):
            return None


class RedisSessions:
    """Sessions as Redis hashes `gridcc:session:<sha256 of the token>` (user, csrf, created,
    last_seen, expires, client), each with a TTL of `ttl_seconds`, plus the set
    `gridcc:user-sessions:<user id>` of a user's session ids so that `end_all` is one step.

    A session's id (`Principal.session_id`) is its token's SHA-256: not a credential, like the
    SQL row's `token_hash`. Uses the synchronous client: the guard resolves identities in a
    thread. Given a URL, the store owns its client and `close` closes it.
    """

    def __init__(self, client: str | redis.Redis) -> None:
        self._owned = isinstance(client, str)
        self.redis: redis.Redis = (
            redis.Redis.from_url(
                client,
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
                decode_responses=True,
            )
            if isinstance(client, str)
            else client
        )
        self._start = self.redis.register_script(_START)
        self._touch = self.redis.register_script(_TOUCH)
        self._end = self.redis.register_script(_END)
        self._end_all = self.redis.register_script(_END_ALL)

    def start(
        self,
        *,
        session: Session,  # noqa: ARG002 (the user row was just read by `authenticate`)
        user_id: int,
        now: datetime,
        client: str | None,
        idle: timedelta,
        absolute: timedelta,
    ) -> NewSession:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session_id, expires_at = sha256_hex(token), now + absolute
        fields = {
            "user": str(user_id),
            "csrf": csrf,
            "created": now.isoformat(),
            "last_seen": now.isoformat(),
            "expires": expires_at.isoformat(),
            "client": client[:CLIENT_MAX] if client else "",
        }
        self._start(
            keys=[SESSION_PREFIX + session_id, USER_SESSIONS_PREFIX + str(user_id)],
            args=[
                ttl_seconds(now=now, expires_at=expires_at, idle=idle),
                math.ceil(absolute.total_seconds()),
                session_id,
                SESSION_PREFIX,
                *(item for pair in fields.items() for item in pair),
            ],
        )
        return NewSession(session_id, token, csrf, expires_at)

    def principal(
        self, *, session: Session, token: str, now: datetime, idle: timedelta
    ) -> Principal | None:
        if not plausible_token(token):
            return None
        session_id = sha256_hex(token)
        stored = self._read(session_id)
        user = self._user(session, stored)
        if stored is None or user is None or self._state(stored, user, now, idle) != "ok":
            return None
        if now - stored.last_seen_at > TOUCH_EVERY:
            ttl = ttl_seconds(now=now, expires_at=stored.expires_at, idle=idle)
            if not self._touch(keys=[SESSION_PREFIX + session_id], args=[now.isoformat(), ttl]):
                return None  # ended between the read and the touch
        return session_principal(user, session_id, stored.csrf)

    def alive(self, *, session: Session, session_id: str, now: datetime, idle: timedelta) -> bool:
        stored = self._read(session_id)
        user = self._user(session, stored)
        return (
            stored is not None and user is not None and self._state(stored, user, now, idle) == "ok"
        )

    def find(self, *, session: Session, token: str) -> SessionInfo | None:
        if not plausible_token(token):
            return None
        session_id = sha256_hex(token)
        stored = self._read(session_id)
        user = self._user(session, stored)
        if stored is None or user is None:
            return None
        return SessionInfo(session_id, user.id, user.name, user.scope_code, stored.csrf)

    def end(self, *, session: Session, session_id: str, now: datetime) -> bool:  # noqa: ARG002
        ended = self._end(
            keys=[SESSION_PREFIX + session_id], args=[USER_SESSIONS_PREFIX, session_id]
        )
        return bool(ended)

    def end_all(self, *, session: Session, user_id: int, now: datetime) -> int:  # noqa: ARG002
        ended = self._end_all(keys=[USER_SESSIONS_PREFIX + str(user_id)], args=[SESSION_PREFIX])
        return int(ended)

    def close(self) -> None:
        if self._owned:
            self.redis.close()

    def _read(self, session_id: str) -> _Stored | None:
        # The synchronous client's replies are typed as "maybe awaitable" (one class serves both).
        fields = cast("dict[Any, Any]", self.redis.hgetall(SESSION_PREFIX + session_id))
        return _Stored.of(fields)

    @staticmethod
    def _user(session: Session, stored: _Stored | None) -> UserRow | None:
        """The session's user, read afresh from the system of record."""
        return None if stored is None else session.get(UserRow, stored.user_id)

    @staticmethod
    def _state(stored: _Stored, user: UserRow, now: datetime, idle: timedelta) -> SessionState:
        return session_state(
            ended=False,  # an ended session is deleted
            last_seen_at=stored.last_seen_at,
            expires_at=stored.expires_at,
            disabled=user.disabled_at is not None,
            now=now,
            idle=idle,
        )
