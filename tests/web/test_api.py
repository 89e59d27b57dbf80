"""The JSON API against the real CLI, the token rules, /metrics and the SMS/calibration hooks."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from datacap.cli.web import serve
from datacap.config import Config
from datacap.errors import ConfigError
from datacap.web.app import create_app
from datacap.web.server import WebThread, build_server

from .conftest import TOKEN, Store
from .helpers import datacap_json


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store.db, store.cfg), base_url="http://127.0.0.1") as c:
        yield c


def _days(store: Store) -> tuple[str, str]:
    today = dt.datetime.now(store.cfg.tz).date()
    return (today - dt.timedelta(days=20)).isoformat(), (today - dt.timedelta(days=2)).isoformat()


def _cases(store: Store) -> list[tuple[str, dict[str, Any], list[str]]]:
    since, until = _days(store)
    rng = ["--since", since, "--until", until]
    q = {"since": since, "until": until}
    return [
        ("interfaces", {}, ["interfaces"]),
        ("usage", {"by": "day", **q}, ["usage", "--by", "day", *rng]),
        ("usage", {"by": "hour", "iface": "wwan0", **q}, ["usage", "--by", "hour", "--iface", "wwan0", *rng]),
        ("usage", {"by": "week", **q}, ["usage", "--by", "week", *rng]),
        ("usage", {"by": "month", "since": "2025-01-01"}, ["usage", "--by", "month", "--since", "2025-01-01"]),
        ("usage", {"by": "top", "limit": 5, **q}, ["usage", "--by", "top", "--limit", "5", *rng]),
        ("apps", {**q}, ["apps", *rng]),
        ("apps", {"limit": 2, "iface": "usb*", **q}, ["apps", "--limit", "2", "--iface", "usb*", *rng]),
        ("clients", {**q}, ["clients", *rng]),
        ("services", {**q}, ["services", *rng]),
        ("apps/firefox", {"by": "day", **q}, ["apps", "firefox", "--by", "day", *rng]),
        ("clients/192.168.8.23", {"by": "hour", **q}, ["clients", "192.168.8.23", "--by", "hour", *rng]),
        ("services/bilibili", {"by": "week", **q}, ["services", "bilibili", "--by", "week", *rng]),
    ]


def test_api_equals_cli_json(store: Store, server: WebThread) -> None:
    """Through a real uvicorn on loopback, each document equals `datacap ... --json` for the same query."""
    assert server.url
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for path, params, argv in _cases(store):
            api = http.get(f"/api/v1/{path}", params=params)
            assert api.status_code == 200, (path, api.text)
            assert api.json() == datacap_json(store.db, store.config, *argv), path


def test_summary_matches_cli_except_the_clock(store: Store, client: TestClient) -> None:
    api = client.get("/api/v1/summary").json()
    cli = datacap_json(store.db, store.config)
    strip = lambda doc: [{k: i[k] for k in ("name", "all_time", "first_seen")} for i in doc["interfaces"]]  # noqa: E731
    assert strip(api) == strip(cli)
    assert [i["name"] for i in api["interfaces"]] == ["usb0", "wwan0"]


@pytest.mark.parametrize(("path", "fragment"), [
    ("/api/v1/usage?since=yesterday-ish", "since: expected an ISO 8601"),
    ("/api/v1/usage?iface=nope0", "no such interface"),
    ("/api/v1/apps/nobody", "no app named 'nobody'"),
    ("/api/v1/heatmap?since=2026-11-10&until=2026-11-01", "since must be before until"),
    ("/api/v1/usage?by=fortnight", "by: Input should be '5min', 'hour'"),
    ("/api/v1/apps?limit=0", "limit: Input should be greater than or equal to 1, found '0'"),
])
def test_bad_queries_say_what_is_wrong(client: TestClient, path: str, fragment: str) -> None:
    r = client.get(path)
    assert r.status_code == 400
    assert fragment in r.json()["error"]


def test_nothing_is_loaded_from_elsewhere(client: TestClient) -> None:
    assert client.get("/api/v1/docs").status_code == 404  # FastAPI's Swagger page would pull a CDN
    for path in ("/", "/usage", "/who", "/when", "/alerts", "/plan", "/calibrate", "/login"):
        html = client.get(path).text
        assert "http://" not in html and "https://" not in html, path


def test_unconfigured_features_answer_503_saying_why(client: TestClient) -> None:
    for path, why in (("/api/v1/status", "no cards configured"), ("/api/v1/alerts", "no alert rules configured"),
                      ("/api/v1/alerts/history", "no alert rules configured")):
        r = client.get(path)
        assert r.status_code == 503 and why in r.json()["error"], path
    assert client.get("/api/v1/features").json() == {"status": False, "alerts": False, "calibration": False,
                                                     "token": False}


def test_heatmap_sums_the_hourly_buckets(store: Store, client: TestClient) -> None:
    since, until = _days(store)
    heat = client.get("/api/v1/heatmap", params={"since": since, "until": until}).json()
    usage = datacap_json(store.db, store.config, "usage", "--by", "hour", "--since", since, "--until", until)
    assert heat["total_bytes"] == sum(i["total"]["total_bytes"] for i in usage["interfaces"])
    assert len(heat["cells"]) == 7 and all(len(row) == 24 for row in heat["cells"])
    assert 19 <= heat["peak"]["hour"] <= 23  # the generated evenings are the busy hours


def test_metrics_counters_equal_the_interfaces_totals(store: Store, client: TestClient) -> None:
    r = client.get("/metrics")
    assert r.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    got = {(s.labels["interface"], s.labels["direction"]): s.value
           for s in families["datacap_interface_bytes"].samples if s.name.endswith("_total")}
    doc = datacap_json(store.db, store.config, "interfaces")
    want = {(i["name"], d): float(i["total"][f"{d}_bytes"]) for i in doc["interfaces"] for d in ("rx", "tx")}
    assert got == want
    assert families["datacap_store_up"].samples[0].value == 1
    assert families["datacap_plan_status_available"].samples[0].value == 0


def test_metrics_report_an_unreadable_store(tmp_path: Any) -> None:
    app = create_app(tmp_path / "missing.db", Config(timezone="UTC"))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        text = c.get("/metrics").text
        assert "datacap_store_up 0.0" in text
        r = c.get("/api/v1/summary")
        assert r.status_code == 503 and "no store at" in r.json()["error"]


# -- tokens ------------------------------------------------------------------------------------------

def test_beyond_loopback_without_token_refuses_to_start(store: Store) -> None:
    with pytest.raises(ConfigError, match="needs a token"):
        create_app(store.db, store.cfg, host="0.0.0.0")
    with pytest.raises(ConfigError, match="needs a token"):
        build_server(store.db, store.cfg, listen="0.0.0.0:8765")
    runner = CliRunner()
    import typer

    cmd = typer.Typer()
    cmd.command()(serve)
    result = runner.invoke(cmd, ["--db", str(store.db), "--config", str(store.config), "--listen", "0.0.0.0:0"])
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)


def test_requests_without_the_token_are_refused(store: Store) -> None:
    app = create_app(store.db, store.cfg, TOKEN, host="0.0.0.0")
    with TestClient(app, base_url="http://router.lan") as c:
        r = c.get("/api/v1/summary")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert c.get("/api/v1/summary", headers={"Authorization": "Bearer wrong-token-000000"}).status_code == 401
        assert c.get("/metrics").status_code == 401
        page = c.get("/usage", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=/usage"
        ok = c.get("/api/v1/summary", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert c.get("/metrics", params={"token": TOKEN}).status_code == 200
        # the login form sets an HttpOnly, SameSite=Strict cookie once; then pages and the API work
        bad = c.post("/login", data={"token": "nope", "next": "/usage"}, follow_redirects=False)
        assert bad.status_code == 401
        login = c.post("/login", data={"token": TOKEN, "next": "/usage"}, follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/usage"
        cookie = login.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert c.get("/usage").status_code == 200
        assert c.get("/api/v1/summary").status_code == 200


def test_without_token_only_loopback_host_names_are_answered(store: Store) -> None:
    app = create_app(store.db, store.cfg)
    with TestClient(app, base_url="http://attacker.example") as c:
        assert c.get("/api/v1/summary").status_code == 421
    with TestClient(app, base_url="http://localhost:8765") as c:
        assert c.get("/api/v1/summary").status_code == 200


CARD_CONFIG = '''timezone = "Asia/Shanghai"

[[cards]]
name = "unicom"
interfaces = ["wwan0"]

[[cards.buckets]]
name = "通用"
quota = "20 GB"

[channels]
hook = "json://127.0.0.1:9/"

[[alerts]]
card = "unicom"
when = "remaining < 20%"
notify = ["hook"]
'''


@pytest.fixture
def card_store(tmp_path: Any) -> tuple[Any, Config]:
    """A store of its own with one card and an alert rule: the calibration routes write into it."""
    from datacap.config import load_config
    from datacap.store import TrafficDelta, Writer, open_write

    config = tmp_path / "config.toml"
    config.write_text(CARD_CONFIG, encoding="utf-8")
    cfg = load_config(config)
    db = tmp_path / "cards.db"
    writer = Writer(open_write(db), cfg.tz)
    start = int(dt.datetime(2026, 11, 10, tzinfo=cfg.tz).timestamp())
    writer.commit([TrafficDelta(start, "wwan0", 4 * 2**30, 0)])
    writer.conn.close()
    return db, cfg


def _calibrations(db: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT card, at, used_bytes, source, raw IS NOT NULL FROM calibrations "
                            "ORDER BY id").fetchall()


def test_sms_post_needs_the_token_and_calibrates(card_store: tuple[Any, Config]) -> None:
    db, cfg = card_store
    app = create_app(db, cfg, TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert c.post("/api/v1/sms", json={"from": "10010", "text": "x"}).status_code == 401
        assert _calibrations(db) == []
        sms = {"from": "10086", "text": "【中国移动】截至2026年11月25日12时00分，您本月国内通用流量剩余14.23GB。",
               "time": "2026-11-25T12:05:00+08:00"}
        r = c.post("/api/v1/sms", json=sms, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["calibrations"][0]["at"] == "2026-11-25T12:00:00+08:00"
        # SmsForwarder-style form post, time in milliseconds
        form = {"from": "10010", "content": "截至11月26日09时42分，您本月已使用国内通用流量6.50GB。",
                "timestamp": str(int(dt.datetime(2026, 11, 26, 10, tzinfo=cfg.tz).timestamp() * 1000))}
        r = c.post("/api/v1/sms", data=form, headers=auth)
        assert r.status_code == 200, r.text
        unreadable = c.post("/api/v1/sms", json={"from": "10086", "text": "hello"}, headers=auth)
        assert unreadable.status_code == 400
        r = c.post("/api/v1/calibrate", data={"card": "unicom", "used": "12.5 GB"}, headers=auth)
        assert r.status_code == 200, r.text
        bad = c.post("/api/v1/calibrate", data={"card": "unicom", "used": "1 GB", "remaining": "2 GB"}, headers=auth)
        assert bad.status_code == 400 and "exactly one of" in bad.json()["error"]
        junk = c.post("/api/v1/sms", content=b"[1, 2]", headers={**auth, "content-type": "application/json"})
        assert junk.status_code == 400 and "expected a JSON object" in junk.json()["error"]
        status = c.get("/api/v1/status", headers=auth).json()
    rows = _calibrations(db)
    assert [(r[3], r[4]) for r in rows] == [("sms:10086", 1), ("sms:10010", 1), ("web", 0)]
    assert rows[0][2] == 20 * 2**30 - round(14.23 * 2**30)
    assert rows[2][2] == int(12.5 * 2**30)
    assert status["cards"][0]["calibration"]["source"] == "web"


def test_status_and_alerts_from_the_real_features(card_store: tuple[Any, Config]) -> None:
    db, cfg = card_store
    with TestClient(create_app(db, cfg), base_url="http://127.0.0.1") as c:
        status = c.get("/api/v1/status", params={"at": "2026-11-25T12:00:00+08:00"}).json()
        assert status["cards"][0]["used_bytes"] == 4 * 2**30
        assert c.get("/api/v1/alerts").json()["rules"][0]["when"] == "remaining < 20%"
        assert c.get("/api/v1/alerts/history").json() == {"alerts": []}
        assert c.get("/api/v1/features").json()["status"] is True


def test_writes_without_a_token_need_the_pages_form_token_and_same_origin(client: TestClient) -> None:
    r = client.post("/api/v1/sms", json={"text": "x"})
    assert r.status_code == 403 and "own pages" in r.json()["error"]
    page = client.get("/calibrate").text
    form_token = page.split('data-form-token="')[1].split('"')[0]
    assert len(form_token) == 64
    body = {"card": "nope", "used": "1 GB"}
    # another site's page: its Origin is not this host, whatever it sends
    other = client.post("/api/v1/calibrate", json=body,
                        headers={"Origin": "http://evil.example", "X-Datacap-CSRF": form_token})
    assert other.status_code == 403
    # the right origin without the page's token (a form posted blind) is refused too
    blind = client.post("/api/v1/calibrate", json=body, headers={"Origin": "http://127.0.0.1"})
    assert blind.status_code == 403
    wrong = client.post("/api/v1/calibrate", json=body,
                        headers={"Origin": "http://127.0.0.1", "X-Datacap-CSRF": "0" * 64})
    assert wrong.status_code == 403
    # the dashboard's own page: past the guard (the unknown card is then the ordinary 400)
    own = client.post("/api/v1/calibrate", json=body,
                      headers={"Origin": "http://127.0.0.1", "X-Datacap-CSRF": form_token})
    assert own.status_code in (400, 503), own.text


def test_real_server_starts_and_stops(server: WebThread) -> None:
    assert server.url and server.url.startswith("http://127.0.0.1:")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/api/v1/health").json()["interfaces"] == 2
        page = http.get("/").text
        assert "/static/vendor/echarts.custom.min.js?v=" in page
        asset = http.get(page.split('src="')[1].split('"')[0])
        assert asset.status_code == 200 and "immutable" in asset.headers["cache-control"]


def test_web_plugin_serves_from_a_child_process_until_the_daemon_closes_it(store: Store) -> None:
    from datacap.web.child import WebPlugin

    cfg = store.cfg.model_copy(update={"web": store.cfg.web.model_copy(update={"listen": "127.0.0.1:0"})})
    plugin = WebPlugin(store.db, cfg)
    try:
        assert plugin.web.url and list(plugin.poll(0.0)) == []
        assert plugin.web.pid != os.getpid() and plugin.web.alive()
        with httpx.Client(base_url=plugin.web.url, timeout=10) as http:
            assert http.get("/api/v1/interfaces").status_code == 200
    finally:
        plugin.close()
    assert not plugin.web.alive()
