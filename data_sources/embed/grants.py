"""Embed grants (嵌入授权): which portal may embed which panels of which area, and the tokens issued
under them.

A grant is made by an admin (`gridcc embed grant add`, the admin page): a name, an area, the panels,
the origins that may frame them and the longest token it may be issued. A token (tokens.py) names
its grant and may narrow its area and panels; every request of an embed checks the token's
signature and expiry, then that its grant is not revoked and still covers what the token claims,
so revoking a grant refuses all its tokens at their next request.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from data_sources.access.model import Principal, embed_principal
from data_sources.access.scope import account_area_problem
from data_sources.embed.origins import parse_origins
from data_sources.embed.panels import parse_panels
from data_sources.embed.tokens import (
    LANGS,
    TOKEN_MIN_S,
    EmbedClaims,
    Lang,
    TokenError,
    TokenLimits,
    mint,
    verify,
)
from data_sources.model import Level
from data_sources.schema import AppSecretRow, EmbedGrantRow, NodeRow

NAME_MAX = 64
#: The shortest longest-token a grant may have: a portal refreshing more often than every minute
#: is a portal misconfigured.
GRANT_MIN_TTL_S = 60
#: `app_secrets.name` of the signing key made when GRIDCC_EMBED_SECRET is unset.
SIGNING_SECRET = "embed_signing_key"


@dataclass(frozen=True, slots=True)
class GrantInfo:
    """A grant, for `gridcc embed grant list`, the admin page and the API."""

    id: int
    name: str
    scope_code: str
    panels: tuple[str, ...]
    origins: tuple[str, ...]
    max_ttl_s: int
    created_by: str
    created_at: datetime  # naive UTC
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class GrantRefused(ValueError):
    """A grant or token request refused: `field` is the input at fault (name, scope, panels,
    origins, max_ttl_s, grant, ttl_s, lang), `reason` why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class NoSuchGrant(LookupError):
    """No grant has the name a token request gives."""

    field = "grant"

    def __init__(self, name: str) -> None:
        self.reason = f"no embed grant is called {name[:NAME_MAX]!r}"
        super().__init__(self.reason)


