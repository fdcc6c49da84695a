"""A case's page `/case?id=…`: its facts, the stages it went through with their working time
against each limit, every step (who, when), its place on a small map, the linked alarm and its
supervision (督办) history. Its URL is its own: a copied link opens the same case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dash_bootstrap_components as dbc
import dash_leaflet as dl
from dash import dcc, html
from dash.development.base_component import Component

from data_sources.cases.detail import CaseDetail
from data_sources.cases.stages import StageSpan
from layouts import ids
from layouts.i18n import Lang, t


def page() -> Component:
    return html.Div(
        [
            dcc.Location(id=ids.Case.URL, refresh=False),
            dbc.Navbar(
                dbc.Container(
                    [
                        html.Span(id=ids.Case.TITLE, className="navbar-brand gridcc-brand"),
                        html.Div(
                            [
                                html.A(id=ids.Case.BACK, className="btn btn-outline-info btn-sm"),
                                html.A(
                                    id=ids.Case.LANG_LINK,
                                    className="btn btn-outline-info btn-sm ms-2",
                                ),
                            ],
                            className="d-flex",
                        ),
                    ],
                    fluid=True,
                ),
                className="mb-3 gridcc-navbar",
            ),
            dbc.Container(
                dcc.Loading(html.Div(id=ids.Case.CONTENT), delay_show=400, type="dot"),
                fluid=True,
                className="pb-4",
            ),
        ],
        className="gridcc-overview gridcc-case",
    )


def _data(attributes: dict[str, str]) -> dict[str, Any]:
    return dict(attributes)


def local(at: datetime | None, tz: ZoneInfo) -> str:
    if at is None:
        return "—"
    return f"{at.replace(tzinfo=UTC).astimezone(tz):%Y-%m-%d %H:%M}"


def hours(span: timedelta | None, lang: Lang) -> str:
    if span is None:
        return "—"
    return f"{span.total_seconds() / 3600:.1f} {t('hours', lang)}"


def _fact(label: str, value: str | Component, cls: str = "") -> Component:
    return html.Div([html.Dt(label), html.Dd(value, className=cls)], className="gridcc-fact")


def facts(case: CaseDetail, lang: Lang, tz: ZoneInfo) -> Component:
    place = " · ".join(p.name_en if lang == "en" else p.name_zh for p in case.places)
    marks = [
        t("flag_overdue", lang) if case.overdue else None,
        t("flag_supervised", lang) if case.supervised else None,
        t("flag_deferred", lang) if case.deferred else None,
        t("flag_reworked", lang, n=case.rework_count) if case.rework_count else None,
    ]
    return html.Dl(
        [
            _fact(t("col_status", lang), t(f"status_{case.status.value}", lang)),
            _fact(t("col_category", lang), t(f"cat_{case.category.value}", lang)),
            _fact(t("col_channel", lang), t(f"channel_{case.channel.value}", lang)),
            _fact(t("col_reported_at", lang), local(case.reported_at, tz)),
            _fact(t("col_due_at", lang), local(case.due_at, tz)),
            _fact(t("col_closed_at", lang), local(case.closed_at, tz)),
            _fact(
                t("case_limit", lang),
                f"{hours(case.working, lang)} / {hours(case.limit, lang)}",
                "gridcc-overdue" if case.overdue else "",
            ),
            _fact(t("col_place", lang), place),
            _fact(t("col_worker", lang), case.worker.name if case.worker else "—"),
            _fact(t("col_flags", lang), " · ".join(m for m in marks if m) or "—"),
            _fact(
                t("satisfaction", lang),
                t(f"satisfaction_{case.satisfaction.value}", lang) if case.satisfaction else "—",
            ),
        ],
        className="gridcc-facts",
    )


def _stage_row(span: StageSpan, lang: Lang, tz: ZoneInfo) -> Component:
    name = t(f"stage_{span.stage.value}", lang)
    if span.round > 1:
        name = f"{name} ({span.round})"
    return html.Tr(
        [
            html.Td(name),
            html.Td(local(span.start, tz)),
            html.Td(local(span.end, tz) if span.end else t("stage_running", lang)),
            html.Td(span.ended_by or span.started_by),
            html.Td(hours(span.working, lang), className="gridcc-num"),
            html.Td(hours(span.limit, lang), className="gridcc-num"),
            html.Td(t("flag_overdue", lang) if span.overdue else "", className="gridcc-overdue"),
        ],
        className="gridcc-stage" + (" gridcc-stage-overdue" if span.overdue else ""),
        **_data({"data-stage": span.stage.value}),
    )


def stages(case: CaseDetail, lang: Lang, tz: ZoneInfo) -> Component:
    head = ("stage", "stage_start", "stage_end", "stage_actor", "stage_working", "stage_limit", "")
    table: Component = dbc.Table(
        [
            html.Thead(html.Tr([html.Th(t(h, lang) if h else "") for h in head])),
            html.Tbody([_stage_row(s, lang, tz) for s in case.stages]),
        ],
        size="sm",
        hover=True,
        className="gridcc-table gridcc-stages",
    )
    return table


def timeline(case: CaseDetail, lang: Lang, tz: ZoneInfo) -> Component:
    rows = []
    for event in case.timeline:
        note = event.note or ""
        if event.replay_note:
            note = f"{note} ({t('step_ignored', lang)})".strip()
        rows.append(
            html.Tr(
                [
                    html.Td(local(event.at, tz)),
                    html.Td(t(f"action_{event.action.value}", lang)),
                    html.Td(event.actor),
                    html.Td(t(f"status_{event.to_status.value}", lang)),
                    html.Td(note),
                ],
                className="gridcc-step" + (" text-secondary" if event.replay_note else ""),
                **_data({"data-step": event.id}),
            )
        )
    head = ("step_at", "step_action", "step_actor", "col_status", "step_note")
    table: Component = dbc.Table(
        [html.Thead(html.Tr([html.Th(t(h, lang)) for h in head])), html.Tbody(rows)],
        size="sm",
        className="gridcc-table gridcc-timeline",
    )
    return table


def place_map(case: CaseDetail, tile_url: str | None) -> Component:
    layers: list[Component] = []
    if tile_url:
        layers.append(dl.TileLayer(url=tile_url, maxZoom=20))
    layers.append(dl.CircleMarker(center=[case.lat, case.lon], radius=9, color="#ef4444"))
    view: Component = dl.Map(
        layers,
        id=ids.Case.MAP,
        center=[case.lat, case.lon],
        zoom=16,
        style={"height": "260px"},
        className="gridcc-case-map",
        attributionControl=False,
    )
    return view


def alarm(case: CaseDetail, lang: Lang, tz: ZoneInfo) -> Component:
    if case.alarm is None:
        return html.P(t("no_alarm", lang), className="text-secondary")
    a = case.alarm
    return html.Dl(
        [
            _fact(t("alarm_type", lang), t(f"alarm_{a.type.value}", lang)),
            _fact(t("alarm_severity", lang), t(f"severity_{int(a.severity)}", lang)),
            _fact(t("col_status", lang), t(f"alarm_status_{a.status.value}", lang)),
            _fact(t("alarm_started", lang), local(a.started_at, tz)),
            _fact(t("alarm_camera", lang), a.camera_name),
        ],
        className="gridcc-facts",
    )


def supervision(case: CaseDetail, lang: Lang, tz: ZoneInfo) -> Component:
    if not case.supervision:
        return html.P(t("no_supervision", lang), className="text-secondary")
    return html.Ul(
        [
            html.Li(f"{local(s.at, tz)} · {s.actor}" + (f" · {s.note}" if s.note else ""))
            for s in case.supervision
        ],
        className="gridcc-supervision",
    )


def content(case: CaseDetail, lang: Lang, tz: ZoneInfo, tile_url: str | None) -> Component:
    return html.Div(
        [
            html.H4([html.Span(case.id, className="gridcc-code me-2"), case.title]),
            dbc.Row(
                [
                    dbc.Col(facts(case, lang, tz), lg=7),
                    dbc.Col(place_map(case, tile_url), lg=5),
                ],
                className="mb-3",
            ),
            html.H5(t("stages_title", lang)),
            stages(case, lang, tz),
            html.H5(t("timeline_title", lang)),
            timeline(case, lang, tz),
            dbc.Row(
                [
                    dbc.Col([html.H5(t("alarm_title", lang)), alarm(case, lang, tz)], lg=6),
                    dbc.Col(
                        [html.H5(t("supervision_title", lang)), supervision(case, lang, tz)], lg=6
                    ),
                ]
            ),
        ],
        className="gridcc-case-detail",
        **_data({"data-case": case.id}),
    )
