"""Keeping a SIM alive (保号): when a rule is due, the log written before each attempt, the daily
bound across restarts, the alert once the day's attempts failed, and a data exchange that really
leaves through the card's interface (a veth in namespaces the test creates, to an HTTP server there)."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from datacap.config import parse_config
from datacap.errors import ConfigError, DatacapError
from datacap.modem.keepalive import Attempt, Keepalive, KeepaliveRule, due, http_get
from datacap.store import Writer, open_write
from tests.conftest import datacap_cmd, require_root, subprocess_env
from tests.nsutil import DaemonRunner, Pair, destroy, make_pair, wait_for

SH = ZoneInfo("Asia/Shanghai")


def rule(**extra: object) -> KeepaliveRule:
    return KeepaliveRule.model_validate({"card": "unicom", "url": "http://127.0.0.1:1/", **extra})


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SH)


def ep(text: str) -> int:
    return int(at(text).timestamp())


@pytest.mark.parametrize(("history", "now", "expected"), [
    ([], "2026-11-30T09:59", (False, "next at 2026-11-30T10:00:00+08:00")),
    ([], "2026-11-30T10:00", (True, "due")),
    ([Attempt(ep("2026-11-01T10:00"), "ok")], "2026-11-30T12:00", (False, "next at 2026-12-01T10:00:00+08:00")),
    ([Attempt(ep("2026-11-01T10:00"), "ok")], "2026-12-01T10:00", (True, "due")),
    ([Attempt(ep("2026-11-30T10:00"), "failed")], "2026-11-30T10:10", (False, "retrying later")),
    ([Attempt(ep("2026-11-30T10:00"), "failed")], "2026-11-30T10:30", (True, "due")),
    ([Attempt(ep("2026-11-30T10:00"), "failed"), Attempt(ep("2026-11-30T10:30"), "pending")], "2026-11-30T23:00",
     (False, "2 attempts today (at most 2); again tomorrow")),  # a crash mid-attempt still counts
    ([Attempt(ep("2026-11-30T10:00"), "failed"), Attempt(ep("2026-11-30T10:30"), "failed")], "2026-12-01T10:00",
     (True, "due")),
])
def test_due(history: list[Attempt], now: str, expected: tuple[bool, str]) -> None:
    assert due(rule(every=30), history, at(now), SH) == expected


def test_config_errors() -> None:
    card = {"name": "unicom", "interfaces": ["wwan0"], "buckets": [{"name": "all", "quota": "1 GB"}]}
    with pytest.raises(ConfigError, match="expected one action"):
        parse_config({"cards": [card], "keepalive": [{"card": "unicom"}]})
    with pytest.raises(ConfigError, match=r"keepalive\[0\]\.card: expected a card name \(unicom\), found 'cmcc'"):
        parse_config({"cards": [card], "keepalive": [{"card": "cmcc", "url": "http://x/"}]})
    with pytest.raises(ConfigError, match="HH:MM"):
        parse_config({"cards": [card], "keepalive": [{"card": "unicom", "url": "http://x/", "at": "25:00"}]})
    cfg = parse_config({"cards": [card], "keepalive": [{"card": "unicom", "send": {"sms": "CXLL", "to": "10010"}}]})
    assert cfg.keepalive[0].action == "sms:10010"


class Hits:
    def __init__(self, status: int) -> None:
        self.status = status
        self.paths: list[str] = []
        hits = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.paths.append(f"{self.path} {self.headers.get('User-Agent')}")
                self.send_response(hits.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/keep"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def failing() -> Iterator[Hits]:
    h = Hits(503)
    yield h
    h.close()


def test_failures_are_bounded_per_day_across_restarts_and_alerted_once(failing: Hits, tmp_path: Path) -> None:
    conn = open_write(tmp_path / "s.db")
    writer = Writer(conn, SH)
    r = rule(url=failing.url, retry_after="10m", notify=["phone"])
    alerts: list[str] = []

    def new() -> Keepalive:  # a restarted daemon: only the store remembers
        return Keepalive(conn, writer.transaction, [r], {"unicom": None}, SH, notify=lambda u, t, b: alerts.append(b),
                         channels={"phone": "json://x/"})

    t0 = at("2026-11-30T10:00").timestamp()
    [note] = new().step(t0)
    assert "keep-alive failed" in note and "503" in note and alerts == []
    assert new().step(t0 + 60) == []  # retrying later
    assert "failed" in new().step(t0 + 600)[0]
    assert len(alerts) == 1 and "2 keep-alive attempts for card unicom failed today" in alerts[0]
    for minutes in (20, 60, 600):
        assert new().step(t0 + minutes * 60) == []  # the day's bound holds
    assert len(failing.paths) == 2 and len(alerts) == 1
    failing.status = 200
    assert "keep-alive ok" in new().step(at("2026-12-01T10:00").timestamp())[0]  # tomorrow: again, and it works
    rows = conn.execute("SELECT outcome FROM keepalive_log ORDER BY id").fetchall()
    assert [o for (o,) in rows] == ["failed", "failed", "ok"]
    assert new().step(at("2026-12-15T10:00").timestamp()) == []  # next due 30 days after the success


def test_http_get_says_why() -> None:
    with pytest.raises(DatacapError, match=r"GET http://127\.0\.0\.1:9/x"):
        http_get("http://127.0.0.1:9/x", None, timeout=2)


SERVER = r"""
import http.server, sys
out = open(sys.argv[2], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        out.write(self.client_address[0] + " " + self.path + "\n"); out.flush()
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root()
    p = make_pair(subnet=71)
    try:
        yield p
    finally:
        destroy(p)


@pytest.mark.root
def test_daemon_exchanges_data_through_the_cards_interface_once(pair: Pair, tmp_path: Path) -> None:
    hits = tmp_path / "hits.txt"
    hits.touch()
    server = pair.b.popen(sys.executable, "-c", SERVER, "8971", str(hits))
    config = f'''
[[cards]]
name = "unicom"
interfaces = ["{pair.a_if}"]

[[cards.buckets]]
name = "all"
quota = "1 GB"

[[keepalive]]
card = "unicom"
url = "http://{pair.b_ip}:8971/keepalive"
every = 30
at = "00:00"
'''
    daemon = DaemonRunner(pair, tmp_path, config)
    try:
        wait_for(lambda: pair.b.run("ss", "-tlnH").stdout.count(":8971") > 0, 10, "the server")
        daemon.start()
        wait_for(lambda: hits.read_text().strip(), 30, "the keep-alive request")
        daemon.stop()
        daemon.start()  # a restart: the log says it is done for 30 days
        wait_for(lambda: daemon.total()[1] > 0, 30, "the daemon to meter after the restart")
        with sqlite3.connect(f"file:{daemon.db}?mode=ro", uri=True) as conn:
            flushes = conn.execute("SELECT max(wall) FROM counters").fetchone()[0]
        wait_for(lambda: _max_wall(daemon.db) > flushes + 2, 30, "a few more flushes")
        daemon.stop()
    finally:
        daemon.close()
        server.kill()
    [line] = hits.read_text().splitlines()
    assert line == f"{pair.a_ip} /keepalive"  # from the card's address: through its interface
    doc = json.loads(subprocess.run(datacap_cmd("keepalive", "log", "--json", "--db", str(daemon.db), "--config",
                                                str(daemon.config)), capture_output=True, text=True,
                                    env=subprocess_env(), timeout=60).stdout)
    [attempt] = doc["attempts"]
    assert attempt["outcome"] == "ok" and attempt["card"] == "unicom" and "204" in attempt["detail"]


def _max_wall(db: Path) -> float:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return float(conn.execute("SELECT max(wall) FROM counters").fetchone()[0] or 0)


def test_a_text_through_the_modemmanager_standin(mm_mock: object, tmp_path: Path) -> None:
    """The SMS action through the daemon plugin's sender and ModemManager (the stand-in on a private bus):
    sent from the modem holding the card's SIM; a card whose SIM is in no modem fails, logged and bounded."""
    from types import SimpleNamespace

    from datacap.daemon.keepalive import KeepalivePlugin
    from datacap.modem.mm import ModemManagerClient

    card = {"name": "cmcc", "iccid": ["89860000000000000011"], "interfaces": ["wwan0"],
            "buckets": [{"name": "all", "quota": "1 GB"}]}
    other = {**card, "name": "gone", "iccid": ["89860000000000000099"], "interfaces": ["wwan9"]}
    cfg = parse_config({"timezone": "Asia/Shanghai", "cards": [card, other], "keepalive": [
        {"card": "cmcc", "send": {"sms": "保号 CXLL", "to": "10086"}, "at": "00:00"},
        {"card": "gone", "send": {"sms": "CXLL", "to": "10086"}, "at": "00:00", "max_attempts": 1}]})
    client = ModemManagerClient(mm_mock.address).start()  # type: ignore[attr-defined]
    try:
        writer = Writer(open_write(tmp_path / "s.db"), SH)
        plugin = KeepalivePlugin(cfg, writer, SimpleNamespace(client=client))
        wait_for(lambda: client.snapshot(), 10, "the modem to be seen")
        now = dt.datetime.now(dt.UTC).timestamp()
        plugin.after_flush(now)
        plugin.after_flush(now + 3600)  # nothing more: cmcc done for 30 days, gone's one attempt used
    finally:
        client.close()
    assert mm_mock.sent() == [("10086", "保号 CXLL")]  # type: ignore[attr-defined]
    rows = writer.conn.execute("SELECT card, outcome, detail FROM keepalive_log ORDER BY card").fetchall()
    assert rows[0][:2] == ("cmcc", "ok") and rows[1][:2] == ("gone", "failed")
    assert "not active in any modem" in rows[1][2] and len(rows) == 2
