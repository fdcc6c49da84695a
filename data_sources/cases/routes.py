"""The case API (issue 11): `GET /api/v1/cases/{case_id}` (a case in full, as its page shows it)
and `GET /api/v1/export/{cases,alarms,workers}.csv|.xlsx` (the laptop view's tables with their
filter: read and checked here, limited, streamed and audited by `export_stream.py`).

Who may read: a signed-in user, an enrolled display or an anonymous visitor where the deployment
allows one (the access guard resolves them and `?scope=` before the route runs: `READ_PREFIXES`
are its read routes, which it refuses cross-site), or a script with an **admin** API key
(`X-API-Key`), which reads the whole city. Ingest keys may not read: a camera platform or a
hotline feed sends events and has no business reading every case back. A case outside the
reader's area answers as an unknown one (404), so nobody learns that it exists elsewhere.

Who may export: a signed-in user (any role) or an admin key (`EXPORTERS`). A file names handlers
and workers, so a display (a screen in a room anyone walks into) and an anonymous visitor get
403 there, although both read the pages and the case API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import parse_qs

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI, Header, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response

from data_sources.access.guard import current_access, scope_param
from data_sources.access.keys import KeyRole
from data_sources.access.model import Permission, Principal, Scope
from data_sources.access.scope import NoHierarchy, resolve_scope
from data_sources.api_schema import ERROR, case_detail_schema, error_responses
from data_sources.cases.detail import load_case_detail
from data_sources.cases.export import ExportFormat, Lang
from data_sources.cases.export_stream import (
    EXPORTS_PER_PRINCIPAL,
    EXPORTS_PER_PROCESS,
    XLSX_MAX_ROWS,
    Export,
    ExportAsk,
    ExportSlots,
    exports,
    stream_export,
)
from data_sources.cases.filters import MAX_SEARCH, CaseFilter, FilterError, FollowUp, Period
from data_sources.cases.query import Sort, SortKey
from data_sources.events import ID_PATTERN
from data_sources.model import CaseStatus, Category, Channel
from data_sources.services import Services

#: The paths of the read routes, for `AccessGuard(read_prefixes=…)`.
READ_PREFIXES = ("/api/v1/cases", "/api/v1/export")
#: At most this many query parameters (a filter has a dozen).
MAX_PARAMETERS = 50
#: The principal kinds that may export: a signed-in user, an admin key (`reader` checks its role).
EXPORTERS = frozenset({"user", "key"})


# ---------------------------------------------------------------- who reads which area


def query_text(request: Request) -> str:
    raw = request.scope.get("query_string", b"")
    return raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)


def reader(request: Request, api_key: str | None, services: Services) -> tuple[Principal, Scope]:
    """Who reads, and the area `?scope=` names for them.

    Raises:
        HTTPException: 401/403 for a missing, unknown or non-admin key; 503 before any
            hierarchy is loaded.
        AccessError: 401 without a principal, 404/403 for the scope (the app answers JSON).
    """
    if api_key is None:
        access = current_access()  # the guard's (401 when it did not run: fail closed)
        if access.scope is None:
            raise HTTPException(503, "no hierarchy is loaded yet")
        return access.principal, access.scope
    key = services.keys.require(api_key, KeyRole.ADMIN)
    directory = services.directory
    if directory.root_id is None:
        raise HTTPException(503, "no hierarchy is loaded yet")
    city = directory.codes[directory.root_id]
    principal = Principal("key", key.source, city, frozenset({Permission.READ}), key.id)
    try:
        return principal, resolve_scope(directory, scope_param(query_text(request)), principal)
    except NoHierarchy:
        raise HTTPException(503, "no hierarchy is loaded yet") from None


# ---------------------------------------------------------------- the parameters, documented

_ONE_OF = "One of: {}."
_LIST_OF = "Comma-separated, any of: {}."


def _parameter(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _values(kind: Any) -> str:
    return ", ".join(member.value for member in kind)


#: What `filters._flag` takes (a schema no wider or narrower: Schemathesis checks both ways).
_FLAG = {"type": "string", "enum": ["", "0", "1", "false", "true"]}
_SCOPE = _parameter("scope", "Area code (default: the reader's own area).")
_FILTER = [
    _parameter(
        "period",
        "Reported in: " + _ONE_OF.format(_values(Period)) + " Default 30d.",
        {"type": "string", "enum": ["", *(p.value for p in Period)]},
    ),
    _parameter("from", "First local day (YYYY-MM-DD) of period=custom."),
    _parameter("to", "Last local day (YYYY-MM-DD) of period=custom, inclusive."),
    _parameter("category", _LIST_OF.format(_values(Category))),
    _parameter("channel", _LIST_OF.format(_values(Channel))),
    _parameter("status", _LIST_OF.format(_values(CaseStatus))),
    _parameter("overdue", "1: open cases past their due time only.", _FLAG),
    _parameter("supervised", "1: supervised (督办) cases only.", _FLAG),
    _parameter("q", f"Case number, title or place (at most {MAX_SEARCH} characters)."),
    _parameter(
        "follow",
        "A follow-up list: " + _ONE_OF.format(_values(FollowUp)),
        {"type": "string", "enum": ["", *(f.value for f in FollowUp)]},
    ),
    _parameter("sort", f"A column, '-' in front for descending: {_values(SortKey)}."),
]
_LANG = _parameter(
    "lang", "Headers and labels: zh or en.", {"type": "string", "enum": ["", "zh", "en"]}
)
#: Each export's parameters, by its slug. The alarm history takes the time range (over when an
#: alarm was raised) and the search (its id, its camera's code or name); the worker list only
#: the area and the language.
_PARAMETERS = {
    "cases": [_SCOPE, *_FILTER, _LANG],
    "alarms": [
        _SCOPE,
        *(p for p in _FILTER if p["name"] in ("period", "from", "to")),
        _parameter("q", f"Alarm id, camera code or name (at most {MAX_SEARCH} characters)."),
        _LANG,
    ],
    "workers": [_SCOPE, _LANG],
}
_JSON_ERROR = {"application/json": {"schema": ERROR}}
_TOO_MANY: dict[str, Any] = {
    "description": f"An export of this reader's is still running ({EXPORTS_PER_PRINCIPAL} at a "
    f"time), or {EXPORTS_PER_PROCESS} of everyone's: retry after `Retry-After` seconds.",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    "content": _JSON_ERROR,
}
_TOO_LARGE: dict[str, Any] = {
    "description": f"More than {XLSX_MAX_ROWS:,} rows: narrow the filter, or export CSV.",
    "content": _JSON_ERROR,
}


# ---------------------------------------------------------------- an export's request


def _filter_problem(exc: FilterError) -> JSONResponse:
    """400, located as FastAPI locates a parameter's problem."""
    problem = {"loc": ["query", exc.field], "msg": exc.reason, "type": "value_error"}
    return JSONResponse({"detail": [problem]}, status_code=400)


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if values and len(values) > 1:
        raise FilterError(name, "given more than once")
    return values[0] if values else None


