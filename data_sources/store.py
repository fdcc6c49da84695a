"""Read queries over the SQL store: the hierarchy and per-node figures for the drill-down.

Every per-node figure is one GROUP BY over the facts' ancestor-id columns: the children of a node at
level L are grouped by the column of level L+1, filtered by the column of level L.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, case, func, not_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from data_sources.kpi import TALLY_FIELDS, Tally
from data_sources.model import (
    GRASSROOTS,
    AlarmStatus,
    CaseFacts,
    CaseStatus,
    Level,
    Node,
    ResolvedAt,
    Satisfaction,
    WorkerRole,
)
from data_sources.schema import AlarmRow, CameraRow, CaseRow, NodeRow, WorkerRow

_OPEN = [s.value for s in CaseStatus if s.is_open]
AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def tally_columns(now: datetime) -> list[ColumnElement[Any]]:
    """The `Tally` fields as SQL aggregates over `cases`: the SQL twin of `kpi.tally_of_case`."""
    c = CaseRow
    accepted = c.status.not_in([CaseStatus.REPORTED.value, CaseStatus.REJECTED.value])
    closed = c.status == CaseStatus.CLOSED.value
    timed = and_(accepted, not_(c.deferred), c.due_at.is_not(None))
    past_due = and_(timed, c.due_at < now)
    columns: dict[str, ColumnElement[Any]] = {
        "reported": func.count(),
        "open": _count(c.status.in_(_OPEN)),
        "accepted": _count(accepted),
        "rejected": _count(c.status == CaseStatus.REJECTED.value),
        "closed": _count(closed),
        "due": _count(and_(timed, closed | (c.due_at < now))),
        "closed_on_time": _count(and_(timed, closed, c.closed_at <= c.due_at)),
        "overdue": _count(and_(c.status.in_(_OPEN), past_due)),
        "handled": _count(c.handled_at.is_not(None)),
        "reworked": _count(and_(c.handled_at.is_not(None), c.rework_count > 0)),
        "evaluated": _count(c.satisfaction.is_not(None)),
        "satisfied": _count(
            c.satisfaction.in_(
                [Satisfaction.SATISFIED.value, Satisfaction.BASICALLY_SATISFIED.value]
            )
        ),
        "closed_grassroots": _count(and_(closed, c.resolved_at.in_([r.value for r in GRASSROOTS]))),
        "handling_seconds": func.coalesce(func.sum(case((closed, c.handling_seconds), else_=0)), 0),
    }
    assert tuple(columns) == TALLY_FIELDS
    return [column.label(name) for name, column in columns.items()]


def _level_column(table: Any, level: Level) -> InstrumentedAttribute[int | None]:
    column: InstrumentedAttribute[int | None] = getattr(table, f"{level.value}_id")
    return column


def _scoped(query: AnySelect, table: Any, node: Node) -> AnySelect:
    if node.level is Level.CITY:
        return query
    return query.where(_level_column(table, node.level) == node.id)


def _node_columns() -> tuple[InstrumentedAttribute[Any], ...]:
    n = NodeRow
    return (n.id, n.code, n.level, n.parent_id, n.name_zh, n.name_en, n.lon, n.lat)


def _nodes(session: Session, query: Select[*tuple[Any, ...]]) -> list[Node]:
    return [
        Node(r.id, r.code, Level(r.level), r.parent_id, r.name_zh, r.name_en, r.lon, r.lat)
        for r in session.execute(query)
    ]


def root_node(*, session: Session) -> Node | None:
    query = select(*_node_columns()).where(NodeRow.parent_id.is_(None)).order_by(NodeRow.id)
    found = _nodes(session, query.limit(1))
    return found[0] if found else None


def node_by_code(*, session: Session, code: str) -> Node | None:
    found = _nodes(session, select(*_node_columns()).where(NodeRow.code == code))
    return found[0] if found else None


def children(*, session: Session, node: Node) -> list[Node]:
    query = select(*_node_columns()).where(NodeRow.parent_id == node.id).order_by(NodeRow.code)
    return _nodes(session, query)


def lineage(*, session: Session, node: Node) -> list[Node]:
    """The node's ancestors from the root down, ending with the node itself (the breadcrumb)."""
    chain = [node]
    while chain[0].parent_id is not None:
        query = select(*_node_columns()).where(NodeRow.id == chain[0].parent_id)
        chain.insert(0, _nodes(session, query)[0])
    return chain


