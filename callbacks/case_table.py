"""The case table's rows: AG Grid's infinite row model asks for one block at a time, keyset-paged
(callbacks/keyset.py), so a block deep in a million cases costs what the first one does."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from dash import Dash, Input, Output, State, no_update

from callbacks.keyset import kept_cursors, read_block, trimmed
from callbacks.overview import parse_search
from callbacks.query import parse_query
from data_sources.access.guard import CallbackPolicies, CallbackPolicy, current_access
from data_sources.access.model import Permission, Scope
from data_sources.cases.filters import CaseFilter, FilterError
from data_sources.cases.query import CaseListItem, CasePage, Sort, SortKey, case_page
from layouts import ids
from layouts.overview import CASE_BLOCK
from layouts.overview_panels import case_rows

if TYPE_CHECKING:
    from data_sources.services import Services


def sort_of(model: Any) -> Sort:
    """The grid's sort model ([{"colId": "due_at", "sort": "asc"}]) as a `Sort`; newest first
    when it names nothing the server sorts by."""
    if isinstance(model, list) and model and isinstance(model[0], dict):
        first = model[0]
        try:
            key = SortKey(str(first.get("colId")))
        except ValueError:
            return Sort()
        return Sort(key, first.get("sort") != "asc")
    return Sort()


def register(app: Dash, services: Services, policies: CallbackPolicies) -> None:
    tz = services.tz
    policies.declare(
        ids.Overview.CASES, CallbackPolicy(Permission.READ, scope_from=ids.Overview.URL)
    )

    def block(scope: Scope, filt: CaseFilter, sort: Sort, after: str | None) -> CasePage:
        started = time.perf_counter()
        try:
            with services.sessions() as session:
                return case_page(
                    session=session,
                    scope=scope,
                    filt=filt,
                    now=services.clock(),
                    tz=tz,
                    sort=sort,
                    after=after,
                    limit=CASE_BLOCK,
                )
        finally:
            services.metrics.observe_render("case_table", time.perf_counter() - started)

    @app.callback(
        Output(ids.Overview.CASES, "getRowsResponse"),
        Output(ids.Overview.CURSORS, "data"),
        Input(ids.Overview.CASES, "getRowsRequest"),
        State(ids.Overview.URL, "search"),
        State(ids.Overview.CURSORS, "data"),
    )
    async def rows(request: Any, search: object, cursors: Any) -> tuple[Any, Any]:
        area = current_access().scope
        start = request.get("startRow") if isinstance(request, dict) else None
        if area is None or not isinstance(start, int) or start < 0:
            return no_update, no_update
        if start % CASE_BLOCK:  # not a block the grid asks for: nothing there (never spins)
            return {"rowData": [], "rowCount": start}, no_update
        _, lang = parse_search(search, services.settings.default_lang)
        try:
            filt = CaseFilter.from_query(parse_query(search))
        except FilterError:
            return {"rowData": [], "rowCount": 0}, no_update
        sort = sort_of(request.get("sortModel"))
        key = f"{area.code}|{filt.to_query()}|{sort.key.value}|{sort.descending}"
        known = kept_cursors(cursors, key)

        def fetch(after: str | None) -> tuple[list[CaseListItem], str | None]:
            page = block(area, filt, sort, after)
            return page.items, page.after

        try:
            found = await asyncio.to_thread(read_block, start, CASE_BLOCK, known, fetch)
        except FilterError:  # a cursor from another sort or a tampered one: start again
            return {"rowData": [], "rowCount": 0}, {"key": key, "after": {}}
        kept = {"key": key, "after": trimmed(known, start, CASE_BLOCK)}
        if found is None:  # out of reach: the table ends where the page has been
            return {"rowData": [], "rowCount": start}, kept
        response: dict[str, Any] = {"rowData": case_rows(found.items, lang, tz)}
        if found.last:
            response["rowCount"] = start + len(found.items)  # the grid now knows the end
        return response, kept
