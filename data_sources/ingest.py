"""The native ingest API (`/api/v1`): validate, resolve, publish. Nothing invalid reaches the bus.

A request is one event or a JSON array of events, accepted or rejected as a whole: every error is
reported with the index of the event, the field and the reason, and a rejected batch publishes
nothing. An event id already accepted gets 409 (a retrying client can treat it as success); the
projector is idempotent as well, so a duplicate that slips past this check is still applied once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Header, HTTPException, Request, status
from pydantic import ValidationError
from sqlalchemy import select, union_all
from sqlalchemy.orm import Session, sessionmaker

from data_sources.access.keys import KeyRing, KeyRole
from data_sources.api_schema import error_responses, events_body_schema, json_body
from data_sources.body import request_json
from data_sources.bulk import IN_CHUNK
from data_sources.bus import Bus
from data_sources.capacity import run_ingest
from data_sources.directory import Directory, Place
from data_sources.events import (
    EVENT_KINDS,
    AlarmRaised,
    CaseReported,
    Event,
    EventAdapter,
    WorkerPosition,
    encode,
    ingest_context,
)
from data_sources.schema import AlarmEventRow, BusEntryRow, CaseEventRow, PositionRow

MAX_BATCH = 1_000
MAX_BODY_BYTES = 2_000_000
RECENT_IDS = 500_000


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class IngestError(Exception):
    """A rejected request: HTTP status and a list of {index, field, reason}."""

    def __init__(self, status_code: int, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.status_code = status_code
        self.errors = errors


#: Where the events of each family keep their ids.
_ID_COLUMNS: dict[str, Any] = {
    "case": CaseEventRow.id,
    "alarm": AlarmEventRow.id,
    "worker": PositionRow.event_id,
}


def _place_of(item: Any, directory: Directory) -> Place | None:
    # The code exactly as sent: "530126…\n" is not a node (the model refuses it by name).
    node = item.get("node") if isinstance(item, dict) else None
    return directory.nodes.get(node) if isinstance(node, str) else None


def _error(index: int | None, field_: str, reason: str) -> dict[str, Any]:
    return {"index": index, "field": field_, "reason": reason}


def _pydantic_errors(index: int, exc: ValidationError) -> list[dict[str, Any]]:
    errors = []
    for e in exc.errors(include_url=False):
        if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
            errors.append(_error(index, "kind", e["msg"]))
            continue
        # Drop the union member's tag that pydantic puts first in the location.
        loc = [str(p) for p in e["loc"] if p not in EVENT_KINDS]
        reason = e["msg"]
        if e["type"] not in _SAYS_ITS_INPUT and isinstance(e["input"], _SCALARS):
            # "Input should be a valid number" says little without the "102.68" that was sent.
            reason += f", not {type(e['input']).__name__} {repr(e['input'])[:64]}"
        errors.append(_error(index, ".".join(loc) or "(event)", reason))
    return errors


#: Error types whose message already quotes the input (events.py's own).
_SAYS_ITS_INPUT = frozenset({"ts_format", "ts_type", "ts_future", "ts_past", "ts_era", "int_type"})
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class Validated:
    """Events to publish, and the request's events that had been accepted before."""

    events: list[Event]
    duplicates: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Published:
    """The events a publish put on the bus (the others were being published by another request),
    and their positions."""

    events: list[Event]
    positions: list[str]


