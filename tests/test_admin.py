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
from data_sources.access.model import EmbedRefused, Forbidden, Permission, Role, user_principal
from data_sources.access.passwords import check_password_policy, generate_password
from data_sources.access.sessions.sql import SqlSessions
from data_sources.embed import grants as embed_grants
from data_sources.embed.grants import GrantInfo, unix_seconds
from data_sources.embed.identity import EmbedIdentity
from data_sources.embed.tokens import TokenError, TokenLimits
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
ROW_KINDS = {A.USER_DISABLE, A.USER_ENABLE, A.DISPLAY_REVOKE, A.KEY_REVOKE, A.EMBED_REVOKE}
PORTAL = "https://portal.example.cn"
#: The deployment's origins for grants naming none (GRIDCC_EMBED_ALLOWED_ORIGINS).
DEFAULT_ORIGINS = ("https://intranet.example.cn",)
LIMITS = TokenLimits(600, 3600)
SECRET = "s" * 32


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
GRANTS = [
    GrantInfo(5, "portal", STREET, ("kpis", "map"), (PORTAL,), 1800, "root", NOW, None),
    GrantInfo(6, "old", "530103999", ("trend",), (), 600, "cli", NOW, NOW),
]
EMBEDS = layout.Embeds(GRANTS, {STREET: "拓东街道"}, DEFAULT_ORIGINS, 3600)
LINES = [
    AuditEntry(
        9, NOW, "root", "user", "user.add", "ok", STREET, "alice", {"role": "operator"}, CLIENT
    ),
    AuditEntry(8, NOW, "x", "robot", "login", "denied", None, None, {"text": "y" * 500}, None),
]


def full(lang: str) -> Component:
    return layout.content(
        lang, TZ, users=USERS, displays=DISPLAYS, keys=KEYS, audit=LINES, more=True, embeds=EMBEDS
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
    assert t("admin_add_embed", lang) in text
    labels = [getattr(c, "label", None) for c in walk(full(lang))]
    assert t("admin_tab_embeds", lang) in labels
    [panels] = [c for c in walk(full(lang)) if getattr(c, "id", None) == A.EMBED_PANELS]
    assert f"{t('admin_panel_funnel', lang)} (funnel)" in [o["label"] for o in panels.options]
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
    assert ids.row_action(A.EMBED_REVOKE, 5) in row_ids
    assert ids.row_action(A.EMBED_REVOKE, 6) not in row_ids  # revoked already


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_embeds_tab_lists_each_grant_with_what_it_allows(lang: str) -> None:
    table = layout.embeds_table(EMBEDS, lang, TZ)
    rows = [c for c in walk(table) if getattr(c, "_type", "") == "Tr"][1:]
    portal, old = texts(rows[0]), texts(rows[1])
    assert f"{STREET} 拓东街道" in portal and "kpis, map" in portal and PORTAL in portal
    assert t("admin_embed_seconds", lang, n=1800) in portal and "root" in portal
    assert "2026-11-23 14:00" in portal and "—" in portal  # created, never revoked
    # An area gone is its code; a grant naming no origins is framed by the deployment's.
    assert "530103999" in old and "trend" in old and "cli" in old
    assert t("admin_embed_origins_default", lang, origins=DEFAULT_ORIGINS[0]) in old
    assert texts(table).count("2026-11-23 14:00") == 3
    unset = layout.Embeds(GRANTS[1:], {}, (), 3600)
    assert t("admin_embed_origins_unset", lang) in texts(layout.embeds_table(unset, lang, TZ))
    confirm = next(c for c in walk(table) if getattr(c, "_type", "") == "ConfirmDialogProvider")
    assert confirm.message == t("admin_confirm_revoke_embed", lang, name="portal")


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
    assert texts(page).count(t("admin_none", "en")) == 4
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


def add_grant(session: Session, access: Access = ADMIN, **fields: Any) -> changes.Done:
    values: dict[str, Any] = {
        "name": "portal",
        "scope_code": STREET,
        "panels": ["map", "kpis"],
        "origins": PORTAL,
        "max_ttl_s": 1800,
    }
    return cb.add_embed_grant(by(session, access), **{**values, **fields}, limits=LIMITS)


def test_making_and_revoking_an_embed_grant(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        made = add_grant(session)
        [grant] = embed_grants.list_grants(session=session)
        session.rollback()
        revoked = cb.revoke_embed_grant(by(session), grant_id=grant.id)
        [after] = embed_grants.list_grants(session=session)
        session.rollback()
        twice = cb.revoke_embed_grant(by(session), grant_id=grant.id)
        nobody = cb.revoke_embed_grant(by(session), grant_id=grant.id + 99)
    assert made == changes.Done(True, "portal") and revoked == changes.Done(True, "portal")
    assert (grant.panels, grant.origins, grant.created_by) == (("kpis", "map"), (PORTAL,), "root")
    assert grant.revoked_at is None and after.revoked_at == NOW
    assert not twice.ok and not nobody.ok and "revoked already" in (twice.reason or "")
    assert [(r.action, r.outcome, r.target, r.scope_code) for r in lines(sessions)] == [
        ("embed.add", "ok", "portal", STREET),
        ("embed.revoke", "ok", "portal", STREET),
        ("embed.revoke", "failed", f"#{grant.id}", None),
        ("embed.revoke", "failed", f"#{grant.id + 99}", None),
    ]
    assert json.loads(lines(sessions)[0].detail or "") == {
        "panels": "map,kpis",
        "origins": PORTAL,
        "max_ttl_s": 1800,
    }


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"scope_code": "999"}, "999"),
        ({"panels": ["kpis", "weather"]}, "no such panel: 'weather'"),
        ({"origins": "portal.example.cn"}, "portal.example.cn"),
        ({"max_ttl_s": 30}, "60 to 3600 seconds (GRIDCC_EMBED_TOKEN_MAX_S), not 30"),
        ({"max_ttl_s": 7200}, "not 7200"),
        ({"name": "x" * 65}, "name has 1 to 64 characters"),
        ({}, "an embed grant is called 'portal' already"),  # the second "portal"
    ],
)
def test_a_refused_grant_says_why_and_is_audited(
    sessions: sessionmaker[Session], fields: dict[str, Any], reason: str
) -> None:
    with sessions() as session:
        assert add_grant(session).ok
        done = add_grant(session, **fields)
    assert not done.ok and reason in (done.reason or ""), done.reason
    with sessions() as session:
        assert [g.name for g in embed_grants.list_grants(session=session)] == ["portal"]
    refused = lines(sessions)[-1]
    assert (refused.action, refused.outcome) == ("embed.add", "failed")
    assert done.reason is not None and done.reason in (refused.detail or "")


