"""API keys (接口密钥), stored hashed: an ingest source's, or an admin's for the admin APIs.

A key is 32 random bytes (`"gck_" + secrets.token_urlsafe(32)`), or one an operator put in
`GRIDCC_API_KEYS`. Keys are stored as their SHA-256 (hex), not argon2: a password hash is slow to
make guessing a low-entropy secret expensive, and guessing 256 random bits is hopeless however
fast the hash; a fast hash lets every request be checked in microseconds. Looking a key up by its
hash in a dict leaks at most timing about the hash, which tells nothing about the key.

`KeyRing` is what the routes ask: it keeps the valid keys in memory and reloads them from SQL
when they are older than its ttl, so a key revoked by another process stops working within it.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from fastapi import HTTPException
from sqlalchemy import inspect, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from data_sources.schema import ApiKeyRow

#: Prefix of the keys gridcc makes: a key found in a log or a repository is recognisable.
KEY_PREFIX = "gck_"
#: `created_by` of the keys seeded from GRIDCC_API_KEYS.
SEEDED_BY = "GRIDCC_API_KEYS"
SOURCE_MAX = 64


class KeyRole(StrEnum):
    """What a key may do. An admin key may also do everything an ingest key may."""

    INGEST = "ingest"  # POST /api/v1/events, acknowledge alarms as its source
    ADMIN = "admin"  # the admin APIs (dead letters, later embed tokens)


#: Ends "this key may not …" (403).
_MAY_NOT = {KeyRole.INGEST: "send events", KeyRole.ADMIN: "use the admin APIs"}


def sha256_hex(secret: str) -> str:
    """How keys and device tokens are stored: their SHA-256, hex (64 characters)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A valid key, as a request sees it: which row, which source, which role."""

    id: int
    source: str
    role: KeyRole

    def may(self, role: KeyRole) -> bool:
        return self.role is role or self.role is KeyRole.ADMIN


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A stored key for `gridcc key list` and the admin page: everything but the key."""

    id: int
    source: str
    role: KeyRole
    created_at: datetime  # naive UTC
    created_by: str | None
    revoked_at: datetime | None


def add_key(
    *, session: Session, source: str, role: KeyRole | str, now: datetime, created_by: str | None
) -> str:
    """Store a new key for `source` (flushed, so it has its id); the key itself, shown only now.

    Raises:
        ValueError: an empty or over-long source name, or an unknown role.
    """
    role = KeyRole(role)
    if not source or len(source) > SOURCE_MAX:
        raise ValueError(f"a source name has 1 to {SOURCE_MAX} characters")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiKeyRow(
            source=source,
            role=role.value,
            key_hash=sha256_hex(key),
            created_at=now,
            created_by=created_by[:SOURCE_MAX] if created_by else None,
        )
    )
    session.flush()
    return key


def revoke_key(*, session: Session, key_id: int, now: datetime) -> bool:
    """Revoke key `key_id`; False when there is no such key or it was revoked already."""
    row = session.get(ApiKeyRow, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    session.flush()
    return True


def list_keys(*, session: Session) -> list[KeyInfo]:
    """Every stored key, revoked ones included, oldest first (never the key)."""
    return [_info(row) for row in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]


def key_info(*, session: Session, key: str) -> KeyInfo | None:
    """The stored key `key` is (revoked or not); None when it is no key of ours."""
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == sha256_hex(key)))
    return None if row is None else _info(row)


def _info(row: ApiKeyRow) -> KeyInfo:
    return KeyInfo(
        row.id, row.source, KeyRole(row.role), row.created_at, row.created_by, row.revoked_at
    )


def seed_keys(*, session: Session, api_keys: Mapping[str, str], now: datetime) -> int:
    """Store the ingest keys of GRIDCC_API_KEYS ({source: key}) not stored yet; how many.

    Idempotent (run at every start): a key whose hash is stored is left as it is, so a seeded key
    an admin revoked stays revoked, and a key moved to another source name keeps its first one.
    Empty keys are skipped.
    """
    wanted = {sha256_hex(key): source for source, key in api_keys.items() if key}
    if not wanted:
        return 0
    stored = set(session.scalars(select(ApiKeyRow.key_hash).where(ApiKeyRow.key_hash.in_(wanted))))
    new = [(digest, source) for digest, source in wanted.items() if digest not in stored]
    session.add_all(
        ApiKeyRow(
            source=source[:SOURCE_MAX],
            role=KeyRole.INGEST.value,
            key_hash=digest,
            created_at=now,
            created_by=SEEDED_BY,
        )
        for digest, source in new
    )
    session.flush()
    return len(new)


