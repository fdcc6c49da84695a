"""The wall map's colour scale per level: thresholds of open cases taken from every node of the level
in the city, so an area's colour says how loaded it is among all areas of its kind, not among its few
siblings (one open case among empty siblings is not red).

The thresholds are quantiles of open cases per node of the level, zeros included, read with one
GROUP BY over the level's ancestor column and kept for `REFRESH_S` seconds (they drift slowly: a
quantile over hundreds of nodes hardly moves in minutes).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data_sources.model import CaseStatus, Level
from data_sources.schema import CaseRow, NodeRow

#: The quantiles of open cases per node that turn an area amber and red.
QUANTILES = (0.5, 0.9)
#: The amber threshold is at least this many open cases, the red one above it: on a level where
#: most areas have none (buildings), a single case stays far from red.
MIN_MID = 2
#: How long thresholds are reused before they are read again (seconds).
REFRESH_S = 300.0
_OPEN = [s.value for s in CaseStatus if s.is_open]


@dataclass(frozen=True, slots=True)
class LoadScale:
    """Open cases at which an area of `level` is calm (cyan), loaded (amber) and overloaded (red)."""

    level: Level
    stops: tuple[int, int, int]


def quantile(values: Sequence[int], q: float) -> float:
    """The `q` quantile of `values` (linear between the nearest ranks); 0 for none."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    at = q * (len(ordered) - 1)
    low, high = math.floor(at), math.ceil(at)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def scale_of(level: Level, open_per_node: Sequence[int]) -> LoadScale:
    """The scale of `level` from the open cases of each of its nodes."""
    mid = max(math.ceil(quantile(open_per_node, QUANTILES[0])), MIN_MID)
    high = max(math.ceil(quantile(open_per_node, QUANTILES[1])), mid + 1)
    return LoadScale(level, (0, mid, high))


def open_per_node(*, session: Session, level: Level) -> list[int]:
    """Open cases of every node of `level` (a fact level), zeros included."""
    column: Any = getattr(CaseRow, f"{level.value}_id")
    query = (
        select(func.count()).where(CaseRow.status.in_(_OPEN), column.is_not(None)).group_by(column)
    )
    loaded = [int(n) for n in session.scalars(query)]
    nodes = int(session.scalar(select(func.count()).where(NodeRow.level == level.value)) or 0)
    return [0] * max(nodes - len(loaded), 0) + loaded


class LevelScales:
    """Scales per level and database, read at most every `refresh` seconds; thread-safe."""

    def __init__(
        self, refresh: float = REFRESH_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.refresh = refresh
        self.clock = clock
        self._found: dict[tuple[str, Level], tuple[float, LoadScale]] = {}
        self._lock = threading.Lock()

    def get(self, *, session: Session, level: Level) -> LoadScale:
        key = (str(session.get_bind().engine.url), level)
        now = self.clock()
        with self._lock:
            found = self._found.get(key)
        if found is not None and now - found[0] < self.refresh:
            return found[1]
        scale = scale_of(level, open_per_node(session=session, level=level))
        with self._lock:
            self._found[key] = (now, scale)
        return scale


#: The process's scales (renders of every page and scope share them).
SCALES = LevelScales()


def level_scale(*, session: Session, level: Level | None) -> LoadScale | None:
    """The colour scale of the map's areas when they are nodes of `level` (None: no areas)."""
    if level is None or level is Level.CITY:
        return None
    return SCALES.get(session=session, level=level)