def test_someone_not_an_admin_neither_makes_nor_revokes_a_grant(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as session:
        add_grant(session)
        [grant] = embed_grants.list_grants(session=session)
        session.rollback()
        made = add_grant(session, OPERATOR, name="evil")
        revoked = cb.revoke_embed_grant(by(session, OPERATOR), grant_id=grant.id)
        [still] = embed_grants.list_grants(session=session)
    assert made.reason == revoked.reason == changes.NOT_ADMIN
    assert still.name == "portal" and still.revoked_at is None
    assert [(r.actor, r.action, r.outcome) for r in lines(sessions)[1:]] == [
        ("duty", "embed.add", "denied"),
        ("duty", "embed.revoke", "denied"),
    ]


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
def served_as() -> list[Access]:
    """Whom the site's requests are served as (the admin unless a test says otherwise)."""
    return [ADMIN]


@pytest.fixture
def site(
    sessions: sessionmaker[Session], served_as: list[Access]
) -> Iterator[tuple[TestClient, dash.Dash, CallbackPolicies, Ring]]:
    """The page's callbacks on a Dash app of their own, each request served as `served_as`."""
    server = FastAPI()
    app = dash.Dash(__name__, server=server, backend="fastapi")  # type: ignore[arg-type]
    app.validation_layout = layout.validation_page()  # type: ignore[assignment]
    app.layout = layout.page()
    ring = Ring()
    services = SimpleNamespace(
        settings=SimpleNamespace(
            default_lang="zh",
            embed_allowed_origins=list(DEFAULT_ORIGINS),
            embed_token_default_s=LIMITS.default_s,
            embed_token_max_s=LIMITS.max_s,
        ),
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
        set_access(served_as[0])
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


# ---------------------------------------------------------------- embed grants through Dash


def revoke_by_button(client: TestClient, app: dash.Dash, grant_id: int, search: str = "") -> Any:
    button = ids.row_action(A.EMBED_REVOKE, grant_id)
    trigger = json.dumps(button, sort_keys=True, separators=(",", ":")) + ".submit_n_clicks"
    values: dict[str, Any] = {A.URL: search, A.EMBED_REVOKE: [(grant_id, 1)]}
    return call(client, app, A.EMBED_REVOKE_RESULT, values, trigger)


def test_revoking_a_grant_refuses_its_tokens_at_their_next_request(
    site: Any, sessions: sessionmaker[Session]
) -> None:
    client, app, _policies, _ring = site
    with sessions() as session:
        add_grant(session)
        [grant] = embed_grants.list_grants(session=session)
        token, _claims = embed_grants.issue_token(
            session=session,
            secret=SECRET.encode(),
            grant_name="portal",
            ttl_s=600,
            now=NOW,
            limits=LIMITS,
        )
    now = unix_seconds(NOW) + 1
    identity = EmbedIdentity(
        sessions, configured_secret=SECRET, default_origins=(), clock=lambda: now
    )

    def principal() -> Any:
        with sessions() as session:
            return embed_grants.embed_principal_of(
                session=session, secret=SECRET.encode(), token=token, now=now, default_origins=()
            )

    before = identity.resolve(token)  # what the guard holds for an open embed and its stream
    assert principal().id == grant.id and before.scope == STREET
    assert identity.alive(before) is None
    response = revoke_by_button(client, app, grant.id, "?lang=en")
    assert "Revoked the embed grant portal" in json.dumps(response[A.EMBED_REVOKE_RESULT])
    # The list is drawn anew: the grant shows when it was revoked and has no button left.
    table = json.dumps(response[A.EMBEDS], ensure_ascii=False)
    assert "2026-11-23 14:00" in table and str(A.EMBED_REVOKE) not in table
    with sessions() as session:
        [after] = embed_grants.list_grants(session=session)
    assert after.revoked_at == NOW
    assert [(r.actor, r.action, r.outcome, r.target) for r in lines(sessions)][-1] == (
        "root",
        "embed.revoke",
        "ok",
        "portal",
    )
    # The very next request with the token is refused, by the check the guard makes on each.
    with pytest.raises(TokenError) as refused:
        principal()
    assert refused.value.reason == "revoked"
    with pytest.raises(EmbedRefused) as denied:
        identity.resolve(token)
    assert denied.value.reason == "revoked" and identity.alive(before) == "revoked"


def test_the_page_lists_the_grants(site: Any, sessions: sessionmaker[Session]) -> None:
    client, app, _policies, _ring = site
    with sessions() as session:
        add_grant(session, origins="")
    response = call(client, app, A.CONTENT, {A.URL: "?lang=en"}, f"{A.URL}.search")
    page = json.dumps(response[A.CONTENT])
    assert "Embeds" in page and "portal" in page and "kpis, map" in page
    assert f"deployment default: {DEFAULT_ORIGINS[0]}" in page
    assert t("admin_embed_seconds", "en", n=1800) in page


def test_add_a_grant_through_dash(site: Any, sessions: sessionmaker[Session]) -> None:
    client, app, _policies, _ring = site
    values: dict[str, Any] = {
        A.EMBED_ADD: 1,
        A.EMBED_NAME: " hall-portal ",
        A.EMBED_SCOPE: STREET,
        A.EMBED_PANELS: ["trend", "kpis", 7],  # a forged non-string is dropped
        A.EMBED_ORIGINS: f"{PORTAL} http://localhost:9000",
        A.EMBED_MAX_TTL: None,  # empty: the deployment's longest
        A.URL: "?lang=en",
    }
    response = call(client, app, A.EMBED_ADD_RESULT, values, f"{A.EMBED_ADD}.n_clicks")
    assert "Made the embed grant hall-portal" in json.dumps(response[A.EMBED_ADD_RESULT])
    assert "hall-portal" in json.dumps(response[A.EMBEDS])
    with sessions() as session:
        [made] = embed_grants.list_grants(session=session)
    assert (made.name, made.panels, made.max_ttl_s) == ("hall-portal", ("kpis", "trend"), 3600)
    assert made.origins == (PORTAL, "http://localhost:9000") and made.created_by == "root"
    assert lines(sessions)[-1].action == "embed.add"


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({A.EMBED_MAX_TTL: 30}, "a grant's longest token lasts 60 to 3600 seconds"),
        ({A.EMBED_MAX_TTL: "1.5e3x"}, "The longest token is a whole number of seconds (60–3600)"),
        ({A.EMBED_ORIGINS: "ftp://portal"}, "ftp://portal"),
        ({A.EMBED_SCOPE: "999"}, "999"),
        ({A.EMBED_PANELS: []}, "Please fill in: Panels"),
        ({A.EMBED_PANELS: "kpis", A.EMBED_NAME: ""}, "Please fill in: Grant name、Panels"),
    ],
)
def test_a_refused_grant_says_why_on_the_page(
    site: Any, sessions: sessionmaker[Session], fields: dict[str, Any], shown: str
) -> None:
    client, app, _policies, _ring = site
    values: dict[str, Any] = {
        A.EMBED_ADD: 1,
        A.EMBED_NAME: "portal",
        A.EMBED_SCOPE: STREET,
        A.EMBED_PANELS: ["kpis"],
        A.EMBED_ORIGINS: "",
        A.EMBED_MAX_TTL: 600,
        A.URL: "?lang=en",
        **fields,
    }
    response = call(client, app, A.EMBED_ADD_RESULT, values, f"{A.EMBED_ADD}.n_clicks")
    assert shown in json.dumps(response[A.EMBED_ADD_RESULT], ensure_ascii=False)
    assert A.EMBEDS not in response  # the list is left as it is
    with sessions() as session:
        assert embed_grants.list_grants(session=session) == []


def test_someone_not_an_admin_is_refused_the_revoke_button(
    site: Any, sessions: sessionmaker[Session], served_as: list[Access]
) -> None:
    client, app, policies, _ring = site
    with sessions() as session:
        add_grant(session)
        [grant] = embed_grants.list_grants(session=session)
    served_as[0] = OPERATOR  # past the guard (which refuses it first: the policy says admins)
    policy = policies.of(f"{A.EMBED_REVOKE_RESULT}.children")
    assert policy.permission is Permission.ADMIN and policy.action == "embed.revoke"
    response = revoke_by_button(client, app, grant.id)
    assert t("admin_refused", "zh") in json.dumps(response, ensure_ascii=False)
    with sessions() as session:
        [still] = embed_grants.list_grants(session=session)
    assert still.revoked_at is None
    assert [(r.actor, r.action, r.outcome) for r in lines(sessions)][-1] == (
        "duty",
        "embed.revoke",
        "denied",
    )
