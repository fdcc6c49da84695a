"""The embed page `/embed` (layouts/embed.py): the wall's panels under the wall's ids, hidden unless
shown; its theme, language, origins and expiry on the page; the router's choice of panels; and
that every id assets/embed.js and the live.js hook name exists."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dash
import pytest
from dash import Output
from dash.development.base_component import Component

from callbacks import pages as page_callbacks
from callbacks import wall as wall_callbacks
from callbacks.pages import embed_page
from data_sources.access.guard import Access, CallbackPolicies, set_access
from data_sources.access.model import (
    Forbidden,
    anonymous_principal,
    embed_principal,
)
from data_sources.embed.panels import PANELS
from layouts import embed, ids
from layouts import wall as wall_layout
from layouts.pages import EMBED_PATHS, page_of

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def walk(component: Component) -> list[Any]:
    return [component, *component._traverse()]


def by_id(component: Component) -> dict[str, Any]:
    return {c.id: c for c in walk(component) if isinstance(getattr(c, "id", None), str)}


def panels_of(component: Component) -> dict[str, Any]:
    """The panel frames by name (`data-panel`)."""
    return {getattr(c, "data-panel"): c for c in walk(component) if hasattr(c, "data-panel")}


def attr(component: Any, name: str) -> Any:
    return getattr(component, name, None)


def test_every_id_the_wall_render_fills_is_on_the_embed_page() -> None:
    outputs: list[Output] = list(wall_callbacks.OUTPUTS.values())
    present = by_id(embed.page(shown=("kpis",)))
    missing = [str(o.component_id) for o in outputs if str(o.component_id) not in present]
    assert missing == []
    # …and what the render listens to, and the live view's badge (assets/live.js picks the
    # wall's view by it).
    for needed in (ids.Wall.URL, ids.Wall.RESYNC, ids.Wall.LIVE, ids.Wall.ALARM_ACTION):
        assert needed in present


def test_the_embed_uses_the_walls_ids_and_no_others() -> None:
    """The same ids as the wall's page, so that its callbacks and scripts work unchanged; no
    new id (nothing an embed adds needs a callback)."""
    wall_ids = set(by_id(wall_layout.page()))
    embed_ids = set(by_id(embed.page()))
    assert embed_ids <= wall_ids
    # No chrome: the wall's clock and canvas are not there.
    assert not embed_ids & {ids.Wall.CLOCK, ids.Wall.DATE, ids.Wall.CANVAS, ids.Wall.VIEWPORT}


def test_every_panel_is_present_in_order_and_only_the_shown_ones_are_visible() -> None:
    page = embed.page(shown=("map", "kpis"))
    panels = panels_of(page)
    assert list(panels) == list(PANELS)
    visible = [name for name, panel in panels.items() if not attr(panel, "hidden")]
    assert visible == ["kpis", "map"]
    assert getattr(page, "data-panels") == "kpis,map"
    # The map's parts are in its panel, shown or not.
    assert ids.Wall.MAP in by_id(panels["map"])
    assert ids.Wall.LEGEND in by_id(panels["map"])
    hidden = embed.page(shown=("kpis",))
    assert attr(panels_of(hidden)["map"], "hidden") is True
    assert ids.Wall.AREAS in by_id(hidden)  # present for the render, though hidden


@pytest.mark.parametrize("name", PANELS)
def test_a_panel_alone(name: str) -> None:
    panels = panels_of(embed.page(shown=(name,)))
    assert [n for n, p in panels.items() if not attr(p, "hidden")] == [name]
    assert f"embed-{name}" in panels[name].className.split()


def test_the_chrome_the_render_fills_is_never_shown() -> None:
    page = embed.page()
    unseen = [c for c in walk(page) if "embed-unseen" in (attr(c, "className") or "")]
    assert len(unseen) == 1 and unseen[0].hidden is True
    inside = by_id(unseen[0])
    assert {ids.Wall.TITLE, ids.Wall.BREADCRUMB, ids.Wall.ACTION_RESULT, ids.Wall.LIVE} <= set(
        inside
    )


@pytest.mark.parametrize(
    ("theme", "expected"),
    [
        (None, ("dark", "false")),
        ("", ("dark", "false")),
        ("dark", ("dark", "false")),
        ("light", ("light", "false")),
        ("transparent", ("light", "true")),
        ("transparent-dark", ("dark", "true")),
        ("dark,transparent", ("dark", "true")),
        ("LIGHT", ("light", "false")),
        ("neon", ("dark", "false")),
        ("<script>", ("dark", "false")),
    ],
)
def test_themes(theme: str | None, expected: tuple[str, str]) -> None:
    page = embed.page(theme=theme)
    assert (getattr(page, "data-theme"), getattr(page, "data-transparent")) == expected


def test_language_origins_expiry_and_scope_are_on_the_page() -> None:
    page = embed.page(
        lang="en",
        origins=("https://portal.example", "http://localhost:8123"),
        expires_at=1_800_000_000.0,
        scope="530103",
        granted=("map", "kpis"),
    )
    assert getattr(page, "data-lang") == "en"
    assert getattr(page, "data-origins") == "https://portal.example http://localhost:8123"
    assert getattr(page, "data-expires-at") == "1800000000"
    assert getattr(page, "data-root-scope") == "530103"
    assert getattr(page, "data-granted") == "kpis,map"  # in PANELS order
    bare = embed.page(lang="fr")
    assert getattr(bare, "data-lang") == "zh"
    assert not hasattr(bare, "data-expires-at")
    assert getattr(bare, "data-origins") == ""


def test_the_expired_and_empty_messages_speak_both_languages() -> None:
    page = embed.page(shown=())
    boxes = {
        cls: c
        for c in walk(page)
        for cls in ("embed-expired", "embed-nothing")
        if cls in (attr(c, "className") or "").split()
    }
    expired, nothing = boxes["embed-expired"], boxes["embed-nothing"]
    texts = [c.children for c in walk(expired) if isinstance(attr(c, "children"), str)]
    assert "链接已过期" in texts and "Link expired" in texts
    assert [attr(c, "lang") for c in expired.children] == ["zh", "en"]
    assert expired.hidden is True  # shown by assets/embed.js when the token ends
    assert expired.role == "alert"
    assert nothing.hidden is False  # no panel to show: said so
    assert embed.page(shown=("kpis",)).children[-2].hidden is True


@pytest.mark.parametrize(
    ("asked", "granted", "expected"),
    [
        (None, None, PANELS),
        ("", frozenset({"map", "kpis"}), ("kpis", "map")),
        ("map", frozenset({"map", "kpis"}), ("map",)),
        ("map,kpis,trend", frozenset({"map", "kpis"}), ("kpis", "map")),  # trend not granted
        (" feed , alarms ", None, ("alarms", "feed")),
        ("nonsense", frozenset({"map"}), ()),
        ("trend", frozenset({"map"}), ()),
    ],
)
def test_shown_panels(
    asked: str | None, granted: frozenset[str] | None, expected: tuple[str, ...]
) -> None:
    assert embed.shown_panels(asked, granted) == expected


def test_the_path_picks_the_embed() -> None:
    assert all(page_of(path) == "embed" for path in EMBED_PATHS)
    assert page_of("/embedded") == "overview"


def principal(panels: frozenset[str]) -> Any:
    return embed_principal(
        grant_id=3,
        grant_name="portal",
        scope="530103",
        panels=panels,
        expires_at=1_800_000_000.0,
        origins=("http://localhost:8123",),
    )


def test_the_router_shows_what_the_token_grants_and_the_url_asks() -> None:
    page = embed_page(
        principal(frozenset({"kpis", "map", "trend"})),
        "?token=x.y&panels=trend,map,feed&theme=light&lang=en",
        None,
        "zh",
    )
    assert getattr(page, "data-panels") == "map,trend"
    assert getattr(page, "data-granted") == "kpis,map,trend"
    assert getattr(page, "data-theme") == "light"
    assert getattr(page, "data-lang") == "en"
    assert getattr(page, "data-origins") == "http://localhost:8123"
    assert getattr(page, "data-expires-at") == "1800000000"
    assert getattr(page, "data-root-scope") == "530103"
    # No `panels=`: every panel it grants; a language it does not know: the default.
    page = embed_page(principal(frozenset({"feed"})), "?token=x.y&lang=xx", None, "zh")
    assert getattr(page, "data-panels") == "feed"
    assert getattr(page, "data-lang") == "zh"
    # Not a string (a forged callback body): no query at all.
    page = embed_page(principal(frozenset({"feed"})), {"x": 1}, None, "en")
    assert getattr(page, "data-panels") == "feed"


def test_another_reader_sees_every_panel_and_may_be_framed_by_no_one() -> None:
    page = embed_page(anonymous_principal("530103"), "", None, "zh")
    assert getattr(page, "data-panels") == ",".join(PANELS)
    assert getattr(page, "data-origins") == ""


def test_the_scope_marker_names_the_scope_and_is_never_seen() -> None:
    marker = embed.scope_marker("530103", "en")
    assert getattr(marker, "data-scope") == "530103"
    assert getattr(marker, "data-lang") == "en"
    assert marker.hidden is True
    # assets/wall_map.js follows `.wall-kpi-grid[data-scope]`.
    assert "wall-kpi-grid" in marker.className.split()


def test_the_ids_the_embed_scripts_name_exist() -> None:
    script = (ASSETS / "embed.js").read_text()
    named = set(re.findall(r'_ID = "([a-z-]+)"', script))
    assert named <= {str(i) for i in ids.Wall}
    assert {"wall-url", "wall-resync"} <= named


def test_the_live_hook_is_in_place() -> None:
    """assets/live.js credits the stream with the embed's token, asks the embed when it is
    refused and lets it reconnect."""
    live = (ASSETS / "live.js").read_text()
    assert "window.gridccEmbedToken" in live
    assert '"&embed="' in live
    assert "window.gridccEmbed.denied" in live
    assert "reconnect: function" in live
    script = (ASSETS / "embed.js").read_text()
    assert "window.gridccEmbedToken = function" in script
    assert "X-Gridcc-Embed" in script
    # Only on the embed page.
    assert re.search(r"if \(!EMBED_PATH\.test\(window\.location\.pathname\)\) return;", script)


def test_the_embed_stylesheet_sizes_type_to_the_panel() -> None:
    css = (ASSETS / "embed.css").read_text()
    assert "container: embed-panel / size" in css
    # Nothing smaller than 12 px: every clamp() starts at 12 px or more (font sizes).
    sizes = re.findall(r"font-size:\s*clamp\((\d+)px", css)
    assert sizes and min(int(s) for s in sizes) >= 12
    fixed = [int(s) for s in re.findall(r"font-size:\s*(\d+)px", css)]
    assert all(size >= 12 for size in fixed)


def route_of() -> Any:
    """The router's callback (callbacks/pages.py), unwrapped from Dash."""
    app = dash.Dash(__name__)
    settings = SimpleNamespace(tile_url=None, timezone="Asia/Shanghai", default_lang="zh")
    page_callbacks.register(app, SimpleNamespace(settings=settings), CallbackPolicies())  # type: ignore[arg-type]
    return app.callback_map[f"{ids.App.PAGE}.children"]["callback"].__wrapped__


def test_a_token_opens_its_embed_and_no_other_page() -> None:
    route = route_of()
    set_access(Access(principal(frozenset({"kpis"}))))
    try:
        page = route("/embed", "?token=x.y")
        assert "embed-root" in page.className
        for path in ("/wall", "/", "/admin", "/case", "/anything"):
            with pytest.raises(Forbidden):
                route(path, "")
        set_access(Access(anonymous_principal("530103")))
        assert ids.Wall.CANVAS in by_id(route("/wall", ""))  # the wall itself
    finally:
        set_access(None)
