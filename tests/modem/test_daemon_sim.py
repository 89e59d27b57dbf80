"""`datacap run` charges a modem's traffic to the card whose SIM is active, across a SIM slot switch.

A ModemManager stand-in on a private D-Bus bus reports the veth of a test namespace as its bearer's
interface; the daemon (in that namespace) meters real traffic and follows the switch made by
`datacap sim slot`.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import datacap_cmd, require_root, subprocess_env
from tests.meter.test_daemon_attribution import settled
from tests.nsutil import DaemonRunner, Pair, destroy, make_pair, wait_for

from .helpers import mock_modemmanager, private_bus

pytestmark = pytest.mark.root
MB = 2**20
SLACK = 2048  # neighbour discovery at the edges
ICCID_A, ICCID_B = "89860000000000000011", "89860000000000000022"


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root("iperf3")
    p = make_pair(subnet=71)
    try:
        yield p
    finally:
        destroy(p)


def card_bytes(db: Path, card: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT coalesce(sum(rx_bytes + tx_bytes), 0) FROM usage WHERE res = 'year' AND card = ?",
                           (card,)).fetchone()
    return int(row[0])


def sim_changes(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM modem_events WHERE kind = 'sim-change'").fetchone()[0])


def test_usage_follows_the_active_sim_across_a_slot_switch(pair: Pair, tmp_path: Path) -> None:
    config = f'''
[attribution]
enabled = false

[[cards]]
name = "sim-a"
iccid = "{ICCID_A}"
interfaces = ["{pair.a_if}"]
l2_overhead = 0
[[cards.buckets]]
name = "data"
quota = "1 GB"

[[cards]]
name = "sim-b"
iccid = "{ICCID_B}"
interfaces = ["{pair.a_if}"]
l2_overhead = 0
[[cards.buckets]]
name = "data"
quota = "1 GB"
'''
    with private_bus() as bus, mock_modemmanager(bus, interface=pair.a_if, iccid1=ICCID_A, iccid2=ICCID_B):
        env = {"DBUS_SYSTEM_BUS_ADDRESS": bus}
        daemon = DaemonRunner(pair, tmp_path, config, env=env)
        iperf = pair.b.popen("iperf3", "-s", "-p", "5371", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: pair.b.run("ss", "-ltn").stdout.count(":5371 ") > 0, 10, "iperf3 server")
            k0 = pair.a.counters(pair.a_if)
            daemon.start()
            pair.a.run("iperf3", "-c", pair.b_ip, "-p", "5371", "-n", "10M")
            k1 = settled(pair)
            on_a = k1[0] + k1[1] - k0[0] - k0[1]
            wait_for(lambda: card_bytes(daemon.db, "sim-a") >= on_a - SLACK, 20, "SIM A's usage to be stored")
            switch = subprocess.run(datacap_cmd("sim", "slot", "--modem", "0", "--set", "2", "--json"),
                                    capture_output=True, text=True, timeout=90,
                                    env=subprocess_env(DATACAP_DB=str(daemon.db), DATACAP_CONFIG=str(daemon.config),
                                                       **env))
            assert switch.returncode == 0, switch.stderr
            wait_for(lambda: sim_changes(daemon.db) > 0, 30, "the daemon to see the SIM change")
            pair.a.run("iperf3", "-c", pair.b_ip, "-p", "5371", "-n", "6M")
            k2 = settled(pair)
            on_b = k2[0] + k2[1] - k1[0] - k1[1]
            wait_for(lambda: card_bytes(daemon.db, "sim-b") >= on_b - SLACK, 20, "SIM B's usage to be stored")
            daemon.stop(signal.SIGTERM)
        finally:
            daemon.close()
            iperf.kill()
            iperf.wait()
    a, b = card_bytes(daemon.db, "sim-a"), card_bytes(daemon.db, "sim-b")
    assert abs(a - on_a) <= SLACK and abs(b - on_b) <= SLACK, (a, on_a, b, on_b)
    assert on_a > 5 * MB and on_b > 3 * MB  # enough traffic to mean something
    status = json.loads(daemon.cli("status", "--json").stdout)
    used = {c["name"]: c["used_bytes"] for c in status["cards"]}
    assert used == {"sim-a": a, "sim-b": b}  # two SIMs in one modem never mix
