"""The case table's queries against SQL written independently here, on SQLite and PostgreSQL.

A hand-made city of two districts and ~200 cases whose values are drawn to hit every edge: ties
of reported time, due and closed times missing, cases exactly on a window's boundary, names with
`%`, `_` and `\\`. For a grid of filters and scopes, paging through `case_page` seven rows at a
time gives exactly the ids, in exactly the order, of one raw `text()` query with ORDER BY; the
count and the KPI tallies agree with the same rows.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Boolean, DateTime, Engine, bindparam, event, text
from sqlalchemy.orm import Session, sessionmaker

from data_sources import db
from data_sources.access.model import Scope
from data_sources.cases import sql
from data_sources.cases.filters import (
    NEAR_DUE_HOURS,
    CaseFilter,
    FilterError,
    FollowUp,
    Period,
    Window,
)
from data_sources.cases.query import (
    CaseListItem,
    Sort,
    SortKey,
    case_count,
    case_page,
    child_daily_reported,
    child_tallies,
    daily_counts,
    filter_tally,
    iter_cases,
)
from data_sources.kpi import Tally, tally_of_cases
from data_sources.model import (
    CaseFacts,
    CaseStatus,
    Category,
    Channel,
    Level,
    ResolvedAt,
    Satisfaction,
)
from data_sources.schema import CaseRow, NodeRow, WorkerRow

from .conftest import AS_OF, BACKENDS, TZ, fresh_database_url

NOW = AS_OF  # 2026-11-23 14:00 in Kunming
SQUARE = json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})

# id, code, level, parent, name_zh, name_en
NODES = [
    (1, "530100", "city", None, "昆明市", "Kunming"),
    (10, "530102", "district", 1, "五华区", "Wuhua"),
    (20, "530103", "district", 1, "盘龙区", "Panlong"),
    (11, "530102001", "street", 10, "华山街道", "Huashan"),
    (19, "530102002", "street", 10, "护国街道", "Huguo"),  # no cases: a zero child
    (21, "530103001", "street", 20, "拓东街道", "Tuodong"),
    (12, "530102001001", "community", 11, "翠湖社区", "Cuihu Community"),
    (13, "530102001002", "community", 11, "100%_社区", "Pct_Under Community"),
    (22, "530103001001", "community", 21, "金星社区", "Jinxing Community"),
    (14, "530102001001001", "grid", 12, "第一网格", "Grid One"),
    (15, "530102001002001", "grid", 13, "a\\b网格", "Back\\slash Grid"),
    (23, "530103001001001", "grid", 22, "第一网格", "Grid One"),
    (16, "530102001001001001", "building", 14, "1栋", "Block 1"),
    (17, "530102001001001002", "building", 14, "2栋", "Block 2"),
    (18, "530102001002001001", "building", 15, "50%楼", "Half_Block"),
    (24, "530103001001001001", "building", 23, "翠湖楼", "Cuihu Tower"),  # another district
]
BUILDINGS = [16, 17, 18, 24]
WORKERS = {14: (101, "张网格"), 15: (102, "李网格"), 23: (103, "王网格")}
#: The custom range's first local midnight (2026-11-11 00:00 in Kunming) and its end.
EDGE = datetime(2026, 11, 10, 16, 0)
EDGE_END = datetime(2026, 11, 12, 16, 0)
US = timedelta(microseconds=1)


def _ancestors(nodes: dict[int, tuple[Any, ...]], node: int) -> dict[str, int]:
    chain: dict[str, int] = {}
    at: int | None = node
    while at is not None:
        _, _, level, parent, *_ = nodes[at]
        if level != "city":
            chain[f"{level}_id"] = at
        at = parent
    return chain


def _cases() -> list[dict[str, Any]]:
    """~200 cases with every edge the queries must get right."""
    rng = random.Random(11)
    nodes = {n[0]: n for n in NODES}
    rows: list[dict[str, Any]] = []
    fixed = [
        ("edge-before", EDGE - US),
        ("edge-first", EDGE),
        ("edge-last", EDGE_END - timedelta(seconds=1)),
        ("edge-after", EDGE_END),
        ("now-exactly", NOW),  # half-open window: not in any period ending now
        ("30d-first", datetime(2026, 10, 24, 16, 0)),
        ("30d-before", datetime(2026, 10, 24, 16, 0) - US),
    ]
    times: list[datetime] = []
    for i in range(200):
        if i < len(fixed):
            reported = fixed[i][1]
        elif times and rng.random() < 0.25:
            reported = rng.choice(times)  # ties: the id must break them
        else:
            reported = NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 45))
        times.append(reported)
        building = rng.choice(BUILDINGS)
        where = _ancestors(nodes, building)
        status = rng.choice(list(CaseStatus))
        accepted = status not in (CaseStatus.REPORTED, CaseStatus.REJECTED)
        due = (
            reported + timedelta(hours=rng.choice([2, 4, 8, 24, 40, 80, 400]))
            if accepted and rng.random() < 0.85
            else None
        )
        if due is not None and rng.random() < 0.15:
            due = NOW + timedelta(hours=rng.uniform(-2, NEAR_DUE_HOURS + 2))  # near its limit
        closed = status is CaseStatus.CLOSED
        closed_at = reported + timedelta(hours=rng.choice([1, 3, 30, 90])) if closed else None
        handled = status in (CaseStatus.HANDLED, CaseStatus.CLOSED) or rng.random() < 0.1
        prefix = "AB-" if i % 37 == 0 else f"{nodes[where['district_id']][1]}-"
        case_id = fixed[i][0] if i < len(fixed) else f"{prefix}{reported:%Y%m%d}-{i:05d}"
        rows.append(
            {
                "id": case_id,
                "title": rng.choice(
                    ["路灯不亮", "垃圾未清运", "Noise at night", "限速530_标志损坏"]
                )
                + f" {i}",
                "channel": rng.choice(list(Channel)).value,
                "category": rng.choice(list(Category)[:5]).value,
                "status": status.value,
                "lon": 102.7,
                "lat": 25.0,
                "reported_at": reported,
                "accepted_at": reported + timedelta(minutes=20) if accepted else None,
                "handled_at": reported + timedelta(hours=1) if handled else None,
                "closed_at": closed_at,
                "due_at": due,
                "handling_seconds": int((closed_at - reported).total_seconds())
                if closed_at
                else None,
                "deferred": rng.random() < 0.12,
                "supervised": rng.random() < 0.25,
                "rework_count": rng.choice([0, 0, 0, 1, 2]),
                "satisfaction": rng.choice([None, *(s.value for s in Satisfaction)])
                if closed
                else None,
                "resolved_at": rng.choice(list(ResolvedAt)).value if closed else None,
                "worker_id": WORKERS[where["grid_id"]][0] if rng.random() < 0.7 else None,
                **where,
            }
        )
    return rows


@pytest.fixture(scope="module", params=BACKENDS)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    engine = db.make_engine(fresh_database_url(request, tmp_path_factory.mktemp("cases")))
    db.upgrade(engine)
    nodes = {n[0]: n for n in NODES}
    with Session(engine) as session, session.begin():
        for id_, code, level, parent, zh, en in NODES:
            session.add(
                NodeRow(
                    id=id_,
                    code=code,
                    level=level,
                    parent_id=parent,
                    name_zh=zh,
                    name_en=en,
                    lon=102.7,
                    lat=25.0,
                    area_km2=1.0,
                    geometry=SQUARE,
                    **{k: v for k, v in _ancestors(nodes, id_).items() if k != "building_id"},
                )
            )
        session.flush()
        for grid, (id_, name) in WORKERS.items():
            where = _ancestors(nodes, grid)
            session.add(
                WorkerRow(id=id_, code=f"W{id_}", name=name, role="grid_worker", phone="1", **where)
            )
        session.flush()
        session.add_all(CaseRow(**row) for row in _cases())
    try:
        yield engine
    finally:
        engine.dispose()


def _scope(node: int) -> Scope:
    """The scope of `node` as `resolve_scope` makes it: its lineage from the district down."""
    nodes = {n[0]: n for n in NODES}
    _, code, level, *_ = nodes[node]
    lineage = _ancestors(nodes, node)
    path = tuple(lineage[f"{lv.value}_id"] for lv in Level if f"{lv.value}_id" in lineage)
    return Scope(node, code, Level(level), path)


CITY, WUHUA, PANLONG, GRID = _scope(1), _scope(10), _scope(20), _scope(14)

# ---------------------------------------------------------------- the independent reference

DATES = ("since", "until", "now", "soon")


def _search_sql(dialect: str) -> str:
    """A case matching :q, with plain substring functions (no LIKE, nothing to escape)."""
    find = "strpos({}, lower(:q))" if dialect == "postgresql" else "instr({}, lower(:q))"
    name = " OR ".join(find.format(f"lower(n.{c})") + " > 0" for c in ("name_zh", "name_en"))
    return (
        f"({find.format('lower(c.id)')} = 1 OR {find.format('lower(c.title)')} > 0"
        f" OR EXISTS (SELECT 1 FROM nodes n WHERE n.id IN (c.building_id, c.grid_id,"
        f" c.community_id) AND ({name})))"
    )


def _reference(
    session: Session, scope: Scope, filt: CaseFilter, sort: Sort, window: Window | None = None
) -> list[dict[str, Any]]:
    """The rows `filt` selects in `scope`, in `sort`'s order, by hand-written SQL."""
    window = window or filt.window(now=NOW, tz=TZ)
    dialect = session.get_bind().dialect.name
    where = ["c.reported_at >= :since", "c.reported_at < :until"]
    if scope.level is not Level.CITY:
        where.append(f"c.{scope.level.value}_id = {scope.id}")
    for column, values in (
        ("category", filt.categories),
        ("channel", filt.channels),
        ("status", filt.statuses),
    ):
        if values:
            where.append(f"c.{column} IN ({', '.join(repr(v.value) for v in values)})")
    open_ = "c.status NOT IN ('closed', 'rejected') AND c.deferred = :no"
    if filt.overdue or filt.follow is FollowUp.OVERDUE:
        where.append(f"{open_} AND c.due_at < :now")
    if filt.follow is FollowUp.NEAR_DUE:
        where.append(f"{open_} AND c.due_at >= :now AND c.due_at < :soon")
    if filt.follow is FollowUp.REWORKED:
        where.append("c.rework_count > 0")
    if filt.follow is FollowUp.UNSATISFIED:
        where.append("c.satisfaction = 'dissatisfied'")
    if filt.supervised:
        where.append("c.supervised = :yes")
    if filt.search:
        where.append(_search_sql(dialect))
    # Text in byte order (the table's documented order), whatever the server's collation.
    byte = ' COLLATE "C"' if dialect == "postgresql" else ""
    key = f"c.{sort.key.value}" + ("" if sort.key.is_time else byte)
    way = "DESC" if sort.descending else "ASC"
    case_id = f"c.id{byte} {way}"
    order = case_id if sort.key is SortKey.ID else f"({key} IS NULL), {key} {way}, {case_id}"
    sql = text(
        "SELECT c.id, c.status, c.reported_at, c.due_at, c.closed_at, c.handled_at, c.deferred,"
        " c.rework_count, c.satisfaction, c.resolved_at, c.district_id, c.street_id"
        f" FROM cases c WHERE {' AND '.join(where)} ORDER BY {order}"
    )
    params = {
        "since": window.since,
        "until": window.until,
        "now": NOW,
        "soon": NOW + timedelta(hours=NEAR_DUE_HOURS),
        "yes": True,
        "no": False,
        "q": filt.search,
    }
    used = {name for name in params if f":{name}" in sql.text}
    types = {name: DateTime() for name in DATES} | {"yes": Boolean(), "no": Boolean()}
    sql = sql.bindparams(*(bindparam(n, type_=types[n]) for n in used if n in types)).columns(
        reported_at=DateTime, due_at=DateTime, closed_at=DateTime, handled_at=DateTime
    )
    params = {name: value for name, value in params.items() if name in used}
    return [dict(r._mapping) for r in session.execute(sql, params)]


