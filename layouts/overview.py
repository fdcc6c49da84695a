"""The laptop overview `/`: a scope's KPIs and the figures of each of its children, drillable."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from data_sources.model import CaseStatus
from data_sources.overview import FeedItem, NodeFigures, Overview
from layouts import ids
from layouts.i18n import Lang, number, percent, t

#: (Kpis/Resources field, formatter kind) of the tiles, in display order.
TILES: tuple[tuple[str, str], ...] = (
    ("open", "count"),
    ("overdue", "count"),
    ("closure_rate", "rate"),
    ("on_time_rate", "rate"),
    ("rework_rate", "rate"),
    ("satisfaction_rate", "rate"),
    ("grassroots_rate", "rate"),
    ("mean_handling_hours", "hours"),
    ("workers", "count"),
    ("cameras", "count"),
    ("active_alarms", "count"),
)


#: Figures that the live stream updates in the browser.
LIVE_CELLS = ("open", "active_alarms")


def href(code: str, lang: Lang) -> str:
    """The overview URL of node `code`."""
    return "/?" + urlencode({"scope": code, "lang": lang})


def page() -> Component:
    """The page shell; the content is filled from the URL by a callback."""
    return html.Div(
        [
            dcc.Location(id=ids.Overview.URL, refresh=False),
            dcc.Store(id=ids.Overview.RESYNC),
            dbc.Navbar(
                dbc.Container(
                    [
                        html.Span(id=ids.Overview.TITLE, className="navbar-brand gridcc-brand"),
                        html.Div(
                            [
                                html.Span("●", id=ids.Overview.LIVE, className="gridcc-live"),
                                html.A(
                                    id=ids.Overview.LANG_LINK,
                                    className="btn btn-outline-info btn-sm ms-3",
                                ),
                                html.Div(id=ids.Overview.ACCOUNT, className="d-flex ms-3"),
                            ],
                            className="d-flex align-items-center",
                        ),
                    ],
                    fluid=True,
                ),
                color="dark",
                dark=True,
                className="mb-3 gridcc-navbar",
            ),
            dbc.Container(
                dcc.Loading(html.Div(id=ids.Overview.CONTENT), delay_show=400, type="dot"),
                fluid=True,
            ),
        ],
        className="gridcc-overview",
    )


def account(
    kind: str, name: str, csrf: str | None, admin: bool, lang: Lang, here: str
) -> list[Component]:
    """Who is signed in and a sign-out button (a plain form: no script), a way to the admin page
    for administrators; a sign-in link for an anonymous visitor (`here`: the page to come back
    to); nothing for a display."""
    if kind == "anonymous":
        login = "/login?" + urlencode({"next": here, "lang": lang})
        return [html.A(t("sign_in", lang), href=login, className="btn btn-outline-light btn-sm")]
    if kind != "user" or not csrf:
        return []
    parts: list[Component] = [html.Span(name, className="navbar-text me-2 gridcc-user")]
    if admin:
        parts.append(
            html.A(
                t("administration", lang),
                href=f"/admin?lang={lang}",
                className="btn btn-outline-light btn-sm me-2",
            )
        )
    parts.append(
        html.Form(
            # The button sends the session's CSRF secret as its own form value (submitter).
            html.Button(
                t("sign_out", lang),
                type="submit",
                name="csrf",
                value=csrf,
                className="btn btn-outline-light btn-sm",
            ),
            method="POST",
            action=f"/logout?lang={lang}",
            className="m-0",
        )
    )
    return parts


def _value(figures: NodeFigures, name: str, kind: str, lang: Lang) -> str:
    source = figures.resources if name in ("workers", "cameras", "active_alarms") else figures.kpis
    value = getattr(source, name)
    if kind == "rate":
        return percent(value)
    if kind == "hours":
        return "—" if value is None else f"{value:.1f} {t('hours', lang)}"
    return number(value)


def kpi_tile(name: str, value: str, lang: Lang) -> dbc.Col:
    warn = name in ("overdue", "active_alarms") and value not in ("0", "—")
    return dbc.Col(
        dbc.Card(
            dbc.CardBody(
                [
                    html.Div(t(name, lang), className="gridcc-kpi-label"),
                    html.Div(value, id=ids.kpi(name), className="gridcc-kpi-value"),
                ]
            ),
            className="gridcc-kpi" + (" gridcc-kpi-warn" if warn else ""),
        ),
        xs=6,
        md=4,
        xl=2,
        className="mb-3",
    )


def breadcrumb(overview: Overview, lang: Lang) -> dbc.Breadcrumb:
    *ancestors, current = overview.lineage
    items: list[dict[str, str | bool]] = [
        {"label": n.name(lang), "href": href(n.code, lang)} for n in ancestors
    ]
    items.append({"label": current.name(lang), "active": True})
    return dbc.Breadcrumb(items=items, className="gridcc-breadcrumb")


def children_table(overview: Overview, lang: Lang) -> Component:
    child_level = overview.scope.node.level.child
    if child_level is None:
        alert: Component = dbc.Alert(t("no_children", lang), color="secondary")
        return alert
    columns = (
        "rank",
        "name",
        "code",
        "reported",
        "open",
        "overdue",
        "closure_rate",
        "on_time_rate",
        "rework_rate",
        "satisfaction_rate",
        "grassroots_rate",
        "mean_handling_hours",
        "workers",
        "cameras",
        "active_alarms",
    )
    header = html.Thead(html.Tr([html.Th(t(c, lang)) for c in columns]))
    rows = []
    for child in overview.children:
        cells = [
            html.Td(number(child.rank) if child.rank else "—"),
            html.Td(dcc.Link(child.node.name(lang), href=href(child.node.code, lang))),
            html.Td(child.node.code, className="gridcc-code"),
            html.Td(number(child.kpis.reported)),
        ]
        cells += [
            html.Td(_value(child, name, kind, lang), id=ids.child_cell(child.node.code, name))
            if name in LIVE_CELLS
            else html.Td(_value(child, name, kind, lang))
            for name, kind in TILES
            if name in columns
        ]
        rows.append(html.Tr(cells, id=ids.child_row(child.node.code)))
    title = t("children", lang, level=t(f"level_{child_level.value}", lang))
    return html.Div(
        [
            html.H5(title, className="mt-2"),
            dbc.Table(
                [header, html.Tbody(rows)],
                hover=True,
                responsive=True,
                size="sm",
                className="gridcc-table",
            ),
        ]
    )


def content(overview: Overview, lang: Lang, tz: ZoneInfo, window_days: int) -> Component:
    """The page body for one scope."""
    as_of = overview.now.replace(tzinfo=ZoneInfo("UTC")).astimezone(tz)
    # The scope the figures belong to: assets/live.js streams it and applies only its deltas.
    scope: dict[str, Any] = {"data-scope": overview.scope.node.code}
    return html.Div(
        [
            breadcrumb(overview, lang),
            html.Div(
                [
                    html.Span(t("window", lang, days=window_days)),
                    html.Span(" · "),
                    html.Span(t("as_of", lang, time=f"{as_of:%Y-%m-%d %H:%M}")),
                ],
                className="text-secondary mb-2",
            ),
            dbc.Row(
                [
                    kpi_tile(name, _value(overview.scope, name, kind, lang), lang)
                    for name, kind in TILES
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(children_table(overview, lang), xl=9),
                    dbc.Col(feed_panel(overview.feed, lang), xl=3),
                ]
            ),
        ],
        **scope,
    )


def feed_panel(items: list[FeedItem], lang: Lang) -> Component:
    """The latest cases of the scope, as data: assets/live.js renders them and prepends new ones.

    The list's elements belong to live.js, not to Dash: a `set_props` of the list on every delta
    made Dash's renderer re-check every component of the page, most of a browser's work with many
    pages open. Dash renders the element with no children, so React never touches what is in it.
    """
    initial = [{"id": i.id, "title": i.title, "status": i.status} for i in items]
    labels = {s.value: t(f"status_{s.value}", lang) for s in CaseStatus}
    data: dict[str, Any] = {
        "data-initial": json.dumps(initial, ensure_ascii=False),
        "data-labels": json.dumps(labels, ensure_ascii=False),
        "data-empty": t("no_feed", lang),
    }
    return html.Div(
        [
            html.H5(t("feed", lang), className="mt-2"),
            html.Div(id=ids.Overview.FEED, className="gridcc-feed", **data),
        ]
    )


def notice(title: str, body: str, color: str) -> Component:
    """Shown instead of figures when there are none: never a blank page."""
    alert: Component = dbc.Alert([html.H4(title), html.P(body, className="mb-0")], color=color)
    return alert
