"""The worker list as a file (网格员导出): its columns, headers and cells for the streamed CSV and
XLSX writer of `data_sources.cases.export`, and its rows (`export_rows`: the list as the table
shows it, by name). Distances are whole metres and ages whole minutes (a cell is text, a whole
number or a time).

Roles and duty read as on the page: both take `data_sources/labels.py`'s labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, tzinfo

from sqlalchemy.orm import Session

from data_sources.access.model import Scope
from data_sources.cases.export import Column, Lang, Table
from data_sources.cases.filters import CaseFilter
from data_sources.labels import label, phrase
from data_sources.workers.roster import WorkerItem, iter_workers

#: The export's path (`/api/v1/export/workers.csv`), its audit name and its ASCII file name.
SLUG = "workers"
#: The file's and the sheet's name.
NAME = ("网格员", "Grid workers")


def _local(at: datetime | None, tz: tzinfo) -> datetime | None:
    """Naive UTC → naive local time, to the minute (as the table shows it, and the cases' file)."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)


def duty(item: WorkerItem) -> str:
    """ "on", "off" or "never" (no fix ever)."""
    if item.last_fix_at is None:
        return "never"
    return "on" if item.on_duty else "off"


def _grid(item: WorkerItem, lang: Lang) -> str:
    return (item.grid_en if lang == "en" else item.grid_zh) or ""


COLUMNS: tuple[Column[WorkerItem], ...] = (
    Column("工号", "Staff no.", 16, lambda w, _l, _z: w.code),
    Column("姓名", "Name", 10, lambda w, _l, _z: w.name),
    Column("角色", "Role", 10, lambda w, lang, _z: label(w.role, lang)),
    Column("所属网格", "Grid", 24, lambda w, lang, _z: _grid(w, lang)),
    Column("网格编码", "Grid code", 18, lambda w, _l, _z: w.grid_code or ""),
    Column("最后定位", "Last fix", 17, lambda w, _l, tz: _local(w.last_fix_at, tz)),
    Column(
        "定位距今(分钟)",
        "Fix age (min)",
        12,
        lambda w, _l, _z: None if w.fix_age is None else int(w.fix_age.total_seconds() // 60),
    ),
    Column("在岗", "On duty", 9, lambda w, lang, _z: phrase(f"duty_{duty(w)}", lang)),
    Column("今日里程(米)", "Distance today (m)", 14, lambda w, _l, _z: round(w.distance_today_m)),
    Column("今日到访网格", "Grids today", 12, lambda w, _l, _z: w.grids_today),
    Column("今日定位", "Fixes today", 10, lambda w, _l, _z: w.fixes_today),
)


#: The file's table: the writers of `data_sources.cases.export` take it.
TABLE: Table[WorkerItem] = Table(SLUG, NAME, COLUMNS)


def export_rows(
    *,
    session_factory: Callable[[], AbstractContextManager[Session]],
    scope: Scope,
    filt: CaseFilter,  # noqa: ARG001  (the export route's one signature: workers have no filter)
    now: datetime,
    tz: tzinfo,
    chunk: int = 2_000,  # noqa: ARG001
) -> Iterator[WorkerItem]:
    """The rows of the file: the scope's list, by name (the filter of the page does not apply)."""
    return iter_workers(session_factory=session_factory, scope=scope, now=now, tz=tz)
