"""`datacap run` against the ModemManager stand-in: a carrier notice calibrates its card once and a text
is forwarded once, through a re-enable (ModemManager announces every stored text again under new
paths) and a daemon restart. The receiver listens on the daemon's namespace's own loopback."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.alerts.test_daemon_alerts import RECEIVER
from tests.conftest import require_root
from tests.nsutil import DaemonRunner, Pair, destroy, make_pair, wait_for

from .helpers import mock_modemmanager, private_bus

pytestmark = pytest.mark.root
ICCID1 = "89860000000000000011"


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root()
    p = make_pair(subnet=72)
    try:
        yield p
    finally:
        destroy(p)


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_daemon_handles_each_text_once_through_reenable_and_restart(pair: Pair, tmp_path: Path) -> None:
    deliveries = tmp_path / "deliveries.jsonl"
    deliveries.touch()
    config = f'''
[[cards]]
name = "cmcc"
iccid = "{ICCID1}"
interfaces = ["{pair.a_if}"]
[[cards.buckets]]
name = "通用"
quota = "20 GB"
[cards.carrier]
query = {{ sms = "CXLL", to = "10086" }}
every = "30d"
at = "03:00"

[channels]
hook = "json://127.0.0.1:8932/"

[[forward]]
from = ["1069*"]
channels = ["hook"]
'''

    def delivered() -> list[str]:
        return [json.loads(line)["message"] for line in deliveries.read_text().splitlines() if line.strip()]

    calibrations = "SELECT count(*) FROM calibrations WHERE card = 'cmcc'"
    with private_bus() as bus, mock_modemmanager(bus, interface=pair.a_if) as mm:
        daemon = DaemonRunner(pair, tmp_path, config, env={"DBUS_SYSTEM_BUS_ADDRESS": bus})
        receiver = pair.a.popen(sys.executable, "-c", RECEIVER, "8932", str(deliveries), stdout=subprocess.PIPE)
        try:
            assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
            daemon.start()
            mm.receive_sms("1065840410086", "【流量提醒】尊敬的客户，您本月已用流量18.00GB，剩余流量2.00GB。",
                           "2026-11-29T08:00:00+08:00")
            mm.receive_sms("10690000", "验证码 111", "2026-11-29T08:00:30+08:00")
            wait_for(lambda: count(daemon.db, calibrations) >= 1 and delivered(), 30, "the notice and the code")
            cals = count(daemon.db, calibrations)
            mm.set_enabled(False)  # a re-enable: both texts come back under new paths
            mm.set_enabled(True)
            mm.receive_sms("10690001", "验证码 222", "2026-11-29T09:00:00+08:00")
            wait_for(lambda: len(delivered()) == 2, 30, "the second code")
            daemon.stop(signal.SIGTERM)
            daemon.start()  # a restart reads the stored texts: all known
            mm.receive_sms("10690002", "验证码 333", "2026-11-29T10:00:00+08:00")
            wait_for(lambda: len(delivered()) == 3, 30, "the third code")
            daemon.stop(signal.SIGTERM)
        finally:
            daemon.close()
            receiver.kill()
            receiver.wait()
    assert [m.split("\n")[1] for m in delivered()] == ["验证码 111", "验证码 222", "验证码 333"]
    assert delivered()[-1].endswith("通用 left 2.00 GB")  # the carrier's figure, calibrated once
    assert count(daemon.db, calibrations) == cals
    assert count(daemon.db, "SELECT count(DISTINCT message) FROM texts") == 4
    assert count(daemon.db, "SELECT count(*) FROM carrier_log WHERE direction = 'received'") == 1
