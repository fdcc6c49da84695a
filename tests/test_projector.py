"""The projector: idempotent, order-insensitive, and live counters always equal SQL."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from data_sources import db
from data_sources.directory import Directory, load_directory
from data_sources.events import Event, EventAdapter
from data_sources.live import LiveState, case_counts_from_sql, load_live_state, open_alarms_from_sql
from data_sources.projector import project
from data_sources.schema import (
    AlarmEventRow,
    AlarmRow,
    CameraRow,
    CaseEventRow,
    CaseRow,
    PositionRow,
)
from data_sources.seed.city import seed_city
from data_sources.simulator import EventFactory, SimPlaces
from data_sources.workhours import CN_CALENDAR

from .conftest import AS_OF, BACKENDS, TZ, fresh_database_url

TABLES = (CaseRow, CaseEventRow, AlarmRow, AlarmEventRow, PositionRow)


@pytest.fixture(params=BACKENDS)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Directory, SimPlaces]]:
    """A small seeded city (Shilin county, one day of history) on each backend."""
    url = fresh_database_url(request, tmp_path_factory.mktemp("proj"))
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=3, as_of=AS_OF, tz=TZ, districts=["530126"], days=1, cases_per_day=4000)
    with Session(engine) as session:
        directory = load_directory(session=session)
        places = SimPlaces.load(session=session)
    try:
        yield engine, directory, places
    finally:
        db.downgrade(engine, "base")
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        engine.dispose()


def _feed(
    engine: Engine, directory: Directory, live: LiveState, events: Sequence[Event], batch: int = 500
) -> tuple[int, int]:
    applied = duplicates = 0
    for start in range(0, len(events), batch):
        with Session(engine) as session, session.begin():
            projection = project(
                session,
                events[start : start + batch],
                directory=directory,
                tz=TZ,
                calendar=CN_CALENDAR,
            )
        live.apply(projection)  # only after the commit
        applied += projection.applied
        duplicates += projection.duplicates
    return applied, duplicates


def _snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    snapshot = {}
    with Session(engine) as session:
        for table in TABLES:
            columns = [
                c for c in table.__table__.columns if c.name != "id" or table is not PositionRow
            ]
            key = table.__table__.primary_key.columns.values()[0]
            if table is PositionRow:
                key = PositionRow.event_id
            snapshot[table.__tablename__] = [
                tuple(r) for r in session.execute(select(*columns).order_by(key))
            ]
    return snapshot


def _assert_live_equals_sql(engine: Engine, live: LiveState) -> None:
    with Session(engine) as session:
        expected = case_counts_from_sql(session=session, root_id=live.root_id)
        alarms = open_alarms_from_sql(session=session, root_id=live.root_id)
        high = open_alarms_from_sql(session=session, root_id=live.root_id, high=True)
    nodes = set(expected) | {n for n, c in live.case_counts.items() if any(c.values())}
    for node in nodes:
        assert live.counts_of(node) == expected.get(node, {}), node
    for node in set(alarms) | set(live.open_alarms):
        assert live.open_alarms.get(node, 0) == alarms.get(node, 0), node
    for node in set(high) | set(live.open_high):
        assert live.open_high.get(node, 0) == high.get(node, 0), node


def _shuffle_within_entities(events: list[Event], rng: random.Random) -> list[Event]:
    """Reorder events locally: any event may move up to 50 places (so entities arrive out of order)."""
    keyed = [(i + rng.uniform(-50, 50), e) for i, e in enumerate(events)]
    return [e for _, e in sorted(keyed, key=lambda pair: pair[0])]


@pytest.mark.slow
def test_same_events_twice_and_out_of_order_give_identical_state(
    city: tuple[Engine, Directory, SimPlaces],
) -> None:
    engine, directory, places = city
    factory = EventFactory(places, directory, np.random.default_rng(11), prefix="replay")
    events = factory.mixed(10_000, AS_OF + timedelta(minutes=5), timedelta(hours=6))
    assert len(events) >= 10_000
    kinds = {e.kind for e in events}
    assert kinds == {
        "case.reported",
        "case.transitioned",
        "alarm.raised",
        "alarm.acknowledged",
        "alarm.resolved",
        "worker.position",
    }

    with Session(engine) as session:
        live = load_live_state(session=session, root_id=directory.root_id)
        baseline = _snapshot(engine)
    _assert_live_equals_sql(engine, live)

    shuffled = _shuffle_within_entities(events, random.Random(5))
    assert shuffled != events
    applied, duplicates = _feed(engine, directory, live, shuffled)
    assert (applied, duplicates) == (len(events), 0)
    after_once = _snapshot(engine)
    assert after_once != baseline
    _assert_live_equals_sql(engine, live)
    counts_once = {n: live.counts_of(n) for n in list(live.case_counts)}

    # The same events again, in yet another order and other batch sizes: nothing changes.
    again = _shuffle_within_entities(events, random.Random(6))
    applied, duplicates = _feed(engine, directory, live, again, batch=777)
    assert (applied, duplicates) == (0, len(events))
    assert _snapshot(engine) == after_once
    assert {n: live.counts_of(n) for n in list(live.case_counts)} == counts_once
    _assert_live_equals_sql(engine, live)

    # In strict time order into a fresh copy of the city: the very same rows.
    ordered_state = _replay_into_fresh(engine, directory, events)
    assert ordered_state == after_once


def _replay_into_fresh(engine: Engine, directory: Directory, events: list[Event]) -> object:
    """Delete what the events added, then feed them in time order; the resulting rows."""
    with Session(engine) as session, session.begin():
        ids = [e.id for e in events]
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            session.execute(CaseEventRow.__table__.delete().where(CaseEventRow.id.in_(chunk)))
            session.execute(AlarmEventRow.__table__.delete().where(AlarmEventRow.id.in_(chunk)))
            session.execute(PositionRow.__table__.delete().where(PositionRow.event_id.in_(chunk)))
        case_ids = sorted({e.payload.case_id for e in events if e.kind.startswith("case.")})
        alarm_ids = sorted({e.payload.alarm_id for e in events if e.kind.startswith("alarm.")})
        for start in range(0, len(case_ids), 900):
            session.execute(
                CaseRow.__table__.delete().where(CaseRow.id.in_(case_ids[start : start + 900]))
            )
        for start in range(0, len(alarm_ids), 900):
            session.execute(
                AlarmRow.__table__.delete().where(AlarmRow.id.in_(alarm_ids[start : start + 900]))
            )
    with Session(engine) as session:
        live = load_live_state(session=session, root_id=directory.root_id)
    _feed(engine, directory, live, sorted(events, key=lambda e: (e.ts, e.id)), batch=1000)
    _assert_live_equals_sql(engine, live)
    return _snapshot(engine)


def test_transition_before_its_report_waits_then_applies(
    city: tuple[Engine, Directory, SimPlaces],
) -> None:
    engine, directory, places = city
    factory = EventFactory(places, directory, np.random.default_rng(2), prefix="early")
    story = factory.case_story(AS_OF + timedelta(minutes=1))
    with Session(engine) as session:
        live = load_live_state(session=session, root_id=directory.root_id)
    _feed(engine, directory, live, story[1:])  # everything but the report
    case_id = story[0].payload.case_id  # type: ignore[union-attr]
    with Session(engine) as session:
        assert session.get(CaseRow, case_id) is None
        waiting = session.scalars(
            select(CaseEventRow.replay_note).where(CaseEventRow.case_id == case_id)
        )
        assert set(waiting) == {"waiting for the case's report"}
    _feed(engine, directory, live, story[:1])
    with Session(engine) as session:
        case = session.get(CaseRow, case_id)
        assert case is not None and case.status in ("closed", "rejected")
        notes = set(
            session.scalars(select(CaseEventRow.note).where(CaseEventRow.case_id == case_id))
        )
        assert notes == {None}
    _assert_live_equals_sql(engine, live)


def test_a_case_with_more_events_than_a_smallint_counts_is_stored(
    city: tuple[Engine, Directory, SimPlaces],
) -> None:
    """Issue 9: the 32,768th event of one case failed on PostgreSQL ("smallint out of range") and
    blocked the projector for good; case counters are INTEGER now (migration 0003)."""
    engine, directory, places = city
    factory = EventFactory(places, directory, np.random.default_rng(4), prefix="busy")
    story = factory.case_story(AS_OF + timedelta(minutes=1))
    report = story[0]
    case_id = report.payload.case_id  # type: ignore[union-attr]
    start = report.ts_utc.replace(tzinfo=UTC)
    supervisions = [
        EventAdapter.validate_python(
            {
                "id": f"busy-supervise-{n}",
                "kind": "case.transitioned",
                "ts": (start + timedelta(seconds=1 + n)).isoformat(),
                "node": report.node,
                "path": report.path,
                "payload": {"case_id": case_id, "action": "supervise", "actor": "督办员"},
            }
        )
        for n in range(32_800)
    ]
    with Session(engine) as session:
        live = load_live_state(session=session, root_id=directory.root_id)
    applied, _ = _feed(engine, directory, live, [report, *supervisions], batch=5_000)
    assert applied == 32_801
    with Session(engine) as session:
        case = session.get(CaseRow, case_id)
        assert case is not None and case.event_count == 32_801
        top = session.scalar(
            select(func.max(CaseEventRow.seq)).where(CaseEventRow.case_id == case_id)
        )
        assert top is not None and top > 32_767


def test_a_new_case_says_its_channel_and_report_time_a_transition_does_not(
    city: tuple[Engine, Directory, SimPlaces],
) -> None:
    """What the wall's 今日新增 and channel donut grow by (hub.py counts them)."""
    engine, directory, places = city
    factory = EventFactory(places, directory, np.random.default_rng(4), prefix="chan")
    report, accept = factory.case_story(AS_OF + timedelta(minutes=2))[:2]
    changes = []
    for event in (report, accept):
        with Session(engine) as session, session.begin():
            changes += project(
                session, [event], directory=directory, tz=TZ, calendar=CN_CALENDAR
            ).cases
    channel = report.payload.channel.value  # type: ignore[union-attr]
    assert [(c.old, c.channel, c.reported_at) for c in changes] == [
        (None, channel, report.ts_utc),
        (changes[0].new, "", None),
    ]


