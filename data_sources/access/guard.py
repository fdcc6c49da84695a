"""Access enforced on every request, before anything is read or drawn.

`AccessGuard` (ASGI middleware) resolves who is asking once per request (`Identity`: a session
cookie, a display's cookie, or an anonymous visitor where the deployment allows one) and then:
- **pages** (`/`, `/wall`, `/admin`…): not signed in → 303 to the login page; a revoked
  display → the neutral "display disabled" screen; `?scope=` resolved by `resolve_scope` →
  404 "no such area" / 403 before the page is served;
- **Dash callbacks**: refused cross-site (`Sec-Fetch-Site`, `Origin`) and without the CSRF token
  (Dash's renderer echoes the `_csrf_token` cookie as `X-CSRFToken`); every server callback has
  a declared `CallbackPolicy` (the permission it needs and the component whose query string
  names its scope) — a callback without one is refused, so a new callback cannot be forgotten;
  a refused action is audited;
- **the live stream**: 401 without a principal (the route resolves its scope);
- **embeds** (`embed_pages`, their callbacks and stream): the signed token is the only credential
  (`?token=` on the page, the `X-Gridcc-Embed` header on callbacks, `&embed=` on the stream; no
  cookie is read: a portal's iframe gets none). It opens only the embed page, the callbacks
  declared `embed=True` and its scope's stream; a token that does not hold is a neutral "link
  expired" page or a 401 JSON, never a login page. The page's `frame-ancestors` are the grant's
  origins (`embed_csp`);
- **read routes** (`read_prefixes`: the case API and the exports): GET and HEAD only (405);
  refused cross-site (`Sec-Fetch-Site`, `Origin`: 403 JSON; a link of the app's own pages is
  same-origin, a typed URL none); a request with an `X-API-Key` goes on to the route, which
  checks the key; otherwise 401 JSON without a principal (never a login redirect: a script or
  a download asks) and `?scope=` resolved as for pages (404/403 JSON). They change nothing, so
  they need no CSRF token.
The principal and the resolved scope reach the callback or route through `current_access()`.
Other API routes under `/api/` authenticate with their own keys; static files need nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, quote, urlencode

from dash._utils import split_callback_id
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from data_sources.access.identity import (
    CSRF_COOKIE,
    CSRF_HEADER,
    DISPLAY_COOKIE,
    SESSION_COOKIE,
    Identity,
    Resolved,
)
from data_sources.access.model import (
    AccessError,
    EmbedRefused,
    Forbidden,
    Permission,
    Principal,
    Unauthenticated,
)
from data_sources.access.model import Scope as Area
from data_sources.access.pages import (
    display_disabled_page,
    embed_refused_page,
    forbidden_page,
    no_such_area_page,
    unavailable_page,
)
from data_sources.access.scope import NoHierarchy, resolve_scope
from data_sources.directory import Directory
from data_sources.health import unavailable
from data_sources.web import DASH_BODY

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- who is asking


@dataclass(frozen=True, slots=True)
class Access:
    """What a request may do: who asks, the area it is about (once resolved), from where."""

    principal: Principal
    scope: Area | None = None
    client: str | None = None


_ACCESS: ContextVar[Access | None] = ContextVar("gridcc_access", default=None)


def current_access() -> Access:
    """The access of the request being served (set by `AccessGuard`); 401 outside one."""
    access = _ACCESS.get()
    if access is None:
        raise Unauthenticated()
    return access


def set_access(access: Access | None) -> Any:
    """Set the access of the code that follows (the guard, tests); returns the reset token."""
    return _ACCESS.set(access)


# ---------------------------------------------------------------- callback policies


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """What a Dash callback needs: a permission and, for callbacks that show or act on an
    area, the component whose `search` (the page's query string) names it."""

    permission: Permission
    scope_from: str | None = None
    #: The audit name of an acting callback: refusals are audited under it.
    action: str | None = None
    #: Whether an embed (a portal's iframe, by its token) may call it: the embed page's own.
    embed: bool = False


class CallbackPolicies:
    """Policies by output component id; a server callback with none is refused."""

    def __init__(self) -> None:
        self._by_output: dict[str, CallbackPolicy] = {}

    def declare(self, output_id: str, policy: CallbackPolicy) -> None:
        if str(output_id) in self._by_output:  # two callbacks, one policy: a mistake
            raise ValueError(f"an access policy for {output_id!r} is declared already")
        self._by_output[str(output_id)] = policy

    def of(self, output: str) -> CallbackPolicy | None:
        spec = split_callback_id(output)  # type: ignore[no-untyped-call]
        first = spec[0] if isinstance(spec, list) else spec
        component = first.get("id") if isinstance(first, dict) else None
        return self._by_output.get(component) if isinstance(component, str) else None

    def undeclared(self, outputs: Collection[str]) -> list[str]:
        """The callbacks (Dash's callback-map keys) that no policy covers."""
        return [output for output in outputs if self.of(output) is None]


def _search_of(body: dict[str, Any], component: str) -> str | None:
    for dep in [*body.get("inputs", []), *body.get("state", [])]:
        if isinstance(dep, dict) and dep.get("id") == component and dep.get("property") == "search":
            value = dep.get("value")
            return value if isinstance(value, str) else None
    return None


def scope_param(query: str) -> str | None:
    """The `scope` of a query string ("?scope=530103&lang=en"), None when absent."""
    text = query.encode("utf-8", "surrogatepass").decode("utf-8", "replace").lstrip("?")
    values = parse_qs(text).get("scope")
    return values[0] if values else None


# ---------------------------------------------------------------- cross-site requests


def cross_site(headers: Headers, scheme: str, *, what: str = "change anything") -> str | None:
    """Why a request comes from another site, or None: a state-changing one, or a read of the
    case API or an export (`what`: "read this", for the refusal's reason).

    `Sec-Fetch-Site` (every current browser sends it) must be same-origin (a page's own link or
    fetch) or none (typed in, a bookmark); an `Origin` must be this server's own. `localhost`
    and `127.0.0.1` are different sites.
    """
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"a {fetch_site} request may not {what} here"
    origin = headers.get("origin")
    if origin is not None and origin != f"{scheme}://{headers.get('host', '')}":
        return f"a request from another origin may not {what} here"
    return None


def csrf_token_ok(principal: Principal, headers: Headers, cookies: dict[str, str]) -> bool:
    """The request echoes its CSRF secret: the session's own for a signed-in user (bound to the
    session), else the `_csrf_token` cookie (double submit)."""
    sent = headers.get(CSRF_HEADER, "")
    expected = principal.csrf if principal.kind == "user" else cookies.get(CSRF_COOKIE)
    if not sent or not expected:
        return False
    # Bytes: `compare_digest` refuses str with non-ASCII characters (a 500 for a forged header).
    return hmac.compare_digest(sent.encode(), expected.encode())


def _cookie(name: str, value: str, *, secure: bool, http_only: bool, same_site: str) -> str:
    parts = [f"{name}={value}", "Path=/", f"SameSite={same_site}"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def new_csrf_secret() -> str:
    return secrets.token_urlsafe(32)


# ---------------------------------------------------------------- the guard

Audit = Callable[..., Awaitable[None]]
#: A client's refusals of one kind (who, what) are audited once in this many seconds.
REFUSAL_AUDIT_S = 60.0
REFUSALS_KEPT = 10_000
RequestKind = Literal["page", "admin_page", "embed_page", "callback", "stream", "read", "open"]
#: Where an embed's token travels (a header on callbacks; in the URL where no header can be set).
EMBED_HEADER = "x-gridcc-embed"
EMBED_PAGE_PARAM = "token"
EMBED_STREAM_PARAM = "embed"


class EmbedCredentials(Protocol):
    def resolve(self, token: str) -> Principal:
        """The principal of an embed token (blocking SQL); raises EmbedRefused."""
        ...


#: The methods of a read route: nothing there changes anything (so no CSRF token is asked).
READ_METHODS = frozenset({"GET", "HEAD"})


class AccessGuard:
    """ASGI middleware enforcing access on pages, Dash callbacks and live streams."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        identity: Identity,
        directory: Callable[[], Directory],
        policies: CallbackPolicies,
        pages: Collection[str],
        admin_pages: Collection[str] = (),
        read_prefixes: Collection[str] = (),
        embed_pages: Collection[str] = (),
        embed: EmbedCredentials | None = None,
        embed_csp: Callable[[tuple[str, ...]], str] | None = None,
        audit: Audit | None = None,
        login_path: str = "/login",
        stream_path: str = "/live/stream",
        callback_path: str = "/_dash-update-component",
    ) -> None:
        self.app = app
        self.identity = identity
        self.directory = directory
        self.policies = policies
        self.pages = frozenset(pages)
        self.admin_pages = frozenset(admin_pages)
        # "/api/v1/cases" covers itself and what lies under it, not "/api/v1/cases-old".
        self.read_prefixes = tuple(p.rstrip("/") for p in read_prefixes)
        self.embed_pages = frozenset(embed_pages)
        self.embed = embed
        self.embed_csp = embed_csp
        self.audit = audit
        self.login_path = login_path
        self.stream_path = stream_path
        self.callback_path = callback_path
        self._refusals: OrderedDict[tuple[Any, ...], float] = OrderedDict()

    def kind(self, path: str) -> RequestKind:
        if path in self.admin_pages:
            return "admin_page"
        if path in self.pages:
            return "page"
        if path in self.embed_pages:
            return "embed_page"
        if path == self.callback_path:
            return "callback"
        if path == self.stream_path:
            return "stream"
        if any(path == p or path.startswith(p + "/") for p in self.read_prefixes):
            return "read"
        return "open"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no page uses one (Dash's websocket callbacks are off)
            await send({"type": "websocket.close", "code": 1008})
            return
        kind = self.kind(scope.get("path", "")) if scope["type"] == "http" else "open"
        headers = Headers(scope=scope) if kind != "open" else Headers()
        if kind == "read":
            if scope["method"] not in READ_METHODS:
                allow = {"Allow": ", ".join(sorted(READ_METHODS))}
                await JSONResponse({"detail": "Method Not Allowed"}, 405, allow)(
                    scope, receive, send
                )
                return
            # Another site's page may not make a signed-in reader's browser fetch a case or an
            # export (and learn from its size, timing or errors what it holds): only the app's
            # own pages (same-origin) and a typed URL or bookmark (none) read here.
            reason = cross_site(headers, scope.get("scheme", "http"), what="read this")
            if reason is not None:
                await JSONResponse({"detail": reason}, 403)(scope, receive, send)
                return
            if "x-api-key" in headers:  # the route authenticates the key (401/403 there)
                kind = "open"
        if kind == "open":
            await self.app(scope, receive, send)
            return
        token = self._embed_token(kind, scope, headers)
        if token is not None or kind == "embed_page":
            await self._as_embed(kind, token or "", scope, headers, receive, send)
            return
        cookies = cookie_parser(headers.get("cookie", ""))
        try:
            # Only a session or display cookie needs the database (in a thread); an anonymous
            # visitor is told apart at once (a render loop of a wall page pays no thread hop).
            if SESSION_COOKIE in cookies or DISPLAY_COOKIE in cookies:
                resolved = await asyncio.to_thread(self.identity.resolve, cookies)
            else:
                resolved = self.identity.resolve(cookies)
        except Exception as exc:  # the database is down: nobody can be told apart, so no one
            if unavailable(exc) is None:
                raise
            await unavailable_page(kind != "callback")(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else None
        try:
            if kind == "callback":
                access = await self._callback(scope, headers, cookies, resolved, client)
            else:
                access = self._reader(kind, scope, resolved, client)
        except AccessError as exc:
            await self._refuse(exc, kind, scope, resolved)(scope, receive, send)
            return
        token = set_access(access)
        try:
            if kind in ("page", "admin_page"):
                send = self._with_csrf_cookie(send, scope, access.principal, cookies)
            await self.app(scope, receive, send)
        finally:
            _ACCESS.reset(token)

    def _reader(
        self, kind: RequestKind, scope: Scope, resolved: Resolved, client: str | None
    ) -> Access:
        principal = resolved.principal
        if principal is None:
            raise Unauthenticated(
                "this display is disabled" if resolved.refused == "display" else "sign in first"
            )
        if kind == "admin_page" and not principal.may(Permission.ADMIN):
            raise Forbidden("only administrators may open this page")
        if kind == "read" and not principal.may(Permission.READ):
            raise Forbidden("your role may not read")
        if kind == "stream":  # the route resolves its own scope (404/403 there)
            return Access(principal, None, client)
        try:
            area = resolve_scope(self.directory(), scope_param(_query(scope)), principal)
        except NoHierarchy:  # nothing seeded yet: the page says so itself
            area = None
        return Access(principal, area, client)

    async def _callback(
        self,
        scope: Scope,
        headers: Headers,
        cookies: dict[str, str],
        resolved: Resolved,
        client: str | None,
    ) -> Access:
        body = scope.get(DASH_BODY)
        output = body.get("output") if isinstance(body, dict) else None
        policy = self.policies.of(output) if isinstance(output, str) else None
        if policy is None or not isinstance(body, dict):
            log.error("refused a callback with no access policy: %.200s", output)
            raise Forbidden("this callback has no access policy")
        principal = resolved.principal
        search = _search_of(body, policy.scope_from) if policy.scope_from else None
        code = scope_param(search or "")
        try:
            if (reason := cross_site(headers, scope.get("scheme", "http"))) is not None:
                raise Forbidden(reason)
            if principal is None:
                raise Unauthenticated()
            if not csrf_token_ok(principal, headers, cookies):
                raise Forbidden("missing or wrong CSRF token: reload the page")
            if not principal.may(policy.permission):
                raise Forbidden(f"your role may not {policy.permission.value}")
            area = None
            if policy.scope_from is not None:
                try:
                    area = resolve_scope(self.directory(), code, principal)
                except NoHierarchy:
                    area = None
        except AccessError as exc:
            # A refused action (a forged one, cross-site or without its token, included) is
            # audited; reads are not (a page of another area is a 403, not an incident).
            who = (principal.kind, principal.name) if principal else ("anonymous", "anonymous")
            if (
                policy.action is not None
                and self.audit is not None
                and self._worth_auditing((client, *who, policy.action, exc.reason))
            ):
                await self.audit(
                    principal,
                    policy.action,
                    "denied",
                    scope_code=code,
                    detail={"reason": exc.reason, "request": _action_detail(body)},
                    client=client,
                )
            raise
        return Access(principal, area, client)

    # ------------------------------------------------------------ embeds

    def _embed_token(self, kind: RequestKind, scope: Scope, headers: Headers) -> str | None:
        """The embed token a request carries where an embed's would be; None: not an embed's."""
        if kind == "callback":
            return headers.get(EMBED_HEADER)
        if kind in ("embed_page", "stream"):
            name = EMBED_PAGE_PARAM if kind == "embed_page" else EMBED_STREAM_PARAM
            values = parse_qs(_query(scope)).get(name)
            return values[0] if values else None
        return None

    async def _as_embed(
        self,
        kind: RequestKind,
        token: str,
        scope: Scope,
        headers: Headers,
        receive: Receive,
        send: Send,
    ) -> None:
        """Serve an embed's request on its token alone (no cookie is read)."""
        client = scope["client"][0] if scope.get("client") else None
        try:
            if self.embed is None or not token:
                raise EmbedRefused("malformed" if self.embed is not None else "disabled")
            try:
                principal = await asyncio.to_thread(self.embed.resolve, token)
            except EmbedRefused:
                raise
            except Exception as exc:  # the database is down
                if unavailable(exc) is None:
                    raise
                await unavailable_page(kind == "embed_page")(scope, receive, send)
                return
            if kind == "callback":
                access = self._embed_callback(scope, headers, principal, client)
            elif kind == "stream":  # the route resolves its scope within the token's
                access = Access(principal, None, client)
            else:
                code = scope_param(_query(scope))
                try:
                    area = resolve_scope(self.directory(), code, principal)
                except NoHierarchy:
                    area = None
                access = Access(principal, area, client)
        except AccessError as exc:
            if kind == "embed_page":
                reason = exc.reason if isinstance(exc, EmbedRefused) else "scope"
                await embed_refused_page(reason, exc.status_code)(scope, receive, send)
            else:
                await JSONResponse(
                    {"detail": f"embed refused: {exc.reason}", "reason": exc.reason},
                    exc.status_code,
                )(scope, receive, send)
            return
        reset = set_access(access)
        try:
            if kind == "embed_page":
                send = self._framed_by(send, principal.origins)
            await self.app(scope, receive, send)
        finally:
            _ACCESS.reset(reset)

    def _embed_callback(
        self, scope: Scope, headers: Headers, principal: Principal, client: str | None
    ) -> Access:
        body = scope.get(DASH_BODY)
        output = body.get("output") if isinstance(body, dict) else None
        policy = self.policies.of(output) if isinstance(output, str) else None
        if policy is None or not isinstance(body, dict) or not policy.embed:
            raise Forbidden("an embed may not call this")
        # The token travels in a header no other site's page can make a browser send (it would
        # need CORS), so no CSRF token is asked; still, only the embed page itself may call.
        if (reason := cross_site(headers, scope.get("scheme", "http"))) is not None:
            raise Forbidden(reason)
        if not principal.may(policy.permission):
            raise Forbidden(f"an embed may not {policy.permission.value}")
        area = None
        if policy.scope_from is not None:
            code = scope_param(_search_of(body, policy.scope_from) or "")
            try:
                area = resolve_scope(self.directory(), code, principal)
            except NoHierarchy:
                area = None
        return Access(principal, area, client)

    def _framed_by(self, send: Send, origins: tuple[str, ...]) -> Send:
        """The embed page may be framed by its grant's origins (and by no other), and is never
        kept by a cache (its URL holds the token)."""
        csp = self.embed_csp(origins) if self.embed_csp is not None else None

        async def framed(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                if csp is not None:
                    out["Content-Security-Policy"] = csp
                out["Cache-Control"] = "no-store"
            await send(message)

        return framed

    def _worth_auditing(self, key: tuple[Any, ...]) -> bool:
        """Whether a refusal is audited: the first of a client's refusals of the same kind in
        `REFUSAL_AUDIT_S` is, the rest are not (a script must not flood the append-only log)."""
        now = time.monotonic()
        last = self._refusals.get(key)
        if last is not None and now - last < REFUSAL_AUDIT_S:
            return False
        self._refusals[key] = now
        while len(self._refusals) > REFUSALS_KEPT:
            self._refusals.popitem(last=False)
        return True

    def _refuse(
        self, exc: AccessError, kind: RequestKind, scope: Scope, resolved: Resolved
    ) -> Response:
        principal = resolved.principal
        home = _home(scope, principal.scope) if principal else None
        if kind in ("page", "admin_page"):
            if resolved.refused == "display" and principal is None:
                return display_disabled_page()
            if isinstance(exc, Unauthenticated):
                target = scope["path"] + (f"?{_query(scope)}" if _query(scope) else "")
                response: Response = RedirectResponse(
                    f"{self.login_path}?next={quote(target, safe='')}", 303
                )
                if resolved.refused == "session":
                    response.delete_cookie(SESSION_COOKIE, path="/")
                return response
            if exc.status_code == 404:
                return no_such_area_page(home)
            return forbidden_page(home, exc.reason)
        return JSONResponse({"detail": exc.reason}, exc.status_code)

    def _with_csrf_cookie(
        self, send: Send, scope: Scope, principal: Principal, cookies: dict[str, str]
    ) -> Send:
        """A page sets the CSRF cookie its callbacks will echo, when it is missing or stale."""
        wanted = principal.csrf if principal.kind == "user" else cookies.get(CSRF_COOKIE)
        if wanted and cookies.get(CSRF_COOKIE) == wanted:
            return send
        value = wanted or new_csrf_secret()
        secure = scope.get("scheme") == "https"

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.append(
                    "set-cookie",
                    _cookie(CSRF_COOKIE, value, secure=secure, http_only=False, same_site="Strict"),
                )
            await send(message)

        return with_cookie


def _home(scope: Scope, own: str) -> str:
    """The same page of the principal's own area, in the language asked for."""
    lang = parse_qs(_query(scope)).get("lang", [])
    query = {"scope": own} | ({"lang": lang[0]} if lang and lang[0] in ("zh", "en") else {})
    return f"{scope['path']}?{urlencode(query)}"


def _query(scope: Scope) -> str:
    raw = scope.get("query_string", b"")
    return raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)


def _action_detail(body: dict[str, Any]) -> str:
    """The inputs of a refused action, for the audit log (bounded)."""
    inputs = [dep.get("value") for dep in body.get("inputs", []) if isinstance(dep, dict)]
    return json.dumps(inputs, ensure_ascii=False, default=str)[:500]
