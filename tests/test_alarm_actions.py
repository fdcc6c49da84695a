"""Acknowledging an alarm and turning it into a case: the HTTP API, its errors, idempotency, and the
pipeline recording who did it and when in alarm_events and case_events."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import create_app
from data_sources import db
from data_sources.alarm_actions import ack_event_id, case_id_for, report_event_id
from data_sources.schema import AlarmEventRow, AlarmRow, CameraRow, CaseEventRow, CaseRow, NodeRow
from data_sources.seed.city import seed_city
from data_sources.settings import Settings

from .conftest import AS_OF, BACKENDS, TZ, fresh_database_url

KEY = {"X-API-Key": "test-key"}


@pytest.fixture(scope="module", params=BACKENDS)
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The app on a small seeded city, on each backend (the projector's writes differ by dialect)."""
    url = fresh_database_url(request, tmp_path_factory.mktemp("alarms"))
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=["530126"], days=1, cases_per_day=200)
    engine.dispose()
    app = create_app(Settings(database_url=url, api_keys={"tests": "test-key"}))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def camera(client: TestClient) -> dict[str, Any]:
    """A camera of the seeded city: its code, its building's code and its building's id."""
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as session:
        row = session.execute(
            select(CameraRow.code, CameraRow.building_id, NodeRow.code.label("node"))
            .join(NodeRow, NodeRow.id == CameraRow.building_id)
            .order_by(CameraRow.id)
            .limit(1)
        ).one()
    return {"code": row.code, "node": row.node, "building_id": row.building_id}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _publish(client: TestClient, events: list[dict[str, Any]]) -> None:
    response = client.post("/api/v1/events", json=events, headers=KEY)
    assert response.status_code == 202, response.text


def _wait(client: TestClient, found: Callable[[Session], Any], timeout: float = 10) -> Any:
    services = client.app.state.services  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.sessions() as session:
            value = found(session)
            if value:
                return value
        time.sleep(0.05)
    raise AssertionError("never reached SQL")


def raise_alarm(client: TestClient, camera: dict[str, Any], alarm_id: str, **extra: Any) -> None:
    event = {
        "id": f"raise-{alarm_id}",
        "kind": "alarm.raised",
        "ts": _now(),
        "node": camera["node"],
        "payload": {"alarm_id": alarm_id, "camera": camera["code"], "type": "fire", "severity": 4},
    }
    _publish(client, [event, *extra.get("then", [])])
    _wait(client, lambda s: s.get(AlarmRow, alarm_id))


def acknowledge(client: TestClient, alarm_id: str, **body: Any) -> Any:
    return client.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json=body or None, headers=KEY)


def test_acknowledge_and_turn_into_a_case_records_who_and_when(
    client: TestClient, camera: dict[str, Any]
) -> None:
    raise_alarm(client, camera, "fire-1")
    before = datetime.now(UTC).replace(tzinfo=None)
    response = acknowledge(client, "fire-1", actor="张值班", create_case=True)
    after = datetime.now(UTC).replace(tzinfo=None)
    assert response.status_code == 200, response.text
    case_id = case_id_for("fire-1")
    assert response.json() == {
        "alarm_id": "fire-1",
        "acknowledged": True,
        "case_id": case_id,
        "case_created": True,
        "events": [ack_event_id("fire-1"), report_event_id("fire-1")],
        "source": "tests",
    }
    case = _wait(client, lambda s: s.get(CaseRow, case_id))
    assert (case.channel, case.category, case.status) == ("video", "safety_hazard", "reported")
    assert case.alarm_id == "fire-1" and case.building_id == camera["building_id"]
    assert case.title.startswith("视频告警·烟火：")
    assert before <= case.reported_at <= after
    alarm = _wait(client, lambda s: (a := s.get(AlarmRow, "fire-1")) and a.case_id and a)
    assert alarm.status == "acknowledged" and alarm.acknowledged_by == "张值班"
    assert alarm.case_id == case_id and before <= alarm.acknowledged_at <= after
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as session:
        steps = session.execute(
            select(AlarmEventRow.kind, AlarmEventRow.actor, AlarmEventRow.at)
            .where(AlarmEventRow.alarm_id == "fire-1")
            .order_by(AlarmEventRow.at)
        ).all()
        case_steps = session.execute(
            select(CaseEventRow.action, CaseEventRow.actor, CaseEventRow.at).where(
                CaseEventRow.case_id == case_id
            )
        ).all()
    assert [(k, a) for k, a, _ in steps] == [("raised", None), ("acknowledged", "张值班")]
    assert before <= steps[1].at <= after
    assert [(k, a) for k, a, _ in case_steps] == [("report", "张值班")]
    assert before <= case_steps[0].at <= after


