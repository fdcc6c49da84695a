"""Callbacks of the overview page: the URL (scope, language) → the page content."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from dash import Dash, Input, Output
from sqlalchemy.exc import SQLAlchemyError

from callbacks.query import parse_query
from data_sources.access.guard import CallbackPolicies, CallbackPolicy, current_access
from data_sources.access.model import Permission, Scope
from data_sources.access.scope import from_own_area
from data_sources.overview import Overview, load_overview
from layouts import ids
from layouts import overview as layout
from layouts.i18n import LANGS, Lang, t

if TYPE_CHECKING:
    from data_sources.services import Services

log = logging.getLogger(__name__)


def parse_search(search: object, default_lang: Lang) -> tuple[str | None, Lang]:
    """(scope code, language) from a query string like "?scope=530103&lang=en" (anything but a
    string, as a forged callback body may send, is no query)."""
    query = parse_query(search)
    scope = query.get("scope", [None])[0]
    lang = query.get("lang", [default_lang])[0]
    return scope, lang if lang in LANGS else default_lang


def register(app: Dash, services: Services, policies: CallbackPolicies) -> None:
    settings = services.settings
    # The guard resolves `?scope=` for the caller before the render runs (404 / 403 there).
    policies.declare(
        ids.Overview.CONTENT, CallbackPolicy(Permission.READ, scope_from=ids.Overview.URL)
    )

    def load(scope: Scope) -> Overview | None:
        """The overview's figures from SQL (a render's cost, timed for /metrics)."""
        started = time.perf_counter()
        try:
            with services.sessions() as session:
                return load_overview(
                    session=session,
                    scope=scope,
                    now=services.clock(),
                    window_days=settings.kpi_window_days,
                    open_now=services.open_now,
                )
        finally:
            services.metrics.observe_render("overview", time.perf_counter() - started)

    @app.callback(
        Output(ids.Overview.CONTENT, "children"),
        Output(ids.Overview.TITLE, "children"),
        Output(ids.Overview.LANG_LINK, "children"),
        Output(ids.Overview.LANG_LINK, "href"),
        Output(ids.Overview.ACCOUNT, "children"),
        Input(ids.Overview.URL, "search"),
        # The page's stream came back after a gap it could not replay (assets/live.js).
        Input(ids.Overview.RESYNC, "data"),
    )
    async def render(search: object, _resync: Any = None) -> tuple[Any, ...]:
        code, lang = parse_search(search, settings.default_lang)
        access = current_access()
        area = access.scope  # None only before anything is seeded
        me = access.principal
        here = "/?" + urlencode({k: v for k, v in (("scope", code), ("lang", lang)) if v})
        who = layout.account(me.kind, me.name, me.csrf, me.may(Permission.ADMIN), lang, here)
        other = "en" if lang == "zh" else "zh"
        switch = "/?" + urlencode({k: v for k, v in (("scope", code), ("lang", other)) if v})
        try:
            # The store is synchronous: keep the event loop free for streams and other pages.
            overview = await asyncio.to_thread(load, area) if area is not None else None
        except SQLAlchemyError:
            log.exception("overview query failed")
            body = layout.notice(t("error_title", lang), t("error_body", lang), "danger")
            return body, t("app_title", lang), t("switch_lang", lang), switch, who
        if overview is None:
            body = layout.notice(t("no_data_title", lang), t("no_data_body", lang), "warning")
            return body, t("app_title", lang), t("switch_lang", lang), switch, who
        lineage = from_own_area(overview.lineage, me)
        overview = replace(overview, lineage=lineage)
        title = lineage[min(1, len(lineage) - 1)].name(lang)
        body = layout.content(overview, lang, services.tz, settings.kpi_window_days)
        return body, f"{title} · {t('app_title', lang)}", t("switch_lang", lang), switch, who
