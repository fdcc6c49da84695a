"""An embed `/embed`: some of the wall's panels in another site's iframe, without chrome.

The panels carry the wall's own component ids, so the wall's render callback (callbacks/wall.py)
and its live view (assets/live.js, wall.js, wall_map.js, wall_lists.js) fill and update them
unchanged; panels the page does not show are present but hidden (the render sends nothing for
those its token does not grant). They are laid out for the frame's own size, not the wall's
1920 canvas: assets/embed.js picks the grid's columns for the frame and its panel count (one panel
alone fills it), assets/embed.css sizes the type to each panel (container queries). The token,
the messages with the portal and the "link expired" panel are assets/embed.js's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable
from typing import Any

from dash import dcc, html
from dash.development.base_component import Component

from data_sources.embed.panels import PANELS
from layouts import ids
from layouts.i18n import LANGS, Lang
from layouts.wall_map import map_view

W = ids.Wall
#: Palettes (`?theme=`): "transparent" is the light palette on no background (most portals are
#: light); "transparent-dark" (or "dark,transparent") the dark one.
PALETTES = ("dark", "light")
DEFAULT_PALETTE = "dark"
#: The panel shown when the token ends, in both languages (the page's `lang` picks one, in CSS:
#: the language can change after the stream and Dash have stopped). The same words as the
#: server's page for a token that does not hold (data_sources/access/pages.py).
EXPIRED = {
    "zh": ("链接已过期", "请刷新门户页面。"),
    "en": ("Link expired", "Reload the portal page."),
}
#: When the page asks for panels its token does not grant (`?panels=` names none of them).
NO_PANELS = {
    "zh": ("没有可显示的面板", "此链接未授权所请求的面板。"),
    "en": ("Nothing to show", "The link does not grant the panels asked for."),
}
_WORD = re.compile(r"[a-z]+")


def parse_theme(text: str | None) -> tuple[str, bool]:
    """(palette, transparent) from `?theme=`: "dark" (the default), "light", "transparent"
    (light ink on no background) or "transparent-dark"; anything else is the default."""
    words = set(_WORD.findall((text or "").lower()))
    transparent = "transparent" in words
    if "dark" in words:
        return "dark", transparent
    if "light" in words or transparent:
        return "light", transparent
    return DEFAULT_PALETTE, False


def shown_panels(asked: str | None, granted: Collection[str] | None) -> tuple[str, ...]:
    """The panels a page shows, in `PANELS` order: those `?panels=` asks for ("kpis,map") that
    its token grants (`granted`; None: every panel), else all it grants. Unknown names are
    ignored (a portal's typo shows the rest, not an error)."""
    allowed = [p for p in PANELS if granted is None or p in granted]
    names = {n.strip() for n in (asked or "").split(",") if n.strip()}
    if not names:
        return tuple(allowed)
    return tuple(p for p in allowed if p in names)


def _panel(name: str, shown: bool, children: list[Component] | None = None, **kw: Any) -> Component:
    """A panel's frame: a section the render fills (`id`) or this layout does (`children`)."""
    data: dict[str, Any] = {"data-panel": name}
    element = html.Div if name == "kpis" else html.Section
    return element(children, className=f"embed-panel embed-{name}", hidden=not shown, **data, **kw)


def _panels(tile_url: str | None, shown: Collection[str]) -> list[Component]:
    """Every panel of `PANELS`, in that order, hidden unless in `shown`."""
    regions = {
        "kpis": W.KPIS,
        "alarms": W.ALARMS,
        "feed": W.FEED,
        "trend": W.TREND,
        "channels": W.CHANNELS,
        "ranking": W.RANKING,
        "funnel": W.FUNNEL,
        "categories": W.CATEGORIES,
    }
    panels: list[Component] = []
    for name in PANELS:
        if name == "map":
            children: list[Component] = [
                html.Div(id=W.MAP_TITLE, className="wall-panel-title"),
                html.Div(map_view(tile_url), className="wall-map-frame"),
                html.Div(id=W.LEGEND, className="wall-legend"),
            ]
            panels.append(_panel(name, name in shown, children))
        else:
            panels.append(_panel(name, name in shown, id=regions[name]))
    return panels


def _message(texts: dict[str, tuple[str, str]], className: str, hidden: bool) -> Component:
    """A neutral box in both languages; assets/embed.css shows the page's."""
    return html.Div(
        [
            html.Div([html.H2(title), html.P(body)], lang=lang, className="embed-message-text")
            for lang, (title, body) in texts.items()
        ],
        className=f"embed-message {className}",
        hidden=hidden,
        role="alert" if className == "embed-expired" else None,
    )


def page(
    tile_url: str | None = None,
    *,
    shown: Collection[str] = PANELS,
    granted: Collection[str] | None = None,
    theme: str | None = None,
    lang: Lang = "zh",
    origins: Iterable[str] = (),
    expires_at: float | None = None,
    scope: str | None = None,
) -> Component:
    """The embed's shell: the panels of `shown` (in `PANELS` order) empty until the wall's render
    fills them, the others hidden.

    Args:
        shown: the panels this frame shows (`shown_panels`).
        granted: the panels its token grants (None: every one), for assets/embed.js.
        theme: `?theme=` (`parse_theme`).
        lang: the language the page opened in ("zh" / "en").
        origins: the sites that may frame it and talk to it (the grant's): assets/embed.js
            posts to its parent and listens to it only when the parent is one of them.
        expires_at: when its first token expires (Unix seconds), where the server knows it.
        scope: the code of its token's area (the render's scope when the URL names none).
    """
    visible = [p for p in PANELS if p in shown]
    palette, transparent = parse_theme(theme)
    data: dict[str, Any] = {
        "data-panels": ",".join(visible),
        "data-granted": ",".join(
            PANELS if granted is None else [p for p in PANELS if p in granted]
        ),
        "data-origins": " ".join(origins),
        "data-theme": palette,
        "data-transparent": "true" if transparent else "false",
        "data-lang": lang if lang in LANGS else "zh",
        "data-root-scope": scope or "",
    }
    if expires_at is not None and math.isfinite(expires_at):
        data["data-expires-at"] = str(int(expires_at))
    hidden_parts = html.Div(
        [
            # The render's outputs an embed does not show (no chrome): present, never drawn.
            html.H1(id=W.TITLE),
            html.Nav(id=W.BREADCRUMB),
            html.Div(id=W.ACTION_RESULT),
            # assets/live.js's badge: the page's live view is the wall's because it is here;
            # the dot below shows its state (assets/embed.css, from <html data-wall-state>).
            html.Span(id=W.LIVE),
        ],
        className="embed-unseen",
        hidden=True,
    )
    return html.Div(
        [
            dcc.Location(id=W.URL, refresh=False),
            dcc.Store(id=W.ALARM_ACTION),
            dcc.Store(id=W.RESYNC),
            hidden_parts,
            html.Div(_panels(tile_url, visible), className="embed-grid"),
            html.Span(className="embed-dot", role="status"),
            html.Div(id=W.NOTICE, className="embed-notice"),
            _message(NO_PANELS, "embed-nothing", hidden=bool(visible)),
            _message(EXPIRED, "embed-expired", hidden=True),
        ],
        className="embed-root",
        **data,
    )


def scope_marker(code: str, lang: Lang) -> Component:
    """What the render may send as the KPI region of an embed whose token does not grant the
    KPI tiles: no tiles, only the scope they would be of and its language (`data-scope`,
    `data-lang`), which the stream (assets/live.js) and the map's live layers (wall_map.js)
    follow. Without it assets/embed.js keeps an equivalent marker itself."""
    data: dict[str, Any] = {"data-scope": code, "data-lang": lang}
    return html.Div(className="wall-kpi-grid embed-scope-marker", hidden=True, **data)