def _facts(row: dict[str, Any]) -> CaseFacts:
    return CaseFacts(
        status=CaseStatus(row["status"]),
        reported_at=row["reported_at"],
        due_at=row["due_at"],
        closed_at=row["closed_at"],
        handled=row["handled_at"] is not None,
        deferred=bool(row["deferred"]),
        rework_count=row["rework_count"],
        satisfaction=Satisfaction(row["satisfaction"]) if row["satisfaction"] else None,
        resolved_at=ResolvedAt(row["resolved_at"]) if row["resolved_at"] else None,
    )


def _all_pages(
    session: Session, scope: Scope, filt: CaseFilter, sort: Sort, limit: int = 7
) -> list[CaseListItem]:
    items: list[CaseListItem] = []
    after: str | None = None
    for _ in range(1000):
        page = case_page(
            session=session,
            scope=scope,
            filt=filt,
            now=NOW,
            tz=TZ,
            sort=sort,
            after=after,
            limit=limit,
        )
        assert len(page.items) <= limit
        assert page.after is None or len(page.items) == limit
        items += page.items
        if page.after is None:
            return items
        after = page.after
    raise AssertionError("paging did not end")


# ---------------------------------------------------------------- filters

ALL = CaseFilter(period=Period.CUSTOM, start=date(2026, 10, 1), end=date(2026, 11, 30))
FILTERS = {
    "default": CaseFilter(),
    "today": CaseFilter(period=Period.TODAY),
    "7d": CaseFilter(period=Period.DAYS_7),
    "month": CaseFilter(period=Period.MONTH),
    "custom-edge": CaseFilter(
        period=Period.CUSTOM, start=date(2026, 11, 11), end=date(2026, 11, 12)
    ),
    "all": ALL,
    "categories": CaseFilter(categories=(Category.SANITATION, Category.NOISE)),
    "channel": CaseFilter(channels=(Channel.HOTLINE_12345,)),
    "statuses": CaseFilter(statuses=(CaseStatus.DISPATCHED, CaseStatus.HANDLED)),
    "overdue": CaseFilter(overdue=True),
    "supervised": CaseFilter(supervised=True),
    "id-exact": CaseFilter(
        period=Period.CUSTOM, start=date(2026, 11, 11), end=date(2026, 11, 11), search="edge-first"
    ),
    "id-prefix": CaseFilter(search="530102-202611"),
    "id-prefix-case": CaseFilter(search="ab-"),
    "title": CaseFilter(search="路灯"),
    "title-case": CaseFilter(search="NOISE AT"),
    "building": CaseFilter(search="1栋"),
    "grid-en": CaseFilter(search="grid one"),
    "community": CaseFilter(search="翠湖"),
    "percent": CaseFilter(search="%"),
    "underscore": CaseFilter(search="_"),
    "underscore-id": CaseFilter(search="530_"),
    "backslash": CaseFilter(search="\\"),
    "backslash-b": CaseFilter(search="a\\b"),
    **{f"follow-{f.value}": CaseFilter(follow=f) for f in FollowUp},
    "combined": CaseFilter(
        period=Period.DAYS_30,
        categories=(Category.SANITATION, Category.STREET_ORDER, Category.NOISE),
        statuses=(CaseStatus.ACCEPTED, CaseStatus.DISPATCHED, CaseStatus.CLOSED),
        supervised=True,
        search="网格",
    ),
    "overdue-supervised-reworked": CaseFilter(
        overdue=True, supervised=True, follow=FollowUp.REWORKED
    ),
}
SCOPES = {"city": CITY, "wuhua": WUHUA, "grid": GRID}
#: Every filter in the city and in a district; a few in a grid.
GRID_OF_FILTERS = [
    *((name, scope) for name in FILTERS for scope in ("city", "wuhua")),
    *((name, "grid") for name in ("default", "community", "follow-overdue", "combined")),
]


