"""Issue 10, acceptance 2 and 3 in a real browser, on a server that requires a login.

2. An operator signs in and acknowledges an alarm from the wall; the admin's audit page shows it
   under the operator's name. A leader sees no action buttons, and the same request forged by
   hand from the leader's page is refused and audited.
3. A page of another site (`localhost`, another port; gridcc is on `127.0.0.1`) frames the wall
   and posts an action to it: the frame is blocked by the CSP (`frame-ancestors 'self'`) and the
   action is refused.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from data_sources import db
from data_sources.schema import AlarmRow, AuditRow, CameraRow, NodeRow
from data_sources.seed.city import seed_city
from layouts import ids

from .browser import KEY, PageWatch, post_event, running_server, sign_in_page
from .conftest import AS_OF, CITY, PASSWORD, TZ, add_account

pytestmark = pytest.mark.browser

STREET = "530103004"
WALL = f"/wall?scope={STREET}"


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('access_browser') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=4, as_of=AS_OF, tz=TZ, districts=["530103"], days=2, cases_per_day=600)
    engine.dispose()
    add_account(url, "operator-a", "operator", STREET)
    add_account(url, "leader-a", "leader", STREET)
    add_account(url, "admin", "admin", CITY)
    yield url


@pytest.fixture(scope="module")
def server(city: str) -> Iterator[str]:
    env = {"GRIDCC_API_KEYS": json.dumps({"tests": KEY}), "GRIDCC_ANONYMOUS_SCOPE": ""}
    with running_server(city, **env) as base:
        yield base


def camera_of(city: str, index: int) -> Any:
    """The street's `index`th camera (alarms are one per camera and type while active)."""
    engine = db.make_engine(city)
    with Session(engine) as session:
        camera = session.execute(
            select(CameraRow.code, CameraRow.name, NodeRow.code.label("node"))
            .join(NodeRow, NodeRow.id == CameraRow.building_id)
            .where(NodeRow.code.startswith(STREET))
            .order_by(CameraRow.code)
            .offset(index)
            .limit(1)
        ).one()
    engine.dispose()
    return camera


def shown_name(camera: Any) -> str:
    """A camera's name as the ticker shows it (under its community, without the community)."""
    return str(camera.name).split("社区")[-1]


#: The test alarms, each on a camera of its own.
CAMERA_OF = {"acc-fire-1": 0, "acc-fire-2": 1, "acc-csrf-1": 2}


def raise_alarm(base: str, city: str, alarm_id: str) -> None:
    camera = camera_of(city, CAMERA_OF[alarm_id])
    payload = {"alarm_id": alarm_id, "camera": camera.code, "type": "fire", "severity": 4}
    now = datetime.now(UTC).isoformat()
    event = {"id": f"raise-{alarm_id}", "kind": "alarm.raised", "ts": now, "node": camera.node}
    post_event(base, event | {"payload": payload})


def alarm_row(city: str, alarm_id: str) -> AlarmRow | None:
    engine = db.make_engine(city)
    with Session(engine) as session:
        row = session.get(AlarmRow, alarm_id)
    engine.dispose()
    return row


def audit_rows(city: str, **where: str) -> list[AuditRow]:
    engine = db.make_engine(city)
    with Session(engine) as session:
        query = select(AuditRow).order_by(AuditRow.id)
        for column, value in where.items():
            query = query.where(getattr(AuditRow, column) == value)
        rows = list(session.scalars(query))
    engine.dispose()
    return rows


def open_wall(page: Page) -> None:
    expect(page.locator(f"#{ids.Wall.LIVE}")).to_contain_text("实时", timeout=15_000)


def test_an_operator_acts_a_leader_cannot_and_the_audit_page_shows_both(
    server: str, city: str, browser: Browser
) -> None:
    watch = PageWatch()
    operator = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = watch.attach(operator.new_page())
    sign_in_page(page, server, "operator-a", PASSWORD, then=WALL)
    open_wall(page)
    raise_alarm(server, city, "acc-fire-1")
    name = shown_name(camera_of(city, CAMERA_OF["acc-fire-1"]))
    item = page.locator(f"#{ids.Wall.ALARM_LIST} .wall-alarm-item", has_text=name).first
    expect(item).to_contain_text("告警中", timeout=5_000)
    item.locator(".wall-act-ack").click()
    expect(item).to_contain_text("已确认", timeout=5_000)
    row = alarm_row(city, "acc-fire-1")
    assert row is not None and row.acknowledged_by == "operator-a"
    assert watch.errors == []
    operator.close()

    # A leader of the same street: the wall without buttons; a forged action is refused.
    watch = PageWatch()
    leader = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = watch.attach(leader.new_page())
    sign_in_page(page, server, "leader-a", PASSWORD, then=WALL)
    open_wall(page)
    raise_alarm(server, city, "acc-fire-2")
    name = shown_name(camera_of(city, CAMERA_OF["acc-fire-2"]))
    item = page.locator(f"#{ids.Wall.ALARM_LIST} .wall-alarm-item", has_text=name).first
    expect(item).to_contain_text("告警中", timeout=5_000)
    expect(page.locator(f"#{ids.Wall.ALARM_LIST} .wall-act")).to_have_count(0)
    # What the button would send, sent by hand from the leader's own page.
    status = page.evaluate(FORGE, {"alarm": "acc-fire-2", "search": f"?scope={STREET}"})
    assert status == 403
    row = alarm_row(city, "acc-fire-2")
    assert row is not None and row.status == "active" and row.acknowledged_by is None
    assert [e for e in watch.errors if "403" not in e] == []  # the refusal is all it says
    leader.close()

    # The admin's audit page: the operator's acknowledgement and the leader's refusal.
    admin = browser.new_context(viewport={"width": 1280, "height": 800})
    watch = PageWatch()
    page = watch.attach(admin.new_page())
    sign_in_page(page, server, "admin", PASSWORD, then="/admin")
    page.get_by_role("tab", name="审计日志").click()
    body = page.locator(f"#{ids.Admin.AUDIT_BODY}")
    acted = body.locator("tr", has_text="operator-a").filter(has_text="alarm.acknowledge")
    expect(acted.first).to_contain_text("acc-fire-1", timeout=10_000)
    refused = body.locator("tr", has_text="leader-a").filter(has_text="alarm.acknowledge")
    expect(refused.first).to_contain_text("拒绝")  # denied
    expect(refused.first).to_contain_text("acc-fire-2")
    assert watch.errors == []
    admin.close()
    assert [r.actor for r in audit_rows(city, action="alarm.acknowledge", outcome="ok")] == [
        "operator-a"
    ]


