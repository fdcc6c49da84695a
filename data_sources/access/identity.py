"""Who is asking: a request's cookies → a `Principal` (a signed-in user's session, an enrolled
display, or an anonymous visitor where the deployment allows one), and whether it still holds
(a live stream asks at every heartbeat). Blocking SQL (and Redis): call it in a thread."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from data_sources.access import displays
from data_sources.access.model import Principal, anonymous_principal
from data_sources.access.sessions import SessionStore

SESSION_COOKIE = "gridcc_session"
DISPLAY_COOKIE = "gridcc_display"
#: The name Dash's renderer reads and echoes as the `X-CSRFToken` header on every callback.
CSRF_COOKIE = "_csrf_token"
CSRF_HEADER = "x-csrftoken"


@dataclass(frozen=True, slots=True)
class Resolved:
    principal: Principal | None
    #: A credential the request carried and that no longer holds: "session" (signed out,
    #: expired, user disabled) or "display" (revoked).
    refused: Literal["session", "display"] | None = None


class Identity:
    """Turns a request's cookies into a principal (blocking SQL and Redis: call it in a thread).

    `sessions` is the system of record (users, displays); `store` holds the signed-in sessions.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        *,
        store: SessionStore,
        idle: timedelta,
        anonymous_scope: Callable[[], str | None],
    ) -> None:
        self.sessions = sessions
        self.store = store
        self.clock = clock
        self.idle = idle
        self.anonymous_scope = anonymous_scope

    def resolve(self, cookies: dict[str, str]) -> Resolved:
        refused: Literal["session", "display"] | None = None
        session_token, display_token = cookies.get(SESSION_COOKIE), cookies.get(DISPLAY_COOKIE)
        if session_token or display_token:
            with self.sessions.begin() as session:
                if session_token:
                    principal = self.store.principal(
                        session=session, token=session_token, now=self.clock(), idle=self.idle
                    )
                    if principal is not None:
                        return Resolved(principal)
                    refused = "session"
                if display_token:
                    principal = displays.principal_of_display(session=session, token=display_token)
                    if principal is not None:
                        return Resolved(principal)
                    refused = "display"
        anonymous = self.anonymous_scope()
        return Resolved(anonymous_principal(anonymous) if anonymous else None, refused)

    def alive(self, principal: Principal) -> bool:
        """Whether `principal`'s credential still holds (a stream asks at every heartbeat)."""
        if principal.kind == "user" and principal.session_id is not None:
            with self.sessions() as session:
                return self.store.alive(
                    session=session,
                    session_id=principal.session_id,
                    now=self.clock(),
                    idle=self.idle,
                )
        if principal.kind == "display" and principal.id is not None:
            with self.sessions() as session:
                return displays.display_alive(session=session, display_id=principal.id)
        if principal.kind == "anonymous":
            return self.anonymous_scope() == principal.scope
        return False  # nothing else holds a page (an API key's principal never streams)
