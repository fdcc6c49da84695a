"""The leaders' laptop view `/`: a filter bar, the filter's KPIs, the scope's children compared, the
case table and the latest cases; responsive from 1280 px, light or dark.

The URL holds the scope, the language and the filter (`data_sources.cases.filters`): the shell is
drawn from it once (`page`), the controls write it back, and the figures are drawn from it, so a
link copied from the address bar reproduces the view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from data_sources.cases.filters import CaseFilter, FilterError, FollowUp, Period
from data_sources.model import CaseStatus, Category, Channel
from layouts import ids
from layouts.follow_lists import follow_tabs
from layouts.i18n import LANGS, Lang, t
from layouts.overview_panels import case_columns, children_columns, scope_map

#: Headers wrap at word boundaries when a column is narrow (English at 1280 px) instead of being
#: cut; columns are wide enough that Chinese headers never wrap at all.
HEADERS = {"wrapHeaderText": True, "autoHeaderHeight": True}
#: The figures' element; while the URL's figures are on their way it is dimmed (assets/gridcc.css).
CONTENT_CLASS = "gridcc-kpis"  # assets/overview.js adds " gridcc-busy"
#: Rows per request of the case table (AG Grid's infinite row model asks block by block).
CASE_BLOCK = 100


def href(code: str, lang: Lang, filt: CaseFilter | None = None) -> str:
    """The overview URL of node `code`, keeping `filt` (a drill keeps the filter)."""
    query = {"scope": code, "lang": lang, **(filt.to_query() if filt else {})}
    return "/?" + urlencode(query)


def wall_href(code: str | None, lang: Lang) -> str:
    return "/wall?" + urlencode({k: v for k, v in (("scope", code), ("lang", lang)) if v})


def filter_of(query: Mapping[str, Sequence[str]]) -> CaseFilter:
    """The filter of a URL; one that cannot be read is the default (the page says why)."""
    try:
        return CaseFilter.from_query(query)
    except FilterError:
        return CaseFilter()


def lang_of(query: Mapping[str, Sequence[str]], default: Lang) -> Lang:
    lang = (query.get("lang") or [default])[0]
    return lang if lang in LANGS else default


def _data(attributes: dict[str, str]) -> dict[str, Any]:
    """`data-*` attributes as keyword arguments (Dash's stubs know no such parameter names)."""
    return dict(attributes)


def _options(values: Sequence[str], prefix: str, lang: Lang) -> list[dict[str, str]]:
    return [{"label": t(f"{prefix}{v}", lang), "value": v} for v in values]


def dates_class(period: Period | str) -> str:
    """The custom range's date pickers show only for a custom period."""
    return "gridcc-dates" + ("" if period == Period.CUSTOM else " d-none")


def filter_bar(filt: CaseFilter, lang: Lang) -> Component:
    """The filter controls, set to `filt`."""
    periods = [{"label": t(f"period_{p.value}", lang), "value": p.value} for p in Period]
    follow = [{"label": t("follow_all", lang), "value": ""}] + [
        {"label": t(f"follow_{f.value}", lang), "value": f.value} for f in FollowUp
    ]
    dates = dcc.DatePickerRange(
        id=ids.Overview.DATES,
        start_date=filt.start.isoformat() if filt.start else None,
        end_date=filt.end.isoformat() if filt.end else None,
        display_format="YYYY-MM-DD",
        clearable=False,
    )
    multi: dict[str, Any] = {"multi": True, "className": "gridcc-select", "clearable": True}
    return html.Div(
        [
            html.Div(
                [
                    dbc.RadioItems(
                        id=ids.Overview.PERIOD,
                        options=periods,
                        value=filt.period.value,
                        inline=True,
                        className="btn-group gridcc-segments",
                        inputClassName="btn-check",
                        labelClassName="btn btn-outline-primary btn-sm",
                        labelCheckedClassName="active",
                    ),
                    html.Div(dates, id=ids.Overview.DATES_BOX, className=dates_class(filt.period)),
                    dcc.Dropdown(
                        id=ids.Overview.CATEGORY,
                        options=_options([c.value for c in Category], "cat_", lang),
                        value=[c.value for c in filt.categories],
                        placeholder=t("filter_category", lang),
                        **multi,
                    ),
                    dcc.Dropdown(
                        id=ids.Overview.CHANNEL,
                        options=_options([c.value for c in Channel], "channel_", lang),
                        value=[c.value for c in filt.channels],
                        placeholder=t("filter_channel", lang),
                        **multi,
                    ),
                    dcc.Dropdown(
                        id=ids.Overview.STATUS,
                        options=_options([s.value for s in CaseStatus], "status_", lang),
                        value=[s.value for s in filt.statuses],
                        placeholder=t("filter_status", lang),
                        **multi,
                    ),
                    dbc.Switch(
                        id=ids.Overview.OVERDUE,
                        label=t("filter_overdue", lang),
                        value=filt.overdue,
                        className="gridcc-switch",
                    ),
                    dbc.Switch(
                        id=ids.Overview.SUPERVISED,
                        label=t("filter_supervised", lang),
                        value=filt.supervised,
                        className="gridcc-switch",
                    ),
                    dcc.Input(
                        id=ids.Overview.SEARCH,
                        type="search",
                        value=filt.search,
                        placeholder=t("filter_search", lang),
                        debounce=True,
                        maxLength=64,
                        className="form-control form-control-sm gridcc-search",
                    ),
                    html.A(
                        t("filter_reset", lang),
                        id=ids.Overview.RESET,
                        className="btn btn-outline-secondary btn-sm",
                    ),
                ],
                className="gridcc-filters",
            ),
            dbc.RadioItems(
                id=ids.Overview.FOLLOW,
                options=follow,
                value=filt.follow.value if filt.follow else "",
                inline=True,
                className="btn-group gridcc-segments gridcc-follow",
                inputClassName="btn-check",
                labelClassName="btn btn-outline-secondary btn-sm",
                labelCheckedClassName="active",
            ),
            html.Div(id=ids.Overview.FILTER_ERROR),
        ],
        className="gridcc-filterbar",
    )


def navbar(lang: Lang) -> Component:
    bar: Component = dbc.Navbar(
        dbc.Container(
            [
                html.Span(id=ids.Overview.TITLE, className="navbar-brand gridcc-brand"),
                html.Div(
                    [
                        html.Span("●", id=ids.Overview.LIVE, className="gridcc-live"),
                        html.A(
                            t("to_wall", lang),
                            id=ids.Overview.WALL_LINK,
                            className="btn btn-outline-info btn-sm ms-3",
                        ),
                        html.Button(
                            "◐",
                            id=ids.Overview.THEME,
                            title=t("theme_toggle", lang),
                            className="btn btn-outline-info btn-sm ms-2 gridcc-theme",
                        ),
                        html.A(
                            id=ids.Overview.LANG_LINK,
                            className="btn btn-outline-info btn-sm ms-2",
                        ),
                        html.Div(id=ids.Overview.ACCOUNT, className="d-flex ms-3"),
                    ],
                    className="d-flex align-items-center",
                ),
            ],
            fluid=True,
        ),
        className="mb-2 gridcc-navbar",
    )
    return bar


def page(query: Mapping[str, Sequence[str]], default_lang: Lang = "zh") -> Component:
    """The page shell with its controls set from the URL's `query` (as `parse_qs` gives it); the
    figures are filled by callbacks from the same URL."""
    lang = lang_of(query, default_lang)
    filt = filter_of(query)
    children, cases = grids(lang)
    return html.Div(
        [
            dcc.Location(id=ids.Overview.URL, refresh=False),
            dcc.Store(id=ids.Overview.RESYNC),
            dcc.Store(id=ids.Overview.TICK),
            dcc.Store(id=ids.Overview.CURSORS, data={}),
            dcc.Store(id=ids.Overview.BASELINE),
            dcc.Store(id=ids.Overview.DRAWN),
            navbar(lang),
            dbc.Container(
                [
                    html.Div(id=ids.Overview.BREADCRUMB),
                    filter_bar(filt, lang),
                    html.Div(id=ids.Overview.COVERS, className="gridcc-covers"),
                    # Not in a dcc.Loading: a live refresh would show its spinner too. The filter's
                    # new figures are awaited dimmed instead (assets/overview.js, as the URL changes).
                    html.Div(id=ids.Overview.CONTENT, className=CONTENT_CLASS),
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    html.H5(id=ids.Overview.CHILDREN_TITLE, className="mt-2"),
                                    children,
                                ],
                                xxl=8,
                            ),
                            dbc.Col(scope_map(), xxl=4, className="mt-2"),
                        ]
                    ),
                    dbc.Row(
                        [
                            dbc.Col(
                                [
                                    html.Div(
                                        [
                                            html.H5(t("cases_title", lang), className="m-0"),
                                            html.Span(
                                                id=ids.Overview.CASE_COUNT,
                                                className="gridcc-count",
                                            ),
                                            html.Button(
                                                id=ids.Overview.NEW_ROWS,
                                                className="btn btn-sm btn-info d-none",
                                            ),
                                            html.Div(
                                                [
                                                    html.A(
                                                        t("export_csv", lang),
                                                        id=ids.Overview.EXPORT_CSV,
                                                        className="btn btn-outline-primary btn-sm gridcc-export",
                                                    ),
                                                    html.A(
                                                        t("export_xlsx", lang),
                                                        id=ids.Overview.EXPORT_XLSX,
                                                        className="btn btn-outline-primary "
                                                        "btn-sm ms-2 gridcc-export",
                                                    ),
                                                ],
                                                className="ms-auto",
                                            ),
                                        ],
                                        className="gridcc-case-head",
                                    ),
                                    cases,
                                    follow_tabs(lang),
                                ],
                                xxl=9,
                            ),
                            # The latest cases, live (assets/live.js renders and prepends them).
                            dbc.Col(html.Div(id=ids.Overview.FEED_BOX), xxl=3),
                        ],
                        className="mt-3",
                    ),
                ],
                fluid=True,
                className="pb-4",
            ),
        ],
        className="gridcc-overview",
        **_data({"data-lang": lang}),
    )


