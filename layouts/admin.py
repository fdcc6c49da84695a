"""The administration page `/admin` (系统管理): users, displays, API keys, embed grants and the
audit log.

Pure functions of the store's lists, which hold no password hash, token or key; a secret just made
is shown once, in the result of the action that made it, never in a table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from data_sources.access.accounts import UserInfo
from data_sources.access.admin import ANY
from data_sources.access.audit import AuditEntry
from data_sources.access.displays import DisplayInfo
from data_sources.access.keys import KeyInfo, KeyRole
from data_sources.access.model import Role
from data_sources.embed.grants import GrantInfo
from data_sources.embed.panels import PANELS
from data_sources.embed.tokens import TOKEN_MAX_S
from layouts import ids
from layouts.i18n import Lang, t

Admin = ids.Admin
#: The audit log's outcomes (the filter's choices besides "any").
OUTCOMES = ("ok", "denied", "failed")
#: Principal kinds with a label of their own; another kind is shown as stored.
KINDS = ("user", "display", "anonymous", "key", "unknown", "cli")
#: An audit line's detail is cut here in the table: the page stays a list, not a dump.
DETAIL_MAX = 300
_CARD = "mb-3 bg-transparent border-info-subtle"


def href(lang: Lang) -> str:
    """The admin page's URL in `lang`."""
    return "/admin?" + urlencode({"lang": lang})


def local_time(at: datetime | None, tz: ZoneInfo, seconds: bool = False) -> str:
    """A stored naive-UTC time in the deployment's zone ("—" for none)."""
    if at is None:
        return "—"
    local = at.replace(tzinfo=ZoneInfo("UTC")).astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M:%S}" if seconds else f"{local:%Y-%m-%d %H:%M}"


def page(body: Component | None = None) -> Component:
    """The page shell; the content is filled from the URL (its language) by a callback."""
    # Only the whole page's drawing shows the spinner: an action must not blank its tab.
    targets: Any = {str(Admin.CONTENT): "children"}
    navbar = dbc.Navbar(
        dbc.Container(
            [
                html.Span(id=Admin.TITLE, className="navbar-brand gridcc-brand"),
                html.A(id=Admin.LANG_LINK, className="btn btn-outline-info btn-sm"),
            ],
            fluid=True,
        ),
        color="dark",
        dark=True,
        className="mb-3 gridcc-navbar",
    )
    loading = dcc.Loading(
        html.Div(body, id=Admin.CONTENT), delay_show=400, type="dot", target_components=targets
    )
    children = [
        dcc.Location(id=Admin.URL, refresh=False),
        navbar,
        dbc.Container(loading, fluid=True),
    ]
    return html.Div(children, className="gridcc-admin")


@dataclass(frozen=True, slots=True)
class Embeds:
    """What the embeds tab shows: the grants, their areas' names in the page's language (by
    code; an area gone is shown by its code), the origins that frame a grant naming none
    (GRIDCC_EMBED_ALLOWED_ORIGINS) and the deployment's longest token (GRIDCC_EMBED_TOKEN_MAX_S)."""

    grants: Sequence[GrantInfo] = ()
    areas: Mapping[str, str] = field(default_factory=dict)
    default_origins: tuple[str, ...] = ()
    max_ttl_s: int = TOKEN_MAX_S


def content(
    lang: Lang,
    tz: ZoneInfo,
    *,
    users: Sequence[UserInfo],
    displays: Sequence[DisplayInfo],
    keys: Sequence[KeyInfo],
    audit: Sequence[AuditEntry],
    more: bool = False,
    embeds: Embeds | None = None,
) -> Component:
    """The page body, a tab per kind of thing an administrator manages; `more`: the audit log
    has lines older than `audit`."""
    tabs = (
        ("users", users_panel(users, lang, tz)),
        ("displays", displays_panel(displays, lang, tz)),
        ("keys", keys_panel(keys, lang, tz)),
        ("embeds", embeds_panel(embeds or Embeds(), lang, tz)),
        ("audit", audit_panel(audit, more, lang, tz)),
    )
    tab_list = [
        dbc.Tab(body, label=t(f"admin_tab_{name}", lang), tab_id=name, className="pt-3")
        for name, body in tabs
    ]
    result: Component = dbc.Tabs(tab_list, id=Admin.TABS, active_tab="users")
    return result


