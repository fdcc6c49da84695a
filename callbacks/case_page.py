"""The case page `/case?id=…&lang=…`: the case in full, read within the viewer's own area (a case
elsewhere answers as no case at all)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from dash import Dash, Input, Output
from sqlalchemy.exc import SQLAlchemyError

from callbacks.overview import other, parse_search
from callbacks.query import parse_query
from data_sources.access.guard import CallbackPolicies, CallbackPolicy, current_access
from data_sources.access.model import Permission, Scope
from data_sources.cases.detail import CaseDetail, load_case_detail
from data_sources.model import Level
from layouts import case_page as layout
from layouts import ids
from layouts.i18n import t
from layouts.overview import href, notice

if TYPE_CHECKING:
    from data_sources.services import Services

log = logging.getLogger(__name__)

#: The longest case id the page looks up (ids are at most 64 characters in the store).
MAX_ID = 64


def register(app: Dash, services: Services, policies: CallbackPolicies) -> None:
    settings = services.settings
    # No `?scope=`: the viewer's own area, which the case must lie in.
    policies.declare(ids.Case.CONTENT, CallbackPolicy(Permission.READ, scope_from=ids.Case.URL))

    def load(scope: Scope, case_id: str) -> CaseDetail | None:
        with services.sessions() as session:
            return load_case_detail(
                session=session,
                case_id=case_id,
                scope=scope,
                now=services.clock(),
                tz=services.tz,
                calendar=services.calendar,
            )

    @app.callback(
        Output(ids.Case.CONTENT, "children"),
        Output(ids.Case.TITLE, "children"),
        Output(ids.Case.BACK, "children"),
        Output(ids.Case.BACK, "href"),
        Output(ids.Case.LANG_LINK, "children"),
        Output(ids.Case.LANG_LINK, "href"),
        Input(ids.Case.URL, "search"),
    )
    async def render(search: object) -> tuple[Any, ...]:
        _, lang = parse_search(search, settings.default_lang)
        query = parse_query(search)
        case_id = (query.get("id") or [""])[0][:MAX_ID]
        area = current_access().scope
        switch = "/case?" + urlencode({"id": case_id, "lang": other(lang)})
        back = href(area.code, lang) if area is not None else f"/?lang={lang}"
        links = (t("case_back", lang), back, t("switch_lang", lang), switch)
        try:
            case = await asyncio.to_thread(load, area, case_id) if area and case_id else None
        except SQLAlchemyError:
            log.exception("case query failed")
            body = notice(t("error_title", lang), t("error_body", lang), "danger")
            return body, t("app_title", lang), *links
        if case is None:
            body = notice(t("case_not_found", lang), t("case_not_found_body", lang), "warning")
            return body, t("app_title", lang), *links
        community = next((p for p in case.places if p.level is Level.COMMUNITY), None)
        if community is not None and area is not None and area.level.depth <= Level.COMMUNITY.depth:
            back = href(community.code, lang)
        title = f"{case.id} · {t('app_title', lang)}"
        body = layout.content(case, lang, services.tz, settings.tile_url)
        return body, title, t("case_back", lang), back, t("switch_lang", lang), switch
