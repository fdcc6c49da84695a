"""The alarm history as a file (告警记录导出): its columns, headers and cells for the streamed CSV and
XLSX writer of `data_sources.cases.export`, and its rows (`export_rows`), as the table shows them
for the same filter (its time range and search), in the same order.

Types, statuses and severities read as on the page: both take `data_sources/labels.py`'s labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, tzinfo

from sqlalchemy.orm import Session

from data_sources.access.model import Scope
from data_sources.alarms.history import AlarmListItem, alarm_filter, iter_alarms
from data_sources.cases.export import Column, Lang, Table
from data_sources.cases.filters import CaseFilter
from data_sources.labels import label
from data_sources.model import Severity

#: The export's path (`/api/v1/export/alarms.csv`), its audit name and its ASCII file name.
SLUG = "alarms"
#: The file's and the sheet's name.
NAME = ("告警记录", "Alarms")


def _severity(level: int, lang: Lang) -> str:
    """A severity as people read it; one outside the scale as its number (not an empty cell)."""
    try:
        return label(Severity(level), lang)
    except ValueError:
        return str(level)


def _local(at: datetime | None, tz: tzinfo) -> datetime | None:
    """Naive UTC → naive local time, to the minute (as the table shows it, and the cases' file)."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)


#: The table's columns, with the times it shows as durations given as they are.
COLUMNS: tuple[Column[AlarmListItem], ...] = (
    Column("告警编号", "Alarm no.", 28, lambda a, _l, _z: a.id),
    Column("告警时间", "Raised", 17, lambda a, _l, tz: _local(a.started_at, tz)),
    Column("告警类型", "Type", 12, lambda a, lang, _z: label(a.type, lang)),
    Column("级别", "Severity", 9, lambda a, lang, _z: _severity(a.severity, lang)),
    Column("状态", "Status", 12, lambda a, lang, _z: label(a.status, lang)),
    Column("摄像头编码", "Camera code", 18, lambda a, _l, _z: a.camera_code),
    Column("摄像头", "Camera", 24, lambda a, _l, _z: a.camera_name),
    Column("地点", "Place", 36, lambda a, lang, _z: a.place_en if lang == "en" else a.place_zh),
    Column("确认时间", "Acknowledged", 17, lambda a, _l, tz: _local(a.acknowledged_at, tz)),
    Column("确认人", "Acknowledged by", 12, lambda a, _l, _z: a.acknowledged_by or ""),
    Column("结束时间", "Ended", 17, lambda a, _l, tz: _local(a.ended_at, tz)),
    Column("关联案件", "Case no.", 24, lambda a, _l, _z: a.case_id or ""),
)


#: The file's table: the writers of `data_sources.cases.export` take it.
TABLE: Table[AlarmListItem] = Table(SLUG, NAME, COLUMNS)


def export_rows(
    *,
    session_factory: Callable[[], AbstractContextManager[Session]],
    scope: Scope,
    filt: CaseFilter,
    now: datetime,
    tz: tzinfo,
    chunk: int = 2_000,
) -> Iterator[AlarmListItem]:
    """The rows of the file: the table's for the same filter, in its order, read in chunks."""
    return iter_alarms(
        session_factory=session_factory,
        scope=scope,
        filt=alarm_filter(filt),
        now=now,
        tz=tz,
        chunk=chunk,
    )
