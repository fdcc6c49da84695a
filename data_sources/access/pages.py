"""The small HTML pages a guard answers with instead of a page: no such area (404), not yours
(403), display disabled (403). Bilingual and self-contained (no script: the CSP allows none
inline), readable on a wall from a few metres; they name no area but the caller's own."""

from __future__ import annotations

import html

from fastapi.responses import HTMLResponse, JSONResponse, Response

_PAGE = """<!DOCTYPE html>
<html lang="zh"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ background: #0b1320; color: #dfe7f2; font-family: "Noto Sans CJK SC", sans-serif;
       margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
       text-align: center; }}
h1 {{ font-size: clamp(2rem, 4vw, 4rem); margin: 0 0 .5em; }}
p {{ font-size: clamp(1rem, 1.6vw, 1.6rem); color: #9fb0c8; margin: .4em; }}
a {{ color: #5ec8ff; }}
</style></head>
<body><main><h1>{heading}</h1>{body}</main></body></html>
"""


def _page(
    status: int, heading_zh: str, heading_en: str, lines: list[str], link: str = ""
) -> HTMLResponse:
    body = "".join(f"<p>{line}</p>" for line in lines) + link
    heading = f"{html.escape(heading_zh)}<br><small>{html.escape(heading_en)}</small>"
    title = html.escape(f"{heading_zh} · {heading_en}")
    headers = {"Cache-Control": "no-store"}
    return HTMLResponse(
        _PAGE.format(title=title, heading=heading, body=body), status, headers=headers
    )


def _home(home: str | None) -> str:
    if home is None:
        return ""
    return f'<p><a href="{html.escape(home)}">返回我的辖区 / Back to my area</a></p>'


def no_such_area_page(home: str | None) -> HTMLResponse:
    return _page(
        404,
        "没有这个区域",
        "No such area",
        ["地址中的区域编码不存在。", "The area code in this address does not exist."],
        _home(home),
    )


def forbidden_page(home: str | None, reason_en: str = "This is outside your area.") -> HTMLResponse:
    return _page(
        403,
        "无权查看",
        "Not allowed",
        ["该区域或页面不在您的权限范围内。", html.escape(reason_en)],
        _home(home),
    )


def unavailable_page(page: bool) -> Response:
    """503 while the database is down: a page says so and tries again by itself every 10 s (a
    wall started during an outage must come back with no one at it); others get JSON."""
    headers = {"Retry-After": "5", "Cache-Control": "no-store"}
    if not page:
        return JSONResponse({"detail": "the database is unavailable: retry later"}, 503, headers)
    response = _page(503, "数据暂不可用", "Temporarily unavailable", ["正在重试……", "Retrying…"])
    response.headers.update(headers | {"Refresh": "10"})
    return response


def display_disabled_page() -> HTMLResponse:
    """What a revoked display shows: neutral, no data, nothing to click."""
    return _page(
        403,
        "显示终端已停用",
        "Display disabled",
        ["请联系系统管理员。", "Please contact the administrator."],
    )


#: The neutral page may be framed anywhere: it holds no data and nothing to click, and the
#: portal that framed an expired link must show it, not the browser's "refused to connect".
EMBED_REFUSED_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors *"
)


def embed_refused_page(reason: str, status: int) -> HTMLResponse:
    """What an embed shows when its token does not hold (expired, revoked, tampered, another
    scope's): "link expired", never a login page; `reason` is in a data attribute only."""
    response = _page(
        status,
        "链接已过期",
        "Link expired",
        ["请刷新门户页面。", "Reload the portal page."],
    )
    body = bytes(response.body).replace(
        b"<main>",
        f'<main class="gridcc-embed-refused" data-reason="{html.escape(reason)}">'.encode(),
    )
    refused = HTMLResponse(body, status, headers={"Cache-Control": "no-store"})
    refused.headers["Content-Security-Policy"] = EMBED_REFUSED_CSP
    return refused
