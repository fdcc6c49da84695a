"""A duty officer acts on a camera alarm: acknowledge it (确认) and, if asked, turn it into a case (转案件).

Nothing is written here. The steps become ordinary events, `alarm.acknowledged` and `case.reported`
(channel video, linked to the alarm, in the camera's building), validated and published through the
same `Ingestor` as every feed, so the projector records who did what and when in alarm_events and
case_events. Their ids are derived from the alarm's id: repeating the action (a double click, a
retry, a second officer, another app process) publishes nothing new, and whatever slips through is
applied once by the idempotent projector.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from data_sources.access.audit import Auditor
from data_sources.access.keys import KeyRing
from data_sources.access.model import Principal, Scope
from data_sources.api_schema import error_responses, json_body
from data_sources.body import request_json
from data_sources.capacity import run_ingest
from data_sources.directory import Directory
from data_sources.events import ID_PATTERN, Actor
from data_sources.ingest import IngestError, Ingestor, source_of
from data_sources.labels import label
from data_sources.model import AlarmStatus, AlarmType, Category, Channel
from data_sources.schema import AlarmRow, CameraRow, CaseRow

#: The case category an alarm of each type becomes.
CASE_CATEGORY: dict[AlarmType, Category] = {
    AlarmType.FIRE: Category.SAFETY_HAZARD,
    AlarmType.CROWD: Category.STREET_ORDER,
    AlarmType.INTRUSION: Category.SAFETY_HAZARD,
    AlarmType.ILLEGAL_PARKING: Category.ILLEGAL_PARKING,
    AlarmType.STREET_VENDING: Category.STREET_ORDER,
    AlarmType.GARBAGE_OVERFLOW: Category.SANITATION,
    AlarmType.PERSON_DOWN: Category.SAFETY_HAZARD,
    AlarmType.THROWN_OBJECT: Category.SAFETY_HAZARD,
}
_ENDED = (AlarmStatus.RESOLVED.value, AlarmStatus.FALSE_ALARM.value)


class AlarmActionError(Exception):
    """The action cannot be done: 404 (no such alarm, or one outside the actor's area: `outside`,
    answered alike so that an area's operator cannot tell which ids exist elsewhere) or 409 (the
    alarm has ended)."""

    def __init__(self, status_code: int, reason: str, *, outside: bool = False) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason
        self.outside = outside


@dataclass(frozen=True, slots=True)
class AlarmActionResult:
    alarm_id: str
    #: Whether this call acknowledged the alarm (False: it had been acknowledged before).
    acknowledged: bool
    #: The alarm's case (opened now or before), None when none was asked for and none exists.
    case_id: str | None
    #: Whether this call opened the case.
    case_created: bool
    #: Ids of the events this call published.
    events: list[str]
    #: The alarm's type and its camera's name: what a screen names it by (not its id).
    type: str = ""
    place: str = ""


@dataclass(frozen=True, slots=True)
class AlarmPlan:
    """What acknowledging an alarm takes: the raw events to publish and the alarm's case id; and
    the alarm's type and camera name."""

    events: list[dict[str, Any]]
    case_id: str | None
    type: str
    place: str


def _digest(alarm_id: str) -> str:
    return hashlib.sha256(alarm_id.encode()).hexdigest()[:24]


def case_id_for(alarm_id: str) -> str:
    """The id of the case opened from alarm `alarm_id` (the same whoever asks, however often)."""
    return f"video-{_digest(alarm_id)}"


def ack_event_id(alarm_id: str) -> str:
    return f"ack-{_digest(alarm_id)}"


def report_event_id(alarm_id: str) -> str:
    return f"report-{_digest(alarm_id)}"


