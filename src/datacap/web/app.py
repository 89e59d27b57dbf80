"""The dashboard's ASGI app: JSON API under /api/v1, /metrics, and the HTML pages.

The daemon is the store's only writer; every request here borrows a read-only connection from a
small pool. Every JSON document is built by the same view function the CLI's ``--json`` prints,
so the two never disagree.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from datacap.config import Config
from datacap.errors import DatacapError, InputError, StoreError
from datacap.query import views
from datacap.store import Reader, open_read
from datacap.store.db import describe_sqlite_error
from datacap.timeutil import Resolution, bucket_start, parse_instant
from datacap.units import parse_size
from datacap.web import auth, csrf, data, queries
from datacap.web.metrics import make_registry
from datacap.web.sms import sms_from_fields

HERE = Path(__file__).parent
Kind = Literal["app", "client", "service"]


class ErrorDoc(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorDoc, "description": "bad query: the message names the parameter"},
    401: {"model": ErrorDoc, "description": "the access token is missing or wrong"},
    503: {"model": ErrorDoc, "description": "the store or the feature is not available"},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS, 403: {"model": ErrorDoc,
                    "description": "no token is configured and the request is not from the dashboard's own page"},
    422: {"model": ErrorDoc, "description": "the body is not a usable SMS or calibration"}}


class ReaderPool:
    """Up to ``size`` idle read-only connections, reused across requests (opening costs a few ms)."""

    def __init__(self, db_path: Path, cfg: Config, size: int = 8) -> None:
        self.db_path = db_path
        self.cfg = cfg
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._size = size

    @contextmanager
    def reader(self) -> Iterator[Reader]:
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = open_read(self.db_path)
        try:
            yield Reader(conn, self.cfg.tz, self.cfg.week_start_index)
        finally:
            if self._idle.qsize() < self._size:
                self._idle.put(conn)
            else:
                conn.close()


class State:
    """What the routes share: config, token, the pool and the live-rate sampler."""

    def __init__(self, db_path: Path, cfg: Config, token: str | None, live: queries.LiveRates) -> None:
        self.db_path = db_path
        self.cfg = cfg
        self.token = token
        self.pool = ReaderPool(db_path, cfg)
        self.live = live
        self.forms = csrf.FormTokens()


def create_app(db_path: Path, cfg: Config, token: str | None = None, *, host: str = "127.0.0.1",
               live: queries.LiveRates | None = None) -> FastAPI:
    """The dashboard for the store at ``db_path``. ``token`` overrides ``cfg.web.token``.

    Raises ConfigError when ``host`` is beyond loopback and no token is set. Without a token, only
    requests whose Host header is a loopback name are answered (a web page elsewhere cannot read
    the API through DNS rebinding).
    """
    token = token or cfg.web.token
    auth.check_listen(host, token)
    state = State(db_path, cfg, token, live or queries.LiveRates())
    app = FastAPI(title="datacap", version="1", description="Data usage per card, interface, app, client and "
                  "service. Every document equals the CLI's --json output for the same query.",
                  # no Swagger/ReDoc pages: FastAPI loads them from a CDN, and nothing here may
                  openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None)
    app.state.dc = state
    # level 1: a third of the bytes at a tenth of level 9's CPU (level 9 cost 30 ms per 200 KB on this box)
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=1)
    _install_guards(app, state)
    app.include_router(_api_router(state))
    from datacap.web.pages import pages_router
    app.include_router(pages_router(state))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    registry = make_registry(state.pool.reader, cfg)

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(_reader_guard(state))])
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


# Scripts and styles only from the dashboard itself (no inline script: the page's words travel as a JSON
# data block); style attributes stay allowed because ECharts positions its tooltips with them. No page
# may frame the dashboard (clickjacking a calibration form), and no URL (a ?token=) leaks as a Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "style-src-attr 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; "
                               "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _install_guards(app: FastAPI, state: State) -> None:
    @app.middleware("http")
    async def loopback_host(request: Request, call_next: Any) -> Any:
        if state.token is None:
            hostname = request.url.hostname or ""
            if not auth.is_loopback(hostname):
                response: Response = PlainTextResponse(f"datacap answers only on loopback names without a token "
                                                       f"(Host: {hostname!r})", status_code=421)
                response.headers.update(SECURITY_HEADERS)
                return response
        response = await call_next(request)
        if request.url.path.startswith("/static/") and request.query_params.get("v"):
            response.headers["Cache-Control"] = "public, max-age=2592000, immutable"  # the URL names the content
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's own checks (an unknown --by, a limit below 1) read like the rest: key, expected, found."""
        return JSONResponse({"error": describe_validation(exc.errors())}, status_code=400)

    @app.exception_handler(AuthFailed)
    async def auth_failed(request: Request, exc: AuthFailed) -> Response:
        if request.url.path.startswith(("/api/", "/metrics")):
            return JSONResponse({"error": str(exc)}, status_code=exc.status,
                                headers={"WWW-Authenticate": "Bearer"} if exc.status == 401 else None)
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(data.Unavailable)
    async def unavailable(_: Request, exc: data.Unavailable) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503)

    @app.exception_handler(DatacapError)
    async def user_error(_: Request, exc: DatacapError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(sqlite3.DatabaseError)
    async def damaged_store(_: Request, exc: sqlite3.DatabaseError) -> JSONResponse:
        """A damaged page met by a query: say so (503), never a 500 with a traceback in the log."""
        return JSONResponse({"error": describe_sqlite_error(state.db_path, exc)}, status_code=503)


def describe_validation(errors: Any) -> str:
    parts = []
    for err in errors:
        key = ".".join(str(p) for p in err.get("loc", ())[1:]) or "request"
        found = f", found {err['input']!r}" if "input" in err and err["input"] is not None else ""
        parts.append(f"{key}: {err.get('msg', 'invalid')}{found}")
    return "; ".join(parts)


class AuthFailed(DatacapError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _reader_guard(state: State) -> Any:
    """Reads: open on loopback without a token; with a token configured, only with it."""
    def guard(request: Request) -> None:
        if state.token is not None and not auth.token_ok(state.token, auth.presented_token(request)):
            raise AuthFailed("send the access token as 'Authorization: Bearer TOKEN' or sign in at /login", 401)
    return guard


def _writer_guard(state: State) -> Any:
    """Writes (calibration, SMS) need the access token; without one configured (loopback only), they
    come from the dashboard's own pages: same origin and the page's form token (web/csrf.py)."""
    def guard(request: Request) -> None:
        if state.token is None:
            if state.forms.accepts(request):
                return
            raise AuthFailed("writes without an access token come only from this dashboard's own pages "
                             "(same origin, with the page's form token)", 403)
        if not auth.token_ok(state.token, auth.presented_token(request)):
            raise AuthFailed("send the access token as 'Authorization: Bearer TOKEN' or sign in at /login", 401)
    return guard


IfaceQ = Annotated[list[str] | None, Query(description="interface name or glob; repeatable")]
SinceQ = Annotated[str | None, Query(description="start: date or ISO time, local timezone")]
UntilQ = Annotated[str | None, Query(description="end, exclusive: date or ISO time")]
LimitQ = Annotated[int | None, Query(ge=1, le=100000, description="at most N rows")]
CardQ = Annotated[str | None, Query(description="only this card's usage (as `--card`)")]


def _api_router(state: State) -> Any:
    from fastapi import APIRouter

    api = APIRouter(prefix="/api/v1", dependencies=[Depends(_reader_guard(state))], responses=ERRORS)
    cfg = state.cfg

    def when(text: str | None, what: str) -> dt.datetime | None:
        return None if text is None else parse_instant(text, cfg.tz, what=what)

    def month_to_now(since: str | None, until: str | None) -> tuple[dt.datetime, dt.datetime]:
        """The CLI's default range for rankings: this local month up to now."""
        now = views.now_utc()
        return (when(since, "since") or bucket_start("month", now, cfg.tz), when(until, "until") or now)

    @api.get("/summary", summary="Today, yesterday, week, month (+ estimate), all time per interface")
    def summary(iface: IfaceQ = None) -> JSONResponse:
        with state.pool.reader() as r:
            return JSONResponse(views.summary_json(r, cfg, iface))

    @api.get("/interfaces", summary="Known interfaces with first/last seen and totals")
    def interfaces() -> JSONResponse:
        with state.pool.reader() as r:
            return JSONResponse(views.interfaces_json(r, cfg))

    @api.get("/usage", summary="Bytes per interface by 5min/hour/day/week/month/year, or the top days")
    def usage(by: views.By = "day", iface: IfaceQ = None, since: SinceQ = None, until: UntilQ = None,
              limit: LimitQ = None) -> JSONResponse:
        with state.pool.reader() as r:
            return JSONResponse(views.usage_json(r, cfg, by, iface, when(since, "since"), when(until, "until"),
                                                 limit))

    def ranking(kind: Kind) -> Any:
        def handler(iface: IfaceQ = None, since: SinceQ = None, until: UntilQ = None,
                    limit: LimitQ = None, card: CardQ = None) -> JSONResponse:
            lo, hi = month_to_now(since, until)
            with state.pool.reader() as r:
                return JSONResponse(views.ranking_json(r, cfg, kind, lo, hi, iface, limit, card))

        def history(name: str, by: Resolution = "day", iface: IfaceQ = None, since: SinceQ = None,
                    until: UntilQ = None) -> JSONResponse:
            lo, hi = month_to_now(since, until)
            with state.pool.reader() as r:
                return JSONResponse(views.history_json(r, cfg, kind, name, by, lo, hi, iface))
        return handler, history

    for kind in ("app", "client", "service"):
        handler, history = ranking(kind)
        api.get(f"/{kind}s", summary=f"{kind}s ranked by bytes (default: this month)",
                operation_id=f"{kind}s")(handler)
        api.get(f"/{kind}s/{{name}}", summary=f"one {kind}'s history", operation_id=f"{kind}_history")(history)

    @api.get("/status", summary="Plan status per card (headline, buckets, pace, forecast, state); 503 until configured")
    def status(card: str | None = None, at: SinceQ = None) -> JSONResponse:
        with state.pool.reader() as r:
            return JSONResponse(data.status(r, cfg, card, when(at, "at")))

    @api.get("/cycle", summary="Per card: the cycle's cumulative general use per day (measured, then forecast), "
             "the quota and the alert lines; 503 until configured")
    def cycle(card: str | None = None) -> JSONResponse:
        with state.pool.reader() as r:
            return JSONResponse(data.cycle(r, cfg, card))

    @api.get("/alerts", summary="Alert rules and their state; 503 until alerts are configured")
    def alerts() -> JSONResponse:
        with state.pool.reader() as r:
            return JSONResponse(data.alerts_list(r, cfg))

    @api.get("/alerts/history", summary="Alerts fired, newest first")
    def alerts_history(limit: Annotated[int, Query(ge=1, le=10000)] = 100) -> JSONResponse:
        with state.pool.reader() as r:
            return JSONResponse(data.alerts_history(r, cfg, limit))

    @api.get("/features", summary="Which optional views (plan status, alerts, calibration) work here")
    def features() -> JSONResponse:
        return JSONResponse({**data.features(cfg), "token": state.token is not None})

    @api.get("/plan", summary="The resolved config of each card")
    def plan() -> JSONResponse:
        return JSONResponse(data.plan(cfg))

    @api.get("/heatmap", summary="Bytes by hour of day x weekday (default: the last 4 weeks)")
    def heatmap(iface: IfaceQ = None, since: SinceQ = None, until: UntilQ = None) -> JSONResponse:
        now = views.now_utc()
        hi = when(until, "until") or now
        lo = when(since, "since") or bucket_start("day", hi, cfg.tz) - dt.timedelta(days=28)
        if lo >= hi:
            raise InputError("since must be before until")
        with state.pool.reader() as r:
            return JSONResponse(queries.heatmap_json(r, cfg, lo, hi, iface))

    @api.get("/live", summary="Live rx/tx bit rates of the metered interfaces")
    def live(iface: IfaceQ = None) -> JSONResponse:
        with state.pool.reader() as r:
            return JSONResponse(queries.live_json(r, cfg, state.live, iface))

    @api.get("/health", summary="When the daemon last flushed to the store")
    def health() -> JSONResponse:
        with state.pool.reader() as r:
            return JSONResponse(queries.health_json(r, cfg))

    _write_routes(api, state)
    return api


SMS_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["text"], "properties": {
        "from": {"type": "string"}, "text": {"type": "string"}, "time": {"type": "string"},
        "card": {"type": "string"}}}},
    "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {
        "from": {"type": "string"}, "content": {"type": "string"}, "timestamp": {"type": "string"},
        "card": {"type": "string"}}}}}}}
