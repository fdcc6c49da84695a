"""Domain types of gridcc: the five-level hierarchy, cases, cameras and alarms, workers.

Everything outside `data_sources/` speaks these types, never ORM rows or Redis payloads.
Timestamps are timezone-naive UTC throughout; the display time zone is a setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum


class Level(StrEnum):
    """A level of the hierarchy, from the city root down to a building."""

    CITY = "city"  # 市
    DISTRICT = "district"  # 区/县
    STREET = "street"  # 街道/镇
    COMMUNITY = "community"  # 社区/村
    GRID = "grid"  # 网格/庭院
    BUILDING = "building"  # 楼栋

    @property
    def depth(self) -> int:
        return LEVELS.index(self)

    @property
    def child(self) -> Level | None:
        i = LEVELS.index(self)
        return LEVELS[i + 1] if i + 1 < len(LEVELS) else None


LEVELS: tuple[Level, ...] = tuple(Level)
#: Levels that facts carry as ancestor-id columns (`district_id` … `building_id`).
FACT_LEVELS: tuple[Level, ...] = LEVELS[1:]


class Channel(StrEnum):
    """Where a case came in."""

    GRID_WORKER = "grid_worker"  # 网格员上报
    HOTLINE_12345 = "hotline_12345"  # 12345热线
    PATROL_VEHICLE = "patrol_vehicle"  # 巡查车
    VIDEO = "video"  # 视频监控
    ONLINE_PLATFORM = "online_platform"  # 便民服务平台
    POLICE_110 = "police_110"  # 110转警


class Category(StrEnum):
    """Case category (configurable later; these are the defaults)."""

    SANITATION = "sanitation"  # 环境卫生
    STREET_ORDER = "street_order"  # 市容秩序
    ILLEGAL_PARKING = "illegal_parking"  # 违章停车
    PROPERTY_DISPUTE = "property_dispute"  # 物业纠纷
    NEIGHBOUR_DISPUTE = "neighbour_dispute"  # 邻里纠纷
    NOISE = "noise"  # 噪音扰民
    BLOCKED_DRAIN = "blocked_drain"  # 下水道堵塞
    DAMAGED_FACILITY = "damaged_facility"  # 公共设施损坏
    DOGS = "dogs"  # 养犬管理
    WAGE_DISPUTE = "wage_dispute"  # 劳资纠纷
    RENTAL_DISPUTE = "rental_dispute"  # 房屋租赁
    SAFETY_HAZARD = "safety_hazard"  # 安全隐患


#: Time limit per category, in working hours (the clock stops outside working time).
DUE_WORKING_HOURS: dict[Category, float] = {
    Category.SANITATION: 4,
    Category.STREET_ORDER: 4,
    Category.ILLEGAL_PARKING: 2,
    Category.PROPERTY_DISPUTE: 40,
    Category.NEIGHBOUR_DISPUTE: 24,
    Category.NOISE: 8,
    Category.BLOCKED_DRAIN: 16,
    Category.DAMAGED_FACILITY: 40,
    Category.DOGS: 16,
    Category.WAGE_DISPUTE: 80,
    Category.RENTAL_DISPUTE: 40,
    Category.SAFETY_HAZARD: 8,
}


class CaseStatus(StrEnum):
    """Where a case stands in the closed loop (national digital city management stages)."""

    REPORTED = "reported"  # 上报, waiting for review
    ACCEPTED = "accepted"  # 受理
    REJECTED = "rejected"  # 不予受理 (terminal)
    DISPATCHED = "dispatched"  # 派遣
    HANDLED = "handled"  # 处置完成, waiting for verification
    CLOSED = "closed"  # 核查结案 (terminal)

    @property
    def is_open(self) -> bool:
        return self not in (CaseStatus.REJECTED, CaseStatus.CLOSED)


#: The order of the status funnel (上报→受理→派遣→处置→结案).
FUNNEL: tuple[CaseStatus, ...] = (
    CaseStatus.REPORTED,
    CaseStatus.ACCEPTED,
    CaseStatus.DISPATCHED,
    CaseStatus.HANDLED,
    CaseStatus.CLOSED,
)


class CaseAction(StrEnum):
    """One step of a case's lifecycle, recorded as a `case_event` with actor and time."""

    REPORT = "report"  # 上报
    ACCEPT = "accept"  # 受理
    REJECT = "reject"  # 不予受理
    DISPATCH = "dispatch"  # 派遣
    HANDLE = "handle"  # 处置完成
    REWORK = "rework"  # 返工: handled → dispatched
    CLOSE = "close"  # 核查结案
    EVALUATE = "evaluate"  # 回访评价
    DEFER = "defer"  # 缓办
    SUPERVISE = "supervise"  # 督办


