"""The login page (登录) and logout: `login_router(...)`.

- `GET /login?next=…&lang=zh|en`: a self-contained page (no script, no external asset) whose
  form carries a login CSRF secret, also set as the `gridcc_login_csrf` cookie (double submit:
  a cross-site page can neither read the cookie nor guess the field).
- `POST /login` (form-encoded, at most `BODY_LIMIT` bytes): refused cross-site (403), throttled
  per client address (429), then the account's own lockout (`accounts.authenticate`). Success
  sets the session cookie and the `_csrf_token` cookie Dash echoes as `X-CSRFToken`, and
  redirects (303) to `next` when it is a path on this site.
- `POST /logout`: ends the session (with its CSRF secret), clears the cookies, 303 to /login.

Every sign-in (ok, failed, locked, throttled) and every logout is audited.

The client address is `request.client.host`. Behind a reverse proxy that is the proxy's address
unless uvicorn runs with `--proxy-headers --forwarded-allow-ips=<the proxy>`; the same options
make `request.url.scheme` https behind a TLS proxy, which is what marks the cookies `Secure`.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from data_sources.access import accounts, audit
from data_sources.access.guard import cross_site
from data_sources.access.identity import CSRF_COOKIE, SESSION_COOKIE
from data_sources.access.login_page import Lang, login_page, text
from data_sources.access.sessions import NewSession, SessionStore
from data_sources.body import request_body

LOGIN_CSRF_COOKIE = "gridcc_login_csrf"
FORM = "application/x-www-form-urlencoded"
#: A login form is a name, a password (at most 256 characters), two secrets and a path.
BODY_LIMIT = 4_096
#: Sign-in attempts per client address per window, whatever the names tried: with the
#: account lockout (5 in a row) it bounds both a guesser at one name and one spraying many.
THROTTLE_ATTEMPTS = 10
THROTTLE_WINDOW_S = 60.0
#: Addresses the throttle remembers at most (≈200 bytes each); past it the idlest are dropped.
THROTTLE_ADDRESSES = 50_000


# ---------------------------------------------------------------- pure helpers


def safe_next(next_path: str | None) -> str:
    """`next_path` if it is a path on this site, else "/" (no open redirect).

    A single leading "/" and no "//" or "/\\" (both read as another host), no backslash, space
    or control character anywhere (browsers drop tabs and newlines: "/\\t/evil" is "//evil").
    """
    if not next_path or not next_path.startswith("/") or next_path.startswith(("//", "/\\")):
        return "/"
    if any(c == "\\" or c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in next_path):
        return "/"
    return quote(next_path, safe="/?&=#%:@!$'()*+,;~[]")


def throttle_key(address: str) -> str:
    """What the throttle counts by: the address, or its /64 for IPv6 (one host holds a /64)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else ip)


@dataclass(slots=True)
class _Window:
    attempts: deque[float] = field(default_factory=deque)
    #: Until when a refusal of this address is already in the audit log.
    audited_until: float = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_s: int = 0
    #: The first refusal of a window: audited; the rest of the window's refusals are not (a
    #: flood of attempts must not become a flood of audit lines).
    audit: bool = False


class LoginThrottle:
    """At most `attempts` failed or refused sign-ins per `window_s` per client address (a
    sliding window), in memory: per process, which is what it needs to be to slow a guesser
    down. Runs on the event loop only (no lock)."""

    def __init__(
        self,
        attempts: int = THROTTLE_ATTEMPTS,
        window_s: float = THROTTLE_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = THROTTLE_ADDRESSES,
    ) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self.clock = clock
        self.max_addresses = max_addresses
        self._windows: dict[str, _Window] = {}

    def attempt(self, address: str) -> Verdict:
        now = self.clock()
        key = throttle_key(address)
        window = self._windows.pop(key, None) or _Window()
        self._windows[key] = window  # most recently used last: the first ones are the idlest
        while window.attempts and window.attempts[0] <= now - self.window_s:
            window.attempts.popleft()
        if len(window.attempts) >= self.attempts:
            retry_after = window.attempts[0] + self.window_s - now
            audit_it = now >= window.audited_until
            if audit_it:
                window.audited_until = window.attempts[0] + self.window_s
            return Verdict(False, max(1, math.ceil(retry_after)), audit_it)
        window.attempts.append(now)
        while len(self._windows) > self.max_addresses:
            del self._windows[next(iter(self._windows))]
        return Verdict(True)

    def refund(self, address: str) -> None:
        """Give back the attempt of a sign-in that succeeded.

        Charged up front (parallel guesses cannot all slip past the check), but a success is no
        guess: a shift change of 20 operators behind one NAT address is not throttled.
        """
        window = self._windows.get(throttle_key(address))
        if window is not None and window.attempts:
            window.attempts.pop()