def validation_page() -> Component:
    """The page with every id its callbacks name (the router swaps the body in)."""
    return page(content("zh", ZoneInfo("UTC"), users=[], displays=[], keys=[], audit=[]))


def result(text: str, *, ok: bool, secret: str | None = None) -> Component:
    """An action's outcome; `secret` (a password, display URL or key) is shown this once."""
    children: list[Component] = [html.Div(text)]
    if secret is not None:
        children.append(html.Code(secret, className="d-block mt-2 user-select-all text-break fs-6"))
    color = "success" if ok else "danger"
    alert: Component = dbc.Alert(children, color=color, className="py-2", dismissable=True)
    return alert


# ---------------------------------------------------------------- parts


def _field(
    label: str, id_: str, md: int, control: Component | None = None, kind: str = "text"
) -> dbc.Col:
    """A labelled form field: a text (or `kind`) input unless `control` is given."""
    if control is None:
        # A password field here is always someone else's new one: never the browser's autofill.
        complete = "new-password" if kind == "password" else "off"
        control = dbc.Input(id=id_, type=kind, autocomplete=complete, size="sm", value="")
    return dbc.Col([dbc.Label(label, html_for=id_), control], md=md, className="mb-2")


def _select(
    id_: str, options: list[dict[str, str]], value: str, placeholder: str | None = None
) -> dbc.Select:
    return dbc.Select(id=id_, options=options, value=value, placeholder=placeholder, size="sm")


def _button(label: str, id_: str, primary: bool = True) -> dbc.Button:
    color = "info" if primary else "outline-info"
    return dbc.Button(label, id=id_, color=color, size="sm", className="me-2")


def _form(title: str, fields: list[dbc.Col], buttons: list[Component], result_id: str) -> Component:
    body = [html.H6(title), dbc.Row(fields), *buttons, html.Div(id=result_id, className="mt-2")]
    card: Component = dbc.Card(dbc.CardBody(body), className=_CARD)
    return card


def _table(
    columns: Sequence[str],
    rows: Sequence[Component],
    lang: Lang,
    body_id: str = "",
    small: bool = False,
) -> Any:
    header = html.Thead(html.Tr([html.Th(t(c, lang), className="text-nowrap") for c in columns]))
    body = html.Tbody(list(rows), id=body_id) if body_id else html.Tbody(list(rows))
    look = "gridcc-table mb-2" + (" small" if small else "")
    return dbc.Table([header, body], hover=True, size="sm", className=look)


def _rows_table(
    columns: Sequence[str], rows: Sequence[tuple[Sequence[str], Component | str]], lang: Lang
) -> Component:
    """A list with a text cell per column but the last, which holds the row's action."""
    if not rows:
        return html.Div(t("admin_none", lang), className="text-secondary mb-3")
    trs = [
        html.Tr([*(html.Td(c, className="text-break") for c in cells), html.Td(action)])
        for cells, action in rows
    ]
    return _table([*columns, "admin_actions"], trs, lang)  # type: ignore[no-any-return]


def _confirmed(kind: Admin, index: int, label: str, message: str) -> Component:
    """A row's button that acts only once the browser's confirm dialog says yes."""
    button = dbc.Button(label, color="outline-danger", size="sm")
    return dcc.ConfirmDialogProvider(button, id=ids.row_action(kind, index), message=message)


# ---------------------------------------------------------------- users 用户


def user_options(users: Sequence[UserInfo]) -> list[dict[str, str]]:
    """The choices of the new-password form: every user by name."""
    return [{"label": u.name, "value": u.name} for u in users]


def users_table(users: Sequence[UserInfo], lang: Lang, tz: ZoneInfo) -> Component:
    rows = []
    for u in users:
        action = (
            _confirmed(
                Admin.USER_DISABLE,
                u.id,
                t("admin_disable", lang),
                t("admin_confirm_disable", lang, name=u.name),
            )
            if u.disabled_at is None
            else dbc.Button(
                t("admin_enable", lang),
                id=ids.row_action(Admin.USER_ENABLE, u.id),
                color="outline-success",
                size="sm",
            )
        )
        role = t(f"admin_role_{u.role.value}", lang)
        times = (u.created_at, u.disabled_at, u.locked_until)
        rows.append(([u.name, role, u.scope_code, *(local_time(x, tz) for x in times)], action))
    columns = ("admin_user_name", "admin_role", "admin_scope", "admin_created", "admin_disabled")
    return _rows_table([*columns, "admin_locked_until"], rows, lang)


