"""Embed tokens: what a portal's iframe carries instead of a login (签名令牌).

A token is the claims as compact JSON, signed with HMAC-SHA256 by itsdangerous'
`URLSafeSerializer` (salt "gridcc-embed"): URL-safe, so it travels in `?token=` as it is. It names
its grant, the area and panels it shows, its language and its expiry; it holds nothing secret, and
nothing in it can be changed without the signing key. Pure: no I/O (grants.py checks the grant).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

from itsdangerous import BadPayload, BadSignature, URLSafeSerializer

from data_sources.embed.panels import PANELS

SALT = "gridcc-embed"
#: A token is a few hundred characters (all nine panels and a long scope code: ~260); anything
#: longer is refused before it is decoded.
MAX_TOKEN_CHARS = 2048
#: The shortest, usual and longest token lifetimes (settings `embed_token_*_s` default to these).
TOKEN_MIN_S = 1
TOKEN_DEFAULT_S = 600
TOKEN_MAX_S = 3600
#: A scope in a token is a node code (schema `Code`).
SCOPE_MAX = 32

Lang = Literal["zh", "en"]
LANGS: tuple[str, ...] = get_args(Lang)
#: Why a token is refused: "malformed" (not one of ours at all), "tampered" (its signature does not
#: hold: changed, or signed with another key), "expired", "revoked" (its grant was revoked, or no
#: longer covers what it claims; grants.py).
TokenReason = Literal["malformed", "tampered", "expired", "revoked"]
#: `[.]payload.signature`, base64url (a leading "." marks a compressed payload).
_SHAPE = re.compile(r"\.?[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", re.ASCII)
_FIELDS = ("grant", "scope", "panels", "lang", "exp", "iat")


@dataclass(frozen=True, slots=True)
class TokenLimits:
    """A deployment's token lifetimes (GRIDCC_EMBED_TOKEN_DEFAULT_S / _MAX_S), in seconds."""

    default_s: int = TOKEN_DEFAULT_S
    max_s: int = TOKEN_MAX_S


@dataclass(frozen=True, slots=True)
class EmbedClaims:
    """What a token says: grant id, scope node code, panels (in `PANELS` order), language, and
    when it was issued and expires (Unix seconds)."""

    grant: int
    scope: str
    panels: tuple[str, ...]
    lang: Lang
    exp: int
    iat: int


class TokenError(Exception):
    """A token that does not hold; `reason` says why (never shown to the viewer as more than
    "link expired")."""

    def __init__(self, reason: TokenReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: TokenReason = reason
        self.detail = detail


def _serializer(secret: bytes) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def claims_problem(claims: EmbedClaims) -> str | None:
    """Why `claims` are not ones a token may carry, or None."""
    if not _is_int(claims.grant) or claims.grant < 1:
        return f"grant must be a positive id, not {claims.grant!r}"
    if not isinstance(claims.scope, str) or not 0 < len(claims.scope) <= SCOPE_MAX:
        return f"scope must be a node code of 1 to {SCOPE_MAX} characters"
    if not isinstance(claims.panels, tuple) or not claims.panels:
        return "panels must name at least one panel"
    unknown = [p for p in claims.panels if p not in PANELS]
    if unknown:
        return f"no such panel: {unknown[0]!r}"
    if claims.panels != tuple(p for p in PANELS if p in claims.panels):
        return "panels must be in PANELS order, each once"
    if claims.lang not in LANGS:
        return f"lang must be zh or en, not {claims.lang!r}"
    if not (_is_int(claims.exp) and _is_int(claims.iat)) or not 0 <= claims.iat <= claims.exp:
        return "iat and exp must be Unix seconds with iat <= exp"
    return None


def mint(secret: bytes, claims: EmbedClaims) -> str:
    """The signed token of `claims`.

    Raises:
        ValueError: claims no token may carry (`claims_problem`).
    """
    if (problem := claims_problem(claims)) is not None:
        raise ValueError(problem)
    payload = {
        "grant": claims.grant,
        "scope": claims.scope,
        "panels": list(claims.panels),
        "lang": claims.lang,
        "exp": claims.exp,
        "iat": claims.iat,
    }
    return _serializer(secret).dumps(payload)


def verify(secret: bytes, token: str, *, now: float, leeway_s: float = 30.0) -> EmbedClaims:
    """The claims of `token`, if it is ours, unchanged and unexpired at `now` (Unix seconds).

    Args:
        leeway_s: how long past its expiry a token still holds: the clocks of a portal's
            backend, the viewer's browser and this server disagree by seconds, and a refresh
            that arrives just late should not blank the panel.

    Raises:
        TokenError: "malformed" (too long, not ASCII, not the shape of a token, or a payload
            that is no claims), "tampered" (the signature does not hold), "expired".
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed", f"not a string of at most {MAX_TOKEN_CHARS} characters")
    if not _SHAPE.fullmatch(token):
        raise TokenError("malformed", "not [.]payload.signature in base64url")
    try:
        payload = _serializer(secret).loads(token)
    except BadPayload:  # signed by us and still unreadable: a bug or a leaked key, not a typo
        raise TokenError("malformed", "the payload does not decode") from None
    except BadSignature:
        raise TokenError("tampered", "the signature does not hold") from None
    claims = _claims_of(payload)
    if now > claims.exp + leeway_s:
        raise TokenError("expired", f"expired at {claims.exp}")
    return claims


def _claims_of(payload: Any) -> EmbedClaims:
    """The claims in a verified payload; TokenError("malformed") when it holds anything else."""
    if not isinstance(payload, dict) or sorted(payload) != sorted(_FIELDS):
        raise TokenError("malformed", f"the payload is not an object of {', '.join(_FIELDS)}")
    panels = payload["panels"]
    if not isinstance(panels, list) or not all(isinstance(p, str) for p in panels):
        raise TokenError("malformed", "panels is not a list of names")
    claims = EmbedClaims(
        grant=payload["grant"],
        scope=payload["scope"],
        panels=tuple(panels),
        lang=payload["lang"],
        exp=payload["exp"],
        iat=payload["iat"],
    )
    if (problem := claims_problem(claims)) is not None:
        raise TokenError("malformed", problem)
    return claims
