"""Issue 10, acceptance 1: who may see and do what, asked directly over HTTP of a real server.

For every page, Dash callback, live stream and API route, and for an anonymous visitor, a display
of street A, a leader of street A, an operator of street A and an admin of the city, the test asks
for street A's data and for street B's, and asserts the status and that no answer to a street-A
principal holds any of street B's data (its code, its name, its communities' codes). The server
requires a login (no `GRIDCC_ANONYMOUS_SCOPE`). The case API and the exports (issue 11) are in the
matrix too.

Also here, on the same server (heartbeat 1 s): a logout, a disabled user and a revoked display end
an open live stream within one heartbeat, and a refused action is audited.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources import db
from data_sources.access import accounts, displays
from data_sources.access.sessions.sql import SqlSessions
from data_sources.schema import AlarmRow, AuditRow, CameraRow, CaseRow, NodeRow
from data_sources.seed.city import seed_city
from layouts import ids

from .browser import KEY, post_event, running_server
from .conftest import AS_OF, CITY, TZ, add_account, sign_in

pytestmark = pytest.mark.browser  # a real server in a subprocess

STREET_A = "530103004"
STREET_B = "530103001"
NOWHERE = "530103999"
PRINCIPALS = ("anonymous", "display", "leader", "operator", "admin")
#: What a refused page is for each principal: the login form for the anonymous visitor.
LOGIN = 303


@dataclass
class City:
    url: str
    display_token: str
    #: Strings that only street B's data holds.
    b_markers: list[str]
    cameras: dict[str, Camera]
    #: A case reported in each street (for `GET /api/v1/cases/{id}`).
    cases: dict[str, str]
    alarm_a: str = "matrix-alarm-a"
    alarm_b: str = "matrix-alarm-b"


@dataclass
class Camera:
    code: str
    node: str


def _camera_in(session: Session, street: str) -> Camera:
    row = session.execute(
        select(CameraRow.code, NodeRow.code.label("node"))
        .join(NodeRow, NodeRow.id == CameraRow.building_id)
        .where(NodeRow.code.startswith(street))
        .order_by(CameraRow.code)
        .limit(1)
    ).one()
    return Camera(row.code, row.node)


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> City:
    url = f"sqlite:///{tmp_path_factory.mktemp('access') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=3, as_of=AS_OF, tz=TZ, districts=["530103"], days=2, cases_per_day=600)
    with Session(engine) as session, session.begin():
        street = {
            code: session.scalars(select(NodeRow).where(NodeRow.code == code)).one()
            for code in (STREET_A, STREET_B)
        }
        communities = session.scalars(
            select(NodeRow.code).where(NodeRow.parent_id == street[STREET_B].id)
        ).all()
        markers = [f'"{STREET_B}"', street[STREET_B].name_zh, *(f'"{c}"' for c in communities)]
        token = displays.add_display(
            session=session, name="wall-a", scope_code=STREET_A, operator=False, now=AS_OF
        )
        cameras = {code: _camera_in(session, code) for code in (STREET_A, STREET_B)}
        cases = {
            code: session.scalars(
                select(CaseRow.id)
                .where(CaseRow.street_id == street[code].id)
                .order_by(CaseRow.id)
                .limit(1)
            ).one()
            for code in (STREET_A, STREET_B)
        }
    engine.dispose()
    add_account(url, "leader-a", "leader", STREET_A)
    add_account(url, "operator-a", "operator", STREET_A)
    add_account(url, "admin", "admin", CITY)
    return City(url, token, markers, cameras, cases | {NOWHERE: "530103999-20261123-00001"})


@pytest.fixture(scope="module")
def server(city: City) -> Iterator[str]:
    env = {
        "GRIDCC_API_KEYS": json.dumps({"tests": KEY}),
        "GRIDCC_ANONYMOUS_SCOPE": "",  # login required
        "GRIDCC_HEARTBEAT_S": "1",
        "GRIDCC_SIMULATE": "false",
    }
    with running_server(city.url, **env) as base:
        # An open alarm in each street, to act on.
        for street, alarm in ((STREET_A, city.alarm_a), (STREET_B, city.alarm_b)):
            camera = city.cameras[street]
            payload = {"alarm_id": alarm, "camera": camera.code, "type": "fire", "severity": 3}
            now = datetime.now(UTC).isoformat()
            event = {"id": f"raise-{alarm}", "kind": "alarm.raised", "ts": now, "node": camera.node}
            post_event(base, event | {"payload": payload})
        engine = db.make_engine(city.url)
        deadline = time.monotonic() + 10
        with Session(engine) as session:
            while session.get(AlarmRow, city.alarm_b) is None:
                assert time.monotonic() < deadline, "the alarms were not projected"
                time.sleep(0.1)
                session.expire_all()
        engine.dispose()
        yield base


def client_of(who: str, base: str, city: City) -> httpx2.Client:
    """A client signed in as `who` (a display: enrolled by its URL), echoing its CSRF token."""
    client = httpx2.Client(base_url=base, timeout=20, follow_redirects=False)
    if who == "display":
        enrolled = client.get(f"/display/{city.display_token}")
        assert enrolled.status_code == 303, enrolled.text
        client.headers["X-CSRFToken"] = client.cookies["_csrf_token"]
    elif who != "anonymous":
        sign_in(client, {"leader": "leader-a", "operator": "operator-a", "admin": "admin"}[who])
    return client


@pytest.fixture(scope="module")
def clients(server: str, city: City) -> Iterator[dict[str, httpx2.Client]]:
    made = {who: client_of(who, server, city) for who in PRINCIPALS}
    yield made
    for client in made.values():
        client.close()


@pytest.fixture(scope="module")
def callbacks(clients: dict[str, httpx2.Client]) -> dict[str, dict[str, Any]]:
    """The app's server callbacks as Dash describes them to a page, by their first output id."""
    found = {}
    for dep in clients["admin"].get("/_dash-dependencies").json():
        if dep.get("clientside_function") is None:
            found[dep["output"].strip(".").split(".")[0]] = dep
    return found


