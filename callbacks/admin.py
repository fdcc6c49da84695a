"""Callbacks of the admin page `/admin` (系统管理), and the audited changes they make.

Every change runs in one transaction with its audit line (`_change`): both commit, or the change
is rolled back and a "failed" line with the store's reason is written instead. The plain
functions (`add_user`, `revoke_key`…) take a session and the request's `Access`; the tests call
them. A secret made here (a password, a display's token, a key) is returned once, shown once and
never written to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from dash import ALL, Dash, Input, Output, Patch, State, ctx, no_update
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from callbacks.query import parse_query
from data_sources.access import accounts, audit, displays, keys
from data_sources.access.audit import AuditEntry
from data_sources.access.guard import Access, CallbackPolicies, CallbackPolicy, current_access
from data_sources.access.model import Forbidden, Permission, Role
from data_sources.access.passwords import check_password_policy
from data_sources.access.sessions import SessionStore
from layouts import admin as layout
from layouts import ids
from layouts.i18n import LANGS, Lang, t

if TYPE_CHECKING:
    from data_sources.services import Services

log = logging.getLogger(__name__)
A = ids.Admin
T = TypeVar("T")
NOT_ADMIN = "not an administrator"
#: Said of a failed insert instead of the database's message, which quotes the row (a hash).
CONFLICT = "it conflicts with an existing entry"


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


def generate_password() -> str:
    """A random password (96 bits) that meets the password policy."""
    while True:
        password = secrets.token_urlsafe(12)
        if check_password_policy(password) is None:
            return password


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
            "outcome": None if self.outcome in ("", layout.ANY) else self.outcome,
            "since": midnight(self.since),
            "until": midnight(self.until, 1),
        }


def audit_page(
    session: Session, access: Access, filters: AuditFilters, tz: ZoneInfo, before_id: int | None
) -> tuple[list[AuditEntry], bool]:
    """A page of the audit log, newest first, and whether older lines follow."""
    if not access.principal.may(Permission.ADMIN):
        raise Forbidden(NOT_ADMIN)
    size = layout.AUDIT_PAGE
    found = audit.list_audit(
        session=session, **filters.query(tz), before_id=before_id, limit=size + 1
    )
    return found[:size], len(found) > size


def display_url(href: object, token: str) -> str:
    """The enrolment URL of a display as the administrator's browser reaches this server."""
    parts = urlsplit(href) if isinstance(href, str) else None
    origin = f"{parts.scheme}://{parts.netloc}" if parts and parts.scheme and parts.netloc else ""
    return f"{origin}/display/{token}"


def _text(value: object) -> str:
    """A form field's value (a forged body may send anything)."""
    return value.strip() if isinstance(value, str) else ""


def _lang(search: object, default: Lang) -> Lang:
    lang = parse_query(search).get("lang", [default])[0]
    return lang if lang in LANGS else default


def _clicked_row() -> int:
    """The row whose button fired this callback; PreventUpdate when none was clicked (the
    buttons of a table drawn anew fire with no clicks)."""
    fired = ctx.triggered_id
    index = fired.get("index") if isinstance(fired, dict) else None
    clicked = any(item.get("value") for item in ctx.triggered)
    if not clicked or not isinstance(index, int) or isinstance(index, bool):
        raise PreventUpdate
    return index


# ---------------------------------------------------------------- callbacks


