"""The audit log (审计日志): who did what, where, when, from which address, and how it ended.

`record` adds a line within the caller's transaction (an admin change and its line commit
together); `Auditor` is for request handlers: it writes in a thread and never fails the request,
unless the handler chooses to fail closed with `record_now`. The table is append-only in the
database itself (triggers of migration 0004), so nothing here updates or deletes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, select
from sqlalchemy.orm import Session, sessionmaker

from data_sources.access.model import Principal
from data_sources.schema import AuditRow

log = logging.getLogger("gridcc.audit")

#: The most lines `list_audit` returns at once (the admin page pages through the rest).
MAX_LIMIT = 1_000


def _column_sizes() -> dict[str, int]:
    """The length of each of audit_log's string columns, read from the schema (declared once)."""
    return {
        column.name: column.type.length
        for column in AuditRow.__table__.columns
        if isinstance(column.type, String) and column.type.length is not None
    }


_SIZES = _column_sizes()


def _clean(value: str) -> str:
    """`value` as text every backend stores and every reader sees as it is: lone surrogates
    (valid in a JSON string, not in UTF-8), control characters (NUL, which PostgreSQL refuses,
    line breaks, terminal escapes) and format characters (a right-to-left override would show a
    typed name backwards) escaped as `\\uXXXX`, so an attacker's input can neither fail the line
    that records it nor make it read as something else."""
    text = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cc", "Cf") else c for c in text
    )


def _cleaned(value: Any) -> Any:
    """`value` (a detail: dicts, lists, strings…) with every string `_clean`ed."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {_clean(str(k)): _cleaned(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cleaned(v) for v in value]
    return value


def _fit(column: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = _clean(value)
    size = _SIZES[column]
    return value if len(value) <= size else value[: size - 1] + "…"


def record(
    *,
    session: Session,
    at: datetime,
    actor: str,
    actor_kind: str,
    action: str,
    outcome: str,
    scope_code: str | None = None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    client: str | None = None,
) -> None:
    """Add one line to the audit log within the caller's transaction (the caller commits).

    Args:
        at: naive UTC.
        action: dotted, family first ("user.add", "alarm.acknowledge", "login"), so that
            `list_audit(action="user.")` finds a family.
        detail: stored as compact JSON; never put a secret (password, token, key) in it.

    Strings longer than their column are cut (ending in "…"): a long value never fails the insert.
    """
    text = None
    if detail is not None:
        text = json.dumps(_cleaned(detail), ensure_ascii=False, separators=(",", ":"), default=str)
    session.add(
        AuditRow(
            at=at,
            actor=_fit("actor", actor),
            actor_kind=_fit("actor_kind", actor_kind),
            action=_fit("action", action),
            outcome=_fit("outcome", outcome),
            scope_code=_fit("scope_code", scope_code),
            target=_fit("target", target),
            detail=text,
            client=_fit("client", client),
        )
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A line of the audit log as read back."""

    id: int
    at: datetime  # naive UTC
    actor: str
    actor_kind: str
    action: str
    outcome: str
    scope_code: str | None
    target: str | None
    detail: dict[str, Any] | None
    client: str | None


def list_audit(
    *,
    session: Session,
    actor: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Audit lines newest first, filtered; the next page is `before_id=<last entry's id>`.

    Args:
        actor, outcome: exact.
        action: a prefix ("user." for every user change, "login" for logins).
        since, until: naive UTC, `since <= at < until`.
        limit: at most `MAX_LIMIT`.
    """
    query = select(AuditRow).order_by(AuditRow.id.desc())
    if actor is not None:
        query = query.where(AuditRow.actor == actor)
    if action:
        query = query.where(AuditRow.action.startswith(action, autoescape=True))
    if outcome is not None:
        query = query.where(AuditRow.outcome == outcome)
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if until is not None:
        query = query.where(AuditRow.at < until)
    if before_id is not None:
        query = query.where(AuditRow.id < before_id)
    query = query.limit(max(1, min(limit, MAX_LIMIT)))
    return [_entry(row) for row in session.scalars(query)]


def _entry(row: AuditRow) -> AuditEntry:
    detail = None
    if row.detail is not None:
        try:
            parsed = json.loads(row.detail)
        except ValueError:  # written by hand into the table: show it rather than fail the page
            parsed = {"text": row.detail}
        detail = parsed if isinstance(parsed, dict) else {"value": parsed}
    return AuditEntry(
        row.id,
        row.at,
        row.actor,
        row.actor_kind,
        row.action,
        row.outcome,
        row.scope_code,
        row.target,
        detail,
        row.client,
    )


def actor_of(principal: Principal | None) -> tuple[str, str]:
    """(actor, actor_kind) of a principal; nobody signed in is "anonymous"."""
    if principal is None:
        return "anonymous", "anonymous"
    return principal.name, principal.audit_kind


class Auditor:
    """Writes audit lines from async code, each in its own transaction.

    `await auditor(...)` runs in a thread and never raises into the request: an audit database
    hiccup must not turn a read into a 500 (the failure is logged). Where an action must not
    happen unrecorded, call `record_now` (in a thread) before acting: it raises.
    """

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    def record_now(
        self,
        principal: Principal | None,
        action: str,
        outcome: str,
        *,
        scope_code: str | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        client: str | None = None,
    ) -> None:
        """Write and commit one line now (blocking); raises when it cannot."""
        actor, kind = actor_of(principal)
        with self.sessions() as session, session.begin():
            record(
                session=session,
                at=self.clock(),
                actor=actor,
                actor_kind=kind,
                action=action,
                outcome=outcome,
                scope_code=scope_code,
                target=target,
                detail=detail,
                client=client,
            )

    async def __call__(
        self,
        principal: Principal | None,
        action: str,
        outcome: str,
        *,
        scope_code: str | None = None,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        client: str | None = None,
    ) -> None:
        """Write one line in a thread; a failure is logged, never raised."""
        try:
            await asyncio.to_thread(
                self.record_now,
                principal,
                action,
                outcome,
                scope_code=scope_code,
                target=target,
                detail=detail,
                client=client,
            )
        except Exception:
            log.exception("audit line lost: %s %s by %s", action, outcome, actor_of(principal)[0])
