"""The administrators' changes, each audited in its own transaction (`_change`): the change
and its audit line both commit, or the change is rolled back and a "failed" line with the store's
reason is written instead (系统管理). The admin page's callbacks (callbacks/admin.py) call these;
so do the tests. A secret made here (a password, a display's token, a key) is returned once, shown
once and never written to the audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from data_sources.access import accounts, audit, displays, keys
from data_sources.access.audit import AuditEntry
from data_sources.access.guard import Access
from data_sources.access.model import Forbidden, Permission, Role
from data_sources.access.sessions import SessionStore
from data_sources.embed import grants as embed_grants
from data_sources.embed.tokens import TokenLimits

NOT_ADMIN = "not an administrator"
#: Said of a failed insert instead of the database's message, which quotes the row (a hash).
CONFLICT = "it conflicts with an existing entry"
#: The audit page's "any outcome" filter value, and its page size.
ANY = "any"
AUDIT_PAGE = 100


# ---------------------------------------------------------------- audited changes


@dataclass(frozen=True, slots=True)
class By:
    """Who makes a change (the request's access), in which session, at what time (naive UTC),
    and where signed-in sessions live (a user's end at once when disabled or given a password)."""

    session: Session
    access: Access
    now: datetime
    store: SessionStore


@dataclass(frozen=True, slots=True)
class Applied:
    """What a change did: what it was done to, in which area, and a secret made for it."""

    target: str
    scope_code: str | None = None
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """How an admin change ended; `secret` (to be shown once) only when one was made."""

    ok: bool
    target: str
    reason: str | None = None
    secret: str | None = None


def _change(
    by: By,
    action: str,
    target: str,
    apply: Callable[[], Applied],
    detail: Mapping[str, Any] | None = None,
) -> Done:
    """Apply a change and its audit line in one transaction ("ok"), or roll the change back and
    audit why not ("failed": the store refused; "denied": the caller is no administrator).

    `detail` is what the line shows of the request: never a password, token or key."""
    session, principal = by.session, by.access.principal

    def line(outcome: str, target: str, scope: str | None, more: dict[str, Any]) -> None:
        audit.record(
            session=session,
            at=by.now,
            actor=principal.name,
            actor_kind=principal.audit_kind,
            action=action,
            outcome=outcome,
            scope_code=scope,
            target=target,
            detail={**(detail or {}), **more} or None,
            client=by.access.client,
        )

    if not principal.may(Permission.ADMIN):  # the guard checked it already: defence in depth
        with session.begin():
            line("denied", target, None, {"reason": NOT_ADMIN})
        return Done(False, target, NOT_ADMIN)
    try:
        with session.begin():
            applied = apply()
            line("ok", applied.target, applied.scope_code, {})
    except (ValueError, IntegrityError) as exc:  # AccountError is a ValueError
        reason = str(exc) if isinstance(exc, ValueError) else CONFLICT
        with session.begin():
            line("failed", target, None, {"reason": reason})
        return Done(False, target, reason)
    return Done(True, applied.target, secret=applied.secret)


def add_user(
    by: By, *, name: str, role: str, scope_code: str, password: str, generated: bool = False
) -> Done:
    """Create an account (user.add); a generated password comes back as the secret."""

    def apply() -> Applied:
        role_ = Role(role)
        accounts.add_user(
            session=by.session,
            name=name,
            role=role_,
            scope_code=scope_code,
            password=password,
            now=by.now,
        )
        return Applied(name, scope_code, password if generated else None)

    return _change(by, "user.add", name, apply, {"role": role, "generated": generated})


def _user(by: By, *, name: str | None = None, user_id: int | None = None) -> accounts.UserInfo:
    for user in accounts.list_users(session=by.session):
        if user.name == name or user.id == user_id:
            return user
    raise accounts.AccountError(f"no user {name!r}" if name is not None else f"no user #{user_id}")


def set_password(by: By, *, name: str, password: str, generated: bool = False) -> Done:
    """Give a user a new password (user.passwd); ends their sessions."""

    def apply() -> Applied:
        user = _user(by, name=name)
        accounts.set_password(
            session=by.session, store=by.store, name=name, password=password, now=by.now
        )
        return Applied(name, user.scope_code, password if generated else None)

    return _change(by, "user.passwd", name, apply, {"generated": generated})


def set_disabled(by: By, *, user_id: int, disabled: bool) -> Done:
    """Disable (user.disable: ends their sessions at once) or enable (user.enable) a user."""

    def apply() -> Applied:
        user = _user(by, user_id=user_id)
        if disabled:
            accounts.disable_user(session=by.session, store=by.store, name=user.name, now=by.now)
        else:
            accounts.enable_user(session=by.session, name=user.name, now=by.now)
        return Applied(user.name, user.scope_code)

    return _change(by, "user.disable" if disabled else "user.enable", f"#{user_id}", apply)


def add_display(by: By, *, name: str, scope_code: str, operator: bool) -> Done:
    """Enrol a display (display.add); its device token comes back as the secret."""

    def apply() -> Applied:
        token = displays.add_display(
            session=by.session, name=name, scope_code=scope_code, operator=operator, now=by.now
        )
        return Applied(name, scope_code, token)

    return _change(by, "display.add", name, apply, {"operator": operator})


def revoke_display(by: By, *, display_id: int) -> Done:
    """Revoke a display (display.revoke): its wall goes dark within a heartbeat."""

    def apply() -> Applied:
        found = [d for d in displays.list_displays(session=by.session) if d.id == display_id]
        if not found or not displays.revoke_display(
            session=by.session, name=found[0].name, now=by.now
        ):
            raise ValueError(f"no display #{display_id}, or it is revoked already")
        return Applied(found[0].name, found[0].scope_code)

    return _change(by, "display.revoke", f"#{display_id}", apply)


def add_key(by: By, *, source: str, role: str) -> Done:
    """Make an API key (key.add; target "#<id>"); the key comes back as the secret."""

    def apply() -> Applied:
        key = keys.add_key(
            session=by.session,
            source=source,
            role=role,
            now=by.now,
            created_by=by.access.principal.name,
        )
        info = keys.key_info(session=by.session, key=key)
        return Applied(f"#{info.id if info else '?'}", None, key)

    return _change(by, "key.add", source, apply, {"source": source, "role": role})


def revoke_key(by: By, *, key_id: int) -> Done:
    """Revoke an API key (key.revoke)."""

    def apply() -> Applied:
        if not keys.revoke_key(session=by.session, key_id=key_id, now=by.now):
            raise ValueError(f"no key #{key_id}, or it is revoked already")
        return Applied(f"#{key_id}")

    return _change(by, "key.revoke", f"#{key_id}", apply)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """The audit page's filters as typed (dates YYYY-MM-DD in the deployment's zone, inclusive)."""

    actor: str = ""
    action: str = ""
    outcome: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def of(cls, raw: object) -> AuditFilters:
        """From a dict of the fields (as the cursor keeps them); anything else is no filter."""
        values = raw if isinstance(raw, dict) else {}
        return cls(**{f.name: _text(values.get(f.name)) for f in fields(cls)})

    def query(self, tz: ZoneInfo) -> dict[str, Any]:
        """`list_audit`'s filter arguments. Raises ValueError for a date that is none."""

        def midnight(day: str, later: int = 0) -> datetime | None:
            if not day:
                return None
            local = datetime.combine(date.fromisoformat(day) + timedelta(later), time(), tz)
            return local.astimezone(UTC).replace(tzinfo=None)

        return {
            "actor": self.actor or None,
            "action": self.action or None,
            "outcome": None if self.outcome in ("", ANY) else self.outcome,
            "since": midnight(self.since),
            "until": midnight(self.until, 1),
        }


def audit_page(
    session: Session, access: Access, filters: AuditFilters, tz: ZoneInfo, before_id: int | None
) -> tuple[list[AuditEntry], bool]:
    """A page of the audit log, newest first, and whether older lines follow."""
    if not access.principal.may(Permission.ADMIN):
        raise Forbidden(NOT_ADMIN)
    size = AUDIT_PAGE
    found = audit.list_audit(
        session=session, **filters.query(tz), before_id=before_id, limit=size + 1
    )
    return found[:size], len(found) > size


def _text(value: object) -> str:
    """A form field's value (a forged body may send anything)."""
    return value.strip() if isinstance(value, str) else ""


# ---------------------------------------------------------------- embed grants (嵌入授权)


def add_embed_grant(
    by: By,
    *,
    name: str,
    scope_code: str,
    panels: list[str],
    origins: str,
    max_ttl_s: int,
    limits: TokenLimits,
) -> Done:
    """Make an embed grant (embed.add); refused with `GrantRefused`'s reason (the field and why)."""

    def apply() -> Applied:
        grant = embed_grants.add_grant(
            session=by.session,
            name=name,
            scope_code=scope_code,
            panels=panels,
            origins=origins,
            max_ttl_s=max_ttl_s,
            created_by=by.access.principal.name,
            now=by.now,
            limits=limits,
        )
        return Applied(grant.name, grant.scope_code)

    detail = {"panels": ",".join(panels)[:200], "origins": origins[:300], "max_ttl_s": max_ttl_s}
    return _change(by, "embed.add", name, apply, detail)


def revoke_embed_grant(by: By, *, grant_id: int) -> Done:
    """Revoke an embed grant (embed.revoke): its tokens are refused from their next request."""

    def apply() -> Applied:
        grant = embed_grants.grant_of(session=by.session, grant_id=grant_id)
        if grant is None or not embed_grants.revoke_grant(
            session=by.session, name=grant.name, now=by.now
        ):
            raise ValueError(f"no embed grant #{grant_id}, or it is revoked already")
        return Applied(grant.name, grant.scope_code)

    return _change(by, "embed.revoke", f"#{grant_id}", apply)
