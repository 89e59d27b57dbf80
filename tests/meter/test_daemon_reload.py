"""SIGHUP applies the whole config to a running daemon, or says exactly what needs a restart.

A real `datacap run` in a namespace of its own, with its dashboard on that namespace's loopback:
the reload turns on a web token, adds an alert rule and its channel, moves the timezone and changes
attribution settings; then a broken config is refused while metering goes on.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alerts.test_daemon_alerts import RECEIVER
from tests.conftest import require_root
from tests.nsutil import DaemonRunner, Pair, destroy, make_pair, wait_for

pytestmark = pytest.mark.root
TOKEN = "reload-token-0123456789"
GET = ("import sys, urllib.request, urllib.error\n"
       "req = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]} "
       "if len(sys.argv) > 2 else {})\n"
       "try:\n    print(urllib.request.urlopen(req, timeout=10).status)\n"
       "except urllib.error.HTTPError as exc:\n    print(exc.code)\n"
       "except OSError:\n    print(0)\n")
UDP = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
       "for _ in range(200):\n    s.sendto(b'x' * 1000, (sys.argv[1], 9))\n")


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root()
    p = make_pair(subnet=83)
    try:
        yield p
    finally:
        destroy(p)


def status(pair: Pair, url: str, *token: str) -> int:
    return int(pair.a.run(sys.executable, "-c", GET, url, *token).stdout.strip() or 0)


def test_sighup_applies_the_whole_config(pair: Pair, tmp_path: Path) -> None:
    card = (f'[[cards]]\nname = "veth"\ninterfaces = ["{pair.a_if}"]\n'
            '[[cards.buckets]]\nname = "data"\nquota = "100 KB"\n')
    before = f'{card}\n[web]\nlisten = "127.0.0.1:8951"\n'
    daemon = DaemonRunner(pair, tmp_path, before, web=True)
    deliveries = tmp_path / "deliveries.jsonl"
    deliveries.touch()
    receiver = pair.a.popen(sys.executable, "-c", RECEIVER, "8952", str(deliveries), stdout=subprocess.PIPE)
    url = "http://127.0.0.1:8951/api/v1/summary"
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        daemon.start()
        wait_for(lambda: status(pair, url) == 200, 30, "the dashboard without a token")
        after = (f'{card}\n[web]\nlisten = "127.0.0.1:8951"\ntoken = "{TOKEN}"\n'
                 '[channels]\nhook = "json://127.0.0.1:8952/"\n'
                 '[[alerts]]\ncard = "veth"\nbucket = "data"\nwhen = "remaining < 50%"\nnotify = ["hook"]\n'
                 '[attribution]\nenabled = false\n')
        text = daemon.config.read_text().replace('timezone = "Europe/Berlin"', 'timezone = "Asia/Tokyo"')
        daemon.config.write_text(text.replace(before, after))
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in daemon.log.read_text(), 30, "the reload")
        log = daemon.log.read_text()
        assert "started again with it: alerts, reports, web" in log or "started again with it: alerts, web" in log
        assert "[attribution] changed" in log and "restart" in log  # said, not silently ignored
        assert "the config now says Asia/Tokyo" in log  # the timezone's warning
        wait_for(lambda: status(pair, url, TOKEN) == 200, 30, "the dashboard with the new token")
        assert status(pair, url) == 401  # the token now applies
        pair.a.run(sys.executable, "-c", UDP, pair.b_ip)  # 200 KB: past half of the 100 KB quota
        wait_for(lambda: deliveries.read_text().strip(), 30, "the new rule to deliver on the new channel")
        daemon.config.write_text("timezone = 'Mars/Olympus'\n")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in daemon.log.read_text(), 30, "the broken config to be refused")
        assert status(pair, url, TOKEN) == 200  # still running as before
        daemon.stop()
    finally:
        daemon.close()
        receiver.kill()
        receiver.wait()
    assert "veth" in deliveries.read_text()
