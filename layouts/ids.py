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
    FEED_BOX = "overview-feed-box"
    #: Set by assets/live.js when the stream came back with a snapshot instead of the missed
    #: deltas: the page is drawn again from SQL (its case feed missed what came meanwhile).
    RESYNC = "overview-resync"
    #: Who is signed in, with the sign-out button (or a sign-in link for anonymous visitors).
    ACCOUNT = "overview-account"
    BREADCRUMB = "overview-breadcrumb"
    WALL_LINK = "overview-wall-link"
    #: Light / dark (assets/overview.js keeps the choice in the browser's storage).
    THEME = "overview-theme"
    #: The filter bar: each control writes the URL, the URL draws the page.
    PERIOD = "overview-period"
    DATES = "overview-dates"
    DATES_BOX = "overview-dates-box"
    CATEGORY = "overview-category"
    CHANNEL = "overview-channel"
    STATUS = "overview-status"
    OVERDUE = "overview-overdue"
    SUPERVISED = "overview-supervised"
    SEARCH = "overview-search"
    FOLLOW = "overview-follow"
    RESET = "overview-reset"
    FILTER_ERROR = "overview-filter-error"
    #: What the filter's figures cover ("2026-11-06 – 2026-12-05 · data as of …").
    COVERS = "overview-covers"
    KPIS = "overview-kpis"
    CHILDREN_TITLE = "overview-children-title"
    CHILDREN = "overview-children"
    CASES = "overview-cases"
    CASE_COUNT = "overview-case-count"
    #: The KPI tiles and the children's rows as last drawn (a live refresh sends what changed).
    DRAWN = "overview-drawn"
    #: The case table's keyset cursors by block start (callbacks/case_table.py).
    CURSORS = "overview-cursors"
    #: The filter's case count when the table was drawn, and "N new — show" after it.
    BASELINE = "overview-baseline"
    NEW_ROWS = "overview-new-rows"
    #: Set by assets/overview.js (throttled) when the stream says the scope changed.
    TICK = "overview-tick"
    EXPORT_CSV = "overview-export-csv"
    EXPORT_XLSX = "overview-export-xlsx"
    #: The scope's map: its children coloured by the filter's open cases; a click drills.
    MAP = "overview-map"
    MAP_AREAS = "overview-map-areas"
    MAP_OUTLINE = "overview-map-outline"


class Case(StrEnum):
    """Ids of the case page `/case?id=…` (a case's lifecycle, place, alarm and supervision)."""

    URL = "case-url"
    CONTENT = "case-content"
    TITLE = "case-title"
    BACK = "case-back"
    LANG_LINK = "case-lang-link"
    MAP = "case-map"


class KpiPart(StrEnum):
    """The parts of a laptop KPI tile, ids `{"type": part, "kpi": name}`: a live refresh sets
    each one that changed (callbacks/overview.py)."""

    TILE = "overview-kpi-tile"
    VALUE = "overview-kpi-value"
    DELTA = "overview-kpi-delta"
    SPARK = "overview-kpi-spark"


def kpi_part(part: KpiPart, name: str) -> dict[str, str]:
    return {"type": part.value, "kpi": name}


def kpi(name: str) -> str:
    """CSS selector of the value of the laptop view's KPI tile `name` (a `Kpis` field)."""
    return f'[data-kpi="{name}"]'


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


