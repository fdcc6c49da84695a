"""Displays (大屏终端): wall PCs enrolled once with a device token, bound to a scope.

A wall PC cannot sign in every morning: `gridcc display add` prints a URL with a random token once,
the browser keeps it in a cookie, and every request of that browser is the display's. Tokens are
stored as their SHA-256 (32 random bytes: see keys.py for why no slow hash), and revoking a display
refuses its token at the next request and ends its live stream within one heartbeat.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources.access.keys import sha256_hex
from data_sources.access.model import Principal, display_principal
from data_sources.access.scope import account_area_problem
from data_sources.schema import DisplayRow, NodeRow

NAME_MAX = 64


@dataclass(frozen=True, slots=True)
class DisplayInfo:
    """An enrolled display for `gridcc display list` and the admin page (never its token)."""

    id: int
    name: str
    scope_code: str
    operator: bool
    created_at: datetime  # naive UTC
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def add_display(
    *, session: Session, name: str, scope_code: str, operator: bool, now: datetime
) -> str:
    """Enrol a display (flushed); its device token, shown only now.

    Args:
        operator: whether the display may act (acknowledge alarms…) or only read.

    Raises:
        ValueError: the name is empty, too long or taken (by a revoked display too), or no node
            has the code `scope_code`, or it is below a community (`ACCOUNT_LEVELS`).
    """
    if not name or len(name) > NAME_MAX:
        raise ValueError(f"a display name has 1 to {NAME_MAX} characters")
    level = session.scalar(select(NodeRow.level).where(NodeRow.code == scope_code))
    if (problem := account_area_problem(scope_code, level)) is not None:
        raise ValueError(problem)
    if session.scalar(select(DisplayRow.id).where(DisplayRow.name == name)) is not None:
        raise ValueError(f"a display is called {name!r} already")
    token = secrets.token_urlsafe(32)
    session.add(
        DisplayRow(
            name=name,
            scope_code=scope_code,
            operator=operator,
            token_hash=sha256_hex(token),
            created_at=now,
        )
    )
    session.flush()
    return token


def revoke_display(*, session: Session, name: str, now: datetime) -> bool:
    """Revoke display `name`; False when there is none or it was revoked already."""
    row = session.scalar(select(DisplayRow).where(DisplayRow.name == name))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    session.flush()
    return True


def list_displays(*, session: Session) -> list[DisplayInfo]:
    """Every enrolled display, revoked ones included, by name."""
    rows = session.scalars(select(DisplayRow).order_by(DisplayRow.name))
    return [
        DisplayInfo(row.id, row.name, row.scope_code, row.operator, row.created_at, row.revoked_at)
        for row in rows
    ]


def principal_of_display(*, session: Session, token: str | None) -> Principal | None:
    """The display whose device token `token` is; None when unknown or revoked."""
    if not token:
        return None
    row = session.scalar(
        select(DisplayRow).where(
            DisplayRow.token_hash == sha256_hex(token), DisplayRow.revoked_at.is_(None)
        )
    )
    if row is None:
        return None
    return display_principal(
        display_id=row.id, name=row.name, scope=row.scope_code, operator=row.operator
    )


def display_alive(*, session: Session, display_id: int) -> bool:
    """Whether display `display_id` is still enrolled (a live stream asks at each heartbeat)."""
    revoked_at = session.execute(
        select(DisplayRow.revoked_at).where(DisplayRow.id == display_id)
    ).first()
    return revoked_at is not None and revoked_at[0] is None
