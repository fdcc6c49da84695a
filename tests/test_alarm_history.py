"""The alarm history of a scope (data_sources/alarms/history.py) on SQLite and PostgreSQL: its rows,
order and count equal hand-written SQL for each scope, time range and search; no scope sees
another's alarms; keyset pages cover every row once; its export's cells."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from callbacks.keyset import MAX_WALK, kept_cursors, read_block
from data_sources import db
from data_sources.access.model import Scope
from data_sources.alarms import export as alarm_export
from data_sources.alarms.history import (
    AlarmListItem,
    alarm_count,
    alarm_page,
    decode_cursor,
    encode_cursor,
    iter_alarms,
)
from data_sources.cases.filters import CaseFilter, FilterError, Period
from data_sources.model import AlarmStatus, AlarmType, Level
from data_sources.schema import AlarmRow, CameraRow, NodeRow
from layouts.follow_lists import alarm_columns, alarm_rows, worker_columns
from layouts.i18n import t

from .conftest import AS_OF, BACKENDS, TZ, fresh_database_url

NOW = AS_OF  # 2026-11-23 14:00 in Kunming
SQUARE = '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}'

# id, code, level, parent, name_zh, name_en
NODES = [
    (1, "530100", "city", None, "昆明市", "Kunming"),
    (10, "530102", "district", 1, "五华区", "Wuhua"),
    (20, "530103", "district", 1, "盘龙区", "Panlong"),
    (11, "530102001", "street", 10, "华山街道", "Huashan"),
    (21, "530103001", "street", 20, "拓东街道", "Tuodong"),
    (12, "530102001001", "community", 11, "翠湖社区", "Cuihu Community"),
    (22, "530103001001", "community", 21, "金星社区", "Jinxing Community"),
    (14, "530102001001001", "grid", 12, "第一网格", "Grid One"),
    (15, "530102001001002", "grid", 12, "第二网格", "Grid Two"),
    (23, "530103001001001", "grid", 22, "第一网格", "Grid One"),
    (16, "530102001001001001", "building", 14, "1栋", "Block 1"),
    (17, "530102001001002001", "building", 15, "2栋", "Block 2"),
    (24, "530103001001001001", "building", 23, "翠湖楼", "Cuihu Tower"),
]
#: Cameras: id, code, name, building (None: on a grid's street, with no building).
CAMERAS = [
    (501, "CAM001", "翠湖东门摄像机1", 16),
    (502, "CAM002", "100%_路口", 17),
    (503, "CAM003", "Gate camera", None),  # grid 15, no building
    (504, "CAM004", "金星摄像机", 24),  # the other district
]
GRID_OF_CAMERA_WITHOUT_BUILDING = 15


def _ancestors(node: int | None) -> dict[str, int]:
    nodes = {n[0]: n for n in NODES}
    chain: dict[str, int] = {}
    while node is not None:
        _, _, level, parent, *_ = nodes[node]
        if level != "city":
            chain[f"{level}_id"] = node
        node = parent
    return chain


def _scope(node: int) -> Scope:
    nodes = {n[0]: n for n in NODES}
    lineage = _ancestors(node)
    path = tuple(lineage[f"{lv.value}_id"] for lv in Level if f"{lv.value}_id" in lineage)
    return Scope(node, nodes[node][1], Level(nodes[node][2]), path)


SCOPES = {name: _scope(node) for name, node in [
    ("city", 1), ("wuhua", 10), ("panlong", 20), ("street", 11), ("community", 12),
    ("grid", 15), ("building", 16),
]}  # fmt: skip


def _alarms() -> list[dict[str, Any]]:
    """~300 alarms over 45 days, with ties of started_at (the id breaks them) and every edge of
    a window: local midnight 30 days back, now, custom-range ends."""
    rng = random.Random(5)
    fixed = [
        datetime(2026, 10, 24, 16, 0),  # the first instant of "30d" (local midnight)
        datetime(2026, 10, 24, 16, 0) - timedelta(microseconds=1),  # just before it
        NOW,  # a half-open window ending now leaves it out
        NOW - timedelta(microseconds=1),
        datetime(2026, 11, 22, 16, 0),  # today's first instant
    ]
    times: list[datetime] = []
    rows = []
    for i in range(300):
        if i < len(fixed):
            started = fixed[i]
        elif times and rng.random() < 0.2:
            started = rng.choice(times)
        else:
            started = NOW - timedelta(seconds=rng.randrange(0, 45 * 86400))
        times.append(started)
        camera_id, code, _, building = rng.choice(CAMERAS)
        where = _ancestors(building if building else GRID_OF_CAMERA_WITHOUT_BUILDING)
        status = rng.choice(list(AlarmStatus))
        acked = status is not AlarmStatus.ACTIVE
        ended = status in (AlarmStatus.RESOLVED, AlarmStatus.FALSE_ALARM)
        rows.append(
            {
                "id": f"AL-{code}-{i:05d}" if i % 50 else f"X{i:03d}",
                "camera_id": camera_id,
                "type": rng.choice(list(AlarmType)).value,
                "severity": rng.randint(1, 4),
                "status": status.value,
                "started_at": started,
                "acknowledged_at": started + timedelta(minutes=3) if acked else None,
                "acknowledged_by": "值班员" if acked else None,
                "ended_at": started + timedelta(minutes=40) if ended else None,
                "case_id": f"C-{i}" if rng.random() < 0.1 else None,
                "building_id": None,
                **where,
            }
        )
    return rows


@pytest.fixture(scope="module", params=BACKENDS)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    engine = db.make_engine(fresh_database_url(request, tmp_path_factory.mktemp("alarms")))
    db.upgrade(engine)
    with Session(engine) as session, session.begin():
        for id_, code, level, parent, zh, en in NODES:
            chain = _ancestors(id_)
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
                    **{k: v for k, v in chain.items() if k != "building_id"},
                )
            )
        session.flush()
        for id_, code, name, building in CAMERAS:
            where = _ancestors(building if building else GRID_OF_CAMERA_WITHOUT_BUILDING)
            where.setdefault("building_id", None)  # type: ignore[arg-type]
            session.add(CameraRow(id=id_, code=code, name=name, lon=102.7, lat=25.0, **where))
        session.flush()
        session.add_all(AlarmRow(**row) for row in _alarms())
    try:
        yield engine
    finally:
        engine.dispose()


def _reference(session: Session, scope: Scope, filt: CaseFilter) -> list[str]:
    """The ids of the history, by hand-written SQL (substring search with instr/strpos, so
    nothing is escaped: the text is matched as it is)."""
    window = filt.window(now=NOW, tz=TZ)
    dialect = session.get_bind().dialect.name
    where = ["a.started_at >= :since", "a.started_at < :until"]
    if scope.level is not Level.CITY:
        where.append(f"a.{scope.level.value}_id = {scope.id}")
    if filt.search:
        find = (
            "strpos({}, lower(:q)) > 0" if dialect == "postgresql" else "instr({}, lower(:q)) > 0"
        )
        where.append(
            f"({find.format('lower(a.id)')} OR {find.format('lower(c.code)')}"
            f" OR {find.format('lower(c.name)')})"
        )
    sql = (
        "SELECT a.id FROM alarms a JOIN cameras c ON c.id = a.camera_id WHERE "
        + " AND ".join(where)
        + " ORDER BY a.started_at DESC, a.id DESC"
    )
    params = {"since": window.since, "until": window.until, "q": filt.search}
    return [r[0] for r in session.execute(text(sql), params)]


def _all_pages(session: Session, scope: Scope, filt: CaseFilter, limit: int) -> list[str]:
    ids: list[str] = []
    after = None
    for _ in range(1000):
        page = alarm_page(
            session=session, scope=scope, filt=filt, now=NOW, tz=TZ, after=after, limit=limit
        )
        assert len(page.items) <= limit
        ids += [item.id for item in page.items]
        if page.after is None:
            return ids
        assert len(page.items) == limit
        after = page.after
    raise AssertionError("paging did not end")


FILTERS = [
    CaseFilter(),
    CaseFilter(period=Period.TODAY),
    CaseFilter(period=Period.DAYS_7),
    CaseFilter(period=Period.MONTH),
    CaseFilter(
        period=Period.CUSTOM,
        start=datetime(2026, 10, 25).date(),
        end=datetime(2026, 11, 2).date(),
    ),
    # Fields of the cases' filter that do not apply to alarms change nothing.
    CaseFilter(overdue=True, supervised=True),
]


@pytest.mark.parametrize("scope_name", list(SCOPES))
@pytest.mark.parametrize("filt", FILTERS, ids=lambda f: str(f.to_query()))
def test_pages_equal_hand_written_sql(city: Engine, scope_name: str, filt: CaseFilter) -> None:
    scope = SCOPES[scope_name]
    with Session(city) as session:
        expected = _reference(session, scope, filt)
        assert _all_pages(session, scope, filt, limit=7) == expected
        assert _all_pages(session, scope, filt, limit=5_000) == expected
        assert alarm_count(session=session, scope=scope, filt=filt, now=NOW, tz=TZ) == len(expected)
    if scope_name in ("city", "wuhua", "grid"):
        assert expected, "the fixture must give this scope alarms"


def test_no_scope_sees_another_scopes_alarms(city: Engine) -> None:
    with Session(city) as session:
        owners = {
            r[0]: set(r[1:])
            for r in session.execute(
                text(
                    "SELECT id, district_id, street_id, community_id, grid_id, building_id"
                    " FROM alarms"
                )
            )
        }
        for scope in SCOPES.values():
            items = _all_pages(session, scope, CaseFilter(period=Period.DAYS_30), limit=50)
            if scope.level is not Level.CITY:
                assert all(scope.id in owners[i] for i in items), scope.code
        wuhua = set(_all_pages(session, SCOPES["wuhua"], CaseFilter(), limit=50))
        panlong = set(_all_pages(session, SCOPES["panlong"], CaseFilter(), limit=50))
        everyone = set(_all_pages(session, SCOPES["city"], CaseFilter(), limit=50))
        assert wuhua and panlong and not wuhua & panlong and wuhua | panlong == everyone


@pytest.mark.parametrize("q", ["cam002", "翠湖东门", "100%_", "%", "gate", "x000", "-0001", "无此"])
def test_search_matches_the_alarm_id_or_its_cameras_code_or_name(city: Engine, q: str) -> None:
    filt = CaseFilter(search=q)
    found = {}
    with Session(city) as session:
        for name in ("city", "wuhua", "panlong"):
            scope = SCOPES[name]
            found[name] = expected = _reference(session, scope, filt)
            assert _all_pages(session, scope, filt, limit=9) == expected
            assert alarm_count(session=session, scope=scope, filt=filt, now=NOW, tz=TZ) == len(
                expected
            )
    assert bool(found["city"]) == (q != "无此")


def test_items_carry_their_camera_place_and_case(city: Engine) -> None:
    with Session(city) as session:
        page = alarm_page(
            session=session, scope=SCOPES["city"], filt=CaseFilter(), now=NOW, tz=TZ, limit=5_000
        )
        stored = {
            r.id: r
            for r in session.execute(
                select(
                    *AlarmRow.__table__.columns,
                    CameraRow.code.label("camera_code"),
                    CameraRow.name.label("camera_name"),
                ).join(CameraRow, CameraRow.id == AlarmRow.camera_id)
            )
        }
    names = {n[0]: (n[4], n[5]) for n in NODES}
    assert page.items
    for item in page.items:
        row = stored[item.id]
        assert (item.type.value, item.severity, item.status.value) == (
            row.type,
            row.severity,
            row.status,
        )
        assert item.started_at == row.started_at
        assert (item.acknowledged_at, item.acknowledged_by, item.ended_at) == (
            row.acknowledged_at,
            row.acknowledged_by,
            row.ended_at,
        )
        assert (item.camera_code, item.camera_name, item.case_id) == (
            row.camera_code,
            row.camera_name,
            row.case_id,
        )
        place = [names[i] for i in (row.community_id, row.grid_id, row.building_id) if i]
        assert item.place_zh == " · ".join(zh for zh, _ in place)
        assert item.place_en == " · ".join(en for _, en in place)
    by_camera = {i.camera_code: i.place_zh for i in page.items}
    assert by_camera["CAM001"] == "翠湖社区 · 第一网格 · 1栋"
    assert by_camera["CAM003"] == "翠湖社区 · 第二网格"  # no building: no trailing " · "


def test_the_export_iterator_reads_every_row_once_in_chunks(city: Engine) -> None:
    factory = sessionmaker(city)
    with Session(city) as session:
        expected = _reference(session, SCOPES["wuhua"], CaseFilter())
    items = list(
        iter_alarms(
            session_factory=factory,
            scope=SCOPES["wuhua"],
            filt=CaseFilter(),
            now=NOW,
            tz=TZ,
            chunk=6,
        )
    )
    assert [i.id for i in items] == expected
    assert all(isinstance(i, AlarmListItem) for i in items)


def test_rows_raised_while_paging_do_not_shift_the_pages(city: Engine) -> None:
    """A keyset page starts after its cursor's row: a new alarm at the top moves nothing."""
    scope, filt = SCOPES["city"], CaseFilter()
    with Session(city) as session:
        first = alarm_page(session=session, scope=scope, filt=filt, now=NOW, tz=TZ, limit=10)
        expected = _reference(session, scope, filt)[10:20]
        session.add(
            AlarmRow(
                id="AL-NEW",
                camera_id=501,
                type="fire",
                severity=4,
                status="active",
                started_at=NOW - timedelta(seconds=1),
                **_ancestors(16),
            )
        )
        session.flush()
        second = alarm_page(
            session=session, scope=scope, filt=filt, now=NOW, tz=TZ, after=first.after, limit=10
        )
        assert [i.id for i in second.items] == expected
        session.rollback()


