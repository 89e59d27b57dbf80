"""Issue 14, done when: three real `datacap run` daemons in network namespaces with real traffic push
to a real `datacap hub serve` on PostgreSQL; the hub is killed -9 and restarted mid-ingest, one
device's link to the hub is cut for a while, one batch is replayed. Afterwards the hub's totals per
device and per card equal each device's own, byte for byte, and each card's status on the hub equals
the device's `status --json`.

Topology: each device is namespace ``a`` of a pair (iperf3 traffic to ``b`` over the metered veth)
plus a second, unmetered veth to the hub's own namespace, where `datacap hub serve` listens.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datacap.hub import protocol
from tests.conftest import datacap_cmd, require_root, require_tool, subprocess_env
from tests.hub.devicekit import device_total, device_usage
from tests.hub.receiver import _in_netns
from tests.nsutil import DaemonRunner, Netns, Pair, destroy, make_pair, sh, unique, wait_for
from tests.pgserver import PgServer

pytestmark = pytest.mark.root
HUB_PORT = 8770
API_TOKEN = "fleet-api-token-e2e-0123"
CARD = """
[[cards]]
name = "sim"
label = "device {i} SIM"
interfaces = ["{iface}"]
l2_overhead = 0
[cards.cycle]
kind = "monthly"
day = 1
[[cards.buckets]]
name = "general"
quota = "1 GB"
"""


@dataclass
class Device:
    name: str
    pair: Pair
    daemon: DaemonRunner
    hub_if: str          # the device's end of its link to the hub
    hub_ip: str          # the hub's address on that link
    iperf: subprocess.Popen[str] | None = None

    def send(self, amount: str, reverse: bool = False) -> None:
        args = ["iperf3", "-c", self.pair.b_ip, "-p", "5401", "-n", amount, "--connect-timeout", "3000"]
        self.pair.a.run(*args, *(["-R"] if reverse else []))

    def owed(self) -> tuple[int, int, int]:
        """(unacknowledged batches, outbox usage rows, last seq formed) in the device's store."""
        with sqlite3.connect(f"file:{self.daemon.db}?mode=ro", uri=True) as conn:
            unacked = conn.execute("SELECT count(*) FROM hub_batches WHERE acked_at IS NULL").fetchone()[0]
            rows = conn.execute("SELECT count(*) FROM hub_outbox_usage").fetchone()[0]
            seq = conn.execute("SELECT coalesce(max(value), 0) FROM hub_cursor WHERE name = 'seq'").fetchone()[0]
        return unacked, rows, seq


class HubProcess:
    def __init__(self, ns: Netns, database: str, tmp: Path) -> None:
        self.ns = ns
        self.database = database
        self.config = tmp / "hub.toml"
        self.config.write_text(f'timezone = "Asia/Shanghai"\n[hub]\nalert_state = "{tmp / "hub-alerts.db"}"\n')
        self.log = tmp / "hub.log"
        self.proc: subprocess.Popen[str] | None = None

    def cli(self, *args: str) -> str:
        proc = subprocess.run(datacap_cmd(*args, "--config", str(self.config), "--database", self.database),
                              capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns.name, *datacap_cmd(
                    "hub", "serve", "--config", str(self.config), "--database", self.database,
                    "--listen", f"0.0.0.0:{HUB_PORT}")],
                env=subprocess_env(DATACAP_WEB_TOKEN=API_TOKEN), stdout=log, stderr=log, text=True)
        wait_for(lambda: self._listening() or self._died(), 60, "the hub to listen")

    def _listening(self) -> bool:
        return f":{HUB_PORT} " in self.ns.run("ss", "-ltn", check=False).stdout

    def _died(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"hub exited {self.proc.returncode}:\n{self.log.read_text()}")
        return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(30)
        self.proc = None

    def get(self, path: str) -> Any:
        """GET the hub's API from inside its namespace."""
        request = urllib.request.Request(f"http://127.0.0.1:{HUB_PORT}{path}",
                                         headers={"Authorization": f"Bearer {API_TOKEN}"})
        return _in_netns(self.ns.name, lambda: json.loads(urllib.request.urlopen(request, timeout=30).read()))

    def post(self, body: bytes, token: str) -> tuple[int, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{HUB_PORT}{protocol.INGEST_PATH}", data=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Encoding": "gzip"})

        def send() -> tuple[int, Any]:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        return _in_netns(self.ns.name, send)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def hub_ns() -> Iterator[Netns]:
    ns = Netns(unique("dch"))
    sh("ip", "netns", "add", ns.name)
    ns.run("ip", "link", "set", "lo", "up")
    try:
        yield ns
    finally:
        for pid in sh("ip", "netns", "pids", ns.name, check=False).stdout.split():
            sh("kill", "-9", pid, check=False)
        sh("ip", "netns", "del", ns.name, check=False)


def link_to_hub(pair: Pair, hub: Netns, index: int) -> tuple[str, str]:
    """An unmetered veth from the device's namespace to the hub's: (device end, hub address)."""
    dev_if, hub_if = unique("dcu"), unique("dcx")
    third = (os.getpid() + index) % 250
    pair.a.run("ip", "link", "add", dev_if, "type", "veth", "peer", "name", hub_if, "netns", hub.name)
    pair.a.run("ip", "addr", "add", f"10.214.{third}.1/30", "dev", dev_if)
    hub.run("ip", "addr", "add", f"10.214.{third}.2/30", "dev", hub_if)
    pair.a.run("ip", "link", "set", dev_if, "up")
    hub.run("ip", "link", "set", hub_if, "up")
    return dev_if, f"10.214.{third}.2"


