"""The embed API for portal backends: `POST /api/v1/embed-tokens` mints a token under a grant,
`GET /api/v1/embed-grants` lists the grants; both for admin API keys only.

A portal's backend keeps an admin key, mints a token for each page it serves and hands it to its
iframe (or answers the iframe's `gridcc:token-expiring` message with a fresh one). Every token
minted is audited before it is returned (never the token itself); a refused request is audited
with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from data_sources.access.audit import Auditor
from data_sources.access.keys import KeyRing, KeyRole
from data_sources.access.model import Principal
from data_sources.api_schema import error_responses, json_body
from data_sources.body import BadInput, request_json
from data_sources.embed.grants import (
    NAME_MAX,
    GrantInfo,
    GrantRefused,
    NoSuchGrant,
    issue_token,
    list_grants,
)
from data_sources.embed.panels import PANELS
from data_sources.embed.tokens import EmbedClaims, TokenLimits

#: A token request is five small fields: anything near this is not one.
MAX_BODY_BYTES = 4_096
#: Where a token opens its embed (the page reads `?token=`).
EMBED_PATH = "/embed"


class TokenRequest(BaseModel):
    """What a portal's backend asks for: a token under `grant`, optionally narrowed."""

    # Strict: "600" is no number of seconds, 1 no language.
    model_config = ConfigDict(strict=True, extra="forbid")

    grant: str = Field(min_length=1, max_length=NAME_MAX, description="The grant's name.")
    ttl_s: int | None = Field(
        None,
        description="Lifetime in seconds, up to the grant's maximum; default: "
        "GRIDCC_EMBED_TOKEN_DEFAULT_S (within the grant's maximum).",
    )
    scope: str | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="An area code within the grant's (default: the grant's).",
    )
    lang: Literal["zh", "en"] = "zh"
    panels: list[str] | None = Field(
        None,
        min_length=1,
        max_length=len(PANELS),
        description=f"Some of the grant's panels (default: all of them); of {', '.join(PANELS)}.",
    )


def _problem(field: str, reason: str) -> dict[str, Any]:
    """One problem with a request, in the shape of the other APIs' (`api_schema.ERROR_ITEM`), as
    text that encodes (a lone surrogate in a client's key name becomes `\\ud800`, not a 500)."""
    return {"index": None, "field": _printable(field), "reason": _printable(reason)}


def _printable(value: str) -> str:
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat() + "Z"


def grant_json(grant: GrantInfo) -> dict[str, Any]:
    """A grant as the API shows it (times ISO 8601 UTC)."""
    return {
        "id": grant.id,
        "name": grant.name,
        "scope": grant.scope_code,
        "panels": list(grant.panels),
        "origins": list(grant.origins),
        "max_ttl_s": grant.max_ttl_s,
        "created_by": grant.created_by,
        "created_at": _utc(grant.created_at),
        "revoked_at": _utc(grant.revoked_at),
    }


def token_json(token: str, claims: EmbedClaims) -> dict[str, Any]:
    """A minted token as the API answers it: the token, its expiry and the embed's URL."""
    expires = datetime.fromtimestamp(claims.exp, UTC).replace(tzinfo=None)
    return {
        "token": token,
        "exp": claims.exp,
        "expires_at": _utc(expires),
        "url": f"{EMBED_PATH}?token={token}",  # base64url and ".": nothing to quote
        "scope": claims.scope,
        "panels": list(claims.panels),
        "lang": claims.lang,
    }


def embed_router(
    *,
    sessions: sessionmaker[Session],
    keys: KeyRing,
    secret: Callable[[], bytes],
    clock: Callable[[], datetime],
    limits: TokenLimits,
    audit: Auditor | None = None,
) -> APIRouter:
    """`POST /api/v1/embed-tokens` and `GET /api/v1/embed-grants`, for admin keys only.

    Args:
        secret: the signing key (blocking: it may be read from, or made in, the database on
            first use; called in a thread).
        clock: now as naive UTC.
        limits: the deployment's token lifetimes (GRIDCC_EMBED_TOKEN_DEFAULT_S / _MAX_S).
    """
    router = APIRouter(prefix="/api/v1", tags=["embeds"])

    @router.get("/embed-grants", responses=error_responses(401, 403, 503))
    async def get_grants(x_api_key: str | None = Header(default=None)) -> dict[str, Any]:
        """Every embed grant, revoked ones included, by name."""
        keys.require(x_api_key, KeyRole.ADMIN)

        def read() -> list[GrantInfo]:
            with sessions() as session:
                return list_grants(session=session)

        return {"grants": [grant_json(grant) for grant in await asyncio.to_thread(read)]}

    # The body is read by the handler, after the key is checked and within a size limit (as
    # dead_letters.py: FastAPI would parse a declared body before any check).
    @router.post(
        "/embed-tokens",
        status_code=201,
        openapi_extra=json_body(TokenRequest.model_json_schema()),
        responses=error_responses(400, 401, 403, 404, 413, 422, 503, problems=(400, 404, 413, 422)),
    )
    async def post_token(
        http: Request, x_api_key: str | None = Header(default=None)
    ) -> dict[str, Any]:
        """Mint an embed token under a grant: the token, its expiry (Unix seconds and ISO 8601
        UTC) and the URL of its embed. A refusal names the field at fault and why."""
        key = keys.require(x_api_key, KeyRole.ADMIN)
        actor = Principal("key", key.source, "", frozenset())
        client = http.client.host if http.client else None
        try:
            raw = await request_json(http, MAX_BODY_BYTES)
        except BadInput as exc:
            raise HTTPException(exc.status_code, [_problem("body", exc.reason)]) from None
        try:
            request = TokenRequest.model_validate(raw)
        except ValidationError as exc:
            problems = [
                _problem(".".join(str(p) for p in e["loc"]) or "body", e["msg"])
                for e in exc.errors(include_url=False)
            ]
            raise HTTPException(422, problems) from None
        asked = {
            "ttl_s": request.ttl_s,
            "scope": request.scope,
            "panels": request.panels,
            "lang": request.lang,
        }

        def issue() -> tuple[str, EmbedClaims]:
            with sessions() as session:
                token, claims = issue_token(
                    session=session,
                    secret=secret(),
                    grant_name=request.grant,
                    ttl_s=request.ttl_s,
                    now=clock(),
                    limits=limits,
                    scope=request.scope,
                    panels=request.panels,
                    lang=request.lang,
                )
            if audit is not None:  # fail closed: no token leaves unrecorded
                audit.record_now(
                    actor,
                    "embed.token",
                    "ok",
                    scope_code=claims.scope,
                    target=request.grant,
                    detail={"panels": list(claims.panels), "lang": claims.lang, "exp": claims.exp},
                    client=client,
                )
            return token, claims

        try:
            token, claims = await asyncio.to_thread(issue)
        except (GrantRefused, NoSuchGrant) as exc:
            status = 404 if isinstance(exc, NoSuchGrant) else 422
            if audit is not None:
                await audit(
                    actor,
                    "embed.token",
                    "failed",
                    target=request.grant,
                    detail={**asked, "reason": exc.reason},
                    client=client,
                )
            raise HTTPException(status, [_problem(exc.field, exc.reason)]) from None
        return token_json(token, claims)

    return router