CALIBRATE_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["card"], "properties": {
        "card": {"type": "string"}, "bucket": {"type": "string"}, "used": {"type": "string"},
        "remaining": {"type": "string"}, "at": {"type": "string"}, "sms": {"type": "string"}}}},
    "application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["card"], "properties": {
        "card": {"type": "string"}, "bucket": {"type": "string"}, "used": {"type": "string"},
        "remaining": {"type": "string"}, "sms": {"type": "string"}}}}}}}


MAX_BODY = 64 * 1024  # an SMS is at most a few KB, even joined from parts: anything larger is refused unread


async def read_fields(request: Request) -> dict[str, Any]:
    """A JSON object or form fields, whichever the client sent; InputError otherwise."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise InputError(f"body: expected at most {MAX_BODY // 1024} KiB, found {declared} bytes")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise InputError(f"body: expected at most {MAX_BODY // 1024} KiB, found more")
    request._body = raw  # what Starlette's own body()/form() read again (the stream is consumed)
    if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        doc = json.loads(raw or b"null")
    except RecursionError:
        raise InputError("body: expected a flat JSON object, found one nested too deeply") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"body: expected a JSON object or form fields, found {ctype or 'no content type'} "
                         "that is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InputError(f"body: expected a JSON object, found {type(doc).__name__}")
    return doc


def _write_routes(api: Any, state: State) -> None:
    cfg = state.cfg
    guard = [Depends(_writer_guard(state))]

    @api.post("/sms", summary="Calibrate from a forwarded carrier SMS (token required)", dependencies=guard,
              responses=WRITE_ERRORS, openapi_extra=SMS_BODY)
    async def sms(request: Request) -> JSONResponse:
        message = sms_from_fields(await read_fields(request), cfg.tz)
        return JSONResponse(data.calibrate_sms(state.db_path, cfg, message))

    @api.post("/calibrate", summary="Calibrate a card from a carrier figure or SMS text (token required)",
              dependencies=guard, responses=WRITE_ERRORS, openapi_extra=CALIBRATE_BODY)
    async def calibrate(request: Request) -> JSONResponse:
        fields = await read_fields(request)
        card = str(fields.get("card") or "").strip()
        if not card:
            raise InputError("card: expected the card's name from the config, found nothing")
        if str(fields.get("sms") or "").strip():
            message = sms_from_fields({"text": fields["sms"], "card": card, "time": fields.get("at")}, cfg.tz)
            return JSONResponse(data.calibrate_sms(state.db_path, cfg, message))
        used, left = (str(fields.get(k) or "").strip() for k in ("used", "remaining"))
        if bool(used) == bool(left):
            raise InputError("calibration: expected exactly one of 'used' or 'remaining' (like 12.5 GB), "
                             f"found {'both' if used else 'neither'}")
        at = parse_instant(str(fields["at"]), cfg.tz, what="at") if fields.get("at") else views.now_utc()
        request_ = data.CalibrationRequest(card=card, bucket=str(fields.get("bucket") or "").strip() or None,
                                           used_bytes=parse_size(used) if used else None,
                                           remaining_bytes=parse_size(left) if left else None, at=at)
        return JSONResponse(data.calibrate(state.db_path, cfg, request_))

