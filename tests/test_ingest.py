"""The native ingest API: precise 4xx for bad input, nothing published or stored for it; valid events
reach SQL through the bus and the projector."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import create_app
from data_sources import db
from data_sources.events import _VISIBLE, EventAdapter, decode, encode
from data_sources.ingest import IngestError
from data_sources.schema import CaseEventRow, CaseRow, NodeRow
from data_sources.seed.city import seed_city
from data_sources.settings import Settings

from .conftest import AS_OF, TZ

KEY = {"X-API-Key": "test-key"}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('ingest') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=["530126"], days=1, cases_per_day=2000)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def client(database: str) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=database, api_keys={"tests": "test-key"}))
    # The events here are dated on the seed's day: ingest's time window must be around it.
    app.state.services.clock = lambda: AS_OF + timedelta(hours=1)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def places(database: str) -> dict[str, str]:
    engine = db.make_engine(database)
    with Session(engine) as session:
        building = session.scalars(
            select(NodeRow.code).where(NodeRow.level == "building").order_by(NodeRow.id)
        ).first()
    engine.dispose()
    assert building is not None
    return {"building": building}


def case_event(places: dict[str, str], event_id: str, **overrides: Any) -> dict[str, Any]:
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
        "node": places["building"],
        "payload": payload,
    }
    event.update(overrides)
    return event


def _counts(client: TestClient) -> tuple[int, int]:
    services = client.app.state.services  # type: ignore[attr-defined]
    with services.sessions() as session:
        events = session.scalar(select(func.count()).select_from(CaseEventRow))
    bus_length = client.portal.call(services.bus.length)  # type: ignore[union-attr]
    return int(events or 0), bus_length


def _wait_for_case(client: TestClient, case_id: str, timeout: float = 10) -> CaseRow:
    services = client.app.state.services  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.sessions() as session:
            case = session.get(CaseRow, case_id)
            if case is not None:
                return case
        time.sleep(0.05)
    raise AssertionError(f"case {case_id} never reached SQL")


def test_valid_event_is_accepted_and_projected(client: TestClient, places: dict[str, str]) -> None:
    response = client.post("/api/v1/events", json=case_event(places, "ok-1"), headers=KEY)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    case = _wait_for_case(client, "case-ok-1")
    assert case.status == "reported" and case.building_id is not None


def test_batch_is_accepted_whole(client: TestClient, places: dict[str, str]) -> None:
    batch = [case_event(places, f"batch-{i}") for i in range(50)]
    response = client.post("/api/v1/events", json=batch, headers=KEY)
    assert response.status_code == 202
    assert response.json()["accepted"] == 50
    _wait_for_case(client, "case-batch-49")


@pytest.mark.parametrize(
    ("mutate", "status", "field", "reason"),
    [
        (lambda e: e["payload"].update(lon="east"), 422, "payload.lon", "valid number"),
        (lambda e: e["payload"].update(lat=95.0), 422, "payload.lat", "less than or equal to 90"),
        (
            lambda e: e["payload"].update(lon=116.4, lat=39.9),
            422,
            "payload.lon,payload.lat",
            "outside the area",
        ),
        (lambda e: e.update(node="530126999999999999"), 422, "node", "unknown node code"),
        (lambda e: e.update(ts="2026-11-23T14:05:00"), 422, "ts", "timezone"),
        (lambda e: e.update(kind="case.exploded"), 422, "kind", "does not match any"),
        (lambda e: e["payload"].update(category="ufo"), 422, "payload.category", "Input should be"),
        (lambda e: e["payload"].pop("title"), 422, "payload.title", "Field required"),
        (lambda e: e.update(id="has space"), 422, "id", "pattern"),
        (lambda e: e.update(path=[1, 2]), 422, "path", "resolved by the server"),
        (lambda e: e["payload"].update(extra=1), 422, "payload.extra", "Extra inputs"),
    ],
)
def test_bad_input_gets_a_precise_4xx_and_changes_nothing(
    client: TestClient, places: dict[str, str], mutate: Any, status: int, field: str, reason: str
) -> None:
    before = _counts(client)
    event = case_event(places, "bad-1")
    mutate(event)
    good = case_event(places, "good-in-bad-batch")
    response = client.post("/api/v1/events", json=[good, event], headers=KEY)
    assert response.status_code == status, response.text
    errors = response.json()["detail"]
    assert any(e["index"] == 1 and e["field"] == field and reason in e["reason"] for e in errors), (
        errors
    )
    time.sleep(0.1)
    assert _counts(client) == before  # the valid event of the batch was not published either


def test_oversized_batch_is_413(client: TestClient, places: dict[str, str]) -> None:
    before = _counts(client)
    response = client.post(
        "/api/v1/events", json=[case_event(places, f"big-{i}") for i in range(1001)], headers=KEY
    )
    assert response.status_code == 413
    assert "over the limit of 1000" in response.json()["detail"][0]["reason"]
    assert _counts(client) == before


def test_duplicate_ids(client: TestClient, places: dict[str, str]) -> None:
    assert (
        client.post("/api/v1/events", json=case_event(places, "dup-1"), headers=KEY).status_code
        == 202
    )
    _wait_for_case(client, "case-dup-1")
    before = _counts(client)
    again = client.post("/api/v1/events", json=case_event(places, "dup-1"), headers=KEY)
    assert again.status_code == 409
    assert again.json()["detail"] == [
        {"index": 0, "field": "id", "reason": "event 'dup-1' was already accepted"}
    ]
    twice = client.post("/api/v1/events", json=[case_event(places, "dup-2")] * 2, headers=KEY)
    assert twice.status_code == 422
    assert "appears twice in this batch" in twice.json()["detail"][0]["reason"]
    assert _counts(client) == before


def test_copies_of_a_batch_sent_at_once_are_accepted_once(
    client: TestClient, places: dict[str, str]
) -> None:
    """QA of issue 9: 8 copies of a 200-event batch sent at once all got 202 "accepted 200"
    (stored once, but counted 1,600 times): validation runs in threads, and each copy passed it
    before any was published."""
    batch = [case_event(places, f"race-{i}") for i in range(200)]

    def post(_: int) -> Any:
        return client.post("/api/v1/events", json=batch, headers=KEY)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert {a.status_code for a in answers} <= {202, 409}, [a.text for a in answers]
    accepted = [a.json()["ids"] for a in answers if a.status_code == 202]
    assert sorted(i for ids in accepted for i in ids) == sorted(e["id"] for e in batch)


def test_a_retry_with_new_events_publishes_the_new_ones(
    client: TestClient, places: dict[str, str]
) -> None:
    first = client.post("/api/v1/events", json=[case_event(places, "retry-1")], headers=KEY)
    assert first.status_code == 202
    again = client.post(
        "/api/v1/events",
        json=[case_event(places, "retry-1"), case_event(places, "retry-2")],
        headers=KEY,
    )
    assert again.status_code == 202
    body = again.json()
    assert body["ids"] == ["retry-2"]
    assert body["duplicates"] == [
        {"index": 0, "field": "id", "reason": "event 'retry-1' was already accepted"}
    ]
    _wait_for_case(client, "case-retry-2")


def test_authentication_and_malformed_bodies(client: TestClient, places: dict[str, str]) -> None:
    event = case_event(places, "auth-1")
    assert client.post("/api/v1/events", json=event).json() == {
        "detail": "missing X-API-Key header"
    }
    wrong = client.post("/api/v1/events", json=event, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "invalid API key"
    broken = client.post("/api/v1/events", content=b"{not json", headers=KEY)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["detail"]
    empty = client.post("/api/v1/events", json=[], headers=KEY)
    assert empty.status_code == 422


def test_ingest_is_disabled_without_keys(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'n.db'}"))
    with TestClient(app) as client:
        response = client.post("/api/v1/events", json={}, headers=KEY)
    assert response.status_code == 401 and "no API keys" in response.json()["detail"]


# ---------------------------------------------------------------- properties of the envelope

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(
        [
            "id",
            "kind",
            "ts",
            "node",
            "payload",
            "payload.lon",
            "payload.lat",
            "payload.channel",
            "payload.case_id",
            "payload.title",
        ]
    ),
    value=json_values,
)
def test_any_mutation_is_accepted_or_rejected_with_field_errors(
    client: TestClient, places: dict[str, str], field: str, value: Any
) -> None:
    event = case_event(places, "prop-1")
    target, _, key = field.rpartition(".")
    (event["payload"] if target == "payload" else event)[key or field] = value
    ingestor = client.app.state.services.ingestor()  # type: ignore[attr-defined]
    try:
        events = ingestor.validate([event]).events
    except IngestError as exc:
        assert 400 <= exc.status_code < 500
        assert exc.errors and all(e["field"] and e["reason"] for e in exc.errors)
    else:
        assert len(events) == 1 and events[0].path  # valid after all: resolved


@settings(max_examples=200, deadline=None)
@given(
    lon=st.floats(102, 104),
    lat=st.floats(24, 27),
    ts=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)
    ),
    # Any title the model holds: no control characters (events.py), at least one visible one
    # (by the model's own rule: a soft hyphen or a zero-width space alone is blank).
    title=st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=256).filter(
        lambda s: _VISIBLE.search(s) is not None
    ),
)
def test_envelope_round_trips_through_the_bus_encoding(
    lon: float, lat: float, ts: datetime, title: str
) -> None:
    event = EventAdapter.validate_python(
        {
            "id": "rt-1",
            "kind": "case.reported",
            "ts": ts,
            "node": "530126001001001001",
            "path": (1, 2, 3),
            "payload": {
                "case_id": "c-1",
                "channel": "video",
                "category": "dogs",
                "title": title,
                "lon": lon,
                "lat": lat,
                "reporter": "x",
            },
        }
    )
    assert decode(encode(event)) == event