def users_panel(users: Sequence[UserInfo], lang: Lang, tz: ZoneInfo) -> Component:
    roles = [{"label": t(f"admin_role_{r.value}", lang), "value": r.value} for r in Role]
    add = _form(
        t("admin_add_user", lang),
        [
            _field(t("admin_user_name", lang), Admin.USER_NAME, 3),
            _field(
                t("admin_role", lang), Admin.USER_ROLE, 3, _select(Admin.USER_ROLE, roles, "leader")
            ),
            _field(t("admin_scope", lang), Admin.USER_SCOPE, 2),
            _field(t("admin_password", lang), Admin.USER_PASSWORD, 2, kind="password"),
            _field(t("admin_password2", lang), Admin.USER_PASSWORD2, 2, kind="password"),
        ],
        [
            _button(t("admin_add", lang), Admin.USER_ADD),
            _button(t("admin_add_generate", lang), Admin.USER_ADD_GENERATE, primary=False),
        ],
        Admin.USER_ADD_RESULT,
    )
    names = _select(Admin.PASSWD_USER, user_options(users), "", t("admin_choose_user", lang))
    passwd = _form(
        t("admin_set_password", lang),
        [
            _field(t("admin_user_name", lang), Admin.PASSWD_USER, 4, names),
            _field(t("admin_new_password", lang), Admin.PASSWD_PASSWORD, 4, kind="password"),
            _field(t("admin_password2", lang), Admin.PASSWD_PASSWORD2, 4, kind="password"),
        ],
        [
            _button(t("admin_set", lang), Admin.PASSWD_SET),
            _button(t("admin_generate", lang), Admin.PASSWD_GENERATE, primary=False),
        ],
        Admin.PASSWD_RESULT,
    )
    return html.Div(
        [
            html.Div(id=Admin.USER_DISABLE_RESULT),
            html.Div(id=Admin.USER_ENABLE_RESULT),
            html.Div(users_table(users, lang, tz), id=Admin.USERS),
            dbc.Row([dbc.Col(add, xl=7), dbc.Col(passwd, xl=5)]),
        ]
    )


# ---------------------------------------------------------------- displays 显示终端


def displays_table(displays: Sequence[DisplayInfo], lang: Lang, tz: ZoneInfo) -> Component:
    rows = []
    for d in displays:
        message = t("admin_confirm_revoke_display", lang, name=d.name)
        revoke = t("admin_revoke", lang)
        action = _confirmed(Admin.DISPLAY_REVOKE, d.id, revoke, message) if not d.revoked else ""
        operator = t("admin_yes" if d.operator else "admin_no", lang)
        times = (local_time(d.created_at, tz), local_time(d.revoked_at, tz))
        rows.append(([d.name, d.scope_code, operator, *times], action))
    columns = ("admin_display_name", "admin_scope", "admin_operator", "admin_created")
    return _rows_table([*columns, "admin_revoked"], rows, lang)


def displays_panel(displays: Sequence[DisplayInfo], lang: Lang, tz: ZoneInfo) -> Component:
    operator = dbc.Checkbox(
        id=Admin.DISPLAY_OPERATOR, label=t("admin_operator_hint", lang), value=False
    )
    add = _form(
        t("admin_add_display", lang),
        [
            _field(t("admin_display_name", lang), Admin.DISPLAY_NAME, 4),
            _field(t("admin_scope", lang), Admin.DISPLAY_SCOPE, 3),
            dbc.Col(operator, md=5, className="mb-2 d-flex align-items-end"),
        ],
        [_button(t("admin_enrol", lang), Admin.DISPLAY_ADD)],
        Admin.DISPLAY_ADD_RESULT,
    )
    return html.Div(
        [
            html.Div(id=Admin.DISPLAY_REVOKE_RESULT),
            html.Div(displays_table(displays, lang, tz), id=Admin.DISPLAYS),
            dbc.Row(dbc.Col(add, xl=8)),
        ]
    )


# ---------------------------------------------------------------- API keys 接入密钥


