"""Issue 11, acceptance 2 (data side): a case's timeline, stages, actors and working times equal
what its events say, on SQLite and PostgreSQL; a case outside the reader's area is as unknown;
`GET /api/v1/cases/{id}` answers the same as `load_case_detail`, for whoever may read it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from app import create_app
from data_sources import db
from data_sources.access.guard import AccessGuard, CallbackPolicies
from data_sources.access.keys import add_key
from data_sources.api_schema import case_detail_schema
from data_sources.cases.detail import CaseDetail, load_case_detail
from data_sources.cases.routes import READ_PREFIXES
from data_sources.cases.sql import is_overdue
from data_sources.cases.stages import STAGE_LIMIT_HOURS, Stage
from data_sources.directory import load_directory
from data_sources.events import EventAdapter
from data_sources.kpi import tally_of_case
from data_sources.model import DUE_WORKING_HOURS, CaseAction, CaseFacts, CaseStatus, Category
from data_sources.projector import project
from data_sources.schema import CameraRow, CaseRow, NodeRow, WorkerRow
from data_sources.seed.city import seed_city
from data_sources.settings import Settings
from data_sources.workhours import CN_CALENDAR, WORK_PERIODS

from .conftest import AS_OF, BACKENDS, TZ, add_account, area, fresh_database_url, sign_in

DISTRICT = "530126"  # 石林, the smallest district: seeds in a moment
NOW = datetime(2026, 11, 20, 2, 0)  # Friday 10:00 in Kunming, after every step below
CASE = "detail-1"
OPEN_CASE = "detail-open"
ALARM = "detail-alarm"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """Naive UTC of a local time on November `day`, 2026 (16th: a Monday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ).astimezone(UTC).replace(tzinfo=None)


#: (event id, action, actor, local time, extra payload) of the case under test, fed shuffled.
STEPS: list[tuple[str, str, str, datetime, dict[str, Any]]] = [
    ("d1-report", "report", "市民张三", local(16, 9, 0), {}),
    ("d1-report-again", "report", "市民张三", local(16, 9, 5), {}),  # ignored: duplicate
    ("d1-accept", "accept", "受理员李四", local(16, 9, 40), {}),
    ("d1-dispatch", "dispatch", "派遣员王五", local(16, 10, 30), {}),
    ("d1-supervise", "supervise", "督办员赵六", local(16, 11, 0), {"note": "请加快办理"}),
    ("d1-handle", "handle", "网格员钱七", local(17, 9, 0), {}),
    ("d1-rework", "rework", "核查员孙八", local(17, 10, 10), {"note": "未清理干净"}),
    ("d1-handle-2", "handle", "网格员钱七", local(17, 15, 0), {}),
    ("d1-close", "close", "核查员孙八", local(17, 16, 0), {"resolved_at": "grid"}),
    ("d1-evaluate", "evaluate", "回访员周九", local(18, 10, 0), {"satisfaction": "satisfied"}),
    ("d1-defer-late", "defer", "派遣员王五", local(18, 11, 0), {}),  # ignored: case closed
]


@dataclass
class City:
    url: str
    engine: Engine
    street_a: str
    street_b: str
    camera: str
    worker: tuple[str, str]  # code, name


def _event(
    event_id: str,
    action: str,
    actor: str,
    at: datetime,
    extra: dict[str, Any],
    node: str,
    case_id: str,
    alarm: str | None = None,
) -> Any:
    ts = at.replace(tzinfo=UTC).isoformat()
    if action == "report":
        payload: dict[str, Any] = {
            "case_id": case_id,
            "channel": "video",
            "category": Category.NOISE.value,
            "title": "夜间施工噪音",
            "lon": 103.3,
            "lat": 24.8,
            "reporter": actor,
        } | ({"alarm_id": alarm} if alarm else {})
        return EventAdapter.validate_python(
            {"id": event_id, "kind": "case.reported", "ts": ts, "node": node, "payload": payload}
        )
    payload = {"case_id": case_id, "action": action, "actor": actor, **extra}
    return EventAdapter.validate_python(
        {"id": event_id, "kind": "case.transitioned", "ts": ts, "node": node, "payload": payload}
    )


