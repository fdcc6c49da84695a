"""The vocabulary of access: roles, permissions, who is asking (`Principal`), what area (`Scope`).

Pure values with no I/O: every guard (pages, Dash callbacks, live streams, REST APIs, exports)
takes a `Principal` and a `Scope` and asks `principal.may(permission)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from data_sources.model import Level


class Role(StrEnum):
    """What a user account may do (a display or an anonymous visitor has no role of its own)."""

    LEADER = "leader"  # 领导: reads
    OPERATOR = "operator"  # 值班员: acknowledges alarms, turns them into cases, moves cases on
    ADMIN = "admin"  # 管理员: users, ingest keys, displays, the audit log


class Permission(StrEnum):
    READ = "read"
    ACT = "act"
    ADMIN = "admin"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.LEADER: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.ACT}),
    Role.ADMIN: frozenset({Permission.READ, Permission.ACT, Permission.ADMIN}),
}

PrincipalKind = Literal["user", "display", "anonymous", "key", "embed"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from, resolved once per request.

    `scope` is the code of the node the principal may see (itself and everything under it);
    `name` is what an action records as its actor and the audit log as who.
    """

    kind: PrincipalKind
    name: str
    scope: str
    permissions: frozenset[Permission]
    #: The row behind it: users.id, displays.id or api_keys.id (None for anonymous).
    id: int | None = None
    #: The session's id in its store (users signed in through the login page), for logout and
    #: expiry: a row id in SQL, the token's SHA-256 in Redis (see access/sessions.py).
    session_id: str | None = None
    #: The session's CSRF secret: state-changing requests must echo it (X-CSRFToken).
    csrf: str | None = None
    role: Role | None = None
    #: An embed token's (kind "embed"): when it expires (Unix seconds; the stream ends then) and
    #: the panels it may show (data_sources/embed/panels.py `PANELS`). `id` is its grant's.
    expires_at: float | None = None
    panels: frozenset[str] | None = None
    #: The origins that may frame it and talk to it (the grant's, else the deployment's).
    origins: tuple[str, ...] = ()
    #: The language its pages start in when their URL names none (an embed token's).
    lang: str | None = None

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def audit_kind(self) -> str:
        return self.kind


def user_principal(
    *,
    user_id: int,
    name: str,
    role: Role,
    scope: str,
    session_id: str | None = None,
    csrf: str | None = None,
) -> Principal:
    return Principal("user", name, scope, ROLE_PERMISSIONS[role], user_id, session_id, csrf, role)


def display_principal(*, display_id: int, name: str, scope: str, operator: bool) -> Principal:
    permissions = ROLE_PERMISSIONS[Role.OPERATOR if operator else Role.LEADER]
    return Principal("display", name, scope, permissions, display_id)


def embed_principal(
    *,
    grant_id: int,
    grant_name: str,
    scope: str,
    panels: frozenset[str],
    expires_at: float,
    origins: tuple[str, ...],
    lang: str | None = None,
) -> Principal:
    """A portal's embed, by its signed token: reads its scope's granted panels until it expires."""
    return Principal(
        "embed",
        f"embed:{grant_name}",
        scope,
        frozenset({Permission.READ}),
        grant_id,
        expires_at=expires_at,
        panels=panels,
        origins=origins,
        lang=lang,
    )


def anonymous_principal(scope: str) -> Principal:
    """A visitor who has not signed in, where the deployment lets anonymous visitors read."""
    return Principal("anonymous", "anonymous", scope, ROLE_PERMISSIONS[Role.LEADER])


class AccessError(Exception):
    """A request that must be refused: 401 (who are you?), 403 (not yours), 404 (no such area)."""

    def __init__(self, status_code: Literal[401, 403, 404], reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


class Unauthenticated(AccessError):
    def __init__(self, reason: str = "sign in first") -> None:
        super().__init__(401, reason)


class Forbidden(AccessError):
    def __init__(self, reason: str = "not allowed") -> None:
        super().__init__(403, reason)


class EmbedRefused(AccessError):
    """An embed token that does not hold: `reason` is "expired", "revoked", "tampered" or
    "malformed" (the embed shows a neutral "link expired" panel, never a login page)."""

    def __init__(self, reason: str) -> None:
        super().__init__(401, reason)


class NoSuchArea(AccessError):
    def __init__(self, code: str) -> None:
        super().__init__(404, "no such area")
        self.code = code


@dataclass(frozen=True, slots=True)
class Scope:
    """An area of the hierarchy a request is about, checked against the caller: the node, its
    level and its lineage (node ids from the district down to itself; empty for the city)."""

    id: int
    code: str
    level: Level
    path: tuple[int, ...]

    def contains(self, path: tuple[int, ...]) -> bool:
        """Whether a fact or node with ancestor ids `path` lies in this scope."""
        return self.level is Level.CITY or self.id in path
