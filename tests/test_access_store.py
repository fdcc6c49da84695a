"""The access store on both backends: the append-only audit log, displays and API keys, and the
`gridcc display` / `gridcc key` commands."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi import HTTPException
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from data_sources.access import audit
from data_sources.access.audit import Auditor, list_audit
from data_sources.access.displays import (
    add_display,
    display_alive,
    list_displays,
    principal_of_display,
    revoke_display,
)
from data_sources.access.keys import (
    KeyRing,
    KeyRole,
    add_key,
    list_keys,
    revoke_key,
    seed_keys,
    sha256_hex,
)
from data_sources.access.model import Permission, Role, user_principal
from data_sources.db import make_engine
from data_sources.schema import ApiKeyRow, AuditRow, DisplayRow

from .conftest import add_nodes

NOW = datetime(2026, 11, 23, 6, 0)
STREET = "530103001"


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on a migrated database holding one street (a scope to enrol displays for)."""
    add_nodes(engine, (1, STREET, "street", None))
    return sessionmaker(engine, expire_on_commit=False)


def write(sessions: sessionmaker[Session], **fields: object) -> None:
    line = {"at": NOW, "actor": "alice", "actor_kind": "user", "action": "x", "outcome": "ok"}
    with sessions() as session, session.begin():
        audit.record(session=session, **{**line, **fields})  # type: ignore[arg-type]


# ---------------------------------------------------------------- audit