@pytest.fixture(scope="module", params=BACKENDS)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[City]:
    """Shilin seeded, plus the case under test (fed shuffled through the projector) at a camera's
    building in street A, with an alarm of that camera linked, and an open case past its limit."""
    url = fresh_database_url(request, tmp_path_factory.mktemp("detail"))
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=[DISTRICT], days=1, cases_per_day=50)
    with Session(engine) as session:
        camera, building, street = session.execute(
            select(CameraRow.code, NodeRow.code, CameraRow.street_id)
            .join(NodeRow, NodeRow.id == CameraRow.building_id)
            .order_by(CameraRow.code)
            .limit(1)
        ).one()
        street_a = session.scalars(select(NodeRow.code).where(NodeRow.id == street)).one()
        street_b = session.scalars(
            select(NodeRow.code).where(NodeRow.level == "street", NodeRow.id != street)
        ).first()
        worker = session.execute(
            select(WorkerRow.id, WorkerRow.code, WorkerRow.name).order_by(WorkerRow.id)
        ).first()
        directory = load_directory(session=session)
    assert street_b is not None and worker is not None
    alarm = EventAdapter.validate_python(
        {
            "id": "d1-alarm-raised",
            "kind": "alarm.raised",
            "ts": local(16, 8, 55).replace(tzinfo=UTC).isoformat(),
            "node": building,
            "payload": {"alarm_id": ALARM, "camera": camera, "type": "crowd", "severity": 2},
        }
    )
    events = [alarm] + [
        _event(i, a, who, at, extra, building, CASE, ALARM if i == "d1-report" else None)
        for i, a, who, at, extra in STEPS
    ]
    events += [
        _event("d2-report", "report", "市民", local(19, 9, 0), {}, building, OPEN_CASE),
        _event("d2-accept", "accept", "受理员", local(19, 9, 30), {}, building, OPEN_CASE),
        _event("d2-dispatch", "dispatch", "派遣员", local(19, 10, 0), {}, building, OPEN_CASE),
    ]
    # Resolved (node → path) as ingest does, then fed in a scrambled order.
    events = [e.model_copy(update={"path": directory.nodes[e.node].path}) for e in events]
    order = [7, 2, 13, 0, 11, 5, 1, 9, 14, 3, 12, 6, 10, 4, 8]
    with Session(engine) as session, session.begin():
        project(
            session, [events[i] for i in order], directory=directory, tz=TZ, calendar=CN_CALENDAR
        )
        session.execute(update(CaseRow).where(CaseRow.id == CASE).values(worker_id=worker.id))
    try:
        yield City(url, engine, street_a, street_b, camera, (worker.code, worker.name))
    finally:
        engine.dispose()


def detail_of(city: City, case_id: str, scope_code: str, now: datetime = NOW) -> CaseDetail | None:
    with Session(city.engine) as session:
        scope = area(session, scope_code)
        return load_case_detail(
            session=session, case_id=case_id, scope=scope, now=now, tz=TZ, calendar=CN_CALENDAR
        )


def working(start: datetime, end: datetime) -> timedelta:
    """Working time between two naive-UTC instants on plain weekdays (written here, apart from
    `workhours`, for a week with no holiday and no 调休)."""
    first, last = start.replace(tzinfo=UTC).astimezone(TZ), end.replace(tzinfo=UTC).astimezone(TZ)
    total, day = timedelta(), first.date()
    while day <= last.date():
        if day.weekday() < 5:
            for begin, finish in WORK_PERIODS:
                low = max(datetime.combine(day, begin, TZ), first)
                high = min(datetime.combine(day, finish, TZ), last)
                total += max(high - low, timedelta())
        day += timedelta(days=1)
    return total


