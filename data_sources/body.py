"""What a client sends, read defensively: bodies within a byte limit, JSON within a nesting limit.

Every malformed request must get a 4xx with a reason, never a 500 nor a server that reads
whatever it is sent. Three ways a body used to get through:

- size: `await request.body()` read a 200 MB body whole (+180 MB RSS) before saying 413. Here the
  declared `Content-Length` is refused at once, and a body without one (chunked) is counted while
  it streams and refused as soon as it passes the limit: at most `limit` bytes plus one chunk are
  ever held;
- depth: `json.loads` recurses once per level and raised RecursionError (a 500) at ~1,000 levels.
  The brackets are counted first, outside strings, at C speed (`_depth`: ~3 ms for 2 MB), and a
  body nested deeper than `MAX_DEPTH` is a 400 before the parser sees it;
- encoding: JSON is UTF-8 (RFC 8259); anything else, NaN and ±Infinity are refused with a reason.

`BadInput` is an `HTTPException`: a route lets it propagate, an ASGI middleware answers it itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from itertools import accumulate
from typing import Any

from fastapi import HTTPException, Request
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

#: How deeply a JSON body may nest. An event is 3 levels deep, a batch 4, a Dash callback body
#: about 5 plus the value of a property; 32 leaves room and is far from Python's recursion limit.
MAX_DEPTH = 32
#: A JSON string, escapes included (the unrolled form: linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Opening brackets become +1 and closing ones -1 (0xFF read as a signed byte); the rest is dropped.
_BRACKETS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
#: A live stream's event id: "<the hub's life>-<delta number>" (a bare number from an older build).
_EVENT_ID = re.compile(r"(?:[0-9A-Za-z_]{1,64}-)?[0-9]{1,18}", re.ASCII)


class BadInput(HTTPException):
    """A request refused for what it sent: 400, 413 or 415 with the reason as `detail`."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(status_code, reason)
        self.reason = reason


def declared_length(content_length: str | None, limit: int) -> None:
    """Refuse a declared `Content-Length` over `limit` before a byte of the body is read."""
    if content_length is None:
        return
    if not (content_length.isascii() and content_length.isdigit()):
        raise BadInput(400, f"Content-Length '{content_length[:32]}' is not a number of bytes")
    if len(content_length) > 18 or int(content_length) > limit:
        reason = f"body of {content_length[:24]} bytes is over the limit of {limit} bytes"
        raise BadInput(413, reason)


async def read_limited(
    chunks: AsyncIterator[bytes], content_length: str | None, limit: int
) -> bytes:
    """The whole body from `chunks`, or BadInput(413) as soon as it passes `limit` bytes.

    The rest of an oversized body is never read: the server answers while the client is still
    sending (and the connection is then closed by the server, not drained).
    """
    declared_length(content_length, limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BadInput(413, f"body is over the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def request_body(request: Request, limit: int) -> bytes:
    """The body of a route's `request`, within `limit` bytes."""
    return await read_limited(request.stream(), request.headers.get("content-length"), limit)


async def _received(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def asgi_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The body of an ASGI request (in a middleware, before the app runs), within `limit` bytes."""
    length = None
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            length = value.decode("latin-1")
    return await read_limited(_received(receive), length, limit)


def _depth(body: bytes) -> int:
    """How deeply `body` nests, counting the brackets outside JSON strings (C loops only)."""
    brackets = _STRING.sub(b"", body).translate(_BRACKETS, _NOT_BRACKETS)
    return max(accumulate(memoryview(brackets).cast("b")), default=0)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text[:32]} is out of range")
    return value


def parse_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of `body`; BadInput(400) saying why it is not one we take."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(400, f"body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    if _depth(body) > max_depth:
        raise BadInput(400, f"body is not valid JSON: nesting deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:  # not reachable after the depth check: the last line of defence
        raise BadInput(400, "body is not valid JSON: nesting too deep") from None
    except ValueError as exc:  # JSONDecodeError, and numbers past int's 4,300 digits
        raise BadInput(400, f"body is not valid JSON: {exc}") from None


async def request_json(request: Request, limit: int, *, empty: Any = ...) -> Any:
    """A route's JSON body within `limit` bytes and `MAX_DEPTH` levels; `empty` for no body
    (when given: without it, an empty body is invalid JSON)."""
    body = await request_body(request, limit)
    if not body.strip() and empty is not ...:
        return empty
    return parse_json(body)


def check_event_id(event_id: str | None) -> None:
    """Refuse (400) a `Last-Event-ID` / `last` that is no stream id at all.

    Well-formed ids of another life (from before a restart) are not refused: the hub answers
    them with a snapshot, as pages rely on. Absurd ones (a 4,301-digit number, "²³", text) are
    a client's mistake, said as such instead of silently snapshotted (or, before, a 500).
    """
    if event_id and not _EVENT_ID.fullmatch(event_id):
        raise BadInput(400, f"'{event_id[:40]}' is not a stream event id (<life>-<number>)")
