"""Every malformed request gets a 4xx with a reason, never a 500 (issue 9, finding 5 and 6).

Each test reproduces one finding: JSON nested 1,000 and 100,000 deep (RecursionError), a
`Last-Event-ID` of `<life>-²³` or a 4,301-digit number (ValueError), Dash callback bodies the
callbacks or Dash itself indexed blindly, a 200 MB body read whole before its 413, and unknown
paths answered with the page (200). The body limits are proven against a real uvicorn server:
it answers 413 while the client is still sending, and its memory does not grow by the body.
"""

from __future__ import annotations

import http.client
import json
import select
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from dash._utils import split_callback_id
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from app import create_app
from data_sources import db
from data_sources.access.keys import add_key
from data_sources.alarm_actions import ACK_MAX_BODY_BYTES
from data_sources.body import MAX_DEPTH, BadInput, parse_json
from data_sources.seed.city import seed_city
from data_sources.settings import Settings
from data_sources.web import DASH_MAX_BODY_BYTES, callback_problem
from layouts import ids

from .browser import Server
from .conftest import AS_OF, CITY, TZ, add_account, sign_in
from .test_hub import make

SCOPE = "530126"  # 石林, the smallest district: seeds in a moment
KEY = {"X-API-Key": "bad-input-key"}
JSON = {"Content-Type": "application/json"}
DASH = "/_dash-update-component"


@pytest.fixture(scope="module")
def city_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('bad_input') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=[SCOPE], days=1, cases_per_day=200)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def admin(city_url: str) -> dict[str, str]:
    """The header of an admin key (dead letters are the admins'; GRIDCC_API_KEYS seeds ingest keys)."""
    engine = db.make_engine(city_url)
    with Session(engine) as session, session.begin():
        key = add_key(session=session, source="ops", role="admin", now=AS_OF, created_by="tests")
    engine.dispose()
    return {"X-API-Key": key}


@pytest.fixture(scope="module")
def client(city_url: str, admin: dict[str, str]) -> Iterator[TestClient]:  # noqa: ARG001
    """Signed in as an operator of the city: the wall's action callback is reached. (The admin
    key is made first: the app's key ring caches the keys it loaded for 2 s.)"""
    add_account(city_url, "qa-operator", "operator", CITY)
    # The render rate limit is another test's subject: here every odd request must reach its callback.
    settings = Settings(
        database_url=city_url,
        api_keys={"tests": KEY["X-API-Key"]},
        render_rate=1000,
        render_burst=1000,
    )
    app = create_app(settings)
    # A 500 must show up as a status, not as the server's exception re-raised in the test.
    with TestClient(app, raise_server_exceptions=False) as test_client:
        sign_in(test_client, "qa-operator")
        yield test_client


