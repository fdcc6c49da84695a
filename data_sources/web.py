"""HTTP plumbing every route shares: `HEAD` answered wherever `GET` is, the API docs from local files.

FastAPI's routes (Dash's pages, component suites and layout among them) answer only the methods
they name, so `HEAD /` was 405 and uptime checks failed; `HeadAsGet` answers a `HEAD` as the same
`GET` would, without the body. FastAPI's own `/docs` loads Swagger UI from a CDN, a blank page on
an offline command centre; `serve_api_docs` serves it from the files `fastapi-offline` ships.
"""

from __future__ import annotations

import anyio
import anyio.lowlevel
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send


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
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{server.title} - API",
            swagger_js_url=f"{root}{assets_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{assets_url}/swagger-ui.css",
            swagger_favicon_url=f"{root}{assets_url}/favicon.png",
            swagger_ui_parameters=server.swagger_ui_parameters,
        )