def _text(field: str, value: str, max_chars: int) -> str:
    """`value` if it is 1 to `max_chars` characters of text a database stores (no control
    characters: PostgreSQL refuses NUL; no lone surrogates: UTF-8 has none); else GrantRefused."""
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        raise GrantRefused(field, f"{field} has 1 to {max_chars} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise GrantRefused(field, f"{field} has control characters or lone surrogates")
    return value


def _info(row: EmbedGrantRow) -> GrantInfo:
    return GrantInfo(
        row.id,
        row.name,
        row.scope_code,
        tuple(row.panels.split(",")),
        tuple(row.origins.split()),
        row.max_ttl_s,
        row.created_by,
        row.created_at,
        row.revoked_at,
    )


def _panels(value: Iterable[str] | str) -> tuple[str, ...]:
    """Panels from "kpis,map" or ["kpis", "map"], in `PANELS` order; GrantRefused("panels")."""
    text = value if isinstance(value, str) else ",".join(value)
    try:
        return parse_panels(text)
    except ValueError as exc:
        raise GrantRefused("panels", str(exc)) from None


# ---------------------------------------------------------------- areas


@dataclass(frozen=True, slots=True)
class _Node:
    id: int
    level: Level
    #: Ids of its ancestors from its district down, and its own at its level.
    lineage: tuple[int, ...]


def _nodes(session: Session, *codes: str) -> dict[str, _Node]:
    columns = (NodeRow.district_id, NodeRow.street_id, NodeRow.community_id, NodeRow.grid_id)
    query = select(NodeRow.code, NodeRow.id, NodeRow.level, *columns).where(
        NodeRow.code.in_(set(codes))
    )
    return {
        code: _Node(node_id, Level(level), tuple(i for i in ancestors if i is not None))
        for code, node_id, level, *ancestors in session.execute(query)
    }


def _area_problem(session: Session, grant_scope: str, scope: str) -> str | None:
    """Why area `scope` may not be shown under a grant of area `grant_scope`, or None: it must
    be a node in the grant's area (the node itself or one under it) and an account's area
    (`access.scope.ACCOUNT_LEVELS`: a community or larger)."""
    nodes = _nodes(session, grant_scope, scope)
    node = nodes.get(scope)
    if (problem := account_area_problem(scope, None if node is None else node.level)) is not None:
        return problem
    assert node is not None
    top = nodes.get(grant_scope)
    if top is None:
        return f"the grant's area {grant_scope!r} no longer exists"
    if not (node.id == top.id or top.level is Level.CITY or top.id in node.lineage):
        return f"{scope!r} is outside the grant's area ({grant_scope})"
    return None


# ---------------------------------------------------------------- grants


def add_grant(
    *,
    session: Session,
    name: str,
    scope_code: str,
    panels: Iterable[str] | str,
    origins: Iterable[str] | str,
    max_ttl_s: int,
    created_by: str,
    now: datetime,
    limits: TokenLimits,
) -> GrantInfo:
    """Make a grant (flushed, so it has its id).

    Args:
        panels: names of `PANELS` ("kpis,map" or a list); kept in `PANELS` order.
        origins: the origins that may frame its embeds (scheme://host[:port]); none: the
            deployment's (GRIDCC_EMBED_ALLOWED_ORIGINS).
        max_ttl_s: the longest token it may be issued, `GRANT_MIN_TTL_S` to `limits.max_s`.

    Raises:
        GrantRefused (a ValueError): the field at fault and why: a name empty, too long or taken
            (by a revoked grant too), no node with the code or one below a community, an unknown
            panel, something that is no origin, a lifetime out of range.
    """
    name = _text("name", name, NAME_MAX)
    scope_code = _text("scope", scope_code, 32)
    level = session.scalar(select(NodeRow.level).where(NodeRow.code == scope_code))
    if (problem := account_area_problem(scope_code, level)) is not None:
        raise GrantRefused("scope", problem)
    chosen = _panels(panels)
    try:
        allowed = parse_origins(origins)
    except ValueError as exc:
        raise GrantRefused("origins", str(exc)) from None
    if isinstance(max_ttl_s, bool) or not GRANT_MIN_TTL_S <= max_ttl_s <= limits.max_s:
        raise GrantRefused(
            "max_ttl_s",
            f"a grant's longest token lasts {GRANT_MIN_TTL_S} to {limits.max_s} seconds "
            f"(GRIDCC_EMBED_TOKEN_MAX_S), not {max_ttl_s}",
        )
    if session.scalar(select(EmbedGrantRow.id).where(EmbedGrantRow.name == name)) is not None:
        raise GrantRefused("name", f"an embed grant is called {name!r} already")
    row = EmbedGrantRow(
        name=name,
        scope_code=scope_code,
        panels=",".join(chosen),
        origins=" ".join(allowed),
        max_ttl_s=max_ttl_s,
        created_by=created_by[:NAME_MAX],
        created_at=now,
    )
    session.add(row)
    session.flush()
    return _info(row)


def list_grants(*, session: Session) -> list[GrantInfo]:
    """Every grant, revoked ones included, by name."""
    return [
        _info(row) for row in session.scalars(select(EmbedGrantRow).order_by(EmbedGrantRow.name))
    ]


def revoke_grant(*, session: Session, name: str, now: datetime) -> bool:
    """Revoke grant `name` (its tokens are refused at their next request); False when there is
    none or it was revoked already."""
    if _clean(name) is None:
        return False
    row = session.scalar(select(EmbedGrantRow).where(EmbedGrantRow.name == name))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    session.flush()
    return True


def _clean(value: str) -> str | None:
    try:
        return _text("name", value, NAME_MAX)
    except GrantRefused:
        return None


def grant_of(*, session: Session, grant_id: int) -> GrantInfo | None:
    """Grant `grant_id` (revoked or not); None when there is none."""
    row = session.get(EmbedGrantRow, grant_id)
    return None if row is None else _info(row)


def grant_named(*, session: Session, name: str) -> GrantInfo | None:
    """The grant called `name` (revoked or not); None when there is none."""
    if _clean(name) is None:
        return None
    row = session.scalar(select(EmbedGrantRow).where(EmbedGrantRow.name == name))
    return None if row is None else _info(row)


# ---------------------------------------------------------------- tokens


def unix_seconds(moment: datetime) -> float:
    """`moment` (naive UTC, the store's convention, or aware) as Unix seconds."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def issue_token(
    *,
    session: Session,
    secret: bytes,
    grant_name: str,
    ttl_s: int | None,
    now: datetime,
    limits: TokenLimits,
    scope: str | None = None,
    panels: Iterable[str] | str | None = None,
    lang: str = "zh",
) -> tuple[str, EmbedClaims]:
    """A token under grant `grant_name` and its claims.

    Args:
        ttl_s: its lifetime, `TOKEN_MIN_S` up to the grant's maximum (and the deployment's,
            which may have been lowered since); None: the deployment's default within the
            grant's maximum.
        scope: an area within the grant's (itself or a node under it); None: the grant's.
        panels: some of the grant's panels; None: all of them.
        now: naive UTC.

    Raises:
        NoSuchGrant (a LookupError): no grant has that name.
        GrantRefused (a ValueError): the field at fault and why: a revoked grant, a lifetime out
            of range, an area outside the grant's, panels it does not grant, a language other
            than zh and en.
    """
    grant = grant_named(session=session, name=grant_name)
    if grant is None:
        raise NoSuchGrant(grant_name if isinstance(grant_name, str) else repr(grant_name))
    if grant.revoked_at is not None:
        raise GrantRefused(
            "grant",
            f"embed grant {grant.name!r} was revoked at {grant.revoked_at:%Y-%m-%d %H:%M} UTC",
        )
    if lang not in LANGS:
        raise GrantRefused("lang", f"lang is zh or en, not {lang!r}")
    longest = min(grant.max_ttl_s, limits.max_s)
    if ttl_s is None:
        ttl_s = min(limits.default_s, longest)
    if isinstance(ttl_s, bool) or not TOKEN_MIN_S <= ttl_s <= longest:
        raise GrantRefused(
            "ttl_s",
            f"a token of grant {grant.name!r} lasts {TOKEN_MIN_S} to {longest} seconds, not {ttl_s}",
        )
    area = grant.scope_code if scope is None else _text("scope", scope, 32)
    if area != grant.scope_code and (problem := _area_problem(session, grant.scope_code, area)):
        raise GrantRefused("scope", problem)
    chosen = grant.panels if panels is None else _panels(panels)
    if extra := [p for p in chosen if p not in grant.panels]:
        raise GrantRefused(
            "panels",
            f"grant {grant.name!r} does not grant {', '.join(extra)} (it grants "
            f"{', '.join(grant.panels)})",
        )
    issued = int(unix_seconds(now))
    claims = EmbedClaims(grant.id, area, chosen, cast(Lang, lang), issued + ttl_s, issued)
    return mint(secret, claims), claims


def signing_secret(*, session: Session, configured: str | None) -> bytes:
    """The key embed tokens are signed with: `configured` (GRIDCC_EMBED_SECRET) when set, else
    the one kept in `app_secrets`, made now if there is none, within the caller's transaction.

    Processes starting together all get the same key: the first insert wins and the others'
    (`ON CONFLICT DO NOTHING`) read it back.
    """
    if configured:
        return configured.encode("utf-8")
    query = select(AppSecretRow.value).where(AppSecretRow.name == SIGNING_SECRET)
    stored = session.scalar(query)
    if stored is None:
        values = {
            "name": SIGNING_SECRET,
            "value": secrets.token_urlsafe(48),
            "created_at": datetime.now(UTC).replace(tzinfo=None),
        }
        dialect = session.get_bind().dialect.name
        if dialect in ("postgresql", "sqlite"):
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            session.execute(
                insert(AppSecretRow).values(values).on_conflict_do_nothing(index_elements=["name"])
            )
        else:  # no portable upsert: a savepoint lets a lost race read the winner's key
            try:
                with session.begin_nested():
                    session.add(AppSecretRow(**values))
            except IntegrityError:
                pass
        stored = session.scalar(query)
        assert stored is not None
    return stored.encode("utf-8")


def embed_principal_of(
    *,
    session: Session,
    secret: bytes,
    token: str,
    now: float,
    default_origins: tuple[str, ...],
    leeway_s: float = 30.0,
) -> Principal:
    """The embed `token` stands for, if it holds at `now` (Unix seconds).

    Its `expires_at` is the token's `exp` (within `leeway_s` after it a token still holds: see
    `tokens.verify`); its origins are the grant's, else `default_origins`.

    Raises:
        TokenError: "malformed", "tampered", "expired" (`tokens.verify`), or "revoked": its grant
            was revoked or is gone, or no longer covers the token's area or panels.
    """
    claims = verify(secret, token, now=now, leeway_s=leeway_s)
    row = session.get(EmbedGrantRow, claims.grant)
    if row is None or row.revoked_at is not None:
        raise TokenError("revoked", f"embed grant {claims.grant} is revoked or gone")
    if claims.scope != row.scope_code and (
        problem := _area_problem(session, row.scope_code, claims.scope)
    ):
        raise TokenError("revoked", problem)
    granted = row.panels.split(",")
    if extra := [p for p in claims.panels if p not in granted]:
        raise TokenError("revoked", f"grant {row.name!r} does not grant {', '.join(extra)}")
    return embed_principal(
        grant_id=row.id,
        grant_name=row.name,
        scope=claims.scope,
        panels=frozenset(claims.panels),
        expires_at=float(claims.exp),
        origins=tuple(row.origins.split()) or default_origins,
        lang=claims.lang,
    )
