"""How an export becomes a file (issue 11): limits, checks, then a streamed, audited answer.
`routes.py` has the routes (`GET /api/v1/export/{cases,alarms,workers}.{csv,xlsx}`) and reads the
request; `stream_export` does the rest.

Before the `200` goes out, everything that can fail has run: the filter's time range was checked
when the request was read (`CaseFilter.window`: a date near year 1 or 9999 overflows), and here
an XLSX's rows are counted, the first rows read and the area's name looked up. A bad request is
a 4xx and a failing query a 5xx, never a `200` whose file is cut short.

Limits. An export holds a worker thread and, page by page, a database connection for as long as
its client reads (a year of a million cases takes minutes):
- `EXPORTS_PER_PRINCIPAL` running exports per user, display or key name and
  `EXPORTS_PER_PROCESS` in all: over either → 429 with `Retry-After`, before any query runs. The
  slot is given back when the last byte is handed on, when the client leaves, and on an error.
- An XLSX has at most `XLSX_MAX_ROWS` rows, counted first: XlsxWriter writes the whole file to
  a temporary file before its first byte can go (a zip's directory comes last), so the client
  waits in silence while the disk takes the file. Over it → 413 naming the count; a CSV
  streams as it is read and has no limit.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from itertools import chain, islice
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from data_sources.access.model import Principal, Scope
from data_sources.alarms import export as alarm_export
from data_sources.alarms.history import alarm_count, alarm_filter
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
from data_sources.cases.filters import CaseFilter
from data_sources.cases.query import Sort, case_count, iter_cases
from data_sources.schema import NodeRow
from data_sources.services import Services
from data_sources.workers import export as worker_export

#: Rows per query of an export (`iter_cases`' and `iter_alarms`' keyset pages).
EXPORT_PAGE = 2_000
#: The most rows an XLSX export holds (more: 413, export CSV). Measured (bench/bench_export.py,
#: PostgreSQL, 1 M cases): ~7,000 rows/s, so 199,029 rows wait 28.6 s for their first byte and
#: make a 17 MB file, the server's peak RSS flat (+1.5 MiB); twice that would near a minute, where
#: proxies' read timeouts (nginx: 60 s) cut the silent answer.
XLSX_MAX_ROWS = 200_000
#: Exports one principal may run at once: a second click while the first file still streams
#: waits for it (429) instead of doubling the work.
EXPORTS_PER_PRINCIPAL = 1
#: Exports this process runs at once, everyone's together: each holds a worker thread and, page
#: by page, a connection of the pool the pages and the live view share.
EXPORTS_PER_PROCESS = 2
#: `Retry-After` of a refused export, in seconds.
RETRY_AFTER_S = 10
T = TypeVar("T")


# ---------------------------------------------------------------- how many run at once


class ExportsBusy(Exception):
    """An export refused for the exports already running (429)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def response(self) -> JSONResponse:
        return JSONResponse(
            {
                "detail": f"{self.reason}; retry in {RETRY_AFTER_S} s",
                "retry_after_s": RETRY_AFTER_S,
            },
            status_code=429,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )


class ExportSlots:
    """The exports running in one app (one per process): at most `per_principal` of each
    principal's and `total` of everyone's. Taken on the event loop and given back there, under a
    lock all the same (a test's second client runs its own loop)."""

    def __init__(
        self, *, per_principal: int = EXPORTS_PER_PRINCIPAL, total: int = EXPORTS_PER_PROCESS
    ) -> None:
        self.per_principal = per_principal
        self.total = total
        self._lock = threading.Lock()
        self._running: Counter[tuple[str, str]] = Counter()

    def take(self, principal: Principal) -> Callable[[], None]:
        """A slot for `principal`'s export: the function that gives it back (once, however
        often it is called). Raises `ExportsBusy` when none is free."""
        who = (principal.kind, principal.name)
        with self._lock:
            if self._running[who] >= self.per_principal:
                raise ExportsBusy("an export of yours is still running: wait for it to end")
            if self._running.total() >= self.total:
                raise ExportsBusy(f"{self.total} exports are running on this server")
            self._running[who] += 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            with self._lock:
                if not given_back:
                    given_back = True
                    self._running[who] -= 1
                    if self._running[who] <= 0:
                        del self._running[who]

        return give_back