@dataclass
class Ingestor:
    """Validates and publishes events; shared by the HTTP routes and the simulator."""

    bus: Bus
    sessions: sessionmaker[Session]
    directory: Callable[[], Directory]
    max_batch: int = MAX_BATCH
    #: Now as naive UTC (like `app.utc_now`): the window `ts` must fall in (events.MAX_AHEAD/MAX_AGE).
    clock: Callable[[], datetime] = field(default=_utc_now)
    _recent: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def validate(self, raw: Sequence[Any]) -> Validated:
        """Events resolved against the directory, without those already accepted.

        Raises IngestError with every problem found: 422 (or 413) for invalid input, 409 when every
        event of the request was already accepted. A retry that adds new events to ones already
        accepted gets the new ones published and the others listed as duplicates.
        """
        if len(raw) == 0:
            raise IngestError(422, [_error(None, "(body)", "no events: send one event or a list")])
        if len(raw) > self.max_batch:
            reason = f"batch of {len(raw)} events is over the limit of {self.max_batch}"
            raise IngestError(413, [_error(None, "(body)", reason)])
        directory = self.directory()
        context = ingest_context(self.clock())  # one clock reading for the whole request
        errors: list[dict[str, Any]] = []
        events: list[tuple[int, Event]] = []
        for index, item in enumerate(raw):
            if isinstance(item, dict) and "path" in item:
                errors.append(_error(index, "path", "is resolved by the server; do not send it"))
                continue
            place = _place_of(item, directory)
            if place is not None:  # resolved now: cheaper than copying the event afterwards
                item = {**item, "path": place.path}
            try:
                event = EventAdapter.validate_python(item, context=context)
            except ValidationError as exc:
                errors += _pydantic_errors(index, exc)
                continue
            resolved, problems = self._resolve(index, event, place, directory)
            errors += problems
            if resolved is not None:
                events.append((index, resolved))
        errors += self._twice(events)
        if errors:
            raise IngestError(422, errors)
        duplicates = self._accepted_before(events)
        if len(duplicates) == len(events):
            raise IngestError(409, duplicates)
        dup_indexes = {d["index"] for d in duplicates}
        return Validated([e for i, e in events if i not in dup_indexes], duplicates)

    def _resolve(
        self, index: int, event: Event, place: Place | None, directory: Directory
    ) -> tuple[Event | None, list[dict[str, Any]]]:
        if place is None:
            return None, [_error(index, "node", f"unknown node code '{event.node}'")]
        problems = []
        payload = event.payload
        if isinstance(payload, CaseReported | WorkerPosition) and not directory.bounds.contains(
            payload.lon, payload.lat
        ):
            reason = f"({payload.lon}, {payload.lat}) is outside the area of the hierarchy"
            problems.append(_error(index, "payload.lon,payload.lat", reason))
        if isinstance(payload, AlarmRaised) and payload.camera not in directory.cameras:
            problems.append(_error(index, "payload.camera", f"unknown camera '{payload.camera}'"))
        if isinstance(payload, WorkerPosition) and payload.worker not in directory.workers:
            problems.append(_error(index, "payload.worker", f"unknown worker '{payload.worker}'"))
        return (None, problems) if problems else (event, [])

    @staticmethod
    def _twice(events: list[tuple[int, Event]]) -> list[dict[str, Any]]:
        seen: set[str] = set()
        errors = []
        for index, event in events:
            if event.id in seen:
                errors.append(_error(index, "id", f"'{event.id}' appears twice in this batch"))
            seen.add(event.id)
        return errors

    def _accepted_before(self, events: list[tuple[int, Event]]) -> list[dict[str, Any]]:
        stored = self._stored_ids([e for _, e in events if e.id not in self._recent])
        return [
            _error(index, "id", f"event '{e.id}' was already accepted")
            for index, e in events
            if e.id in self._recent or e.id in stored
        ]

    def _stored_ids(self, events: list[Event]) -> set[str]:
        """Ids of `events` already accepted: projected (each looked up in its kind's table) or
        published and maybe not yet projected (`bus_entries`, the SQL bus: a re-send after a crash
        that came before the projector). One UNION ALL of index lookups per chunk of ids."""
        found: set[str] = set()
        with self.sessions() as session:
            for start in range(0, len(events), IN_CHUNK):
                chunk = events[start : start + IN_CHUNK]
                by_column: dict[Any, list[str]] = {}
                for event in chunk:
                    family = _ID_COLUMNS[event.kind.partition(".")[0]]
                    by_column.setdefault(family, []).append(event.id)
                on_bus = BusEntryRow.event_id
                lookups = [
                    select(column).where(column.in_(ids)) for column, ids in by_column.items()
                ]
                lookups.append(select(on_bus).where(on_bus.in_([e.id for e in chunk])))
                found.update(session.scalars(union_all(*lookups)))
        return found

    async def publish(self, events: Sequence[Event]) -> Published:
        """Publish those of `events` that no concurrent request is publishing.

        Validation runs in threads, so copies of one batch sent at once all passed it (8 copies: 8
        × 202 "accepted 200", counted 1,600 times, stored once). Ids are now taken on the event
        loop before the bus is awaited, and given back if publishing fails.
        """
        fresh = [e for e in events if e.id not in self._recent]
        for event in fresh:
            self._recent[event.id] = None
        try:
            positions = await self.bus.publish([encode(e) for e in fresh]) if fresh else []
        except BaseException:
            for event in fresh:
                self._recent.pop(event.id, None)
            raise
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        return Published(fresh, positions)


