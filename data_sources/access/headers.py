"""Security headers on every response: no sniffing, no referrer leaving the site, and a
Content-Security-Policy that lets only this server's own scripts run and only its own pages
frame it (`frame-ancestors 'self'`); an embed page sets its own (its grant's origins), and a
response with a CSP of its own gets no `X-Frame-Options` either.

Dash's pages run one inline script (`new DashRenderer(...)`): it is allowed by its hash
(`Dash.csp_hashes`), not by `'unsafe-inline'`. Styles keep `'unsafe-inline'`: Plotly and
Leaflet set styles at run time, and a style cannot run code. A response that sets its own CSP
(the API docs, with their inline script's hash) keeps it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FIXED_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # For browsers that predate `frame-ancestors`.
    "X-Frame-Options": "SAMEORIGIN",
}


def content_security_policy(
    script_hashes: Iterable[str], *, tile_url: str | None = None, frame_ancestors: str = "'self'"
) -> str:
    """The policy of gridcc's pages; `tile_url`'s origin may serve map images."""
    images = ["'self'", "data:", "blob:"]
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        if parts.scheme and parts.netloc:
            images.append(f"{parts.scheme}://{parts.netloc}")
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": images,
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": [frame_ancestors],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def inline_script_hashes(page: str) -> list[str]:
    """CSP hash sources of the inline scripts of an HTML page."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(page)
        if body.strip()
    ]


class SecurityHeaders:
    """ASGI middleware adding `FIXED_HEADERS` and `csp` to every HTTP response."""

    def __init__(self, app: ASGIApp, csp: str | Sequence[str]) -> None:
        self.app = app
        self.csp = csp if isinstance(csp, str) else "; ".join(csp)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                # A response with a CSP of its own says who may frame it (an embed's portals).
                own = "content-security-policy" in headers
                for name, value in FIXED_HEADERS.items():
                    if name not in headers and not (own and name == "X-Frame-Options"):
                        headers[name] = value
                if not own:
                    headers["Content-Security-Policy"] = self.csp
            await send(message)

        await self.app(scope, receive, with_headers)