@pytest.mark.parametrize(
    ("name", "scope"), GRID_OF_FILTERS, ids=[f"{n}-{s}" for n, s in GRID_OF_FILTERS]
)
def test_pages_count_and_tally_equal_independent_sql(city: Engine, name: str, scope: str) -> None:
    filt, where = FILTERS[name], SCOPES[scope]
    with Session(city) as session:
        for sort in (Sort(), Sort(SortKey.DUE_AT, descending=False)):
            expected = _reference(session, where, filt, sort)
            items = _all_pages(session, where, filt, sort)
            assert [i.id for i in items] == [r["id"] for r in expected], sort
        count = case_count(session=session, scope=where, filt=filt, now=NOW, tz=TZ)
        assert count == len(expected)
        window = filt.window(now=NOW, tz=TZ)
        tally = filter_tally(session=session, scope=where, filt=filt, window=window, now=NOW)
        assert tally == tally_of_cases((_facts(r) for r in expected), now=NOW)
        previous = window.previous()
        before = _reference(session, where, filt, Sort(), previous)
        assert filter_tally(
            session=session, scope=where, filt=filt, window=previous, now=NOW
        ) == tally_of_cases((_facts(r) for r in before), now=NOW)
    if scope == "wuhua":
        assert all(r["district_id"] == WUHUA.id for r in expected)


