"""Web origins (`scheme://host[:port]`) that may frame an embed and exchange messages with it.

An origin is written exactly as a browser states it (`MessageEvent.origin`, the `Origin` header):
http or https, a host and, when not the scheme's default, a port; no path, no user, no wildcard.
Each is kept in that canonical form (lower case, the default port dropped), so that a CSP
`frame-ancestors` source and a `postMessage` origin check compare the same strings.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

DEFAULT_PORTS = {"http": 80, "https": 443}
#: scheme "://" host [":" port] rest: each part then checked on its own, to say what is wrong.
_PARTS = re.compile(
    r"(?P<scheme>[^:/?#]*)://(?P<host>\[[^\]]*\]|[^:/?#\[\]]*)(?::(?P<port>[^/?#]*))?(?P<rest>.*)",
    re.DOTALL,
)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)
#: Origins in GRIDCC_EMBED_ALLOWED_ORIGINS and similar lists are separated by spaces or commas.
_SEPARATORS = re.compile(r"[\s,]+")
#: More than this many origins for one grant (or a deployment) is a mistake, not a policy.
MAX_ORIGINS = 32


def _host(host: str) -> str:
    """`host` (lower case) as a browser writes it in an origin; ValueError saying why it is none."""
    if host.startswith("["):
        if "%" in host:  # a zone id is no origin, and `;` in it would end the CSP's directive
            raise ValueError(f"{host} has a zone id: browsers send no origin with one")
        try:
            return f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            raise ValueError(f"{host} is not an IPv6 address") from None
    if not host:
        raise ValueError("it has no host")
    if "*" in host:
        raise ValueError("wildcards are not allowed: name each origin")
    if not host.isascii():
        raise ValueError("write an internationalised host name in its xn-- (punycode) form")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise ValueError(f"{host!r} is not a host name")
    return host


def parse_origin(text: str) -> str:
    """The origin `text` names, in canonical form ("HTTPS://Portal.example:443" → "https://portal.example").

    Raises:
        ValueError: why `text` is no origin (the message quotes it).
    """
    text = text.strip()
    problem = f"{text[:100]!r} is not an origin (scheme://host[:port])"
    parts = _PARTS.fullmatch(text)
    if parts is None:
        raise ValueError(f"{problem}: it has no scheme://")
    scheme = parts["scheme"].lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{problem}: the scheme is {parts['scheme']!r}, not http or https")
    if "@" in parts["host"] or "@" in (parts["port"] or "") or parts["rest"].startswith("@"):
        raise ValueError(f"{problem}: it names a user")
    if parts["rest"]:
        raise ValueError(f"{problem}: remove {parts['rest'][:40]!r} (an origin has no path)")
    try:
        host = _host(parts["host"].lower())
    except ValueError as exc:
        raise ValueError(f"{problem}: {exc}") from None
    port = parts["port"]
    if port is None:
        return f"{scheme}://{host}"
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        raise ValueError(f"{problem}: the port {port[:10]!r} is not a number from 1 to 65535")
    if int(port) == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{int(port)}"


def parse_origins(values: str | Iterable[str]) -> tuple[str, ...]:
    """Origins from "https://a.example https://b.example:8443" (spaces or commas between them), or
    from a list of them; canonical, each once, in the order given. Empty: none.

    Raises:
        ValueError: the first that is no origin, or more than `MAX_ORIGINS`.
    """
    texts = [values] if isinstance(values, str) else list(values)
    origins: dict[str, None] = {}
    for text in texts:
        for part in _SEPARATORS.split(text):
            if part:
                origins[parse_origin(part)] = None
    if len(origins) > MAX_ORIGINS:
        raise ValueError(f"{len(origins)} origins: at most {MAX_ORIGINS}")
    return tuple(origins)
