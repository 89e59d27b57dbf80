"""`datacap run` delivers an alert once when metered traffic crosses a rule's threshold, and not again
after a restart. Traffic between namespaces the test creates; the receiver listens on the daemon's
namespace's own loopback."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root
from tests.nsutil import DaemonRunner, Pair, destroy, make_pair, wait_for

pytestmark = pytest.mark.root

RECEIVER = r"""
import http.server, sys
out = open(sys.argv[2], "a")
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        out.write(body.decode() + "\n"); out.flush()
        self.send_response(200); self.end_headers()
    def log_message(self, *args): pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook)
print("ready", flush=True)
server.serve_forever()
"""


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root("iperf3")
    p = make_pair(subnet=53)
    try:
        yield p
    finally:
        destroy(p)


def flushes(db: Path) -> float:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT max(wall) FROM counters").fetchone()
    return float(row[0] or 0)


def test_threshold_crossed_by_real_traffic_delivers_once(pair: Pair, tmp_path: Path) -> None:
    deliveries = tmp_path / "deliveries.jsonl"
    deliveries.touch()
    config = f'''
[[cards]]
name = "veth"
interfaces = ["{pair.a_if}"]

[[cards.buckets]]
name = "data"
quota = "40 MB"

[channels]
hook = "json://127.0.0.1:8931/"

[[alerts]]
card = "veth"
bucket = "data"
when = "remaining < 50%"
notify = ["hook"]

[alerting]
language = "en"
'''
    daemon = DaemonRunner(pair, tmp_path, config)
    receiver = pair.a.popen(sys.executable, "-c", RECEIVER, "8931", str(deliveries), stdout=subprocess.PIPE)
    iperf = pair.b.popen("iperf3", "-s", "-p", "5331", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        daemon.start()
        wait_for(lambda: pair.b.run("ss", "-ltn").stdout.count(":5331 ") > 0, 10, "iperf3 server")
        pair.a.run("iperf3", "-c", pair.b_ip, "-p", "5331", "-n", "10M")  # 25 %: nothing yet
        pair.a.run("iperf3", "-c", pair.b_ip, "-p", "5331", "-n", "15M")  # past 50 %
        wait_for(lambda: deliveries.read_text().strip(), 30, "the alert to be delivered")
        daemon.stop(signal.SIGTERM)
        daemon.start()  # a restart must not deliver it again
        seen = flushes(daemon.db)
        wait_for(lambda: flushes(daemon.db) > seen + 1.5, 20, "the restarted daemon to flush and check again")
        daemon.stop(signal.SIGTERM)
    finally:
        daemon.close()
        for proc in (receiver, iperf):
            proc.kill()
            proc.wait()
    lines = deliveries.read_text().strip().splitlines()
    assert len(lines) == 1, lines
    message = json.loads(lines[0])
    text = json.dumps(message, ensure_ascii=False)
    assert "veth" in text and "data" in text and "remaining < 50%" in text, message