def _racing(raw: Sequence[Any], valid: list[Event], published: list[Event]) -> list[dict[str, Any]]:
    """Duplicates of the events another request published while this one was validated."""
    if len(published) == len(valid):
        return []
    index_of = {item.get("id"): i for i, item in enumerate(raw) if isinstance(item, dict)}
    mine = {e.id for e in published}
    return [
        _error(index_of.get(e.id), "id", f"event '{e.id}' was already accepted")
        for e in valid
        if e.id not in mine
    ]


def source_of(key: str | None, keys: KeyRing) -> str:
    """The name of the source whose API key `key` is (an ingest or an admin key); 401 when there
    is none."""
    return keys.require(key, KeyRole.INGEST).source


#: Counts a request's events by source and outcome ("accepted", "rejected", "duplicate").
CountIngest = Callable[[str, Literal["accepted", "rejected", "duplicate"], int], None]


def _count_nothing(_source: str, _outcome: str, _n: int) -> None:
    pass


def ingest_router(
    ingestor: Callable[[], Ingestor],
    keys: KeyRing,
    count: CountIngest = _count_nothing,
) -> APIRouter:
    """Routes under /api/v1, for ingest (or admin) keys of `keys`; `count` is told every
    request's outcome (the metrics)."""
    router = APIRouter(prefix="/api/v1", tags=["ingest"])

    # The handler reads the body itself (limits, and errors as {index, field, reason}), so its
    # schema is declared: the OpenAPI description says what to send, Schemathesis sends it.
    @router.post(
        "/events",
        status_code=status.HTTP_202_ACCEPTED,
        openapi_extra=json_body(events_body_schema(MAX_BATCH)),
        responses=error_responses(400, 401, 403, 409, 413, 422, 503, problems=(409, 422)),
    )
    async def post_events(
        request: Request, x_api_key: str | None = Header(default=None)
    ) -> dict[str, Any]:
        """Accept one event or a JSON array of up to 1,000 events."""
        source = source_of(x_api_key, keys)
        # Refused while it streams (413 past MAX_BODY_BYTES), nested too deep or not UTF-8 (400).
        data = await request_json(request, MAX_BODY_BYTES)
        raw = data if isinstance(data, list) else [data]
        service = ingestor()
        try:
            # Validation looks up ids in SQL: keep it off the event loop.
            valid = await run_ingest(service.validate, raw)
        except IngestError as exc:
            count(source, "duplicate" if exc.status_code == 409 else "rejected", len(raw))
            raise HTTPException(exc.status_code, exc.errors) from None
        published = await service.publish(valid.events)
        duplicates = valid.duplicates + _racing(raw, valid.events, published.events)
        count(source, "duplicate", len(duplicates))
        if not published.events:
            raise HTTPException(409, duplicates)
        count(source, "accepted", len(published.events))
        return {
            "accepted": len(published.events),
            "source": source,
            "ids": [e.id for e in published.events],
            "positions": published.positions,
            "duplicates": duplicates,
        }

    return router
