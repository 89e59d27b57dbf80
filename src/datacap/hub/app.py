"""``datacap hub serve``: devices push batches to ``POST /api/v1/ingest``; people read the fleet.

Ingestion is authenticated by each device's own token (looked up by its SHA-256 on every batch, so a
revoked token is refused at once) and bounded per device: the body's size before it is read, the
decompressed size, the rows per batch and the batches per minute. Everything else (the fleet
table, devices, a card's status, the pages) is guarded like the device's dashboard: open on loopback
without a token, else only with ``web.token``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from datacap.config import Config
from datacap.errors import DatacapError, StoreError
from datacap.hub import cardstatus, fleet
from datacap.hub.alerting import HubAlerts
from datacap.hub.protocol import MAX_COMPRESSED_BYTES, BatchTooLarge, InvalidBatch, decode, plan_config
from datacap.hub.store.base import FleetFilter, HubStore
from datacap.hub.tokens import RateLimiter, token_hash
from datacap.timeutil import UTC, load_zone, parse_instant
from datacap.web import auth
from datacap.web.i18n import LANGS, WORDS, Lang, choose_lang

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
STATIC = HERE.parent / "web" / "static"
PAGE_ROWS = 200
TOKEN_CACHE = 200_000


class HubState:
    def __init__(self, store: HubStore, cfg: Config, token: str | None, alerts: HubAlerts | None) -> None:
        self.store = store
        self.cfg = cfg
        self.token = token
        self.alerts = alerts
        self.limiter = RateLimiter(cfg.hub.rate_per_second)
        self.max_rows = cfg.hub.max_rows
        self.silent_after = cfg.hub.silent_seconds
        # token digest -> device name, for the quick 401 before a body is read. Only a hint: the
        # ingest transaction checks the digest again under the device's row lock (revocation at once).
        self.tokens: dict[str, str] = {}

    def device_of(self, digest: str) -> str | None:
        name = self.tokens.get(digest)
        if name is None:
            row = self.store.device_by_token(digest)
            if row is None:
                return None
            if len(self.tokens) >= TOKEN_CACHE:
                self.tokens.clear()
            name = self.tokens[digest] = row.device
        return name


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_hub_app(store: HubStore, cfg: Config, *, token: str | None = None, host: str = "127.0.0.1",
                   alerts: HubAlerts | None = None) -> FastAPI:
    """The hub's ASGI app. Raises ConfigError when ``host`` is beyond loopback and no token is set."""
    token = token or cfg.web.token
    auth.check_listen(host, token)
    state = HubState(store, cfg, token, alerts)
    app = FastAPI(title="datacap hub", version="1", openapi_url="/api/v1/openapi.json", docs_url=None,
                  redoc_url=None, description="Many devices, one view: every card of the fleet.")
    app.state.hub = state

    @app.middleware("http")
    async def loopback_host(request: Request, call_next: Any) -> Any:
        # Without a token, only loopback names (no DNS rebinding); ingestion has its own tokens.
        if state.token is None and request.url.path != "/api/v1/ingest":
            hostname = request.url.hostname or ""
            if not auth.is_loopback(hostname):
                return PlainTextResponse(f"the hub answers only on loopback names without a token (Host: "
                                         f"{hostname!r})", status_code=421)
        return await call_next(request)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(DatacapError)
    async def user_error(_: Request, exc: DatacapError) -> JSONResponse:
        return _error(400, str(exc))

    install_auth_handler(app, state)
    app.include_router(_ingest_router(state))
    app.include_router(_api_router(state))
    app.include_router(_pages_router(state))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


# ------------------------------------------------------------------ ingestion

