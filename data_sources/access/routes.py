"""`GET /display/{token}`: where an enrolled wall PC starts (`gridcc display add` prints it).

The device token goes into an `HttpOnly` cookie and the browser is sent on to its wall, so the
token leaves the address bar (and the history, and screenshots of it); the kiosk opens the same
URL at every boot. A revoked or unknown token gets the neutral "display disabled" screen (an
unknown one is not audited: guesses must not fill the log). A browser signed in as a user is
never turned into a display by a link (403): sign out first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from data_sources.access import displays
from data_sources.access.audit import record
from data_sources.access.guard import new_csrf_secret
from data_sources.access.identity import CSRF_COOKIE, DISPLAY_COOKIE, SESSION_COOKIE
from data_sources.access.pages import display_disabled_page, forbidden_page

#: Chrome keeps a cookie at most 400 days; the kiosk's start URL renews it at every boot.
DISPLAY_COOKIE_MAX_AGE = 400 * 24 * 3600


def display_router(sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/display/{token}")
    async def enrol(request: Request, token: str) -> Response:
        def open_display() -> str | None:
            with sessions.begin() as session:
                principal = displays.principal_of_display(session=session, token=token)
                if principal is None:  # not audited: anyone could fill the log with guesses
                    return None
                record(
                    session=session,
                    at=clock(),
                    actor=principal.name,
                    actor_kind="display",
                    action="display.open",
                    outcome="ok",
                    scope_code=principal.scope,
                    client=request.client.host if request.client else None,
                )
                return principal.scope

        if request.cookies.get(SESSION_COOKIE):
            # A link must not turn a signed-in person's browser into someone's display.
            return forbidden_page(
                "/", "This browser is signed in as a user: sign out before enrolling it."
            )
        scope = await asyncio.to_thread(open_display)
        if scope is None:
            response: Response = display_disabled_page()
            response.delete_cookie(DISPLAY_COOKIE, path="/")
            return response
        response = RedirectResponse("/wall?" + urlencode({"scope": scope}), 303)
        secure = request.url.scheme == "https"
        response.set_cookie(
            DISPLAY_COOKIE,
            token,
            max_age=DISPLAY_COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="lax",
            secure=secure,
        )
        response.set_cookie(
            CSRF_COOKIE,
            new_csrf_secret(),
            max_age=DISPLAY_COOKIE_MAX_AGE,
            path="/",
            httponly=False,
            samesite="strict",
            secure=secure,
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return router