def notice_line(text: str) -> Component:
    """A one-line warning under the filter bar (a filter that cannot be applied)."""
    alert: Component = dbc.Alert(text, color="warning", className="py-1 px-2 mb-2")
    return alert


def notice(title: str, body: str, color: str) -> Component:
    """Shown instead of figures when there are none: never a blank page."""
    alert: Component = dbc.Alert([html.H4(title), html.P(body, className="mb-0")], color=color)
    return alert


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


def grids(lang: Lang) -> tuple[Component, Component]:
    """The children's table (client-side rows, sortable) and the case table (server-side rows:
    AG Grid's infinite row model, one block per callback, keyset-paged)."""
    children = dag.AgGrid(
        id=ids.Overview.CHILDREN,
        columnDefs=children_columns(lang),
        rowData=[],
        getRowId="params.data.code",
        defaultColDef={"sortable": True, "resizable": True, "suppressMovable": True, **HEADERS},
        dashGridOptions={
            "domLayout": "autoHeight",
            "animateRows": False,
            "suppressCellFocus": True,
        },
        className="gridcc-grid",
        style={"width": "100%"},
    )
    cases = dag.AgGrid(
        id=ids.Overview.CASES,
        columnDefs=case_columns(lang),
        rowModelType="infinite",
        getRowId="params.data.id",
        defaultColDef={"sortable": False, "resizable": True, "suppressMovable": True, **HEADERS},
        dashGridOptions={
            "cacheBlockSize": CASE_BLOCK,
            # One block at a time: each one's cursor is the end of the one before (keyset).
            "maxConcurrentDatasourceRequests": 1,
            "infiniteInitialRowCount": 1,
            "maxBlocksInCache": 20,
            "suppressCellFocus": True,
            "rowHeight": 36,
        },
        className="gridcc-grid gridcc-cases",
        style={"width": "100%", "height": "560px"},
    )
    return children, cases