def plan_alarm_action(
    *,
    session: Session,
    directory: Directory,
    alarm_id: str,
    actor: str,
    create_case: bool,
    now: datetime,
    scope: Scope | None = None,
) -> AlarmPlan:
    """What acknowledging alarm `alarm_id` takes (and opening its case, with `create_case`).

    Raises AlarmActionError: 404 for an unknown alarm and for one outside `scope` (the area of
    the person acting; None: an ingest source's key, which covers the whole city), 409 for one
    that has ended. `now` is naive UTC.
    """
    row = session.execute(
        select(
            AlarmRow.id,
            AlarmRow.type,
            AlarmRow.status,
            AlarmRow.case_id,
            CameraRow.code,
            CameraRow.name,
            CameraRow.lon,
            CameraRow.lat,
        )
        .join(CameraRow, CameraRow.id == AlarmRow.camera_id)
        .where(AlarmRow.id == alarm_id)
    ).one_or_none()
    if row is None:
        raise AlarmActionError(404, f"unknown alarm '{alarm_id}'")
    camera = directory.cameras.get(row.code)
    if scope is not None and (camera is None or not scope.contains(camera.path)):
        raise AlarmActionError(404, f"unknown alarm '{alarm_id}'", outside=True)
    if row.status in _ENDED:
        reason = f"alarm '{alarm_id}' has already ended ({row.status}): it cannot be acknowledged"
        raise AlarmActionError(409, reason)
    if camera is None or not camera.path:
        raise AlarmActionError(409, f"camera '{row.code}' of alarm '{alarm_id}' has no place")
    node = directory.codes[camera.path[-1]]
    ts = now.replace(tzinfo=UTC).isoformat()
    events: list[dict[str, Any]] = []
    if row.status == AlarmStatus.ACTIVE.value:
        events.append(
            {
                "id": ack_event_id(alarm_id),
                "kind": "alarm.acknowledged",
                "ts": ts,
                "node": node,
                "payload": {"alarm_id": alarm_id, "actor": actor},
            }
        )
    case_id: str | None = row.case_id
    if create_case and case_id is None:
        case_id = case_id_for(alarm_id)
        if session.get(CaseRow, case_id) is None:
            alarm_type = AlarmType(row.type)
            events.append(
                {
                    "id": report_event_id(alarm_id),
                    "kind": "case.reported",
                    "ts": ts,
                    "node": node,
                    "payload": {
                        "case_id": case_id,
                        "channel": Channel.VIDEO.value,
                        "category": CASE_CATEGORY[alarm_type].value,
                        # Stored in Chinese, as every other case of the command centre.
                        "title": f"视频告警·{label(alarm_type, 'zh')}：{row.name}"[:256],
                        "lon": row.lon,
                        "lat": row.lat,
                        "reporter": actor,
                        "alarm_id": alarm_id,
                    },
                }
            )
    return AlarmPlan(events, case_id, row.type, row.name)


async def act_on_alarm(
    *,
    ingestor: Ingestor,
    sessions: sessionmaker[Session],
    directory: Directory,
    alarm_id: str,
    actor: str,
    create_case: bool,
    now: datetime,
    scope: Scope | None = None,
    before_publish: Callable[[AlarmPlan], None] | None = None,
) -> AlarmActionResult:
    """Acknowledge alarm `alarm_id` (and open its case) through the ingest path; idempotent.
    `scope`: the acting person's area (an alarm outside it is as unknown). `before_publish` runs (in a
    thread) once the action is known to change something, before it is published: the audit
    line is written there, and if it cannot be, nothing is done (it raises)."""

    def prepare() -> tuple[list[Any], AlarmPlan]:
        with sessions() as session:
            plan = plan_alarm_action(
                session=session,
                directory=directory,
                alarm_id=alarm_id,
                actor=actor,
                create_case=create_case,
                now=now,
                scope=scope,
            )
        if not plan.events:
            return [], plan
        try:
            events = list(ingestor.validate(plan.events).events)
        except IngestError as exc:
            if exc.status_code == 409:  # published moments ago, not projected yet
                return [], plan
            raise
        if events and before_publish is not None:
            before_publish(plan)
        return events, plan

    # SQL: off the event loop, in ingest's own pool (never queued behind page renders)
    events, plan = await run_ingest(prepare)
    if events:
        await ingestor.publish(events)
    published = [e.id for e in events]
    return AlarmActionResult(
        alarm_id,
        ack_event_id(alarm_id) in published,
        plan.case_id,
        report_event_id(alarm_id) in published,
        published,
        plan.type,
        plan.place,
    )