def register(app: Dash, services: Services, policies: CallbackPolicies) -> None:
    """The page's callbacks, each with its access policy (administrators only)."""
    default_lang = services.settings.default_lang

    def declare(output: ids.Admin, action: str | None = None) -> None:
        policies.declare(output, CallbackPolicy(Permission.ADMIN, action=action))

    def in_session(work: Callable[[Session], T]) -> T:
        with services.sessions() as session:
            return work(session)

    async def run(work: Callable[[Session], T]) -> T:
        """`work` on a session of its own in a thread (blocking SQL, argon2)."""
        return await asyncio.to_thread(in_session, work)

    def failed(lang: Lang) -> Component:
        log.exception("admin page: the database failed")
        return layout.result(t("admin_error", lang), ok=False)

    async def act(
        lang: Lang,
        change: Callable[[By], Done],
        redraw: Callable[[Session], T],
        ok_key: str,
        show: Callable[[str], str] = str,
        **values: str,
    ) -> tuple[Component, T | None]:
        """Make a change as the request's principal: the result to show, and the redrawn list
        (None unless done). `show` turns the secret made into what the admin is shown."""
        access = current_access()

        def work(session: Session) -> tuple[Done, T | None]:
            # The admin may have been signed out or disabled while this request waited.
            if services.identity.alive(access.principal) is False:
                raise Forbidden("your sign-in has ended")
            done = change(By(session, access, services.clock(), services.session_store))
            return done, redraw(session) if done.ok else None

        try:
            done, drawn = await run(work)
        except SQLAlchemyError:
            return failed(lang), None
        if done.ok:
            text = t(ok_key, lang, name=done.target, **values)
            secret = show(done.secret) if done.secret else None
            return layout.result(text, ok=True, secret=secret), drawn
        if done.reason == NOT_ADMIN:
            return layout.result(t("admin_refused", lang), ok=False), None
        return layout.result(t("admin_failed", lang, reason=done.reason), ok=False), None

    def missing(lang: Lang, **required: object) -> Component | None:
        """The note asking for the empty ones of the `required` fields (by label key), or None."""
        empty = [t(key, lang) for key, value in required.items() if not _text(value)]
        return (
            layout.result(t("admin_required", lang, fields="、".join(empty)), ok=False)
            if empty
            else None
        )

    def users_table(session: Session, lang: Lang) -> Component:
        return layout.users_table(accounts.list_users(session=session), lang, services.tz)

    def displays_table(session: Session, lang: Lang) -> Component:
        return layout.displays_table(displays.list_displays(session=session), lang, services.tz)

    def keys_table(session: Session, lang: Lang) -> Component:
        return layout.keys_table(keys.list_keys(session=session), lang, services.tz)

    def keys_changed() -> None:
        """The in-memory key ring (when the app has one) sees the change at once."""
        ring = getattr(services, "keys", None)
        if ring is not None:
            ring.invalidate()

    # ---- the page
    declare(A.CONTENT)

    @app.callback(
        Output(A.CONTENT, "children"),
        Output(A.TITLE, "children"),
        Output(A.LANG_LINK, "children"),
        Output(A.LANG_LINK, "href"),
        Input(A.URL, "search"),
    )
    async def render(search: object) -> tuple[Component, str, str, str]:
        lang = _lang(search, default_lang)
        access, tz = current_access(), services.tz

        def load(session: Session) -> Component:
            entries, more = audit_page(session, access, AuditFilters(), tz, None)
            return layout.content(
                lang,
                tz,
                users=accounts.list_users(session=session),
                displays=displays.list_displays(session=session),
                keys=keys.list_keys(session=session),
                audit=entries,
                more=more,
            )

        try:
            body = await run(load)
        except Forbidden:
            body = layout.result(t("admin_refused", lang), ok=False)
        except SQLAlchemyError:
            body = failed(lang)
        switch = layout.href("en" if lang == "zh" else "zh")
        return body, t("admin_title", lang), t("switch_lang", lang), switch

    # ---- users
    declare(A.USER_ADD_RESULT, "user.add")

    @app.callback(
        Output(A.USER_ADD_RESULT, "children"),
        Output(A.USERS, "children", allow_duplicate=True),
        Output(A.PASSWD_USER, "options"),
        Output(A.USER_PASSWORD, "value"),
        Output(A.USER_PASSWORD2, "value"),
        Input(A.USER_ADD, "n_clicks"),
        Input(A.USER_ADD_GENERATE, "n_clicks"),
        State(A.USER_NAME, "value"),
        State(A.USER_ROLE, "value"),
        State(A.USER_SCOPE, "value"),
        State(A.USER_PASSWORD, "value"),
        State(A.USER_PASSWORD2, "value"),
        State(A.URL, "search"),
        prevent_initial_call=True,
    )
    async def user_add(
        _add: object,
        _generate: object,
        name: object,
        role: object,
        scope: object,
        password: object,
        again: object,
        search: object,
    ) -> tuple[Any, ...]:
        lang = _lang(search, default_lang)
        generated = ctx.triggered_id == A.USER_ADD_GENERATE
        if (note := missing(lang, admin_user_name=name, admin_scope=scope)) is not None:
            return note, no_update, no_update, no_update, no_update
        if not generated and password != again:
            return (
                layout.result(t("admin_pw_mismatch", lang), ok=False),
                no_update,
                no_update,
                "",
                "",
            )
        pw = generate_password() if generated else password if isinstance(password, str) else ""
        note, drawn = await act(
            lang,
            lambda by: add_user(
                by,
                name=_text(name),
                role=_text(role),
                scope_code=_text(scope),
                password=pw,
                generated=generated,
            ),
            lambda session: accounts.list_users(session=session),
            "admin_user_added_secret" if generated else "admin_user_added",
        )
        if drawn is None:
            return note, no_update, no_update, "", ""
        table = layout.users_table(drawn, lang, services.tz)
        return note, table, layout.user_options(drawn), "", ""

    declare(A.PASSWD_RESULT, "user.passwd")

    @app.callback(
        Output(A.PASSWD_RESULT, "children"),
        Output(A.USERS, "children", allow_duplicate=True),
        Output(A.PASSWD_PASSWORD, "value"),
        Output(A.PASSWD_PASSWORD2, "value"),
        Input(A.PASSWD_SET, "n_clicks"),
        Input(A.PASSWD_GENERATE, "n_clicks"),
        State(A.PASSWD_USER, "value"),
        State(A.PASSWD_PASSWORD, "value"),
        State(A.PASSWD_PASSWORD2, "value"),
        State(A.URL, "search"),
        prevent_initial_call=True,
    )
    async def passwd(
        _set: object,
        _generate: object,
        name: object,
        password: object,
        again: object,
        search: object,
    ) -> tuple[Any, ...]:
        lang = _lang(search, default_lang)
        generated = ctx.triggered_id == A.PASSWD_GENERATE
        if not _text(name):
            return layout.result(t("admin_choose_user", lang), ok=False), no_update, "", ""
        if not generated and password != again:
            return layout.result(t("admin_pw_mismatch", lang), ok=False), no_update, "", ""
        pw = generate_password() if generated else password if isinstance(password, str) else ""
        note, table = await act(
            lang,
            lambda by: set_password(by, name=_text(name), password=pw, generated=generated),
            lambda session: users_table(session, lang),
            "admin_password_set_secret" if generated else "admin_password_set",
        )
        return note, no_update if table is None else table, "", ""

    def row_action(
        button: ids.Admin,
        prop: str,
        result: ids.Admin,
        table: ids.Admin,
        action: str,
        change: Callable[[By, int], Done],
        redraw: Callable[[Session, Lang], Component],
        ok_key: str,
        clears: ids.Admin | None = None,
        after: Callable[[], None] | None = None,
    ) -> None:
        """The callback of a table's row buttons of kind `button`: `change` the row's item,
        show the result in `result` (clearing `clears`), draw `table` anew and call `after`."""
        declare(result, action)
        cleared = [Output(clears, "children", allow_duplicate=True)] if clears else []

        @app.callback(
            Output(result, "children"),
            Output(table, "children", allow_duplicate=True),
            *cleared,
            Input({"type": str(button), "index": ALL}, prop),
            State(A.URL, "search"),
            prevent_initial_call=True,
        )
        async def on_row(_clicks: object, search: object) -> tuple[Any, ...]:
            lang = _lang(search, default_lang)
            index = _clicked_row()
            note, drawn = await act(
                lang, lambda by: change(by, index), lambda s: redraw(s, lang), ok_key
            )
            if after is not None and drawn is not None:
                after()
            return note, no_update if drawn is None else drawn, *([None] if clears else [])

    row_action(
        A.USER_DISABLE,
        "submit_n_clicks",
        A.USER_DISABLE_RESULT,
        A.USERS,
        "user.disable",
        lambda by, i: set_disabled(by, user_id=i, disabled=True),
        users_table,
        "admin_user_disabled",
        clears=A.USER_ENABLE_RESULT,
    )
    row_action(
        A.USER_ENABLE,
        "n_clicks",
        A.USER_ENABLE_RESULT,
        A.USERS,
        "user.enable",
        lambda by, i: set_disabled(by, user_id=i, disabled=False),
        users_table,
        "admin_user_enabled",
        clears=A.USER_DISABLE_RESULT,
    )

    # ---- displays
    declare(A.DISPLAY_ADD_RESULT, "display.add")

    @app.callback(
        Output(A.DISPLAY_ADD_RESULT, "children"),
        Output(A.DISPLAYS, "children", allow_duplicate=True),
        Input(A.DISPLAY_ADD, "n_clicks"),
        State(A.DISPLAY_NAME, "value"),
        State(A.DISPLAY_SCOPE, "value"),
        State(A.DISPLAY_OPERATOR, "value"),
        State(A.URL, "href"),
        State(A.URL, "search"),
        prevent_initial_call=True,
    )
    async def display_add(
        _add: object, name: object, scope: object, operator: object, href: object, search: object
    ) -> tuple[Any, ...]:
        lang = _lang(search, default_lang)
        if (note := missing(lang, admin_display_name=name, admin_scope=scope)) is not None:
            return note, no_update
        note, table = await act(
            lang,
            lambda by: add_display(
                by, name=_text(name), scope_code=_text(scope), operator=operator is True
            ),
            lambda session: displays_table(session, lang),
            "admin_display_added",
            show=lambda token: display_url(href, token),
        )
        return note, no_update if table is None else table

    row_action(
        A.DISPLAY_REVOKE,
        "submit_n_clicks",
        A.DISPLAY_REVOKE_RESULT,
        A.DISPLAYS,
        "display.revoke",
        lambda by, i: revoke_display(by, display_id=i),
        displays_table,
        "admin_display_revoked",
    )

    # ---- API keys
    declare(A.KEY_ADD_RESULT, "key.add")

    @app.callback(
        Output(A.KEY_ADD_RESULT, "children"),
        Output(A.KEYS, "children", allow_duplicate=True),
        Input(A.KEY_ADD, "n_clicks"),
        State(A.KEY_SOURCE, "value"),
        State(A.KEY_ROLE, "value"),
        State(A.URL, "search"),
        prevent_initial_call=True,
    )
    async def key_add(
        _add: object, source: object, role: object, search: object
    ) -> tuple[Any, ...]:
        lang = _lang(search, default_lang)
        if (note := missing(lang, admin_source=source)) is not None:
            return note, no_update
        note, table = await act(
            lang,
            lambda by: add_key(by, source=_text(source), role=_text(role)),
            lambda session: keys_table(session, lang),
            "admin_key_added",
            source=_text(source),
        )
        if table is not None:
            keys_changed()
        return note, no_update if table is None else table

    row_action(
        A.KEY_REVOKE,
        "submit_n_clicks",
        A.KEY_REVOKE_RESULT,
        A.KEYS,
        "key.revoke",
        lambda by, i: revoke_key(by, key_id=i),
        keys_table,
        "admin_key_revoked",
        after=keys_changed,
    )

    # ---- the audit log
    async def audit_lines(
        filters: AuditFilters, before: int | None
    ) -> tuple[list[AuditEntry], bool]:
        access = current_access()
        return await run(lambda session: audit_page(session, access, filters, services.tz, before))

    declare(A.AUDIT_TABLE)

    @app.callback(
        Output(A.AUDIT_TABLE, "children"),
        Output(A.AUDIT_STATUS, "children", allow_duplicate=True),
        Output(A.AUDIT_CURSOR, "data", allow_duplicate=True),
        Output(A.AUDIT_MORE, "disabled", allow_duplicate=True),
        Input(A.AUDIT_SEARCH, "n_clicks"),
        State(A.AUDIT_ACTOR, "value"),
        State(A.AUDIT_ACTION, "value"),
        State(A.AUDIT_OUTCOME, "value"),
        State(A.AUDIT_SINCE, "value"),
        State(A.AUDIT_UNTIL, "value"),
        State(A.URL, "search"),
        prevent_initial_call=True,
    )
    async def audit_search(
        _search: object,
        actor: object,
        action: object,
        outcome: object,
        since: object,
        until: object,
        search: object,
    ) -> tuple[Any, ...]:
        lang = _lang(search, default_lang)
        filters = AuditFilters(*(_text(v) for v in (actor, action, outcome, since, until)))
        try:
            entries, more = await audit_lines(filters, None)
        except ValueError:
            return no_update, t("admin_bad_date", lang), no_update, no_update
        except Forbidden:
            return no_update, t("admin_refused", lang), no_update, True
        except SQLAlchemyError:
            return no_update, failed(lang), no_update, no_update
        cursor = layout.audit_cursor(asdict(filters), entries, len(entries))
        status = layout.audit_status(len(entries), lang, services.tz)
        return layout.audit_table(entries, lang, services.tz), status, cursor, not more

    declare(A.AUDIT_BODY)

    @app.callback(
        Output(A.AUDIT_BODY, "children"),
        Output(A.AUDIT_STATUS, "children", allow_duplicate=True),
        Output(A.AUDIT_CURSOR, "data", allow_duplicate=True),
        Output(A.AUDIT_MORE, "disabled", allow_duplicate=True),
        Input(A.AUDIT_MORE, "n_clicks"),
        State(A.AUDIT_CURSOR, "data"),
        State(A.URL, "search"),
        prevent_initial_call=True,
    )
    async def audit_more(_more: object, cursor: object, search: object) -> tuple[Any, ...]:
        lang = _lang(search, default_lang)
        kept = cursor if isinstance(cursor, dict) else {}
        before, shown = kept.get("before_id"), kept.get("shown")
        if not isinstance(before, int) or not isinstance(shown, int):
            raise PreventUpdate
        filters = AuditFilters.of(kept.get("filters"))
        try:
            entries, more = await audit_lines(filters, before)
        except (ValueError, Forbidden):
            return no_update, t("admin_refused", lang), no_update, True
        except SQLAlchemyError:
            return no_update, failed(lang), no_update, no_update
        rows = Patch()  # appended to the rows shown: the page keeps its place
        rows.extend(layout.audit_rows(entries, lang, services.tz))
        shown += len(entries)
        cursor = layout.audit_cursor(asdict(filters), entries, shown) if entries else cursor
        return rows, layout.audit_status(shown, lang, services.tz), cursor, not more
