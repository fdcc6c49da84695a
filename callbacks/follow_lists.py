"""Callbacks of the follow-up lists other than cases (layouts/follow_lists.py): the alarm table's
blocks (keyset-paged as the case table's: callbacks/case_table.py), its count and export links,
and the worker list, read from the URL's scope when its tab is shown and again on the live
stream's ticks, at most once a `WORKER_REFRESH_S`."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from dash import Dash, Input, Output, State, no_update

from callbacks.keyset import kept_cursors, read_block, trimmed
from callbacks.overview import parse_search
from callbacks.query import parse_query
from data_sources.access.guard import CallbackPolicies, CallbackPolicy, current_access
from data_sources.access.model import Permission, Scope
from data_sources.alarms.history import AlarmListItem, alarm_count, alarm_filter, alarm_page
from data_sources.cases.filters import CaseFilter, FilterError
from data_sources.workers.roster import GridOutlines, WorkerItem, worker_roster
from layouts import follow_lists as layout
from layouts import ids

if TYPE_CHECKING:
    from data_sources.services import Services

T = TypeVar("T")
#: A worker list younger than this is not read again for a tick, a filter change or a return
#: to its tab (fixes come every 15 minutes; the city's list costs ~2 s of SQL and geometry).
WORKER_REFRESH_S = 60.0
_EPOCH = datetime(1970, 1, 1)


def worker_list_due(active_tab: Any, key: str, drawn: Any, now_s: float) -> bool:
    """Whether the worker list must be read: its tab is shown and what it shows is of another
    scope or language, or older than `WORKER_REFRESH_S`."""
    if active_tab != layout.WORKER_TAB:
        return False
    if not isinstance(drawn, dict) or drawn.get("key") != key:
        return True
    at = drawn.get("at")
    return not isinstance(at, int | float) or now_s - at >= WORKER_REFRESH_S


def register(app: Dash, services: Services, policies: CallbackPolicies) -> None:
    tz = services.tz
    default_lang = services.settings.default_lang
    outlines = GridOutlines()
    for output in (ids.Lists.ALARMS, ids.Lists.WORKERS):
        policies.declare(output, CallbackPolicy(Permission.READ, scope_from=ids.Overview.URL))

    def alarm_block(
        scope: Scope, filt: CaseFilter, after: str | None
    ) -> tuple[list[AlarmListItem], str | None]:
        """A block of the alarm table from SQL (a render's cost, timed for /metrics)."""
        started = time.perf_counter()
        try:
            with services.sessions() as session:
                page = alarm_page(
                    session=session,
                    scope=scope,
                    filt=filt,
                    now=services.clock(),
                    tz=tz,
                    after=after,
                    limit=layout.ALARM_BLOCK,
                )
            return page.items, page.after
        finally:
            services.metrics.observe_render("alarm_table", time.perf_counter() - started)

    def count(scope: Scope, filt: CaseFilter) -> int:
        with services.sessions() as session:
            return alarm_count(session=session, scope=scope, filt=filt, now=services.clock(), tz=tz)

    @app.callback(
        Output(ids.Lists.ALARMS, "getRowsResponse"),
        Output(ids.Lists.ALARM_CURSORS, "data"),
        # Drawn with the first block, so that the count and the links are the rows' filter's
        # (the table is read again from its first block when the URL's filter changes).
        Output(ids.Lists.ALARM_COUNT, "children"),
        Output(ids.Lists.ALARM_EXPORT_CSV, "href"),
        Output(ids.Lists.ALARM_EXPORT_XLSX, "href"),
        Input(ids.Lists.ALARMS, "getRowsRequest"),
        State(ids.Overview.URL, "search"),
        State(ids.Lists.ALARM_CURSORS, "data"),
    )
    async def alarm_rows(request: Any, search: object, cursors: Any) -> tuple[Any, ...]:
        area = current_access().scope
        start = request.get("startRow") if isinstance(request, dict) else None
        if area is None or not isinstance(start, int) or start < 0:
            return (no_update,) * 5
        if start % layout.ALARM_BLOCK:  # not a block the grid asks for: nothing there
            return {"rowData": [], "rowCount": start}, *((no_update,) * 4)
        _, lang = parse_search(search, default_lang)
        try:
            filt = alarm_filter(CaseFilter.from_query(parse_query(search)))
        except FilterError:  # the page says why (callbacks/overview.py)
            return {"rowData": [], "rowCount": 0}, no_update, "", None, None
        head: tuple[Any, ...] = (no_update,) * 3
        if start == 0:
            head = (
                layout.alarm_count_text(await asyncio.to_thread(count, area, filt), lang),
                layout.alarm_export_href("csv", area.code, lang, filt),
                layout.alarm_export_href("xlsx", area.code, lang, filt),
            )
        key = f"{area.code}|{filt.to_query()}"
        known = kept_cursors(cursors, key)

        def fetch(after: str | None) -> tuple[list[AlarmListItem], str | None]:
            return alarm_block(area, filt, after)

        try:
            block = await asyncio.to_thread(read_block, start, layout.ALARM_BLOCK, known, fetch)
        except FilterError:  # a tampered cursor: start again
            return {"rowData": [], "rowCount": 0}, {"key": key, "after": {}}, *head
        kept = {"key": key, "after": trimmed(known, start, layout.ALARM_BLOCK)}
        if block is None:
            return {"rowData": [], "rowCount": start}, kept, *head
        response: dict[str, Any] = {"rowData": layout.alarm_rows(block.items, lang, tz)}
        if block.last:  # the grid now knows where the end is
            response["rowCount"] = start + len(block.items)
        return response, kept, *head

    def roster(scope: Scope) -> list[WorkerItem]:
        """The scope's workers from SQL (a render's cost, timed for /metrics)."""
        started = time.perf_counter()
        try:
            with services.sessions() as session:
                return worker_roster(
                    session=session, scope=scope, now=services.clock(), tz=tz, outlines=outlines
                )
        finally:
            services.metrics.observe_render("worker_list", time.perf_counter() - started)

    @app.callback(
        Output(ids.Lists.WORKERS, "rowData"),
        Output(ids.Lists.WORKER_COUNT, "children"),
        Output(ids.Lists.WORKER_EXPORT_CSV, "href"),
        Output(ids.Lists.WORKER_EXPORT_XLSX, "href"),
        Output(ids.Lists.WORKER_DRAWN, "data"),
        Input(ids.Lists.TABS, "active_tab"),
        Input(ids.Overview.URL, "search"),
        # The stream says the scope changed (assets/live.js, throttled): the list again, at
        # most once a WORKER_REFRESH_S.
        Input(ids.Overview.TICK, "data"),
        State(ids.Lists.WORKER_DRAWN, "data"),
    )
    async def workers(tab: Any, search: object, _tick: Any, drawn: Any) -> tuple[Any, ...]:
        area = current_access().scope
        _, lang = parse_search(search, default_lang)
        now_s = (services.clock() - _EPOCH).total_seconds()
        if area is None:
            return [], "", None, None, None
        key = f"{area.code}|{lang}"
        if not worker_list_due(tab, key, drawn, now_s):
            return (no_update,) * 5
        items = await asyncio.to_thread(roster, area)
        return (
            layout.worker_rows(items, lang, tz),
            layout.worker_count_text(items, lang),
            layout.worker_export_href("csv", area.code, lang),
            layout.worker_export_href("xlsx", area.code, lang),
            {"key": key, "at": now_s},
        )
