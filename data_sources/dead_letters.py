"""Dead letters: bus entries the projector could not apply, kept with their error until retried or dropped.

An entry becomes a dead letter when it does not decode, or when it still fails to project alone after
the projector's attempts (`pipeline.ProjectorLoop`). It is stored exactly as published, so a retry
after a fix republishes the same bytes; the projector is idempotent by event id, so retrying an entry
that was applied meanwhile changes nothing. Listed by `gridcc dead-letters list` and by
`GET /api/v1/dead-letters`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from data_sources.access.audit import Auditor
from data_sources.access.keys import KeyRing, KeyRole
from data_sources.access.model import Principal
from data_sources.api_schema import error_responses, json_body
from data_sources.body import request_json
from data_sources.bus import Bus
from data_sources.events import EVENT_KINDS, ID_PATTERN
from data_sources.schema import DeadLetterRow

#: An error is kept to this many characters: a ValidationError of a big entry quotes its input, and
#: a SQL error its statement; the first lines name the cause.
ERROR_CHARS = 2_000
#: Entries republished per bus call (and rows deleted per transaction) when retrying.
RETRY_CHUNK = 1_000
_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    """An entry the projector gives up on: where it was on the bus, the entry, and why."""

    position: str
    data: bytes
    error: str
    attempts: int
    event_id: str | None = None
    kind: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A stored dead letter."""

    id: int
    event_id: str | None
    kind: str | None
    position: str
    data: bytes
    error: str
    attempts: int
    failed_at: datetime  # naive UTC

    def as_json(self) -> dict[str, Any]:
        """For the admin API: the entry as text (undecodable bytes escaped)."""
        return {
            "id": self.id,
            "event_id": self.event_id,
            "kind": self.kind,
            "position": self.position,
            "attempts": self.attempts,
            "failed_at": self.failed_at.isoformat() + "Z",
            "error": self.error,
            "data": self.data.decode("utf-8", "backslashreplace")[:ERROR_CHARS],
        }


def describe_error(exc: BaseException) -> str:
    """`Type: message` for the dead-letter list: the driver's own message for a SQL error (without
    the statement and its parameters), truncated, and with NUL bytes escaped (PostgreSQL refuses
    them in text, and the error must never be poison itself)."""
    detail = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = f"{type(exc).__name__}: {detail}".replace("\x00", "\\x00")
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def identify(data: bytes) -> tuple[str | None, str | None]:
    """The (id, kind) an entry claims, when it is a JSON object that names valid ones; else None."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(obj, dict):
        return None, None
    event_id, kind = obj.get("id"), obj.get("kind")
    return (
        event_id if isinstance(event_id, str) and _ID.fullmatch(event_id) else None,
        kind if kind in EVENT_KINDS else None,
    )


def bury(*, session: Session, letters: Sequence[NewDeadLetter], failed_at: datetime) -> int:
    """Store `letters` within the caller's transaction, except those whose bus position is stored
    already (the ack after an earlier burial was lost); how many were stored."""
    if not letters:
        return 0
    positions = [letter.position for letter in letters]
    stored = set(
        session.scalars(select(DeadLetterRow.position).where(DeadLetterRow.position.in_(positions)))
    )
    new = [letter for letter in letters if letter.position not in stored]
    session.add_all(
        DeadLetterRow(
            event_id=letter.event_id,
            kind=letter.kind,
            position=letter.position,
            data=letter.data,
            error=letter.error,
            attempts=letter.attempts,
            failed_at=failed_at,
        )
        for letter in new
    )
    return len(new)


def count_dead_letters(*, session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DeadLetterRow)) or 0


def list_dead_letters(
    *, session: Session, limit: int | None = 100, ids: Sequence[int] | None = None
) -> list[DeadLetter]:
    """Dead letters oldest first (all of them with `limit=None`), or those with `ids`."""
    query = select(DeadLetterRow).order_by(DeadLetterRow.id)
    if ids is not None:
        query = query.where(DeadLetterRow.id.in_(list(ids)))
    if limit is not None:
        query = query.limit(limit)
    return [_letter(row) for row in session.scalars(query)]


def drop_dead_letters(*, session: Session, ids: Sequence[int]) -> int:
    """Delete dead letters for good, within the caller's transaction; how many there were."""
    if not ids:
        return 0
    result = session.execute(delete(DeadLetterRow).where(DeadLetterRow.id.in_(list(ids))))
    return cast(CursorResult[Any], result).rowcount