def test_the_grid_of_filters_is_not_vacuous(city: Engine) -> None:
    """Each filter of the grid selects some cases and not all: a wrong condition would show."""
    with Session(city) as session:
        everything = len(_reference(session, CITY, ALL, Sort()))
        for name, filt in FILTERS.items():
            found = len(_reference(session, CITY, filt, Sort()))
            assert 0 < found < everything or name == "all", name


def test_filters_mean_what_they_say(city: Engine) -> None:
    with Session(city) as session:

        def ids(filt: CaseFilter, scope: Scope = CITY) -> set[str]:
            return {i.id for i in _all_pages(session, scope, filt, Sort(), limit=50)}

        edge = ids(FILTERS["custom-edge"])
        assert {"edge-first", "edge-last"} <= edge
        assert not {"edge-before", "edge-after"} & edge
        assert "30d-first" in ids(CaseFilter()) and "30d-before" not in ids(CaseFilter())
        assert "now-exactly" not in ids(CaseFilter(period=Period.TODAY))
        assert ids(FILTERS["id-exact"]) == {"edge-first"}
        assert ids(FILTERS["underscore-id"]) and all(
            "530_" in i.title for i in _all_pages(session, CITY, FILTERS["underscore-id"], Sort())
        )
        # 翠湖 names a community of Wuhua and a building of Panlong: each scope sees its own.
        wuhua = _all_pages(session, WUHUA, FILTERS["community"], Sort())
        panlong = _all_pages(session, PANLONG, FILTERS["community"], Sort())
        assert wuhua and panlong
        assert all(i.place_zh.startswith("翠湖社区") for i in wuhua)
        assert all(i.place_zh == "金星社区 · 第一网格 · 翠湖楼" for i in panlong)
        assert {i.id for i in wuhua}.isdisjoint({i.id for i in panlong})
        percent = _all_pages(session, CITY, FILTERS["percent"], Sort())
        assert percent and all("%" in i.place_zh for i in percent)


