"""What ingest accepts, the projector can apply: batches of events generated inside the limits of
`events.py` (window edges, every offset, longest texts in CJK and emoji, coordinates at the edges of the
area, every kind, many events on one case or alarm) pass the real `Ingestor.validate`, the bus encoding,
and `project` on SQLite and PostgreSQL without an exception.

Before the limits, the same generator over what the model then accepted (any year, any text) failed in
`ts_utc` (OverflowError at 9999-12-31T23:59:59-14:00) and on PostgreSQL (NUL in a title).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import annotated_types
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from data_sources import db
from data_sources.bus.memory import MemoryBus
from data_sources.directory import Directory, load_directory
from data_sources.events import (
    _VISIBLE,
    ID_PATTERN,
    MAX_AGE,
    MAX_AHEAD,
    AlarmRaised,
    AlarmResolved,
    CaseReported,
    CaseTransitioned,
    WorkerPosition,
    decode_many,
    encode,
)
from data_sources.ingest import Ingestor
from data_sources.live import LiveState
from data_sources.model import (
    AlarmType,
    CaseAction,
    Category,
    Channel,
    ResolvedAt,
    Satisfaction,
    Severity,
)
from data_sources.projector import project
from data_sources.seed.city import seed_city
from data_sources.workhours import CN_CALENDAR

from .conftest import AS_OF, BACKENDS, TZ, fresh_database_url

#: The ingest's clock (naive UTC).
NOW = datetime(2026, 12, 5, 4, 40)


@pytest.fixture(scope="module", params=BACKENDS)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Places]]:
    """A small seeded county (Shilin, one day of history) on each backend: its directory is what
    events name (nodes, cameras, workers, the area's bounds)."""
    url = fresh_database_url(request, tmp_path_factory.mktemp("projectable"))
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=11, as_of=AS_OF, tz=TZ, districts=["530126"], days=1, cases_per_day=50)
    with Session(engine) as session:
        places = Places.of(load_directory(session=session))
    try:
        yield engine, places
    finally:
        engine.dispose()


# ---------------------------------------------------------------- strategies from the model's limits


def _limit(model: type[BaseModel], name: str, kind: type[Any]) -> Any:
    """The `annotated_types` bound `kind` (MaxLen, Le, …) declared on `model.name`, also inside an
    optional field's `Annotated[…] | None`."""
    field = model.model_fields[name]
    found = [m for m in _metadata(field.annotation) + field.metadata if isinstance(m, kind)]
    assert found, f"{model.__name__}.{name} declares no {kind.__name__}"
    return found[0]


def _metadata(annotation: Any) -> list[Any]:
    found: list[Any] = []
    for meta in getattr(annotation, "__metadata__", ()):
        found += [meta, *getattr(meta, "metadata", ())]  # a Field(...) holds its bounds
    for arg in get_args(annotation):
        found += _metadata(arg)
    return found


def texts(max_size: int, *, free: bool = False, blank_ok: bool = False) -> st.SearchStrategy[str]:
    """Any text the model holds: no control characters (tab and newlines only in free text), the
    longest in 1-, 3- and 4-byte UTF-8 characters."""
    chars = st.characters(exclude_categories=("Cc", "Cs"))
    if free:
        chars |= st.sampled_from("\t\n\r")
    longest = st.sampled_from(["a", "é", "界", "😀", "界😀"]).map(
        lambda c: (c * max_size)[:max_size]
    )
    some = st.text(chars, min_size=0 if blank_ok else 1, max_size=max_size) | longest
    # Blank by the model's own rule: a soft hyphen or a zero-width space alone is no text.
    return some if blank_ok else some.filter(lambda s: _VISIBLE.search(s) is not None)


def between(low: float, high: float) -> st.SearchStrategy[float | int]:
    """Numbers in [low, high], the edges often, as JSON sends them (integers too)."""
    numbers = st.sampled_from([low, high]) | st.floats(low, high, allow_nan=False)
    whole = (math.ceil(low), math.floor(high))
    return numbers | st.integers(*whole) if whole[0] <= whole[1] else numbers


def bounded(model: type[BaseModel], name: str) -> st.SearchStrategy[float | int]:
    low = _limit(model, name, annotated_types.Ge).ge
    high = _limit(model, name, annotated_types.Le).le
    return between(low, high)


source_ids = st.one_of(
    st.from_regex(ID_PATTERN.removeprefix("^").removesuffix("$"), fullmatch=True),
    st.just("A" * 64),
)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """Any time in the window around NOW, its edges often, in any offset from -14:00 to +14:00."""
    low, high = NOW - MAX_AGE, NOW + MAX_AHEAD
    utc = draw(st.sampled_from([low, high]) | st.datetimes(min_value=low, max_value=high))
    minutes = draw(st.sampled_from([-14 * 60, 0, 8 * 60, 14 * 60]) | st.integers(-14 * 60, 14 * 60))
    local = utc.replace(tzinfo=UTC).astimezone(timezone(timedelta(minutes=minutes)))
    text = local.isoformat()
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


@dataclass(frozen=True)
class Places:
    """What events may name; with a short repr (hypothesis shows the arguments of a strategy)."""

    directory: Directory
    nodes: list[str]
    cameras: list[str]
    workers: list[str]

    @classmethod
    def of(cls, directory: Directory) -> Places:
        d = directory
        return cls(d, sorted(d.nodes), sorted(d.cameras), sorted(d.workers))

    def __repr__(self) -> str:
        return f"Places({len(self.nodes)} nodes, {len(self.cameras)} cameras, {len(self.workers)})"


