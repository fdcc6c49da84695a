"""UI strings in Chinese (default) and English, and number formatting for display."""

from __future__ import annotations

from typing import Final

Lang = str  # "zh" | "en"
LANGS: Final = ("zh", "en")

_STRINGS: Final[dict[str, tuple[str, str]]] = {
    "app_title": ("社会治理指挥中心", "Social Governance Command Centre"),
    "overview": ("辖区总览", "Overview"),
    "switch_lang": ("English", "中文"),
    "window": ("近{days}天上报案件", "Cases reported in the last {days} days"),
    "as_of": ("数据时间 {time}", "Data as of {time}"),
    "no_data_title": ("暂无数据", "No data yet"),
    "no_data_body": (
        "数据库中还没有辖区数据。请运行 gridcc seed 生成演示城市，或运行 gridcc demo。",
        "The database holds no hierarchy yet. Run `gridcc seed` to build the demo city, "
        "or `gridcc demo`.",
    ),
    "error_title": ("数据暂不可用", "Data temporarily unavailable"),
    "error_body": ("无法读取数据库，稍后自动重试。", "The database could not be read; retrying."),
    "children": ("下级{level}", "{level}s"),
    "no_children": ("这是最底层：楼栋。", "This is the lowest level: a building."),
    "rank": ("排名", "Rank"),
    "name": ("名称", "Name"),
    "code": ("编码", "Code"),
    "reported": ("上报", "Reported"),
    "open": ("在办", "Open"),
    "overdue": ("超期", "Overdue"),
    "closure_rate": ("结案率", "Closure rate"),
    "on_time_rate": ("按期结案率", "On-time closure"),
    "rework_rate": ("返工率", "Rework rate"),
    "satisfaction_rate": ("满意率", "Satisfaction"),
    "grassroots_rate": ("基层解决率", "Resolved at grassroots"),
    "mean_handling_hours": ("平均处置时长", "Mean handling time"),
    "workers": ("网格员", "Grid workers"),
    "cameras": ("摄像机", "Cameras"),
    "active_alarms": ("未解除告警", "Open alarms"),
    "hours": ("小时", "h"),
    "connecting": ("● 连接中", "● Connecting"),
    "feed": ("最新案件", "Latest cases"),
    "no_feed": ("暂无案件", "No cases yet"),
    "status_reported": ("上报", "Reported"),
    "status_accepted": ("受理", "Accepted"),
    "status_rejected": ("不予受理", "Rejected"),
    "status_dispatched": ("派遣", "Dispatched"),
    "status_handled": ("处置完成", "Handled"),
    "status_closed": ("结案", "Closed"),
    "level_city": ("市", "city"),
    "level_district": ("区县", "district"),
    "level_street": ("街道/镇", "street"),
    "level_community": ("社区/村", "community"),
    "level_grid": ("网格", "grid"),
    "level_building": ("楼栋", "building"),
}


def t(key: str, lang: Lang, **values: object) -> str:
    """The string `key` in `lang` (Chinese unless "en"), formatted with `values`."""
    zh, en = _STRINGS[key]
    text = en if lang == "en" else zh
    return text.format(**values) if values else text


def percent(value: float | None) -> str:
    """A rate as "96.5%", or "—" when there is no data (never a misleading 0 %)."""
    return "—" if value is None else f"{value * 100:.1f}%"


def number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"