def test_the_week_under_test_is_a_plain_working_week() -> None:
    assert all(CN_CALENDAR.is_workday(date(2026, 11, d)) for d in range(16, 21))


def test_the_timeline_is_every_event_in_order_with_the_ignored_ones_marked(city: City) -> None:
    detail = detail_of(city, CASE, DISTRICT)
    assert detail is not None
    steps = sorted(STEPS, key=lambda s: (s[1] != "report", s[3], s[0]))
    assert [(e.id, e.action.value, e.actor, e.at) for e in detail.timeline] == [
        (i, a, who, at) for i, a, who, at, _ in steps
    ]
    assert [e.seq for e in detail.timeline] == list(range(len(STEPS)))
    assert {e.id for e in detail.timeline if e.ignored} == {"d1-report-again", "d1-defer-late"}
    assert all(
        e.replay_note and e.replay_note.startswith("ignored") for e in detail.timeline if e.ignored
    )
    notes = {e.id: e.note for e in detail.timeline}
    assert notes["d1-supervise"] == "请加快办理" and notes["d1-rework"] == "未清理干净"
    assert [(e.from_status, e.to_status) for e in detail.timeline[2:5]] == [
        (CaseStatus.REPORTED, CaseStatus.ACCEPTED),
        (CaseStatus.ACCEPTED, CaseStatus.DISPATCHED),
        (CaseStatus.DISPATCHED, CaseStatus.DISPATCHED),  # supervision changes no status
    ]
    assert [(s.actor, s.at, s.note) for s in detail.supervision] == [
        ("督办员赵六", local(16, 11), "请加快办理")
    ]


def test_each_stage_runs_from_the_step_that_opens_it_to_the_one_that_ends_it(city: City) -> None:
    detail = detail_of(city, CASE, DISTRICT)
    assert detail is not None
    at = {i: (a, who, when) for i, a, who, when, _ in STEPS}
    # (stage, round, opened by, ended by) — read off the events, not the code under test.
    expected = [
        (Stage.INTAKE, 1, "d1-report", "d1-accept"),
        (Stage.DISPATCH, 1, "d1-accept", "d1-dispatch"),
        (Stage.HANDLING, 1, "d1-dispatch", "d1-handle"),
        (Stage.VERIFICATION, 1, "d1-handle", "d1-rework"),
        (Stage.HANDLING, 2, "d1-rework", "d1-handle-2"),
        (Stage.VERIFICATION, 2, "d1-handle-2", "d1-close"),
        (Stage.EVALUATION, 1, "d1-close", "d1-evaluate"),
    ]
    limits = STAGE_LIMIT_HOURS[Category.NOISE]
    got = [
        (s.stage, s.round, s.start, s.end, s.started_by, s.ended_by, s.outcome, s.working)
        for s in detail.stages
    ]
    assert got == [
        (
            stage,
            n,
            at[opened][2],
            at[ended][2],
            at[opened][1],
            at[ended][1],
            CaseAction(at[ended][0]),
            working(at[opened][2], at[ended][2]),
        )
        for stage, n, opened, ended in expected
    ]
    # 40 min, 50 min, 5 h 30, 1 h 10, 2 h 20, 1 h, 3 h 30 of working time (noise: 8 h in all).
    assert [s.working / timedelta(minutes=1) for s in detail.stages] == [
        40,
        50,
        330,
        70,
        140,
        60,
        210,
    ]
    assert [s.overdue for s in detail.stages] == [s.working > s.limit for s in detail.stages]
    assert [s.stage for s in detail.stages if s.overdue] == [Stage.VERIFICATION]
    assert all(s.limit == timedelta(hours=limits[s.stage]) for s in detail.stages)
    handoffs = limits[Stage.DISPATCH] + limits[Stage.HANDLING] + limits[Stage.VERIFICATION]
    assert handoffs == DUE_WORKING_HOURS[Category.NOISE]


