"""What ingest refuses, through the HTTP route: the poison and loose inputs of issue 9 get a 422 naming
the field and the reason, and publish nothing; the same events inside the limits are accepted.

Each case here was accepted with 202 before the limits (`events.py`): the poison ones then failed
forever in the projector (OverflowError in `ts_utc`, PostgreSQL's DataError on NUL), the loose ones were
stored changed (ids trimmed, "102.68" made a number, year 1 stored as a case).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import create_app
from data_sources import db
from data_sources.events import MAX_AGE, MAX_AHEAD, EventAdapter, decode, encode
from data_sources.schema import CameraRow, CaseRow, NodeRow
from data_sources.seed.city import seed_city
from data_sources.settings import Settings

from .conftest import AS_OF, TZ

KEY = {"X-API-Key": "test-key"}
#: The server's clock in these tests (naive UTC): 12:40 in Kunming, twelve days after the seed.
NOW = datetime(2026, 12, 5, 4, 40)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=["530126"], days=1, cases_per_day=100)
    engine.dispose()
    app = create_app(Settings(database_url=url, api_keys={"tests": "test-key"}))
    with TestClient(app) as test_client:
        test_client.app.state.services.clock = lambda: NOW  # type: ignore[attr-defined]
        yield test_client


@pytest.fixture(scope="module")
def place(client: TestClient) -> dict[str, str]:
    """A building's code and a camera in it."""
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as session:
        row = session.execute(
            select(CameraRow.code, NodeRow.code.label("node"))
            .join(NodeRow, NodeRow.id == CameraRow.building_id)
            .order_by(CameraRow.id)
            .limit(1)
        ).one()
    return {"node": row.node, "camera": row.code}


def case_event(place: dict[str, str], event_id: str, **overrides: Any) -> dict[str, Any]:
    """A good case.reported event (tests/test_ingest.py's), changed by `overrides`."""
    payload = {
        "case_id": f"case-{event_id}",
        "channel": "hotline_12345",
        "category": "noise",
        "title": "广场舞音响扰民",
        "lon": 103.33,
        "lat": 24.77,
        "reporter": "市民",
    }
    payload.update(overrides.pop("payload", {}))
    event = {
        "id": event_id,
        "kind": "case.reported",
        "ts": "2026-11-23T14:05:00+08:00",
        "node": place["node"],
        "payload": payload,
    }
    event.update(overrides)
    return event


def alarm_event(place: dict[str, str], event_id: str, **payload: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "kind": "alarm.raised",
        "ts": "2026-12-05T12:30:00+08:00",
        "node": place["node"],
        "payload": {
            "alarm_id": f"alarm-{event_id}",
            "camera": place["camera"],
            "type": "fire",
            "severity": 3,
            **payload,
        },
    }


def _bus_length(client: TestClient) -> int:
    services = client.app.state.services  # type: ignore[attr-defined]
    return int(client.portal.call(services.bus.length))  # type: ignore[union-attr]


def assert_rejected(client: TestClient, event: dict[str, Any], field: str, reason: str) -> str:
    """`event` gets 422 with an error on `field` whose reason contains `reason`; nothing published."""
    before = _bus_length(client)
    body = json.dumps(
        [event]
    )  # ASCII escapes: a lone surrogate goes as "\\ud800", as a source sends it
    response = client.post("/api/v1/events", content=body, headers=KEY)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    matching = [e for e in errors if e["index"] == 0 and e["field"] == field]
    assert matching and reason in matching[0]["reason"], errors
    assert _bus_length(client) == before  # synchronous: publish happens inside the request
    return str(matching[0]["reason"])


def assert_accepted(client: TestClient, event: dict[str, Any]) -> None:
    response = client.post("/api/v1/events", json=[event], headers=KEY)
    assert response.status_code == 202, response.text


# ---------------------------------------------------------------- time