class KeyRing:
    """The valid keys of the database, cached for `ttl_s`; what the API routes authenticate with.

    Loading is one SELECT of the non-revoked rows' id, source, role and hash; it runs on the
    caller's thread (the event loop too: a few hundred keys take well under a millisecond to read)
    under a lock, so concurrent lookups reload once. A failed load raises (the app answers 503)
    rather than serving keys that may have been revoked meanwhile.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        ttl_s: float = 2.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.ttl_s = ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._loaded_at: float | None = None

    def _valid(self) -> dict[str, ApiKey]:
        with self._lock:
            now = self._monotonic()
            if self._loaded_at is None or now - self._loaded_at >= self.ttl_s:
                self._keys = self._load()
                self._loaded_at = now
            return self._keys

    def _load(self) -> dict[str, ApiKey]:
        query = select(ApiKeyRow.id, ApiKeyRow.source, ApiKeyRow.role, ApiKeyRow.key_hash).where(
            ApiKeyRow.revoked_at.is_(None)
        )
        with self.sessions() as session:
            try:
                rows = session.execute(query).all()
            except DBAPIError:
                # A database without the schema (yet) has no keys: ingest is off, as it said
                # before keys were stored. Anything else (the database down) is raised.
                session.rollback()
                if inspect(session.connection()).has_table(ApiKeyRow.__tablename__):
                    raise
                return {}
        return {
            digest: ApiKey(key_id, source, KeyRole(role)) for key_id, source, role, digest in rows
        }

    def invalidate(self) -> None:
        """Reload at the next lookup (after a change made here)."""
        with self._lock:
            self._loaded_at = None

    def lookup(self, key: str | None) -> ApiKey:
        """The valid key `key` is.

        Raises:
            HTTPException: 401 without a key, with one that is not (or no longer) valid, and
                when no key is configured at all.
        """
        valid = self._valid()
        if not valid:
            raise HTTPException(
                401,
                "ingest is disabled: no API keys are configured (GRIDCC_API_KEYS or gridcc key add)",
            )
        if not key:
            raise HTTPException(401, "missing X-API-Key header")
        found = valid.get(sha256_hex(key))
        if found is None:
            raise HTTPException(401, "invalid API key")
        return found

    def require(self, key: str | None, role: KeyRole) -> ApiKey:
        """The valid key `key` is, if it may act as `role`; 401 as `lookup`, 403 when it may not."""
        found = self.lookup(key)
        if not found.may(role):
            raise HTTPException(403, f"this key may not {_MAY_NOT[role]}")
        return found

    def add(self, source: str, role: KeyRole | str, created_by: str | None) -> str:
        """`add_key` in a transaction of its own; the new key works at once through this ring."""
        with self.sessions() as session, session.begin():
            key = add_key(
                session=session, source=source, role=role, now=self.clock(), created_by=created_by
            )
        self.invalidate()
        return key

    def revoke(self, key_id: int) -> bool:
        """`revoke_key` in a transaction of its own; refused at once through this ring (other
        processes' rings within their ttl)."""
        with self.sessions() as session, session.begin():
            revoked = revoke_key(session=session, key_id=key_id, now=self.clock())
        self.invalidate()
        return revoked

    def seed(self, api_keys: Mapping[str, str]) -> int:
        """`seed_keys` in a transaction of its own (at startup). Processes starting together
        may race to insert the same key: the loser's unique violation is retried once, and then
        finds the key stored."""
        for attempt in (1, 2):
            try:
                with self.sessions() as session, session.begin():
                    seeded = seed_keys(session=session, api_keys=api_keys, now=self.clock())
                break
            except IntegrityError:
                if attempt == 2:
                    raise
        self.invalidate()
        return seeded
