"""Callbacks of the admin page `/admin` (系统管理): each draws a list or makes one of the audited
changes of `data_sources/access/admin.py` (a change and its audit line commit together)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from dash import ALL, Dash, Input, Output, Patch, State, ctx, no_update
from dash.development.base_component import Component
from dash.exceptions import PreventUpdate
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callbacks.query import parse_query
from data_sources.access import accounts, displays, keys
from data_sources.access.admin import (
    NOT_ADMIN,
    AuditFilters,
    By,
    Done,
    add_display,
    add_embed_grant,
    add_key,
    add_user,
    audit_page,
    revoke_display,
    revoke_embed_grant,
    revoke_key,
    set_disabled,
    set_password,
)
from data_sources.access.audit import AuditEntry
from data_sources.access.guard import CallbackPolicies, CallbackPolicy, current_access
from data_sources.access.model import Forbidden, Permission
from data_sources.access.passwords import generate_password
from data_sources.embed import grants as embed_grants
from data_sources.embed.grants import GRANT_MIN_TTL_S
from data_sources.embed.tokens import TokenLimits
from data_sources.store import node_by_code
from layouts import admin as layout
from layouts import ids
from layouts.i18n import LANGS, Lang, t

if TYPE_CHECKING:
    from data_sources.services import Services

log = logging.getLogger(__name__)
A = ids.Admin
T = TypeVar("T")


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


def _panels(value: object) -> list[str]:
    """The panels ticked (a forged body may send anything: what is no string is dropped)."""
    return [p for p in value if isinstance(p, str)] if isinstance(value, list) else []


def _seconds(value: object, empty: int) -> int | None:
    """A number field's whole number (an int, an integral float, ASCII digits), `empty` when it
    is empty, else None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return empty
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


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

    def embeds_of(session: Session, lang: Lang) -> layout.Embeds:
        made = embed_grants.list_grants(session=session)
        nodes = {
            code: node_by_code(session=session, code=code) for code in {g.scope_code for g in made}
        }
        return layout.Embeds(
            made,
            {code: node.name(lang) for code, node in nodes.items() if node is not None},
            tuple(services.settings.embed_allowed_origins),
            services.settings.embed_token_max_s,
        )

    def embeds_table(session: Session, lang: Lang) -> Component:
        return layout.embeds_table(embeds_of(session, lang), lang, services.tz)

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
                embeds=embeds_of(session, lang),
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

    # ---- embed grants
    declare(A.EMBED_ADD_RESULT, "embed.add")

    @app.callback(
        Output(A.EMBED_ADD_RESULT, "children"),
        Output(A.EMBEDS, "children", allow_duplicate=True),
        Input(A.EMBED_ADD, "n_clicks"),
        State(A.EMBED_NAME, "value"),
        State(A.EMBED_SCOPE, "value"),
        State(A.EMBED_PANELS, "value"),
        State(A.EMBED_ORIGINS, "value"),
        State(A.EMBED_MAX_TTL, "value"),
        State(A.URL, "search"),
        prevent_initial_call=True,
    )
    async def embed_add(
        _add: object,
        name: object,
        scope: object,
        panels: object,
        origins: object,
        longest: object,
        search: object,
    ) -> tuple[Any, ...]:
        lang = _lang(search, default_lang)
        chosen = _panels(panels)
        required = {"admin_embed_name": name, "admin_scope": scope}
        if (note := missing(lang, **required, admin_embed_panels=",".join(chosen))) is not None:
            return note, no_update
        settings = services.settings
        limits = TokenLimits(settings.embed_token_default_s, settings.embed_token_max_s)
        # Empty: the deployment's longest, as `gridcc embed grant add` without --max-ttl.
        if (max_ttl_s := _seconds(longest, limits.max_s)) is None:
            text = t("admin_embed_bad_ttl", lang, low=GRANT_MIN_TTL_S, high=limits.max_s)
            return layout.result(text, ok=False), no_update
        note, table = await act(
            lang,
            lambda by: add_embed_grant(
                by,
                name=_text(name),
                scope_code=_text(scope),
                panels=chosen,
                origins=_text(origins),
                max_ttl_s=max_ttl_s,
                limits=limits,
            ),
            lambda session: embeds_table(session, lang),
            "admin_embed_added",
        )
        return note, no_update if table is None else table

    row_action(
        A.EMBED_REVOKE,
        "submit_n_clicks",
        A.EMBED_REVOKE_RESULT,
        A.EMBEDS,
        "embed.revoke",
        lambda by, i: revoke_embed_grant(by, grant_id=i),
        embeds_table,
        "admin_embed_revoked",
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
