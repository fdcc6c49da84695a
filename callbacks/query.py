"""A page's query string as its callbacks receive it: from the request's JSON, so anything."""

from __future__ import annotations

from urllib.parse import parse_qs


def parse_query(search: object) -> dict[str, list[str]]:
    """The parameters of `search` ("?scope=530103&lang=en"). Anything but a string, as a forged
    callback body may send, is no query; a lone surrogate (valid in JSON, not text) becomes
    U+FFFD, so a value never makes a later `urlencode` or the answer's encoding fail (a 500)."""
    if not isinstance(search, str):
        return {}
    text = search.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return parse_qs(text.lstrip("?"))