@pytest.mark.parametrize(
    "after",
    [
        "nonsense",
        "x" * 500,
        encode_cursor(NOW, "")[:-2],
        # The case table's cursor (another table's): refused, not misread.
        "WyItcmVwb3J0ZWRfYXQiLCIyMDI2LTExLTIzVDA2OjAwOjAwIiwiYSJd",
    ],
)
def test_a_foreign_or_tampered_cursor_is_a_filter_error(city: Engine, after: str) -> None:
    with Session(city) as session, pytest.raises(FilterError) as caught:
        alarm_page(
            session=session, scope=SCOPES["city"], filt=CaseFilter(), now=NOW, tz=TZ, after=after
        )
    assert caught.value.field == "after"


def test_a_cursor_round_trips_and_a_bad_limit_is_refused(city: Engine) -> None:
    at = datetime(2026, 11, 1, 3, 4, 5, 678)
    assert decode_cursor(encode_cursor(at, "AL-1")) == (at, "AL-1")
    with Session(city) as session:
        for limit in (0, 5_001):
            with pytest.raises(FilterError):
                alarm_page(
                    session=session,
                    scope=SCOPES["city"],
                    filt=CaseFilter(),
                    now=NOW,
                    tz=TZ,
                    limit=limit,
                )


# ---------------------------------------------------------------- the table and the file


