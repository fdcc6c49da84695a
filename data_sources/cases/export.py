"""The case table as a file (导出): CSV or XLSX, written from `query.iter_cases` chunk by chunk.

Neither file is ever whole in memory: the CSV is yielded a few hundred rows at a time, the XLSX is
written row by row by XlsxWriter in `constant_memory` mode to a temporary file, which is then
read out in blocks and deleted. Both take the table's columns, headers and labels in the
reader's language, and times in the deployment's zone; the generators here are blocking (SQL,
disk): `export_stream.py` runs them in a worker thread, one step at a time.

Other tables export through the same writers with their own `Table` (the alarm history's is
`data_sources.alarms.export`, the worker list's `data_sources.workers.export`). The labels of
values (statuses, categories, channels, evaluations…) are `data_sources/labels.py`'s, the pages'
too.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import xlsxwriter  # type: ignore[import-untyped]
from xlsxwriter.worksheet import Worksheet  # type: ignore[import-untyped]

from data_sources.cases.query import CaseListItem
from data_sources.labels import label

Lang = Literal["zh", "en"]
T = TypeVar("T")


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"

    @property
    def media_type(self) -> str:
        if self is ExportFormat.CSV:
            return "text/csv; charset=utf-8"
        return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


#: Rows per CSV chunk (~100 kB: a row is ~200 bytes) and per XLSX step: the granularity of
#: memory and of stopping when the client leaves.
ROWS_PER_CHUNK = 500
#: Bytes per block read from the finished XLSX file.
FILE_BLOCK = 64 * 1024
#: Data rows per XLSX sheet: Excel's 1,048,576 rows less the header; more go on a next sheet.
XLSX_ROWS_PER_SHEET = 1_048_575
#: The first characters that make a spreadsheet read a CSV cell as a formula (CSV injection:
#: `=HYPERLINK(…)` in a title). Such a cell is prefixed with `'`, which Excel and LibreOffice
#: show as text (OWASP's advice).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

_YES_NO = {"zh": ("是", "否"), "en": ("yes", "no")}


Cell = str | int | datetime | None


@dataclass(frozen=True, slots=True)
class Column(Generic[T]):
    """A column of the export: its headers, its width in an XLSX sheet (characters), and its
    value (a local time is a naive local `datetime`)."""

    zh: str
    en: str
    width: int
    value: Callable[[T, Lang, tzinfo], Cell]

    def header(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.zh


@dataclass(frozen=True, slots=True)
class Table(Generic[T]):
    """An exported table: its slug (the route's path, the audit's name, the ASCII file name),
    its name in each language (the file's and the sheet's) and its columns."""

    slug: str
    name: tuple[str, str]
    columns: tuple[Column[T], ...]

    def title(self, lang: Lang) -> str:
        return self.name[1] if lang == "en" else self.name[0]

    def headers(self, lang: Lang) -> list[str]:
        return [column.header(lang) for column in self.columns]

    def cells(self, item: T, *, lang: Lang, tz: tzinfo) -> list[Cell]:
        """One row's values, in column order, typed (the XLSX keeps times and counts)."""
        return [column.value(item, lang, tz) for column in self.columns]


def _local(at: datetime | None, tz: tzinfo) -> datetime | None:
    """Naive UTC → naive local time, to the minute (as the table shows it)."""
    if at is None:
        return None
    local = at.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
    return local.replace(second=0, microsecond=0)


def _yes(flag: bool, lang: Lang) -> str:
    return _YES_NO[lang][0 if flag else 1]


#: The case table's columns, in its order; its flags column is split in four, so that a
#: spreadsheet can filter on each.
COLUMNS: tuple[Column[CaseListItem], ...] = (
    Column("案件编号", "Case no.", 24, lambda c, _l, _z: c.id),
    Column("标题", "Title", 40, lambda c, _l, _z: c.title),
    Column("类别", "Category", 14, lambda c, lang, _z: label(c.category, lang)),
    Column("来源", "Channel", 14, lambda c, lang, _z: label(c.channel, lang)),
    Column("状态", "Status", 10, lambda c, lang, _z: label(c.status, lang)),
    Column("上报时间", "Reported", 17, lambda c, _l, tz: _local(c.reported_at, tz)),
    Column("办理时限", "Due", 17, lambda c, _l, tz: _local(c.due_at, tz)),
    Column("结案时间", "Closed", 17, lambda c, _l, tz: _local(c.closed_at, tz)),
    Column("地点", "Place", 36, lambda c, lang, _z: c.place_en if lang == "en" else c.place_zh),
    Column("处置人", "Handled by", 12, lambda c, _l, _z: c.worker or ""),
    Column("超期", "Overdue", 8, lambda c, lang, _z: _yes(c.overdue, lang)),
    Column("督办", "Supervised", 10, lambda c, lang, _z: _yes(c.supervised, lang)),
    Column("缓办", "Deferred", 9, lambda c, lang, _z: _yes(c.deferred, lang)),
    Column("返工次数", "Reworks", 9, lambda c, _l, _z: c.rework_count),
    Column("满意度", "Satisfaction", 12, lambda c, lang, _z: label(c.satisfaction, lang)),
)


CASES: Table[CaseListItem] = Table("cases", ("案件", "Cases"), COLUMNS)


