"""The HTTP plumbing every route shares: `HEAD` answered wherever `GET` is (uptime checks), and the
API docs served from local files (command centres are offline)."""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect, sync_playwright

from app import create_app
from data_sources import db
from data_sources.seed.city import seed_city
from data_sources.settings import Settings

from .browser import CHROMIUM_ARGS, PageWatch, running_server
from .conftest import AS_OF, TZ

SCOPE = "530126"  # 石林, the smallest district: seeds in a moment


@pytest.fixture(scope="module")
def city_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=[SCOPE], days=1, cases_per_day=200)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def client(city_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(database_url=city_url))) as test_client:
        yield test_client


def get_paths(client: TestClient) -> list[str]:
    """What a monitor or a browser GETs: the pages, Dash's own routes, every script and style the
    index links to (Dash's component suites, assets/, vendor/), the docs, and every GET of the API
    (query parameters all optional) except the live stream, which has a test of its own."""
    index = client.get("/").text
    linked = re.findall(r'(?:src|href)="(/[^"]*)"', index)
    api = [
        path
        for path, operations in client.get("/openapi.json").json()["paths"].items()
        if "get" in operations and path != "/live/stream"
    ]
    pages = ["/", "/wall", f"/wall?scope={SCOPE}", f"/?scope={SCOPE}&lang=en", "/no/such/page"]
    dash = ["/_dash-layout", "/_dash-dependencies", "/_reload-hash"]
    ours = ["/healthz", "/openapi.json", "/api/docs", "/api/v1/events"]
    return [*pages, *dash, *ours, *linked, *api]


def test_head_answers_wherever_get_does_with_its_status_and_headers(client: TestClient) -> None:
    paths = get_paths(client)
    assert any(p.startswith("/_dash-component-suites/") for p in paths)
    assert any(p.startswith("/assets/") for p in paths)
    differ = {}
    for path in paths:
        get, head = client.get(path), client.head(path)
        if (head.status_code, head.headers) != (get.status_code, get.headers) or head.content:
            differ[path] = (get.status_code, head.status_code, len(head.content))
    assert differ == {}


def test_head_of_the_live_stream_answers_at_once_without_opening_a_stream(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = client.app.state.services.hub  # type: ignore[attr-defined]
    subscribed: list[int] = []
    subscribe = hub.subscribe

    def spy(node: int, *args: object, **kwargs: object) -> object:
        subscribed.append(node)
        return subscribe(node, *args, **kwargs)

    monkeypatch.setattr(hub, "subscribe", spy)
    response = client.head(f"/live/stream?scope={SCOPE}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache, no-transform"
    assert response.content == b""
    assert subscribed == []
    assert client.head(f"/live/stream?scope={SCOPE}").status_code == 200  # and again: nothing stuck


@pytest.fixture(scope="module")
def server(city_url: str) -> Iterator[str]:
    with running_server(city_url) as base:
        yield base


def _exchange(base: str, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One request to the real server; a GET reads only the headers (a stream never ends)."""
    url = urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        # The server's own framing of a body it is about to send, not the app's: none for HEAD;
        # and the CSRF cookie a page sets, new for each visitor.
        server_only = ("date", "transfer-encoding", "set-cookie")
        headers = {k.lower(): v for k, v in response.getheaders() if k.lower() not in server_only}
        body = response.read() if method == "HEAD" else b""
        return response.status, headers, body
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path", ["/", "/wall", f"/wall?scope={SCOPE}", f"/live/stream?scope={SCOPE}"]
)
def test_a_real_server_answers_head_as_it_answers_get(server: str, path: str) -> None:
    status, headers, _ = _exchange(server, "GET", path)
    assert status == 200
    assert _exchange(server, "HEAD", path) == (status, headers, b"")


def test_the_api_docs_page_names_only_local_urls(client: TestClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert re.findall(r"\w+://[^\s'\"]*", page.text) == []
    local = re.findall(r"(?:src|href|url)[=:]\s*['\"](/[^'\"]+)['\"]", page.text)
    assert len(local) >= 3  # the script, the style, the OpenAPI document (and the icon)
    for path in local:
        assert client.get(path).status_code == 200, path


@pytest.mark.browser
def test_swagger_ui_renders_offline_with_no_request_leaving_the_host(
    server: str, chromium_path: str, artifacts: Path
) -> None:
    """Under a host name, as deployed (Swagger UI treats 127.0.0.1 and localhost specially), with
    every name resolving to 127.0.0.1: a CDN URL anywhere in the page or its scripts shows as a
    request to another host, and no packet leaves the machine even before the fix."""
    port = urlsplit(server).port
    origin = f"http://gridcc.test:{port}"
    watch = PageWatch()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP * 127.0.0.1"],
        )
        try:
            page = watch.attach(chromium.new_page(viewport={"width": 1400, "height": 1000}))
            page.goto(f"{origin}/api/docs", wait_until="load")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text(
                "gridcc", timeout=15_000
            )
            expect(page.locator(".opblock-summary-path", has_text="/api/v1/events")).to_be_visible()
            expect(page.locator(".opblock-summary-path", has_text="/live/stream")).to_be_visible()
            page.screenshot(path=str(artifacts / "api-docs.png"), full_page=False)
            page.close()
        finally:
            chromium.close()
    assert [u for u in watch.requests if not u.startswith((f"{origin}/", "data:"))] == []
    assert any(u.endswith("/openapi.json") for u in watch.requests)
    assert watch.errors == []
