"""HTTP plumbing every route shares: `HEAD` answered wherever `GET` is, Dash's requests checked
before Dash sees them (`DashGuard`), 404 for unknown paths (`PagesOnly`), the API docs from local
files.

FastAPI's routes (Dash's pages, component suites and layout among them) answer only the methods
they name, so `HEAD /` was 405 and uptime checks failed; `HeadAsGet` answers a `HEAD` as the same
`GET` would, without the body. FastAPI's own `/docs` loads Swagger UI from a CDN, a blank page on
an offline command centre; `serve_api_docs` serves it from the files `fastapi-offline` ships.
"""

from __future__ import annotations

import html
import json
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from dash._utils import clean_property_name, split_callback_id
from dash.dependencies import Output, Wildcard
from dash.fingerprint import check_fingerprint
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from data_sources.access.headers import content_security_policy, inline_script_hashes
from data_sources.body import BadInput, asgi_body, parse_json

if TYPE_CHECKING:
    from dash import Dash


class HeadAsGet:
    """ASGI middleware: a `HEAD` runs as a `GET` and is cut off once the response's headers are out.

    The status and the headers (`Content-Length` included) are those of the `GET`; the body is
    never produced: the app is cancelled inside its first `send`, so a streaming response (the
    live stream) never starts its generator and no stream is opened. A route can therefore not
    answer `HEAD` differently from `GET`, which is what HTTP asks anyway.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        with anyio.CancelScope() as cut:

            async def headers_only(message: Message) -> None:
                if message["type"] != "http.response.start":
                    return
                await send(message)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                cut.cancel()
                await anyio.lowlevel.checkpoint()  # raises here: the app goes no further

            await self.app({**scope, "method": "GET"}, receive, headers_only)


# ---------------------------------------------------------------- Dash requests, checked first

#: A Dash callback request is an envelope of component ids and property values: the wall's and
#: the overview's are under 2 kB. Far more is not a page talking to its server, and reading and
#: parsing happen on the event loop before the render gate: 1 MB took 16 ms, 64 kB ~1 ms.
DASH_MAX_BODY_BYTES = 64_000
#: Where `DashGuard` leaves a callback request's parsed body in the ASGI scope, for the access
#: guard downstream (the body is read and parsed once).
DASH_BODY = "gridcc.dash_body"
_WILDCARDS = {f'["{w.value}"]': w for w in Wildcard}


def _dash_id(id_: str) -> Any:
    """A dependency's id as the callback map keeps it (a pattern's is JSON) → as Dash compares it."""
    if not id_.startswith("{"):
        return id_
    parsed = json.loads(id_)
    return {k: _WILDCARDS.get(json.dumps(v), v) for k, v in parsed.items()}


def _many(id_: str) -> bool:
    """Whether a dependency takes a list of components (an ALL or ALLSMALLER pattern)."""
    return '["ALL"]' in id_ or '["ALLSMALLER"]' in id_


def _not_a_dependency(item: Any, where: str) -> str | None:
    """Why `item` is not `{"id": <str or object>, "property": <str>, ...}`, or None."""
    if not isinstance(item, dict):
        return f"{where} is not an object"
    if not isinstance(item.get("id"), str | dict):
        return f"{where}.id is not a component id"
    if not isinstance(item.get("property"), str):
        return f"{where}.property is not a string"
    return None


def _dependencies_problem(items: Any, expected: list[dict[str, Any]], name: str) -> str | None:
    if not isinstance(items, list):
        return f"{name} is not a list"
    if len(items) != len(expected):
        return f"{name} has {len(items)} items; the callback takes {len(expected)}"
    for index, (item, dep) in enumerate(zip(items, expected, strict=True)):
        group = item if _many(dep["id"]) and isinstance(item, list) else [item]
        if _many(dep["id"]) != isinstance(item, list):
            return f"{name}[{index}] is not a {'list' if _many(dep['id']) else 'dependency'}"
        for member in group:
            if problem := _not_a_dependency(member, f"{name}[{index}]"):
                return problem
    return None


def _outputs_problem(outputs: Any, spec: str) -> str | None:
    """Why `outputs` are not those of the callback whose map key is `spec`, or None (Dash's own
    `validate_output_spec`, which raises a 500 where this says 400)."""
    expected = split_callback_id(spec)  # type: ignore[no-untyped-call]
    if isinstance(expected, list):
        if not isinstance(outputs, list) or len(outputs) != len(expected):
            return "outputs do not match the callback's"
        pairs = list(zip(expected, outputs, strict=True))
    else:
        pairs = [(expected, outputs)]
    for want, given in pairs:
        for item in given if isinstance(given, list) else [given]:
            if problem := _not_a_dependency(item, "outputs"):
                return problem
            mine = Output(_dash_id(want["id"]), clean_property_name(want["property"]))
            if Output(item["id"], clean_property_name(item["property"])) != mine:
                return "outputs do not match the callback's"
    return None


def callback_problem(body: Any, callbacks: dict[str, Any]) -> str | None:
    """Why `body` is not a request for one of `callbacks` (Dash's callback map), or None.

    Checks what Dash indexes before it runs the callback: `output` names a server callback,
    `outputs` match it, `inputs` and `state` are dependencies as many as it takes, and
    `changedPropIds` are strings. The values themselves are the callback's to judge.
    """
    if not isinstance(body, dict):
        return "body is not a JSON object"
    output = body.get("output")
    if not isinstance(output, str):
        return "output is not a string"
    callback = callbacks.get(output)
    if not isinstance(callback, dict) or "callback" not in callback:
        return f"no server callback has the output '{output[:100]}'"
    if not callback.get("no_output") and (problem := _outputs_problem(body.get("outputs"), output)):
        return problem
    for name in ("inputs", "state"):
        given = body.get(name, [] if name == "state" else None)
        if problem := _dependencies_problem(given, callback[name], name):
            return problem
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "changedPropIds is not a list of strings"
    return None


class DashGuard:
    """ASGI middleware: a request Dash would fail on (a 500) is refused with a 4xx and a reason.

    Dash's middleware reads every JSON body sent to its paths whole, and its callback route
    indexes the body without looking: a string for `data`, a missing key, a wrong count of
    inputs were 500s. Here the body of every request to Dash's paths is read within
    `DASH_MAX_BODY_BYTES` and `body.MAX_DEPTH` (413 / 400), a callback request must be JSON
    (415) shaped as `callback_problem` checks (400), and a component-suite file Dash has not
    registered is a 404. The body read is then handed on to Dash unchanged.
    """

    def __init__(self, app: ASGIApp, dash_app: Dash, max_body: int = DASH_MAX_BODY_BYTES) -> None:
        self.app = app
        self.dash_app = dash_app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix: str = self.dash_app.config.routes_pathname_prefix
        path: str = scope.get("path", "")
        dash_path = path.startswith(prefix + "_dash-") or path in (prefix, prefix.rstrip("/"))
        if scope["type"] != "http" or not dash_path:  # (lifespan and websockets pass as they are)
            await self.app(scope, receive, send)
            return
        try:
            if path.startswith(prefix + "_dash-component-suites/"):
                self._check_suite_file(path.removeprefix(prefix + "_dash-component-suites/"))
            body = await asgi_body(scope, receive, self.max_body)
            if path == prefix + "_dash-update-component" and scope["method"] == "POST":
                scope[DASH_BODY] = self._check_callback(Headers(scope=scope), body)
        except BadInput as exc:
            await JSONResponse({"detail": exc.reason}, exc.status_code)(scope, receive, send)
            return
        except ClientDisconnect:
            return
        await self.app(scope, _replay(body, receive), send)

    def _check_suite_file(self, rest: str) -> None:
        package, _, fingerprinted = rest.partition("/")
        file, _ = check_fingerprint(fingerprinted)  # type: ignore[no-untyped-call]
        if file not in self.dash_app.registered_paths.get(package, ()):
            raise BadInput(404, "Not Found")

    def _check_callback(self, headers: Headers, body: bytes) -> Any:
        """The callback request's parsed body, checked."""
        if headers.get("content-type", "").partition(";")[0].strip() != "application/json":
            raise BadInput(415, "a callback request is JSON (Content-Type: application/json)")
        parsed = parse_json(body)
        problem = callback_problem(parsed, self.dash_app.callback_map)
        if problem is not None:
            raise BadInput(400, f"not a Dash callback request: {problem}")
        return parsed


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for an app downstream: the body already read, then the connection's own."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# ---------------------------------------------------------------- unknown paths

NOT_FOUND_PAGE = """<!DOCTYPE html>
<html lang="zh"><head><meta charset="utf-8"><title>页面不存在 · Page not found</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; margin: 4em auto; max-width: 36em; text-align: center">
<h1>页面不存在 / Page not found</h1>
<p>没有这个地址。 There is no page at this address.</p>
<p><a href="{root}/">返回总览 / Back to the overview</a></p>
</body></html>
"""


def _leaves(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """`routes` with FastAPI's included routers opened (each route with its own methods)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if callable(contexts):
            yield from contexts()
        else:
            yield route


def _catch_all(route: BaseRoute) -> bool:
    """Dash's route answering every GET with its index page (added at startup)."""
    return getattr(route, "path", None) in ("{path:path}", "/{path:path}")


class PagesOnly:
    """ASGI middleware: Dash's catch-all serves only the pages; any other unknown path is a 404.

    Dash answers every GET that no route takes with its index page (200), so a typo, a scanner
    or `/api/v2/…` got HTML and a "page" the router then drew as the overview. A request is
    looked up as the router would (first full match, else a method-only match); when only the
    catch-all would take it, the page paths go on and everything else is refused: 404 with a
    small page for a browser (Accept: text/html) and `{"detail": "Not Found"}` for the rest,
    405 when another route has the path under another method. Every real route, whoever adds
    it and whenever, keeps answering: only the page paths are listed here.
    """

    def __init__(self, app: ASGIApp, pages: Collection[str]) -> None:
        self.app = app
        self.pages = frozenset(pages)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.pages:
            await self.app(scope, receive, send)
            return
        partial, allowed = False, set[str]()
        probe = dict(scope)  # matching may note things in the scope: not in the request's own
        for route in _leaves(scope["app"].router.routes):
            if _catch_all(route):
                continue
            match, _ = route.matches(probe)
            if match is Match.FULL:
                await self.app(scope, receive, send)
                return
            if match is Match.PARTIAL:
                partial = True
                allowed |= getattr(route, "methods", None) or set()
        response: Response
        if partial:
            headers = {"Allow": ", ".join(sorted(allowed))} if allowed else {}
            response = JSONResponse({"detail": "Method Not Allowed"}, 405, headers=headers)
        elif "text/html" in Headers(scope=scope).get("accept", ""):
            root = str(scope.get("root_path", "")).rstrip("/")
            response = HTMLResponse(NOT_FOUND_PAGE.replace("{root}", html.escape(root)), 404)
        else:
            response = JSONResponse({"detail": "Not Found"}, 404)
        await response(scope, receive, send)


def serve_api_docs(server: FastAPI, docs_url: str, assets_url: str = "/vendor/swagger-ui") -> None:
    """Swagger UI at `docs_url`, its script, style and icon from `assets_url`: never a CDN.

    Create `server` with `docs_url=None` so that FastAPI's CDN page is not registered as well.
    """
    openapi_url = server.openapi_url
    if openapi_url is None:
        raise ValueError("API docs need the OpenAPI document: openapi_url is None")
    server.mount(
        assets_url, StaticFiles(packages=[("fastapi_offline", "static")]), name="swagger-ui"
    )

    @server.get(docs_url, include_in_schema=False)
    async def api_docs(request: Request) -> HTMLResponse:
        root: str = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{server.title} - API",
            swagger_js_url=f"{root}{assets_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets_url}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets_url}/favicon.png",
            swagger_ui_parameters=server.swagger_ui_parameters,
        )
        # Its one inline script (which starts Swagger UI) runs by its hash, nothing else inline.
        hashes = inline_script_hashes(bytes(page.body).decode())
        page.headers["Content-Security-Policy"] = content_security_policy(hashes)
        return page


# ---------------------------------------------------------------- errors that must not be 500s


def _printable(value: object) -> str:
    """`value` as text that encodes (a lone surrogate from a client's JSON becomes `\\ud800`)."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


async def validation_problem(_request: Request, exc: Exception) -> JSONResponse:
    """422 for a body or parameter FastAPI checked, saying where and why without echoing the
    input: FastAPI's own answer repeats it, and a lone surrogate or a NaN in it made the answer
    itself fail (a 500 for `{"actor": "\\ud800"}`)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {
            "loc": [p if isinstance(p, int) else _printable(p) for p in error.get("loc", ())],
            "msg": _printable(error.get("msg", "")),
            "type": _printable(error.get("type", "")),
        }
        for error in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def client_gone(_request: Request, _exc: Exception) -> Response:
    """The client hung up before its body was in: nothing to answer, nothing to log as an error."""
    return Response(status_code=400)