def device_status(device: Device, at: str) -> dict[str, Any]:
    out = device.daemon.cli("status", "--json", "--at", at)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_three_daemons_one_hub_on_postgresql(pg_server: PgServer, hub_ns: Netns, tmp_path: Path) -> None:
    require_root()
    require_tool("iperf3")
    database = pg_server.fresh_database(f"fleet_e2e_{os.getpid()}")
    hub = HubProcess(hub_ns, database, tmp_path)
    devices: list[Device] = []
    pairs: list[Pair] = []
    try:
        for i in range(3):
            pair = make_pair(subnet=70 + i)
            pairs.append(pair)
            dev_if, hub_ip = link_to_hub(pair, hub_ns, i)
            name = f"mifi-{i}"
            token = json.loads(hub.cli("hub", "device", "add", name, "--group", "family", "--json"))["token"]
            home = tmp_path / name
            home.mkdir()
            (home / "hub.token").write_text(token)
            (home / "hub.token").chmod(0o600)
            config = (f'hub = {{ url = "http://{hub_ip}:{HUB_PORT}", token_file = "{home / "hub.token"}", '
                      f'device = "{name}", every = "1s" }}\n' + CARD.format(i=i, iface=pair.a_if))
            devices.append(Device(name, pair, DaemonRunner(pair, home, extra_config=config), dev_if, hub_ip))
        hub.start()
        for d in devices:
            d.iperf = d.pair.b.popen("iperf3", "-s", "-p", "5401", stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            wait_for(lambda d=d: ":5401 " in d.pair.b.run("ss", "-ltn", check=False).stdout, 10, "iperf3 server")
            d.daemon.start()
        for d in devices:
            d.send("12M")
        wait_for(lambda: all(dev.last_seq > 1 for dev in hub_devices(hub)), 60, "batches from every device")

        # The hub is killed -9 mid-ingest (devices keep pushing every second) and restarted.
        devices[0].send("6M", reverse=True)
        hub.kill()
        devices[1].send("8M")
        wait_for(lambda: any("unreachable" in d.daemon.log.read_text() for d in devices[:2]), 30,
                 "a device to find the hub gone")
        hub.start()

        # Device 2's link to the hub is cut for a while; it keeps metering.
        before = devices[2].daemon.log.read_text().count("unreachable")
        devices[2].pair.a.run("ip", "link", "set", devices[2].hub_if, "down")
        devices[2].send("10M")
        wait_for(lambda: devices[2].daemon.log.read_text().count("unreachable") > before, 60,
                 "device 2 to notice the cut")
        devices[2].pair.a.run("ip", "link", "set", devices[2].hub_if, "up")

        # One batch is replayed (the very bytes device 0 stored as batch 1).
        with sqlite3.connect(f"file:{devices[0].daemon.db}?mode=ro", uri=True) as conn:
            body = bytes(conn.execute("SELECT body FROM hub_batches WHERE seq = 1").fetchone()[0])
        token0 = (tmp_path / "mifi-0" / "hub.token").read_text()
        status, reply = hub.post(body, token0)
        assert status == 200 and reply["duplicate"] is True

        for d in devices:
            d.send("4M")
        for d in devices:
            d.daemon.stop()  # SIGTERM: the last flush is pushed
        for d in devices:
            wait_for(lambda d=d: d.owed()[:2] == (0, 0), 30, f"{d.name} to have nothing unacknowledged")
        at = hub_now()
        for d in devices:
            seq = d.owed()[2]
            assert next(x for x in hub_devices(hub) if x.device == d.name).last_seq == seq
            own = device_total(d.daemon.db)
            assert sum(own) > 20_000_000
            totals = hub.get(f"/api/v1/devices/{d.name}/totals")
            assert (totals["rx_bytes"], totals["tx_bytes"]) == own, d.name       # per device
            per_card = [(r["rx_bytes"], r["tx_bytes"]) for r in totals["interfaces"] if r["interface"] == d.pair.a_if]
            assert per_card == [own]                                              # per card (its interface)
            hub_rows = hub_usage(database, d.name)
            assert hub_rows == device_usage(d.daemon.db), d.name                  # bucket by bucket
            mine = device_status(d, at)
            theirs = hub.get(f"/api/v1/cards/{d.name}/sim/status?at={urllib.parse.quote(at)}")
            assert theirs == mine, d.name
            assert mine["cards"][0]["used_bytes"] == sum(own)
    finally:
        for d in devices:
            d.daemon.close()
            if d.iperf is not None:
                d.iperf.kill()
                d.iperf.wait()
        hub.close()
        for pair in pairs:
            destroy(pair)


def hub_devices(hub: HubProcess) -> list[Any]:
    from datacap.hub.store import open_hub_store

    store = open_hub_store(hub.database)
    try:
        return store.devices()
    finally:
        store.close()


def hub_usage(database: str, device: str) -> dict[tuple[int, str, str | None], tuple[int, int]]:
    from datacap.hub.store import open_hub_store

    store = open_hub_store(database)
    try:
        rows = store.usage_rows(device, 0, 1 << 40)
    finally:
        store.close()
    return {(s, i, c or None): (rx, tx) for s, i, c, rx, tx in rows if rx or tx}


def hub_now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
