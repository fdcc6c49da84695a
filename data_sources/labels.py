"""How people read the domain's values, in Chinese and English: statuses, categories, channels
and evaluations. One table for the pages (layouts/i18n.py takes it) and for the exports, which
live in data_sources and may not import layouts."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from data_sources.model import CaseStatus, Category, Channel, Satisfaction

#: (zh, en) by the key the pages use ("status_closed", "cat_noise", "channel_video"…).
LABELS: Final[dict[str, tuple[str, str]]] = {
    "status_reported": ("上报", "Reported"),
    "status_accepted": ("受理", "Accepted"),
    "status_rejected": ("不予受理", "Rejected"),
    "status_dispatched": ("派遣", "Dispatched"),
    "status_handled": ("处置完成", "Handled"),
    "status_closed": ("结案", "Closed"),
    "cat_sanitation": ("环境卫生", "Sanitation"),
    "cat_street_order": ("市容秩序", "Street order"),
    "cat_illegal_parking": ("违章停车", "Illegal parking"),
    "cat_property_dispute": ("物业纠纷", "Property dispute"),
    "cat_neighbour_dispute": ("邻里纠纷", "Neighbour dispute"),
    "cat_noise": ("噪音扰民", "Noise"),
    "cat_blocked_drain": ("下水道堵塞", "Blocked drain"),
    "cat_damaged_facility": ("公共设施损坏", "Damaged facility"),
    "cat_dogs": ("养犬管理", "Dogs"),
    "cat_wage_dispute": ("劳资纠纷", "Wage dispute"),
    "cat_rental_dispute": ("房屋租赁", "Rental dispute"),
    "cat_safety_hazard": ("安全隐患", "Safety hazard"),
    "channel_grid_worker": ("网格员上报", "Grid worker"),
    "channel_hotline_12345": ("12345热线", "12345 hotline"),
    "channel_patrol_vehicle": ("巡查车", "Patrol vehicle"),
    "channel_video": ("视频监控", "Video"),
    "channel_online_platform": ("便民服务平台", "Online platform"),
    "channel_police_110": ("110转警", "110 transfer"),
    "satisfaction_satisfied": ("满意", "Satisfied"),
    "satisfaction_basically_satisfied": ("基本满意", "Basically satisfied"),
    "satisfaction_dissatisfied": ("不满意", "Dissatisfied"),
}

#: The key of each value's label.
_PREFIX: Final[dict[type[StrEnum], str]] = {
    CaseStatus: "status_",
    Category: "cat_",
    Channel: "channel_",
    Satisfaction: "satisfaction_",
}


def label(member: StrEnum | None, lang: str) -> str:
    """A status, category, channel or evaluation as people read it ("" for none)."""
    if member is None:
        return ""
    zh, en = LABELS[_PREFIX[type(member)] + member.value]
    return en if lang == "en" else zh