def _ingest_router(state: HubState) -> APIRouter:
    router = APIRouter()

    @router.post("/api/v1/ingest", responses={
        200: {"description": "applied, or a duplicate (nothing applied)"},
        401: {"description": "missing, unknown or revoked device token"},
        409: {"description": "a gap: the body says which seq the hub expects"},
        413: {"description": "body too large"}, 422: {"description": "not a valid batch"},
        429: {"description": "too many batches from this device; see Retry-After"}})
    async def ingest(request: Request) -> Response:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return _error(401, "send the device token as 'Authorization: Bearer TOKEN'")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_COMPRESSED_BYTES:
            return _error(413, f"batch is {declared} bytes, at most {MAX_COMPRESSED_BYTES}")
        digest = token_hash(presented.strip())
        device = state.tokens.get(digest) or await run_in_threadpool(state.device_of, digest)
        if device is None:
            return _error(401, "unknown or revoked device token")
        wait = state.limiter.take(device)
        if wait > 0:
            return _error(429, f"device {device!r} sends too often (at most {state.cfg.hub.rate})",
                          {"Retry-After": str(max(1, math.ceil(wait)))})
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_COMPRESSED_BYTES:
                return _error(413, f"batch is over {MAX_COMPRESSED_BYTES} bytes")
        gzipped = request.headers.get("content-encoding", "identity").lower() == "gzip"
        try:
            batch = decode(bytes(body), gzipped=gzipped)
            if batch.device != device:
                raise InvalidBatch(f"device: the token is {device!r}'s, the batch says {batch.device!r}")
            if max(len(batch.usage), len(batch.attribution)) > state.max_rows:
                raise InvalidBatch(f"usage/attribution: at most {state.max_rows} rows per batch on this hub")
            for card in batch.cards:
                plan_config(card)
            now = int(dt.datetime.now(UTC).timestamp())
            outcome = await run_in_threadpool(state.store.ingest, device, batch, now, digest)
        except (BatchTooLarge, InvalidBatch) as exc:
            # a token revoked since it was cached is refused as such, whatever the body
            if await run_in_threadpool(state.store.device_by_token, digest) is None:
                state.tokens.pop(digest, None)
                return _error(401, "unknown or revoked device token")
            return _error(413 if isinstance(exc, BatchTooLarge) else 422, str(exc))
        if outcome.status == "revoked":
            state.tokens.pop(digest, None)
            return _error(401, "unknown or revoked device token")
        if outcome.status == "gap":
            return JSONResponse({"expected": outcome.expected}, status_code=409)
        if outcome.status == "duplicate":
            return JSONResponse({"acked": outcome.acked, "duplicate": True})
        return JSONResponse({"acked": outcome.acked})

    return router


# ------------------------------------------------------------------ reading

def _guard(state: HubState) -> Any:
    def guard(request: Request) -> None:
        if state.token is not None and not auth.token_ok(state.token, auth.presented_token(request)):
            raise _AuthFailed()
    return guard


class _AuthFailed(Exception):
    pass


Text = Annotated[str | None, Query(max_length=200)]


def _filter(carrier: str | None, device: str | None, group: str | None, limit: int | None,
            offset: int) -> FleetFilter:
    # an empty value from the page's form means "any"
    return FleetFilter(carrier or None, device or None, group or None, limit, offset)