@pytest.fixture(scope="module")
def server(city_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real uvicorn on a copy of the city (SQLite: not shared with the in-process app)."""
    copy = tmp_path_factory.mktemp("bad_input_server") / "city.db"
    shutil.copy(city_url.removeprefix("sqlite:///"), copy)
    live = Server(f"sqlite:///{copy}", GRIDCC_API_KEYS=json.dumps({"tests": KEY["X-API-Key"]}))
    live.start()
    try:
        yield live
    finally:
        live.stop()


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


# ---------------------------------------------------------------- JSON depth and encoding


@pytest.mark.parametrize("levels", [1_000, 100_000])
@pytest.mark.parametrize("route", ["/api/v1/events", "/api/v1/alarms/AL-1/acknowledge", DASH])
def test_json_nested_deeper_than_the_limit_is_400_with_the_reason(
    client: TestClient, route: str, levels: int
) -> None:
    response = client.post(route, content=nested(levels), headers={**KEY, **JSON})
    over_size = (2 * levels > ACK_MAX_BODY_BYTES and "alarms" in route) or (
        2 * levels > DASH_MAX_BODY_BYTES and route == DASH
    )
    if over_size:  # over that route's size first
        assert response.status_code == 413, response.text
        return
    assert response.status_code == 400, response.text
    assert f"nesting deeper than {MAX_DEPTH} levels" in response.json()["detail"]


def test_json_at_the_limit_is_parsed_and_past_it_is_not() -> None:
    assert parse_json(nested(MAX_DEPTH)) is not None
    with pytest.raises(BadInput):
        parse_json(nested(MAX_DEPTH + 1))
    # Brackets inside strings are text, not nesting.
    assert parse_json(json.dumps({"title": "[" * 500, "q": '\\"{' * 100}).encode())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[1]".encode("utf-16"), "not UTF-8"),
        (b'{"title": "\xff"}', "not UTF-8"),
        (b'{"lon": NaN}', "NaN is not a JSON number"),
        (b'{"lon": 1e999}', "out of range"),
        (b"[" + b"1" * 4_301 + b"]", "not valid JSON"),
    ],
)
def test_bodies_that_are_not_json_we_take_are_400(
    client: TestClient, body: bytes, reason: str
) -> None:
    response = client.post("/api/v1/events", content=body, headers=KEY)
    assert response.status_code == 400 and reason in response.json()["detail"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(alphabet='[]{}",:\\ 1a-', max_size=300).map(str.encode))
def test_parse_json_refuses_with_bad_input_or_parses(body: bytes) -> None:
    try:
        parse_json(body)
    except BadInput as exc:
        assert exc.status_code == 400


# ---------------------------------------------------------------- Last-Event-ID

LIFE = "0123456789ab"  # the shape of a hub's life: public in every event id


@pytest.mark.parametrize(
    "event_id", [f"{LIFE}-²³", f"{LIFE}-{'1' * 4_301}", "1" * 4_301, "x" * 5, f"{LIFE}-1 OR 1=1"]
)
def test_a_malformed_last_event_id_is_400_by_header_and_by_query(
    server: Server, event_id: str
) -> None:
    """Against a real server with a timeout: a stream that is not refused never ends."""
    # Headers are latin-1 on the wire: "²" is one byte there, and reaches the app as "²".
    asked = [
        (f"/live/stream?scope={SCOPE}", {"Last-Event-ID": event_id.encode("latin-1")}),
        (f"/live/stream?scope={SCOPE}&last={quote(event_id)}", {}),
    ]
    for path, headers in asked:
        status, body = stream_status(server, path, headers)
        assert status == 400, body
        assert b"is not a stream event id" in body


def stream_status(server: Server, path: str, headers: dict[str, Any]) -> tuple[int, bytes]:
    """The status of a GET and the start of its body (a stream's first line or so)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest("GET", path)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read1(4096)
    finally:
        conn.close()


@pytest.mark.parametrize("event_id", [f"{LIFE}-²³", f"{LIFE}-{'9' * 4_301}", f"{LIFE}-{'9' * 19}"])
def test_the_hub_takes_no_resume_point_from_an_absurd_id_and_never_raises(event_id: str) -> None:
    hub, _ = make()
    assert hub.resume_point(event_id.replace(LIFE, hub.life)) is None
    assert hub.resume_point(f"{hub.life}-{'9' * 18}") == 10**18 - 1


def test_a_well_formed_id_of_another_life_still_gets_a_snapshot(server: Server) -> None:
    """Pages reconnect after a restart with the old life's id: that is a snapshot, not a 400."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", f"/live/stream?scope={SCOPE}", headers={"Last-Event-ID": f"{LIFE}-42"})
        response = conn.getresponse()
        assert response.status == 200
        lines = [response.readline() for _ in range(4)]
        assert b"event: snapshot\n" in lines, lines
    finally:
        conn.close()


# ---------------------------------------------------------------- Dash callback bodies


@pytest.fixture(scope="module")
def callbacks(client: TestClient) -> dict[str, dict[str, Any]]:
    """The app's server callbacks as Dash describes them to the page, by their first input."""
    client.get("/")  # Dash sets itself up on its first page
    found = {}
    for dep in client.get("/_dash-dependencies").json():
        if dep.get("clientside_function") is None:
            found[f"{dep['inputs'][0]['id']}.{dep['inputs'][0]['property']}"] = dep
    return found


def envelope(dep: dict[str, Any], *values: Any, state: tuple[Any, ...] = ()) -> dict[str, Any]:
    """A callback request as the Dash renderer sends it, with `values` for the inputs."""

    def deps(specs: list[dict[str, str]], vals: tuple[Any, ...]) -> list[Any]:
        padded = vals + (None,) * (len(specs) - len(vals))  # an input not given: no value yet
        # A pattern matching ALL components is a list of them (none here).
        return [
            [] if '["ALL"]' in spec["id"] else {**spec, "value": v}
            for spec, v in zip(specs, padded, strict=True)
        ]

    inputs = deps(dep["inputs"], values)
    outputs = split_callback_id(dep["output"])  # type: ignore[no-untyped-call]
    if isinstance(outputs, list):  # as the inputs: ALL components are a list (none here)
        outputs = [[] if '["ALL"]' in o["id"] else o for o in outputs]
    return {
        "output": dep["output"],
        "outputs": outputs,
        "inputs": inputs,
        "state": deps(dep["state"], state),
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in inputs if isinstance(i, dict)][:1],
    }


def post_dash(client: TestClient, body: Any) -> Any:
    return client.post(DASH, content=json.dumps(body), headers=JSON)


ACTION = f"{ids.Wall.ALARM_ACTION}.data"
WALL_RENDER = f"{ids.Wall.URL}.search"


def test_malformed_dash_callback_envelopes_are_400_with_the_reason(
    client: TestClient, callbacks: dict[str, dict[str, Any]]
) -> None:
    action = callbacks[ACTION]
    good = envelope(action, {"alarm": "AL-1", "case": False, "nonce": "1"}, state=("",))
    battery: dict[str, Any] = {
        "a string": "just a string",
        "a list": [good],
        "no output": {k: v for k, v in good.items() if k != "output"},
        "output not a string": {**good, "output": 5},
        "unknown output": {**good, "output": "nowhere.children"},
        "a clientside callback's output": {**good, "output": f"{ids.Wall.URL}.search"},
        "no inputs": {k: v for k, v in good.items() if k != "inputs"},
        "inputs not a list": {**good, "inputs": "x"},
        "too few inputs": {**good, "inputs": []},
        "an input not an object": {**good, "inputs": ["x"]},
        "an input without id": {**good, "inputs": [{"property": "data", "value": 1}]},
        "an input with a list id": {**good, "inputs": [{"id": [1], "property": "data"}]},
        "too many states": {**good, "state": good["state"] * 2},
        "state not a list": {**good, "state": {"id": "x"}},
        "outputs of another component": {**good, "outputs": {"id": "x", "property": "children"}},
        "outputs not a dependency": {**good, "outputs": 7},
        "changedPropIds not strings": {**good, "changedPropIds": [1, {}]},
    }
    answers = {name: post_dash(client, body) for name, body in battery.items()}
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(battery, 400)
    assert all("not a Dash callback request" in r.json()["detail"] for r in answers.values())
    assert post_dash(client, good).status_code == 200  # the same envelope, well formed


def test_dash_bodies_that_are_not_json_or_too_large_are_4xx(client: TestClient) -> None:
    assert client.post(DASH, content=b"{not json", headers=JSON).status_code == 400
    assert client.post(DASH, content=b'{"output": "x"}').status_code == 415  # no content type
    big = b'{"pad": "' + b"x" * DASH_MAX_BODY_BYTES + b'"}'
    assert client.post(DASH, content=big, headers=JSON).status_code == 413
    # Dash's middleware reads the JSON body of any of its paths whole: the same limit applies.
    layout = client.request("GET", "/_dash-layout", content=big, headers=JSON)
    assert layout.status_code == 413


@pytest.mark.parametrize(
    "data",
    ["a string", 5, None, ["AL-1"], {"alarm": 5}, {"alarm": "x\x00y"}, {"alarm": "", "case": 1}],
)
def test_the_walls_action_callback_ignores_what_is_not_an_action(
    client: TestClient, callbacks: dict[str, dict[str, Any]], data: Any
) -> None:
    """The finding: `data` a string was a 500 (`str.get`); now nothing happens (no update)."""
    response = post_dash(client, envelope(callbacks[ACTION], data, state=(42,)))
    assert response.status_code == 200, response.text
    assert response.json()["response"] == {}


@pytest.mark.parametrize("search", [123, ["?scope=1"], {"scope": SCOPE}, True])
def test_page_callbacks_ignore_a_location_that_is_not_a_string(
    client: TestClient, callbacks: dict[str, dict[str, Any]], search: Any
) -> None:
    for name in (WALL_RENDER, f"{ids.Overview.URL}.search", f"{ids.App.URL}.pathname"):
        response = post_dash(client, envelope(callbacks[name], search))
        assert response.status_code < 500, (name, response.text)


def test_a_lone_surrogate_in_a_pages_query_is_no_server_error(
    client: TestClient, callbacks: dict[str, dict[str, Any]]
) -> None:
    """QA of issue 9: `?scope=\\ud800` (valid JSON, not text) made the overview's `urlencode`
    fail, a 500 that Dash did not even log. Now the scope is resolved first: no such area."""
    for name in (WALL_RENDER, f"{ids.Overview.URL}.search"):
        body = envelope(callbacks[name], "?scope=\ud800&lang=en")  # json.dumps: "\\ud800"
        response = post_dash(client, body)
        assert response.status_code == 404, (name, response.text)
        # A language alone (the viewer's own area) renders, surrogate or not.
        body = envelope(callbacks[name], "?lang=\ud800")
        response = post_dash(client, body)
        assert response.status_code == 200, (name, response.text)


def test_a_fastapi_checked_body_is_422_however_odd_its_values(
    client: TestClient, admin: dict[str, str]
) -> None:
    """QA of issue 9: FastAPI's 422 repeats the input, and a lone surrogate or NaN in it made the
    answer itself fail (500); a 20-digit id failed in SQLite's driver (500)."""
    bodies = {
        "/api/v1/alarms/AL-1/acknowledge": [b'{"actor": "\\ud800"}', b'{"\\ud800": 1}'],
        "/api/v1/dead-letters/retry": [
            b'{"ids": ["\\ud800"]}',
            b'{"ids": [99999999999999999999999]}',
            b'{"ids": [9223372036854775808]}',
            b'{"ids": [1e400]}',
        ],
    }
    for route, contents in bodies.items():
        for content in contents:
            response = client.post(route, content=content, headers={**admin, **JSON})
            assert 400 <= response.status_code < 500, (route, content, response.text)
    # Where, as FastAPI says it (list positions stay numbers), and never the input itself.
    odd = client.post("/api/v1/dead-letters/retry", content=b'{"ids": [1, "x"]}', headers=admin)
    assert odd.status_code == 422
    assert odd.json()["detail"][0]["loc"] == ["body", "ids", 1]
    assert "input" not in odd.json()["detail"][0]


def test_the_dead_letter_retry_checks_the_key_before_it_reads_the_body(
    client: TestClient, admin: dict[str, str]
) -> None:
    """QA of issue 9: FastAPI parsed a declared body before the key was checked (5 MB from a wrong
    key held the event loop for 4 s); the key comes first, and the body has a limit."""
    junk = b'{"ids": [' + b"1," * 200_000 + b"1]}"
    wrong = client.post("/api/v1/dead-letters/retry", content=junk, headers={"X-API-Key": "no"})
    assert wrong.status_code == 401, wrong.text
    feed = client.post("/api/v1/dead-letters/retry", content=junk, headers={**KEY, **JSON})
    assert feed.status_code == 403, feed.text  # an ingest key is no admin's
    big = client.post("/api/v1/dead-letters/retry", content=junk, headers={**admin, **JSON})
    assert big.status_code == 413, big.text


def test_a_carousel_period_that_is_no_ascii_number_is_ignored(
    client: TestClient, callbacks: dict[str, dict[str, Any]]
) -> None:
    """`?rotate=²³` passed `str.isdigit` and failed `int` (a 500): it is now no rotation."""
    for rotate in ("²³", "9" * 4_301):
        body = envelope(callbacks[WALL_RENDER], f"?scope={SCOPE}&rotate={rotate}")
        assert post_dash(client, body).status_code == 200


def test_callback_problem_accepts_what_the_renderer_sends(
    callbacks: dict[str, dict[str, Any]], client: TestClient
) -> None:
    dash_app = client.app.state.dash  # type: ignore[attr-defined]
    for dep in callbacks.values():
        body = envelope(dep, *([None] * len(dep["inputs"])), state=(None,) * len(dep["state"]))
        assert callback_problem(body, dash_app.callback_map) is None, dep["output"]


# ---------------------------------------------------------------- body size while streaming


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def request_head(path: str, extra: str) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY['X-API-Key']}\r\n"
    return f"{head}Content-Type: application/json\r\n{extra}\r\n".encode()


