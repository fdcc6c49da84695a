"""Issue 12's acceptance in a real browser: a portal of another site (`localhost` on one port;
gridcc is on `127.0.0.1` on another) embeds panels with signed tokens, in Chromium with its
default third-party-cookie behaviour (and no cookie is involved at all).

1. Two embeds with one token each render, and update live after an event is posted.
2. A short-lived token is replaced through `postMessage`: a counter set in the iframe's window
   survives (no reload) and updates keep flowing; without a refresh the panel turns to "link
   expired" and its stream closes.
3. Expired, tampered and other-scope tokens, and a token used against `/api/v1/…`, another scope's
   stream or `/wall`, are refused; a portal on an origin not allowed cannot frame an embed.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx2
import pytest
from playwright.sync_api import Browser, Frame, Page, expect
from sqlalchemy.orm import Session

from data_sources import db
from data_sources.embed import grants
from data_sources.embed.panels import PANELS
from data_sources.embed.tokens import EmbedClaims, TokenLimits, mint
from data_sources.seed.city import seed_city
from layouts import ids

from .browser import KEY, PageWatch, post_event, running_server
from .conftest import AS_OF, TZ
from .test_bad_input import envelope

pytestmark = pytest.mark.browser

STREET = "530103004"
OTHER_STREET = "530103001"
SECRET = "embed-browser-test-secret-of-32-characters-or-more"
ALL_PANELS = PANELS
#: Grant ids by name, once the city is made ("all": every panel of the street).
GRANTS: dict[str, int] = {}


# ---------------------------------------------------------------- the portal, another site


class _Portal(BaseHTTPRequestHandler):
    pages: dict[str, str] = {}  # path → HTML

    def do_GET(self) -> None:
        page = self.pages.get(self.path.split("?")[0], "").encode()
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *_args: Any) -> None:
        pass


def _serve_portal() -> tuple[ThreadingHTTPServer, str]:
    handler = type("Portal", (_Portal,), {"pages": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://localhost:{httpd.server_address[1]}"  # another site than 127.0.0.1


#: The portal's page: frames, the messages it heard, and the tokens it answers a refresh with.
PORTAL = """<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body style="margin:0">
{frames}
<script>
window.heard = [];
window.nextTokens = {{}};
addEventListener("message", function (event) {{
  if (event.origin !== "{gridcc}") return;
  var frame = Array.prototype.find.call(document.querySelectorAll("iframe"), function (f) {{
    return f.contentWindow === event.source;
  }});
  var name = frame ? frame.id : "?";
  window.heard.push({{frame: name, data: event.data}});
  if (event.data && event.data.type === "gridcc:token-expiring" && window.nextTokens[name]) {{
    event.source.postMessage({{type: "gridcc:token", token: window.nextTokens[name]}}, "{gridcc}");
  }}
}});
</script></body></html>"""


def portal_page(gridcc: str, frames: dict[str, str], size: tuple[int, int] = (800, 450)) -> str:
    tags = "\n".join(
        f'<iframe id="{name}" src="{gridcc}{src}" width="{size[0]}" height="{size[1]}"></iframe>'
        for name, src in frames.items()
    )
    return PORTAL.format(frames=tags, gridcc=gridcc)


# ---------------------------------------------------------------- gridcc with grants


@pytest.fixture(scope="module")
def portals() -> Iterator[tuple[type[_Portal], str, type[_Portal], str]]:
    allowed, allowed_url = _serve_portal()
    foreign, foreign_url = _serve_portal()
    try:
        yield (
            allowed.RequestHandlerClass,  # type: ignore[misc]
            allowed_url,
            foreign.RequestHandlerClass,  # type: ignore[misc]
            foreign_url,
        )
    finally:
        for httpd in (allowed, foreign):
            httpd.shutdown()
            httpd.server_close()


@pytest.fixture(scope="module")
def city(
    tmp_path_factory: pytest.TempPathFactory, portals: tuple[Any, str, Any, str]
) -> Iterator[tuple[str, int, bytes]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('embed_browser') / 'city.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    seed_city(engine, seed=5, as_of=AS_OF, tz=TZ, districts=["530103"], days=2, cases_per_day=600)
    with Session(engine) as session, session.begin():

        def grant_of(name: str, panels: str) -> grants.GrantInfo:
            return grants.add_grant(
                session=session,
                name=name,
                scope_code=STREET,
                panels=panels,
                origins=[portals[1]],
                max_ttl_s=3600,
                created_by="tests",
                now=datetime.now(UTC).replace(tzinfo=None),
                limits=TokenLimits(),
            )

        grant = grant_of("portal", "kpis,feed,map,trend")
        every = grant_of("all-panels", ",".join(ALL_PANELS))
        secret = grants.signing_secret(session=session, configured=SECRET)
    engine.dispose()
    GRANTS["all"] = every.id
    yield url, grant.id, secret


@pytest.fixture(scope="module")
def server(city: tuple[str, int, bytes]) -> Iterator[str]:
    env = {
        "GRIDCC_API_KEYS": json.dumps({"tests": KEY}),
        "GRIDCC_ANONYMOUS_SCOPE": "",
        "GRIDCC_EMBED_SECRET": SECRET,
    }
    with running_server(city[0], **env) as base:
        yield base


def token(
    city: tuple[str, int, bytes],
    *,
    ttl_s: float = 600,
    panels: tuple[str, ...] = ("kpis",),
    scope: str = STREET,
    grant: int | None = None,
    lang: Literal["zh", "en"] = "zh",
) -> str:
    now = int(time.time())
    exp = int(now + ttl_s)
    claims = EmbedClaims(
        grant=city[1] if grant is None else grant,
        scope=scope,
        panels=panels,
        lang=lang,
        exp=exp,
        iat=min(now, exp - 1),
    )
    return mint(city[2], claims)


def post_case(base: str, event_id: str, title: str) -> None:
    event = {
        "id": event_id,
        "kind": "case.reported",
        "ts": datetime.now(UTC).isoformat(),
        "node": BUILDING,
        "payload": {
            "case_id": f"c-{event_id}",
            "channel": "hotline_12345",
            "category": "noise",
            "title": title,
            "lon": 102.75,
            "lat": 25.07,
            "reporter": "市民",
        },
    }
    post_event(base, event)


#: A building of the street (seed_city's codes: street + community + grid + building).
BUILDING = ""


@pytest.fixture(scope="module", autouse=True)
def building(city: tuple[str, int, bytes]) -> None:
    from sqlalchemy import select

    from data_sources.schema import NodeRow

    engine = db.make_engine(city[0])
    with Session(engine) as session:
        code = session.scalars(
            select(NodeRow.code)
            .where(NodeRow.level == "building", NodeRow.code.startswith(STREET))
            .order_by(NodeRow.code)
        ).first()
    engine.dispose()
    global BUILDING
    BUILDING = code or ""


def frame_of(page: Page, name: str) -> Frame:
    handle = page.locator(f"#{name}").element_handle()
    assert handle is not None
    frame = handle.content_frame()
    assert frame is not None
    return frame


def heard(page: Page, frame: str, kind: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(
        "([f, k]) => window.heard.filter(m => m.frame === f && m.data && m.data.type === k)"
        ".map(m => m.data)",
        [frame, kind],
    )
    return found


def open_count(frame: Frame) -> int:
    text = frame.locator(f"#{ids.wall_kpi('open')}").inner_text(timeout=15_000)
    return int(text.replace(",", ""))


# ---------------------------------------------------------------- 1. two embeds, live


def test_two_embeds_of_another_site_render_and_update_live(
    server: str, city: tuple[str, int, bytes], portals: tuple[Any, str, Any, str], browser: Browser
) -> None:
    handler, portal_url, _, _ = portals
    handler.pages["/two"] = portal_page(
        server,
        {
            "kpis": f"/embed?token={token(city, panels=('kpis',))}",
            # The token's language, when the URL names none.
            "feed": f"/embed?token={token(city, panels=('feed',), lang='en')}",
        },
    )
    context = browser.new_context(viewport={"width": 1700, "height": 600})
    watch = PageWatch()
    page = watch.attach(context.new_page())
    cookies: list[str] = []
    page.on(
        "request",
        lambda r: (
            cookies.append(r.url) if r.url.startswith(server) and "cookie" in r.headers else None
        ),
    )
    page.goto(f"{portal_url}/two", wait_until="load")
    kpis, feed = frame_of(page, "kpis"), frame_of(page, "feed")
    expect(kpis.locator(f"#{ids.wall_kpi('open')}")).to_be_visible(timeout=20_000)
    expect(feed.locator(f"#{ids.Wall.FEED_LIST}")).to_be_visible(timeout=20_000)
    # In the token's language (English), the URL naming none.
    expect(feed.locator(f"#{ids.Wall.FEED_LIST}")).to_have_attribute("data-empty", "No cases yet")
    # Each shows its own panel only.
    expect(kpis.locator(f"#{ids.Wall.FEED_LIST}")).to_have_count(0)
    before = open_count(kpis)

    for frame in (kpis, feed):  # both live before the case is posted
        frame.wait_for_function(
            "() => document.documentElement.getAttribute('data-wall-state') === 'live'",
            timeout=20_000,
        )
    post_case(server, "embed-live-1", "嵌入测试：井盖缺失")
    expect(feed.locator(f"#{ids.Wall.FEED_LIST}")).to_contain_text(
        "嵌入测试：井盖缺失", timeout=5_000
    )
    expect(kpis.locator(f"#{ids.wall_kpi('open')}")).to_have_text(f"{before + 1:,}", timeout=5_000)
    assert cookies == []  # the token is the only credential: no cookie went to gridcc
    assert heard(page, "kpis", "gridcc:ready") and heard(page, "feed", "gridcc:ready")
    assert watch.errors == [], watch.errors
    context.close()


# ---------------------------------------------------------------- 2. refreshed by postMessage


def test_a_token_replaced_by_message_keeps_the_panel_and_one_not_replaced_expires(
    server: str, city: tuple[str, int, bytes], portals: tuple[Any, str, Any, str], browser: Browser
) -> None:
    handler, portal_url, _, _ = portals
    short_kept, short_lapsed = token(city, ttl_s=15), token(city, ttl_s=15, panels=("kpis", "feed"))
    handler.pages["/refresh"] = portal_page(
        server,
        {"kept": f"/embed?token={short_kept}", "lapsed": f"/embed?token={short_lapsed}"},
    )
    context = browser.new_context(viewport={"width": 1700, "height": 600})
    page = context.new_page()
    opened: list[tuple[float, str]] = []
    ended: list[str] = []
    page.on(
        "request",
        lambda r: opened.append((time.monotonic(), r.url)) if "/live/stream" in r.url else None,
    )
    for done in ("requestfinished", "requestfailed"):  # ended by the server, or closed by the page
        page.on(done, lambda r: ended.append(r.url) if "/live/stream" in r.url else None)
    page.goto(f"{portal_url}/refresh", wait_until="load")
    # Only "kept" gets a new token when it asks.
    page.evaluate("t => { window.nextTokens.kept = t; }", token(city, ttl_s=600))
    kept, lapsed = frame_of(page, "kept"), frame_of(page, "lapsed")
    expect(kept.locator(f"#{ids.wall_kpi('open')}")).to_be_visible(timeout=20_000)
    expect(lapsed.locator(f"#{ids.wall_kpi('open')}")).to_be_visible(timeout=20_000)
    kept.evaluate("window.portalCounter = 42")

    page.wait_for_timeout(19_000)  # past both tokens' end
    assert heard(page, "kept", "gridcc:token-expiring")
    assert kept.evaluate("window.portalCounter") == 42  # not reloaded
    before = open_count(kept)
    post_case(server, "embed-refresh-1", "嵌入测试：令牌续期")
    expect(kept.locator(f"#{ids.wall_kpi('open')}")).to_have_text(f"{before + 1:,}", timeout=5_000)

    expect(lapsed.locator(".embed-expired")).to_be_visible(timeout=5_000)
    assert lapsed.evaluate("window.gridccEmbedToken()") is None
    assert any(m.get("state") == "expired" for m in heard(page, "lapsed", "gridcc:state"))
    # Its stream ended, and no other opened with the ended token.
    assert any(short_lapsed in url for url in ended)
    gone = time.monotonic()
    page.wait_for_timeout(3_000)
    assert [u for t, u in opened if t > gone and short_lapsed in u] == []
    context.close()


# ---------------------------------------------------------------- 3. refusals


def _status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_tokens_that_do_not_hold_and_tokens_used_elsewhere_are_refused(
    server: str, city: tuple[str, int, bytes], portals: tuple[Any, str, Any, str], browser: Browser
) -> None:
    good = token(city)
    expired = token(city, ttl_s=-120)
    tampered = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    other_scope = token(city, scope=OTHER_STREET)
    page = browser.new_page()
    for bad in (expired, tampered, other_scope, "not-a-token"):
        response = page.goto(f"{server}/embed?token={bad}", wait_until="load")
        assert response is not None and response.status in (401, 403), bad
        expect(page.locator("main")).to_contain_text("链接已过期")
        assert "登录" not in page.content()  # never a login page
    page.close()
    # The token is the embed's credential, and the embed page's only.
    assert _status(f"{server}/api/v1/cases/c-1", {"X-Gridcc-Embed": good}) == 401
    assert (
        _status(f"{server}/api/v1/export/cases.csv?scope={STREET}", {"X-Gridcc-Embed": good}) == 401
    )
    assert _status(f"{server}/live/stream?scope={OTHER_STREET}&embed={good}") == 403
    assert _status(f"{server}/live/stream?scope={STREET}&embed={tampered}") == 401
    # /wall (any page but the embed's) does not take the token: the login page, as for anyone.
    with httpx2.Client(base_url=server, follow_redirects=False, timeout=10) as client:
        wall = client.get(f"/wall?scope={STREET}&token={good}")
        assert wall.status_code == 303 and wall.headers["location"].startswith("/login")
        # The embed page may be framed by the grant's origins only; never kept by a cache.
        page_response = client.get(f"/embed?token={good}")
        assert page_response.status_code == 200
        policy = page_response.headers["content-security-policy"]
        assert f"frame-ancestors {portals[1]}" in policy
        assert "x-frame-options" not in page_response.headers
        assert page_response.headers["cache-control"] == "no-store"
        other_pages = client.get("/login")
        assert "frame-ancestors 'self'" in other_pages.headers["content-security-policy"]
        assert other_pages.headers["x-frame-options"] == "SAMEORIGIN"
        # Callbacks: the embed page's own, with its token; no other.
        deps = {d["output"]: d for d in client.get("/_dash-dependencies").json()}
        route = envelope(deps[f"{ids.App.PAGE}.children"], "/embed", state=(f"?token={good}",))
        embed_headers = {"X-Gridcc-Embed": good, "Content-Type": "application/json"}
        answer = client.post("/_dash-update-component", json=route, headers=embed_headers)
        assert answer.status_code == 200, answer.text
        case = next(d for d in deps.values() if f"{ids.Case.CONTENT}.children" in d["output"])
        refused = client.post(
            "/_dash-update-component",
            json=envelope(case, "?id=c-1", state=()),
            headers=embed_headers,
        )
        assert refused.status_code == 403, refused.text
        lapsed = client.post(
            "/_dash-update-component",
            json=route,
            headers={**embed_headers, "X-Gridcc-Embed": expired},
        )
        assert lapsed.status_code == 401 and lapsed.json()["reason"] == "expired"


def test_a_portal_on_an_origin_not_allowed_cannot_frame_an_embed(
    server: str, city: tuple[str, int, bytes], portals: tuple[Any, str, Any, str], browser: Browser
) -> None:
    _, _, foreign, foreign_url = portals
    foreign.pages["/steal"] = portal_page(server, {"stolen": f"/embed?token={token(city)}"})
    watch = PageWatch()
    page = watch.attach(browser.new_page())
    page.goto(f"{foreign_url}/steal", wait_until="load")
    expect(page.frame_locator("#stolen").locator(f"#{ids.wall_kpi('open')}")).to_have_count(0)
    page.wait_for_timeout(1_500)
    assert any("frame-ancestors" in e or "Refused to frame" in e for e in watch.errors), (
        watch.errors
    )
    assert heard(page, "stolen", "gridcc:ready") == []
    page.close()


# ---------------------------------------------------------------- 4. legible in small frames

#: What a panel must not do in its frame: an element outside the frame or its panel, text under
#: 12 px, text cut by its box, a panel or list whose content spills (scrollable) out of it.
LEGIBLE = """() => {
  const out = [];
  const W = innerWidth, H = innerHeight;
  const root = document.querySelector('.embed-root');
  if (!root) return ['no embed root'];
  const name = el => (typeof el.className === 'string' && el.className) || el.tagName;
  for (const el of root.querySelectorAll('.embed-panel:not([hidden]) *')) {
    if (el.closest('.leaflet-pane')) continue;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || st.display === 'none') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.left < -1 || r.top < -1 || r.right > W + 1 || r.bottom > H + 1) {
      out.push('outside the frame: ' + name(el));
    }
    const text = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (!text) continue;
    if (parseFloat(st.fontSize) < 12) out.push('under 12 px: ' + name(el) + ' ' + st.fontSize);
    if (el.scrollWidth > el.clientWidth + 1 && st.overflow !== 'visible') {
      out.push('cut: ' + name(el) + ' ' + el.textContent.slice(0, 20));
    }
    const p = el.closest('.embed-panel').getBoundingClientRect();
    if (r.right > p.right + 1 || r.bottom > p.bottom + 1 || r.left < p.left - 1 || r.top < p.top - 1) {
      out.push('outside its panel: ' + name(el) + ' ' + el.textContent.slice(0, 20));
    }
  }
  const boxes = '.embed-panel:not([hidden]), .embed-panel:not([hidden]) .wall-list, ' +
    '.embed-panel:not([hidden]) .wall-kpi';
  for (const el of root.querySelectorAll(boxes)) {
    if (el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1) {
      out.push('spills: ' + name(el) + ' ' + el.scrollWidth + 'x' + el.scrollHeight +
        ' in ' + el.clientWidth + 'x' + el.clientHeight);
    }
  }
  return out;
}"""
ALL_PANELS = PANELS


def test_each_panel_alone_is_legible_in_frames_of_three_sizes(
    server: str,
    city: tuple[str, int, bytes],
    portals: tuple[Any, str, Any, str],
    browser: Browser,
    artifacts: Path,
) -> None:
    handler, portal_url, _, _ = portals
    everything = token(city, panels=ALL_PANELS, grant=GRANTS["all"])
    problems: dict[str, list[str]] = {}
    context = browser.new_context(viewport={"width": 1400, "height": 800})
    watch = PageWatch()
    page = watch.attach(context.new_page())
    for width, height in ((480, 270), (800, 450), (1280, 720)):
        for panel in ALL_PANELS:
            handler.pages["/one"] = portal_page(
                server, {"one": f"/embed?token={everything}&panels={panel}"}, (width, height)
            )
            page.goto(f"{portal_url}/one", wait_until="load")
            frame = frame_of(page, "one")
            frame.wait_for_function(
                "() => document.documentElement.getAttribute('data-wall-state') === 'live'",
                timeout=20_000,
            )
            frame.wait_for_timeout(600)  # the panel's own layout pass after its data
            found = frame.evaluate(LEGIBLE)
            if found:
                problems[f"{panel} {width}x{height}"] = found[:5]
                page.screenshot(path=str(artifacts / f"embed-{panel}-{width}x{height}.png"))
    assert watch.errors == [], watch.errors
    context.close()
    assert problems == {}


# ---------------------------------------------------------------- host messaging


def test_the_portal_sets_scope_and_language_and_hears_height_drill_and_state(
    server: str, city: tuple[str, int, bytes], portals: tuple[Any, str, Any, str], browser: Browser
) -> None:
    handler, portal_url, _, _ = portals
    every = token(city, panels=ALL_PANELS, grant=GRANTS["all"])
    handler.pages["/talk"] = portal_page(
        server, {"talk": f"/embed?token={every}&panels=kpis,ranking"}, (1280, 720)
    )
    watch = PageWatch()
    page = watch.attach(browser.new_page(viewport={"width": 1400, "height": 800}))
    page.goto(f"{portal_url}/talk", wait_until="load")
    frame = frame_of(page, "talk")
    frame.wait_for_function(
        "() => document.documentElement.getAttribute('data-wall-state') === 'live'",
        timeout=20_000,
    )
    page.wait_for_function("() => window.heard.some(m => m.data.type === 'gridcc:height')")
    assert heard(page, "talk", "gridcc:height")[-1]["height"] > 0
    assert {"type": "gridcc:state", "state": "live"} in [
        {k: m[k] for k in ("type", "state")} for m in heard(page, "talk", "gridcc:state")
    ]
    grid = frame.locator(".wall-kpi-grid:not(.embed-scope-marker)")
    expect(grid).to_have_attribute("data-scope", STREET)

    def tell(message: dict[str, str]) -> None:
        page.evaluate(
            "([m, to]) => document.getElementById('talk').contentWindow.postMessage(m, to)",
            [message, server],
        )

    # The language, without a reload.
    frame.evaluate("window.portalCounter = 7")
    tell({"type": "gridcc:set", "lang": "en"})
    expect(grid).to_contain_text("Open", timeout=10_000)
    # A community of the street (within the token's scope), then another street (refused).
    community = f"{STREET}001"
    tell({"type": "gridcc:set", "scope": community})
    expect(grid).to_have_attribute("data-scope", community, timeout=10_000)
    tell({"type": "gridcc:set", "scope": OTHER_STREET})
    page.wait_for_function("() => window.heard.some(m => m.data.type === 'gridcc:error')")
    assert heard(page, "talk", "gridcc:error")[-1]["scope"] == OTHER_STREET
    expect(grid).to_have_attribute("data-scope", community)
    # A drill in the frame is told to the portal.
    tell({"type": "gridcc:set", "scope": STREET})
    expect(grid).to_have_attribute("data-scope", STREET, timeout=10_000)
    row = frame.locator("[id^='wall-rank-']").first
    expect(row).to_be_visible(timeout=10_000)
    row.click()
    page.wait_for_function("() => window.heard.some(m => m.data.type === 'gridcc:drill')")
    drilled = heard(page, "talk", "gridcc:drill")[-1]["scope"]
    assert drilled.startswith(STREET) and drilled != STREET
    expect(grid).to_have_attribute("data-scope", drilled, timeout=10_000)
    assert frame.evaluate("window.portalCounter") == 7  # never reloaded
    page.close()