class Admin(StrEnum):
    """Ids of the administration page `/admin` (users, displays, API keys, embed grants, the audit
    log)."""

    URL = "admin-url"
    TITLE = "admin-title"
    LANG_LINK = "admin-lang-link"
    CONTENT = "admin-content"
    TABS = "admin-tabs"
    # ---- users 用户
    USERS = "admin-users"
    USER_NAME = "admin-user-name"
    USER_ROLE = "admin-user-role"
    USER_SCOPE = "admin-user-scope"
    USER_PASSWORD = "admin-user-password"
    USER_PASSWORD2 = "admin-user-password2"
    USER_ADD = "admin-user-add"
    USER_ADD_GENERATE = "admin-user-add-generate"
    USER_ADD_RESULT = "admin-user-add-result"
    PASSWD_USER = "admin-passwd-user"
    PASSWD_PASSWORD = "admin-passwd-password"
    PASSWD_PASSWORD2 = "admin-passwd-password2"
    PASSWD_SET = "admin-passwd-set"
    PASSWD_GENERATE = "admin-passwd-generate"
    PASSWD_RESULT = "admin-passwd-result"
    #: Pattern-matching type of a user row's 停用 button (a confirm dialog): `row_action`.
    USER_DISABLE = "admin-user-disable"
    USER_DISABLE_RESULT = "admin-user-disable-result"
    #: Pattern-matching type of a disabled user row's 启用 button: `row_action`.
    USER_ENABLE = "admin-user-enable"
    USER_ENABLE_RESULT = "admin-user-enable-result"
    # ---- displays 显示终端
    DISPLAYS = "admin-displays"
    DISPLAY_NAME = "admin-display-name"
    DISPLAY_SCOPE = "admin-display-scope"
    DISPLAY_OPERATOR = "admin-display-operator"
    DISPLAY_ADD = "admin-display-add"
    DISPLAY_ADD_RESULT = "admin-display-add-result"
    #: Pattern-matching type of a display row's 吊销 button (a confirm dialog): `row_action`.
    DISPLAY_REVOKE = "admin-display-revoke"
    DISPLAY_REVOKE_RESULT = "admin-display-revoke-result"
    # ---- API keys 接入密钥
    KEYS = "admin-keys"
    KEY_SOURCE = "admin-key-source"
    KEY_ROLE = "admin-key-role"
    KEY_ADD = "admin-key-add"
    KEY_ADD_RESULT = "admin-key-add-result"
    #: Pattern-matching type of a key row's 吊销 button (a confirm dialog): `row_action`.
    KEY_REVOKE = "admin-key-revoke"
    KEY_REVOKE_RESULT = "admin-key-revoke-result"
    # ---- embed grants 嵌入授权
    EMBEDS = "admin-embeds"
    EMBED_NAME = "admin-embed-name"
    EMBED_SCOPE = "admin-embed-scope"
    EMBED_PANELS = "admin-embed-panels"
    EMBED_ORIGINS = "admin-embed-origins"
    EMBED_MAX_TTL = "admin-embed-max-ttl"
    EMBED_ADD = "admin-embed-add"
    EMBED_ADD_RESULT = "admin-embed-add-result"
    #: Pattern-matching type of a grant row's 吊销 button (a confirm dialog): `row_action`.
    EMBED_REVOKE = "admin-embed-revoke"
    EMBED_REVOKE_RESULT = "admin-embed-revoke-result"
    # ---- the audit log 审计日志
    AUDIT_ACTOR = "admin-audit-actor"
    AUDIT_ACTION = "admin-audit-action"
    AUDIT_OUTCOME = "admin-audit-outcome"
    AUDIT_SINCE = "admin-audit-since"
    AUDIT_UNTIL = "admin-audit-until"
    AUDIT_SEARCH = "admin-audit-search"
    AUDIT_STATUS = "admin-audit-status"
    AUDIT_TABLE = "admin-audit-table"
    AUDIT_BODY = "admin-audit-body"
    AUDIT_MORE = "admin-audit-more"
    #: The filters the list was drawn with and the id of its last line (keyset paging).
    AUDIT_CURSOR = "admin-audit-cursor"


def row_action(kind: Admin, index: int) -> dict[str, str | int]:
    """Id of the button of kind `kind` (`Admin.USER_DISABLE`…) in the table row of `index`."""
    return {"type": str(kind), "index": index}


class Lists(StrEnum):
    """Ids of the laptop view's follow-up lists other than cases (layouts/follow_lists.py): the
    alarm history and the grid workers, in tabs under the case table."""

    TABS = "lists-tabs"
    ALARMS = "lists-alarms"
    ALARM_COUNT = "lists-alarm-count"
    #: The alarm table's keyset cursors by block start (callbacks/follow_lists.py).
    ALARM_CURSORS = "lists-alarm-cursors"
    ALARM_EXPORT_CSV = "lists-alarm-export-csv"
    ALARM_EXPORT_XLSX = "lists-alarm-export-xlsx"
    WORKERS = "lists-workers"
    WORKER_COUNT = "lists-worker-count"
    #: What the worker table was drawn for and when ({"key": scope|lang, "at": epoch seconds}):
    #: a filter change or a tick soon after does not read the roster again.
    WORKER_DRAWN = "lists-worker-drawn"
    WORKER_EXPORT_CSV = "lists-worker-export-csv"
    WORKER_EXPORT_XLSX = "lists-worker-export-xlsx"