def export_request(
    query_string: str, default_lang: str, *, now: datetime, tz: tzinfo
) -> tuple[CaseFilter, Sort, Lang]:
    """The filter, sort and language an export's query string asks for, its time range one that
    has instants at `now` (every table's query starts from it). Raises `FilterError`."""
    try:
        query = parse_qs(query_string, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
    except ValueError:
        raise FilterError("query", f"at most {MAX_PARAMETERS} parameters") from None
    asked = _one(query, "lang") or default_lang
    if asked not in ("zh", "en"):
        raise FilterError("lang", "zh or en")
    lang: Lang = "en" if asked == "en" else "zh"
    filt = CaseFilter.from_query(query)
    sort = Sort.from_query(_one(query, "sort"))
    try:
        filt.window(now=now, tz=tz)
    except (OverflowError, ValueError):
        raise FilterError(_out_of_range(filt, now, tz), "a date out of range") from None
    return filt, sort, lang


def _out_of_range(filt: CaseFilter, now: datetime, tz: tzinfo) -> str:
    """Which end of a custom range has no instant ("from" near year 1, "to" near 9999)."""
    if filt.start is None:
        return "period"
    try:
        CaseFilter(period=Period.CUSTOM, start=filt.start, end=filt.start).window(now=now, tz=tz)
    except (OverflowError, ValueError):
        return "from"
    return "to"


# ---------------------------------------------------------------- the routes


def case_router(services: Services) -> APIRouter:
    """The case API and the exports (sharing one set of `ExportSlots`)."""
    router = APIRouter(prefix="/api/v1", tags=["cases"])

    @router.get(
        "/cases/{case_id}",
        responses={
            200: {
                "description": "The case, its timeline and its stages.",
                "content": {"application/json": {"schema": case_detail_schema()}},
            },
            **error_responses(401, 403, 404, 422, 503),
        },
        response_class=JSONResponse,
        openapi_extra={"parameters": [_SCOPE]},
    )
    async def case_detail(
        request: Request,
        case_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=64)],
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> Response:
        """A case in full: facts, place, handler, linked alarm, timeline, stages against their
        limits, supervision. 404 for a case that does not exist or lies outside the area."""
        _, area = reader(request, x_api_key, services)

        def load() -> dict[str, Any] | None:
            with services.sessions() as session:
                found = load_case_detail(
                    session=session,
                    case_id=case_id,
                    scope=area,
                    now=services.clock(),
                    tz=services.tz,
                    calendar=services.calendar,
                )
            return None if found is None else found.to_json()

        detail = await anyio.to_thread.run_sync(load)
        if detail is None:
            raise HTTPException(404, "no such case")
        return JSONResponse(detail)

    slots = ExportSlots()
    for export, fmt in ((e, f) for e in exports(services) for f in ExportFormat):
        slug = export.table.slug
        limits: dict[int | str, Any] = {429: _TOO_MANY}
        if fmt is ExportFormat.XLSX:
            limits[413] = _TOO_LARGE
        router.add_api_route(
            f"/export/{slug}.{fmt.value}",
            _export_endpoint(services, slots, export, fmt),
            methods=["GET"],
            name=f"export_{slug}_{fmt.value}",
            summary=f"Export the {slug} table as {fmt.value.upper()}",
            response_class=Response,
            responses={
                200: {
                    "description": "The file, streamed (Content-Disposition: attachment).",
                    "content": {
                        fmt.media_type.partition(";")[0]: {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                **error_responses(400, 401, 403, 404, 503),
                **limits,
            },
            openapi_extra={"parameters": _PARAMETERS[slug]},
        )
    return router


def _export_endpoint(
    services: Services, slots: ExportSlots, exported: Export[Any], fmt: ExportFormat
) -> Callable[..., Awaitable[Response]]:
    async def export(
        request: Request, x_api_key: Annotated[str | None, Header()] = None
    ) -> Response:
        """The rows of the filter in the area, in the table's order and columns; audited with
        the row count when the stream ends (or the client leaves)."""
        principal, area = reader(request, x_api_key, services)
        if principal.kind not in EXPORTERS:
            raise HTTPException(403, "exports need a signed-in account")
        now = services.clock()
        try:
            filt, sort, lang = export_request(
                query_text(request), services.settings.default_lang, now=now, tz=services.tz
            )
        except FilterError as exc:
            return _filter_problem(exc)
        client = request.client.host if request.client else None
        ask = ExportAsk(principal, area, filt, sort, lang, now, client)
        return await stream_export(services, slots, exported, fmt, ask)

    return export


def register_case_routes(server: FastAPI, services: Services) -> None:
    """The case API and the exports on `server` (the guard must list `READ_PREFIXES`)."""
    server.include_router(case_router(services))
