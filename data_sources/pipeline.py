"""The projector's consumer loop: bus → projector (SQL) → live state, then acknowledge.

Acknowledge only after the SQL commit: a crash between the two redelivers the batch, and the
projector's idempotency makes the redelivery a no-op. On start the live state is rebuilt from SQL,
which already holds everything applied before the crash.

Poison never blocks the stream. A batch that fails is split in halves, each applied in its own
transaction in bus order (so each case's events keep their order), down to the events that fail
alone; those are tried again after a short backoff and, after `MAX_ATTEMPTS`, stored as dead letters
with their error (`dead_letters.py`) and acknowledged. An undecodable entry is a dead letter at once.
An outage (database or bus unreachable, see `is_transient`) is not poison: the whole step is retried,
with its batch and the batch read ahead kept in memory, and nothing is counted as an attempt.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo

import redis.exceptions
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from data_sources.bus import Bus, Delivery, parse_position
from data_sources.capacity import run_projector
from data_sources.dead_letters import (
    NewDeadLetter,
    bury,
    count_dead_letters,
    describe_error,
    identify,
    utc_now,
)
from data_sources.directory import Directory
from data_sources.events import Event, decode, decode_many
from data_sources.health import OUTAGE_SQLSTATES
from data_sources.live import LiveState
from data_sources.projector import Projection, project
from data_sources.workhours import WorkCalendar

log = logging.getLogger(__name__)
GROUP = "projector"
#: Allocations between first-generation garbage collections while the projector runs. Each event
#: makes dozens of short-lived objects (refcounting frees nearly all of them), so at the default
#: 700 the collector ran every few events and, scanning the long-lived directory and live state
#: in its older generations, took about a third of the projector's CPU (story mix: 9,700 → 14,000
#: events/s of CPU with 10,000; the same as with the collector off).
GC_GEN0 = 10_000


def tune_gc() -> None:
    """Set the process's collector for a projector's allocation pattern (see `GC_GEN0`)."""
    gc.set_threshold(GC_GEN0, *gc.get_threshold()[1:])


#: A consumer's pending entries older than this are taken over by another (it crashed).
STALE_MS = 30_000
#: Tries of an event that fails alone before it becomes a dead letter, and the waits between them:
#: a race lost to another projector (a unique violation) or a lock succeeds on the next try; a
#: poison fails all three and is out of the way ~2–4 s after it arrived (waits + a read's block).
MAX_ATTEMPTS = 3
RETRY_BACKOFF_S = (0.5, 1.5)
#: How often the loop counts the stored dead letters again (a CLI or API retry removes some).
DEAD_LETTER_RECOUNT_S = 10.0
#: A step taking longer than a read's block plus this is reported as stalled even before it fails
#: (a batch of 1,000 story events commits in ~80 ms; a lock wait or a hung connection does not).
STALL_GRACE_S = 5.0


def is_transient(exc: BaseException) -> bool:
    """Whether a failure to project is an outage (retry everything) rather than poison.

    A driver error with a SQLSTATE is judged by its class; without one (SQLite; a connection that
    never opened), OperationalError and InterfaceError are outages ("database is locked", "no such
    table", "connection refused"), other DB-API errors (DataError, IntegrityError) poison. Errors
    from Python itself (an OverflowError in a timestamp, a KeyError for an unknown worker) are poison.
    """
    if isinstance(
        exc,
        OSError  # socket errors, builtin ConnectionError and TimeoutError
        | redis.exceptions.ConnectionError
        | redis.exceptions.TimeoutError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError,
    ):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate[:2] in OUTAGE_SQLSTATES
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return False


@dataclass(frozen=True, slots=True)
class PipelineHealth:
    """How the projector is doing, for health pages and metrics (`ProjectorLoop.health`)."""

    lag_s: float  # age of the oldest event published but not yet applied (0 when caught up)
    stalled_s: float  # seconds since the loop last completed a step; 0.0 while healthy
    dead_letters: int  # dead letters currently stored
    applied: int  # events applied since start


@dataclass(slots=True)
class _Item:
    """A decoded entry on its way through the projector."""

    delivery: Delivery
    event: Event


@dataclass(slots=True)
class _Held:
    """An event that failed alone, waiting for its next try (its entry stays pending on the bus)."""

    item: _Item
    attempts: int
    due: float  # time.monotonic()


def _published_ms(delivery: Delivery) -> float:
    """When the entry was published (epoch ms): the bus's timestamp, else its "<ms>-<seq>" id."""
    if delivery.published_ms is not None:
        return float(delivery.published_ms)
    try:
        ms = parse_position(delivery.position)[0]
    except ValueError:
        ms = 0
    return float(ms) if ms > 0 else time.time() * 1000  # unknown: from now on


@dataclass
class ProjectorLoop:
    bus: Bus
    sessions: sessionmaker[Session]
    directory: Callable[[], Directory]
    live: LiveState
    tz: tzinfo
    #: The working days of due times (with `tz`).
    calendar: WorkCalendar
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{id(object())}")
    batch: int = 1_000
    block_ms: int = 1_000
    stale_ms: int = STALE_MS
    #: Called after each committed transaction (the hub's hook for view deltas).
    on_projection: Callable[[Projection], None] | None = None
    applied: int = 0
    max_attempts: int = MAX_ATTEMPTS
    retry_backoff_s: tuple[float, ...] = RETRY_BACKOFF_S
    #: Dead letters stored, as last counted (at start, every `DEAD_LETTER_RECOUNT_S`) plus own.
    dead_letter_count: int = 0
    #: When stale entries were last looked for (time.monotonic(); None: never).
    _claimed_at: float | None = None
    #: The only consumer of its bus (the embedded default's SQL outbox: one process per database).
    #: Entries pending at start were then handed to a process that died (`kill -9`): take them at
    #: once instead of after `stale_ms`, during which the wall would show a hole as "live".
    sole_consumer: bool = False
    _orphans_taken: bool = field(default=False, init=False, repr=False)
    _born: float = field(default_factory=time.monotonic, init=False, repr=False)
    _held: dict[str, _Held] = field(default_factory=dict, init=False, repr=False)
    #: Entries fetched and not yet acknowledged: position → when published (epoch ms). This
    #: bookkeeping (and the items and sets of `handle`) costs 0.45 ms per 1,000 events, next to
    #: ~80 ms for projecting them.
    _unapplied: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _last_ok: float = field(default_factory=time.monotonic, init=False, repr=False)
    _failing: bool = field(default=False, init=False, repr=False)
    _counted_at: float | None = field(default=None, init=False, repr=False)

    def health(self) -> PipelineHealth:
        """Lag, stall, dead letters and progress, from what the loop already knows (no I/O)."""
        now = time.monotonic()
        since = now - self._last_ok
        stalled = self._failing or since > self.block_ms / 1000 + STALL_GRACE_S
        lag = 0.0
        if self._unapplied:
            lag = max(0.0, time.time() - min(self._unapplied.values()) / 1000)
        return PipelineHealth(lag, since if stalled else 0.0, self.dead_letter_count, self.applied)

    async def fetch(self) -> list[Delivery]:
        """The next batch: a crashed consumer's stale entries when it is time to look for them
        (at start, then every `stale_ms / 2`; looking on every batch would cost a round trip
        each), else new entries."""
        now = time.monotonic()
        deliveries: list[Delivery] | None = None
        if self._claimed_at is None or now - self._claimed_at >= self.stale_ms / 2000:
            self._claimed_at = now
            idle_ms = self.stale_ms
            if self.sole_consumer and not self._orphans_taken:
                # Idle since before this loop began: handed to the dead process, not to this one.
                idle_ms = int((now - self._born) * 1000) + 1
            deliveries = await self.bus.claim_stale(
                GROUP, self.consumer, min_idle_ms=idle_ms, count=self.batch
            )
            # Until a claim comes back short: the orphans may be more than one batch.
            self._orphans_taken = self._orphans_taken or len(deliveries) < self.batch
            if deliveries:
                self._claimed_at = None  # there may be more: look again next time
        if not deliveries:
            deliveries = await self.bus.read(
                GROUP, self.consumer, count=self.batch, block_ms=self.block_ms
            )
        if deliveries:
            # A batch comes in log order (read: new entries in order; claim_stale: oldest first),
            # so its first entry is its oldest; every entry is dated by it (one parse, not 1,000).
            oldest = _published_ms(deliveries[0])
            for delivery in deliveries:
                self._unapplied.setdefault(delivery.position, oldest)
        return deliveries

    async def handle(self, deliveries: list[Delivery]) -> None:
        """Project a batch and the held events now due (SQL commits), move live state along,
        bury what is dead, then acknowledge.

        Raises on an outage; the batch can then be handled again (what was committed is skipped).
        """
        # An entry held for a retry may come back through claim_stale: its retry handles it.
        fresh = [d for d in deliveries if d.position not in self._held]
        items, dead = self._decode(fresh)
        now = time.monotonic()
        due = [held.item for held in self._held.values() if held.due <= now]
        if not items and not dead and not due:
            return
        # Apart: a new batch without poison keeps its one transaction while a held one is retried.
        failed = await self._isolate(due) + await self._isolate(items)
        done = {item.delivery.position for item in due + items}
        for item, exc in failed:
            held = self._held.get(item.delivery.position)
            # Deliveries beyond the first were tries by a consumer that crashed or lost its memory.
            attempts = max(held.attempts if held else 0, item.delivery.deliveries - 1) + 1
            if attempts < self.max_attempts:
                backoff = self.retry_backoff_s or (0.0,)
                wait = backoff[min(attempts, len(backoff)) - 1]
                self._held[item.delivery.position] = _Held(item, attempts, now + wait)
                done.discard(item.delivery.position)
                log.warning("event %s failed (try %d): %s", item.event.id, attempts, exc)
                continue
            dead.append(_letter(item.delivery, describe_error(exc), attempts, item.event))
        if dead:
            await run_projector(self._bury, dead)
            done.update(letter.position for letter in dead)
        seen = [d.position for d in deliveries] + [item.delivery.position for item in due]
        positions = [p for p in dict.fromkeys(seen) if p in done]
        await self.bus.ack(GROUP, positions)
        for position in positions:
            self._held.pop(position, None)
            self._unapplied.pop(position, None)

    async def step(self) -> int:
        """Fetch and handle one batch; how many entries it handled."""
        try:
            deliveries = await self.fetch()
            await self.handle(deliveries)
        except Exception:
            self._failing = True
            raise
        self._succeeded()
        return len(deliveries)

    async def _isolate(self, items: list[_Item]) -> list[tuple[_Item, Exception]]:
        """Apply `items` in order, each part in its own transaction; the items that fail alone.

        One transaction when nothing fails; else halves, recursively (a poison among 1,000 events
        costs ~20 transactions), so everything else is applied now and in bus order.
        """
        if not items:
            return []
        try:
            projection = await run_projector(self._project, [i.event for i in items])
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(items) == 1:
                return [(items[0], exc)]
            half = len(items) // 2
            return await self._isolate(items[:half]) + await self._isolate(items[half:])
        # Committed: only now may live state and views see it. A part committed before an outage
        # is skipped (by id) when the batch is handled again, so nothing is seen twice.
        # A failing hook must not fail the step: its events are committed, and a retry would
        # skip them as stored, so live state and the walls would never see them.
        self.applied += projection.applied
        try:
            self.live.apply(projection)
            if self.on_projection is not None:
                self.on_projection(projection)
        except Exception:
            log.exception("live state or views failed on a committed batch (SQL has it)")
        return []

    def _project(self, events: list[Event]) -> Projection:
        with self.sessions() as session, session.begin():
            return project(
                session, events, directory=self.directory(), tz=self.tz, calendar=self.calendar
            )

    def _bury(self, letters: list[NewDeadLetter]) -> None:
        with self.sessions() as session, session.begin():
            stored = bury(session=session, letters=letters, failed_at=utc_now())
        self.dead_letter_count += stored
        for letter in letters:
            log.error("dead letter %s (%s): %s", letter.position, letter.event_id, letter.error)

    def _recount(self) -> None:
        with self.sessions() as session:
            self.dead_letter_count = count_dead_letters(session=session)

    def _decode(self, deliveries: list[Delivery]) -> tuple[list[_Item], list[NewDeadLetter]]:
        """The entries as events, and those that do not decode as dead letters."""
        if not deliveries:
            return [], []
        try:
            events = decode_many([d.data for d in deliveries])
            # An entry holding two objects ("{…},{…}", invalid alone) would decode as two events.
            if len(events) == len(deliveries):
                return [_Item(d, e) for d, e in zip(deliveries, events, strict=True)], []
        except ValidationError:
            pass  # find the bad entry (or entries) one by one
        items: list[_Item] = []
        dead: list[NewDeadLetter] = []
        for delivery in deliveries:
            try:
                items.append(_Item(delivery, decode(delivery.data)))
            except ValidationError as exc:
                # Only ingest publishes, and it validates: an undecodable entry is a bug or a
                # foreign writer. Decoding is deterministic: no second try.
                log.warning("undecodable bus entry %s: a dead letter", delivery.position)
                dead.append(_letter(delivery, describe_error(exc), 1))
        return items, dead

    def _succeeded(self) -> None:
        self._failing = False
        self._last_ok = time.monotonic()

    async def _maybe_recount(self) -> None:
        """Count the stored dead letters again when it is time (best effort: an outage shows
        as a stalled step anyway)."""
        now = time.monotonic()
        if self._counted_at is not None and now - self._counted_at < DEAD_LETTER_RECOUNT_S:
            return
        self._counted_at = now
        try:
            await run_projector(self._recount)
        except Exception as exc:
            log.debug("dead letters not counted: %s", exc)

    async def run(self) -> None:
        """Consume until cancelled; survives bus and database outages by retrying each second.

        The next batch is fetched while the current one is projected (bus round trips overlap the
        SQL work). When a step fails, its batch and the batch read ahead are kept and handled
        again (not left pending for `claim_stale`'s 30 s). The group is (re)created after every
        failure: a Redis restarted without persistence has lost it, and reading a missing group
        would fail forever.
        """
        healthy = False
        ahead: asyncio.Task[list[Delivery]] | None = None
        batch: list[Delivery] | None = None
        try:
            while True:
                try:
                    await self._maybe_recount()
                    if not healthy:
                        await self.bus.ensure_group(GROUP)
                        healthy = True
                    if batch is None:
                        task, ahead = ahead, None
                        batch = await (task if task is not None else self.fetch())
                    if ahead is None:
                        ahead = asyncio.create_task(self.fetch())
                    await self.handle(batch)
                    batch = None
                    self._succeeded()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    healthy = False
                    if not is_transient(exc):
                        log.exception("projector step failed; retrying in 1 s")
                    elif not self._failing:  # an outage: one line when it starts, not one a second
                        log.warning("projector paused, retrying every 1 s: %s", _first_line(exc))
                    self._failing = True
                    await asyncio.sleep(1)
        finally:
            _discard(ahead)


def _letter(
    delivery: Delivery, error: str, attempts: int, event: Event | None = None
) -> NewDeadLetter:
    event_id, kind = (event.id, event.kind) if event is not None else identify(delivery.data)
    return NewDeadLetter(delivery.position, delivery.data, error, attempts, event_id, kind)


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).partition(chr(10))[0][:200]}"


def _discard(task: asyncio.Task[list[Delivery]] | None) -> None:
    """Cancel a fetch ahead whose result will not be used (its entries stay pending)."""
    if task is not None:
        task.cancel()
        task.add_done_callback(_ignore_result)


def _ignore_result(task: asyncio.Task[list[Delivery]]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log "exception never retrieved"
