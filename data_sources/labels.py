"""How people read the domain's values, in Chinese and English: statuses, categories, channels,
evaluations, alarm types, statuses and severities, grid workers' roles and duty. One table for
the pages (layouts/i18n.py takes it) and for the exports, which live in data_sources and may not
import layouts."""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final

from data_sources.model import (
    AlarmStatus,
    AlarmType,
    CaseStatus,
    Category,
    Channel,
    Satisfaction,
    Severity,
    WorkerRole,
)

#: (zh, en) by the key the pages use ("status_closed", "cat_noise", "alarm_fire"…).
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
    "alarm_fire": ("烟火", "Smoke/fire"),
    "alarm_crowd": ("人员聚集", "Crowd gathering"),
    "alarm_intrusion": ("区域入侵", "Intrusion"),
    "alarm_illegal_parking": ("违停", "Illegal parking"),
    "alarm_street_vending": ("占道经营", "Street vending"),
    "alarm_garbage_overflow": ("垃圾满溢", "Garbage overflow"),
    "alarm_person_down": ("人员倒地", "Person down"),
    "alarm_thrown_object": ("高空抛物", "Object thrown"),
    "alarm_status_active": ("告警中", "Active"),
    "alarm_status_acknowledged": ("已确认", "Acknowledged"),
    "alarm_status_resolved": ("已解除", "Resolved"),
    "alarm_status_false_alarm": ("误报", "False alarm"),
    "severity_1": ("低", "Low"),
    "severity_2": ("中", "Medium"),
    "severity_3": ("高", "High"),
    "severity_4": ("紧急", "Critical"),
    "role_grid_worker": ("网格员", "Grid worker"),
    "role_inspector": ("督查员", "Inspector"),
    "role_supervisor": ("监督员", "Supervisor"),
    "role_volunteer": ("志愿者", "Volunteer"),
    # A grid worker on duty (在岗: a fix within ON_DUTY), off duty, or never sent a fix.
    "duty_on": ("在岗", "On duty"),
    "duty_off": ("离线", "Off duty"),
    "duty_never": ("无定位", "No fix"),
}

#: The key of each value's label: its prefix, then the value ("alarm_status_" + "active").
PREFIXES: Final[dict[type[StrEnum] | type[IntEnum], str]] = {
    CaseStatus: "status_",
    Category: "cat_",
    Channel: "channel_",
    Satisfaction: "satisfaction_",
    AlarmType: "alarm_",
    AlarmStatus: "alarm_status_",
    Severity: "severity_",
    WorkerRole: "role_",
}


def label(member: StrEnum | IntEnum | None, lang: str) -> str:
    """A status, category, channel, evaluation, alarm type, alarm status, severity or worker
    role as people read it ("" for none)."""
    if member is None:
        return ""
    return phrase(PREFIXES[type(member)] + str(member.value), lang)


def phrase(key: str, lang: str) -> str:
    """The label of `key` ("duty_on"…) in `lang` (Chinese unless "en")."""
    zh, en = LABELS[key]
    return en if lang == "en" else zh