def status_of(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_a_declared_200_mb_body_is_refused_before_it_is_sent(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request_head("/api/v1/events", "Content-Length: 200000000\r\n"))
        assert status_of(sock) == 413  # no byte of the body was sent


def test_a_200_mb_chunked_body_is_refused_while_it_streams(server: Server) -> None:
    """No Content-Length: the server counts while it reads and answers 413 past 2 MB, while the
    client is still sending; its memory does not grow by anything like the body."""
    assert server.process is not None
    pid = server.process.pid
    before = rss_kib(pid)
    piece = b"[" + b'"xxxxxxxxxxxxxx",' * 3_800 + b'"x"]'  # 64 kB of valid JSON-ish text
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    sent, total = 0, 200_000_000
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request_head("/api/v1/events", "Transfer-Encoding: chunked\r\n"))
        answered = False
        while sent < total and time.monotonic() - started < 60:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                answered = True
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                answered = True
                break
            sent += len(piece)
        assert answered, "the server read the whole body"
        assert status_of(sock) == 413
    assert sent < 50_000_000, f"{sent} bytes were sent before the 413"
    assert rss_kib(pid) - before < 40_000  # KiB: the 2 MB limit and a few chunks, not 200 MB


# ---------------------------------------------------------------- unknown paths


@pytest.mark.parametrize("path", ["/no/such/page", "/favicon.ico", "/api/v2/events", "/wallx"])
def test_unknown_paths_are_404_html_for_browsers_json_otherwise(
    client: TestClient, path: str
) -> None:
    page = client.get(path, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "页面不存在" in page.text and "Page not found" in page.text and 'href="/"' in page.text
    api = client.get(path, headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    assert client.head(path).status_code == 404
    assert client.post(path, json={}).status_code == 404


def test_pages_docs_and_dash_routes_still_answer(client: TestClient) -> None:
    for path in ("/", "/wall", "/wall/", f"/wall?scope={SCOPE}", f"/?scope={SCOPE}&lang=en"):
        response = client.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 200 and "_dash-config" in response.text, path
    for path in ("/api/docs", "/openapi.json", "/healthz", "/_dash-layout", "/_reload-hash"):
        assert client.get(path).status_code == 200, path
    suites = client.get("/_dash-component-suites/dash/no-such-file.js")
    assert suites.status_code == 404  # was a 500 (Dash's DependencyException)
    wrong_method = client.get("/api/v1/events")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["allow"]


# ---------------------------------------------------------------- the laptop view (issue 11)

FILTERS = f"{ids.Overview.PERIOD}.value"
CASE_ROWS = f"{ids.Overview.CASES}.getRowsRequest"
CLEAN = f"?scope={SCOPE}&lang=en"


@pytest.mark.parametrize(
    "controls",
    [
        ("bogus",),
        ("custom", "2026-99-99", "2026-01-01"),
        ("custom", "2026-02-01", "2026-01-01"),
        ("7d", None, None, ["sanitation", 5, None, {"x": 1}], "noise", 7),
        ("7d", None, None, [], [], ["closed\x00"], "yes", [1], "q" * 10_000, ["overdue"]),
        (None, [], {}, "x", "y", "z", None, None, 42, "nothing"),
    ],
)
def test_the_filter_bar_refuses_what_it_cannot_read_without_a_server_error(
    client: TestClient, callbacks: dict[str, dict[str, Any]], controls: tuple[Any, ...]
) -> None:
    response = post_dash(client, envelope(callbacks[FILTERS], *controls, state=(CLEAN,)))
    assert response.status_code in (200, 204), response.text


@pytest.mark.parametrize(
    "search",
    [
        f"{CLEAN}&period=custom&from=2026-01-01",
        f"{CLEAN}&status=bogus",
        f"{CLEAN}&q=" + "x" * 500,
        f"{CLEAN}&period=7d&period=30d",
        f"{CLEAN}&overdue=maybe",
    ],
)
def test_a_url_with_a_bad_filter_draws_a_notice_not_an_error(
    client: TestClient, callbacks: dict[str, dict[str, Any]], search: str
) -> None:
    render = callbacks[f"{ids.Overview.URL}.search"]
    response = post_dash(client, envelope(render, search))
    assert response.status_code == 200, response.text
    assert "The filter is not valid" in response.text


@pytest.mark.parametrize(
    ("request_", "cursors"),
    [
        (None, None),
        ("rows please", None),
        ({"startRow": -100, "endRow": 0}, None),
        ({"startRow": 1e9}, None),
        ({"startRow": "0"}, None),
        ({"startRow": 50}, None),  # not a block's start
        ({"startRow": 10**12}, None),  # far past what was ever shown: a bounded walk, no rows
        ({"startRow": 100}, {"key": "x", "after": {"100": "not a cursor"}}),
        ({"startRow": 0, "sortModel": [{"colId": "title; drop table", "sort": "asc"}]}, None),
        ({"startRow": 0, "sortModel": "newest"}, [1, 2, 3]),
    ],
)
def test_the_case_table_answers_any_request_for_rows_without_a_server_error(
    client: TestClient, callbacks: dict[str, dict[str, Any]], request_: Any, cursors: Any
) -> None:
    body = envelope(callbacks[CASE_ROWS], request_, state=(CLEAN, cursors))
    response = post_dash(client, body)
    assert response.status_code in (200, 204), response.text


def test_a_tampered_cursor_starts_the_table_again(
    client: TestClient, callbacks: dict[str, dict[str, Any]]
) -> None:
    """A cursor the server did not make (data_sources/cases/query.py refuses it) empties the
    table, which then asks again from the top; nothing else is read with it."""
    key_of = post_dash(client, envelope(callbacks[CASE_ROWS], {"startRow": 0}, state=(CLEAN, None)))
    key = key_of.json()["response"][ids.Overview.CURSORS]["data"]["key"]
    # Block starts that are no numbers (a superscript two is a digit to str.isdigit) are dropped.
    forged = {
        "key": key,
        "after": {"100": "eyJrIjoiaWQiLCJ2IjoiMCIsImlkIjoiMCJ9", "x": "y", "²": "z"},
    }
    body = envelope(callbacks[CASE_ROWS], {"startRow": 100}, state=(CLEAN, forged))
    answer = post_dash(client, body).json()["response"]
    assert answer[ids.Overview.CASES]["getRowsResponse"] == {"rowData": [], "rowCount": 0}
    assert answer[ids.Overview.CURSORS]["data"] == {"key": key, "after": {}}
