"""The figures of one scope for the overview page: the node, its breadcrumb, its KPIs, its children."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from data_sources import store
from data_sources.access.model import Scope
from data_sources.kpi import Kpis, Tally, kpis
from data_sources.model import Node
from data_sources.store import Resources


@dataclass(frozen=True, slots=True)
class NodeFigures:
    node: Node
    kpis: Kpis
    resources: Resources
    #: 1 = best on-time closure rate among its siblings; None when it has no due cases.
    rank: int | None = None


@dataclass(frozen=True, slots=True)
class FeedItem:
    id: str
    title: str
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Overview:
    scope: NodeFigures
    lineage: list[Node]
    children: list[NodeFigures]
    since: datetime
    now: datetime
    feed: list[FeedItem]


def rank_by(values: dict[int, float | None]) -> dict[int, int]:
    """Competition ranking (1, 2, 2, 4) of the non-None values, highest first."""
    ordered = sorted((v for v in values.values() if v is not None), reverse=True)
    first_place: dict[float, int] = {}
    for place, value in enumerate(ordered, 1):
        first_place.setdefault(value, place)
    return {k: first_place[v] for k, v in values.items() if v is not None}


def load_overview(
    *,
    session: Session,
    scope: Scope,
    now: datetime,
    window_days: int,
    open_now: Callable[[int], int] | None = None,
) -> Overview | None:
    """The overview of `scope` (resolved and checked by `access.scope.resolve_scope`); None when
    its node is not in the store (never another node instead).

    `open_now` gives a node's open cases right now (all of them, not only those reported in the
    window) from live state, the same figure the live stream updates; without it, SQL's windowed
    count is shown.
    """
    node = store.node_by_code(session=session, code=scope.code)
    if node is None:
        return None
    since = now - timedelta(days=window_days)
    kids = store.children(session=session, node=node)
    tallies = store.child_tallies(session=session, node=node, since=since, now=now)
    child_level = node.level.child
    resources = (
        store.resources_by(session=session, node=node, level=child_level) if child_level else {}
    )
    child_kpis = {k.id: _with_open(kpis(tallies.get(k.id, Tally())), k.id, open_now) for k in kids}
    ranks = rank_by({k: v.on_time_rate for k, v in child_kpis.items()})
    return Overview(
        scope=NodeFigures(
            node=node,
            kpis=_with_open(
                kpis(store.node_tally(session=session, node=node, since=since, now=now)),
                node.id,
                open_now,
            ),
            resources=store.node_resources(session=session, node=node),
        ),
        lineage=store.lineage(session=session, node=node),
        children=[
            NodeFigures(k, child_kpis[k.id], resources.get(k.id, Resources()), ranks.get(k.id))
            for k in kids
        ],
        since=since,
        now=now,
        feed=[
            FeedItem(c.id, c.title, c.status, c.reported_at)
            for c in store.latest_cases(session=session, node=node, limit=FEED_LENGTH)
        ],
    )


FEED_LENGTH = 10


def _with_open(figures: Kpis, node_id: int, open_now: Callable[[int], int] | None) -> Kpis:
    return figures if open_now is None else replace(figures, open=open_now(node_id))
