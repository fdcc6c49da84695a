"""The laptop view's follow-up lists other than cases: the alarm history (告警记录, server-side rows,
keyset-paged like the case table) and the grid workers (网格员: one bounded list, sorted in the
browser), in tabs under the case table, each with its count and its exports.

Columns fit 1280 px without scrolling sideways: the minimum widths add up to under 1,200 px, and
each is at least its Chinese header's characters at 14 px plus the cell's padding (and the sort
icon where the column sorts), so no Chinese header wraps; English headers wrap at words
(`HEADERS`). Durations, distances and counts stay numbers in the rows (they sort as numbers) and
are formatted by named functions of assets/overview.js.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from data_sources.alarms.history import AlarmListItem, alarm_filter
from data_sources.cases.filters import CaseFilter
from data_sources.workers.roster import WorkerItem
from layouts import ids
from layouts.i18n import Lang, number, t
from layouts.overview_panels import case_href, local

#: Rows per request of the alarm table (AG Grid's infinite row model asks block by block).
ALARM_BLOCK = 100
#: The tabs' ids (`dbc.Tab.tab_id`): the worker list is read only while its tab is shown.
ALARM_TAB = "alarms"
WORKER_TAB = "workers"
_GRID_OPTIONS = {"suppressCellFocus": True, "rowHeight": 36, "tooltipShowDelay": 300}
#: `layouts.overview.HEADERS`, which this module cannot import (the overview page imports it):
#: English headers wrap at words when a column is narrow instead of being cut.
HEADERS = {"wrapHeaderText": True, "autoHeaderHeight": True}


def _col(field: str, header: str, **more: Any) -> dict[str, Any]:
    return {"field": field, "headerName": header, "headerTooltip": header, **more}


def _num(field: str, header: str, formatter: str, width: int) -> dict[str, Any]:
    return _col(
        field,
        header,
        type="numericColumn",
        width=width,
        valueFormatter={"function": f"{formatter}(params.value)"},
    )


# ---------------------------------------------------------------- alarms


def alarm_columns(lang: Lang) -> list[dict[str, Any]]:
    """The alarm history's columns, newest first (the server's order: they do not sort)."""
    return [
        _col("started_at", t("col_raised", lang), width=150, minWidth=140),
        _col("type", t("col_alarm_type", lang), minWidth=104, flex=1, tooltipField="type"),
        _col("severity", t("col_severity", lang), width=92, minWidth=80),
        _col("status", t("col_alarm_status", lang), minWidth=104, flex=1, tooltipField="status"),
        _col("camera", t("col_camera", lang), minWidth=130, flex=2, tooltipField="camera_tip"),
        _col("place", t("col_place", lang), minWidth=130, flex=2, tooltipField="place"),
        {
            **_num("ack_after", t("col_ack_after", lang), "gridccDuration", 100),
            "minWidth": 96,
            "tooltipField": "ack_tip",
        },
        {
            **_num("duration", t("col_alarm_duration", lang), "gridccDuration", 100),
            "minWidth": 96,
            "tooltipField": "end_tip",
        },
        _col(
            "case",
            t("col_linked_case", lang),
            minWidth=116,
            flex=1,
            cellRenderer="GridccLink",
            tooltipField="case",
        ),
        _col("id", t("col_alarm_id", lang), minWidth=116, flex=1, tooltipField="id"),
    ]


def _seconds(since: datetime, until: datetime | None) -> int | None:
    return None if until is None else max(0, int((until - since).total_seconds()))


def alarm_rows(items: list[AlarmListItem], lang: Lang, tz: ZoneInfo) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        ack = ""
        if item.acknowledged_at is not None:
            who = item.acknowledged_by or "—"
            ack = t("ack_tooltip", lang, time=local(item.acknowledged_at, tz), who=who)
        rows.append(
            {
                "id": item.id,
                "started_at": local(item.started_at, tz),
                "type": t(f"alarm_{item.type.value}", lang),
                "severity": t(f"severity_{item.severity}", lang),
                "status": t(f"alarm_status_{item.status.value}", lang),
                "camera": item.camera_name,
                "camera_tip": f"{item.camera_name} · {item.camera_code}",
                "place": item.place_en if lang == "en" else item.place_zh,
                "ack_after": _seconds(item.started_at, item.acknowledged_at),
                "ack_tip": ack,
                "duration": _seconds(item.started_at, item.ended_at),
                "end_tip": t("end_tooltip", lang, time=local(item.ended_at, tz))
                if item.ended_at
                else "",
                # GridccLink: a link to the case where there is one, else the (empty) text.
                "case": item.case_id or "",
                **({"href": case_href(item.case_id, lang)} if item.case_id else {}),
            }
        )
    return rows


def alarm_count_text(count: int, lang: Lang) -> str:
    return t("alarm_count", lang, n=number(count))


def _head(count_id: str, csv_id: str, xlsx_id: str, lang: Lang) -> Component:
    return html.Div(
        [
            html.Span(id=count_id, className="gridcc-count"),
            html.Div(
                [
                    html.A(
                        t("export_csv", lang),
                        id=csv_id,
                        className="btn btn-outline-primary btn-sm gridcc-export",
                    ),
                    html.A(
                        t("export_xlsx", lang),
                        id=xlsx_id,
                        className="btn btn-outline-primary btn-sm ms-2 gridcc-export",
                    ),
                ],
                className="ms-auto",
            ),
        ],
        className="gridcc-case-head mt-2",
    )


def alarm_panel(lang: Lang) -> Component:
    """The alarm history: its count, its exports and the table (server-side rows: AG Grid's
    infinite row model, one block per callback, keyset-paged)."""
    grid = dag.AgGrid(
        id=ids.Lists.ALARMS,
        columnDefs=alarm_columns(lang),
        rowModelType="infinite",
        getRowId="params.data.id",
        defaultColDef={"sortable": False, "resizable": True, "suppressMovable": True, **HEADERS},
        dashGridOptions={
            **_GRID_OPTIONS,
            "cacheBlockSize": ALARM_BLOCK,
            # One block at a time: each one's cursor is the end of the one before (keyset).
            "maxConcurrentDatasourceRequests": 1,
            "infiniteInitialRowCount": 1,
            "maxBlocksInCache": 20,
        },
        className="gridcc-grid gridcc-alarms",
        columnSize="responsiveSizeToFit",
        style={"width": "100%", "height": "480px"},
    )
    return html.Div(
        [
            dcc.Store(id=ids.Lists.ALARM_CURSORS, data={}),
            _head(
                ids.Lists.ALARM_COUNT, ids.Lists.ALARM_EXPORT_CSV, ids.Lists.ALARM_EXPORT_XLSX, lang
            ),
            grid,
        ],
        className="gridcc-list",
    )


# ---------------------------------------------------------------- workers


def worker_columns(lang: Lang) -> list[dict[str, Any]]:
    """The worker list's columns; every one sorts (in the browser), by name at first."""
    return [
        _col("name", t("col_worker_name", lang), minWidth=92, flex=1, sort="asc"),
        _col("code", t("col_worker_code", lang), minWidth=120, flex=1, tooltipField="code"),
        _col("role", t("col_role", lang), width=112),
        _col("grid", t("col_grid", lang), minWidth=136, flex=2, tooltipField="grid"),
        _col("last_fix", t("col_last_fix", lang), width=150),
        _num("fix_age", t("col_fix_age", lang), "gridccDuration", 112),
        _col("on_duty", t("col_on_duty", lang), width=96),
        _num("distance_today", t("col_distance_today", lang), "gridccKm", 116),
        _num("grids_today", t("col_grids_today", lang), "gridccCount", 136),
        _num("fixes_today", t("col_fixes_today", lang), "gridccCount", 112),
    ]


