"""Live state: counters per node and status, open alarms per node, latest worker positions.

Kept in memory by the projector's process and rebuilt from SQL at start-up (SQL is the truth), then
moved along by each committed `Projection`. Every counter of a node includes its whole subtree; the
city root counts everything. `dirty` collects the nodes whose figures changed since the last tick.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from data_sources.model import FACT_LEVELS, HIGH_SEVERITY, AlarmStatus
from data_sources.projector import PositionFix, Projection
from data_sources.schema import AlarmRow, CaseRow, PositionRow, WorkerRow

_OPEN_ALARM = (AlarmStatus.ACTIVE.value, AlarmStatus.ACKNOWLEDGED.value)


@dataclass
class LiveState:
    root_id: int | None
    case_counts: defaultdict[int, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    open_alarms: Counter[int] = field(default_factory=Counter)
    #: Open alarms of high severity per node: the wall's area badge pulses while there is one.
    open_high: Counter[int] = field(default_factory=Counter)
    positions: dict[int, PositionFix] = field(default_factory=dict)
    dirty: set[int] = field(default_factory=set)
    #: Callbacks read counters from worker threads while the loop applies batches.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _nodes(self, path: tuple[int, ...]) -> tuple[int, ...]:
        return path if self.root_id is None else (self.root_id, *path)

    def apply(self, projection: Projection) -> None:
        """Move the counters along by what a committed batch changed."""
        with self._lock:
            self._apply(projection)

    def _apply(self, projection: Projection) -> None:
        for case in projection.cases:
            if case.old == case.new:
                continue
            for node in self._nodes(case.path):
                counts = self.case_counts[node]
                if case.old is not None:
                    counts[case.old.value] -= 1
                counts[case.new.value] += 1
                self.dirty.add(node)
        for alarm in projection.alarms:
            delta = int(alarm.is_open) - int(alarm.was_open)
            high = int(alarm.is_open and alarm.severity >= HIGH_SEVERITY) - int(
                alarm.was_open and alarm.was_severity >= HIGH_SEVERITY
            )
            for node in self._nodes(alarm.path):
                self.open_alarms[node] += delta
                self.open_high[node] += high
                self.dirty.add(node)
        for fix in projection.positions:
            latest = self.positions.get(fix.worker_id)
            if latest is None or fix.ts > latest.ts:
                self.positions[fix.worker_id] = fix
                self.dirty.update(self._nodes(fix.path))

    def take_dirty(self) -> set[int]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    def counts_of(self, node: int) -> dict[str, int]:
        """Non-zero case counts per status of `node`."""
        with self._lock:
            counts = self.case_counts.get(node)
            return {status: n for status, n in counts.items() if n} if counts else {}


def case_counts_from_sql(*, session: Session, root_id: int | None) -> dict[int, dict[str, int]]:
    """Case counts per node and status by one GROUP BY per level: what live counters must equal."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for level in FACT_LEVELS:
        column: Any = getattr(CaseRow, f"{level.value}_id")
        query = select(column, CaseRow.status, func.count()).where(column.is_not(None))
        for row in session.execute(query.group_by(column, CaseRow.status)):
            counts[int(row[0])][str(row[1])] = int(row[2])
    if root_id is not None:
        for status, n in session.execute(
            select(CaseRow.status, func.count()).group_by(CaseRow.status)
        ):
            counts[root_id][status] = int(n)
    return dict(counts)


def open_alarms_from_sql(
    *, session: Session, root_id: int | None, high: bool = False
) -> dict[int, int]:
    """Open alarms per node (of high severity only, with `high`)."""
    counts: dict[int, int] = {}
    open_: ColumnElement[bool] = AlarmRow.status.in_(_OPEN_ALARM)
    if high:
        open_ = open_ & (AlarmRow.severity >= HIGH_SEVERITY)
    for level in FACT_LEVELS:
        column: Any = getattr(AlarmRow, f"{level.value}_id")
        query = select(column, func.count()).where(open_, column.is_not(None)).group_by(column)
        counts.update({int(row[0]): int(row[1]) for row in session.execute(query)})
    if root_id is not None:
        counts[root_id] = int(session.scalar(select(func.count()).where(open_)) or 0)
    return counts


def latest_positions_from_sql(*, session: Session, since: datetime) -> dict[int, PositionFix]:
    """The newest fix of each worker that reported since `since`, by worker id."""
    newest = (
        select(PositionRow.worker_id, func.max(PositionRow.ts).label("ts"))
        .where(PositionRow.ts >= since)
        .group_by(PositionRow.worker_id)
        .subquery()
    )
    ancestors = [getattr(WorkerRow, f"{level.value}_id") for level in FACT_LEVELS[:-1]]
    query = (
        select(PositionRow.worker_id, PositionRow.ts, PositionRow.lon, PositionRow.lat)
        .add_columns(WorkerRow.code, *ancestors)
        .join(
            newest, (PositionRow.worker_id == newest.c.worker_id) & (PositionRow.ts == newest.c.ts)
        )
        .join(WorkerRow, WorkerRow.id == PositionRow.worker_id)
    )
    fixes: dict[int, PositionFix] = {}
    for row in session.execute(query):
        path = tuple(int(i) for i in row[5:] if i is not None)
        fixes[row.worker_id] = PositionFix(row.worker_id, path, row.ts, row.lon, row.lat, row.code)
    return fixes


def load_live_state(
    *, session: Session, root_id: int | None, positions_since: datetime | None = None
) -> LiveState:
    """Live state rebuilt from SQL; with `positions_since`, each worker's newest fix since then
    (so a restarted wall does not show its grid workers off duty until their next fix)."""
    state = LiveState(root_id)
    for node, counts in case_counts_from_sql(session=session, root_id=root_id).items():
        state.case_counts[node] = Counter(counts)
    state.open_alarms.update(open_alarms_from_sql(session=session, root_id=root_id))
    state.open_high.update(open_alarms_from_sql(session=session, root_id=root_id, high=True))
    if positions_since is not None:
        state.positions = latest_positions_from_sql(session=session, since=positions_since)
    return state
