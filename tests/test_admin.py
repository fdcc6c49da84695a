"""The admin page `/admin`: its layout, its audited changes on both backends, and its callbacks
through Dash's own endpoint (access set as the guard would set it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import dash
import pytest
from dash.development.base_component import Component
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from callbacks import admin as cb
from callbacks.pages import unknown_ids
from data_sources.access import accounts, audit, displays, keys
from data_sources.access import admin as changes
from data_sources.access.accounts import UserInfo
from data_sources.access.admin import AuditFilters, By
from data_sources.access.audit import AuditEntry
from data_sources.access.displays import DisplayInfo
from data_sources.access.guard import Access, CallbackPolicies, set_access
from data_sources.access.keys import KeyInfo, KeyRole
from data_sources.access.model import Forbidden, Permission, Role, user_principal
from data_sources.access.passwords import check_password_policy, generate_password
from data_sources.access.sessions.sql import SqlSessions
from data_sources.schema import AuditRow
from layouts import admin as layout
from layouts import ids
from layouts.i18n import t

from .conftest import add_nodes

A = ids.Admin
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 6, 0)  # 14:00 in Kunming
STREET = "530103001"
CLIENT = "203.0.113.9"
ADMIN = Access(
    user_principal(user_id=1, name="root", role=Role.ADMIN, scope="530100"), None, CLIENT
)
OPERATOR = Access(
    user_principal(user_id=2, name="duty", role=Role.OPERATOR, scope=STREET), None, CLIENT
)
PASSWORD = "correct-Horse-7"
#: Pattern-matching types: made per row, not in the validation page.
ROW_KINDS = {A.USER_DISABLE, A.USER_ENABLE, A.DISPLAY_REVOKE, A.KEY_REVOKE}


def walk(component: Any) -> Iterator[Any]:
    yield component
    if isinstance(component, Component):
        yield from component._traverse()


def texts(component: Any) -> str:
    return " ".join(
        str(c.children) if not isinstance(c, Component) else str(getattr(c, "children", ""))
        for c in walk(component)
        if isinstance(getattr(c, "children", None), str | int)
    )


def ids_in(component: Any) -> list[Any]:
    return [c.id for c in walk(component) if getattr(c, "id", None) is not None]


# ---------------------------------------------------------------- layout

USERS = [
    UserInfo(1, "alice", Role.OPERATOR, STREET, NOW, None, None),
    UserInfo(2, "bob", Role.LEADER, STREET, NOW, NOW, NOW + timedelta(minutes=15)),
]
DISPLAYS = [
    DisplayInfo(7, "hall-1", STREET, True, NOW, None),
    DisplayInfo(8, "hall-2", STREET, False, NOW, NOW),
]
KEYS = [
    KeyInfo(3, "hotline", KeyRole.INGEST, NOW, "root", None),
    KeyInfo(4, "ops", KeyRole.ADMIN, NOW, None, NOW),
]
LINES = [
    AuditEntry(
        9, NOW, "root", "user", "user.add", "ok", STREET, "alice", {"role": "operator"}, CLIENT
    ),
    AuditEntry(8, NOW, "x", "robot", "login", "denied", None, None, {"text": "y" * 500}, None),
]


def full(lang: str) -> Component:
    return layout.content(
        lang, TZ, users=USERS, displays=DISPLAYS, keys=KEYS, audit=LINES, more=True
    )


def test_the_validation_page_holds_every_id_of_the_page() -> None:
    found = {str(i) for i in ids_in(layout.validation_page())}
    assert {str(i) for i in A if i not in ROW_KINDS} <= found


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_id_on_the_page_is_declared_in_ids(lang: str) -> None:
    declared = {str(i) for i in A}
    for id_ in ids_in(layout.page(full(lang))):
        if isinstance(id_, dict):
            assert id_["type"] in {str(k) for k in ROW_KINDS} and isinstance(id_["index"], int)
        else:
            assert id_ in declared, id_


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_page_speaks_its_language(lang: str) -> None:
    text = texts(full(lang))
    for key in ("admin_add_user", "admin_set_password", "admin_enrol", "admin_add_key"):
        assert t(key, lang) in text
    assert t("admin_role_operator", lang) in text
    assert t("admin_key_role_admin", lang) in text
    other = "en" if lang == "zh" else "zh"
    assert t("admin_add_user", other) not in text


def test_times_are_shown_in_the_deployment_zone() -> None:
    assert layout.local_time(NOW, TZ) == "2026-11-23 14:00"
    assert layout.local_time(NOW, TZ, seconds=True) == "2026-11-23 14:00:00"
    assert layout.local_time(None, TZ) == "—"
    assert "2026-11-23 14:00" in texts(layout.users_table(USERS, "zh", TZ))


def test_rows_offer_only_the_actions_that_apply() -> None:
    row_ids = [i for i in ids_in(full("en")) if isinstance(i, dict)]
    assert ids.row_action(A.USER_DISABLE, 1) in row_ids  # alice is enabled
    assert ids.row_action(A.USER_ENABLE, 2) in row_ids  # bob is disabled
    assert ids.row_action(A.USER_DISABLE, 2) not in row_ids
    assert ids.row_action(A.DISPLAY_REVOKE, 7) in row_ids
    assert ids.row_action(A.DISPLAY_REVOKE, 8) not in row_ids  # revoked already
    assert ids.row_action(A.KEY_REVOKE, 3) in row_ids
    assert ids.row_action(A.KEY_REVOKE, 4) not in row_ids


def test_the_audit_table_labels_and_cuts() -> None:
    rows = layout.audit_rows(LINES, "zh", TZ)
    first, second = texts(rows[0]), texts(rows[1])
    assert "2026-11-23 14:00:00" in first and "用户" in first and "成功" in first
    assert CLIENT in first and '"role": "operator"' in first
    assert "robot" in second and "拒绝" in second  # an unknown kind is shown as stored
    assert len(layout.detail_text(LINES[1].detail)) == layout.DETAIL_MAX
    assert layout.audit_cursor({"actor": "x"}, LINES, 2) == {
        "filters": {"actor": "x"},
        "before_id": 8,
        "shown": 2,
    }


def test_empty_lists_say_so() -> None:
    page = layout.content("en", TZ, users=[], displays=[], keys=[], audit=[])
    assert texts(page).count(t("admin_none", "en")) == 3
    more = next(c for c in walk(page) if getattr(c, "id", None) == A.AUDIT_MORE)
    assert more.disabled is True


def test_a_secret_is_shown_once_in_the_result_only() -> None:
    shown = layout.result("made", ok=True, secret="gck_abc")
    assert "gck_abc" in texts(shown)
    assert "gck_abc" not in texts(full("zh"))


def test_the_display_url_comes_from_the_admin_s_browser() -> None:
    href = "https://cc.example.cn:8443/admin?lang=en"
    assert cb.display_url(href, "tok") == "https://cc.example.cn:8443/display/tok"
    assert cb.display_url(None, "tok") == "/display/tok"
    assert cb.display_url("nonsense", "tok") == "/display/tok"


def test_generated_passwords_meet_the_policy_and_differ() -> None:
    made = {generate_password() for _ in range(20)}
    assert len(made) == 20
    assert all(check_password_policy(p) is None for p in made)


# ---------------------------------------------------------------- audited changes


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on a migrated database holding one street (a scope for users and displays)."""
    add_nodes(engine, (1, STREET, "street", None))
    return sessionmaker(engine, expire_on_commit=False)


