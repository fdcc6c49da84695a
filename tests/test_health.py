"""Health without a browser: the pipeline's state reaches every stream at once, /healthz, /readyz
and /metrics answer as a load balancer and Prometheus expect, and an outage of Redis or of the
database is a 503 with Retry-After, never a bare 500."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.exceptions
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy import exc as sa_errors
from sqlalchemy.orm import Session

from app import create_app
from data_sources import db
from data_sources.health import PipelineState, pipeline_state, pipeline_status, unavailable
from data_sources.hub import Hub
from data_sources.schema import NodeRow
from data_sources.seed.city import seed_city
from data_sources.services import REDIS_TIMEOUT_S
from data_sources.settings import Settings
from data_sources.stream import _events

from .browser import free_port
from .conftest import AS_OF, TZ
from .test_hub import STREET, A, make
from .test_stream import HELLO, parse

KEY = {"X-API-Key": "test-key"}


@dataclass
class Health:
    """A projector's health as `ProjectorLoop.health()` reports it."""

    lag_s: float = 0.0
    stalled_s: float = 0.0
    dead_letters: int = 0
    applied: int = 0


# ---------------------------------------------------------------- the pipeline's state


@pytest.mark.parametrize(
    ("lag_s", "stalled_s", "state"),
    [
        (0.0, 0.0, PipelineState.LIVE),
        (4.9, 0.0, PipelineState.LIVE),  # under the page's own 5 s of "delayed"
        (5.5, 0.0, PipelineState.BEHIND),
        (29.0, 2.9, PipelineState.BEHIND),
        (31.0, 0.0, PipelineState.STALLED),  # this late is stale, even if it still moves
        (0.0, 3.5, PipelineState.STALLED),  # no step for 3.5 s (Redis down)
    ],
)
def test_the_state_follows_lag_and_stall(lag_s: float, stalled_s: float, state: str) -> None:
    assert pipeline_state(Health(lag_s, stalled_s)) is state


def test_a_stall_keeps_the_time_its_data_were_last_current() -> None:
    first = pipeline_status(Health(stalled_s=4.0), None, now_ms=100_000)
    assert first == {"state": "stalled", "lag": 0, "since": 96_000}
    # A second later the loop has been failing a second longer: still since 96 s, not creeping.
    later = pipeline_status(Health(stalled_s=4.9), first, now_ms=101_000)
    assert later["since"] == 96_000
    behind = pipeline_status(Health(lag_s=7.4), later, now_ms=102_000)
    assert behind == {"state": "behind", "lag": 7, "since": None}
    assert pipeline_status(Health(), behind) == {"state": "live", "lag": 0, "since": None}


def hub_with(health: Health) -> Hub:
    hub, _ = make()
    hub.health = lambda: health
    return hub


def test_every_stream_hears_once_when_the_pipeline_changes_state() -> None:
    health = Health()
    hub = hub_with(health)
    streets = [hub.subscribe(STREET), hub.subscribe(STREET, "wall", "en")]
    community = hub.subscribe(A)
    subs = [*streets, community]
    assert hub.check_status() is False  # live, as the pages already think
    assert all(s.queue.empty() for s in subs)

    health.stalled_s = 4.0
    assert hub.check_status() is True
    messages = [s.queue.get_nowait()["status"] for s in subs]
    assert all(m is messages[0] for m in messages)  # encoded once for every page
    event, body = parse(messages[0].decode())
    assert (
        event == "status"
        and body["state"] == "stalled"
        and abs(body["at"] - time.time() * 1000) < 5000
    )
    health.stalled_s = 5.0
    assert hub.check_status() is False  # still stalled: nothing new to say
    assert all(s.queue.empty() for s in subs)

    health.stalled_s, health.lag_s = 0.0, 6.0
    assert hub.check_status() is True
    assert [parse(s.queue.get_nowait()["status"].decode())[1]["state"] for s in subs] == [
        "behind"
    ] * 3
    health.lag_s = 0.0
    assert hub.check_status() is True
    assert hub.pipeline == {"state": "live", "lag": 0, "since": None}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_page_learns_the_pipelines_state_within_a_second_and_from_every_snapshot() -> None:
    health = Health()
    hub = hub_with(health)
    hub.status_every_s = 0.05
    stream = _events(hub, STREET, None, HELLO, 60.0, 1000)
    assert (await anext(stream)).startswith("retry: ")
    event, snapshot = parse(await anext(stream))
    assert event == "snapshot" and snapshot["pipeline"]["state"] == "live"

    checker = asyncio.create_task(hub.run_status())
    try:
        health.stalled_s = 4.0
        frame = await asyncio.wait_for(anext(stream), 1.0)
        assert isinstance(frame, bytes)  # encoded once by the hub, passed on as it is
        event, status = parse(frame.decode())
        assert event == "status" and status["state"] == "stalled"
    finally:
        checker.cancel()
        await stream.aclose()
    # A page that connects now is told in its first message, not at the next change.
    late = _events(hub, STREET, None, HELLO, 0.05, 1000)
    assert (await anext(late)).startswith("retry: ")
    assert parse(await anext(late))[1]["pipeline"]["state"] == "stalled"
    await late.aclose()
    assert hub.open_streams == 0