def test_the_audit_log_refuses_update_and_delete(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    write(sessions, action="user.add", target="bob")
    statements = ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_log")
        statements.append(  # an upsert is an UPDATE
            "INSERT INTO audit_log (id, at, actor, actor_kind, action, outcome) "
            "SELECT id, at, 'mallory', 'user', 'x', 'ok' FROM audit_log "
            "ON CONFLICT (id) DO UPDATE SET actor = 'mallory'"
        )
    else:  # QA of issue 10: INSERT OR REPLACE deleted the row without a DELETE trigger
        statements.append(
            "INSERT OR REPLACE INTO audit_log (id, at, actor, actor_kind, action, outcome) "
            "SELECT id, at, 'mallory', 'user', 'x', 'ok' FROM audit_log"
        )
    for statement in statements:
        with pytest.raises(DBAPIError, match="audit_log is append-only"):
            with engine.begin() as conn:
                conn.execute(text(statement))
    with sessions() as session:
        (entry,) = list_audit(session=session)
    assert (entry.actor, entry.action, entry.target) == ("alice", "user.add", "bob")


def test_a_line_reads_as_what_happened_whatever_was_typed(sessions: sessionmaker[Session]) -> None:
    """QA of issue 10: a typed name with a right-to-left override, a line break or terminal
    escapes was stored and shown as typed (a line that read as something else)."""
    typed = "\u202eatesrepo\nlogin ok\x1b[2J"
    write(sessions, actor=typed, action="login", outcome="failed", detail={"name": typed})
    with sessions() as session:
        (entry,) = list_audit(session=session)
    assert entry.actor == "\\u202eatesrepo\\u000alogin ok\\u001b[2J"
    assert entry.detail == {"name": entry.actor}


def test_a_line_is_stored_however_long_or_odd_its_values(sessions: sessionmaker[Session]) -> None:
    """An attacker's login name (long, NUL, a lone surrogate) must not fail the line recording it."""
    odd = "x" * 500 + "\x00\ud800"
    write(sessions, actor=odd, action="login." + odd, target=odd, client=odd, detail={"name": odd})
    with sessions() as session:
        (entry,) = list_audit(session=session)
    sizes = {c.name: c.type.length for c in AuditRow.__table__.columns if hasattr(c.type, "length")}
    assert len(entry.actor) == sizes["actor"] and entry.actor.endswith("…")
    assert len(entry.action) == sizes["action"] and len(entry.target or "") == sizes["target"]
    assert len(entry.client or "") == sizes["client"]
    # Both shown as escapes, in the detail too.
    assert entry.detail == {"name": "x" * 500 + "\\u0000\\ud800"}


def test_the_detail_is_compact_json_that_keeps_chinese(sessions: sessionmaker[Session]) -> None:
    write(sessions, detail={"place": "拓东街道", "n": 2})
    with sessions() as session:
        stored = session.scalar(select(AuditRow.detail))
        (entry,) = list_audit(session=session)
    assert stored == '{"place":"拓东街道","n":2}'
    assert entry.detail == {"place": "拓东街道", "n": 2}


def test_list_audit_filters_and_pages_newest_first(sessions: sessionmaker[Session]) -> None:
    lines = [
        ("alice", "user.add", "ok", 0),
        ("alice", "user_x", "ok", 1),  # "_" is no wildcard of the "user_" prefix
        ("bob", "login", "failed", 2),
        ("bob", "user.disable", "ok", 3),
        ("carol", "alarm.acknowledge", "denied", 4),
    ]
    for actor, action, outcome, minute in lines:
        write(
            sessions,
            actor=actor,
            action=action,
            outcome=outcome,
            at=NOW + timedelta(minutes=minute),
        )
    with sessions() as session:

        def actions(**filters: object) -> list[str]:
            return [e.action for e in list_audit(session=session, **filters)]  # type: ignore[arg-type]

        assert actions() == [line[1] for line in reversed(lines)]
        assert actions(actor="bob") == ["user.disable", "login"]
        assert actions(action="user.") == ["user.disable", "user.add"]
        assert actions(action="user_") == ["user_x"]
        assert actions(outcome="denied") == ["alarm.acknowledge"]
        since, until = NOW + timedelta(minutes=1), NOW + timedelta(minutes=3)
        assert actions(since=since, until=until) == ["login", "user_x"]
        pages: list[list[int]] = []
        before = None
        while page := list_audit(session=session, limit=2, before_id=before):
            pages.append([e.id for e in page])
            before = page[-1].id
    assert [len(p) for p in pages] == [2, 2, 1]
    ids = [i for page in pages for i in page]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 5


@pytest.mark.anyio
async def test_the_auditor_writes_and_never_fails_the_request(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    auditor = Auditor(sessions, lambda: NOW)
    officer = user_principal(user_id=7, name="王芳", role=Role.OPERATOR, scope=STREET)
    await auditor(
        officer, "alarm.acknowledge", "ok", scope_code=STREET, target="AL-1", client="10.0.0.9"
    )
    await auditor(None, "login", "failed", detail={"name": "root"})
    with sessions() as session:
        second, first = list_audit(session=session)
    assert (first.actor, first.actor_kind, first.target, first.client) == (
        "王芳",
        "user",
        "AL-1",
        "10.0.0.9",
    )
    assert (second.actor, second.actor_kind, second.detail) == (
        "anonymous",
        "anonymous",
        {"name": "root"},
    )

    def broken() -> Session:
        raise RuntimeError("database gone")

    failing = Auditor(broken, lambda: NOW)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="gridcc.audit"):
        await failing(officer, "case.transition", "ok")  # logged, not raised
    assert "audit line lost: case.transition" in caplog.text
    with pytest.raises(RuntimeError, match="database gone"):  # for actions that fail closed
        failing.record_now(officer, "user.add", "ok")


# ---------------------------------------------------------------- displays


def test_a_display_token_is_shown_once_and_stored_hashed(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        token = add_display(
            session=session, name="wall-1", scope_code=STREET, operator=True, now=NOW
        )
        add_display(session=session, name="lobby", scope_code=STREET, operator=False, now=NOW)
    with sessions() as session:
        row = session.scalars(select(DisplayRow).where(DisplayRow.name == "wall-1")).one()
        assert row.token_hash == sha256_hex(token) and token not in row.token_hash
        wall = principal_of_display(session=session, token=token)
        assert wall is not None
        assert (wall.kind, wall.name, wall.scope, wall.id) == ("display", "wall-1", STREET, row.id)
        assert wall.may(Permission.ACT) and not wall.may(Permission.ADMIN)
        assert principal_of_display(session=session, token=token + "x") is None
        assert principal_of_display(session=session, token="") is None
        assert principal_of_display(session=session, token=None) is None
        assert [(d.name, d.operator, d.revoked) for d in list_displays(session=session)] == [
            ("lobby", False, False),
            ("wall-1", True, False),
        ]


def test_a_display_needs_a_free_name_and_a_real_scope(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        add_display(session=session, name="wall-1", scope_code=STREET, operator=False, now=NOW)
        with pytest.raises(ValueError, match="already"):
            add_display(session=session, name="wall-1", scope_code=STREET, operator=False, now=NOW)
        with pytest.raises(ValueError, match="no area"):
            add_display(session=session, name="wall-2", scope_code="999", operator=False, now=NOW)
        with pytest.raises(ValueError, match="characters"):
            add_display(session=session, name="", scope_code=STREET, operator=False, now=NOW)


def test_a_revoked_display_is_nobody(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        token = add_display(
            session=session, name="wall-1", scope_code=STREET, operator=False, now=NOW
        )
    with sessions() as session:
        wall = principal_of_display(session=session, token=token)
    assert wall is not None and wall.id is not None and not wall.may(Permission.ACT)
    with sessions() as session, session.begin():
        assert display_alive(session=session, display_id=wall.id)
        assert revoke_display(session=session, name="wall-1", now=NOW)
        assert not revoke_display(session=session, name="wall-1", now=NOW)  # once
        assert not revoke_display(session=session, name="nobody", now=NOW)
    with sessions() as session:
        assert principal_of_display(session=session, token=token) is None
        assert not display_alive(session=session, display_id=wall.id)
        assert not display_alive(session=session, display_id=wall.id + 100)
        assert [d.revoked_at for d in list_displays(session=session)] == [NOW]


# ---------------------------------------------------------------- API keys


def test_keys_are_stored_hashed_and_listed_without_them(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        key = add_key(session=session, source="hotline", role="admin", now=NOW, created_by="ops")
    assert key.startswith("gck_") and len(key) > 40
    with sessions() as session:
        row = session.scalars(select(ApiKeyRow)).one()
        (info,) = list_keys(session=session)
    assert row.key_hash == sha256_hex(key) and key not in repr(info)
    assert (info.source, info.role, info.created_by, info.revoked_at) == (
        "hotline",
        KeyRole.ADMIN,
        "ops",
        None,
    )
    with sessions() as session, pytest.raises(ValueError):
        add_key(session=session, source="x", role="root", now=NOW, created_by=None)


def test_seeding_is_idempotent_and_a_revoked_seeded_key_stays_revoked(
    sessions: sessionmaker[Session],
) -> None:
    configured = {"hotline": "key-1", "frigate": "key-2", "blank": ""}
    with sessions() as session, session.begin():
        assert seed_keys(session=session, api_keys=configured, now=NOW) == 2
        assert seed_keys(session=session, api_keys=configured, now=NOW) == 0
    ring = KeyRing(sessions, lambda: NOW, ttl_s=0)
    hotline = ring.lookup("key-1")
    assert (hotline.source, hotline.role) == ("hotline", KeyRole.INGEST)
    assert ring.revoke(hotline.id)
    with sessions() as session, session.begin():  # the next start seeds again
        assert seed_keys(session=session, api_keys=configured, now=NOW) == 0
    with pytest.raises(HTTPException) as refused:
        ring.lookup("key-1")
    assert (refused.value.status_code, refused.value.detail) == (401, "invalid API key")
    assert ring.lookup("key-2").source == "frigate"
    with sessions() as session:
        assert len(list_keys(session=session)) == 2


def refusal(call: object) -> tuple[int, str]:
    with pytest.raises(HTTPException) as refused:
        call()  # type: ignore[operator]
    return refused.value.status_code, str(refused.value.detail)


def test_the_key_ring_says_why_it_refuses(sessions: sessionmaker[Session]) -> None:
    ring = KeyRing(sessions, lambda: NOW)
    status, detail = refusal(lambda: ring.lookup("anything"))
    assert status == 401 and detail.startswith("ingest is disabled: no API keys are configured")
    ingest = ring.add("hotline", KeyRole.INGEST, created_by="tests")  # works at once
    admin = ring.add("ops", KeyRole.ADMIN, created_by="tests")
    assert refusal(lambda: ring.lookup(None)) == (401, "missing X-API-Key header")
    assert refusal(lambda: ring.lookup("")) == (401, "missing X-API-Key header")
    assert refusal(lambda: ring.lookup(ingest + "x")) == (401, "invalid API key")
    assert ring.require(ingest, KeyRole.INGEST).source == "hotline"
    assert ring.require(admin, KeyRole.INGEST).source == "ops"  # admin may ingest
    assert ring.require(admin, KeyRole.ADMIN).role is KeyRole.ADMIN
    assert refusal(lambda: ring.require(ingest, KeyRole.ADMIN)) == (
        403,
        "this key may not use the admin APIs",
    )


def test_a_key_revoked_elsewhere_stops_working_within_the_ttl(
    sessions: sessionmaker[Session],
) -> None:
    now = [100.0]
    mine = KeyRing(sessions, lambda: NOW, ttl_s=2.0, monotonic=lambda: now[0])
    theirs = KeyRing(sessions, lambda: NOW, ttl_s=2.0, monotonic=lambda: now[0])  # another process
    key = mine.add("hotline", "ingest", created_by="tests")
    mine.add("frigate", "ingest", created_by="tests")  # ingest stays on
    found = theirs.lookup(key)
    assert mine.revoke(found.id) and not mine.revoke(found.id)
    assert refusal(lambda: mine.lookup(key))[0] == 401  # here at once
    now[0] += 1.9
    assert theirs.lookup(key) == found  # there, still cached
    now[0] += 0.1
    assert refusal(lambda: theirs.lookup(key)) == (401, "invalid API key")
    with sessions() as session, session.begin():
        assert not revoke_key(session=session, key_id=found.id, now=NOW)


# ---------------------------------------------------------------- the command line


def test_the_cli_enrols_and_revokes_displays_and_audits_it(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    from cli import cli

    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    added = runner.invoke(
        cli,
        [
            "display",
            "add",
            "wall-1",
            "--scope",
            STREET,
            "--operator",
            "--url",
            "https://cc.example/",
            "--database-url",
            url,
        ],
    )
    assert added.exit_code == 0, added.output
    link = added.output.strip().splitlines()[-1]
    assert link.startswith("https://cc.example/display/")
    token = link.rsplit("/", 1)[1]
    with sessions() as session:
        wall = principal_of_display(session=session, token=token)
    assert wall is not None and wall.scope == STREET and wall.may(Permission.ACT)
    again = runner.invoke(
        cli, ["display", "add", "wall-1", "--scope", STREET, "--database-url", url]
    )
    assert again.exit_code == 1 and "already" in again.output
    listed = runner.invoke(cli, ["display", "list", "--database-url", url])
    assert "wall-1" in listed.output and token not in listed.output
    revoked = runner.invoke(cli, ["display", "revoke", "wall-1", "--database-url", url])
    assert revoked.exit_code == 0, revoked.output
    assert runner.invoke(cli, ["display", "revoke", "wall-1", "--database-url", url]).exit_code == 1
    with sessions() as session:
        assert principal_of_display(session=session, token=token) is None
        lines = list_audit(session=session)
        stored = list(session.scalars(select(AuditRow.detail)))
    assert [(e.action, e.actor, e.actor_kind, e.target) for e in lines] == [
        ("display.revoke", "cli", "cli", "wall-1"),
        ("display.add", "cli", "cli", "wall-1"),
    ]
    assert lines[1].scope_code == STREET and lines[1].detail == {"scope": STREET, "operator": True}
    assert all(token not in (detail or "") for detail in stored)


def test_the_cli_makes_keys_that_work_and_audits_it(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    from cli import cli

    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    made = runner.invoke(cli, ["key", "add", "ops", "--role", "admin", "--database-url", url])
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    ring = KeyRing(sessions, lambda: NOW)
    found = ring.require(key, KeyRole.ADMIN)
    assert found.source == "ops"
    listed = runner.invoke(cli, ["key", "list", "--database-url", url])
    assert "ops" in listed.output and "admin" in listed.output and key not in listed.output
    gone = runner.invoke(cli, ["key", "revoke", str(found.id), "--database-url", url])
    assert gone.exit_code == 0, gone.output
    ring.invalidate()
    assert refusal(lambda: ring.lookup(key))[0] == 401
    with sessions() as session:
        lines = list_audit(session=session)
        stored = list(session.scalars(select(AuditRow.detail)))
    assert [(e.action, e.actor, e.target) for e in lines] == [
        ("key.revoke", "cli", str(found.id)),
        ("key.add", "cli", str(found.id)),
    ]
    assert lines[1].detail == {"source": "ops", "role": "admin"}
    assert all(key not in (detail or "") for detail in stored)
    assert json.dumps(lines[1].detail).find("gck_") == -1


def test_a_database_without_the_schema_has_no_keys(tmp_path: Path) -> None:
    """Ingest is off (401, as before keys were stored), not a server error."""
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        ring = KeyRing(sessionmaker(engine), lambda: NOW)
        status, detail = refusal(lambda: ring.lookup("key-1"))
    finally:
        engine.dispose()
    assert status == 401 and detail.startswith("ingest is disabled")
