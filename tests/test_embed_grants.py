"""Embed grants and the tokens issued under them (data_sources/embed/grants.py, api.py and the
`gridcc embed` commands), on SQLite and PostgreSQL: what a grant allows, what a token may narrow,
what is refused and why, the shared signing key, the REST route for portal backends."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from data_sources.access.audit import Auditor, list_audit
from data_sources.access.keys import KeyRing, KeyRole
from data_sources.embed.api import embed_router
from data_sources.embed.grants import (
    GrantInfo,
    GrantRefused,
    NoSuchGrant,
    add_grant,
    embed_principal_of,
    grant_of,
    issue_token,
    list_grants,
    revoke_grant,
    signing_secret,
    unix_seconds,
)
from data_sources.embed.tokens import EmbedClaims, TokenError, TokenLimits, mint, verify
from data_sources.schema import AppSecretRow, NodeRow

NOW = datetime(2027, 1, 4, 2, 0)  # naive UTC
SECRET = b"k" * 43
LIMITS = TokenLimits(default_s=600, max_s=3600)
PORTAL = "https://portal.example"
#: (id, code, level, parent, ancestor ids from the district down, its own at its level).
NODES = [
    (1, "530100", "city", None, ()),
    (2, "530102", "district", 1, (2,)),
    (3, "530102001", "street", 2, (2, 3)),
    (4, "530102001001", "community", 3, (2, 3, 4)),
    (5, "530102001001001", "grid", 4, (2, 3, 4, 5)),
    (6, "530103", "district", 1, (6,)),
    (7, "530103001", "street", 6, (6, 7)),
]


LINEAGE = ("district_id", "street_id", "community_id", "grid_id")


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """A migrated database on each backend with a small hierarchy: two districts of a city."""
    square = json.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]})
    with Session(engine) as session, session.begin():
        for id_, code, level, parent, lineage in NODES:
            ancestors = dict(zip(LINEAGE, lineage, strict=False))
            session.add(
                NodeRow(
                    id=id_,
                    code=code,
                    level=level,
                    parent_id=parent,
                    name_zh=code,
                    name_en=code,
                    lon=102.7,
                    lat=25.0,
                    area_km2=1.0,
                    geometry=square,
                    **ancestors,
                )
            )
    return sessionmaker(engine, expire_on_commit=False)


def grant(
    sessions: sessionmaker[Session],
    name: str = "portal",
    scope: str = "530102",
    panels: str | list[str] = "kpis,map,alarms",
    origins: list[str] | None = None,
    max_ttl_s: int = 1800,
) -> GrantInfo:
    with sessions.begin() as session:
        return add_grant(
            session=session,
            name=name,
            scope_code=scope,
            panels=panels,
            origins=[PORTAL] if origins is None else origins,
            max_ttl_s=max_ttl_s,
            created_by="tests",
            now=NOW,
            limits=LIMITS,
        )


def issue(
    sessions: sessionmaker[Session], name: str = "portal", **kwargs: Any
) -> tuple[str, EmbedClaims]:
    kwargs.setdefault("ttl_s", None)
    with sessions() as session:
        return issue_token(
            session=session, secret=SECRET, grant_name=name, now=NOW, limits=LIMITS, **kwargs
        )


def refusal(call: Callable[[], object]) -> tuple[str, str]:
    """(field, reason) of a refused grant or token request."""
    with pytest.raises(GrantRefused) as caught:
        call()
    return caught.value.field, caught.value.reason


# ---------------------------------------------------------------- grants


def test_a_grant_is_made_listed_and_revoked(sessions: sessionmaker[Session]) -> None:
    made = grant(
        sessions,
        panels=["map", "kpis"],
        origins=["HTTPS://Portal.Example:443", "http://localhost:9000"],
    )
    assert (made.name, made.scope_code, made.max_ttl_s, made.created_by) == (
        "portal",
        "530102",
        1800,
        "tests",
    )
    assert made.panels == ("kpis", "map")  # in PANELS order
    assert made.origins == (PORTAL, "http://localhost:9000")  # canonical
    assert (made.created_at, made.revoked_at, made.revoked) == (NOW, None, False)
    other = grant(sessions, name="another", scope="530100", panels="trend", origins=[])
    with sessions() as session:
        assert [g.name for g in list_grants(session=session)] == ["another", "portal"]
        assert grant_of(session=session, grant_id=made.id) == made
        assert grant_of(session=session, grant_id=other.id + 100) is None
    later = NOW + timedelta(hours=1)
    with sessions.begin() as session:
        assert revoke_grant(session=session, name="portal", now=later)
        assert not revoke_grant(session=session, name="portal", now=later)  # once
        assert not revoke_grant(session=session, name="nobody", now=later)
        assert not revoke_grant(session=session, name="a\x00b", now=later)
    with sessions() as session:
        revoked = grant_of(session=session, grant_id=made.id)
        assert revoked is not None and revoked.revoked_at == later and revoked.revoked
        assert grant_of(session=session, grant_id=other.id) == other  # untouched
        assert other.origins == ()


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"name": ""}, "name", "name has 1 to 64 characters"),
        ({"name": "x" * 65}, "name", "name has 1 to 64 characters"),
        ({"name": "a\x00b"}, "name", "control characters"),
        ({"scope": "999999"}, "scope", "no area has the code '999999'"),
        ({"scope": "530102001001001"}, "scope", "a community or larger, not a grid"),
        ({"panels": "kpis,clock"}, "panels", "no such panel: 'clock'"),
        ({"panels": ""}, "panels", "name at least one panel"),
        ({"origins": ["https://portal.example/"]}, "origins", "an origin has no path"),
        ({"origins": ["*"]}, "origins", "has no scheme://"),
        ({"max_ttl_s": 59}, "max_ttl_s", "lasts 60 to 3600 seconds"),
        ({"max_ttl_s": 3601}, "max_ttl_s", "lasts 60 to 3600 seconds (GRIDCC_EMBED_TOKEN_MAX_S)"),
    ],
)
def test_a_grant_that_cannot_be_made_says_which_field_and_why(
    sessions: sessionmaker[Session], changes: dict[str, Any], field: str, reason: str
) -> None:
    problem = refusal(lambda: grant(sessions, **changes))
    assert problem[0] == field and reason in problem[1], problem
    with sessions() as session:
        assert list_grants(session=session) == []


def test_a_grant_name_is_taken_for_good(sessions: sessionmaker[Session]) -> None:
    grant(sessions)
    with sessions.begin() as session:
        revoke_grant(session=session, name="portal", now=NOW)
    assert refusal(lambda: grant(sessions)) == ("name", "an embed grant is called 'portal' already")


# ---------------------------------------------------------------- tokens


def test_a_token_carries_its_grant_s_area_and_panels_by_default(
    sessions: sessionmaker[Session],
) -> None:
    made = grant(sessions, max_ttl_s=300)
    token, claims = issue(sessions)
    start = int(unix_seconds(NOW))
    assert claims == EmbedClaims(
        made.id, "530102", ("kpis", "map", "alarms"), "zh", start + 300, start
    )
    assert verify(SECRET, token, now=start) == claims  # the default (600 s) within the grant's 300
    _, longer = issue(sessions, ttl_s=300, lang="en")
    assert (longer.exp - longer.iat, longer.lang) == (300, "en")


def test_a_token_may_narrow_its_area_and_panels(sessions: sessionmaker[Session]) -> None:
    grant(sessions)
    _, claims = issue(sessions, scope="530102001001", panels=("map",), ttl_s=60)
    assert (claims.scope, claims.panels, claims.exp - claims.iat) == ("530102001001", ("map",), 60)
    _, claims = issue(sessions, scope="530102001", panels="alarms,kpis")
    assert (claims.scope, claims.panels) == ("530102001", ("kpis", "alarms"))


def test_a_city_grant_covers_every_area(sessions: sessionmaker[Session]) -> None:
    grant(sessions, name="city", scope="530100")
    assert issue(sessions, "city", scope="530103001")[1].scope == "530103001"


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"ttl_s": 1801}, "ttl_s", "lasts 1 to 1800 seconds, not 1801"),
        ({"ttl_s": 0}, "ttl_s", "lasts 1 to 1800 seconds, not 0"),
        ({"ttl_s": True}, "ttl_s", "not True"),
        ({"scope": "530103"}, "scope", "'530103' is outside the grant's area (530102)"),
        ({"scope": "530103001"}, "scope", "outside the grant's area"),
        ({"scope": "530100"}, "scope", "'530100' is outside the grant's area"),  # above it
        ({"scope": "530102001001001"}, "scope", "a community or larger, not a grid"),
        ({"scope": "404"}, "scope", "no area has the code '404'"),
        ({"scope": ""}, "scope", "scope has 1 to 32 characters"),
        ({"panels": ("trend",)}, "panels", "does not grant trend (it grants kpis, map, alarms)"),
        ({"panels": ("kpis", "funnel", "feed")}, "panels", "does not grant feed, funnel"),
        ({"panels": ()}, "panels", "name at least one panel"),
        ({"panels": ("clock",)}, "panels", "no such panel: 'clock'"),
        ({"lang": "fr"}, "lang", "lang is zh or en, not 'fr'"),
    ],
)
def test_a_token_that_cannot_be_issued_says_which_field_and_why(
    sessions: sessionmaker[Session], kwargs: dict[str, Any], field: str, reason: str
) -> None:
    grant(sessions)
    problem = refusal(lambda: issue(sessions, **kwargs))
    assert problem[0] == field and reason in problem[1], problem


def test_a_lowered_deployment_maximum_caps_older_grants(sessions: sessionmaker[Session]) -> None:
    grant(sessions, max_ttl_s=1800)
    lowered = TokenLimits(default_s=600, max_s=900)
    with sessions() as session:
        _, claims = issue_token(
            session=session, secret=SECRET, grant_name="portal", ttl_s=900, now=NOW, limits=lowered
        )
        assert claims.exp - claims.iat == 900
        with pytest.raises(GrantRefused, match="lasts 1 to 900 seconds, not 901"):
            issue_token(
                session=session,
                secret=SECRET,
                grant_name="portal",
                ttl_s=901,
                now=NOW,
                limits=lowered,
            )


def test_no_token_under_a_revoked_or_unknown_grant(sessions: sessionmaker[Session]) -> None:
    grant(sessions)
    with sessions.begin() as session:
        revoke_grant(session=session, name="portal", now=NOW)
    assert refusal(lambda: issue(sessions)) == (
        "grant",
        "embed grant 'portal' was revoked at 2027-01-04 02:00 UTC",
    )
    for name in ("nobody", "", "a\x00b", "\ud800"):
        with pytest.raises(NoSuchGrant) as caught:
            issue(sessions, name)
        assert isinstance(caught.value, LookupError) and caught.value.field == "grant"
    assert "no embed grant is called 'nobody'" in str(NoSuchGrant("nobody"))


# ---------------------------------------------------------------- an embed's principal


def principal_of(
    sessions: sessionmaker[Session], token: str, now: float | None = None, **kw: Any
) -> Any:
    with sessions() as session:
        return embed_principal_of(
            session=session,
            secret=SECRET,
            token=token,
            now=unix_seconds(NOW) if now is None else now,
            default_origins=kw.pop("default_origins", ("https://default.example",)),
            **kw,
        )


def refused_as(sessions: sessionmaker[Session], token: str, **kw: Any) -> str:
    with pytest.raises(TokenError) as caught:
        principal_of(sessions, token, **kw)
    return caught.value.reason


def test_a_token_stands_for_an_embed_of_its_area_and_panels(
    sessions: sessionmaker[Session],
) -> None:
    made = grant(sessions, origins=[PORTAL, "http://localhost:9000"])
    token, claims = issue(sessions, scope="530102001001", panels=("kpis", "map"))
    principal = principal_of(sessions, token)
    assert (principal.kind, principal.name, principal.id) == ("embed", "embed:portal", made.id)
    assert (principal.scope, principal.panels) == ("530102001001", frozenset({"kpis", "map"}))
    assert principal.expires_at == claims.exp
    assert principal.origins == (PORTAL, "http://localhost:9000")
    assert [p.value for p in principal.permissions] == ["read"]


def test_a_grant_without_origins_takes_the_deployment_s(sessions: sessionmaker[Session]) -> None:
    grant(sessions, origins=[])
    token, _ = issue(sessions)
    assert principal_of(sessions, token).origins == ("https://default.example",)
    assert principal_of(sessions, token, default_origins=()).origins == ()


def test_tokens_that_do_not_hold_are_refused_with_their_reason(
    sessions: sessionmaker[Session],
) -> None:
    made = grant(sessions)
    token, claims = issue(sessions, ttl_s=60)
    assert refused_as(sessions, token, now=claims.exp + 31) == "expired"
    assert principal_of(sessions, token, now=claims.exp + 29).scope == "530102"  # leeway
    assert refused_as(sessions, token, now=claims.exp + 1, leeway_s=0) == "expired"
    assert refused_as(sessions, token[:-2] + "AA") == "tampered"
    other_key = mint(b"o" * 43, claims)
    assert refused_as(sessions, other_key) == "tampered"
    assert refused_as(sessions, "令牌") == "malformed"
    # Signed by us, claiming more than the grant gives (a grant is never widened: a bug or a
    # leaked key): refused as no longer granted.
    start = int(unix_seconds(NOW))
    outside = EmbedClaims(made.id, "530103", ("kpis",), "zh", start + 60, start)
    assert refused_as(sessions, mint(SECRET, outside)) == "revoked"
    too_low = EmbedClaims(made.id, "530102001001001", ("kpis",), "zh", start + 60, start)
    assert refused_as(sessions, mint(SECRET, too_low)) == "revoked"
    more = EmbedClaims(made.id, "530102", ("kpis", "trend"), "zh", start + 60, start)
    assert refused_as(sessions, mint(SECRET, more)) == "revoked"
    no_grant = EmbedClaims(made.id + 1, "530102", ("kpis",), "zh", start + 60, start)
    assert refused_as(sessions, mint(SECRET, no_grant)) == "revoked"
    # Revoking the grant refuses its tokens at their next request.
    assert principal_of(sessions, token).id == made.id
    with sessions.begin() as session:
        revoke_grant(session=session, name="portal", now=NOW)
    assert refused_as(sessions, token) == "revoked"


# ---------------------------------------------------------------- the signing key


def stored_keys(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(AppSecretRow.value)))


def test_a_configured_key_is_used_as_it_is(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert signing_secret(session=session, configured="c" * 40) == b"c" * 40
    assert stored_keys(sessions) == []


def test_without_a_configured_key_one_is_made_once_and_kept(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        first = signing_secret(session=session, configured=None)
    with sessions.begin() as session:
        assert signing_secret(session=session, configured="") == first
    assert len(first) >= 64 and stored_keys(sessions) == [first.decode()]


def test_processes_starting_together_share_one_key(sessions: sessionmaker[Session]) -> None:
    """Eight at once, each in its own transaction (as processes starting together): one key is
    stored and every one of them signs with it."""
    start = threading.Barrier(8)
    keys: list[bytes] = []
    errors: list[BaseException] = []

    def process() -> None:
        try:
            start.wait(timeout=10)
            with sessions.begin() as session:
                keys.append(signing_secret(session=session, configured=None))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=process) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(keys) == 8
    assert len(set(keys)) == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(AppSecretRow)) == 1


# ---------------------------------------------------------------- the REST route


@pytest.fixture
def api(
    sessions: sessionmaker[Session],
) -> tuple[TestClient, dict[str, str], dict[str, str], Callable[[], bytes]]:
    """A real app with the embed router: an admin key's headers, an ingest key's, the key."""
    keys = KeyRing(sessions, lambda: NOW)
    admin = {"X-API-Key": keys.add("portal-backend", KeyRole.ADMIN, created_by="tests")}
    feed = {"X-API-Key": keys.add("hotline", KeyRole.INGEST, created_by="tests")}

    def secret() -> bytes:
        with sessions.begin() as session:
            return signing_secret(session=session, configured=None)

    app = FastAPI()
    app.include_router(
        embed_router(
            sessions=sessions,
            keys=keys,
            secret=secret,
            clock=lambda: NOW,
            limits=LIMITS,
            audit=Auditor(sessions, lambda: NOW),
        )
    )
    grant(sessions)
    return TestClient(app), admin, feed, secret


TOKENS = "/api/v1/embed-tokens"


def test_an_admin_key_mints_a_token(api: Any, sessions: sessionmaker[Session]) -> None:
    client, admin, _, secret = api
    with client:
        answer = client.post(TOKENS, json={"grant": "portal"}, headers=admin)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        start = int(unix_seconds(NOW))
        claims = verify(secret(), body["token"], now=start)
        assert claims.exp == body["exp"] == start + 600 and claims.iat == start
        assert body["expires_at"] == "2027-01-04T02:10:00Z"
        assert body["url"] == f"/embed?token={body['token']}"
        assert (body["scope"], body["panels"], body["lang"]) == (
            "530102",
            ["kpis", "map", "alarms"],
            "zh",
        )
        narrowed = client.post(
            TOKENS,
            json={
                "grant": "portal",
                "ttl_s": 120,
                "scope": "530102001",
                "lang": "en",
                "panels": ["map"],
            },
            headers=admin,
        ).json()
        claims = verify(secret(), narrowed["token"], now=start)
        assert (claims.scope, claims.panels, claims.lang, claims.exp - claims.iat) == (
            "530102001",
            ("map",),
            "en",
            120,
        )
    with sessions() as session:
        lines = list_audit(session=session, action="embed.token")
    assert [(a.actor, a.actor_kind, a.outcome, a.target) for a in lines] == [
        ("portal-backend", "key", "ok", "portal")
    ] * 2
    assert lines[0].scope_code == "530102001" and lines[0].detail == {
        "panels": ["map"],
        "lang": "en",
        "exp": start + 120,
    }
    assert all(body["token"] not in json.dumps(a.detail) for a in lines)


def test_only_an_admin_key_mints_or_lists(api: Any) -> None:
    client, _, feed, _ = api
    with client:
        for path, send in ((TOKENS, client.post), ("/api/v1/embed-grants", client.get)):
            kwargs = {"json": {"grant": "portal"}} if send == client.post else {}
            missing = send(path, **kwargs)
            assert missing.status_code == 401 and missing.json() == {
                "detail": "missing X-API-Key header"
            }
            wrong = send(path, headers={"X-API-Key": "gck_nope"}, **kwargs)
            assert wrong.status_code == 401 and wrong.json() == {"detail": "invalid API key"}
            ingest = send(path, headers=feed, **kwargs)
            assert ingest.status_code == 403
            assert ingest.json() == {"detail": "this key may not use the admin APIs"}


@pytest.mark.parametrize(
    ("body", "status", "field", "reason"),
    [
        ({"grant": "portal", "ttl_s": 1801}, 422, "ttl_s", "lasts 1 to 1800 seconds, not 1801"),
        ({"grant": "portal", "ttl_s": "600"}, 422, "ttl_s", "valid integer"),
        ({"grant": "portal", "ttl_s": 60.0}, 422, "ttl_s", "valid integer"),
        ({"grant": "portal", "lang": "fr"}, 422, "lang", "'zh' or 'en'"),
        ({"grant": "portal", "scope": "530103"}, 422, "scope", "outside the grant's area"),
        ({"grant": "portal", "scope": "x" * 33}, 422, "scope", "at most 32 characters"),
        ({"grant": "portal", "panels": ["trend"]}, 422, "panels", "does not grant trend"),
        ({"grant": "portal", "panels": []}, 422, "panels", "at least 1 item"),
        ({"grant": "portal", "panels": "kpis"}, 422, "panels", "valid list"),
        ({"grant": "portal", "colour": "red"}, 422, "colour", "Extra inputs are not permitted"),
        ({}, 422, "grant", "Field required"),
        ([], 422, "body", "valid dictionary"),
        ({"grant": "nobody"}, 404, "grant", "no embed grant is called 'nobody'"),
        ({"grant": "\ud800"}, 422, "grant", "valid string"),
        ({"grant": "portal", "\ud800": 1}, 422, "body", "valid string"),  # a key: no 500
    ],
)
def test_a_refused_request_names_the_field_and_the_reason(
    api: Any, body: Any, status: int, field: str, reason: str
) -> None:
    client, admin, _, _ = api
    with client:
        answer = client.post(
            TOKENS,
            content=json.dumps(body),
            headers={**admin, "Content-Type": "application/json"},
        )
    assert answer.status_code == status, answer.text
    [problem] = answer.json()["detail"]
    assert problem["index"] is None and problem["field"] == field, problem
    assert reason in problem["reason"], problem


@pytest.mark.parametrize(
    ("content", "status", "reason"),
    [
        (b"{not json", 400, "body is not valid JSON"),
        (b"\xff", 400, "body is not UTF-8"),
        (b"", 400, "body is not valid JSON"),
        (json.dumps({"grant": "portal", "pad": "x" * 5000}).encode(), 413, "over the limit"),
    ],
)
def test_a_body_that_is_no_json_request_is_refused(
    api: Any, content: bytes, status: int, reason: str
) -> None:
    client, admin, _, _ = api
    with client:
        answer = client.post(TOKENS, content=content, headers=admin)
    assert answer.status_code == status, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "body" and reason in problem["reason"]


def test_a_revoked_grant_mints_nothing_and_the_refusal_is_audited(
    api: Any, sessions: sessionmaker[Session]
) -> None:
    client, admin, _, _ = api
    with sessions.begin() as session:
        revoke_grant(session=session, name="portal", now=NOW)
    with client:
        answer = client.post(TOKENS, json={"grant": "portal", "ttl_s": 60}, headers=admin)
    assert answer.status_code == 422
    assert answer.json()["detail"] == [
        {
            "index": None,
            "field": "grant",
            "reason": "embed grant 'portal' was revoked at 2027-01-04 02:00 UTC",
        }
    ]
    with sessions() as session:
        [line] = list_audit(session=session, action="embed.token")
    assert (line.outcome, line.target) == ("failed", "portal")
    assert line.detail is not None and "revoked" in line.detail["reason"]
    assert line.detail["ttl_s"] == 60


def test_the_grants_are_listed_for_an_admin_key(api: Any, sessions: sessionmaker[Session]) -> None:
    client, admin, _, _ = api
    grant(sessions, name="city", scope="530100", panels="trend", origins=[])
    with sessions.begin() as session:
        revoke_grant(session=session, name="city", now=NOW + timedelta(minutes=5))
    with client:
        answer = client.get("/api/v1/embed-grants", headers=admin)
    assert answer.status_code == 200
    grants = answer.json()["grants"]
    assert [g["name"] for g in grants] == ["city", "portal"]
    assert grants[0] == {
        "id": grants[0]["id"],
        "name": "city",
        "scope": "530100",
        "panels": ["trend"],
        "origins": [],
        "max_ttl_s": 1800,
        "created_by": "tests",
        "created_at": "2027-01-04T02:00:00Z",
        "revoked_at": "2027-01-04T02:05:00Z",
    }
    assert grants[1]["origins"] == [PORTAL] and grants[1]["revoked_at"] is None


# ---------------------------------------------------------------- the CLI


def test_the_cli_makes_lists_mints_under_and_revokes_grants(
    sessions: sessionmaker[Session], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import cli

    monkeypatch.delenv("GRIDCC_EMBED_SECRET", raising=False)
    monkeypatch.delenv("GRIDCC_EMBED_TOKEN_MAX_S", raising=False)
    url = ["--database-url", engine.url.render_as_string(hide_password=False)]
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, [*args, *url])
        assert result.exit_code == code, result.output
        return result.stdout if code == 0 else result.stderr

    made = run(
        "embed", "grant", "add", "--name", "portal", "--scope", "530102", "--panels", "map,kpis",
        "--origin", PORTAL, "--origin", "http://localhost:9000", "--max-ttl", "900",
    )  # fmt: skip
    assert "embed grant 'portal'" in made and "kpis,map of 530102" in made
    assert run(
        "embed", "grant", "add", "--name", "portal", "--scope", "530102", "--panels", "map", code=2
    ) == ("name: an embed grant is called 'portal' already\n")
    bad_origin = run(
        "embed", "grant", "add", "--name", "p2", "--scope", "530102", "--panels", "map",
        "--origin", "https://portal.example/embed", code=2,
    )  # fmt: skip
    assert bad_origin.startswith("origins: 'https://portal.example/embed' is not an origin")
    assert bad_origin.count("\n") == 1
    default_ttl = run(
        "embed", "grant", "add", "--name", "all", "--scope", "530100", "--panels", "trend"
    )
    assert "tokens up to 3600 s" in default_ttl and "GRIDCC_EMBED_ALLOWED_ORIGINS" in default_ttl

    listed = run("embed", "grant", "list")
    assert (
        "portal" in listed and "kpis,map" in listed and f"{PORTAL} http://localhost:9000" in listed
    )
    assert "all" in listed and "(deployment)" in listed

    minted = run(
        "embed-token", "--grant", "portal", "--ttl", "120", "--lang", "en", "--panels", "map",
        "--scope", "530102001", "--base-url", "https://cc.example/",
    )  # fmt: skip
    token, expires, link = minted.splitlines()
    with sessions.begin() as session:
        key = signing_secret(session=session, configured=None)
    claims = verify(key, token, now=datetime.now(UTC).timestamp())
    assert (claims.scope, claims.panels, claims.lang, claims.exp - claims.iat) == (
        "530102001",
        ("map",),
        "en",
        120,
    )
    assert expires.startswith("expires ") and expires.endswith(f"UTC (exp {claims.exp})")
    assert link == f"https://cc.example/embed?token={token}"
    assert run("embed-token", "--grant", "portal", "--ttl", "901", code=2) == (
        "ttl_s: a token of grant 'portal' lasts 1 to 900 seconds, not 901\n"
    )
    assert (
        run("embed-token", "--grant", "nobody", code=2)
        == "grant: no embed grant is called 'nobody'\n"
    )

    run("embed", "grant", "revoke", "portal")
    assert (
        run("embed", "grant", "revoke", "portal", code=2)
        == "no valid embed grant called 'portal'\n"
    )
    assert "revoked" in run("embed-token", "--grant", "portal", code=2)
    with sessions() as session:
        actions = [
            (a.action, a.target, a.actor) for a in list_audit(session=session, action="embed.")
        ]
    assert actions == [
        ("embed.revoke", "portal", "cli"),
        ("embed.token", "portal", "cli"),
        ("embed.add", "all", "cli"),
        ("embed.add", "portal", "cli"),
    ]
