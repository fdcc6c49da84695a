"""The event envelope: every feed (HTTP ingest, MQTT, simulator) becomes these before the bus.

An event is `{id, kind, ts, node, payload}`. `id` is the source's own id and makes every step
idempotent; `node` is the code of the deepest hierarchy node the event happened in; `path` (the
ancestor ids from district down to that node) is resolved by ingest, so the projector never looks it up.

These models are the one definition of what the store holds: what they accept, the projector can apply
(`tests/test_projectable.py` proves it on SQLite and PostgreSQL). Types are strict (no "3" for 3, no
epoch number for a time), ids are kept exactly as sent, text holds no control characters (PostgreSQL
refuses NUL; a lone surrogate cannot be encoded for the bus), and `ts` lies in `ERA` whoever decodes it,
and within `MAX_AHEAD`/`MAX_AGE` of the clock that accepts it (`ingest_context`). Messages name the
field and the reason; see `ingest.py` for the HTTP side.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from data_sources.model import (
    AlarmType,
    CaseAction,
    Category,
    Channel,
    ResolvedAt,
    Satisfaction,
    Severity,
)

# ---------------------------------------------------------------- limits of what the store holds

#: How far ahead of the accepting clock an event may be: device clocks drift (cameras without NTP
#: run minutes fast), and a minute-level skew must not lose a report; more is a broken clock.
MAX_AHEAD = timedelta(minutes=10)
#: How old an event may be when accepted: a year of backlog from a source that was offline (a day
#: more for a leap year); older is a wrong clock (year 1), not a delay.
MAX_AGE = timedelta(days=366)
#: Where any stored `ts` lies, whatever clock accepted it (the projector decodes without a window: an
#: event accepted yesterday is applied today after an outage). Far inside datetime's range (years
#: 1-9999), so `ts_utc`, due times (+ days of working hours) and JavaScript dates never overflow;
#: from 1970 so `timestamp()` works on every platform.
ERA = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
_ERA_YEARS = (ERA[0].year, ERA[1].year - 1)
#: The validation-context key of the accepting clock (aware UTC); see `ingest_context`.
NOW = "now"

#: Ids from sources: letters, digits and . _ : - (no spaces, no slashes), at most 64 characters. `$` is
#: the end of the text under pydantic's Rust regex engine (not "before a final newline" as in `re`),
#: so "abc\n" is refused rather than trimmed.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
#: ISO-8601 date and time with its offset ("Z" or +08:00): numbers and naive times carry no zone.
_ISO_TS = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})"
)
#: Control characters (Unicode Cc: C0, DEL, C1) and lone surrogates, which no store encodes.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: A character that shows: not white space, not a zero-width or direction mark (U+200B, U+FEFF…):
#: a title of nothing but those passed as not blank.
_VISIBLE = re.compile("[^\\s\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
#: The same without tab, line feed and carriage return, which free text (a note) may hold.
_CONTROL_IN_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _shown(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _checked_ts(
    value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
) -> datetime:
    """An aware `ts` in `ERA` and, when validated with `ingest_context`, in the accepting window."""
    if isinstance(value, str):
        if not _ISO_TS.fullmatch(value):
            raise PydanticCustomError(
                "ts_format",
                "ts must be an ISO-8601 date and time with its timezone offset "
                "(e.g. 2026-11-23T14:05:00+08:00), not {value}",
                {"value": repr(value[:64])},
            )
    elif not isinstance(value, datetime):  # epoch numbers carry no zone; bool is an int
        raise PydanticCustomError(
            "ts_type",
            "ts must be an ISO-8601 string with its timezone offset, not {type} {value}",
            {"type": type(value).__name__, "value": str(value)[:64]},
        )
    ts: datetime = handler(value)
    # Aware comparisons subtract offsets as timedeltas: no overflow even at 9999-12-31T23:59-14:00.
    now = info.context.get(NOW) if isinstance(info.context, dict) else None
    if isinstance(now, datetime):
        if ts > now + MAX_AHEAD:
            raise PydanticCustomError(
                "ts_future",
                "ts {ts} is more than {ahead} minutes in the future of the server's clock ({now})",
                {
                    "ts": _shown(value),
                    "ahead": MAX_AHEAD // timedelta(minutes=1),
                    "now": _iso_z(now),
                },
            )
        if ts < now - MAX_AGE:
            raise PydanticCustomError(
                "ts_past",
                "ts {ts} is more than {age} days before the server's clock ({now})",
                {"ts": _shown(value), "age": MAX_AGE.days, "now": _iso_z(now)},
            )
    # Aware comparisons cost 2-4 us with pydantic's TzInfo (the projector decodes ~13,000 events/s):
    # compare exactly only in the first and last year of the era, where an offset could cross it.
    if not _ERA_YEARS[0] < ts.year < _ERA_YEARS[1] and not ERA[0] <= ts < ERA[1]:
        raise PydanticCustomError(
            "ts_era",
            "ts {ts} is outside the times the store holds ({start} to {end})",
            {"ts": _shown(value), "start": _iso_z(ERA[0]), "end": _iso_z(ERA[1])},
        )
    return ts


def ingest_context(now: datetime) -> dict[str, Any]:
    """The validation context that applies the accepting window around `now` (naive UTC)."""
    return {NOW: now.replace(tzinfo=UTC)}


def _text(*, free: bool = False, blank_ok: bool = False) -> AfterValidator:
    """Refuses control characters (and, unless `blank_ok`, text without a visible character).

    Args:
        free: free text over several lines (a note): tab, line feed and carriage return allowed.
    """
    pattern = _CONTROL_IN_FREE_TEXT if free else _CONTROL

    def check(value: str) -> str:
        bad = pattern.search(value)
        if bad is not None:
            raise PydanticCustomError(
                "text_control",
                "contains the control character {code} at position {at}",
                {"code": f"U+{ord(bad.group()):04X}", "at": bad.start()},
            )
        if not blank_ok and _VISIBLE.search(value) is None:
            raise PydanticCustomError("text_blank", "is blank: it needs a visible character")
        return value

    return AfterValidator(check)


def _whole_number(value: Any) -> Any:
    # The enum alone would take "3", 3.0 and True for Severity.HIGH / LOW.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise PydanticCustomError(
        "int_type",
        "must be an integer, not {type} {value}",
        {"type": type(value).__name__, "value": repr(value)[:32]},
    )


SourceId = Annotated[StrictStr, Field(pattern=ID_PATTERN, max_length=64)]
NodeCode = Annotated[StrictStr, Field(pattern=r"^[0-9]{6,24}$")]
Lon = Annotated[float, Field(strict=True, ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Field(strict=True, ge=-90, le=90, allow_inf_nan=False)]
# Lengths are in characters, as PostgreSQL's VARCHAR(n) counts them (the columns in schema.py).
Title = Annotated[StrictStr, Field(min_length=1, max_length=256), _text()]
#: Who did it: a person's or a system's name.
Actor = Annotated[StrictStr, Field(min_length=1, max_length=64), _text()]
#: A handling note (办理意见), which may run over lines.
Note = Annotated[StrictStr, Field(max_length=512), _text(free=True, blank_ok=True)]
Url = Annotated[StrictStr, Field(max_length=512), _text(blank_ok=True)]
Measure = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
Timestamp = Annotated[AwareDatetime, WrapValidator(_checked_ts)]
Level = Annotated[Severity, BeforeValidator(_whole_number)]


class _Strict(BaseModel):
    # Not model-wide `strict=True`: in Python mode that wants enum members, but ingest validates the
    # JSON's plain values; strictness is per type above (strings, floats, bools, severity, ts).
    model_config = ConfigDict(extra="forbid", frozen=True)


class CaseReported(_Strict):
    case_id: SourceId
    channel: Channel
    category: Category
    title: Title
    lon: Lon
    lat: Lat
    reporter: Actor
    #: The camera alarm this case was opened from (视频告警转案件), if any.
    alarm_id: SourceId | None = None


class CaseTransitioned(_Strict):
    case_id: SourceId
    action: CaseAction
    actor: Actor
    note: Note | None = None
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
    severity: Level
    snapshot_url: Url | None = None


class AlarmUpdated(_Strict):
    alarm_id: SourceId
    severity: Level | None = None
    snapshot_url: Url | None = None


class AlarmAcknowledged(_Strict):
    alarm_id: SourceId
    actor: Actor


class AlarmResolved(_Strict):
    alarm_id: SourceId
    actor: Actor
    false_alarm: StrictBool = False


class WorkerPosition(_Strict):
    worker: SourceId
    lon: Lon
    lat: Lat
    speed: Annotated[Measure, Field(le=100)] | None = None  # m/s
    bearing: Annotated[Measure, Field(le=360)] | None = None
    accuracy: Annotated[Measure, Field(le=100_000)] | None = None  # m
    battery: Annotated[Measure, Field(le=100)] | None = None  # %


class _Envelope(_Strict):
    id: SourceId
    ts: Timestamp
    node: NodeCode
    #: Ancestor ids from the district down to `node`; resolved by ingest, never sent by sources.
    path: tuple[int, ...] = ()

    @cached_property  # read several times per event on the projector's hot path
    def ts_utc(self) -> datetime:
        """`ts` as naive UTC, the store's convention (`ERA` keeps it inside datetime's range)."""
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
