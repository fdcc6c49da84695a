"""The event envelope: every feed (HTTP ingest, MQTT, simulator) becomes these before the bus.

An event is `{id, kind, ts, node, payload}`. `id` is the source's own id and makes every step
idempotent; `node` is the code of the deepest hierarchy node the event happened in; `path` (the
ancestor ids from district down to that node) is resolved by ingest, so the projector never looks it up.
Validation is strict and its messages name the field and the reason; see `ingest.py` for the HTTP side.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)

from data_sources.model import (
    AlarmType,
    CaseAction,
    Category,
    Channel,
    ResolvedAt,
    Satisfaction,
    Severity,
)

#: Ids from sources: letters, digits and . _ : - (no spaces, no slashes), at most 64 characters.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
SourceId = Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
NodeCode = Annotated[str, Field(pattern=r"^\d{6,24}$")]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Actor = Annotated[str, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class CaseReported(_Strict):
    case_id: SourceId
    channel: Channel
    category: Category
    title: Annotated[str, Field(min_length=1, max_length=256)]
    lon: Lon
    lat: Lat
    reporter: Actor
    #: The camera alarm this case was opened from (视频告警转案件), if any.
    alarm_id: SourceId | None = None


class CaseTransitioned(_Strict):
    case_id: SourceId
    action: CaseAction
    actor: Actor
    note: Annotated[str | None, Field(max_length=512)] = None
    satisfaction: Satisfaction | None = None
    resolved_at: ResolvedAt | None = None

    @field_validator("action")
    @classmethod
    def _not_report(cls, action: CaseAction) -> CaseAction:
        if action is CaseAction.REPORT:
            raise ValueError("a report is a case.reported event, not a transition")
        return action

    @model_validator(mode="after")
    def _evaluation_has_satisfaction(self) -> CaseTransitioned:
        if self.action is CaseAction.EVALUATE and self.satisfaction is None:
            raise ValueError("satisfaction is required when action is 'evaluate'")
        if self.action is not CaseAction.EVALUATE and self.satisfaction is not None:
            raise ValueError("satisfaction is only allowed when action is 'evaluate'")
        return self


class AlarmRaised(_Strict):
    alarm_id: SourceId
    camera: SourceId
    type: AlarmType
    severity: Severity
    snapshot_url: Annotated[str | None, Field(max_length=512)] = None


class AlarmUpdated(_Strict):
    alarm_id: SourceId
    severity: Severity | None = None
    snapshot_url: Annotated[str | None, Field(max_length=512)] = None


class AlarmAcknowledged(_Strict):
    alarm_id: SourceId
    actor: Actor


class AlarmResolved(_Strict):
    alarm_id: SourceId
    actor: Actor
    false_alarm: bool = False


class WorkerPosition(_Strict):
    worker: SourceId
    lon: Lon
    lat: Lat
    speed: Annotated[float | None, Field(ge=0, le=100, allow_inf_nan=False)] = None  # m/s
    bearing: Annotated[float | None, Field(ge=0, le=360, allow_inf_nan=False)] = None
    accuracy: Annotated[float | None, Field(ge=0, le=100_000, allow_inf_nan=False)] = None  # m
    battery: Annotated[float | None, Field(ge=0, le=100, allow_inf_nan=False)] = None  # %


class _Envelope(_Strict):
    id: SourceId
    ts: AwareDatetime
    node: NodeCode
    #: Ancestor ids from the district down to `node`; resolved by ingest, never sent by sources.
    path: tuple[int, ...] = ()

    @cached_property  # read several times per event on the projector's hot path
    def ts_utc(self) -> datetime:
        """`ts` as naive UTC, the store's convention."""
        return self.ts.astimezone(UTC).replace(tzinfo=None)


class CaseReportedEvent(_Envelope):
    kind: Literal["case.reported"]
    payload: CaseReported


class CaseTransitionedEvent(_Envelope):
    kind: Literal["case.transitioned"]
    payload: CaseTransitioned


class AlarmRaisedEvent(_Envelope):
    kind: Literal["alarm.raised"]
    payload: AlarmRaised


class AlarmUpdatedEvent(_Envelope):
    kind: Literal["alarm.updated"]
    payload: AlarmUpdated


class AlarmAcknowledgedEvent(_Envelope):
    kind: Literal["alarm.acknowledged"]
    payload: AlarmAcknowledged


class AlarmResolvedEvent(_Envelope):
    kind: Literal["alarm.resolved"]
    payload: AlarmResolved


class WorkerPositionEvent(_Envelope):
    kind: Literal["worker.position"]
    payload: WorkerPosition


Event = Annotated[
    CaseReportedEvent
    | CaseTransitionedEvent
    | AlarmRaisedEvent
    | AlarmUpdatedEvent
    | AlarmAcknowledgedEvent
    | AlarmResolvedEvent
    | WorkerPositionEvent,
    Field(discriminator="kind"),
]
EVENT_KINDS: tuple[str, ...] = (
    "case.reported",
    "case.transitioned",
    "alarm.raised",
    "alarm.updated",
    "alarm.acknowledged",
    "alarm.resolved",
    "worker.position",
)
EventAdapter: TypeAdapter[Event] = TypeAdapter(Event)


def encode(event: Event) -> bytes:
    """Compact JSON for the bus."""
    return event.model_dump_json(exclude_none=True).encode()


def decode(data: bytes | str) -> Event:
    return EventAdapter.validate_json(data)


_ManyAdapter: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


def decode_many(datas: Sequence[bytes]) -> list[Event]:
    """Decode a batch in one call: four times cheaper than one `decode` per entry.

    Raises ValidationError if any entry is invalid (then decode them one by one to find it).
    """
    return _ManyAdapter.validate_json(b"[" + b",".join(datas) + b"]")
