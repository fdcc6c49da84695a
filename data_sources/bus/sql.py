"""`SqlBus`: the event bus in SQL tables, the embedded default's outbox (SQLite or PostgreSQL).

An event is committed to `bus_entries` before `publish` returns, so the ingest API's 202 means
"stored": a process killed right after it loses nothing, and ingest recognises a re-send as a
duplicate (it looks ids up in `bus_entries` too). Consumer groups follow Redis Streams (the `Bus`
contract), with one deliberate difference: an entry not yet delivered to, or still pending in, some
group is never trimmed, whatever `maxlen` says; entries every group is done with are trimmed down
to `maxlen`.

Positions are "0-<seq>": `bus_entries.seq` in the log's order, comparable by `parse_position`; the
publish time is in `Delivery.published_ms`. SQL runs in worker threads: publishes in ingest's
pool, the rest in the bus's (`data_sources/capacity.py`). A reader waits on an in-process wake-up
and polls every `poll_ms` for other processes' publishes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from data_sources.bus import Delivery, parse_position
from data_sources.capacity import run_bus, run_ingest
from data_sources.schema import BusEntryRow, BusGroupRow, BusPendingRow

log = logging.getLogger(__name__)

_ENTRIES = cast(Table, BusEntryRow.__table__)
_GROUPS = cast(Table, BusGroupRow.__table__)
_PENDING = cast(Table, BusPendingRow.__table__)
#: PostgreSQL advisory lock key of publishing (one publisher at a time: commits in seq order).
PUBLISH_LOCK = 0x6772_6964_6363_0001
#: What every encoded event starts with (`events.encode`: pydantic's compact JSON, `id` first).
_ID_PREFIX = b'{"id":"'
_ID_MAX = 64


class SqlBus:
    """A log in `bus_entries` read through consumer groups (`bus_groups`, `bus_pending`).

    Args:
        engine: the system of record's engine (the bus shares its database and its pool).
        maxlen: entries kept once every group is done with them.
        poll_ms: how often a blocked `read` looks for entries published by another process;
            in-process publishes wake it at once.
    """

    def __init__(self, engine: Engine, maxlen: int = 1_000_000, poll_ms: int = 200) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, not {maxlen}")
        self._engine = engine
        self._maxlen = maxlen
        # Trim in chunks: one DELETE per ~1,000 entries rather than one per publish.
        self._slack = max(1, min(maxlen // 10, 1_000))
        self._poll_s = poll_ms / 1000
        self._postgres = engine.dialect.name == "postgresql"
        self._published: asyncio.Event | None = None
        self._published_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    # ------------------------------------------------------------------ the Bus protocol

    async def publish(self, items: Sequence[bytes]) -> list[str]:
        """Append `items` in order in one transaction, committed before returning; their positions."""
        if self._closed:
            raise RuntimeError("SqlBus is closed")
        if not items:
            return []
        # Ingest's own pool: a 202 never waits behind page renders (data_sources/capacity.py).
        seqs = await run_ingest(self._publish, [bytes(d) for d in items])
        self._wake_readers()
        return [_position(seq) for seq in seqs]

    async def ensure_group(self, group: str) -> None:
        """Create `group` at the start of the log unless it exists."""
        await run_bus(self._ensure_group, group)

    async def read(self, group: str, consumer: str, *, count: int, block_ms: int) -> list[Delivery]:
        """Up to `count` never-delivered entries, waiting up to `block_ms` (0: not at all)."""
        _check_count(count)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        while True:
            # Taken before looking, so an in-process publish after the look cannot be missed.
            published = self._wake_event()
            deliveries = await run_bus(self._read, group, consumer, count)
            remaining = deadline - loop.time()
            if deliveries or remaining <= 0 or self._closed:
                return deliveries
            try:
                async with asyncio.timeout(min(remaining, self._poll_s)):
                    await published.wait()
            except TimeoutError:
                pass

    async def ack(self, group: str, positions: Sequence[str]) -> None:
        """Forget `positions` as pending, then trim what every group is done with."""
        if positions:
            await run_bus(self._ack, group, [_seq(p) for p in positions])

    async def claim_stale(
        self, group: str, consumer: str, *, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        """Give `consumer` up to `count` entries pending at least `min_idle_ms`, oldest first."""
        _check_count(count)
        return await run_bus(self._claim_stale, group, consumer, min_idle_ms, count)

    async def pending_count(self, group: str) -> int:
        """Entries delivered to `group` and not yet acknowledged."""
        return await run_bus(self._pending_count, group)

    async def length(self) -> int:
        """Entries currently in the log (a full count: not for hot paths)."""
        return await run_bus(self._length)

    async def aclose(self) -> None:
        """Refuse further publishes and release blocked readers; the engine is the caller's."""
        self._closed = True
        self._wake_readers()

    # ------------------------------------------------------------------ SQL (worker threads)

    def _publish(self, items: list[bytes]) -> list[int]:
        now = _utc_now()
        rows = [{"event_id": event_id_of(d), "data": d, "published_at": now} for d in items]
        with self._engine.connect() as conn, _synced(conn, not self._postgres), conn.begin():
            if self._postgres:
                # Publishers one at a time, so entries commit in `seq` order: a reader that has
                # seen seq n can never later find a smaller one committed behind it. SQLite's
                # single writer gives the same for free. Plain reads are not blocked.
                # An advisory lock, not LOCK TABLE: that one conflicts with autovacuum's lock on
                # this busy table, and publishes waited for every vacuum to end.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PUBLISH_LOCK})
                returning = _ENTRIES.c.seq
                statement = insert(_ENTRIES).returning(returning, sort_by_parameter_order=True)
                seqs: list[int] = list(conn.execute(statement, rows).scalars())
            else:
                # SQLite holds its one write lock from this INSERT to the commit and numbers an
                # INTEGER PRIMARY KEY max + 1, so the batch got the last len(rows) seqs. (RETURNING
                # in parameter order runs one statement per row there: 17 ms per 1,000, not 4.)
                conn.execute(insert(_ENTRIES), rows)
                last = int(conn.execute(select(func.max(_ENTRIES.c.seq))).scalar_one())
                seqs = list(range(last - len(rows) + 1, last + 1))
        self._trim_safely()
        return seqs

    def _ensure_group(self, group: str) -> None:
        try:
            with self._engine.begin() as conn:
                known = conn.execute(select(_GROUPS.c.name).where(_GROUPS.c.name == group))
                if known.first() is None:
                    conn.execute(insert(_GROUPS).values(name=group, last_delivered=0))
        except IntegrityError:
            pass  # created meanwhile by another process

    def _read(self, group: str, consumer: str, count: int) -> list[Delivery]:
        # A read-only look first: an idle reader polls without writing anything.
        with self._engine.connect() as conn:
            newest = select(func.max(_ENTRIES.c.seq)).scalar_subquery()
            row = conn.execute(
                select(_GROUPS.c.last_delivered, newest).where(_GROUPS.c.name == group)
            ).first()
        if row is None:
            raise _no_group(group)
        if row[1] is None or row[1] <= row[0]:
            return []
        with self._engine.begin() as conn:
            last = self._lock_group(conn, group)
            entries = conn.execute(
                select(_ENTRIES.c.seq, _ENTRIES.c.data, _ENTRIES.c.published_at)
                .where(_ENTRIES.c.seq > last)
                .order_by(_ENTRIES.c.seq)
                .limit(count)
            ).all()
            if not entries:
                return []
            now = _utc_now()
            conn.execute(
                insert(_PENDING),
                [
                    {
                        "consumer_group": group,
                        "seq": e.seq,
                        "consumer": consumer,
                        "delivered_at": now,
                    }
                    for e in entries
                ],
            )
            conn.execute(
                update(_GROUPS)
                .where(_GROUPS.c.name == group)
                .values(last_delivered=entries[-1].seq)
            )
        return [_delivery(e.seq, e.data, e.published_at, 1) for e in entries]

    def _ack(self, group: str, seqs: list[int]) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                delete(_PENDING).where(_PENDING.c.consumer_group == group, _PENDING.c.seq.in_(seqs))
            )
        self._trim_safely()

    def _claim_stale(
        self, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[Delivery]:
        now = _utc_now()
        idle_since = now - timedelta(milliseconds=min_idle_ms)
        mine = _PENDING.c.consumer_group == group
        with self._engine.begin() as conn:
            self._lock_group(conn, group)
            # Pending entries whose data is gone are dropped, as XAUTOCLAIM does (this bus never
            # trims an entry still pending: only a hand-made deletion leaves such rows).
            gone = ~exists().where(_ENTRIES.c.seq == _PENDING.c.seq)
            conn.execute(delete(_PENDING).where(mine, gone))
            stale = conn.execute(
                select(
                    _PENDING.c.seq, _PENDING.c.deliveries, _ENTRIES.c.data, _ENTRIES.c.published_at
                )
                .join(_ENTRIES, _ENTRIES.c.seq == _PENDING.c.seq)
                .where(mine, _PENDING.c.delivered_at <= idle_since)
                .order_by(_PENDING.c.seq)
                .limit(count)
            ).all()
            if stale:
                conn.execute(
                    update(_PENDING)
                    .where(mine, _PENDING.c.seq.in_([s.seq for s in stale]))
                    .values(
                        consumer=consumer,
                        delivered_at=now,
                        deliveries=_PENDING.c.deliveries + 1,
                    )
                )
        return [_delivery(s.seq, s.data, s.published_at, s.deliveries + 1) for s in stale]

    def _pending_count(self, group: str) -> int:
        with self._engine.connect() as conn:
            known = select(_GROUPS.c.name).where(_GROUPS.c.name == group).exists()
            pending = (
                select(func.count()).where(_PENDING.c.consumer_group == group).scalar_subquery()
            )
            row = conn.execute(select(known, pending)).one()
        if not row[0]:
            raise _no_group(group)
        return int(row[1])

    def _length(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_ENTRIES)).scalar_one())

    def _lock_group(self, conn: Connection, group: str) -> int:
        """Take `group`'s row for this transaction (a write: SQLite's write lock, PostgreSQL's row
        lock, before anything is read) and return its last delivered seq."""
        locked = conn.execute(
            update(_GROUPS)
            .where(_GROUPS.c.name == group)
            .values(last_delivered=_GROUPS.c.last_delivered)
        )
        if locked.rowcount == 0:
            raise _no_group(group)
        return int(
            conn.execute(
                select(_GROUPS.c.last_delivered).where(_GROUPS.c.name == group)
            ).scalar_one()
        )

    def _trim_safely(self) -> None:
        """Trim, logging rather than raising: the caller's own work is already committed."""
        try:
            self._trim()
        except Exception:
            log.exception("trimming the SQL bus failed; it will be tried again")

    def _trim(self) -> None:
        """Delete the oldest entries beyond `maxlen` that every group is done with.

        Done means delivered and not pending: seq ≤ every group's last delivered and below every
        pending seq. One statement, so it sees one snapshot of groups and pending entries.
        """
        with self._engine.connect() as conn:
            # Two scalar subqueries: SQLite answers each min/max from the index, not a scan.
            oldest = select(func.min(_ENTRIES.c.seq)).scalar_subquery()
            newest = select(func.max(_ENTRIES.c.seq)).scalar_subquery()
            low, high = cast(
                tuple[int | None, int | None], conn.execute(select(oldest, newest)).one()
            )
        if low is None or high is None or high - low + 1 < self._maxlen + self._slack:
            return
        cutoff = high - self._maxlen
        delivered = select(func.coalesce(func.min(_GROUPS.c.last_delivered), cutoff))
        pending = select(func.coalesce(func.min(_PENDING.c.seq), cutoff + 1))
        with self._engine.begin() as conn:
            conn.execute(
                delete(_ENTRIES).where(
                    _ENTRIES.c.seq <= cutoff,
                    _ENTRIES.c.seq <= delivered.scalar_subquery(),
                    _ENTRIES.c.seq < pending.scalar_subquery(),
                )
            )

    # ------------------------------------------------------------------ in-process wake-ups

    def _wake_event(self) -> asyncio.Event:
        """The event the next in-process publish sets, bound to the running loop (a test's
        second app may run on another loop)."""
        loop = asyncio.get_running_loop()
        if self._published is None or self._published_loop is not loop:
            self._published, self._published_loop = asyncio.Event(), loop
        return self._published

    def _wake_readers(self) -> None:
        if self._published is not None:
            self._published.set()
            self._published = None