def _item(**changes: Any) -> AlarmListItem:
    values: dict[str, Any] = {
        "id": "AL-CAM001-00001",
        "type": AlarmType.FIRE,
        "severity": 4,
        "status": AlarmStatus.RESOLVED,
        "started_at": datetime(2026, 11, 23, 1, 0),
        "acknowledged_at": datetime(2026, 11, 23, 1, 3, 30),
        "acknowledged_by": "值班员",
        "ended_at": datetime(2026, 11, 23, 2, 30),
        "camera_code": "CAM001",
        "camera_name": "=翠湖东门摄像机1",
        "place_zh": "翠湖社区 · 第一网格 · 1栋",
        "place_en": "Cuihu Community · Grid One · Block 1",
        "case_id": "530102-20261123-00001",
    }
    return AlarmListItem(**{**values, **changes})


def test_the_tables_rows_say_what_the_alarm_is_in_the_readers_language() -> None:
    done, open_ = _item(), _item(id="AL-2", status=AlarmStatus.ACTIVE, acknowledged_at=None,
                                 acknowledged_by=None, ended_at=None, case_id=None)  # fmt: skip
    zh, bare = alarm_rows([done, open_], "zh", TZ)
    assert zh == {
        "id": "AL-CAM001-00001",
        "started_at": "2026-11-23 09:00",
        "type": "烟火",
        "severity": "紧急",
        "status": "已解除",
        "camera": "=翠湖东门摄像机1",
        "camera_tip": "=翠湖东门摄像机1 · CAM001",
        "place": "翠湖社区 · 第一网格 · 1栋",
        "ack_after": 210,
        "ack_tip": "2026-11-23 09:03 由 值班员 确认",
        "duration": 5400,
        "end_tip": "2026-11-23 10:30 结束",
        "case": "530102-20261123-00001",
        "href": "/case?id=530102-20261123-00001&lang=zh",
    }
    assert (bare["ack_after"], bare["duration"], bare["case"], bare["ack_tip"]) == (
        None,
        None,
        "",
        "",
    )
    assert "href" not in bare  # the link cell shows the (empty) text
    en = alarm_rows([done], "en", TZ)[0]
    assert (en["type"], en["severity"], en["status"], en["place"]) == (
        "Smoke/fire",
        "Critical",
        "Resolved",
        "Cuihu Community · Grid One · Block 1",
    )