# ---------------------------------------------------------------- a streamed, audited file


class ExportResponse(StreamingResponse):
    """A file streamed from a blocking generator, each step in a worker thread (the event loop
    stays free for the live streams); `finish(outcome, rows)` runs once the body has begun: "ok"
    when all of it went out, "aborted" when the client left, "failed" on an error. The generator
    is closed in any case (its `finally`: a session returned, a temporary file deleted), and
    `release` called: once the last chunk is handed on (before the client sees the end, so that
    its next export finds the slot free), else once the generator is closed."""

    def __init__(
        self,
        chunks: Generator[bytes],
        *,
        progress: ExportProgress,
        finish: Callable[[str, int], Awaitable[None]],
        release: Callable[[], None],
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        self.chunks = chunks
        self.progress = progress
        self.finish = finish
        self.release = release
        self.started = False
        super().__init__(self._body(), media_type=media_type, headers=headers)

    async def _body(self) -> AsyncIterator[bytes]:
        self.started = True
        while (chunk := await anyio.to_thread.run_sync(next, self.chunks, None)) is not None:
            if chunk:  # b"": the XLSX is still being written (a point to stop at)
                yield chunk
        self.release()

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
                try:
                    await anyio.to_thread.run_sync(self.chunks.close)
                finally:
                    self.release()
                if self.started:  # (a HEAD never starts the body: nothing was exported)
                    await self.finish(outcome, self.progress.rows)


# ---------------------------------------------------------------- the exported tables


@dataclass(frozen=True, slots=True)
class Rows(Generic[T]):
    """An export's rows (a blocking iterator, read in chunks) and, where asked for or free, how
    many there are."""

    items: Iterator[T]
    count: int | None = None

    def primed(self) -> Iterator[T]:
        """The rows with the first read now: the first query's errors come before the 200."""
        first = list(islice(self.items, 1))
        return chain(first, self.items)


@dataclass(frozen=True, slots=True)
class Export(Generic[T]):
    """A table of the laptop view as a file: its columns, and its rows for an area, filter and
    sort at an instant (`counted`: with their count)."""

    table: Table[T]
    rows: Callable[[Scope, CaseFilter, Sort, datetime, tzinfo, bool], Rows[T]]


def exports(services: Services) -> list[Export[Any]]:
    """The case table, the alarm history and the worker list."""
    sessions = services.sessions

    def cases(
        area: Scope, filt: CaseFilter, sort: Sort, now: datetime, tz: tzinfo, counted: bool
    ) -> Rows[Any]:
        count = None
        if counted:
            with sessions() as session:
                count = case_count(session=session, scope=area, filt=filt, now=now, tz=tz)
        items = iter_cases(
            session_factory=sessions,
            scope=area,
            filt=filt,
            now=now,
            tz=tz,
            sort=sort,
            chunk=EXPORT_PAGE,
        )
        return Rows(items, count)

    def alarms(
        area: Scope, filt: CaseFilter, _sort: Sort, now: datetime, tz: tzinfo, counted: bool
    ) -> Rows[Any]:
        count = None
        if counted:
            with sessions() as session:
                count = alarm_count(
                    session=session, scope=area, filt=alarm_filter(filt), now=now, tz=tz
                )
        items = alarm_export.export_rows(
            session_factory=sessions, scope=area, filt=filt, now=now, tz=tz, chunk=EXPORT_PAGE
        )
        return Rows(items, count)

    def workers(
        area: Scope, filt: CaseFilter, _sort: Sort, now: datetime, tz: tzinfo, _counted: bool
    ) -> Rows[Any]:
        # One bounded list (≤ roster.MAX_WORKERS), read whole in any case: its length is the count.
        roster = list(
            worker_export.export_rows(
                session_factory=sessions, scope=area, filt=filt, now=now, tz=tz
            )
        )
        return Rows(iter(roster), len(roster))

    return [
        Export(CASES, cases),
        Export(alarm_export.TABLE, alarms),
        Export(worker_export.TABLE, workers),
    ]


# ---------------------------------------------------------------- an export, answered


@dataclass(frozen=True, slots=True)
class ExportAsk:
    """An export request, read and checked by its route: who, which area, what, in which
    language, from where, at which instant."""

    principal: Principal
    area: Scope
    filt: CaseFilter
    sort: Sort
    lang: Lang
    now: datetime
    client: str | None = None


async def stream_export(
    services: Services, slots: ExportSlots, exported: Export[Any], fmt: ExportFormat, ask: ExportAsk
) -> Response:
    """The file `ask` wants, streamed and audited; 429 while `slots` has none free, 413 for an
    XLSX over `XLSX_MAX_ROWS` rows. Errors before the first byte are raised (a 5xx)."""
    try:
        release = slots.take(ask.principal)
    except ExportsBusy as busy:
        return busy.response()
    try:
        prepared = await anyio.to_thread.run_sync(_prepare, services, exported, fmt, ask)
    except BaseException:
        release()
        raise
    if isinstance(prepared, Response):  # refused: nothing was opened
        release()
        return prepared
    name, rows = prepared
    table, tz, progress = exported.table, services.tz, ExportProgress()
    chunks = (
        csv_chunks(rows, table=table, lang=ask.lang, tz=tz, progress=progress)
        if fmt is ExportFormat.CSV
        else xlsx_chunks(rows, table=table, lang=ask.lang, tz=tz, progress=progress)
    )

    async def finish(outcome: str, count: int) -> None:
        await services.audit(
            ask.principal,
            f"export.{table.slug}",
            outcome,
            scope_code=ask.area.code,
            target=f"{table.slug}.{fmt.value}",
            detail={
                "format": fmt.value,
                "filter": ask.filt.to_query(),
                "sort": ask.sort.to_query(),
                "lang": ask.lang,
                "rows": count,
            },
            client=ask.client,
        )

    return ExportResponse(
        chunks,
        progress=progress,
        finish=finish,
        release=release,
        media_type=fmt.media_type,
        headers={"Content-Disposition": content_disposition(*name), "Cache-Control": "no-store"},
    )


def _prepare(
    services: Services, exported: Export[Any], fmt: ExportFormat, ask: ExportAsk
) -> tuple[tuple[str, str], Iterator[Any]] | Response:
    """(the file's name and its ASCII stand-in, its rows with the first read), or the 413 of an
    XLSX over `XLSX_MAX_ROWS` rows. Blocking: SQL."""
    area, lang, now, tz = ask.area, ask.lang, ask.now, services.tz
    xlsx = fmt is ExportFormat.XLSX
    rows = exported.rows(area, ask.filt, ask.sort, now, tz, xlsx)
    if xlsx and rows.count is not None and rows.count > XLSX_MAX_ROWS:
        return JSONResponse(
            {
                "detail": f"{rows.count:,} rows are more than an XLSX export holds "
                f"({XLSX_MAX_ROWS:,}): narrow the filter, or export CSV (no limit)",
                "rows": rows.count,
                "limit": XLSX_MAX_ROWS,
            },
            status_code=413,
        )
    items = rows.primed()
    with services.sessions() as session:
        node = session.get(NodeRow, area.id)
    area_name = area.code if node is None else node.name_en if lang == "en" else node.name_zh
    day = now.replace(tzinfo=UTC).astimezone(tz).date().isoformat()
    name = export_filename(
        area_name=area_name, area_code=area.code, day=day, fmt=fmt, lang=lang, table=exported.table
    )
    return name, items