#: A wall action as the wall's own script would post it, by hand; resolves to the status.
FORGE = """async ({alarm, search}) => {
    const cookie = document.cookie.split("; ").find(c => c.startsWith("_csrf_token="));
    const body = {
        output: "wall-action-result.children",
        outputs: {id: "wall-action-result", property: "children"},
        inputs: [{id: "wall-alarm-action", property: "data",
                  value: {alarm: alarm, case: true, nonce: "forged"}}],
        state: [{id: "wall-url", property: "search", value: search}],
        changedPropIds: ["wall-alarm-action.data"],
    };
    const response = await fetch("/_dash-update-component", {
        method: "POST",
        headers: {"Content-Type": "application/json",
                  "X-CSRFToken": cookie ? cookie.split("=")[1] : ""},
        body: JSON.stringify(body),
    });
    return response.status;
}"""


# ---------------------------------------------------------------- another site


class _Portal(BaseHTTPRequestHandler):
    """A page of another site: frames the wall, and posts an action to it as a CSRF would."""

    target = ""

    def do_GET(self) -> None:
        page = PORTAL.replace("{target}", self.target).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *_args: Any) -> None:
        pass


PORTAL = """<!DOCTYPE html><html><body>
<h1>portal</h1>
<iframe id="framed" src="{target}/wall?scope=530103004" width="960" height="540"></iframe>
<script>
async function forge(alarm) {
  const body = JSON.stringify({
    output: "wall-action-result.children",
    outputs: {id: "wall-action-result", property: "children"},
    inputs: [{id: "wall-alarm-action", property: "data",
              value: {alarm: alarm, case: true, nonce: "csrf"}}],
    state: [{id: "wall-url", property: "search", value: "?scope=530103004"}],
    changedPropIds: ["wall-alarm-action.data"],
  });
  // A "simple" request (no preflight) with the browser's cookies, as a CSRF attack sends it.
  await fetch("{target}/_dash-update-component", {method: "POST", mode: "no-cors",
    credentials: "include", headers: {"Content-Type": "text/plain"}, body: body});
  // And with a JSON type: the preflight is not answered, so the browser never sends it.
  try {
    await fetch("{target}/_dash-update-component", {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json"}, body: body});
  } catch (e) {}
  return "sent";
}
</script></body></html>"""


@pytest.fixture(scope="module")
def portal(server: str) -> Iterator[str]:
    handler = type("Portal", (_Portal,), {"target": server})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{httpd.server_address[1]}"  # another site than 127.0.0.1
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_another_site_can_neither_frame_the_wall_nor_act_through_it(
    server: str, city: str, portal: str, browser: Browser
) -> None:
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    # The operator is signed in in this browser: its cookies exist for 127.0.0.1.
    sign_in_page(context.new_page(), server, "operator-a", PASSWORD, then=WALL)
    raise_alarm(server, city, "acc-csrf-1")
    watch = PageWatch()
    page = watch.attach(context.new_page())
    page.goto(portal, wait_until="load")
    assert page.evaluate("forge('acc-csrf-1')") == "sent"
    # Framing: refused by the CSP, so the frame holds no gridcc page (Chromium shows its error).
    frame = page.frame_locator("#framed")
    expect(frame.locator(f"#{ids.Wall.CANVAS}")).to_have_count(0)
    page.wait_for_timeout(1_000)
    assert any("frame-ancestors" in e or "Refused to frame" in e for e in watch.errors), (
        watch.errors
    )
    # The forged action changed nothing, and the real operator can still act on the alarm.
    row = alarm_row(city, "acc-csrf-1")
    assert row is not None and row.status == "active" and row.acknowledged_by is None
    wall = context.new_page()
    wall.goto(f"{server}{WALL}", wait_until="load")
    open_wall(wall)
    name = shown_name(camera_of(city, CAMERA_OF["acc-csrf-1"]))
    item = wall.locator(f"#{ids.Wall.ALARM_LIST} .wall-alarm-item", has_text=name).first
    item.locator(".wall-act-ack").click()
    expect(item).to_contain_text("已确认", timeout=5_000)
    context.close()


def test_a_leader_signs_out_from_the_overview(server: str, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    watch = PageWatch()
    page = watch.attach(context.new_page())
    sign_in_page(page, server, "leader-a", PASSWORD, then=f"/?scope={STREET}&lang=en")
    account = page.locator(f"#{ids.Overview.ACCOUNT}")
    expect(account).to_contain_text("leader-a", timeout=15_000)
    expect(account.get_by_text("Administration")).to_have_count(0)  # a leader's: no admin link
    account.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server}/login?lang=en")
    page.goto(f"{server}/?scope={STREET}", wait_until="load")
    assert page.url.startswith(f"{server}/login?next=")  # signed out for good
    assert watch.errors == []
    context.close()