# ---------------------------------------------------------------- 503 for outages, not bugs


def test_outages_are_told_from_bugs(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with pytest.raises(sa_errors.OperationalError) as locked, engine.connect() as conn:
            conn.execute(text("SELECT * FROM t"))
    finally:
        holder.rollback()
        holder.close()
    with pytest.raises(sa_errors.OperationalError) as typo, engine.connect() as conn:
        conn.execute(text("SELECT nope FROM t"))
    engine.dispose()
    refused = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    with pytest.raises(sa_errors.OperationalError) as down:
        refused.connect()
    refused.dispose()

    assert unavailable(locked.value) == "database"
    assert unavailable(down.value) == "database"
    assert unavailable(typo.value) is None  # a bug stays a 500
    assert unavailable(redis.exceptions.ConnectionError("refused")) == "event bus"
    assert unavailable(redis.exceptions.BusyLoadingError("loading")) == "event bus"
    assert unavailable(redis.exceptions.ResponseError("WRONGTYPE")) is None
    assert unavailable(ValueError("x")) is None


# ---------------------------------------------------------------- the app's endpoints


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A small seeded county (its database URL) and one of its buildings."""
    url = f"sqlite:///{tmp_path_factory.mktemp('health') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=["530126"], days=1, cases_per_day=200)
    with Session(engine) as session:
        building = session.scalars(
            select(NodeRow.code).where(NodeRow.level == "building").order_by(NodeRow.id)
        ).first()
    engine.dispose()
    assert building is not None
    return url, building


def a_case(building: str, event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "kind": "case.reported",
        "ts": datetime.now(UTC).isoformat(),
        "node": building,
        "payload": {
            "case_id": f"case-{event_id}",
            "channel": "hotline_12345",
            "category": "noise",
            "title": "广场舞音响扰民",
            "lon": 103.33,
            "lat": 24.77,
            "reporter": "市民",
        },
    }


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


@pytest.fixture
def client(city: tuple[str, str]) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=city[0], api_keys={"tests": "test-key"}))
    with TestClient(app) as test_client:
        yield test_client


def test_healthz_says_alive_and_readyz_ready_with_every_check(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    wait_for(lambda: client.get("/readyz").status_code == 200)
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["checks"] == {"store": "ok", "bus": "ok", "projector": "ok"}
    assert set(body["projector"]) == {"lag_s", "stalled_s", "dead_letters", "applied"}


def metric(exposition: str, name: str) -> float:
    """The value of the sample `name` (with its labels, if any) in a text exposition."""
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_are_per_app_in_prometheus_text_format(client: TestClient, tmp_path: Path) -> None:
    services = client.app.state.services  # type: ignore[attr-defined]
    services.metrics.count_ingest("tests", "accepted", 3)
    services.metrics.observe_render("wall", 0.2)
    with client.stream("GET", "/live/stream") as _stream:
        wait_for(lambda: services.hub.open_streams == 1)
        answer = client.get("/metrics")
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        text_ = answer.text
        assert metric(text_, "gridcc_open_streams") == 1
    assert metric(text_, 'gridcc_ingest_events_total{outcome="accepted",source="tests"}') == 3
    assert metric(text_, 'gridcc_render_seconds_count{view="wall"}') == 1
    wait_for(lambda: "gridcc_projector_lag_seconds" in client.get("/metrics").text)
    text_ = client.get("/metrics").text
    for name in (
        "gridcc_projector_lag_seconds",
        "gridcc_projector_stalled_seconds",
        "gridcc_dead_letters",
        "gridcc_projector_applied_total",
        "gridcc_projector_throughput_events_per_second",
    ):
        assert metric(text_, name) >= 0
    # A second app in the same process: its own registry, its own counts.
    other = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'b.db'}"))
    with TestClient(other) as other_client:
        assert "gridcc_ingest_events_total{" not in other_client.get("/metrics").text


def test_a_redis_outage_is_503_with_retry_after_and_not_ready(city: tuple[str, str]) -> None:
    """Redis not answering (here: nothing listens on its port): ingest says 503 and when to try
    again, /readyz says which check fails, /healthz that the process itself is fine."""
    down = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(Settings(database_url=city[0], redis_url=down, api_keys={"tests": "test-key"}))
    with TestClient(app) as client:
        for n in range(3):
            answer = client.post("/api/v1/events", json=a_case(city[1], f"down-{n}"), headers=KEY)
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert answer.json() == {"detail": "event bus unavailable, retry later"}
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert ready.json()["checks"]["bus"].startswith("ConnectionError")
        assert ready.json()["checks"]["store"] == "ok"
        assert client.get("/healthz").status_code == 200


def test_a_hung_redis_is_503_within_its_timeout_not_a_late_202(city: tuple[str, str]) -> None:
    """QA of issue 9: a Redis that accepts connections and never answers (`kill -STOP`) held an
    ingest for 30 s and then answered 202; the client's commands now time out (here: a socket
    that listens and never replies)."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        url = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
        settings = Settings(database_url=city[0], redis_url=url, api_keys={"tests": "test-key"})
        with TestClient(create_app(settings)) as client:
            started = time.monotonic()
            answer = client.post("/api/v1/events", json=a_case(city[1], "hung-1"), headers=KEY)
            took = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    assert took < REDIS_TIMEOUT_S + 3


