"""The OpenAPI description of routes that read their bodies themselves: what they take and answer.

The ingest and alarm routes read the raw body (`body.request_json`: byte and depth limits, and
errors in their own `{index, field, reason}` shape), so FastAPI cannot infer a request-body
schema from a parameter: without one `/api/v1/events` had none, and Schemathesis never sent it an
event. The schema is declared here from the same pydantic models that validate, with the
server-resolved `path` left out (sending it is an error).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from data_sources.events import EventAdapter

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
