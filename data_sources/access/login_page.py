"""The login page's HTML (登录), zh and en: self-contained, with no script (the CSP allows none
inline) and no external asset; every value escaped."""

from __future__ import annotations

import html
from typing import Literal
from urllib.parse import urlencode

Lang = Literal["zh", "en"]

_TEXT: dict[str, tuple[str, str]] = {
    "title": ("登录 · 社会治理指挥中心", "Sign in · Social Governance Command Centre"),
    "heading": ("社会治理指挥中心", "Social Governance Command Centre"),
    "name": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "submit": ("登录", "Sign in"),
    "switch": ("English", "中文"),
    "bad_credentials": ("用户名或密码错误。", "Wrong user name or password."),
    "locked": (
        "尝试次数过多，账户已锁定至 {until}。",
        "Too many failed attempts: the account is locked until {until}.",
    ),
    "disabled": (
        "该账户已停用，请联系系统管理员。",
        "This account is disabled: ask an administrator.",
    ),
    "throttled": (
        "尝试过于频繁，请 {seconds} 秒后再试。",
        "Too many attempts: try again in {seconds} s.",
    ),
    "expired": ("登录表单已过期，请重新登录。", "The form had expired: please sign in again."),
}

_PAGE = """<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<style>
body {{ background: #0b1320; color: #dfe7f2; font-family: "Noto Sans CJK SC", sans-serif;
       margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center; }}
main {{ width: min(28rem, 92vw); }}
h1 {{ font-size: clamp(1.6rem, 3vw, 2.4rem); text-align: center; margin: 0 0 1em; }}
label {{ display: block; font-size: 1.25rem; margin: 1em 0 .3em; }}
input {{ box-sizing: border-box; width: 100%; font-size: 1.4rem; padding: .55em .7em;
        border: 1px solid #3a4c66; border-radius: .4em; background: #132036; color: #fff; }}
input:focus {{ outline: 3px solid #5ec8ff; }}
button {{ width: 100%; margin-top: 1.6em; font-size: 1.4rem; padding: .6em; border: 0;
         border-radius: .4em; background: #1f7ae0; color: #fff; cursor: pointer; }}
.message {{ font-size: 1.2rem; background: #4a1c22; border: 1px solid #a33a45;
           padding: .7em 1em; border-radius: .4em; }}
.switch {{ text-align: right; font-size: 1.1rem; }}
a {{ color: #5ec8ff; }}
</style></head>
<body><main>
<p class="switch"><a href="{switch_href}" lang="{other}">{switch}</a></p>
<h1>{heading}</h1>
{message}<form method="post" action="/login">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<input type="hidden" name="lang" value="{lang}">
<label for="name">{name_label}</label>
<input id="name" name="name" value="{name}" maxlength="64" autocomplete="username"
       autocapitalize="none" spellcheck="false" required autofocus>
<label for="password">{password_label}</label>
<input id="password" name="password" type="password" maxlength="256"
       autocomplete="current-password" required>
<button type="submit">{submit}</button>
</form></main></body></html>
"""


def text(key: str, lang: Lang) -> str:
    """A text of the login page in `lang`."""
    zh, en = _TEXT[key]
    return zh if lang == "zh" else en


def login_page(
    *, lang: Lang, next_path: str, csrf: str, message: str | None = None, name: str = ""
) -> str:
    """The login page's HTML; every value escaped."""
    other: Lang = "en" if lang == "zh" else "zh"
    switch_href = "/login?" + urlencode({"next": next_path, "lang": other})
    e = html.escape
    return _PAGE.format(
        lang=lang,
        other=other,
        title=e(text("title", lang)),
        heading=e(text("heading", lang)),
        switch=e(text("switch", lang)),
        switch_href=e(switch_href),
        message=f'<p class="message" role="alert">{e(message)}</p>\n' if message else "",
        csrf=e(csrf),
        next=e(next_path),
        name=e(name),
        name_label=e(text("name", lang)),
        password_label=e(text("password", lang)),
        submit=e(text("submit", lang)),
    )