#: The status a case moves to on each action, from the statuses the action is allowed in.
TRANSITIONS: dict[CaseAction, tuple[frozenset[CaseStatus], CaseStatus | None]] = {
    CaseAction.ACCEPT: (frozenset({CaseStatus.REPORTED}), CaseStatus.ACCEPTED),
    CaseAction.REJECT: (frozenset({CaseStatus.REPORTED}), CaseStatus.REJECTED),
    CaseAction.DISPATCH: (frozenset({CaseStatus.ACCEPTED}), CaseStatus.DISPATCHED),
    CaseAction.HANDLE: (frozenset({CaseStatus.DISPATCHED}), CaseStatus.HANDLED),
    CaseAction.REWORK: (frozenset({CaseStatus.HANDLED}), CaseStatus.DISPATCHED),
    CaseAction.CLOSE: (frozenset({CaseStatus.HANDLED}), CaseStatus.CLOSED),
    CaseAction.EVALUATE: (frozenset({CaseStatus.CLOSED}), None),
    CaseAction.DEFER: (frozenset({CaseStatus.ACCEPTED, CaseStatus.DISPATCHED}), None),
    CaseAction.SUPERVISE: (
        frozenset({CaseStatus.ACCEPTED, CaseStatus.DISPATCHED, CaseStatus.HANDLED}),
        None,
    ),
}


class Satisfaction(StrEnum):
    """The citizen's evaluation on the return visit (回访)."""

    SATISFIED = "satisfied"  # 满意
    BASICALLY_SATISFIED = "basically_satisfied"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意


class ResolvedAt(StrEnum):
    """The level at which a closed case was resolved; grid and community count as grassroots."""

    GRID = "grid"
    COMMUNITY = "community"
    STREET = "street"
    DISTRICT = "district"


GRASSROOTS: frozenset[ResolvedAt] = frozenset({ResolvedAt.GRID, ResolvedAt.COMMUNITY})


class AlarmType(StrEnum):
    """What a camera's analytics saw."""

    FIRE = "fire"  # 烟火
    CROWD = "crowd"  # 人员聚集
    INTRUSION = "intrusion"  # 区域入侵
    ILLEGAL_PARKING = "illegal_parking"  # 违停
    STREET_VENDING = "street_vending"  # 占道经营
    GARBAGE_OVERFLOW = "garbage_overflow"  # 垃圾满溢
    PERSON_DOWN = "person_down"  # 人员倒地
    THROWN_OBJECT = "thrown_object"  # 高空抛物


class Severity(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4


#: Severity from which an alarm is high (red, a pulse on the wall's map, a flash when new).
HIGH_SEVERITY = Severity.HIGH


class AlarmStatus(StrEnum):
    ACTIVE = "active"  # 告警中
    ACKNOWLEDGED = "acknowledged"  # 已确认
    RESOLVED = "resolved"  # 已解除
    FALSE_ALARM = "false_alarm"  # 误报


class WorkerRole(StrEnum):
    """The "1+1+1+N" staffing of a grid."""

    GRID_WORKER = "grid_worker"  # 网格员
    INSPECTOR = "inspector"  # 区级督查员
    SUPERVISOR = "supervisor"  # 街道监督员
    VOLUNTEER = "volunteer"  # 志愿者/楼栋长


@dataclass(frozen=True, slots=True)
class Node:
    """One node of the hierarchy, without its geometry."""

    id: int
    code: str
    level: Level
    parent_id: int | None
    name_zh: str
    name_en: str
    lon: float
    lat: float

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """The facts of one case that the KPIs are computed from."""

    status: CaseStatus
    reported_at: datetime
    due_at: datetime | None = None
    closed_at: datetime | None = None
    handled: bool = False
    deferred: bool = False
    rework_count: int = 0
    satisfaction: Satisfaction | None = None
    resolved_at: ResolvedAt | None = None