def node_tally(*, session: Session, node: Node, since: datetime, now: datetime) -> Tally:
    """The case tally of `node` over cases reported in [since, now]."""
    query = select(*tally_columns(now)).where(CaseRow.reported_at >= since)
    row = session.execute(_scoped(query, CaseRow, node)).one()
    return Tally(*(int(v) for v in row))


def child_tallies(
    *, session: Session, node: Node, since: datetime, now: datetime
) -> dict[int, Tally]:
    """The case tallies of each child of `node` (children with no cases are absent)."""
    child = node.level.child
    if child is None:
        return {}
    key = _level_column(CaseRow, child)
    query = select(key, *tally_columns(now)).where(CaseRow.reported_at >= since).group_by(key)
    return {
        row[0]: Tally(*(int(v) for v in row[1:]))
        for row in session.execute(_scoped(query, CaseRow, node))
    }


@dataclass(frozen=True, slots=True)
class Resources:
    """What a node has on the ground: grid workers, cameras and alarms waiting for action."""

    workers: int = 0
    cameras: int = 0
    active_alarms: int = 0


def _group_counts(
    session: Session, table: Any, node: Node, level: Level, *where: ColumnElement[bool]
) -> dict[int, int]:
    key = _level_column(table, level)
    query = select(key, func.count()).where(*where).group_by(key)
    return {
        int(k): int(n) for k, n in session.execute(_scoped(query, table, node)) if k is not None
    }


def resources_by(*, session: Session, node: Node, level: Level) -> dict[int, Resources]:
    """Resources of `node` grouped by its descendants (or itself) at `level`."""
    workers = _group_counts(
        session, WorkerRow, node, level, WorkerRow.role == WorkerRole.GRID_WORKER.value
    )
    cameras = _group_counts(session, CameraRow, node, level)
    alarms = _group_counts(
        session,
        AlarmRow,
        node,
        level,
        AlarmRow.status.in_([AlarmStatus.ACTIVE.value, AlarmStatus.ACKNOWLEDGED.value]),
    )
    keys = set(workers) | set(cameras) | set(alarms)
    return {
        k: Resources(workers.get(k, 0), cameras.get(k, 0), alarms.get(k, 0))
        for k in keys
        if k is not None
    }


def node_resources(*, session: Session, node: Node) -> Resources:
    if node.level is Level.CITY:
        totals = resources_by(session=session, node=node, level=Level.DISTRICT).values()
        return Resources(
            sum(r.workers for r in totals),
            sum(r.cameras for r in totals),
            sum(r.active_alarms for r in totals),
        )
    return resources_by(session=session, node=node, level=node.level).get(node.id, Resources())


def case_facts(*, session: Session, node: Node, since: datetime) -> list[CaseFacts]:
    """The KPI-relevant facts of every case of `node` reported since `since` (for cross-checks)."""
    c = CaseRow
    query = select(
        c.status,
        c.reported_at,
        c.due_at,
        c.closed_at,
        c.handled_at,
        c.deferred,
        c.rework_count,
        c.satisfaction,
        c.resolved_at,
    ).where(c.reported_at >= since)
    return [
        CaseFacts(
            status=CaseStatus(r.status),
            reported_at=r.reported_at,
            due_at=r.due_at,
            closed_at=r.closed_at,
            handled=r.handled_at is not None,
            deferred=bool(r.deferred),
            rework_count=r.rework_count,
            satisfaction=Satisfaction(r.satisfaction) if r.satisfaction else None,
            resolved_at=ResolvedAt(r.resolved_at) if r.resolved_at else None,
        )
        for r in session.execute(_scoped(query, c, node))
    ]


def latest_cases(*, session: Session, node: Node, limit: int) -> list[CaseRow]:
    """The most recently reported cases of `node`."""
    query = select(CaseRow).order_by(CaseRow.reported_at.desc(), CaseRow.id.desc()).limit(limit)
    return list(session.scalars(_scoped(query, CaseRow, node)))
