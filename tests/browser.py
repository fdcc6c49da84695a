"""Helpers for browser tests: a real uvicorn server in a subprocess and a headless Chromium."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`uvicorn app:create_app --factory` on a fixed 127.0.0.1 port, stopped and started at will."""

    def __init__(self, database_url: str, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "GRIDCC_DATABASE_URL": database_url, **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--timeout-graceful-shutdown",
                "2",
            ],
            cwd=ROOT,
            env=self.env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """As a deploy stops it: SIGTERM, open streams and all."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def running_server(database_url: str, **env: str) -> Iterator[str]:
    """`uvicorn app:create_app --factory` on a free 127.0.0.1 port; yields its base URL."""
    server = Server(database_url, **env)
    server.start()
    try:
        yield server.base
    finally:
        server.stop()


def launch(playwright: Playwright, executable: str) -> Browser:
    return playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)


@dataclass
class PageWatch:
    """What a page did that a test should assert on: console errors and off-host requests."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Page:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.errors.append(message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("request", lambda request: self.requests.append(request.url))
        return page

    def off_host(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(("http://127.0.0.1", "data:"))]


#: The ingest key the browser tests' servers accept (GRIDCC_API_KEYS={"tests": KEY}).
KEY = "browser-test-key"


def post_event(base: str, event: dict[str, object]) -> None:
    """POST one event to a running server's ingest API; it must be accepted (202)."""
    request = urllib.request.Request(
        f"{base}/api/v1/events",
        data=json.dumps(event).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "X-API-Key": KEY},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202


def sign_in_page(page: Page, base: str, name: str, password: str, then: str = "/") -> None:
    """Sign in through the login form, as a person does, and land on `then`."""
    page.goto(f"{base}/login?next={urllib.parse.quote(then, safe='')}", wait_until="load")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{then}", wait_until="load")
