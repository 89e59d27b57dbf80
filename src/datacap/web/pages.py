"""The HTML pages: a server-rendered shell per page; the page's script fetches the JSON API.

Every page carries its dictionary inline (no second request) and the same navigation; the language
toggle sets a cookie and comes back to the page it was pressed on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from datacap.web import auth
from datacap.web.i18n import LANGS, WORDS, choose_lang

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
PAGES = ("overview", "usage", "who", "when", "alerts", "plan", "calibrate")
PATHS = {"overview": "/", "usage": "/usage", "who": "/who", "when": "/when", "alerts": "/alerts",
         "plan": "/plan", "calibrate": "/calibrate"}
LANG_COOKIE = "datacap_lang"
STATIC = Path(__file__).parent / "static"


def asset_version() -> str:
    """A digest of the static files: asset URLs carry it, so browsers may cache them for a long time
    and still fetch new ones right after an upgrade."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _safe_next(target: str | None) -> str:
    """Only same-site paths: a crafted ?next= must not send the user elsewhere after signing in."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def pages_router(state: Any) -> APIRouter:
    from datacap.web.app import _reader_guard

    router = APIRouter(include_in_schema=False)
    guard = [Depends(_reader_guard(state))]
    version = asset_version()

    def render(request: Request, page: str, status_code: int = 200, **extra: Any) -> HTMLResponse:
        lang = choose_lang(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))
        words = WORDS[lang]
        context = {"page": page, "lang": lang, "t": words, "words_json": _script_json(words),
                   "nav": [(p, PATHS[p], words[p]) for p in PAGES], "other_lang": LANGS[1 - LANGS.index(lang)],
                   "timezone": state.cfg.timezone, "units": state.cfg.display.units,
                   "token_set": state.token is not None, "form_token": state.forms.token(),
                   "asset_version": version, **extra}
        response = TEMPLATES.TemplateResponse(request, f"{page}.html", context, status_code=status_code)
        response.headers["Cache-Control"] = "no-store"
        return response

    def page_route(page: str) -> Any:
        def handler(request: Request) -> HTMLResponse:
            return render(request, page)
        handler.__name__ = f"page_{page}"
        return handler

    for page in PAGES:
        router.get(PATHS[page], response_class=HTMLResponse, dependencies=guard)(page_route(page))

    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login", next=_safe_next(next), failed=False)

    @router.post("/login")
    def login(request: Request, token: str = Form(""), next: str = Form("/")) -> Response:
        if not auth.token_ok(state.token, token.strip()):
            return render(request, "login", status_code=401, next=_safe_next(next), failed=True)
        response = RedirectResponse(_safe_next(next), status_code=303)
        response.set_cookie(auth.COOKIE, token.strip(), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", max_age=400 * 86400)
        return response

    @router.get("/lang/{code}")
    def set_lang(code: str, next: str = "/") -> Response:
        response = RedirectResponse(_safe_next(next), status_code=303)
        if code in LANGS:
            response.set_cookie(LANG_COOKIE, code, samesite="lax", max_age=400 * 86400)
        return response

    return router


def _script_json(value: Any) -> str:
    """JSON to place inside a <script type="application/json"> block: no ``<`` can end the element."""
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
