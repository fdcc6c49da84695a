"""Component ids, declared once. A leaf module: imports nothing from the project."""

from __future__ import annotations

from enum import StrEnum


class Overview(StrEnum):
    """Ids of the laptop overview page `/`."""

    URL = "overview-url"
    CONTENT = "overview-content"
    LANG_LINK = "overview-lang-link"
    TITLE = "overview-title"
    LIVE = "overview-live"
    FEED = "overview-feed"
    #: Set by assets/live.js when the stream came back with a snapshot instead of the missed
    #: deltas: the page is drawn again from SQL (its case feed missed what came meanwhile).
    RESYNC = "overview-resync"


def kpi(name: str) -> str:
    """Id of the KPI tile showing `name` (a `Kpis`/`Resources` field)."""
    return f"overview-kpi-{name.replace('_', '-')}"


def child_row(code: str) -> str:
    """Id of the table row of the child node `code`."""
    return f"overview-child-{code}"


def child_cell(code: str, name: str) -> str:
    """Id of the cell showing `name` of the child node `code` (updated live)."""
    return f"overview-cell-{code}-{name.replace('_', '-')}"


class App(StrEnum):
    """Ids of the top-level shell that picks the page from the URL's path."""

    URL = "app-url"
    PAGE = "app-page"


class Wall(StrEnum):
    """Ids of the command-centre wall `/wall`."""

    URL = "wall-url"
    VIEWPORT = "wall-viewport"
    CANVAS = "wall-canvas"
    TITLE = "wall-title"
    BREADCRUMB = "wall-breadcrumb"
    LIVE = "wall-live"
    CLOCK = "wall-clock"
    DATE = "wall-date"
    NOTICE = "wall-notice"
    KPIS = "wall-kpis"
    FUNNEL = "wall-funnel"
    CATEGORIES = "wall-categories"
    MAP_TITLE = "wall-map-title"
    MAP = "wall-map"
    AREAS = "wall-areas"
    OUTLINE = "wall-outline"
    LABELS = "wall-labels"
    CAMERAS = "wall-cameras"
    WORKERS = "wall-workers"
    ALARM_POINTS = "wall-alarm-points"
    LEGEND_LOW = "wall-legend-low"
    LEGEND_HIGH = "wall-legend-high"
    LEGEND = "wall-legend"
    RANKING = "wall-ranking"
    ALARMS = "wall-alarms"
    ALARM_LIST = "wall-alarm-list"
    FEED = "wall-feed"
    FEED_LIST = "wall-feed-list"
    TREND = "wall-trend"
    TREND_BODY = "wall-trend-body"
    TREND_GRAPH = "wall-trend-graph"
    CHANNELS = "wall-channels"
    CHANNEL_GRAPH = "wall-channel-graph"
    #: Set by assets/wall.js when a ticker button is clicked: {alarm, case, nonce}.
    ALARM_ACTION = "wall-alarm-action"
    #: Set by assets/wall.js when the stream came back with a snapshot instead of the missed deltas
    #: (an outage longer than the hub's ring, a server restart): the whole wall is drawn again
    #: from SQL, so lists and map points hold nothing that changed unseen meanwhile.
    RESYNC = "wall-resync"
    ACTION_RESULT = "wall-action-result"


def wall_kpi(name: str) -> str:
    """Id of the wall's KPI tile value showing `name`."""
    return f"wall-kpi-{name.replace('_', '-')}"


def wall_rank_row(code: str) -> str:
    """Id of the wall's ranking row of the child node `code`."""
    return f"wall-rank-{code}"


def wall_rank_cell(code: str, name: str) -> str:
    """Id of the wall's ranking cell showing `name` of the child node `code` (updated live)."""
    return f"wall-rank-{code}-{name.replace('_', '-')}"


def wall_worker_row(code: str) -> str:
    """Id of the wall's row of grid worker `code` (at a building)."""
    return f"wall-worker-{code}"
