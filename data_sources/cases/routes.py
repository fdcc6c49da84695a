"""The case API (issue 11): `GET /api/v1/cases/{case_id}` (a case in full, as its page shows it)
and `GET /api/v1/export/{cases,alarms,workers}.csv|.xlsx` (the laptop view's tables with their
filter, streamed and audited).

Who may read: a signed-in user, an enrolled display or an anonymous visitor where the deployment
allows one (the access guard resolves them and `?scope=` before the route runs: `READ_PREFIXES`
are its read routes), or a script with an **admin** API key (`X-API-Key`), which reads the whole
city. Ingest keys may not read: a camera platform or a hotline feed sends events and has no
business reading every case back. A case outside the reader's area answers as an unknown one
(404), so nobody learns that it exists elsewhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import parse_qs

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI, Header, HTTPException, Path, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from data_sources.access.guard import current_access, scope_param
from data_sources.access.keys import KeyRole
from data_sources.access.model import Permission, Principal, Scope
from data_sources.access.scope import NoHierarchy, resolve_scope
from data_sources.alarms import export as alarm_export
from data_sources.api_schema import case_detail_schema, error_responses
from data_sources.cases.detail import load_case_detail
from data_sources.cases.export import (
    CASES,
    ExportFormat,
    ExportProgress,
    Lang,
    Table,
    content_disposition,
    csv_chunks,
    export_filename,
    xlsx_chunks,
)
from data_sources.cases.filters import MAX_SEARCH, CaseFilter, FilterError, FollowUp, Period
from data_sources.cases.query import Sort, SortKey, iter_cases
from data_sources.events import ID_PATTERN
from data_sources.model import CaseStatus, Category, Channel
from data_sources.schema import NodeRow
from data_sources.services import Services
from data_sources.workers import export as worker_export

#: The paths of the read routes, for `AccessGuard(read_prefixes=…)`.
READ_PREFIXES = ("/api/v1/cases", "/api/v1/export")
#: Cases per query of an export (`iter_cases`' keyset pages).
EXPORT_PAGE = 2_000
#: At most this many query parameters (a filter has a dozen).
MAX_PARAMETERS = 50
T = TypeVar("T")


# ---------------------------------------------------------------- who reads which area


def _query_text(request: Request) -> str:
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
        return principal, resolve_scope(directory, scope_param(_query_text(request)), principal)
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
#: The alarm history takes the time range (over when an alarm was raised) and the search (its
#: id, its camera's code or name); the worker list only the area and the language.
_ALARM_FILTER = [p for p in _FILTER if p["name"] in ("period", "from", "to")] + [
    _parameter("q", f"Alarm id, camera code or name (at most {MAX_SEARCH} characters).")
]


def _filter_problem(exc: FilterError) -> JSONResponse:
    """400, located as FastAPI locates a parameter's problem."""
    problem = {"loc": ["query", exc.field], "msg": exc.reason, "type": "value_error"}
    return JSONResponse({"detail": [problem]}, status_code=400)


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if values and len(values) > 1:
        raise FilterError(name, "given more than once")
    return values[0] if values else None