#: An acknowledgement's body is two small fields: anything near this is not one.
ACK_MAX_BODY_BYTES = 16_384


class AcknowledgeRequest(BaseModel):
    """As strict as ingest (`events.py`): `1` is no `true`, and the actor is taken as sent."""

    model_config = ConfigDict(extra="forbid")

    #: Who acknowledges; the API key's source name when not given.
    actor: Actor | None = None
    create_case: StrictBool = False


def alarm_router(
    *,
    ingestor: Callable[[], Ingestor],
    sessions: sessionmaker[Session],
    directory: Callable[[], Directory],
    clock: Callable[[], datetime],
    keys: KeyRing,
    audit: Auditor | None = None,
) -> APIRouter:
    """`POST /api/v1/alarms/{alarm_id}/acknowledge`, for the ingest (or admin) keys of `keys`.

    The audit log records the key's source as the actor (the `actor` the body names is what the
    source says, kept in the line's detail), before anything is published."""
    router = APIRouter(prefix="/api/v1", tags=["alarms"])

    # The body is read by the handler (byte and depth limits, body.py), so its schema is declared.
    @router.post(
        "/alarms/{alarm_id}/acknowledge",
        openapi_extra=json_body(AcknowledgeRequest.model_json_schema(), required=False),
        responses=error_responses(400, 401, 403, 404, 409, 413, 422, 503),
    )
    async def acknowledge(
        http: Request,
        # An alarm's id is a source id (events.ID_PATTERN): anything else is no alarm, and a NUL
        # in it would reach PostgreSQL, which refuses it with an error instead of "not found".
        alarm_id: Annotated[str, Path(pattern=ID_PATTERN, max_length=64)],
        x_api_key: str | None = Header(default=None),
    ) -> dict[str, Any]:
        """Acknowledge an alarm and, with `create_case`, open a video case for it. Idempotent."""
        source = source_of(x_api_key, keys)
        raw = await request_json(http, ACK_MAX_BODY_BYTES, empty=None)
        try:
            request = AcknowledgeRequest.model_validate({} if raw is None else raw)
        except ValidationError as exc:  # FastAPI's own 422, as when it read the body itself
            errors = exc.errors(include_url=False)
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in errors]
            ) from None
        key = Principal("key", source, "", frozenset())
        client = http.client.host if http.client else None
        detail = {"actor": request.actor or source, "case": request.create_case}

        def audited(plan: AlarmPlan) -> None:
            if audit is not None:
                more = {"case_id": plan.case_id} if plan.case_id else {}
                audit.record_now(
                    key,
                    "alarm.acknowledge",
                    "ok",
                    target=alarm_id,
                    detail=detail | more,
                    client=client,
                )

        try:
            result = await act_on_alarm(
                ingestor=ingestor(),
                sessions=sessions,
                directory=directory(),
                alarm_id=alarm_id,
                actor=request.actor or source,
                create_case=request.create_case,
                now=clock(),
                before_publish=audited,
            )
        except AlarmActionError as exc:
            raise HTTPException(exc.status_code, exc.reason) from None
        except IngestError as exc:
            raise HTTPException(exc.status_code, exc.errors) from None
        return {
            "alarm_id": result.alarm_id,
            "acknowledged": result.acknowledged,
            "case_id": result.case_id,
            "case_created": result.case_created,
            "events": result.events,
            "source": source,
        }

    return router
