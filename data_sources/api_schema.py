"""The OpenAPI description of routes that read their bodies themselves: what they take and answer.

The ingest and alarm routes read the raw body (`body.request_json`: byte and depth limits, and
errors in their own `{index, field, reason}` shape), so FastAPI cannot infer a request-body
schema from a parameter: without one `/api/v1/events` had none, and Schemathesis never sent it an
event. The schema is declared here from the same pydantic models that validate, with the
server-resolved `path` left out (sending it is an error).
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Any

from data_sources.cases.stages import Stage
from data_sources.events import EventAdapter
from data_sources.model import (
    AlarmStatus,
    AlarmType,
    CaseAction,
    CaseStatus,
    Category,
    Channel,
    Level,
    ResolvedAt,
    Satisfaction,
    Severity,
)

#: One problem with a request: which event (None: the request as a whole), which field, why.
ERROR_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "index": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "field": {"type": "string"},
        "reason": {"type": "string"},
    },
    "required": ["index", "field", "reason"],
}
#: Every error answer: a reason, or a list of problems (ours, or FastAPI's for a parameter).
ERROR: dict[str, Any] = {
    "type": "object",
    "properties": {
        "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}
    },
    "required": ["detail"],
}
_PROBLEMS: dict[str, Any] = {
    "type": "object",
    "properties": {"detail": {"type": "array", "items": ERROR_ITEM}},
    "required": ["detail"],
}
_MEANINGS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("The body is not JSON we take: invalid, not UTF-8, or nested too deep.", ERROR),
    401: ("No credential (API key, or a signed-in session), or one that does not hold.", ERROR),
    403: ("Not allowed: this key or user may not do this, or not in this area.", ERROR),
    404: ("No such resource.", ERROR),
    409: ("Already done: every event of the request was accepted before.", ERROR),
    413: ("The body, or the batch, is over the limit.", ERROR),
    422: ("Invalid input; each problem with its index, field and reason.", ERROR),
    503: ("Not ready (no hierarchy loaded, or the pipeline is down): retry later.", ERROR),
}


def error_responses(*codes: int, problems: tuple[int, ...] = ()) -> dict[int | str, Any]:
    """`responses=` for a route's error answers; `problems`: those whose detail is always a list
    of `{index, field, reason}`."""
    return {
        code: {
            "description": _MEANINGS[code][0],
            "content": {
                "application/json": {
                    "schema": _PROBLEMS if code in problems else _MEANINGS[code][1]
                }
            },
        }
        for code in codes
    }


def json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra=` declaring a JSON request body of `schema`."""
    return {
        "requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}
    }


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """`node` with every `#/$defs/…` reference replaced by its definition (no cycles in events).

    Inlined because a `$ref` inside an operation resolves against the OpenAPI document, whose
    root has no `$defs`; the `discriminator` goes as well, since its mapping names those refs.
    """
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _inline(defs[ref.removeprefix("#/$defs/")], defs)
    return {k: _inline(v, defs) for k, v in node.items() if k not in ("$defs", "discriminator")}


def _without_path(defs: dict[str, Any]) -> dict[str, Any]:
    """The envelopes' definitions without `path`: the server resolves it from `node`."""
    out = {}
    for name, schema in defs.items():
        props = schema.get("properties", {})
        if "kind" in props and "payload" in props and "path" in props:
            schema = {**schema, "properties": {k: v for k, v in props.items() if k != "path"}}
            schema["required"] = [r for r in schema.get("required", []) if r != "path"]
        out[name] = schema
    return out


@cache
def event_schema() -> dict[str, Any]:
    """One event as a client sends it (JSON Schema, self-contained)."""
    schema = EventAdapter.json_schema()
    return dict(_inline(schema, _without_path(schema.get("$defs", {}))))


def events_body_schema(max_batch: int) -> dict[str, Any]:
    """The ingest body: one event, or an array of 1..`max_batch` events."""
    one = event_schema()
    many = {"type": "array", "items": one, "minItems": 1, "maxItems": max_batch}
    return {"oneOf": [one, many]}


# ---------------------------------------------------------------- cases (issue 11)


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    """A closed object whose every property is required (None is sent as null, never left out)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _enum(kind: type[StrEnum]) -> dict[str, Any]:
    return {"type": "string", "enum": [member.value for member in kind]}


_TIME = {"type": "string", "format": "date-time"}
_TEXT = {"type": "string"}
_HOURS = {"type": "number"}
_FLAG = {"type": "boolean"}


@cache
def case_detail_schema() -> dict[str, Any]:
    """`CaseDetail.to_json()` as JSON Schema (a test validates real answers against it)."""
    place = _object(level=_enum(Level), code=_TEXT, name_zh=_TEXT, name_en=_TEXT)
    alarm = _object(
        id=_TEXT,
        type=_enum(AlarmType),
        severity={"type": "integer", "enum": [int(s) for s in Severity]},
        status=_enum(AlarmStatus),
        started_at=_TIME,
        camera=_object(code=_TEXT, name=_TEXT),
    )
    event = _object(
        seq={"type": "integer"},
        id=_TEXT,
        action=_enum(CaseAction),
        actor=_TEXT,
        at=_TIME,
        from_status=_nullable(_enum(CaseStatus)),
        to_status=_enum(CaseStatus),
        note=_nullable(_TEXT),
        replay_note=_nullable(_TEXT),
        ignored=_FLAG,
        satisfaction=_nullable(_enum(Satisfaction)),
        resolved_at=_nullable(_enum(ResolvedAt)),
    )
    stage = _object(
        stage=_enum(Stage),
        round={"type": "integer", "minimum": 1},
        start=_TIME,
        end=_nullable(_TIME),
        running=_FLAG,
        started_by=_TEXT,
        ended_by=_nullable(_TEXT),
        outcome=_nullable(_enum(CaseAction)),
        working_hours=_HOURS,
        elapsed_hours=_HOURS,
        limit_hours=_HOURS,
        overdue=_FLAG,
    )
    return _object(
        id=_TEXT,
        title=_TEXT,
        category=_enum(Category),
        channel=_enum(Channel),
        status=_enum(CaseStatus),
        reported_at=_TIME,
        accepted_at=_nullable(_TIME),
        due_at=_nullable(_TIME),
        closed_at=_nullable(_TIME),
        overdue=_FLAG,
        supervised=_FLAG,
        deferred=_FLAG,
        rework_count={"type": "integer", "minimum": 0},
        satisfaction=_nullable(_enum(Satisfaction)),
        resolved_at=_nullable(_enum(ResolvedAt)),
        lon={"type": "number"},
        lat={"type": "number"},
        limit_hours=_HOURS,
        working_hours=_nullable(_HOURS),
        places={"type": "array", "items": place},
        worker=_nullable(_object(code=_TEXT, name=_TEXT)),
        alarm=_nullable(alarm),
        timeline={"type": "array", "items": event},
        stages={"type": "array", "items": stage},
        supervision={
            "type": "array",
            "items": _object(actor=_TEXT, at=_TIME, note=_nullable(_TEXT)),
        },
        as_of=_TIME,
    )