async def retry_dead_letters(
    *, sessions: sessionmaker[Session], bus: Bus, ids: Sequence[int] | None
) -> list[DeadLetter]:
    """Republish dead letters (all of them when `ids` is None) to `bus`, then delete them; the ones
    retried. Published before deleted: a crash in between leaves the row to retry again, and the
    projector applies an event id once however often it is published."""

    def load() -> list[DeadLetter]:
        with sessions() as session:
            return list_dead_letters(session=session, limit=None, ids=ids)

    def forget(done: list[DeadLetter]) -> None:
        with sessions() as session, session.begin():
            drop_dead_letters(session=session, ids=[letter.id for letter in done])

    letters = await asyncio.to_thread(load)
    for start in range(0, len(letters), RETRY_CHUNK):
        chunk = letters[start : start + RETRY_CHUNK]
        await bus.publish([letter.data for letter in chunk])
        await asyncio.to_thread(forget, chunk)
    return letters


def _letter(row: DeadLetterRow) -> DeadLetter:
    return DeadLetter(
        row.id,
        row.event_id,
        row.kind,
        row.position,
        row.data,
        row.error,
        row.attempts,
        row.failed_at,
    )


def utc_now() -> datetime:
    """Now as naive UTC, the store's convention."""
    return datetime.now(UTC).replace(tzinfo=None)


#: 10,000 ids of up to 19 digits.
RETRY_MAX_BODY_BYTES = 256_000


class RetryRequest(BaseModel):
    """Which dead letters to retry: `ids`, or every one with `all`."""

    # Strict: `[false]` is not a list of ids (Schemathesis sent it and lax mode took it for 0).
    model_config = ConfigDict(strict=True, extra="forbid")

    # Within a 64-bit key: a bigger number made SQLite's driver raise (a 500).
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        default_factory=list, max_length=10_000
    )
    all: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> RetryRequest:
        if self.all == bool(self.ids):
            raise ValueError("send either ids or all=true")
        return self


def dead_letters_router(
    sessions: sessionmaker[Session],
    bus: Callable[[], Bus],
    keys: KeyRing,
    audit: Auditor | None = None,
) -> APIRouter:
    """`GET /api/v1/dead-letters` and `POST /api/v1/dead-letters/retry`, for admin keys only;
    a retry is audited (the key's source as the actor)."""
    router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])

    @router.get("", responses=error_responses(401, 403, 503))
    async def get_dead_letters(
        limit: int = Query(100, ge=1, le=10_000), x_api_key: str | None = Header(default=None)
    ) -> dict[str, Any]:
        """Dead letters, oldest first, with their errors; `total` counts all of them."""
        keys.require(x_api_key, KeyRole.ADMIN)

        def read() -> tuple[int, list[DeadLetter]]:
            with sessions() as session:
                total = count_dead_letters(session=session)
                return total, list_dead_letters(session=session, limit=limit)

        total, letters = await asyncio.to_thread(read)
        return {"total": total, "dead_letters": [letter.as_json() for letter in letters]}

    # The body is read by the handler, after the key is checked and within a size limit (FastAPI
    # parses a declared body before any check: 5 MB from a wrong key blocked the loop for 4 s).
    @router.post(
        "/retry",
        responses=error_responses(400, 401, 403, 413, 422, 503),
        openapi_extra=json_body(RetryRequest.model_json_schema()),
    )
    async def post_retry(
        raw: Request, x_api_key: str | None = Header(default=None)
    ) -> dict[str, Any]:
        """Republish dead letters to the bus (after a fix) and remove them from the list."""
        key = keys.require(x_api_key, KeyRole.ADMIN)
        try:
            request = RetryRequest.model_validate(await request_json(raw, RETRY_MAX_BODY_BYTES))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)  # located as FastAPI locates a body's
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in errors]
            ) from None
        ids = None if request.all else request.ids
        retried = await retry_dead_letters(sessions=sessions, bus=bus(), ids=ids)
        if audit is not None:
            await audit(
                Principal("key", key.source, "", frozenset()),
                "dead_letters.retry",
                "ok",
                detail={"ids": [letter.id for letter in retried][:1000]},
                client=raw.client.host if raw.client else None,
            )
        return {"retried": [letter.id for letter in retried]}

    return router