def test_poison_times_are_refused_with_the_server_s_clock(
    client: TestClient, place: dict[str, str]
) -> None:
    future = case_event(place, "poison-ts-1", ts="9999-12-31T23:59:59-14:00")
    reason = assert_rejected(client, future, "ts", "in the future")
    assert reason == (
        "ts 9999-12-31T23:59:59-14:00 is more than 10 minutes in the future of the server's clock "
        "(2026-12-05T04:40:00Z)"
    )
    past = case_event(place, "poison-ts-2", ts="0001-01-01T00:00:00+14:00")
    reason = assert_rejected(client, past, "ts", "before the server's clock")
    assert reason == (
        "ts 0001-01-01T00:00:00+14:00 is more than 366 days before the server's clock "
        "(2026-12-05T04:40:00Z)"
    )


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("0001-01-01T00:00:00Z", "days before"),
        ("9999-01-01T00:00:00Z", "in the future"),
        ("2027-12-05T04:40:00Z", "in the future"),  # a device a year ahead
        ("2020-01-01T00:00:00+08:00", "days before"),
    ],
)
def test_years_far_from_now_are_refused(
    client: TestClient, place: dict[str, str], ts: str, reason: str
) -> None:
    assert_rejected(client, case_event(place, "far-year", ts=ts), "ts", reason)


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        (1764909600, "not int 1764909600"),  # an epoch number carries no zone
        (1764909600.5, "not float"),
        ("1764909600", "ISO-8601"),  # pydantic would read it as epoch seconds
        ("2026-11-23T14:05:00", "timezone offset"),  # naive
        ("2026-11-23", "ISO-8601"),
        (True, "not bool"),
    ],
)
def test_ts_is_an_iso_string_with_its_zone(
    client: TestClient, place: dict[str, str], ts: Any, reason: str
) -> None:
    assert_rejected(client, case_event(place, "ts-type", ts=ts), "ts", reason)


def test_the_window_s_edges(client: TestClient, place: dict[str, str]) -> None:
    """Exactly MAX_AHEAD ahead and MAX_AGE behind are accepted, one second more is not."""
    ahead, behind = NOW + MAX_AHEAD, NOW - MAX_AGE
    assert_accepted(client, case_event(place, "edge-1", ts=f"{ahead.isoformat()}Z"))
    # The same instant in Kunming time.
    local = (ahead + timedelta(hours=8)).isoformat()
    assert_accepted(client, case_event(place, "edge-2", ts=f"{local}+08:00"))
    assert_accepted(client, case_event(place, "edge-3", ts=f"{behind.isoformat()}Z"))
    second = timedelta(seconds=1)
    late = case_event(place, "edge-4", ts=f"{(ahead + second).isoformat()}Z")
    assert_rejected(client, late, "ts", "more than 10 minutes in the future")
    old = case_event(place, "edge-5", ts=f"{(behind - second).isoformat()}-00:00")
    assert_rejected(client, old, "ts", "more than 366 days before")


def test_the_bus_decode_has_no_window_and_never_overflows() -> None:
    """An event accepted long ago is still applied after an outage; nothing decodes past the era."""
    event = {
        "id": "old-1",
        "kind": "alarm.acknowledged",
        "ts": "2024-01-01T00:00:00+08:00",  # years before any clock of these tests
        "node": "530126001001001001",
        "path": [1, 2],
        "payload": {"alarm_id": "a-1", "actor": "值班员"},
    }
    old = EventAdapter.validate_python(event)
    assert decode(encode(old)).ts_utc == datetime(2023, 12, 31, 16, 0)
    for ts in ("9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2200-01-01T00:00:00Z"):
        with pytest.raises(ValidationError, match="outside the times the store holds"):
            decode(encode(old).replace(b"2024-01-01T00:00:00+08:00", ts.encode()))


# ---------------------------------------------------------------- text and ids


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"title": "a\u0000b"}, "payload.title", "control character U+0000 at position 1"),
        ({"title": "a\ud800b"}, "payload.title", "unicode"),  # a lone surrogate: no UTF-8 for it
        ({"title": "line\nbreak"}, "payload.title", "U+000A"),
        ({"title": "\u0085"}, "payload.title", "U+0085"),  # C1: NEXT LINE
        ({"title": " \u3000 "}, "payload.title", "blank"),
        ({"title": "\u200b\ufeff"}, "payload.title", "blank"),  # zero-width: nothing shows
        ({"title": "界" * 257}, "payload.title", "at most 256 characters"),
        ({"reporter": "市民\t"}, "payload.reporter", "U+0009"),
        ({"reporter": "😀" * 65}, "payload.reporter", "at most 64 characters"),
    ],
)
def test_text_without_control_characters(
    client: TestClient, place: dict[str, str], payload: dict[str, Any], field: str, reason: str
) -> None:
    assert_rejected(client, case_event(place, "text-1", payload=payload), field, reason)