def lines(sessions: sessionmaker[Session]) -> list[AuditRow]:
    with sessions() as session:
        return list(session.scalars(select(AuditRow).order_by(AuditRow.id)))


def no_secret_in(rows: list[AuditRow], *secrets_: str) -> None:
    for row in rows:
        for value in (row.detail, row.target, row.actor, row.scope_code, row.client):
            for secret in secrets_:
                assert secret not in (value or ""), (row.action, value)


def by(session: Session, access: Access = ADMIN) -> By:
    return By(session, access, NOW, SqlSessions())


def test_adding_a_user_commits_it_with_its_audit_line(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        done = changes.add_user(
            by(session), name="alice", role="operator", scope_code=STREET, password=PASSWORD
        )
    assert done == changes.Done(True, "alice")
    with sessions() as session:
        assert [(u.name, u.role) for u in accounts.list_users(session=session)] == [
            ("alice", Role.OPERATOR)
        ]
    [line] = lines(sessions)
    assert (line.actor, line.actor_kind, line.action, line.outcome) == (
        "root",
        "user",
        "user.add",
        "ok",
    )
    assert (line.target, line.scope_code, line.client, line.at) == ("alice", STREET, CLIENT, NOW)
    assert json.loads(line.detail or "") == {"role": "operator", "generated": False}
    no_secret_in(lines(sessions), PASSWORD)


@pytest.mark.parametrize(
    ("name", "scope", "password", "reason"),
    [
        ("carol", "999", PASSWORD, "no area"),
        ("carol", STREET, "short", "at least"),
        (" carol", STREET, PASSWORD, "space"),
        ("carol", STREET, PASSWORD + "-", None),  # the second "carol": exists already
    ],
)
def test_a_refused_user_is_not_added_and_the_refusal_is_audited(
    sessions: sessionmaker[Session], name: str, scope: str, password: str, reason: str | None
) -> None:
    with sessions() as session:
        first = changes.add_user(
            by(session), name="carol", role="leader", scope_code=STREET, password=PASSWORD
        )
        done = changes.add_user(
            by(session), name=name, role="leader", scope_code=scope, password=password
        )
    assert first.ok and not done.ok
    assert done.reason and (reason or "exists already") in done.reason
    with sessions() as session:
        assert [u.name for u in accounts.list_users(session=session)] == ["carol"]
    refused = lines(sessions)[-1]
    assert (refused.action, refused.outcome, refused.target) == ("user.add", "failed", name)
    assert done.reason in (refused.detail or "")
    no_secret_in(lines(sessions), PASSWORD, password)


def test_a_bad_role_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        done = changes.add_user(
            by(session), name="x", role="root", scope_code=STREET, password=PASSWORD
        )
    assert not done.ok
    assert lines(sessions)[-1].outcome == "failed"


def test_someone_not_an_admin_changes_nothing_and_is_audited(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        done = changes.add_user(
            by(session, OPERATOR), name="eve", role="admin", scope_code=STREET, password=PASSWORD
        )
        key = changes.add_key(by(session, OPERATOR), source="evil", role="admin")
        with pytest.raises(Forbidden):
            changes.audit_page(session, OPERATOR, AuditFilters(), TZ, None)
    assert not done.ok and done.reason == changes.NOT_ADMIN and key.secret is None
    with sessions() as session:
        assert accounts.list_users(session=session) == []
        assert keys.list_keys(session=session) == []
    assert [(r.actor, r.action, r.outcome) for r in lines(sessions)] == [
        ("duty", "user.add", "denied"),
        ("duty", "key.add", "denied"),
    ]


def test_a_generated_password_is_returned_once_and_works(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        changes.add_user(
            by(session), name="dan", role="leader", scope_code=STREET, password=PASSWORD
        )
        made = generate_password()
        done = changes.set_password(by(session), name="dan", password=made, generated=True)
    assert done.ok and done.secret == made
    with sessions() as session, session.begin():
        outcome = accounts.authenticate(session=session, name="dan", password=made, now=NOW)
    assert outcome.ok
    passwd = lines(sessions)[-1]
    assert (passwd.action, passwd.outcome, passwd.scope_code) == ("user.passwd", "ok", STREET)
    no_secret_in(lines(sessions), PASSWORD, made)


def test_setting_the_password_of_nobody_fails(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        done = changes.set_password(by(session), name="ghost", password=PASSWORD)
    assert not done.ok and "ghost" in (done.reason or "")
    assert (lines(sessions)[-1].action, lines(sessions)[-1].outcome) == ("user.passwd", "failed")


def test_disabling_and_enabling_a_user(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        changes.add_user(
            by(session), name="erin", role="leader", scope_code=STREET, password=PASSWORD
        )
        [erin] = accounts.list_users(session=session)
        session.rollback()
        disabled = changes.set_disabled(by(session), user_id=erin.id, disabled=True)
        [after] = accounts.list_users(session=session)
        session.rollback()
        enabled = changes.set_disabled(by(session), user_id=erin.id, disabled=False)
        [again] = accounts.list_users(session=session)
        session.rollback()
        nobody = changes.set_disabled(by(session), user_id=erin.id + 99, disabled=True)
    assert disabled.ok and enabled.ok and disabled.target == "erin"
    assert after.disabled_at == NOW and again.disabled_at is None
    assert not nobody.ok
    assert [(r.action, r.outcome, r.target) for r in lines(sessions)[1:]] == [
        ("user.disable", "ok", "erin"),
        ("user.enable", "ok", "erin"),
        ("user.disable", "failed", f"#{erin.id + 99}"),
    ]


def test_enrolling_and_revoking_a_display(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        done = changes.add_display(by(session), name="hall", scope_code=STREET, operator=True)
        token = done.secret or ""
        assert displays.principal_of_display(session=session, token=token) is not None
        [hall] = displays.list_displays(session=session)
        session.rollback()
        revoked = changes.revoke_display(by(session), display_id=hall.id)
        assert displays.principal_of_display(session=session, token=token) is None
        session.rollback()
        twice = changes.revoke_display(by(session), display_id=hall.id)
        taken = changes.add_display(by(session), name="hall", scope_code=STREET, operator=False)
    assert done.ok and revoked.ok and revoked.target == "hall"
    assert not twice.ok and not taken.ok and taken.secret is None
    assert [(r.action, r.outcome) for r in lines(sessions)] == [
        ("display.add", "ok"),
        ("display.revoke", "ok"),
        ("display.revoke", "failed"),
        ("display.add", "failed"),
    ]
    assert json.loads(lines(sessions)[0].detail or "") == {"operator": True}
    no_secret_in(lines(sessions), token)


def test_making_and_revoking_a_key(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        done = changes.add_key(by(session), source="hotline", role="ingest")
        key = done.secret or ""
        info = keys.key_info(session=session, key=key)
        session.rollback()
        assert info is not None and info.created_by == "root" and info.role is KeyRole.INGEST
        assert done.target == f"#{info.id}"
        revoked = changes.revoke_key(by(session), key_id=info.id)
        twice = changes.revoke_key(by(session), key_id=info.id)
        bad = changes.add_key(by(session), source="x", role="superuser")
    assert key.startswith("gck_") and revoked.ok and not twice.ok and not bad.ok
    assert [(r.action, r.outcome, r.target) for r in lines(sessions)] == [
        ("key.add", "ok", f"#{info.id}"),
        ("key.revoke", "ok", f"#{info.id}"),
        ("key.revoke", "failed", f"#{info.id}"),
        ("key.add", "failed", "x"),
    ]
    no_secret_in(lines(sessions), key)


# ---------------------------------------------------------------- the audit log


def write(sessions: sessionmaker[Session], n: int, **fields: Any) -> None:
    with sessions() as session, session.begin():
        for i in range(n):
            line = {"at": NOW, "actor": "root", "actor_kind": "user", "action": f"a.{i}"}
            audit.record(session=session, **{**line, "outcome": "ok", **fields})


def test_the_audit_log_pages_by_100_newest_first(sessions: sessionmaker[Session]) -> None:
    write(sessions, 250)
    seen: list[int] = []
    before = None
    with sessions() as session:
        for expected, more_expected in ((100, True), (100, True), (50, False)):
            page, more = changes.audit_page(session, ADMIN, AuditFilters(), TZ, before)
            assert (len(page), more) == (expected, more_expected)
            seen += [e.id for e in page]
            before = page[-1].id
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 250


def test_the_audit_log_filters(sessions: sessionmaker[Session]) -> None:
    write(sessions, 2, actor="alice", action="user.add")
    write(sessions, 1, actor="bob", action="login", outcome="denied")
    # 17:00 UTC on the 22nd is 01:00 on the 23rd in Kunming.
    write(sessions, 1, actor="carol", action="login", at=datetime(2026, 11, 22, 17, 0))

    def found(**filters: str) -> list[str]:
        with sessions() as session:
            page, _ = changes.audit_page(session, ADMIN, AuditFilters(**filters), TZ, None)
        return [e.actor for e in page]

    assert found(actor="alice") == ["alice", "alice"]
    assert found(action="user.") == ["alice", "alice"]
    assert found(outcome="denied") == ["bob"]
    assert found(since="2026-11-23", action="login") == ["carol", "bob"]
    assert found(until="2026-11-22") == []
    assert found(since="2026-11-24") == []
    with pytest.raises(ValueError):
        found(since="23/11/2026")
    assert AuditFilters.of({"actor": "x", "since": 5}) == AuditFilters(actor="x")
    assert AuditFilters.of("junk") == AuditFilters()


# ---------------------------------------------------------------- through Dash


class Ring:
    def __init__(self) -> None:
        self.invalidated = 0

    def invalidate(self) -> None:
        self.invalidated += 1


@pytest.fixture
def site(
    sessions: sessionmaker[Session],
) -> Iterator[tuple[TestClient, dash.Dash, CallbackPolicies, Ring]]:
    """The page's callbacks on a Dash app of their own, each request served as the admin."""
    server = FastAPI()
    app = dash.Dash(__name__, server=server, backend="fastapi")  # type: ignore[arg-type]
    app.validation_layout = layout.validation_page()  # type: ignore[assignment]
    app.layout = layout.page()
    ring = Ring()
    services = SimpleNamespace(
        settings=SimpleNamespace(default_lang="zh"),
        sessions=sessions,
        clock=lambda: NOW,
        tz=TZ,
        keys=ring,
        session_store=SqlSessions(),
        identity=SimpleNamespace(alive=lambda _principal: True),
    )
    policies = CallbackPolicies()
    cb.register(app, services, policies)  # type: ignore[arg-type]

    @server.middleware("http")
    async def as_admin(request: Any, call_next: Any) -> Any:
        set_access(ADMIN)
        return await call_next(request)

    with TestClient(server) as client:
        yield client, app, policies, ring


def test_every_callback_has_an_admin_policy_and_known_ids(site: Any) -> None:
    _client, app, policies, _ring = site
    assert policies.undeclared(app.callback_map) == []
    for output in app.callback_map:
        policy = policies.of(output)
        assert policy is not None and policy.permission is Permission.ADMIN
    assert unknown_ids(app) == []


def call(
    client: TestClient, app: dash.Dash, first: str, values: dict[str, Any], trigger: str
) -> Any:
    """Post the callback whose first output is `first` as the renderer would; its response."""
    [(key, spec)] = [(k, s) for k, s in app.callback_map.items() if first in k.split("...")[0]]

    def dep(d: dict[str, Any]) -> Any:
        if d["id"].startswith("{"):  # a pattern: values[type] lists (index, value) per row
            kind = json.loads(d["id"])["type"]
            rows = values.get(kind, [])
            return [
                {"id": {"type": kind, "index": i}, "property": d["property"], "value": v}
                for i, v in rows
            ]
        return {"id": d["id"], "property": d["property"], "value": values.get(d["id"])}

    outputs = [o.strip(".").split("@")[0].rsplit(".", 1) for o in key.strip(".").split("...")]
    body = {
        "output": key,
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [dep(d) for d in spec["inputs"]],
        "state": [dep(d) for d in spec["state"]],
        "changedPropIds": [trigger],
    }
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.text
    return response.json()["response"]


def test_add_a_user_with_a_generated_password_through_dash(
    site: Any, sessions: sessionmaker[Session]
) -> None:
    client, app, _policies, _ring = site
    values = {
        A.USER_ADD: None,
        A.USER_ADD_GENERATE: 1,
        A.USER_NAME: " frank ",
        A.USER_ROLE: "operator",
        A.USER_SCOPE: STREET,
        A.USER_PASSWORD: "",
        A.USER_PASSWORD2: "",
        A.URL: "?lang=en",
    }
    response = call(client, app, A.USER_ADD_RESULT, values, f"{A.USER_ADD_GENERATE}.n_clicks")
    shown = json.dumps(response[A.USER_ADD_RESULT]["children"])
    assert "Added the user frank" in shown
    with sessions() as session:
        [frank] = accounts.list_users(session=session)
    [line] = lines(sessions)
    assert frank.name == "frank" and frank.role is Role.OPERATOR
    assert response[A.USER_PASSWORD]["value"] == "" and "frank" in json.dumps(response[A.USERS])
    assert json.loads(line.detail or "") == {"role": "operator", "generated": True}
    # The password shown is the one that works, and it is nowhere else.
    [password] = [
        c["props"]["children"]
        for c in response[A.USER_ADD_RESULT]["children"]["props"]["children"]
        if c["type"] == "Code"
    ]
    with sessions() as session, session.begin():
        assert accounts.authenticate(session=session, name="frank", password=password, now=NOW).ok
    no_secret_in(lines(sessions), password)


def test_disable_a_user_by_its_row_button_through_dash(
    site: Any, sessions: sessionmaker[Session]
) -> None:
    client, app, _policies, _ring = site
    with sessions() as session:
        changes.add_user(
            by(session), name="gina", role="leader", scope_code=STREET, password=PASSWORD
        )
        [gina] = accounts.list_users(session=session)
    button = ids.row_action(A.USER_DISABLE, gina.id)
    trigger = json.dumps(button, sort_keys=True, separators=(",", ":")) + ".submit_n_clicks"
    values = {A.URL: "", A.USER_DISABLE: [(gina.id, 1)]}
    response = call(client, app, A.USER_DISABLE_RESULT, values, trigger)
    assert "已停用用户 gina" in json.dumps(response[A.USER_DISABLE_RESULT], ensure_ascii=False)
    with sessions() as session:
        [after] = accounts.list_users(session=session)
    assert after.disabled_at == NOW
    assert [(r.action, r.outcome) for r in lines(sessions)][-1] == ("user.disable", "ok")


def test_a_new_key_refreshes_the_key_ring(site: Any) -> None:
    client, app, _policies, ring = site
    values = {A.KEY_ADD: 1, A.KEY_SOURCE: "frigate", A.KEY_ROLE: "ingest", A.URL: ""}
    response = call(client, app, A.KEY_ADD_RESULT, values, f"{A.KEY_ADD}.n_clicks")
    assert "gck_" in json.dumps(response[A.KEY_ADD_RESULT]) and ring.invalidated == 1


def test_the_page_is_drawn_in_the_url_s_language(site: Any) -> None:
    client, app, _policies, _ring = site
    response = call(client, app, A.CONTENT, {A.URL: "?lang=en"}, f"{A.URL}.search")
    assert response[A.TITLE]["children"] == "Administration"
    assert response[A.LANG_LINK]["href"] == "/admin?lang=zh"
    assert "Add a user" in json.dumps(response[A.CONTENT])


def test_more_appends_the_next_audit_lines_with_the_same_filters(
    site: Any, sessions: sessionmaker[Session]
) -> None:
    client, app, _policies, _ring = site
    write(sessions, 130, actor="alice")
    write(sessions, 5, actor="bob")
    values = {A.AUDIT_SEARCH: 1, A.AUDIT_ACTOR: "alice", A.URL: "?lang=en"}
    first = call(client, app, A.AUDIT_TABLE, values, f"{A.AUDIT_SEARCH}.n_clicks")
    cursor = first[A.AUDIT_CURSOR]["data"]
    assert cursor["shown"] == 100 and cursor["filters"]["actor"] == "alice"
    assert first[A.AUDIT_MORE]["disabled"] is False
    # The filter typed since does not change what "more" continues.
    values = {A.AUDIT_MORE: 1, A.AUDIT_CURSOR: cursor, A.AUDIT_ACTOR: "bob", A.URL: "?lang=en"}
    more = call(client, app, A.AUDIT_BODY, values, f"{A.AUDIT_MORE}.n_clicks")
    [extend] = more[A.AUDIT_BODY]["children"]["operations"]
    assert extend["operation"] == "Extend" and len(extend["params"]["value"]) == 30
    assert "alice" in json.dumps(extend) and "bob" not in json.dumps(extend)
    assert more[A.AUDIT_MORE]["disabled"] is True
    assert more[A.AUDIT_STATUS]["children"].startswith("130 lines shown")


def test_a_bad_date_is_said_so(site: Any) -> None:
    client, app, _policies, _ring = site
    values = {A.AUDIT_SEARCH: 1, A.AUDIT_SINCE: "2026-13-40", A.URL: ""}
    response = call(client, app, A.AUDIT_TABLE, values, f"{A.AUDIT_SEARCH}.n_clicks")
    assert response[A.AUDIT_STATUS]["children"] == t("admin_bad_date", "zh")