def envelope(dep: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A callback request as Dash's renderer sends it, with `values` by component id."""

    def deps(specs: list[dict[str, str]]) -> list[Any]:
        return [
            [] if '["ALL"]' in spec["id"] else {**spec, "value": values.get(spec["id"])}
            for spec in specs
        ]

    inputs = deps(dep["inputs"])
    first = next(i for i in inputs if isinstance(i, dict))
    outputs = [
        {"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]}
        for o in dep["output"].strip(".").split("...")
    ]
    return {
        "output": dep["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": inputs,
        "state": deps(dep["state"]),
        "changedPropIds": [f"{first['id']}.{first['property']}"],
    }


def readable(text: str) -> str:
    """A body as text to search: JSON (Dash's answers escape every non-ASCII character) decoded."""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return text


def ask(client: httpx2.Client, how: str, target: str, city: City, cbs: dict[str, Any]) -> Any:
    """One request of the matrix; returns (status, body text)."""
    w, o = ids.Wall, ids.Overview
    if how == "page /":
        return client.get(f"/?scope={target}")
    if how == "page /wall":
        return client.get(f"/wall?scope={target}")
    if how == "page /admin":
        return client.get("/admin")
    if how == "callback overview":
        body = envelope(cbs[o.CONTENT], {o.URL: f"?scope={target}"})
    elif how == "callback wall":
        body = envelope(cbs[w.TITLE], {w.URL: f"?scope={target}"})
    elif how == "callback act":  # the alarm of the target street, on that street's wall
        alarm = city.alarm_a if target == STREET_A else city.alarm_b
        action = {"alarm": alarm, "case": False, "nonce": f"n-{time.monotonic_ns()}"}
        body = envelope(cbs[w.ACTION_RESULT], {w.ALARM_ACTION: action, w.URL: f"?scope={target}"})
    elif how == "callback admin":
        body = envelope(cbs[ids.Admin.CONTENT], {ids.Admin.URL: "?lang=zh"})
    elif how == "stream":
        with client.stream("GET", f"/live/stream?scope={target}") as response:
            text = ""
            if response.status_code == 200:
                for line in response.iter_lines():
                    text += line + "\n"
                    if line.startswith("data:"):
                        break
            else:
                text = response.read().decode()
            return response.status_code, text
    elif how == "api acknowledge":
        alarm = city.alarm_a if target == STREET_A else city.alarm_b
        return client.post(f"/api/v1/alarms/{alarm}/acknowledge", json={"create_case": False})
    elif how == "api dead letters":
        return client.get("/api/v1/dead-letters")
    elif how == "case":  # the target street's case (NOWHERE: a case that does not exist)
        return client.get(f"/api/v1/cases/{city.cases[target]}")
    elif how.startswith("export "):
        return client.get(f"/api/v1/export/{how.removeprefix('export ')}?scope={target}")
    else:
        raise AssertionError(how)
    return client.post("/_dash-update-component", json=body)


#: Expected status by (request, target) for anonymous, display, leader, operator, admin.
MATRIX: dict[tuple[str, str], tuple[int, int, int, int, int]] = {
    ("page /", STREET_A): (LOGIN, 200, 200, 200, 200),
    ("page /", STREET_B): (LOGIN, 403, 403, 403, 200),
    ("page /", NOWHERE): (LOGIN, 404, 404, 404, 404),
    ("page /wall", STREET_A): (LOGIN, 200, 200, 200, 200),
    ("page /wall", STREET_B): (LOGIN, 403, 403, 403, 200),
    ("page /wall", NOWHERE): (LOGIN, 404, 404, 404, 404),
    ("page /admin", STREET_A): (LOGIN, 403, 403, 403, 200),
    ("callback overview", STREET_A): (401, 200, 200, 200, 200),
    ("callback overview", STREET_B): (401, 403, 403, 403, 200),
    ("callback overview", NOWHERE): (401, 404, 404, 404, 404),
    ("callback wall", STREET_A): (401, 200, 200, 200, 200),
    ("callback wall", STREET_B): (401, 403, 403, 403, 200),
    ("callback wall", NOWHERE): (401, 404, 404, 404, 404),
    # A display enrolled without --operator and a leader only read.
    ("callback act", STREET_A): (401, 403, 403, 200, 200),
    ("callback act", STREET_B): (401, 403, 403, 403, 200),
    ("callback admin", STREET_A): (401, 403, 403, 403, 200),
    ("stream", STREET_A): (401, 200, 200, 200, 200),
    ("stream", STREET_B): (401, 403, 403, 403, 200),
    ("stream", NOWHERE): (401, 404, 404, 404, 404),
    # The REST APIs take API keys only: a session (or display) cookie is no credential there.
    ("api acknowledge", STREET_A): (401, 401, 401, 401, 401),
    ("api dead letters", STREET_A): (401, 401, 401, 401, 401),
    # The case API reads as the pages do (issue 11): a session, a display or an anonymous
    # visitor where allowed; a case outside the reader's area is as unknown as one that is not.
    ("case", STREET_A): (401, 200, 200, 200, 200),
    ("case", STREET_B): (401, 404, 404, 404, 200),
    ("case", NOWHERE): (401, 404, 404, 404, 404),
    # The exports name handlers and workers: signed-in users only (a display is refused once the
    # guard has resolved its `?scope=`: 403 outside its area, 404 for no area, as everywhere).
    ("export cases.csv", STREET_A): (401, 403, 200, 200, 200),
    ("export cases.csv", STREET_B): (401, 403, 403, 403, 200),
    ("export cases.csv", NOWHERE): (401, 404, 404, 404, 404),
    ("export alarms.xlsx", STREET_A): (401, 403, 200, 200, 200),
    ("export alarms.xlsx", STREET_B): (401, 403, 403, 403, 200),
    ("export alarms.csv", NOWHERE): (401, 404, 404, 404, 404),
    ("export workers.csv", STREET_A): (401, 403, 200, 200, 200),
    ("export workers.xlsx", STREET_B): (401, 403, 403, 403, 200),
    ("export workers.csv", NOWHERE): (401, 404, 404, 404, 404),
}


def test_every_surface_answers_each_principal_as_the_matrix_says_and_leaks_nothing(
    clients: dict[str, httpx2.Client], city: City, callbacks: dict[str, Any]
) -> None:
    got: dict[tuple[str, str], tuple[int, ...]] = {}
    leaks = []
    for (how, target), _expected in MATRIX.items():
        statuses = []
        for who in PRINCIPALS:
            answer = ask(clients[who], how, target, city, callbacks)
            status, text = (
                answer if isinstance(answer, tuple) else (answer.status_code, answer.text)
            )
            statuses.append(status)
            if who in ("display", "leader", "operator"):
                leaks += [(how, target, who, m) for m in city.b_markers if m in text]
        got[(how, target)] = tuple(statuses)
    assert got == MATRIX
    assert leaks == []


def test_the_admin_sees_street_b_that_the_markers_are_real(
    clients: dict[str, httpx2.Client], city: City, callbacks: dict[str, Any]
) -> None:
    """The leak check can fail: the same requests by the admin do carry street B's markers."""
    answer = ask(clients["admin"], "callback overview", STREET_B, city, callbacks)
    assert answer.status_code == 200
    missing = [marker for marker in city.b_markers[:3] if marker not in readable(answer.text)]
    assert missing == []


def test_a_forged_action_is_refused_audited_and_changes_nothing(
    server: str, city: City, callbacks: dict[str, Any]
) -> None:
    leader = client_of("leader", server, city)
    try:
        answer = ask(leader, "callback act", STREET_A, city, callbacks)
        assert answer.status_code == 403
        # Without the CSRF token, even an operator's request is refused.
        operator = client_of("operator", server, city)
        token = operator.headers.pop("X-CSRFToken")
        assert ask(operator, "callback act", STREET_A, city, callbacks).status_code == 403
        operator.headers["X-CSRFToken"] = token
        # As a browser on another site sends it (QA: refused, but not audited).
        cross = {"Origin": "http://localhost:9", "Sec-Fetch-Site": "cross-site"}
        w = ids.Wall
        act = callbacks[w.ACTION_RESULT]
        body = envelope(act, {w.ALARM_ACTION: {"alarm": city.alarm_a}, w.URL: f"?scope={STREET_A}"})
        assert operator.post("/_dash-update-component", json=body, headers=cross).status_code == 403
        # Street B's alarm from street A's wall answers as an unknown id does (QA: a 403 told
        # which ids exist elsewhere), and is refused and audited.
        answers = []
        for alarm in (city.alarm_b, "no-such-alarm"):
            action = {"alarm": alarm, "case": True, "nonce": alarm}
            body = envelope(act, {w.ALARM_ACTION: action, w.URL: f"?scope={STREET_A}"})
            answer = operator.post("/_dash-update-component", json=body)
            answers.append((answer.status_code, "不存在" in readable(answer.text)))
        assert answers == [(200, True), (200, True)]
        operator.close()
    finally:
        leader.close()
    engine = db.make_engine(city.url)
    with Session(engine) as session:
        denied = session.scalars(
            select(AuditRow).where(AuditRow.actor == "leader-a", AuditRow.outcome == "denied")
        ).all()
        assert denied and denied[-1].action == "alarm.acknowledge"
        assert denied[-1].client == "127.0.0.1"
        acted = session.scalars(
            select(AuditRow).where(AuditRow.action == "alarm.acknowledge", AuditRow.outcome == "ok")
        ).all()
        assert {a.actor for a in acted} <= {"operator-a", "admin"}
        alarm = session.get(AlarmRow, city.alarm_b)
        assert alarm is not None and alarm.acknowledged_by in (None, "admin")
        refused = session.scalars(
            select(AuditRow.detail).where(
                AuditRow.actor == "operator-a", AuditRow.outcome == "denied"
            )
        ).all()
        reasons = " ".join(d or "" for d in refused)
        assert "CSRF" in reasons and "cross-site" in reasons and "outside the area" in reasons
    engine.dispose()


def _denied_within(client: httpx2.Client, end: Any, seconds: float = 3.5) -> float:
    """Opens street A's stream, runs `end` once it is open, and returns how long the stream took
    to say `denied` and close after that."""
    with client.stream("GET", f"/live/stream?scope={STREET_A}") as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("event: snapshot"):
                break
        started = time.monotonic()
        end()
        for line in lines:
            if line == "event: denied":
                took = time.monotonic() - started
                assert took < seconds
                return took
    raise AssertionError("the stream ended without saying `denied`")


def test_logout_ends_an_open_stream_within_a_heartbeat(server: str, city: City) -> None:
    leader = client_of("leader", server, city)
    with httpx2.Client(base_url=server, cookies=leader.cookies) as other_tab:
        other_tab.headers["X-CSRFToken"] = leader.cookies["_csrf_token"]

        def logout() -> None:
            assert other_tab.post("/logout").status_code == 303

        _denied_within(leader, logout)
    assert leader.get(f"/wall?scope={STREET_A}").status_code == LOGIN
    leader.close()


def test_disabling_a_user_ends_their_open_stream_within_a_heartbeat(
    server: str, city: City
) -> None:
    add_account(city.url, "leader-gone", "leader", STREET_A)
    leader = httpx2.Client(base_url=server, timeout=20, follow_redirects=False)
    sign_in(leader, "leader-gone")
    engine = db.make_engine(city.url)

    def disable() -> None:
        with Session(engine) as session, session.begin():
            accounts.disable_user(
                session=session, store=SqlSessions(), name="leader-gone", now=AS_OF
            )

    _denied_within(leader, disable)
    assert leader.get(f"/wall?scope={STREET_A}").status_code == LOGIN
    engine.dispose()
    leader.close()


def test_a_revoked_display_closes_its_stream_and_shows_display_disabled(
    server: str, city: City
) -> None:
    engine = db.make_engine(city.url)
    with Session(engine) as session, session.begin():
        token = displays.add_display(
            session=session, name="wall-revoked", scope_code=STREET_A, operator=False, now=AS_OF
        )
    wall = httpx2.Client(base_url=server, timeout=20, follow_redirects=False)
    assert wall.get(f"/display/{token}").status_code == 303

    def revoke() -> None:
        with Session(engine) as session, session.begin():
            assert displays.revoke_display(session=session, name="wall-revoked", now=AS_OF)

    _denied_within(wall, revoke)
    page = wall.get(f"/wall?scope={STREET_A}")
    assert page.status_code == 403 and "显示终端已停用" in page.text
    assert STREET_A not in page.text  # neutral: no area, no data
    engine.dispose()
    wall.close()


def test_every_answer_carries_the_security_headers(server: str) -> None:
    """Pages, refusals, 404s, the API, static files, the login page and a stream's HEAD."""
    with httpx2.Client(base_url=server, timeout=20, follow_redirects=False) as anonymous:
        answers = [
            anonymous.get("/"),  # → the login page
            anonymous.get("/login"),
            anonymous.get("/no/such/page", headers={"Accept": "text/html"}),
            anonymous.post("/api/v1/events", json={}),
            anonymous.get("/assets/live.js"),
            anonymous.get("/vendor/bootstrap/css/bootstrap.min.css"),
            anonymous.head(f"/live/stream?scope={STREET_A}"),
            anonymous.get("/healthz"),
        ]
    for answer in answers:
        headers = answer.headers
        where = f"{answer.request.method} {answer.request.url.path} ({answer.status_code})"
        assert "frame-ancestors 'self'" in headers.get("content-security-policy", ""), where
        assert headers.get("x-content-type-options") == "nosniff", where
        assert headers.get("referrer-policy") == "same-origin", where
        assert headers.get("x-frame-options") == "SAMEORIGIN", where
    assert [a.status_code for a in answers] == [303, 200, 404, 401, 200, 200, 401, 200]