def test_the_case_carries_its_place_handler_alarm_and_limits(city: City) -> None:
    detail = detail_of(city, CASE, city.street_a)
    assert detail is not None
    assert [p.level.value for p in detail.places] == [
        "district",
        "street",
        "community",
        "grid",
        "building",
    ]
    assert detail.places[0].code == DISTRICT and detail.places[1].code == city.street_a
    assert detail.worker is not None and (detail.worker.code, detail.worker.name) == city.worker
    assert detail.alarm is not None
    assert (detail.alarm.id, detail.alarm.camera_code) == (ALARM, city.camera)
    # Closed after its due time: late, but no longer 超期 (an open case's flag, as in the KPIs).
    assert detail.status is CaseStatus.CLOSED and detail.due_at is not None
    assert detail.closed_at is not None and detail.closed_at > detail.due_at
    assert detail.working == working(local(16, 9, 40), local(17, 16))
    assert detail.limit == timedelta(hours=8) and detail.overdue is False
    assert detail.rework_count == 1 and detail.supervised and not detail.deferred


def test_an_open_case_runs_its_stage_to_now_and_is_overdue_as_the_kpis_say(city: City) -> None:
    # Accepted Thursday 09:30 with 8 working hours: due Friday 10:30.
    for now in (local(19, 11), local(20, 10, 29), local(20, 10, 31)):
        detail = detail_of(city, OPEN_CASE, DISTRICT, now)
        assert detail is not None
        handling = detail.stages[-1]
        assert (handling.stage, handling.end, handling.ended_by) == (Stage.HANDLING, None, None)
        assert handling.working == working(local(19, 10), now)
        assert handling.elapsed == now - local(19, 10)
        facts = CaseFacts(
            status=detail.status,
            reported_at=detail.reported_at,
            due_at=detail.due_at,
            deferred=detail.deferred,
        )
        kpi = tally_of_case(facts, now=now).overdue == 1
        sql = is_overdue(
            status=detail.status.value, deferred=detail.deferred, due_at=detail.due_at, now=now
        )
        assert detail.overdue == kpi == sql == (detail.due_at is not None and detail.due_at < now)
        assert detail.overdue == (now == local(20, 10, 31))


def test_a_case_outside_the_area_is_as_unknown(city: City) -> None:
    assert detail_of(city, CASE, city.street_b) is None
    assert detail_of(city, "no-such-case", DISTRICT) is None
    assert detail_of(city, CASE, "530100") is not None  # the city holds every case


def test_its_json_is_utc_and_hours_and_matches_the_documented_schema(city: City) -> None:
    detail = detail_of(city, CASE, DISTRICT)
    assert detail is not None
    body = detail.to_json()
    jsonschema_rs.validate(case_detail_schema(), body)
    assert body["reported_at"] == "2026-11-16T01:00:00Z"
    assert [s["working_hours"] for s in body["stages"]] == [0.67, 0.83, 5.5, 1.17, 2.33, 1.0, 3.5]
    assert body["stages"][0]["limit_hours"] == 1.0 and body["limit_hours"] == 8.0
    assert body["alarm"]["camera"]["code"] == city.camera


# ---------------------------------------------------------------- the REST route


@pytest.fixture(scope="module")
def app(city: City) -> Iterator[Any]:
    """The real app, started, login required (no anonymous reading), its clock at `NOW`."""
    add_account(city.url, "leader-a", "leader", city.street_a)
    add_account(city.url, "leader-b", "leader", city.street_b)
    application = create_app(Settings(database_url=city.url, anonymous_scope=None, simulate=False))
    application.state.services.clock = lambda: NOW
    with TestClient(application):  # its lifespan: services started once for every client
        yield application


def client_as(app: Any, who: str | None) -> TestClient:
    """A client of the running `app`, signed in as `who` (None: nobody)."""
    client = TestClient(app)
    if who is not None:
        sign_in(client, who)
    return client


