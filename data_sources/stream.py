"""`GET /live/stream?scope=<code>`: one server-sent-event stream per page, fed by the process's hub.

Protocol: `retry:` first; then a `snapshot` event (the scope's figures and its children's), or, when
the browser reconnects with `Last-Event-ID` and the hub's ring still reaches back, the `delta`
events it missed (a page that opens a new stream itself, after the browser gave up on one, says
where it was with `last=<id>` in the query: a new EventSource sends no `Last-Event-ID`); then a
`delta` per frame in which the scope changed; a `ping` event every `heartbeat_s` so the page's
watchdog can tell a quiet city from a dead connection. Every delta and snapshot carries `id:`
("<the hub's life>-<n>": an id from before a restart gets a snapshot); every message carries `at`,
the server's time in ms when its data were current, so the page can tell "arriving late" from
"live". The first message also tells the page the heartbeat and the cap of its reconnect backoff
(`reconnect_max`, seconds). A stream the hub cut off for being slow simply ends; the browser
reconnects.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import StreamingResponse

from data_sources.directory import Directory
from data_sources.hub import Hub


def sse(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"{head}event: {event}\ndata: {body}\n\n"


def live_router(
    hub: Callable[[], Hub],
    directory: Callable[[], Directory],
    *,
    build_id: str,
    heartbeat_s: float = 15.0,
    reconnect_max_s: float = 5.0,
    retry_ms: int = 1_000,
) -> APIRouter:
    router = APIRouter(tags=["live"])

    @router.get("/live/stream")
    async def stream(
        scope: str | None = None,
        last: str | None = None,
        last_event_id: str | None = Header(default=None),
    ) -> StreamingResponse:
        """Live figures of one scope (node code; the city when omitted) as server-sent events;
        `last` (or the `Last-Event-ID` header, which wins): the id of the last delta the page has."""
        places = directory()
        root = places.codes.get(places.root_id) if places.root_id is not None else None
        # An unknown scope shows the city, as the page does (a stale bookmark must still be live).
        place = places.nodes.get(scope or "") or places.nodes.get(root or "")
        if place is None:
            raise HTTPException(503, "no hierarchy loaded yet: seed the database")
        resume = hub().resume_point(last_event_id or last)
        hello = {"build": build_id, "heartbeat": heartbeat_s, "reconnect_max": reconnect_max_s}
        return StreamingResponse(
            _events(hub(), place.id, resume, hello, heartbeat_s, retry_ms),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
        )

    return router


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _events(
    hub: Hub,
    node: int,
    resume: int | None,
    hello: dict[str, Any],
    heartbeat_s: float,
    retry_ms: int,
) -> AsyncIterator[str]:
    # Subscribe before taking the snapshot: a change in between is then delivered as well
    # (deltas carry absolute figures, so seeing it twice is harmless).
    sub = hub.subscribe(node)
    try:
        yield f"retry: {retry_ms}\n\n"
        backlog = hub.since(node, resume) if resume is not None else None
        if backlog is None:
            snapshot = {**hub.snapshot(node), **hello, "at": _now_ms()}
            yield sse("snapshot", snapshot, hub.event_id(hub.last_id))
        else:
            for delta in backlog:
                yield sse("delta", delta, hub.event_id(delta["id"]))
            # The hello, and a current `at`: the backlog's own stamps are old by design.
            yield sse("ping", {**hello, "at": _now_ms()})
        while True:
            try:
                delta = await asyncio.wait_for(sub.queue.get(), heartbeat_s)
            except TimeoutError:
                yield sse("ping", {**hello, "at": _now_ms()})
                continue
            if delta.get("cut"):
                return
            yield sse("delta", delta, hub.event_id(delta["id"]))
    finally:
        hub.unsubscribe(sub)
