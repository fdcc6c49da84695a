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
    "no_such_area_title": ("没有这个区域", "No such area"),
    "no_such_area_body": (
        "编码 {code} 不是本辖区的区域。",
        "There is no area with the code {code} in this jurisdiction.",
    ),
    "to_city": ("返回全市", "Back to the whole city"),
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
    # ---- the wall
    "command_centre": ("{place}社会治理指挥中心", "{place} Command Centre"),
    "new_today": ("今日新增", "New today"),
    "alarms_now": ("告警", "Active alarms"),
    "alarms_short": ("告警", "Alarms"),
    "on_time_short": ("按期结案率", "On-time"),
    "on_duty": ("在岗网格员", "Workers on duty"),
    "unit_cases": ("件", ""),
    "unit_people": ("人", ""),
    "funnel": ("案件状态漏斗", "Case status funnel"),
    "stage_reported": ("上报", "Reported"),
    "stage_accepted": ("受理", "Accepted"),
    "stage_dispatched": ("派遣", "Dispatched"),
    "stage_handled": ("处置", "Handled"),
    "stage_closed": ("结案", "Closed"),
    "categories": ("案件类别", "Case categories"),
    "window_short": ("近{days}天", "last {days} days"),
    "map": ("辖区态势", "Situation map"),
    "load_legend": ("在办案件", "Open cases"),
    "ranking": ("下级排名 · 按期结案率", "Ranking · on-time closure"),
    "alarm_ticker": ("实时告警", "Live alarms"),
    "case_feed": ("实时案件", "Live cases"),
    "no_alarms": ("暂无告警", "No active alarms"),
    "camera_count": ("摄像机 {n}", "{n} cameras"),
    "grid_workers": ("本网格网格员", "Grid workers of this grid"),
    "no_workers": ("本网格暂无网格员", "No grid worker in this grid"),
    "duty_on": ("在岗", "On duty"),
    "duty_off": ("离线", "Off duty"),
    "last_fix": ("最后定位时间", "last position at"),
    "nearby_alarms": ("周边{metres}米摄像机", "cameras within {metres} m"),
    "weekday": ("周一 周二 周三 周四 周五 周六 周日", "Mon Tue Wed Thu Fri Sat Sun"),
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
    "trend": ("24小时趋势", "24-hour trend"),
    "trend_reported": ("上报", "Reported"),
    "trend_closed": ("结案", "Closed"),
    "channels": ("上报渠道", "Intake channels"),
    "today": ("今日", "today"),
    "channel_grid_worker": ("网格员上报", "Grid worker"),
    "channel_hotline_12345": ("12345热线", "12345 hotline"),
    "channel_patrol_vehicle": ("巡查车", "Patrol vehicle"),
    "channel_video": ("视频监控", "Video"),
    "channel_online_platform": ("便民服务平台", "Online platform"),
    "channel_police_110": ("110转警", "110 transfer"),
    "acknowledge": ("确认", "Ack"),
    "to_case": ("转案件", "To case"),
    "has_case": ("已立案", "Case opened"),
    "ack_done": ("已确认告警：{alarm}", "Acknowledged: {alarm}"),
    "ack_case_done": ("已确认告警并立案：{alarm}", "Acknowledged, case opened: {alarm}"),
    "ack_unchanged": ("告警已处理过，未重复立案：{alarm}", "Already handled: {alarm}"),
    "ack_not_found": ("告警 {alarm} 不存在", "Alarm {alarm} does not exist"),
    "ack_closed": ("告警 {alarm} 已解除，无法确认", "Alarm {alarm} is already resolved"),
    "ack_failed": ("操作失败，请重试", "The action failed; try again"),
    "rank_board": ("红黑榜 · 按期结案率", "Best and worst · on-time closure"),
    "rank_best": ("红榜", "Best"),
    "rank_worst": ("黑榜", "Worst"),
    "rank_unranked": ("{n}个无到期案件未排名", "{n} unranked (nothing due)"),
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