@pytest.fixture(scope="module")
def keys(city: City) -> dict[str, str]:
    with Session(city.engine) as session, session.begin():
        return {
            role: add_key(
                session=session, source=f"{role}-src", role=role, now=AS_OF, created_by="t"
            )
            for role in ("admin", "ingest")
        }


def test_the_route_answers_what_load_case_detail_says(app: Any, city: City) -> None:
    assert client_as(app, None).get(f"/api/v1/cases/{CASE}").status_code == 401
    answer = client_as(app, "leader-a").get(f"/api/v1/cases/{CASE}")
    assert answer.status_code == 200, answer.text
    expected = detail_of(city, CASE, city.street_a)
    assert expected is not None and answer.json() == expected.to_json()
    assert answer.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/cases/detail-1?scope={b}", 403),  # another area: refused
        ("/api/v1/cases/detail-1?scope=530199999", 404),  # no such area
        ("/api/v1/cases/no-such-case", 404),
        ("/api/v1/cases/bad%20id", 422),
    ],
)
def test_the_route_refuses_as_the_access_model_says(
    app: Any, city: City, path: str, status: int
) -> None:
    leader = client_as(app, "leader-a")
    answer = leader.get(path.format(b=city.street_b))
    assert answer.status_code == status, answer.text
    assert "detail" in answer.json()
    assert leader.post(f"/api/v1/cases/{CASE}").status_code == 405


def test_a_case_of_another_area_answers_as_an_unknown_one(app: Any) -> None:
    """Street B's leader gets the same 404 for street A's case as for a case that is not."""
    other = client_as(app, "leader-b")
    mine, unknown = other.get(f"/api/v1/cases/{CASE}"), other.get("/api/v1/cases/nope")
    assert (mine.status_code, mine.json()) == (unknown.status_code, unknown.json())
    assert mine.status_code == 404


def test_an_admin_key_reads_any_case_an_ingest_key_none(
    app: Any, city: City, keys: dict[str, str]
) -> None:
    client = client_as(app, None)
    admin = client.get(f"/api/v1/cases/{CASE}", headers={"X-API-Key": keys["admin"]})
    assert admin.status_code == 200 and admin.json()["id"] == CASE
    scoped = client.get(
        f"/api/v1/cases/{CASE}?scope={city.street_b}", headers={"X-API-Key": keys["admin"]}
    )
    assert scoped.status_code == 404  # the city's key, asked about street B: not there
    ingest = client.get(f"/api/v1/cases/{CASE}", headers={"X-API-Key": keys["ingest"]})
    assert ingest.status_code == 403
    assert client.get(f"/api/v1/cases/{CASE}", headers={"X-API-Key": "wrong"}).status_code == 401


def test_the_route_is_in_the_openapi_description(app: Any) -> None:
    paths = client_as(app, None).get("/openapi.json").json()["paths"]
    operation = paths["/api/v1/cases/{case_id}"]["get"]
    assert set(operation["responses"]) >= {"200", "401", "403", "404", "422", "503"}
    assert [p["name"] for p in operation["parameters"] if p["in"] == "query"] == ["scope"]


def test_the_guard_takes_its_read_prefixes_and_nothing_beside_them() -> None:
    guard = AccessGuard(
        None,  # type: ignore[arg-type]  # (only the path rules are asked)
        identity=None,  # type: ignore[arg-type]
        directory=lambda: None,  # type: ignore[arg-type,return-value]
        policies=CallbackPolicies(),
        pages=("/",),
        read_prefixes=READ_PREFIXES,
    )
    assert [guard.kind(p) for p in ("/api/v1/cases/x", "/api/v1/export/cases.csv")] == ["read"] * 2
    assert guard.kind("/api/v1/cases-old") == guard.kind("/api/v1/events") == "open"
    assert guard.kind("/") == "page"