def test_acknowledging_twice_opens_one_case(client: TestClient, camera: dict[str, Any]) -> None:
    raise_alarm(client, camera, "fire-2")
    first = acknowledge(client, "fire-2", actor="甲", create_case=True)
    second = acknowledge(client, "fire-2", actor="乙", create_case=True)  # before it is projected
    assert first.status_code == second.status_code == 200
    assert first.json()["case_created"] is True
    assert second.json()["events"] == [] and second.json()["case_id"] == case_id_for("fire-2")
    _wait(client, lambda s: (a := s.get(AlarmRow, "fire-2")) and a.case_id)
    third = acknowledge(client, "fire-2", actor="丙", create_case=True)  # after it is projected
    assert third.status_code == 200
    assert third.json() | {"source": None} == {
        "alarm_id": "fire-2",
        "acknowledged": False,
        "case_id": case_id_for("fire-2"),
        "case_created": False,
        "events": [],
        "source": None,
    }
    time.sleep(0.3)  # anything wrongly published would be projected by now
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as session:
        cases = session.scalar(select(func.count()).where(CaseRow.alarm_id == "fire-2"))
        acks = session.scalar(
            select(func.count()).where(
                AlarmEventRow.alarm_id == "fire-2", AlarmEventRow.kind == "acknowledged"
            )
        )
        alarm = session.get(AlarmRow, "fire-2")
        assert alarm is not None and alarm.acknowledged_by == "甲"
    assert (cases, acks) == (1, 1)


def test_acknowledge_only_then_a_case_later(client: TestClient, camera: dict[str, Any]) -> None:
    raise_alarm(client, camera, "fire-3")
    response = acknowledge(client, "fire-3")  # no body: the API key's source is the actor
    assert response.status_code == 200
    assert response.json()["acknowledged"] is True and response.json()["case_id"] is None
    alarm = _wait(client, lambda s: (a := s.get(AlarmRow, "fire-3")) and a.acknowledged_by and a)
    assert alarm.acknowledged_by == "tests"
    later = acknowledge(client, "fire-3", actor="李", create_case=True)
    assert later.json()["acknowledged"] is False and later.json()["case_created"] is True
    case = _wait(client, lambda s: s.get(CaseRow, case_id_for("fire-3")))
    assert case.alarm_id == "fire-3"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"create_case": 1}, "create_case"),  # QA of issue 9: 1 was taken for true
        ({"actor": " 值班员 "}, None),  # and the actor trimmed: now kept exactly as sent
        ({"actor": "值\u0000班"}, "actor"),
        ({"actor": "\u200b"}, "actor"),
    ],
)
def test_the_acknowledge_body_is_as_strict_as_ingest(
    client: TestClient, body: dict[str, Any], field: str | None
) -> None:
    response = acknowledge(client, "no-such-alarm", **body)
    if field is None:  # valid: on to the alarm, which does not exist
        assert response.status_code == 404, response.text
        return
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == field


def test_unknown_and_ended_alarms(client: TestClient, camera: dict[str, Any]) -> None:
    unknown = acknowledge(client, "no-such-alarm", create_case=True)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "unknown alarm 'no-such-alarm'"
    resolve = {
        "id": "resolve-fire-4",
        "kind": "alarm.resolved",
        "ts": _now(),
        "node": camera["node"],
        "payload": {"alarm_id": "fire-4", "actor": "现场"},
    }
    raise_alarm(client, camera, "fire-4", then=[resolve])
    _wait(client, lambda s: (a := s.get(AlarmRow, "fire-4")) and a.status == "resolved")
    ended = acknowledge(client, "fire-4", create_case=True)
    assert ended.status_code == 409
    assert ended.json()["detail"] == (
        "alarm 'fire-4' has already ended (resolved): it cannot be acknowledged"
    )
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as session:
        assert session.get(CaseRow, case_id_for("fire-4")) is None


def test_authentication_and_body_validation(client: TestClient) -> None:
    assert client.post("/api/v1/alarms/x/acknowledge").status_code == 401
    wrong = client.post("/api/v1/alarms/x/acknowledge", headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    assert acknowledge(client, "x", actor="").status_code == 422
    assert acknowledge(client, "x", create_case=True, extra=1).status_code == 422