def test_alarm_changes_say_where_their_camera_stands(
    city: tuple[Engine, Directory, SimPlaces],
) -> None:
    """A raised alarm (camera from the directory) and a later step of it (camera joined to the
    stored alarm) both carry the camera's code, name and coordinates, for live maps."""
    engine, directory, places = city
    factory = EventFactory(places, directory, np.random.default_rng(4), prefix="where")
    raised, *later = factory.alarm_story(AS_OF + timedelta(minutes=1))
    camera_code = raised.payload.camera  # type: ignore[union-attr]
    with Session(engine) as session:
        camera = session.execute(
            select(CameraRow.name, CameraRow.lon, CameraRow.lat).where(
                CameraRow.code == camera_code
            )
        ).one()
    expected = (camera_code, camera.name, camera.lon, camera.lat)
    for batch in ([raised], later):
        with Session(engine) as session, session.begin():
            projection = project(session, batch, directory=directory, tz=TZ, calendar=CN_CALENDAR)
        assert projection.alarms
        for change in projection.alarms:
            assert (change.camera, change.place, change.lon, change.lat) == expected


def test_a_case_opened_from_an_alarm_links_it_even_in_the_same_batch_and_only_once(
    city: tuple[Engine, Directory, SimPlaces],
) -> None:
    """Cases are applied before alarms within a batch: the link must still reach an alarm raised
    in the same batch, and a later report naming the same alarm must not take it over."""
    engine, directory, places = city
    factory = EventFactory(places, directory, np.random.default_rng(5), prefix="link")
    raised = factory.alarm_story(AS_OF + timedelta(minutes=1))[0]
    alarm_id = raised.payload.alarm_id  # type: ignore[union-attr]

    def opened_from_alarm(n: int) -> Event:
        report = factory.case_story(AS_OF + timedelta(minutes=2))[0]
        payload = report.payload.model_copy(update={"alarm_id": alarm_id, "case_id": f"c{n}"})
        return report.model_copy(update={"id": f"link-report-{n}", "payload": payload})

    first, second = opened_from_alarm(1), opened_from_alarm(2)
    for batch in ([first, raised], [second]):
        with Session(engine) as session, session.begin():
            project(session, batch, directory=directory, tz=TZ, calendar=CN_CALENDAR)
    with Session(engine) as session:
        linked = session.scalar(select(AlarmRow.case_id).where(AlarmRow.id == alarm_id))
        cases = session.scalars(
            select(CaseRow.id).where(CaseRow.alarm_id == alarm_id).order_by(CaseRow.id)
        ).all()
    assert linked == "c1"
    assert cases == ["c1", "c2"]