def test_the_files_cells_are_typed_and_labelled_as_the_table() -> None:
    item = _item()
    assert alarm_export.TABLE.cells(item, lang="zh", tz=TZ) == [
        "AL-CAM001-00001",
        datetime(2026, 11, 23, 9, 0),
        "烟火",
        "紧急",
        "已解除",
        "CAM001",
        "=翠湖东门摄像机1",  # the writer defuses it (cases.export.csv_text)
        "翠湖社区 · 第一网格 · 1栋",
        datetime(2026, 11, 23, 9, 3),
        "值班员",
        datetime(2026, 11, 23, 10, 30),
        "530102-20261123-00001",
    ]
    table = alarm_export.TABLE
    assert len(table.headers("en")) == len(table.cells(item, lang="en", tz=TZ))
    # The labels are the page's: one table (data_sources/labels.py), which layouts/i18n.py takes.
    pairs = list(zip(AlarmType, [*AlarmStatus, *AlarmStatus], strict=True))  # each of each
    en = [table.cells(replace(item, type=k, status=s), lang="en", tz=TZ)[2:5] for k, s in pairs]
    assert en == [
        [t(f"alarm_{k}", "en"), "Critical", t(f"alarm_status_{s}", "en")] for k, s in pairs
    ]
    levels = [table.cells(replace(item, severity=n), lang="zh", tz=TZ)[3] for n in (1, 2, 3, 4, 9)]
    assert levels == [*(t(f"severity_{n}", "zh") for n in (1, 2, 3, 4)), "9"]