def test_items_carry_the_row_values(city: Engine) -> None:
    with Session(city) as session:
        items = _all_pages(session, CITY, ALL, Sort(), limit=100)
        rows = {r.id: r for r in session.query(CaseRow)}
        workers = {w.id: w.name for w in session.query(WorkerRow)}
    assert len(items) == len(rows)
    for item in items:
        row = rows[item.id]
        assert (item.title, item.status.value, item.category.value, item.channel.value) == (
            row.title,
            row.status,
            row.category,
            row.channel,
        )
        assert (item.reported_at, item.due_at, item.closed_at) == (
            row.reported_at,
            row.due_at,
            row.closed_at,
        )
        assert item.worker == (workers[row.worker_id] if row.worker_id else None)
        assert item.overdue == (
            row.status not in ("closed", "rejected")
            and not row.deferred
            and row.due_at is not None
            and row.due_at < NOW
        )
        assert (item.supervised, item.deferred, item.rework_count) == (
            row.supervised,
            row.deferred,
            row.rework_count,
        )
        assert item.place_zh.count(" · ") == 2 and item.place_en.count(" · ") == 2


@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
@pytest.mark.parametrize("key", list(SortKey), ids=[k.value for k in SortKey])
def test_every_sort_pages_in_the_order_of_one_order_by(
    city: Engine, key: SortKey, descending: bool
) -> None:
    sort = Sort(key, descending)
    with Session(city) as session:
        for scope, filt in ((CITY, ALL), (WUHUA, FILTERS["statuses"])):
            expected = [r["id"] for r in _reference(session, scope, filt, sort)]
            assert [i.id for i in _all_pages(session, scope, filt, sort)] == expected
        whole = case_page(
            session=session, scope=WUHUA, filt=filt, now=NOW, tz=TZ, sort=sort, limit=len(expected)
        )
        assert [i.id for i in whole.items] == expected and whole.after is None


