"""Sending a report with its file attached, through apprise to an HTTP receiver on loopback."""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from datacap.config import Config
from datacap.errors import DeliveryError
from datacap.query.reports import channel_sender
from datacap.reports import render_report
from datacap.reports.schedule import ReportsConfig
from datacap.reports.service import send_report, send_scheduled
from datacap.store import Reader, open_read

from .conftest import TZ, TZ_NAME, Store
from .factory import GIB, make_report


class Receiver:
    """A JSON webhook on 127.0.0.1 that records what it is sent and answers ``status``."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                outer.posts.append(json.loads(self.rfile.read(length)))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook-secret-path"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()
        r.thread.join(timeout=10)


def test_pdf_attached(receiver: Receiver) -> None:
    report = make_report(services=[("youtube", 6 * GIB)])
    sender = channel_sender(Config(), configured={"home": receiver.url})
    pdf = render_report(report, "pdf")
    assert send_report(report, sender, "pdf", "en", pdf) == []
    (post,) = receiver.posts
    assert post["title"] == "datacap report 2026-10"  # the report's own title; the body is plain text
    assert "Video services took" in post["message"] and not post["message"].startswith("#")
    assert "**" not in post["message"] and "```" not in post["message"]
    (attachment,) = post["attachments"]
    assert attachment["filename"] == "datacap-report-2026-10.pdf"
    assert base64.b64decode(attachment["base64"]) == pdf


def test_refused_delivery_is_a_clear_error_without_secrets(receiver: Receiver) -> None:
    receiver.status = 500
    sender = channel_sender(Config(), configured={"home": receiver.url})
    with pytest.raises(DeliveryError) as info:
        send_report(make_report(), sender, "html")
    text = str(info.value)
    assert text.startswith("report not delivered: home: json://") and "hook-secret-path" not in text


@pytest.mark.parametrize(("configured", "channels", "message"), [
    ({}, None, "--send: no [channels] configured"),
    ({"home": "json://127.0.0.1:9/x"}, ["work"], "--send: unknown channel(s) work (known: home)"),
])
def test_channel_errors(configured: dict[str, str], channels: list[str] | None, message: str) -> None:
    with pytest.raises(DeliveryError) as info:
        channel_sender(Config(), channels, configured=configured)
    assert str(info.value).startswith(message)


def test_daemon_sends_the_due_report_once(store: Store, receiver: Receiver) -> None:
    cfg = Config(timezone=TZ_NAME)
    rcfg = ReportsConfig(send="monthly", format="png", lang="zh-CN", at="08:00", card="cmcc")
    sender = channel_sender(cfg, configured={"home": receiver.url})
    reader = Reader(open_read(store.db), TZ)
    try:
        first_day_after = dt.datetime.combine(store.month.end_day, dt.time(), TZ)
        assert send_scheduled(reader, cfg, rcfg, first_day_after + dt.timedelta(hours=7), None, sender) is None
        sent = send_scheduled(reader, cfg, rcfg, first_day_after + dt.timedelta(hours=8), None, sender)
        assert sent is not None and sent[0] == store.month and sent[1] == []
        again = send_scheduled(reader, cfg, rcfg, first_day_after + dt.timedelta(hours=9), store.month.label, sender)
        assert again is None
    finally:
        reader.conn.close()
    (post,) = receiver.posts
    assert post["title"] == f"datacap 流量报告 {store.month.label} (cmcc)"  # in the report's language
    assert not post["message"].startswith("#") and "【" in post["message"]
    png = base64.b64decode(post["attachments"][0]["base64"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_daemon_plugin_sends_once_and_records_it(store: Store, receiver: Receiver, tmp_path: Any) -> None:
    """The daemon's reports plugin: due report sent through the config's channels, recorded, not resent."""
    import shutil

    from datacap.config import parse_config
    from datacap.daemon.plugins import ReportsPlugin
    from datacap.store import Writer, open_write

    db = tmp_path / "copy.db"
    shutil.copy(store.db, db)
    cfg = parse_config({"timezone": TZ_NAME, "channels": {"home": receiver.url},
                        "reports": {"send": "monthly", "format": "md", "at": "08:00"}})
    writer = Writer(open_write(db), TZ)
    plugin = ReportsPlugin(cfg, writer)
    due = dt.datetime.combine(store.month.end_day, dt.time(9), TZ).timestamp()
    plugin.after_flush(due)
    plugin.after_flush(due + 3600)  # already sent: nothing more
    sent = writer.conn.execute("SELECT kind, period, detail FROM report_sends").fetchall()
    writer.conn.close()
    assert sent == [("monthly", store.month.label, "")]
    (post,) = receiver.posts
    assert post["title"].startswith("datacap ") and store.month.label in post["title"]
