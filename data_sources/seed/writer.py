"""Bulk inserts for the seed: over a million rows, on SQLite without SQLAlchemy's per-row work.

Rows are made in worker processes. On SQLite a worker writes them to a scratch SQLite file of its
own (a spool), and the main process, which does all the inserting, copies them in with
`INSERT … SELECT`: a third of the cost of binding them one by one, which the workers do in parallel
instead, and nothing to pickle. Elsewhere rows come back pickled and take SQLAlchemy's `insert()`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, insert

from data_sources.schema import Base

#: Rows per statement on backends that take the SQLAlchemy path.
CHUNK = 5_000
#: SQLite settings while seeding, restored afterwards. Skipping fsync loses nothing (a seed that dies
#: half-way is thrown away), and the seed's references are consistent by construction, so checking
#: every foreign key of a million rows is time spent for nothing.
SQLITE_BULK_PRAGMAS = {"synchronous": "OFF", "foreign_keys": "OFF", "cache_size": "-65536"}

Row = tuple[Any, ...]


def sqlite_datetime(value: datetime) -> str:
    """A naive datetime as SQLAlchemy stores it in SQLite: 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    return value.isoformat(" ", "microseconds")


@dataclass(frozen=True, slots=True)
class Batch:
    """Rows for one table, as tuples in the order of `columns`.

    With `text_datetimes` the datetimes are text already (`sqlite_datetime`), as the SQLite driver
    must get them. Converting a million of them costs seconds, so it is best done where the rows are
    made, in parallel, rather than in the process that inserts them.
    """

    table: str
    columns: tuple[str, ...]
    rows: list[Row]
    text_datetimes: bool = False

    @classmethod
    def of(cls, table: str, rows: list[dict[str, Any]], *, text_datetimes: bool = False) -> Batch:
        """A batch of rows built as dicts with the same keys in the same order.

        With `text_datetimes` the dicts' datetimes are replaced by text in place, which is cheaper
        than copying them: the dicts are the batch's to consume.
        """
        columns = tuple(rows[0]) if rows else ()
        if text_datetimes:
            for column in _datetime_columns(table, columns):
                for row in rows:
                    if row[column] is not None:
                        row[column] = sqlite_datetime(row[column])
        return cls(table, columns, [tuple(r.values()) for r in rows], text_datetimes)

    def with_text_datetimes(self) -> Batch:
        if self.text_datetimes:
            return self
        if not _datetime_columns(self.table, self.columns):
            return replace(self, text_datetimes=True)
        rows = [dict(zip(self.columns, row, strict=True)) for row in self.rows]
        return Batch.of(self.table, rows, text_datetimes=True)


def _datetime_columns(table: str, columns: tuple[str, ...]) -> list[str]:
    target = Base.metadata.tables[table]
    return [c for c in columns if isinstance(target.c[c].type, DateTime)]


@dataclass(frozen=True, slots=True)
class Spool:
    """Batches written to a scratch SQLite file: the path and each table's columns and row count."""

    path: str
    tables: tuple[tuple[str, tuple[str, ...], int], ...]


def spool(batches: list[Batch], path: str) -> Spool:
    """Write `batches` into a new SQLite file at `path`, as plain tables without keys or indexes."""
    tables = []
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        for batch in batches:
            if batch.rows:
                columns = ", ".join(batch.columns)
                con.execute(f"CREATE TABLE {batch.table} ({columns})")
                con.executemany(
                    f"INSERT INTO {batch.table} VALUES ({', '.join('?' * len(batch.columns))})",
                    batch.with_text_datetimes().rows,
                )
                tables.append((batch.table, batch.columns, len(batch.rows)))
        con.commit()
    finally:
        con.close()
    return Spool(path, tuple(tables))


class BulkWriter:
    """Inserts batches, or spools of them, into the seed's tables over one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        #: Whether workers should hand rows over as a `Spool` (only SQLite can attach one).
        self.spools = conn.dialect.name == "sqlite"

    def load(self, rows: list[Batch] | Spool) -> dict[str, int]:
        """Insert the rows in one transaction; returns the row count per table."""
        if isinstance(rows, Spool):
            self._copy(rows)
            return {table: count for table, _, count in rows.tables}
        with self.conn.begin():
            for batch in rows:
                self._insert(batch)
        return {batch.table: len(batch.rows) for batch in rows}

    def _insert(self, batch: Batch) -> None:
        if not batch.rows:
            return
        table = Base.metadata.tables[batch.table]
        if self.conn.dialect.name == "sqlite":
            sql = (
                f"INSERT INTO {table.name} ({', '.join(batch.columns)})"
                f" VALUES ({', '.join('?' * len(batch.columns))})"
            )
            self.conn.exec_driver_sql(sql, batch.with_text_datetimes().rows)
            return
        for start in range(0, len(batch.rows), CHUNK):
            chunk = batch.rows[start : start + CHUNK]
            self.conn.execute(
                insert(table), [dict(zip(batch.columns, r, strict=True)) for r in chunk]
            )

    def _copy(self, spooled: Spool) -> None:
        """Insert the spooled rows in their order, then delete the spool."""
        self.conn.exec_driver_sql("ATTACH DATABASE ? AS spool", (spooled.path,))
        self.conn.commit()  # ATTACH cannot run inside a transaction, so it gets one of its own
        try:
            with self.conn.begin():
                for table, columns, _ in spooled.tables:
                    names = ", ".join(columns)
                    self.conn.exec_driver_sql(
                        f"INSERT INTO main.{table} ({names})"
                        f" SELECT {names} FROM spool.{table} ORDER BY rowid"
                    )
        finally:
            self.conn.exec_driver_sql("DETACH DATABASE spool")
            self.conn.commit()
            os.remove(spooled.path)


@contextmanager
def bulk_writer(engine: Engine) -> Iterator[BulkWriter]:
    """A writer on one connection; on SQLite with `SQLITE_BULK_PRAGMAS` while it is open."""
    with engine.connect() as conn:
        saved: dict[str, Any] = {}
        if conn.dialect.name == "sqlite":
            for name, value in SQLITE_BULK_PRAGMAS.items():
                saved[name] = conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                conn.exec_driver_sql(f"PRAGMA {name}={value}")
            conn.commit()
        try:
            yield BulkWriter(conn)
        finally:
            if conn.in_transaction():
                conn.rollback()
            for name, value in saved.items():
                conn.exec_driver_sql(f"PRAGMA {name}={value}")
            conn.commit()