def export_request(query_text: str, default_lang: str) -> tuple[CaseFilter, Sort, Lang]:
    """The filter, sort and language an export's query string asks for. Raises `FilterError`."""
    try:
        query = parse_qs(query_text, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
    except ValueError:
        raise FilterError("query", f"at most {MAX_PARAMETERS} parameters") from None
    asked = _one(query, "lang") or default_lang
    if asked not in ("zh", "en"):
        raise FilterError("lang", "zh or en")
    lang: Lang = "en" if asked == "en" else "zh"
    return CaseFilter.from_query(query), Sort.from_query(_one(query, "sort")), lang


# ---------------------------------------------------------------- a streamed, audited export


class ExportResponse(StreamingResponse):
    """A file streamed from a blocking generator, each step in a worker thread (the event loop
    stays free for the live streams); `finish(outcome, rows)` runs once the body has begun: "ok"
    when all of it went out, "aborted" when the client left, "failed" on an error. The generator
    is closed in any case (its `finally`: a session returned, a temporary file deleted)."""

    def __init__(
        self,
        chunks: Generator[bytes],
        *,
        progress: ExportProgress,
        finish: Callable[[str, int], Awaitable[None]],
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        self.chunks = chunks
        self.progress = progress
        self.finish = finish
        self.started = False
        super().__init__(self._body(), media_type=media_type, headers=headers)

    async def _body(self) -> AsyncIterator[bytes]:
        self.started = True
        while (chunk := await anyio.to_thread.run_sync(next, self.chunks, None)) is not None:
            if chunk:  # b"": the XLSX is still being written (a point to stop at)
                yield chunk

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        outcome = "aborted"
        try:
            await super().__call__(scope, receive, send)
            if self.progress.finished:
                outcome = "ok"
        except Exception:
            outcome = "failed"
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.chunks.close)
                if self.started:  # (a HEAD never starts the body: nothing was exported)
                    await self.finish(outcome, self.progress.rows)


# ---------------------------------------------------------------- the exported tables


@dataclass(frozen=True, slots=True)
class Export(Generic[T]):
    """A table of the laptop view as a file: its columns, its rows for an area, filter and sort
    at an instant (a blocking iterator, read in chunks), and its query parameters."""

    table: Table[T]
    rows: Callable[[Scope, CaseFilter, Sort, datetime, tzinfo], Iterator[T]]
    parameters: list[dict[str, Any]]


def exports(services: Services) -> list[Export[Any]]:
    """The case table, the alarm history and the worker list."""
    sessions = services.sessions

    def cases(area: Scope, filt: CaseFilter, sort: Sort, now: datetime, tz: tzinfo) -> Any:
        return iter_cases(
            session_factory=sessions,
            scope=area,
            filt=filt,
            now=now,
            tz=tz,
            sort=sort,
            chunk=EXPORT_PAGE,
        )

    def alarms(area: Scope, filt: CaseFilter, _sort: Sort, now: datetime, tz: tzinfo) -> Any:
        return alarm_export.export_rows(
            session_factory=sessions, scope=area, filt=filt, now=now, tz=tz, chunk=EXPORT_PAGE
        )

    def workers(area: Scope, filt: CaseFilter, _sort: Sort, now: datetime, tz: tzinfo) -> Any:
        return worker_export.export_rows(
            session_factory=sessions, scope=area, filt=filt, now=now, tz=tz
        )

    return [
        Export(CASES, cases, [_SCOPE, *_FILTER, _LANG]),
        Export(
            Table(alarm_export.SLUG, alarm_export.NAME, alarm_export.COLUMNS),
            alarms,
            [_SCOPE, *_ALARM_FILTER, _LANG],
        ),
        Export(
            Table(worker_export.SLUG, worker_export.NAME, worker_export.COLUMNS),
            workers,
            [_SCOPE, _LANG],
        ),
    ]


# ---------------------------------------------------------------- the routes


def case_router(services: Services) -> APIRouter:
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

    for export, fmt in ((e, f) for e in exports(services) for f in ExportFormat):
        slug = export.table.slug
        router.add_api_route(
            f"/export/{slug}.{fmt.value}",
            _export_endpoint(services, export, fmt),
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
            },
            openapi_extra={"parameters": export.parameters},
        )
    return router


def _export_endpoint(
    services: Services, exported: Export[Any], fmt: ExportFormat
) -> Callable[..., Awaitable[Response]]:
    table = exported.table

    async def export(
        request: Request, x_api_key: Annotated[str | None, Header()] = None
    ) -> Response:
        """The rows of the filter in the area, in the table's order and columns; audited with
        the row count when the stream ends (or the client leaves)."""
        principal, area = reader(request, x_api_key, services)
        try:
            filt, sort, lang = export_request(_query_text(request), services.settings.default_lang)
        except FilterError as exc:
            return _filter_problem(exc)
        now, tz = services.clock(), services.tz

        def area_name() -> str:
            with services.sessions() as session:
                node = session.get(NodeRow, area.id)
            if node is None:
                return area.code
            return node.name_en if lang == "en" else node.name_zh

        day = now.replace(tzinfo=UTC).astimezone(tz).date().isoformat()
        name, fallback = export_filename(
            area_name=await anyio.to_thread.run_sync(area_name),
            area_code=area.code,
            day=day,
            fmt=fmt,
            lang=lang,
            table=table,
        )
        progress = ExportProgress()
        rows = exported.rows(area, filt, sort, now, tz)
        chunks = (
            csv_chunks(rows, table=table, lang=lang, tz=tz, progress=progress)
            if fmt is ExportFormat.CSV
            else xlsx_chunks(rows, table=table, lang=lang, tz=tz, progress=progress)
        )
        client = request.client.host if request.client else None

        async def finish(outcome: str, count: int) -> None:
            await services.audit(
                principal,
                f"export.{table.slug}",
                outcome,
                scope_code=area.code,
                target=f"{table.slug}.{fmt.value}",
                detail={
                    "format": fmt.value,
                    "filter": filt.to_query(),
                    "sort": sort.to_query(),
                    "lang": lang,
                    "rows": count,
                },
                client=client,
            )

        return ExportResponse(
            chunks,
            progress=progress,
            finish=finish,
            media_type=fmt.media_type,
            headers={
                "Content-Disposition": content_disposition(name, fallback),
                "Cache-Control": "no-store",
            },
        )

    return export


def register_case_routes(server: FastAPI, services: Services) -> None:
    """The case API and the exports on `server` (the guard must list `READ_PREFIXES`)."""
    server.include_router(case_router(services))