def test_a_note_may_run_over_lines_but_holds_no_nul(
    client: TestClient, place: dict[str, str]
) -> None:
    def transition(event_id: str, note: str) -> dict[str, Any]:
        return {
            "id": event_id,
            "kind": "case.transitioned",
            "ts": "2026-12-05T12:00:00+08:00",
            "node": place["node"],
            "payload": {"case_id": "case-x", "action": "handle", "actor": "网格员", "note": note},
        }

    assert_rejected(client, transition("note-1", "ok\u0000"), "payload.note", "U+0000")
    assert_accepted(client, transition("note-2", "第一行\n第二行\t完毕"))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "abc\n"}, "id"),
        ({"id": " abc"}, "id"),
        ({"payload": {"case_id": "case-1\n"}}, "payload.case_id"),
        ({"payload": {"alarm_id": "alarm\n"}}, "payload.alarm_id"),
    ],
)
def test_ids_are_taken_exactly_as_sent(
    client: TestClient, place: dict[str, str], change: dict[str, Any], field: str
) -> None:
    reason = assert_rejected(client, case_event(place, "id-1", **change), field, "pattern")
    assert "\\n" in reason or "' abc'" in reason  # says what was sent


def test_a_node_code_with_a_newline_is_not_the_node(
    client: TestClient, place: dict[str, str]
) -> None:
    event = case_event(place, "node-1", node=place["node"] + "\n")
    assert_rejected(client, event, "node", "pattern")
    assert_rejected(client, case_event(place, "node-2", node=f" {place['node']}"), "node", "")


# ---------------------------------------------------------------- strict types


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"lon": "102.68"}, "payload.lon", "not str '102.68'"),
        ({"lat": "24.77"}, "payload.lat", "valid number"),
        ({"lon": True}, "payload.lon", "valid number"),
    ],
)
def test_coordinates_are_numbers(
    client: TestClient, place: dict[str, str], payload: dict[str, Any], field: str, reason: str
) -> None:
    assert_rejected(client, case_event(place, "num-1", payload=payload), field, reason)


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ({"severity": "3"}, "payload.severity", "must be an integer, not str '3'"),
        ({"severity": 3.0}, "payload.severity", "not float"),
        ({"severity": True}, "payload.severity", "not bool"),
        ({"snapshot_url": "http://x/\u0000"}, "payload.snapshot_url", "U+0000"),
    ],
)
def test_alarm_fields_are_strict(
    client: TestClient, place: dict[str, str], payload: dict[str, Any], field: str, reason: str
) -> None:
    assert_rejected(client, alarm_event(place, "sev-1", **payload), field, reason)


def test_a_resolution_s_false_alarm_is_a_boolean(client: TestClient, place: dict[str, str]) -> None:
    event = {
        "id": "res-1",
        "kind": "alarm.resolved",
        "ts": "2026-12-05T12:30:00+08:00",
        "node": place["node"],
        "payload": {"alarm_id": "a-1", "actor": "值班员", "false_alarm": "true"},
    }
    assert_rejected(client, event, "payload.false_alarm", "valid boolean")


# ---------------------------------------------------------------- what is inside the limits


def test_good_events_at_the_limits_are_accepted_and_projected(
    client: TestClient, place: dict[str, str]
) -> None:
    title = ("界😀" * 128)[:256]  # 256 characters, half outside the BMP
    good = [
        case_event(place, "good-1"),
        case_event(place, "good-2", payload={"title": title, "reporter": "市" * 64}),
        alarm_event(place, "good-3", severity=1, snapshot_url=""),
    ]
    response = client.post("/api/v1/events", json=good, headers=KEY)
    assert response.status_code == 202, response.text
    services = client.app.state.services  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with Session(services.engine) as session:
            case = session.get(CaseRow, "case-good-2")
        if case is not None:
            break
        time.sleep(0.05)
    assert case is not None and case.title == title
