"""An embed's credential: its signed token → a `Principal` (the guard asks on every request of
the embed page, its callbacks and its stream), and whether it still holds (the stream asks at
every heartbeat and at the token's expiry). Blocking SQL: call it in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from data_sources.access.model import EmbedRefused, Principal
from data_sources.embed.grants import embed_principal_of, grant_of, signing_secret
from data_sources.embed.tokens import TokenError


class EmbedIdentity:
    """Tokens of `GRIDCC_EMBED_SECRET` (or of the secret the database keeps) → principals."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        configured_secret: str | None,
        default_origins: tuple[str, ...],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sessions = sessions
        self.configured_secret = configured_secret
        self.default_origins = default_origins
        self.clock = clock
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def secret(self) -> bytes:
        with self._lock:
            if self._secret is None:
                with self.sessions.begin() as session:
                    self._secret = signing_secret(
                        session=session, configured=self.configured_secret
                    )
            return self._secret

    def resolve(self, token: str) -> Principal:
        """The embed `token` stands for. Raises EmbedRefused (its `reason`: expired, revoked,
        tampered, malformed)."""
        secret = self.secret()
        try:
            with self.sessions() as session:
                return embed_principal_of(
                    session=session,
                    secret=secret,
                    token=token,
                    now=self.clock(),
                    default_origins=self.default_origins,
                )
        except TokenError as exc:
            raise EmbedRefused(exc.reason) from None

    def alive(self, principal: Principal) -> str | None:
        """None while `principal` (an embed's) holds; else why not: "expired" or "revoked"."""
        if principal.expires_at is None or self.clock() >= principal.expires_at:
            return "expired"
        if principal.id is None:
            return "revoked"
        with self.sessions() as session:
            grant = grant_of(session=session, grant_id=principal.id)
        return "revoked" if grant is None or grant.revoked_at is not None else None
