"""`GET /live/stream?scope=<code>`: one server-sent-event stream per page, fed by the process's hub.

Protocol: `retry:` first; then a `snapshot` event (the scope's figures and its children's), or, when
the browser reconnects with `Last-Event-ID` and the hub's ring still reaches back, the `delta`
events it missed (a page that opens a new stream itself, after the browser gave up on one, says
where it was with `last=<id>` in the query: a new EventSource sends no `Last-Event-ID`); then a
`delta` per frame in which the scope changed; for a page that says its `view` (the wall) and
`lang`, a `refresh` event whenever the hub recomputes that view of the scope (every
`Hub.refresh_s`: the figures of a window, which no delta carries; no `id:`, it is never replayed);
a `ping` event every `heartbeat_s` so the page's watchdog can tell a quiet city from a dead
connection; a `status` event whenever the pipeline behind the stream changes state (live, behind,
stalled: `health.pipeline_status`; a stream can ping while nothing is applied), which every
snapshot and ping also carry as `pipeline`, so a page that (re)connects knows it at once. Every
delta and snapshot carries `id:` ("<the hub's life>-<n>": an id from before a restart gets a
snapshot); every message carries `at`, the server's time in ms when its data were current, so
the page can tell "arriving late" from "live". The first message also tells the page the
heartbeat and the cap of its reconnect backoff (`reconnect_max`, seconds). A stream the hub cut
off for being slow simply ends; the browser reconnects. An unknown scope is refused (404 "no such
area"), never taken for the city. An embed's stream (its token in `&embed=`) ends with a `denied`
event at the token's expiry or its grant's revocation, and carries its granted panels only
(`EmbedView`: no case titles, alarm places or worker fixes, no refresh regions of other panels).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import StreamingResponse

from data_sources.access.guard import current_access
from data_sources.access.model import AccessError, Permission, Principal
from data_sources.access.scope import NoHierarchy, resolve_scope
from data_sources.api_schema import error_responses
from data_sources.body import check_event_id
from data_sources.directory import Directory
from data_sources.hub import Hub

#: Whether a principal's credential still holds (checked at every heartbeat); None: cannot tell.
Alive = Callable[[Principal], Awaitable[bool | None]]


async def _always(_principal: Principal) -> bool | None:
    return True


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
    alive: Alive = _always,
    embed_regions: Callable[[frozenset[str]], frozenset[str]] = lambda _panels: frozenset(),
) -> APIRouter:
    router = APIRouter(tags=["live"])

    @router.get(
        "/live/stream",
        response_class=StreamingResponse,
        responses={
            200: {"description": "Server-sent events", "content": {"text/event-stream": {}}},
            **error_responses(400, 401, 403, 404, 503),
        },
    )
    async def stream(
        scope: str | None = None,
        last: str | None = None,
        view: Literal["wall"] | None = None,
        lang: Literal["zh", "en"] = "zh",
        last_event_id: str | None = Header(default=None),
    ) -> StreamingResponse:
        """Live figures of one scope (node code; the caller's own area when omitted) as events;
        `last` (or the `Last-Event-ID` header, which wins): the id of the last delta the page has;
        `view` and `lang`: the page's periodic refresh of its window figures."""
        principal = current_access().principal
        try:
            area = resolve_scope(directory(), scope, principal)
        except NoHierarchy:
            raise HTTPException(503, "no hierarchy loaded yet: seed the database") from None
        except AccessError as exc:
            raise HTTPException(exc.status_code, exc.reason) from None
        check_event_id(last_event_id or last)  # 400 for what is no event id at all
        resume = hub().resume_point(last_event_id or last)
        hello = {"build": build_id, "heartbeat": heartbeat_s, "reconnect_max": reconnect_max_s}

        async def still_allowed() -> bool | None:
            return await alive(principal)

        def why_not() -> str:
            """Why a credential no longer holds, for the page ("denied" event)."""
            if principal.kind != "embed":
                return "signed_out"
            expired = principal.expires_at is None or time.time() >= principal.expires_at
            return "expired" if expired else "revoked"

        # Those who may act get the wall's refreshes with the ticker's buttons.
        watched = f"{view}-act" if view == "wall" and principal.may(Permission.ACT) else view

        return StreamingResponse(
            _events(
                hub(),
                area.id,
                resume,
                hello,
                heartbeat_s,
                retry_ms,
                watched,
                lang,
                still_allowed,
                why_not,
                principal.expires_at,
                None
                if principal.panels is None
                else EmbedView(principal.panels, embed_regions(principal.panels)),
            ),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
        )

    return router


#: The delta fields that only some panels use: an embed's stream carries them only when its
#: token grants one of those panels (the case feed's titles, alarms' places, workers' fixes).
DELTA_PANELS = {"feed": ("feed",), "alarm_feed": ("alarms", "map"), "workers": ("map",)}


class EmbedView:
    """What of a stream an embed's token lets through: the delta fields and the refresh regions
    (component ids, `regions`) of its granted panels."""

    def __init__(self, panels: frozenset[str], regions: frozenset[str]) -> None:
        self.withheld = [f for f, users in DELTA_PANELS.items() if not panels.intersection(users)]
        self.regions = regions

    def delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return delta | dict.fromkeys(self.withheld, []) if self.withheld else delta

    def refresh(self, event: bytes | str) -> str | None:
        """The `refresh` event (as the hub encoded it once for every page) with the granted
        regions only; None when it has none."""
        text = event.decode() if isinstance(event, bytes) else event
        data = "".join(
            line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")
        )
        try:
            body = json.loads(data)
        except ValueError:
            return None
        regions = {k: v for k, v in body.get("regions", {}).items() if k in self.regions}
        return sse("refresh", body | {"regions": regions}) if regions else None


def _now_ms() -> int:
    return int(time.time() * 1000)


async def _events(
    hub: Hub,
    node: int,
    resume: int | None,
    hello: dict[str, Any],
    heartbeat_s: float,
    retry_ms: int,
    view: str | None = None,
    lang: str = "zh",
    allowed: Callable[[], Awaitable[bool | None]] | None = None,
    why_not: Callable[[], str] = lambda: "signed_out",
    expires_at: float | None = None,
    embed: EmbedView | None = None,
) -> AsyncIterator[str | bytes]:
    # Subscribe before taking the snapshot: a change in between is then delivered as well
    # (deltas carry absolute figures, so seeing it twice is harmless).
    sub = hub.subscribe(node, view, lang)
    try:
        yield f"retry: {retry_ms}\n\n"
        backlog = hub.since(node, resume) if resume is not None else None
        if backlog is None:
            snapshot = {**hub.snapshot(node), **hello, "pipeline": hub.pipeline, "at": _now_ms()}
            yield sse("snapshot", snapshot, hub.event_id(hub.last_id))
        else:
            for missed in backlog:
                shown = missed if embed is None else embed.delta(missed)
                yield sse("delta", shown, hub.event_id(missed["id"]))
            # The hello, and a current `at`: the backlog's own stamps are old by design.
            yield sse("ping", {**hello, "pipeline": hub.pipeline, "at": _now_ms()})
        # The credential is checked once a heartbeat, busy or quiet; a ping goes out when
        # nothing else did for a heartbeat.
        loop = asyncio.get_running_loop()
        next_check = next_ping = loop.time() + heartbeat_s
        # A credential with an end (an embed's token) is checked at that end too, to the moment.
        end = None if expires_at is None else loop.time() + max(0.0, expires_at - time.time())
        if end is not None:
            next_check = min(next_check, end)
        delta: dict[str, Any] | None
        while True:
            try:
                wait = max(0.0, min(next_check, next_ping) - loop.time())
                delta = await asyncio.wait_for(sub.queue.get(), wait)
            except TimeoutError:
                delta = None
            now = loop.time()
            if now >= next_check:
                next_check = now + heartbeat_s
                if end is not None and end > now:
                    next_check = min(next_check, end)
                verdict = await allowed() if allowed is not None else True
                if verdict is False:
                    yield sse("denied", {"reason": why_not(), "at": _now_ms()})
                    return
                if verdict is None:  # cannot tell (the database is down): end, the page retries
                    return
            if delta is None:
                if now >= next_ping:
                    next_ping = now + heartbeat_s
                    yield sse("ping", {**hello, "pipeline": hub.pipeline, "at": _now_ms()})
                continue
            next_ping = now + heartbeat_s
            if delta.get("cut"):
                return
            if "refresh" in delta:  # the whole event, encoded once for all the scope's pages
                if embed is None:
                    yield delta["refresh"]
                elif (granted := embed.refresh(delta["refresh"])) is not None:
                    yield granted
                continue
            if "status" in delta:  # the pipeline's new state, encoded once for every page
                yield delta["status"]
                continue
            shown = delta if embed is None else embed.delta(delta)
            yield sse("delta", shown, hub.event_id(delta["id"]))
    finally:
        hub.unsubscribe(sub)