def csv_text(cell: Cell) -> str:
    """A cell as CSV text: a time as `YYYY-MM-DD HH:MM`, a would-be formula defused."""
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M")
    text = str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass
class ExportProgress:
    """How far an export got (written by the generator's thread, read by the route after it)."""

    rows: int = 0
    #: Every row written and every byte handed on.
    finished: bool = False


def csv_chunks(
    items: Iterable[T],
    *,
    table: Table[T],
    lang: Lang,
    tz: tzinfo,
    progress: ExportProgress,
) -> Generator[bytes]:
    """The CSV, in chunks: UTF-8 with a BOM (Excel then reads Chinese as it is), RFC 4180
    quoting and CRLF line ends; the first chunk is the header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # the "excel" dialect: RFC 4180
    writer.writerow(table.headers(lang))
    yield "\ufeff".encode() + buffer.getvalue().encode()
    pending = 0
    for item in items:
        if pending == 0:
            buffer.seek(0)
            buffer.truncate()
        writer.writerow([csv_text(cell) for cell in table.cells(item, lang=lang, tz=tz)])
        pending += 1
        progress.rows += 1
        if pending == ROWS_PER_CHUNK:
            yield buffer.getvalue().encode()
            pending = 0
    if pending:
        yield buffer.getvalue().encode()
    progress.finished = True


def xlsx_chunks(
    items: Iterable[T],
    *,
    table: Table[T],
    lang: Lang,
    tz: tzinfo,
    progress: ExportProgress,
    folder: str | None = None,
) -> Generator[bytes]:
    """The XLSX, in blocks. It is written first, to a temporary file in `folder` (row by row:
    XlsxWriter's `constant_memory`), yielding `b""` every `ROWS_PER_CHUNK` rows so that the
    caller can stop it; then read out and deleted (also when the caller closes it early)."""
    handle, name = tempfile.mkstemp(prefix="gridcc-export-", suffix=".xlsx", dir=folder)
    os.close(handle)
    path = Path(name)
    try:
        workbook = xlsxwriter.Workbook(
            name,
            {
                "constant_memory": True,
                "tmpdir": folder,
                # Text stays text: a title "=1+1" or "0012" is not a formula or a number.
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
            },
        )
        try:
            yield from _write_sheets(workbook, table, items, lang, tz, progress)
        finally:
            workbook.close()
        with path.open("rb") as file:
            while block := file.read(FILE_BLOCK):
                yield block
        progress.finished = True
    finally:
        path.unlink(missing_ok=True)


def _new_sheet(
    workbook: xlsxwriter.Workbook, table: Table[Any], number: int, lang: Lang
) -> Worksheet:
    """Sheet `number` (1, 2… past a million rows) with its header row, widths and frozen panes."""
    name = table.title(lang)
    sheet = workbook.add_worksheet(name if number == 1 else f"{name} {number}")
    bold = workbook.add_format({"bold": True})
    for col, column in enumerate(table.columns):
        sheet.set_column(col, col, column.width)
        sheet.write_string(0, col, column.header(lang), bold)
    sheet.freeze_panes(1, 1)  # the header row and the first column (the row's id) stay in view
    return sheet


def _write_sheets(
    workbook: xlsxwriter.Workbook,
    table: Table[T],
    items: Iterable[T],
    lang: Lang,
    tz: tzinfo,
    progress: ExportProgress,
) -> Iterator[bytes]:
    when = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    sheet, sheets, row = None, 0, XLSX_ROWS_PER_SHEET
    for item in items:
        if sheet is None or row == XLSX_ROWS_PER_SHEET:  # the first sheet, or one is full
            sheets += 1
            sheet, row = _new_sheet(workbook, table, sheets, lang), 0
        row += 1
        for col, cell in enumerate(table.cells(item, lang=lang, tz=tz)):
            if isinstance(cell, datetime):
                sheet.write_datetime(row, col, cell, when)
            elif isinstance(cell, int):
                sheet.write_number(row, col, cell)
            elif cell:
                sheet.write_string(row, col, cell)
        progress.rows += 1
        if progress.rows % ROWS_PER_CHUNK == 0:
            yield b""
    if sheet is None:  # no row: the headers alone
        _new_sheet(workbook, table, 1, lang)


# ---------------------------------------------------------------- the file's name

_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def export_filename(
    *,
    area_name: str,
    area_code: str,
    day: str,
    fmt: ExportFormat,
    lang: Lang,
    table: Table[Any] = CASES,
) -> tuple[str, str]:
    """(the file's name, an ASCII stand-in) as ("案件_五华区_2026-11-23.csv",
    "cases_530102_2026-11-23.csv"); `day` is the local date, ISO. The stand-in is for clients
    that ignore `filename*`."""
    area = _UNSAFE.sub("_", area_name).strip(" ._") or area_code
    name = f"{table.slug if lang == 'en' else table.name[0]}_{area}_{day}.{fmt.value}"
    code = re.sub(r"[^A-Za-z0-9]+", "_", area_code)
    return name, f"{table.slug}_{code}_{day}.{fmt.value}"


def content_disposition(name: str, fallback: str) -> str:
    """`attachment` with the name in UTF-8 (RFC 6266 / 5987) and an ASCII fallback."""
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