def _duty(item: WorkerItem, lang: Lang) -> str:
    if item.last_fix_at is None:
        return t("duty_never", lang)
    return t("duty_on" if item.on_duty else "duty_off", lang)


def worker_rows(items: list[WorkerItem], lang: Lang, tz: ZoneInfo) -> list[dict[str, Any]]:
    return [
        {
            "code": item.code,
            "name": item.name,
            "role": t(f"role_{item.role.value}", lang),
            "grid": (item.grid_en if lang == "en" else item.grid_zh) or "—",
            "last_fix": local(item.last_fix_at, tz),
            "fix_age": None if item.fix_age is None else int(item.fix_age.total_seconds()),
            "on_duty": _duty(item, lang),
            "distance_today": round(item.distance_today_m),
            "grids_today": item.grids_today,
            "fixes_today": item.fixes_today,
        }
        for item in items
    ]


def worker_count_text(items: list[WorkerItem], lang: Lang) -> str:
    on = sum(1 for item in items if item.on_duty)
    return t("worker_count", lang, n=number(len(items)), on=number(on))


def worker_panel(lang: Lang) -> Component:
    """The scope's workers: their count (and how many are on duty), the exports and the table
    (client-side rows, sortable by every column)."""
    grid = dag.AgGrid(
        id=ids.Lists.WORKERS,
        columnDefs=worker_columns(lang),
        rowData=[],
        getRowId="params.data.code",
        defaultColDef={"sortable": True, "resizable": True, "suppressMovable": True, **HEADERS},
        dashGridOptions={**_GRID_OPTIONS, "animateRows": False},
        className="gridcc-grid gridcc-workers",
        columnSize="responsiveSizeToFit",
        style={"width": "100%", "height": "480px"},
    )
    return html.Div(
        [
            dcc.Store(id=ids.Lists.WORKER_DRAWN),
            _head(
                ids.Lists.WORKER_COUNT,
                ids.Lists.WORKER_EXPORT_CSV,
                ids.Lists.WORKER_EXPORT_XLSX,
                lang,
            ),
            grid,
        ],
        className="gridcc-list",
    )


def follow_tabs(lang: Lang) -> Component:
    """Both lists in tabs (the alarms shown first); the worker list is read when its tab is."""
    tabs: Component = dbc.Tabs(
        [
            dbc.Tab(alarm_panel(lang), label=t("lists_alarms", lang), tab_id=ALARM_TAB),
            dbc.Tab(worker_panel(lang), label=t("lists_workers", lang), tab_id=WORKER_TAB),
        ],
        id=ids.Lists.TABS,
        active_tab=ALARM_TAB,
        className="mt-3",
    )
    return tabs


# ---------------------------------------------------------------- export links


def alarm_export_href(fmt: str, scope_code: str, lang: Lang, filt: CaseFilter) -> str:
    """The alarm export of the table's filter (its time range and search) in `fmt`."""
    query = {"scope": scope_code, "lang": lang, **alarm_filter(filt).to_query()}
    return f"/api/v1/export/alarms.{fmt}?{urlencode(query)}"


def worker_export_href(fmt: str, scope_code: str, lang: Lang) -> str:
    return f"/api/v1/export/workers.{fmt}?{urlencode({'scope': scope_code, 'lang': lang})}"