@st.composite
def batches(draw: st.DrawFn, places: Places) -> list[dict[str, Any]]:
    """1-30 events of every kind as a source sends them, on a few cases and alarms."""
    nodes, cameras, workers = places.nodes, places.cameras, places.workers
    b = places.directory.bounds
    lons, lats = between(b.min_lon, b.max_lon), between(b.min_lat, b.max_lat)
    cases = draw(st.lists(source_ids, min_size=1, max_size=3, unique=True))
    alarms = draw(st.lists(source_ids, min_size=1, max_size=3, unique=True))
    size = draw(st.integers(1, 30))
    ids = draw(st.lists(source_ids, min_size=size, max_size=size, unique=True))
    maybe = st.booleans()

    def optional(payload: dict[str, Any], key: str, values: st.SearchStrategy[Any]) -> None:
        if draw(maybe):
            payload[key] = draw(values)

    events = []
    for event_id in ids:
        kind = draw(
            st.sampled_from(
                [
                    "case.reported",
                    "case.transitioned",
                    "alarm.raised",
                    "alarm.updated",
                    "alarm.acknowledged",
                    "alarm.resolved",
                    "worker.position",
                ]
            )
        )
        actor = texts(_limit(AlarmResolved, "actor", annotated_types.MaxLen).max_length)
        payload: dict[str, Any]
        if kind == "case.reported":
            payload = {
                "case_id": draw(st.sampled_from(cases)),
                "channel": draw(st.sampled_from(Channel)).value,
                "category": draw(st.sampled_from(Category)).value,
                "title": draw(
                    texts(_limit(CaseReported, "title", annotated_types.MaxLen).max_length)
                ),
                "lon": draw(lons),
                "lat": draw(lats),
                "reporter": draw(actor),
            }
            optional(payload, "alarm_id", st.sampled_from(alarms))
        elif kind == "case.transitioned":
            action = draw(st.sampled_from([a for a in CaseAction if a is not CaseAction.REPORT]))
            payload = {"case_id": draw(st.sampled_from(cases)), "action": action.value}
            payload["actor"] = draw(actor)
            longest = _limit(CaseTransitioned, "note", annotated_types.MaxLen).max_length
            optional(payload, "note", texts(longest, free=True, blank_ok=True))
            if action is CaseAction.EVALUATE:
                payload["satisfaction"] = draw(st.sampled_from(Satisfaction)).value
            optional(payload, "resolved_at", st.sampled_from(ResolvedAt).map(lambda r: r.value))
        elif kind.startswith("alarm."):
            payload = {"alarm_id": draw(st.sampled_from(alarms))}
            severities = st.sampled_from(Severity).map(int)
            longest = _limit(AlarmRaised, "snapshot_url", annotated_types.MaxLen).max_length
            urls = texts(longest, blank_ok=True)
            if kind == "alarm.raised":
                payload["camera"] = draw(st.sampled_from(cameras))
                payload["type"] = draw(st.sampled_from(AlarmType)).value
                payload["severity"] = draw(severities)
                optional(payload, "snapshot_url", urls)
            elif kind == "alarm.updated":
                optional(payload, "severity", severities)
                optional(payload, "snapshot_url", urls)
            else:
                payload["actor"] = draw(actor)
                if kind == "alarm.resolved":
                    optional(payload, "false_alarm", st.booleans())
        else:
            payload = {"worker": draw(st.sampled_from(workers)), "lon": draw(lons)}
            payload["lat"] = draw(lats)
            for key in ("speed", "bearing", "accuracy", "battery"):
                optional(payload, key, bounded(WorkerPosition, key))
        node = draw(st.sampled_from(nodes))
        events.append(
            {
                "id": event_id,
                "kind": kind,
                "ts": draw(timestamps()),
                "node": node,
                "payload": payload,
            }
        )
    return events


def test_the_strategies_read_the_model_s_limits() -> None:
    assert _limit(CaseReported, "title", annotated_types.MaxLen).max_length == 256
    assert _limit(AlarmRaised, "alarm_id", annotated_types.MaxLen).max_length == 64
    assert _limit(WorkerPosition, "accuracy", annotated_types.Le).le == 100_000
    assert _limit(CaseTransitioned, "note", annotated_types.MaxLen).max_length == 512


# ---------------------------------------------------------------- the property


@settings(max_examples=100, deadline=None)  # 7-10 s a backend
@given(data=st.data())
def test_every_accepted_event_projects(city: tuple[Engine, Places], data: st.DataObject) -> None:
    engine, places = city
    directory = places.directory
    raw = json.loads(json.dumps(data.draw(batches(places), label="batch")))  # as sent
    ingestor = Ingestor(MemoryBus(), sessionmaker(engine), lambda: directory, clock=lambda: NOW)
    accepted = ingestor.validate(raw).events  # an IngestError here is a generator bug
    assert len(accepted) == len(raw)
    events = decode_many([encode(e) for e in accepted])  # what the projector reads off the bus
    assert events == accepted
    # Two batches in one transaction: the second continues or replays what the first stored.
    split = data.draw(st.integers(0, len(events)), label="split")
    live = LiveState(directory.root_id)
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            with Session(bind=connection) as session:
                applied = 0
                for part in (events[:split], events[split:]):
                    projection = project(
                        session, part, directory=directory, tz=TZ, calendar=CN_CALENDAR
                    )
                    session.flush()
                    live.apply(projection)
                    applied += projection.applied
        finally:
            transaction.rollback()  # each example starts from the seeded city
    assert applied == len(events)