def keys_table(keys: Sequence[KeyInfo], lang: Lang, tz: ZoneInfo) -> Component:
    rows = []
    for k in keys:
        message = t("admin_confirm_revoke_key", lang, name=f"#{k.id}", source=k.source)
        revoke = t("admin_revoke", lang)
        action = _confirmed(Admin.KEY_REVOKE, k.id, revoke, message) if k.revoked_at is None else ""
        role = t(f"admin_key_role_{k.role.value}", lang)
        created, revoked = local_time(k.created_at, tz), local_time(k.revoked_at, tz)
        rows.append(([f"#{k.id}", k.source, role, created, k.created_by or "—", revoked], action))
    columns = ("admin_key_id", "admin_source", "admin_role", "admin_created", "admin_created_by")
    return _rows_table([*columns, "admin_revoked"], rows, lang)


def keys_panel(keys: Sequence[KeyInfo], lang: Lang, tz: ZoneInfo) -> Component:
    roles = [{"label": t(f"admin_key_role_{r.value}", lang), "value": r.value} for r in KeyRole]
    add = _form(
        t("admin_add_key", lang),
        [
            _field(t("admin_source", lang), Admin.KEY_SOURCE, 6),
            _field(
                t("admin_role", lang), Admin.KEY_ROLE, 6, _select(Admin.KEY_ROLE, roles, "ingest")
            ),
        ],
        [_button(t("admin_create", lang), Admin.KEY_ADD)],
        Admin.KEY_ADD_RESULT,
    )
    return html.Div(
        [
            html.Div(id=Admin.KEY_REVOKE_RESULT),
            html.Div(keys_table(keys, lang, tz), id=Admin.KEYS),
            dbc.Row(dbc.Col(add, xl=6)),
        ]
    )


# ---------------------------------------------------------------- embed grants 嵌入授权


def grant_origins(grant: GrantInfo, default: tuple[str, ...], lang: Lang) -> str:
    """The origins that may frame a grant's embeds: its own, else the deployment's, said so."""
    if grant.origins:
        return " ".join(grant.origins)
    if default:
        return t("admin_embed_origins_default", lang, origins=" ".join(default))
    return t("admin_embed_origins_unset", lang)


def embeds_table(embeds: Embeds, lang: Lang, tz: ZoneInfo) -> Component:
    rows = []
    for g in embeds.grants:
        message = t("admin_confirm_revoke_embed", lang, name=g.name)
        revoke = t("admin_revoke", lang)
        action = _confirmed(Admin.EMBED_REVOKE, g.id, revoke, message) if not g.revoked else ""
        name = embeds.areas.get(g.scope_code)
        area = f"{g.scope_code} {name}" if name and name != g.scope_code else g.scope_code
        cells = [
            *(g.name, area, ", ".join(g.panels), grant_origins(g, embeds.default_origins, lang)),
            t("admin_embed_seconds", lang, n=g.max_ttl_s),
            *(g.created_by, local_time(g.created_at, tz), local_time(g.revoked_at, tz)),
        ]
        rows.append((cells, action))
    columns = ("admin_embed_name", "admin_area", "admin_embed_panels", "admin_embed_origins")
    more = ("admin_embed_max_ttl", "admin_created_by", "admin_created", "admin_revoked")
    return _rows_table([*columns, *more], rows, lang)


def embeds_panel(embeds: Embeds, lang: Lang, tz: ZoneInfo) -> Component:
    panels = dbc.Checklist(
        id=Admin.EMBED_PANELS,
        options=[{"label": t(f"admin_panel_{p}", lang) + f" ({p})", "value": p} for p in PANELS],
        value=[],
        inline=True,
    )
    longest = dbc.Input(
        id=Admin.EMBED_MAX_TTL,
        # No min or max: the browser would refuse a number out of them without saying why; the
        # grant's refusal does (GRANT_MIN_TTL_S to GRIDCC_EMBED_TOKEN_MAX_S).
        type="number",
        placeholder=str(embeds.max_ttl_s),
        autocomplete="off",
        size="sm",
        value="",
    )
    hint = t("admin_embed_max_ttl_hint", lang)
    add = _form(
        t("admin_add_embed", lang),
        [
            _field(t("admin_embed_name", lang), Admin.EMBED_NAME, 4),
            _field(t("admin_scope", lang), Admin.EMBED_SCOPE, 4),
            _field(hint, Admin.EMBED_MAX_TTL, 4, longest),
            _field(t("admin_embed_origins_hint", lang), Admin.EMBED_ORIGINS, 12),
            _field(t("admin_embed_panels", lang), Admin.EMBED_PANELS, 12, panels),
        ],
        [_button(t("admin_create", lang), Admin.EMBED_ADD)],
        Admin.EMBED_ADD_RESULT,
    )
    return html.Div(
        [
            html.Div(id=Admin.EMBED_REVOKE_RESULT),
            html.Div(embeds_table(embeds, lang, tz), id=Admin.EMBEDS),
            dbc.Row(dbc.Col(add, xl=8)),
        ]
    )


