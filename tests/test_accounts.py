"""Accounts, passwords and the login page, on SQLite and PostgreSQL (with sessions in SQL; the
session stores have their own contract suite, test_session_store.py)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx2 as httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from data_sources import db
from data_sources.access import accounts
from data_sources.access.accounts import (
    LOCKOUT,
    MAX_FAILURES,
    AccountError,
    Lockout,
    add_user,
    authenticate,
    disable_user,
    enable_user,
    list_users,
    login_rule,
    set_password,
)
from data_sources.access.login import (
    LOGIN_CSRF_COOKIE,
    LoginThrottle,
    login_router,
    safe_next,
    throttle_key,
)
from data_sources.access.login_page import login_page
from data_sources.access.model import Principal, Role
from data_sources.access.passwords import (
    check_password_policy,
    generate_password,
    needs_rehash,
    verify_password,
)
from data_sources.access.scope import account_area_problem
from data_sources.access.sessions import NewSession
from data_sources.access.sessions.sql import SqlSessions
from data_sources.schema import AuditRow, UserRow, UserSessionRow

from .conftest import add_nodes

NOW = datetime(2026, 12, 5, 6, 0)
PASSWORD = "Correct-horse-42"
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
STORE = SqlSessions()


def _nodes(engine: Engine) -> None:
    add_nodes(engine, (1, "530100", "city", None), (2, "530103", "district", 1))


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    _nodes(engine)
    return db.make_sessionmaker(engine)


def _add(sessions: sessionmaker[Session], name: str = "li", role: Role = Role.OPERATOR) -> int:
    with sessions.begin() as session:
        return add_user(
            session=session,
            name=name,
            role=role,
            scope_code="530103",
            password=PASSWORD,
            now=NOW,
        )


def _login(
    sessions: sessionmaker[Session], password: str, at: datetime, name: str = "li"
) -> accounts.LoginOutcome:
    with sessions.begin() as session:
        return authenticate(session=session, name=name, password=password, now=at)


def _start(sessions: sessionmaker[Session], user_id: int, at: datetime = NOW) -> NewSession:
    with sessions.begin() as session:
        return STORE.start(
            session=session,
            user_id=user_id,
            now=at,
            client="10.0.0.1",
            idle=IDLE,
            absolute=ABSOLUTE,
        )


def _principal(sessions: sessionmaker[Session], token: str, at: datetime) -> Principal | None:
    with sessions.begin() as session:
        return STORE.principal(session=session, token=token, now=at, idle=IDLE)


# ---------------------------------------------------------------- passwords and users


def test_password_policy() -> None:
    assert check_password_policy("short1A") is not None
    assert check_password_policy("abcdefghijkl") is not None  # one class only
    assert check_password_policy("1234567890") is not None
    assert check_password_policy("          ") is not None
    assert check_password_policy("x" * 300 + "1") is not None
    assert check_password_policy("abcdefghi1") is None
    assert check_password_policy("社会治理指挥中心密码1") is None
    assert check_password_policy(generate_password()) is None


def test_verify_never_raises() -> None:
    assert verify_password("not a hash", "x") is False
    assert verify_password("", "") is False
    assert needs_rehash("not a hash") is True


def test_password_is_argon2id_at_rest(sessions: sessionmaker[Session]) -> None:
    user_id = _add(sessions)
    with sessions() as session:
        stored = session.get(UserRow, user_id)
        assert stored is not None
        assert stored.password_hash.startswith("$argon2id$")
        assert PASSWORD not in stored.password_hash
        assert verify_password(stored.password_hash, PASSWORD)
        assert not verify_password(stored.password_hash, PASSWORD + "x")
        assert not needs_rehash(stored.password_hash)
        info = list_users(session=session)
    assert [(u.name, u.role, u.scope_code, u.disabled_at) for u in info] == [
        ("li", Role.OPERATOR, "530103", None)
    ]


def test_rehash_on_success(sessions: sessionmaker[Session]) -> None:
    user_id = _add(sessions)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with sessions.begin() as session:
        row = session.get(UserRow, user_id)
        assert row is not None
        row.password_hash = weak
    assert not _login(sessions, "wrong-password-1", NOW).ok
    with sessions() as session:
        assert session.get(UserRow, user_id).password_hash == weak  # type: ignore[union-attr]
    assert _login(sessions, PASSWORD, NOW).ok
    with sessions() as session:
        stored = session.get(UserRow, user_id)
        assert stored is not None and stored.password_hash != weak
        assert not needs_rehash(stored.password_hash)
        assert verify_password(stored.password_hash, PASSWORD)


def test_add_user_refuses(sessions: sessionmaker[Session]) -> None:
    _add(sessions)
    cases = [
        ({"name": "li"}, "exists already"),
        ({"scope_code": "999999"}, "no area has the code '999999'"),
        ({"name": ""}, "1 to 64"),
        ({"name": "x" * 65}, "1 to 64"),
        ({"name": "bad\nname"}, "control"),
        ({"name": "bad\x00name"}, "control"),
        ({"password": "short"}, "at least 10"),
    ]
    for change, message in cases:
        args = {"name": "wang", "scope_code": "530100", "password": PASSWORD, **change}
        with sessions.begin() as session, pytest.raises(ValueError, match=message):
            add_user(session=session, role=Role.LEADER, now=NOW, **args)
    with sessions() as session:
        assert [u.name for u in list_users(session=session)] == ["li"]


def test_an_admin_is_of_the_city_and_no_account_is_below_a_community(
    sessions: sessionmaker[Session],
) -> None:
    """Review of issue 10: an area admin could make a city-wide admin (and so become one)."""
    with sessions.begin() as session, pytest.raises(ValueError, match="whole city"):
        add_user(
            session=session,
            name="area-admin",
            role=Role.ADMIN,
            scope_code="530103",
            password=PASSWORD,
            now=NOW,
        )
    with sessions.begin() as session:
        add_user(
            session=session,
            name="root",
            role=Role.ADMIN,
            scope_code="530100",
            password=PASSWORD,
            now=NOW,
        )
    assert account_area_problem("5301030040010001", "grid") is not None
    assert account_area_problem("530103004001", "community") is None


def test_parallel_guesses_all_count(sessions: sessionmaker[Session]) -> None:
    """Review of issue 10: 6 wrong guesses at once counted as 1 on SQLite (read, then +1)."""
    user_id = _add(sessions)
    with ThreadPoolExecutor(MAX_FAILURES) as pool:
        reasons = list(
            pool.map(lambda i: _login(sessions, f"wrong-guess-{i}!", NOW).reason, range(5))
        )
    assert reasons.count("locked") == 1
    with sessions() as session:
        row = session.get(UserRow, user_id)
        assert row is not None and row.locked_until == NOW + LOCKOUT


def test_unknown_names_lock_like_known_ones(sessions: sessionmaker[Session]) -> None:
    """Review of issue 10: an unknown name never answered "locked", so 5 tries told which exist."""
    _add(sessions)
    unknown: dict[str, Lockout] = {}
    reasons = []
    for name in ("li", "nobody"):
        for _ in range(MAX_FAILURES):
            with sessions.begin() as session:
                outcome = authenticate(
                    session=session,
                    name=name,
                    password="wrong-password-1",
                    now=NOW,
                    unknown=unknown,
                )
            reasons.append(outcome.reason)
    assert reasons[:MAX_FAILURES] == reasons[MAX_FAILURES:]  # the same answers, name or not
    assert reasons[-1] == "locked"


def test_unknown_user_is_bad_credentials(sessions: sessionmaker[Session]) -> None:
    _add(sessions)
    outcome = _login(sessions, PASSWORD, NOW, name="nobody")
    assert (outcome.ok, outcome.user_id, outcome.reason) == (False, None, "bad_credentials")
    outcome = _login(sessions, PASSWORD, NOW, name="bad\x00")
    assert outcome.reason == "bad_credentials"


# ---------------------------------------------------------------- lockout


def test_login_rule() -> None:
    fresh = Lockout(0, None)
    assert login_rule(fresh, disabled=False, password_ok=True, now=NOW) == ("ok", fresh)
    assert login_rule(Lockout(3, None), disabled=False, password_ok=False, now=NOW) == (
        "bad_credentials",
        Lockout(4, None),
    )
    locked = Lockout(MAX_FAILURES, NOW + LOCKOUT)
    assert login_rule(Lockout(4, None), disabled=False, password_ok=False, now=NOW) == (
        "locked",
        locked,
    )
    assert login_rule(locked, disabled=False, password_ok=True, now=NOW) == ("locked", locked)
    # A run-out lock counts afresh: one more failure does not lock again.
    later = NOW + LOCKOUT
    assert login_rule(locked, disabled=False, password_ok=False, now=later) == (
        "bad_credentials",
        Lockout(1, None),
    )
    # A disabled account says so only to someone with its password.
    assert login_rule(fresh, disabled=True, password_ok=False, now=NOW)[0] == "bad_credentials"
    assert login_rule(fresh, disabled=True, password_ok=True, now=NOW)[0] == "disabled"


def test_lockout_after_five_failures(sessions: sessionmaker[Session]) -> None:
    user_id = _add(sessions)
    reasons = [_login(sessions, "wrong-password-1", NOW).reason for _ in range(MAX_FAILURES)]
    assert reasons == ["bad_credentials"] * (MAX_FAILURES - 1) + ["locked"]
    sixth = _login(sessions, PASSWORD, NOW + timedelta(minutes=5))
    assert (sixth.ok, sixth.reason, sixth.user_id) == (False, "locked", user_id)
    assert sixth.locked_until == NOW + LOCKOUT  # not extended
    almost = _login(sessions, PASSWORD, NOW + LOCKOUT - timedelta(seconds=1))
    assert almost.reason == "locked"
    after = _login(sessions, PASSWORD, NOW + LOCKOUT)
    assert (after.ok, after.reason) == (True, "ok")
    with sessions() as session:
        row = session.get(UserRow, user_id)
        assert row is not None
        assert (row.failed_logins, row.locked_until) == (0, None)


def test_success_resets_the_count(sessions: sessionmaker[Session]) -> None:
    _add(sessions)
    for _ in range(MAX_FAILURES - 1):
        assert _login(sessions, "wrong-password-1", NOW).reason == "bad_credentials"
    assert _login(sessions, PASSWORD, NOW).ok
    for _ in range(MAX_FAILURES - 1):
        assert _login(sessions, "wrong-password-1", NOW).reason == "bad_credentials"


def test_set_password_clears_lockout_and_ends_sessions(sessions: sessionmaker[Session]) -> None:
    user_id = _add(sessions)
    new = _start(sessions, user_id)
    for _ in range(MAX_FAILURES):
        _login(sessions, "wrong-password-1", NOW)
    with sessions.begin() as session:
        set_password(session=session, store=STORE, name="li", password="Another-pass-7", now=NOW)
    assert _principal(sessions, new.token, NOW) is None
    assert _login(sessions, PASSWORD, NOW).reason == "bad_credentials"
    assert _login(sessions, "Another-pass-7", NOW).ok
    with sessions.begin() as session, pytest.raises(AccountError, match="no user named"):
        set_password(
            session=session, store=STORE, name="nobody", password="Another-pass-7", now=NOW
        )


# ---------------------------------------------------------------- sessions


def test_disabled_user_loses_sessions(sessions: sessionmaker[Session]) -> None:
    user_id = _add(sessions)
    first, second = _start(sessions, user_id), _start(sessions, user_id)
    other = _start(sessions, _add(sessions, "wang"))
    at = NOW + timedelta(minutes=1)
    with sessions.begin() as session:
        assert disable_user(session=session, store=STORE, name="li", now=at) == 2
    for new in (first, second):
        assert _principal(sessions, new.token, at) is None
        with sessions() as session:
            row = session.get(UserSessionRow, int(new.id))
            assert row is not None and row.ended_at == at
            assert not STORE.alive(session=session, session_id=new.id, now=at, idle=IDLE)
    assert _principal(sessions, other.token, at) is not None
    assert _login(sessions, PASSWORD, at).reason == "disabled"
    assert _login(sessions, "wrong-password-1", at).reason == "bad_credentials"
    with sessions.begin() as session:
        assert list_users(session=session)[0].disabled_at == at
        enable_user(session=session, name="li", now=at)
    assert _login(sessions, PASSWORD, at).ok
    assert _principal(sessions, first.token, at) is None  # ended sessions stay ended


# ---------------------------------------------------------------- pure helpers of the page


def test_safe_next() -> None:
    assert safe_next("/wall?scope=530103&lang=en") == "/wall?scope=530103&lang=en"
    assert safe_next("/区域") == "/%E5%8C%BA%E5%9F%9F"
    for bad in (None, "", "//evil.example", "/\\evil.example", "https://evil.example", "evil",
                "/\t/evil.example", "/a\\b", "/\n/x", " /x"):  # fmt: skip
        assert safe_next(bad) == "/", bad


def test_throttle_window() -> None:
    now = [0.0]
    throttle = LoginThrottle(attempts=3, window_s=60, clock=lambda: now[0], max_addresses=2)
    assert all(throttle.attempt("10.0.0.1").allowed for _ in range(3))
    refused = throttle.attempt("10.0.0.1")
    assert (refused.allowed, refused.retry_after_s, refused.audit) == (False, 60, True)
    now[0] = 30
    again = throttle.attempt("10.0.0.1")
    assert (again.allowed, again.retry_after_s, again.audit) == (False, 30, False)
    assert throttle.attempt("10.0.0.2").allowed  # per address
    throttle.refund("10.0.0.2")  # it succeeded
    assert not throttle._windows["10.0.0.2"].attempts
    now[0] = 60
    assert throttle.attempt("10.0.0.1").allowed
    assert throttle_key("2001:db8::1") == throttle_key("2001:db8::ffff") == "2001:db8::/64"
    assert throttle_key("::ffff:10.0.0.1") == "10.0.0.1"
    throttle.attempt("10.0.0.3")
    assert len(throttle._windows) == 2  # bounded


def test_login_page_escapes() -> None:
    page = login_page(lang="en", next_path='/x"><script>', csrf="c", message="<b>", name="<i>")
    assert "<script>" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;b&gt;" in page and 'lang="en"' in page


# ---------------------------------------------------------------- the routes


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _app(sessions: sessionmaker[Session], clock: Clock, throttle: LoginThrottle) -> FastAPI:
    app = FastAPI()
    app.include_router(
        login_router(
            sessions=sessions,
            store=STORE,
            clock=clock,
            idle=IDLE,
            absolute=ABSOLUTE,
            default_lang="zh",
            throttle=throttle,
        )
    )
    return app


@pytest.fixture
def client(sessions: sessionmaker[Session], clock: Clock) -> Iterator[TestClient]:
    _add(sessions)
    with TestClient(_app(sessions, clock, LoginThrottle())) as test_client:
        yield test_client


_CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


def _form_csrf(client: TestClient, query: str = "") -> str:
    page = client.get(f"/login{query}")
    assert page.status_code == 200
    found = _CSRF_FIELD.search(page.text)
    assert found is not None
    return found.group(1)


def _post_login(client: TestClient, password: str = PASSWORD, **fields: str) -> httpx.Response:
    form = {"name": "li", "password": password, "csrf": _form_csrf(client), **fields}
    return client.post("/login", data=form, follow_redirects=False)


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def _audit(sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with sessions() as session:
        rows = session.scalars(select(AuditRow).order_by(AuditRow.id))
        return [(row.action, row.outcome, row.actor) for row in rows]


def test_login_page(client: TestClient) -> None:
    page = client.get("/login?next=/wall")
    assert page.status_code == 200
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[1]
    assert 'lang="zh"' in page.text and "用户名" in page.text
    assert 'name="next" value="/wall"' in page.text
    assert "User name" in client.get("/login?lang=en").text
    cookie = _set_cookies(page)[LOGIN_CSRF_COOKIE]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    # The same secret for a second tab, and it is the form's.
    assert _form_csrf(client) == _form_csrf(client) == client.cookies[LOGIN_CSRF_COOKIE]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_login_sets_cookies(sessions: sessionmaker[Session], clock: Clock, scheme: str) -> None:
    _add(sessions)
    app = _app(sessions, clock, LoginThrottle())
    with TestClient(app, base_url=f"{scheme}://testserver") as client:
        response = _post_login(client, next="/wall?scope=530103")
    assert response.status_code == 303
    assert response.headers["location"] == "/wall?scope=530103"
    cookies = _set_cookies(response)
    session_cookie, csrf_cookie = cookies["gridcc_session"], cookies["_csrf_token"]
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
    assert "Path=/;" in session_cookie or session_cookie.endswith("Path=/")
    assert "HttpOnly" not in csrf_cookie and "SameSite=strict" in csrf_cookie
    for cookie in (session_cookie, csrf_cookie):
        assert ("Secure" in cookie) == (scheme == "https")
    token = session_cookie.split(";")[0].split("=", 1)[1]
    with sessions() as session:
        row = session.scalars(select(UserSessionRow)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert row.csrf == csrf_cookie.split(";")[0].split("=", 1)[1]
    assert _audit(sessions) == [("login", "ok", "li")]


def test_login_failures_are_shown_and_audited(
    sessions: sessionmaker[Session], client: TestClient, clock: Clock
) -> None:
    wrong = _post_login(client, password="wrong-password-1")
    assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
    assert "gridcc_session" not in _set_cookies(wrong)
    for _ in range(MAX_FAILURES - 1):
        locked = _post_login(client, password="wrong-password-1", lang="en")
    assert locked.status_code == 401
    assert "locked until 06:15" in locked.text  # UTC: the router's default zone
    clock.now = NOW + timedelta(minutes=1)
    assert "locked until 06:15" in _post_login(client, lang="en").text
    assert _audit(sessions) == [("login", "failed", "li")] * 4 + [("login", "locked", "li")] * 2
    unknown = _post_login(client, name="<nobody>")
    assert unknown.status_code == 401 and "<nobody>" not in unknown.text


def test_login_csrf_and_cross_site(client: TestClient) -> None:
    csrf = _form_csrf(client)
    form = {"name": "li", "password": PASSWORD, "csrf": csrf}
    refusals = [
        ({"Origin": "http://localhost:9"}, form),
        ({"Sec-Fetch-Site": "cross-site"}, form),
        ({"Sec-Fetch-Site": "same-site"}, form),
        ({}, {**form, "csrf": "x" * 43}),
        ({}, {k: v for k, v in form.items() if k != "csrf"}),
    ]
    for headers, data in refusals:
        response = client.post("/login", data=data, headers=headers, follow_redirects=False)
        assert response.status_code == 403, headers
        assert "gridcc_session" not in _set_cookies(response)
    # QA of issue 10: more fields than a login form has were a 500 (parse_qs raised).
    many = "&".join(f"f{i}=x" for i in range(40))
    response = client.post(
        "/login", content=many, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 403
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    response = client.post("/login", data=form, headers=same, follow_redirects=False)
    assert response.status_code == 303


def test_login_throttle(sessions: sessionmaker[Session], client: TestClient) -> None:
    form = {"name": "li", "password": "wrong-password-1", "csrf": "no"}
    for _ in range(10):
        assert client.post("/login", data=form).status_code == 403
    for _ in range(3):
        throttled = client.post("/login", data=form)
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
    assert _audit(sessions) == [("login", "throttled", "li")]  # once per window


def test_successes_are_not_throttled(client: TestClient) -> None:
    for _ in range(12):  # a shift change behind one address
        client.cookies.clear()
        assert _post_login(client).status_code == 303


def test_open_redirect_refused(client: TestClient) -> None:
    assert 'name="next" value="/"' in client.get("/login?next=//evil.example").text
    for evil in ("//evil.example", "https://evil.example", "/\\evil.example"):
        client.cookies.clear()  # signed out again
        response = _post_login(client, next=evil)
        assert response.status_code == 303
        assert response.headers["location"] == "/"


def test_signed_in_visitor_skips_the_form(client: TestClient) -> None:
    assert _post_login(client).status_code == 303
    again = client.get("/login?next=/wall", follow_redirects=False)
    assert (again.status_code, again.headers["location"]) == (303, "/wall")


def test_logout(sessions: sessionmaker[Session], client: TestClient, clock: Clock) -> None:
    assert _post_login(client).status_code == 303
    csrf = client.cookies["_csrf_token"]
    cross = client.post("/logout", headers={"X-CSRFToken": csrf, "Origin": "http://localhost:9"})
    assert cross.status_code == 403
    assert client.post("/logout", headers={"X-CSRFToken": "wrong"}).status_code == 403
    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    with sessions() as session:
        row = session.scalars(select(UserSessionRow)).one()
        assert row.ended_at is None
    clock.now = NOW + timedelta(minutes=3)
    response = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    cleared = _set_cookies(response)
    for name in ("gridcc_session", "_csrf_token"):
        assert "Max-Age=0" in cleared[name] or "expires=Thu, 01 Jan 1970" in cleared[name]
    assert "gridcc_session" not in client.cookies
    with sessions() as session:
        row = session.scalars(select(UserSessionRow)).one()
        assert row.ended_at == clock.now
        assert not STORE.alive(session=session, session_id=str(row.id), now=clock.now, idle=IDLE)
    assert _audit(sessions)[-1] == ("logout", "ok", "li")
    # Signing out again (no session) is harmless.
    assert client.post("/logout", follow_redirects=False).status_code == 303
