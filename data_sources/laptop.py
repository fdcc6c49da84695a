"""The leaders' laptop view of one scope under a filter: KPIs against the previous period with a
daily series each, and the scope's children compared (the screen composes `data_sources.cases`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

from sqlalchemy.orm import Session

from data_sources import store
from data_sources.access.model import Scope
from data_sources.cases.filters import CaseFilter, Window
from data_sources.cases.query import (
    child_daily_reported,
    child_tallies,
    daily_counts,
    filter_tally,
)
from data_sources.kpi import Kpis, Tally, kpis
from data_sources.model import Node
from data_sources.overview import rank_by
from data_sources.wall import map_areas
from data_sources.wall_geo import Area

#: The KPI tiles, in display order, with how each is formatted ("count", "rate", "hours").
KPI_TILES: tuple[tuple[str, str], ...] = (
    ("reported", "count"),
    ("open", "count"),
    ("overdue", "count"),
    ("closure_rate", "rate"),
    ("on_time_rate", "rate"),
    ("rework_rate", "rate"),
    ("satisfaction_rate", "rate"),
    ("grassroots_rate", "rate"),
    ("mean_handling_hours", "hours"),
)


@dataclass(frozen=True, slots=True)
class KpiFigure:
    """One KPI of the filter: now, in the previous period of the same length, and per day."""

    name: str
    kind: str
    value: float | None
    previous: float | None
    series: list[float | None]


@dataclass(frozen=True, slots=True)
class ChildFigures:
    node: Node
    kpis: Kpis
    #: Cases reported per day of the window (the row's sparkline).
    trend: list[int]
    #: 1 = best on-time closure rate among its siblings; None when it has no due cases.
    rank: int | None


@dataclass(frozen=True, slots=True)
class LaptopView:
    node: Node
    lineage: list[Node]
    window: Window
    days: list[date]
    figures: list[KpiFigure]
    children: list[ChildFigures]
    #: When the figures were read (naive UTC).
    now: datetime
    #: The children's outlines and the scope's own (simplified for the scope's extent).
    areas: list[Area]
    outline: Area | None

    def as_of(self, tz: tzinfo) -> str:
        return f"{self.now.replace(tzinfo=UTC).astimezone(tz):%Y-%m-%d %H:%M}"


def load_laptop(
    *,
    session: Session,
    scope: Scope,
    filt: CaseFilter,
    now: datetime,
    tz: tzinfo,
    outlines: bool = True,
) -> LaptopView | None:
    """The view of `scope` (resolved and checked by the guard) under `filt`; None when its node is
    not in the store. `outlines=False` leaves the map's outlines out (a live refresh: they do
    not change, and they are the heaviest part to read and to draw).

    Every figure is of the cases the filter selects, reported in its window ("open" included:
    the wall's "open now" is another figure); the previous period's are as they stood at its end
    (overdue then), with today's statuses (the store keeps no past ones).
    """
    node = store.node_by_code(session=session, code=scope.code)
    if node is None:
        return None
    window = filt.window(now=now, tz=tz)
    before = filt.previous(now=now, tz=tz)
    current = filter_tally(session=session, scope=scope, filt=filt, window=window, now=now)
    previous = filter_tally(
        session=session, scope=scope, filt=filt, window=before, now=before.until
    )
    daily = daily_counts(session=session, scope=scope, filt=filt, window=window, tz=tz, now=now)
    now_kpis, then = kpis(current), kpis(previous)
    figures = [
        KpiFigure(
            name,
            kind,
            getattr(now_kpis, name),
            getattr(then, name),
            [getattr(kpis(tally), name) for _, tally in daily],
        )
        for name, kind in KPI_TILES
    ]
    kids = store.children(session=session, node=node)
    tallies = child_tallies(session=session, scope=scope, filt=filt, window=window, now=now)
    trends = child_daily_reported(
        session=session, scope=scope, filt=filt, window=window, tz=tz, now=now
    )
    child_kpis = {kid.id: kpis(tallies.get(kid.id, Tally())) for kid in kids}
    ranks = rank_by({k: v.on_time_rate for k, v in child_kpis.items()})
    empty = [0] * len(daily)
    areas, outline = map_areas(session=session, node=node) if outlines else ([], None)
    return LaptopView(
        node=node,
        lineage=store.lineage(session=session, node=node),
        window=window,
        days=[day for day, _ in daily],
        figures=figures,
        children=[
            ChildFigures(k, child_kpis[k.id], trends.get(k.id, empty), ranks.get(k.id))
            for k in kids
        ],
        now=now,
        areas=areas,
        outline=outline,
    )