# ---------------------------------------------------------------- audit log 审计日志


def detail_text(detail: dict[str, Any] | None) -> str:
    """An audit line's detail as one short line of JSON."""
    if not detail:
        return ""
    text = json.dumps(detail, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


def audit_rows(entries: Sequence[AuditEntry], lang: Lang, tz: ZoneInfo) -> list[Component]:
    """The table rows of audit lines, in the order given (newest first)."""
    colour = {"denied": "text-warning", "failed": "text-danger"}
    rows: list[Component] = []
    for e in entries:
        kind = t(f"admin_kind_{e.actor_kind}", lang) if e.actor_kind in KINDS else e.actor_kind
        outcome = t(f"admin_outcome_{e.outcome}", lang) if e.outcome in OUTCOMES else e.outcome
        cells = [
            html.Td(local_time(e.at, tz, seconds=True), className="text-nowrap"),
            html.Td(e.actor, className="text-break"),
            html.Td(kind, className="text-nowrap"),
            html.Td(e.action, className="text-nowrap"),
            html.Td(outcome, className=colour.get(e.outcome, "")),
            html.Td(e.scope_code or "", className="text-nowrap"),
            *(html.Td(x or "", className="text-break") for x in (e.target, e.client)),
            html.Td(detail_text(e.detail), className="text-break"),
        ]
        rows.append(html.Tr(cells))
    return rows


AUDIT_COLUMNS = (
    *("admin_time", "admin_actor", "admin_kind", "admin_action", "admin_outcome"),
    *("admin_area", "admin_target", "admin_client", "admin_detail"),
)


def audit_table(entries: Sequence[AuditEntry], lang: Lang, tz: ZoneInfo) -> Component:
    rows = audit_rows(entries, lang, tz)
    return _table(AUDIT_COLUMNS, rows, lang, body_id=Admin.AUDIT_BODY, small=True)  # type: ignore[no-any-return]


def audit_status(shown: int, lang: Lang, tz: ZoneInfo) -> str:
    return t("admin_audit_status", lang, n=shown, tz=str(tz))


def audit_cursor(
    filters: dict[str, str], entries: Sequence[AuditEntry], shown: int
) -> dict[str, Any]:
    """What "more" continues from: the filters the list was drawn with, its last line, and how
    many lines it shows."""
    return {"filters": filters, "before_id": entries[-1].id if entries else None, "shown": shown}


def audit_panel(entries: Sequence[AuditEntry], more: bool, lang: Lang, tz: ZoneInfo) -> Component:
    outcomes = [{"label": t("admin_outcome_any", lang), "value": ANY}]
    outcomes += [{"label": t(f"admin_outcome_{o}", lang), "value": o} for o in OUTCOMES]
    search = _button(t("admin_search", lang), Admin.AUDIT_SEARCH)
    filters = [
        _field(t("admin_actor", lang), Admin.AUDIT_ACTOR, 2),
        _field(t("admin_action_prefix", lang), Admin.AUDIT_ACTION, 2),
        _field(
            t("admin_outcome", lang),
            Admin.AUDIT_OUTCOME,
            2,
            _select(Admin.AUDIT_OUTCOME, outcomes, ANY),
        ),
        _field(t("admin_since", lang), Admin.AUDIT_SINCE, 2, kind="date"),
        _field(t("admin_until", lang), Admin.AUDIT_UNTIL, 2, kind="date"),
        dbc.Col(search, md=2, className="mb-2 d-flex align-items-end"),
    ]
    more_button = dbc.Button(
        t("admin_more", lang),
        id=Admin.AUDIT_MORE,
        color="outline-info",
        size="sm",
        disabled=not more,
        className="mb-3",
    )
    return html.Div(
        [
            dbc.Row(filters),
            html.Div(audit_status(len(entries), lang, tz), id=Admin.AUDIT_STATUS),
            html.Div(audit_table(entries, lang, tz), id=Admin.AUDIT_TABLE),
            dcc.Store(id=Admin.AUDIT_CURSOR, data=audit_cursor({}, entries, len(entries))),
            more_button,
        ]
    )