def _api_router(state: HubState) -> APIRouter:
    router = APIRouter(prefix="/api/v1", dependencies=[Depends(_guard(state))])
    store, tz = state.store, state.cfg.tz

    @router.get("/fleet")
    def fleet_table(carrier: Text = None, device: Text = None, group: Text = None,
                    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
                    offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
        """Every card, riskiest first (see datacap.hub.fleet), with totals per carrier."""
        return fleet.fleet_doc(store, _filter(carrier, device, group, limit, offset),
                               silent_after=state.silent_after, tz=tz)

    @router.get("/devices")
    def devices() -> dict[str, Any]:
        return fleet.devices_doc(store, silent_after=state.silent_after, tz=tz)

    @router.get("/devices/{device}/totals")
    def totals(device: str) -> Response:
        if not any(d.device == device for d in store.devices()):
            return _error(404, f"no device named {device!r}")
        return JSONResponse(fleet.totals_doc(store, device))

    @router.get("/cards/{device}/{card}/status")
    def card_status(device: str, card: str, at: Text = None) -> Response:
        """The card's ``status --json`` computed now (or ``at``) with the device's plan engine."""
        row = store.card(device, card)
        if row is None:
            return _error(404, f"no card {card!r} on device {device!r}")
        zone = load_zone(row.timezone or "UTC")
        instant = parse_instant(at, zone, what="at") if at else None
        return JSONResponse(cardstatus.status_doc(store, row, instant))

    @router.get("/cards/{device}/{card}")
    def card_info(device: str, card: str) -> Response:
        row = store.card(device, card)
        if row is None:
            return _error(404, f"no card {card!r} on device {device!r}")
        return JSONResponse({"device": row.device, "card": row.card, "label": row.label, "iccid": row.iccid,
                             "carrier": row.carrier, "group": row.group, "interfaces": row.interfaces,
                             "plan": row.plan, "timezone": row.timezone,
                             "texts": [e for e in store.events(device, "texts") if e["card"] in ("", card)],
                             "alerts": [e for e in store.events(device, "alerts") if e["card"] in ("", card)],
                             "calibrations": [e for e in store.events(device, "calibrations") if e["card"] == card]})

    @router.get("/alerts")
    def alert_history(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
        return {"events": state.alerts.history(limit) if state.alerts else []}

    return router


# ------------------------------------------------------------------ pages

_HUB_WORDS = {
    "en": {"fleet": "Fleet", "device": "Device", "group": "Group", "carrier": "Carrier", "risk": "Risk",
           "remaining": "Remaining", "runs_out": "Runs out", "last_seen": "Last seen", "any": "any",
           "filter": "Filter", "totals": "Totals per carrier", "cards_n": "cards", "hurting": "over / throttled",
           "silent": "silent", "ok": "fine", "texts": "Carrier texts", "device_alerts": "Device alerts",
           "status_at": "Status computed", "next": "Next", "prev": "Previous", "none": "No cards yet: register a "
           "device with `datacap hub device add NAME` and point it at this hub.", "all": "all"},
    "zh-CN": {"fleet": "车队", "device": "设备", "group": "分组", "carrier": "运营商", "risk": "风险",
              "remaining": "剩余", "runs_out": "用完时间", "last_seen": "最后上报", "any": "全部",
              "filter": "筛选", "totals": "按运营商合计", "cards_n": "张卡", "hurting": "超额/限速",
              "silent": "失联", "ok": "正常", "texts": "运营商短信", "device_alerts": "设备告警",
              "status_at": "状态计算于", "next": "下一页", "prev": "上一页",
              "none": "还没有卡：用 `datacap hub device add NAME` 注册设备并让它推送到此 hub。", "all": "全部"},
}


def _pages_router(state: HubState) -> APIRouter:
    router = APIRouter(include_in_schema=False, dependencies=[Depends(_guard(state))])
    store = state.store

    def words(request: Request) -> tuple[Lang, dict[str, str]]:
        lang = choose_lang(request.cookies.get("datacap_lang"), request.headers.get("accept-language"))
        return lang, {**WORDS[lang], **_HUB_WORDS[lang]}

    def render(request: Request, name: str, **extra: Any) -> HTMLResponse:
        lang, t = words(request)
        other = LANGS[1 - LANGS.index(lang)]
        response = TEMPLATES.TemplateResponse(request, name, {
            "lang": lang, "t": t, "words_json": json.dumps(WORDS[lang], ensure_ascii=False), "other_lang": other,
            "timezone": state.cfg.timezone, **extra})
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/", response_class=HTMLResponse)
    def fleet_page(request: Request, carrier: Text = None, device: Text = None, group: Text = None,
                   offset: Annotated[int, Query(ge=0)] = 0) -> HTMLResponse:
        flt = _filter(carrier, device, group, PAGE_ROWS, offset)
        doc = fleet.fleet_doc(store, flt, silent_after=state.silent_after, tz=state.cfg.tz)
        options = store.filter_options()
        keep = {k: v for k, v in (("carrier", carrier), ("device", device), ("group", group)) if v}
        pages = {"prev": None if offset == 0 else "/?" + urlencode({**keep, "offset": max(0, offset - PAGE_ROWS)}),
                 "next": None if offset + PAGE_ROWS >= doc["total"] else
                 "/?" + urlencode({**keep, "offset": offset + PAGE_ROWS})}
        return render(request, "fleet.html", doc=doc, options=options, chosen=keep, pages=pages, quote=quote)

    @router.get("/cards/{device}/{card}", response_class=HTMLResponse)
    def card_page(request: Request, device: str, card: str) -> Response:
        row = store.card(device, card)
        if row is None:
            return HTMLResponse(f"no card {card!r} on device {device!r}", status_code=404)
        texts = [e for e in store.events(device, "texts", 20) if e["card"] in ("", card)]
        alerts = [e for e in store.events(device, "alerts", 20) if e["card"] in ("", card)]
        api = f"cards/{quote(device, safe='')}/{quote(card, safe='')}/status"
        def fmt(epoch: int) -> str:
            return dt.datetime.fromtimestamp(epoch, UTC).astimezone(state.cfg.tz).strftime("%Y-%m-%d %H:%M")

        return render(request, "card.html", row=row, api=api, texts=texts, alerts=alerts, fmt=fmt)

    @router.get("/lang/{code}")
    def set_lang(code: str, next: str = "/") -> Response:
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        if code in LANGS:
            response.set_cookie("datacap_lang", code, samesite="lax", max_age=400 * 86400)
        return response

    return router


def install_auth_handler(app: FastAPI, state: HubState) -> None:
    """401 for the API; for browsers a sign-in form that sets the token as an HttpOnly cookie."""
    @app.exception_handler(_AuthFailed)
    async def auth_failed(request: Request, _: _AuthFailed) -> Response:
        if request.url.path.startswith("/api/"):
            return _error(401, "send the access token as 'Authorization: Bearer TOKEN'",
                          {"WWW-Authenticate": "Bearer"})
        target = quote(request.url.path)
        return HTMLResponse(f'<!doctype html><meta charset="utf-8"><title>datacap hub</title>'
                            f'<form method="post" action="/login?next={target}"><label>Access token '
                            f'<input name="token" type="password" autocomplete="current-password"></label>'
                            f'<button>Sign in</button></form>', status_code=401)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request, next: str = "/") -> Response:
        form = await request.form()
        presented = str(form.get("token", "")).strip()
        if not auth.token_ok(state.token, presented):
            return PlainTextResponse("wrong token", status_code=401)
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(auth.COOKIE, presented, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", max_age=400 * 86400)
        return response