@pytest.mark.postgres
def test_a_database_outage_is_503_and_readyz_recovers_by_itself(
    new_postgres_database: Callable[[], str], postgres_admin_url: str
) -> None:
    """PostgreSQL refusing the app's database (connections cut, new ones refused): a route that
    reads it answers 503 with Retry-After, /readyz fails on the store; both recover by themselves
    once the database takes connections again."""
    url = new_postgres_database()
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    name = url.rsplit("/", 1)[1]
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")

    def allow(connections: bool) -> None:
        with admin.connect() as conn:
            conn.execute(
                text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(connections).lower()}')
            )
            if not connections:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                    ),
                    {"n": name},
                )

    app = create_app(Settings(database_url=url, api_keys={"tests": "test-key"}))
    try:
        with TestClient(app) as client:
            wait_for(lambda: client.get("/readyz").status_code == 200)
            assert client.post("/api/v1/alarms/a-1/acknowledge", headers=KEY).status_code == 404
            allow(False)
            answer = client.post("/api/v1/alarms/a-1/acknowledge", headers=KEY)
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "5"
            assert answer.json() == {"detail": "database unavailable, retry later"}
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["store"] != "ok"
            allow(True)
            wait_for(lambda: client.get("/readyz").status_code == 200)
            assert client.post("/api/v1/alarms/a-1/acknowledge", headers=KEY).status_code == 404
    finally:
        allow(True)
        admin.dispose()
