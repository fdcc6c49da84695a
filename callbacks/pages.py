"""The router: the URL's path → the page shell (each page then fills itself from the URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dash import Dash, Input, Output, State, no_update
from dash.development.base_component import Component
from dash.exceptions import CallbackException

from callbacks.query import parse_query
from data_sources.access.guard import CallbackPolicies, CallbackPolicy, current_access
from data_sources.access.model import Forbidden, Permission, Principal
from layouts import admin as admin_layout
from layouts import case_page as case_layout
from layouts import embed as embed_layout
from layouts import ids
from layouts import overview as overview_layout
from layouts import wall as wall_layout
from layouts.i18n import LANGS
from layouts.pages import page_of

if TYPE_CHECKING:
    from data_sources.services import Services


def register(app: Dash, services: Services, policies: CallbackPolicies) -> None:
    tile_url, tz = services.settings.tile_url, services.settings.timezone
    default_lang = services.settings.default_lang
    # A page's shell holds no data; the admin page's own callbacks need the admin permission.
    policies.declare(ids.App.PAGE, CallbackPolicy(Permission.READ, embed=True))

    @app.callback(
        Output(ids.App.PAGE, "children"),
        Input(ids.App.URL, "pathname"),
        State(ids.App.URL, "search"),
    )
    def route(pathname: object, search: object) -> Component | Any:
        if not isinstance(pathname, str):  # None: the location has not read the browser's URL yet
            return no_update
        page = page_of(pathname)
        principal = current_access().principal
        if page == "embed":
            return embed_page(principal, search, tile_url, principal.lang or default_lang)
        if principal.kind == "embed":  # a token opens its embed, no other page
            raise Forbidden("an embed token opens only its embed")
        if page == "wall":
            return wall_layout.page(tile_url, tz)
        if page == "admin":
            return admin_layout.page()
        if page == "case":
            return case_layout.page()
        # The laptop view's controls start from the URL's filter (a copied link's view).
        return overview_layout.page(parse_query(search), default_lang)


def embed_page(
    principal: Principal, search: object, tile_url: str | None, default_lang: str
) -> Component:
    """The embed's shell for `principal` (an embed token's: its panels, origins and expiry; any
    other reader sees every panel) and the URL's `?panels=`, `?theme=` and `?lang=`."""
    query = parse_query(search)
    lang = query.get("lang", [default_lang])[0]
    granted = principal.panels if principal.kind == "embed" else None
    return embed_layout.page(
        tile_url,
        shown=embed_layout.shown_panels(query.get("panels", [""])[0], granted),
        granted=granted,
        theme=query.get("theme", [""])[0],
        lang=lang if lang in LANGS else default_lang,
        origins=principal.origins,
        expires_at=principal.expires_at,
        scope=principal.scope,
    )


def unknown_ids(app: Dash) -> list[str]:
    """The ids that `app`'s callbacks name and its validation layout (or layout) lacks, sorted.

    Dash checks this only in the browser, with its dev tools on; this is the same check on the
    server. Like Dash's, it leaves out pattern-matching ids (their components are made by
    callbacks) and `allow_optional` ones.
    """
    layout = app.validation_layout or app.layout
    layout = layout() if callable(layout) else layout
    known = {getattr(c, "id", None) for c in [layout, *layout._traverse()]}
    named: set[str] = set()
    for spec in app.callback_map.values():
        outputs = spec["output"] if isinstance(spec["output"], list) else [spec["output"]]
        named |= {str(o.component_id) for o in outputs if isinstance(o.component_id, str)}
        for dep in [*spec["inputs"], *spec["state"]]:
            if not dep.get("allow_optional") and not dep["id"].startswith("{"):
                named.add(dep["id"])
    return sorted(named - known)


def check_ids(app: Dash) -> None:
    """Raise if a callback of `app` names an id that no page has (a typo, a renamed component)."""
    if missing := unknown_ids(app):
        message = f"callbacks name ids that no page has: {', '.join(missing)}"
        raise CallbackException(message)  # type: ignore[no-untyped-call]