def event_id_of(data: bytes) -> str | None:
    """The `id` of an encoded event (its first key), or None when `data` is not such JSON."""
    if data.startswith(_ID_PREFIX):
        end = data.find(b'"', len(_ID_PREFIX))
        candidate = data[len(_ID_PREFIX) : end]
        if end > 0 and b"\\" not in candidate and len(candidate) <= _ID_MAX:
            return candidate.decode("utf-8", "replace")
    try:
        value: Any = json.loads(data)
    except ValueError:
        return None
    event_id = value.get("id") if isinstance(value, dict) else None
    return event_id if isinstance(event_id, str) and len(event_id) <= _ID_MAX else None


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _position(seq: int) -> str:
    return f"0-{seq}"


def _seq(position: str) -> int:
    return parse_position(position)[1]


def _delivery(seq: int, data: bytes, published_at: datetime, deliveries: int) -> Delivery:
    published_ms = int(published_at.replace(tzinfo=UTC).timestamp() * 1000)
    return Delivery(_position(seq), bytes(data), deliveries, published_ms=published_ms)


def _no_group(group: str) -> ValueError:
    return ValueError(f"no consumer group {group!r} on the bus; call ensure_group first")


def _check_count(count: int) -> None:
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")


@contextmanager
def _synced(conn: Connection, sqlite: bool) -> Iterator[None]:
    """On SQLite, the connection's commits reach the disk before they return while it is open.

    A publish's commit is what a 202 promises: `synchronous=FULL` for it alone. Everything else
    runs NORMAL (db.py): with WAL a power cut then loses only a suffix of the later commits (a
    projection and its acknowledgement, both redone from the outbox). FULL for every commit had
    cut the projector from ~12,000 to ~5,300 events/s (bench_pipeline, short mode).
    """
    if not sqlite:
        yield
        return
    conn.exec_driver_sql("PRAGMA synchronous=FULL")
    conn.commit()
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
        conn.commit()