def _lang(value: str | None, default: Lang) -> Lang:
    return value if value in ("zh", "en") else default  # type: ignore[return-value]


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _form(body: bytes) -> dict[str, str]:
    """The first value of each field of a form-encoded body (undecodable bytes replaced)."""
    try:
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=16)
    except ValueError:  # more fields than a login form has: no form (refused, 403, not a 500)
        return {}
    return {key: values[0] for key, values in fields.items() if values}


def _refused(status: int, reason: str) -> Response:
    return Response(reason, status, media_type="text/plain; charset=utf-8")


# ---------------------------------------------------------------- the router


@dataclass(frozen=True, slots=True)
class _SignIn:
    outcome: accounts.LoginOutcome
    new: NewSession | None


def login_router(
    *,
    sessions: sessionmaker[Session],
    store: SessionStore,
    clock: Callable[[], datetime],
    idle: timedelta,
    absolute: timedelta,
    default_lang: str = "zh",
    tz: tzinfo = UTC,
    throttle: LoginThrottle | None = None,
) -> APIRouter:
    """The login page, sign-in and logout.

    Args:
        sessions: the system of record's sessions (users, the audit log).
        store: where signed-in sessions live (SQL or Redis).
        clock: now, naive UTC.
        idle, absolute: a session's idle and absolute expiry.
        default_lang: the page's language without `?lang=`.
        tz: the zone in which "locked until HH:MM" is shown.
        throttle: the per-address throttle (a fresh one by default; tests pass their own).
    """
    router = APIRouter(include_in_schema=False)
    default: Lang = "en" if default_lang == "en" else "zh"
    limiter = throttle or LoginThrottle()

    def page(
        request: Request,
        status: int,
        *,
        lang: Lang,
        next_path: str,
        message: str | None = None,
        name: str = "",
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        csrf = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not (20 <= len(csrf) <= 64 and csrf.isascii()):  # keep one: several tabs stay valid
            csrf = secrets.token_urlsafe(32)
        text = login_page(lang=lang, next_path=next_path, csrf=csrf, message=message, name=name)
        response = HTMLResponse(
            text, status, headers={"Cache-Control": "no-store", **(headers or {})}
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            csrf,
            path="/login",
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
        return response

    # The lockout counters of names no account has (see accounts.authenticate), per process.
    unknown_names: dict[str, accounts.Lockout] = {}

    def sign_in(name: str, password: str, client: str) -> _SignIn:
        now = clock()
        with sessions.begin() as session:
            outcome = accounts.authenticate(
                session=session, name=name, password=password, now=now, unknown=unknown_names
            )
            new = None
            if outcome.ok and outcome.user_id is not None:
                new = store.start(
                    session=session,
                    user_id=outcome.user_id,
                    now=now,
                    client=client,
                    idle=idle,
                    absolute=absolute,
                )
            audit_outcome = {"ok": "ok", "locked": "locked"}.get(outcome.reason, "failed")
            detail: dict[str, object] = {"reason": outcome.reason}
            if outcome.locked_until is not None:
                detail["locked_until"] = outcome.locked_until.isoformat() + "Z"
            audit.record(
                session=session,
                at=now,
                # What was typed, marked as no account's when none has that name.
                actor=name or "-",
                actor_kind="user" if outcome.user_id is not None else "unknown",
                action="login",
                outcome=audit_outcome,
                scope_code=outcome.scope_code,
                target=f"session:{new.id}" if new else None,
                detail=detail,
                client=client,
            )
        return _SignIn(outcome, new)

    def audit_throttled(client: str, name: str) -> None:
        with sessions.begin() as session:
            audit.record(
                session=session,
                at=clock(),
                actor=name or "-",
                actor_kind="unknown",
                action="login",
                outcome="throttled",
                detail={"attempts_per_minute": limiter.attempts},
                client=client,
            )

    def signed_in(token: str) -> bool:
        """Whether `token` is a live session (then the login page sends its user on)."""
        with sessions.begin() as session:
            principal = store.principal(session=session, token=token, now=clock(), idle=idle)
        return principal is not None

    def sign_out(token: str, csrf_sent: str, client: str) -> bool:
        """End the session of `token` if `csrf_sent` is its secret; False when it is not."""
        now = clock()
        with sessions.begin() as session:
            found = store.find(session=session, token=token)
            if found is None:
                return True  # nothing to end: signing out is idempotent
            if not hmac.compare_digest(csrf_sent.encode(), found.csrf.encode()):
                return False
            store.end(session=session, session_id=found.id, now=now)
            audit.record(
                session=session,
                at=now,
                actor=found.user_name,
                actor_kind="user",
                action="logout",
                outcome="ok",
                scope_code=found.scope_code,
                target=f"session:{found.id}",
                client=client,
            )
        return True

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        query = request.query_params
        lang = _lang(query.get("lang"), default)
        next_path = safe_next(query.get("next"))
        token = request.cookies.get(SESSION_COOKIE)
        if token is not None and await asyncio.to_thread(signed_in, token):
            return RedirectResponse(next_path, 303, headers={"Cache-Control": "no-store"})
        return page(request, 200, lang=lang, next_path=next_path)

    @router.post("/login")
    async def login_submit(request: Request) -> Response:
        reason = cross_site(request.headers, request.url.scheme)
        if reason is not None:
            return _refused(403, reason)
        if not request.headers.get("content-type", "").startswith(FORM):
            return _refused(415, f"a sign-in is sent as {FORM}")
        client = _client(request)
        body = await request_body(request, BODY_LIMIT)
        form = _form(body)
        lang = _lang(form.get("lang") or request.query_params.get("lang"), default)
        next_path = safe_next(form.get("next"))
        name = form.get("name", "")  # whole: cut, a 65-character name could match another
        verdict = limiter.attempt(client)
        if not verdict.allowed:
            if verdict.audit:
                await asyncio.to_thread(audit_throttled, client, name)
            message = text("throttled", lang).format(seconds=verdict.retry_after_s)
            retry = {"Retry-After": str(verdict.retry_after_s)}
            return page(
                request, 429, lang=lang, next_path=next_path, message=message, headers=retry
            )
        cookie_csrf = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        sent_csrf = form.get("csrf", "")
        if not (cookie_csrf and hmac.compare_digest(cookie_csrf.encode(), sent_csrf.encode())):
            message = text("expired", lang)
            return page(request, 403, lang=lang, next_path=next_path, message=message, name=name)
        result = await asyncio.to_thread(sign_in, name, form.get("password", ""), client)
        outcome, new = result.outcome, result.new
        if new is None:
            if outcome.reason == "locked" and outcome.locked_until is not None:
                until = outcome.locked_until.replace(tzinfo=UTC).astimezone(tz)
                message = text("locked", lang).format(until=f"{until:%H:%M}")
            else:
                message = text(outcome.reason, lang)
            return page(request, 401, lang=lang, next_path=next_path, message=message, name=name)
        limiter.refund(client)
        response = RedirectResponse(next_path, 303, headers={"Cache-Control": "no-store"})
        secure = _secure(request)
        response.set_cookie(
            SESSION_COOKIE,
            new.token,
            max_age=int(absolute.total_seconds()),
            path="/",
            httponly=True,
            samesite="lax",
            secure=secure,
        )
        response.set_cookie(
            CSRF_COOKIE,
            new.csrf,
            max_age=int(absolute.total_seconds()),
            path="/",
            httponly=False,  # Dash's renderer reads it to send X-CSRFToken
            samesite="strict",
            secure=secure,
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login", secure=secure, httponly=True)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        reason = cross_site(request.headers, request.url.scheme)
        if reason is not None:
            return _refused(403, reason)
        csrf_sent = request.headers.get("x-csrftoken", "")
        content_type = request.headers.get("content-type", "")
        if not csrf_sent and content_type.startswith(FORM):
            csrf_sent = _form(await request_body(request, BODY_LIMIT)).get("csrf", "")
        token = request.cookies.get(SESSION_COOKIE)
        if token is not None and not await asyncio.to_thread(
            sign_out, token, csrf_sent, _client(request)
        ):
            return _refused(403, "missing or wrong CSRF token: reload the page")
        lang = _lang(request.query_params.get("lang"), default)
        location = "/login" if lang == default else f"/login?lang={lang}"
        response = RedirectResponse(location, 303, headers={"Cache-Control": "no-store"})
        secure = _secure(request)
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax"
        )
        response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="strict")
        return response

    return router