def test_iter_cases_streams_every_page_in_order(city: Engine) -> None:
    factory = sessionmaker(city)
    sort = Sort(SortKey.CLOSED_AT, descending=True)
    streamed = list(
        iter_cases(
            session_factory=factory, scope=CITY, filt=ALL, now=NOW, tz=TZ, sort=sort, chunk=7
        )
    )
    with Session(city) as session:
        assert streamed == _all_pages(session, CITY, ALL, sort, limit=50)
        assert len(streamed) == case_count(session=session, scope=CITY, filt=ALL, now=NOW, tz=TZ)


def _cursor(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def test_a_foreign_or_tampered_cursor_is_a_filter_error(city: Engine) -> None:
    with Session(city) as session:
        page = case_page(session=session, scope=CITY, filt=ALL, now=NOW, tz=TZ, limit=5)
        assert page.after is not None
        bad = [
            "",  # empty is "first page", allowed: checked below
            "not a cursor!",
            "%%%",
            page.after[:-3],
            page.after + "A",
            _cursor(["-reported_at", "garbage", "x"]),
            _cursor(["-reported_at", 5, "x"]),
            _cursor(["-reported_at", "2026-11-01T00:00:00+08:00", "x"]),
            _cursor(["-reported_at", None, "x"]),
            _cursor(["-reported_at", "2026-11-01T00:00:00", 7]),
            _cursor(["-reported_at", "2026-11-01T00:00:00"]),
            _cursor({"a": 1}),  # type: ignore[arg-type]
            "A" * 5000,
        ]
        for cursor in bad[1:]:
            with pytest.raises(FilterError) as raised:
                case_page(session=session, scope=CITY, filt=ALL, now=NOW, tz=TZ, after=cursor)
            assert raised.value.field == "after", cursor
        for other in (Sort(descending=False), Sort(SortKey.DUE_AT)):
            with pytest.raises(FilterError, match="another sort"):
                case_page(
                    session=session,
                    scope=CITY,
                    filt=ALL,
                    now=NOW,
                    tz=TZ,
                    sort=other,
                    after=page.after,
                )
        first = case_page(
            session=session, scope=CITY, filt=ALL, now=NOW, tz=TZ, after=bad[0] or None, limit=5
        )
        assert first == page
        for limit in (0, -1, 5_001):
            with pytest.raises(FilterError) as raised:
                case_page(session=session, scope=CITY, filt=ALL, now=NOW, tz=TZ, limit=limit)
            assert raised.value.field == "limit"


def test_a_cursor_does_not_widen_the_scope(city: Engine) -> None:
    """A cursor names a position only: pages of Wuhua after any position stay in Wuhua."""
    with Session(city) as session:
        panlong = _reference(session, PANLONG, ALL, Sort())
        cursor = _cursor(["-reported_at", panlong[0]["reported_at"].isoformat(), panlong[0]["id"]])
        page = case_page(session=session, scope=WUHUA, filt=ALL, now=NOW, tz=TZ, after=cursor)
        rows = {r.id: r.district_id for r in session.query(CaseRow)}
        assert page.items and all(rows[i.id] == WUHUA.id for i in page.items)


def test_sort_from_query() -> None:
    assert Sort.from_query(None) == Sort.from_query("") == Sort()
    assert Sort.from_query("-reported_at") == Sort(SortKey.REPORTED_AT, True)
    assert Sort.from_query("due_at") == Sort(SortKey.DUE_AT, False)
    for sort in (Sort(k, d) for k in SortKey for d in (True, False)):
        assert Sort.from_query(sort.to_query()) == sort
    for bad in ("-", "--id", "title", "due_at ", "DUE_AT"):
        with pytest.raises(FilterError) as raised:
            Sort.from_query(bad)
        assert raised.value.field == "sort"


# ---------------------------------------------------------------- KPIs per child and per day


def _local_day(at: datetime, tz: ZoneInfo) -> date:
    return at.replace(tzinfo=ZoneInfo("UTC")).astimezone(tz).date()


@pytest.mark.parametrize("name", ["default", "combined", "overdue", "custom-edge"])
def test_child_tallies_equal_python_tallies_per_child(city: Engine, name: str) -> None:
    filt = FILTERS[name]
    window = filt.window(now=NOW, tz=TZ)
    with Session(city) as session:
        for scope, children, column in (
            (CITY, [10, 20], "district_id"),
            (WUHUA, [11, 19], "street_id"),
        ):
            found = child_tallies(session=session, scope=scope, filt=filt, window=window, now=NOW)
            rows = _reference(session, scope, filt, Sort())
            assert list(found) == children  # every child, in code order, even without cases
            for child in children:
                mine = [_facts(r) for r in rows if r[column] == child]
                assert found[child] == tally_of_cases(mine, now=NOW)
        assert found[19] == Tally()  # Wuhua's second street has no case
        assert (
            child_tallies(session=session, scope=_scope(16), filt=filt, window=window, now=NOW)
            == {}
        )


@pytest.mark.parametrize(
    ("tz", "filt"),
    [
        (TZ, CaseFilter()),
        (TZ, FILTERS["combined"]),
        (TZ, FILTERS["custom-edge"]),
        (TZ, CaseFilter(period=Period.TODAY)),
        # Berlin leaves summer time on 2026-10-25: a day of 25 hours inside the window.
        (
            ZoneInfo("Europe/Berlin"),
            CaseFilter(period=Period.CUSTOM, start=date(2026, 10, 20), end=date(2026, 10, 30)),
        ),
        (ZoneInfo("Europe/Berlin"), CaseFilter(period=Period.DAYS_30)),
    ],
)
def test_daily_counts_bucket_by_local_day(city: Engine, tz: ZoneInfo, filt: CaseFilter) -> None:
    window = filt.window(now=NOW, tz=tz)
    with Session(city) as session:
        days = daily_counts(session=session, scope=CITY, filt=filt, window=window, tz=tz, now=NOW)
        per_child = child_daily_reported(
            session=session, scope=CITY, filt=filt, window=window, tz=tz, now=NOW
        )
        rows = _reference(session, CITY, filt, Sort(), window)
    first, last = _local_day(window.since, tz), _local_day(window.until - US, tz)
    assert [d for d, _ in days] == [
        first + timedelta(days=i) for i in range((last - first).days + 1)
    ]
    for day, tally in days:
        mine = [_facts(r) for r in rows if _local_day(r["reported_at"], tz) == day]
        assert tally == tally_of_cases(mine, now=NOW), day
    assert list(per_child) == [10, 20]
    for child, counts in per_child.items():
        assert len(counts) == len(days)
        for (day, _), n in zip(days, counts, strict=True):
            assert n == sum(
                1
                for r in rows
                if r["district_id"] == child and _local_day(r["reported_at"], tz) == day
            )


@pytest.mark.parametrize("name", ["grid-en", "percent", "community", "underscore"])
def test_a_search_naming_many_places_keeps_them_a_subquery(
    city: Engine, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_PLACE_IDS the places are not listed: the same cases, by a subquery."""
    monkeypatch.setattr(sql, "MAX_PLACE_IDS", 0)
    with Session(city) as session:
        for scope in (CITY, WUHUA, GRID):
            expected = [r["id"] for r in _reference(session, scope, FILTERS[name], Sort())]
            assert [i.id for i in _all_pages(session, scope, FILTERS[name], Sort())] == expected


def test_a_search_reads_the_places_once_per_page_and_once_per_export(city: Engine) -> None:
    """The table, its count and its KPIs share one session, an export's chunks one memo."""
    reads: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SELECT nodes.level, nodes.id"):
            reads.append(statement)

    filt = FILTERS["community"]
    window = filt.window(now=NOW, tz=TZ)
    event.listen(city, "before_cursor_execute", note)
    try:
        with Session(city) as session:
            case_page(session=session, scope=CITY, filt=filt, now=NOW, tz=TZ, limit=7)
            case_count(session=session, scope=CITY, filt=filt, now=NOW, tz=TZ)
            filter_tally(session=session, scope=CITY, filt=filt, window=window, now=NOW)
            daily_counts(session=session, scope=CITY, filt=filt, window=window, tz=TZ, now=NOW)
        assert len(reads) == 1
        streamed = list(
            iter_cases(
                session_factory=sessionmaker(city), scope=CITY, filt=filt, now=NOW, tz=TZ, chunk=3
            )
        )
        assert len(streamed) > 6 and len(reads) == 2
    finally:
        event.remove(city, "before_cursor_execute", note)