#: The width a column needs for its Chinese header on one line: 14 px a character, the cell's
#: padding (2 × 16 px), and the sort icon (16 px) where the column sorts.
def _header_px(header: str, sortable: bool) -> int:
    return 14 * len(header) + 32 + (16 if sortable else 0)


@pytest.mark.parametrize(("columns", "sortable"), [(alarm_columns, False), (worker_columns, True)])
def test_columns_fit_1280_px_and_chinese_headers_never_wrap(columns: Any, sortable: bool) -> None:
    zh = columns("zh")
    assert sum(c.get("minWidth", c.get("width", 0)) for c in zh) <= 1_200
    for column in zh:
        room = column.get("width", column.get("minWidth"))
        assert room >= _header_px(column["headerName"], sortable), column["field"]
    assert [c["field"] for c in columns("en")] == [c["field"] for c in zh]
    assert all(c["headerName"] for c in columns("en"))


def test_a_block_is_read_from_its_cursor_or_paged_to() -> None:
    rows = list(range(250))
    calls: list[str | None] = []

    def fetch(after: str | None) -> tuple[list[int], str | None]:
        calls.append(after)
        first = int(after) if after else 0
        end = min(first + 100, len(rows))
        return rows[first:end], (str(end) if end < len(rows) else None)

    known: dict[str, str] = {}
    first = read_block(0, 100, known, fetch)
    assert first is not None and (first.items[0], first.last, known) == (0, False, {"100": "100"})
    calls.clear()
    last = read_block(200, 100, known, fetch)  # from the nearest cursor kept: block 100's
    assert last is not None and (last.items, last.last) == (rows[200:], True)
    assert calls == ["100", "200"] and known == {"100": "100", "200": "200"}
    calls.clear()
    assert read_block(200, 100, known, fetch) is not None and calls == ["200"]
    assert read_block(300, 100, {}, fetch) is None  # past the end
    assert read_block(100 * (MAX_WALK + 1), 100, {}, lambda _a: ([0] * 100, "x")) is None


@pytest.mark.parametrize(
    ("cursors", "expected"),
    [
        ({"key": "k", "after": {"100": "c1", "x": "c2", "200": 5}}, {"100": "c1"}),
        ({"key": "other", "after": {"100": "c1"}}, {}),
        ({"key": "k", "after": "nonsense"}, {}),
        ("a string", {}),
        (None, {}),
    ],
)
def test_only_this_tables_cursors_are_kept(cursors: Any, expected: dict[str, str]) -> None:
    assert kept_cursors(cursors, "k") == expected
