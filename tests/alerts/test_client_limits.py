"""Per-client quotas in network namespaces the test creates: a router (NAT) with two LAN clients and
a peer beyond its WAN. The daemon meters and attributes on the router; one client passes its daily
quota and is blocked (or throttled, measured with iperf3) while the other keeps full speed; the cap
survives a restart (and a lost table), and lifts at the period's reset (driven through ``now``)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datacap.alerts.client_caps import ClientCaps
from datacap.alerts.client_limits import TABLE, client_limits
from datacap.alerts.enforce import subprocess_runner
from datacap.store import Writer, open_write
from datacap.timeutil import UTC
from tests.conftest import datacap_cmd, subprocess_env
from tests.meter.netns import PYTHON, Netns, require_root, topology, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

SINK = """
import socket, sys, threading
def drain(c):
    with c:
        while c.recv(65536):
            pass
srv = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=64)
while True:
    c, _ = srv.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
"""
SEND = """
import socket, sys
chunk = b"c" * 65536
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[4])) as c:
        for _ in range(int(sys.argv[3]) // len(chunk)):
            c.sendall(chunk)
    print("ok")
except OSError as exc:
    print("fail", type(exc).__name__)
"""
RECEIVER = r"""
import http.server, sys
out = open(sys.argv[2], "a")
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        out.write(body.decode() + "\n"); out.flush()
        self.send_response(200); self.end_headers()
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
"""
PEER = "10.82.9.2"


@pytest.fixture
def net() -> Iterator[dict[str, Netns]]:
    require_root("nft", "iperf3")
    with topology("cap") as topo:
        router, peer = topo.netns("r"), topo.netns("p")
        c1, c2 = topo.netns("c1"), topo.netns("c2")
        topo.link(router, "wan0", "10.82.9.1/24", peer, "eth0", f"{PEER}/24")
        topo.link(router, "lan1", "10.82.1.1/24", c1, "eth0", "10.82.1.2/24")
        topo.link(router, "lan2", "10.82.2.1/24", c2, "eth0", "10.82.2.2/24")
        c1.run("ip", "route", "add", "default", "via", "10.82.1.1")
        c2.run("ip", "route", "add", "default", "via", "10.82.2.1")
        router.sysctl("net.ipv4.ip_forward", "1")
        router.run("nft", "-f", "-", input="table ip dctest_nat {\n chain post {\n"
                   "  type nat hook postrouting priority srcnat; policy accept;\n"
                   '  oifname "wan0" masquerade\n }\n}\n')
        peer.popen(PYTHON, "-c", SINK, "8000")
        wait_for(lambda: peer.listening(8000), 10, "the sink to listen")
        yield {"router": router, "peer": peer, "c1": c1, "c2": c2}


def mac_of(ns: Netns) -> str:
    return str(json.loads(ns.run("ip", "-j", "link", "show", "eth0").stdout)[0]["address"])


def send(ns: Netns, nbytes: int, timeout: float = 5) -> str:
    return ns.python(SEND, PEER, "8000", str(nbytes), str(timeout), timeout=120).strip()


class RouterDaemon:
    def __init__(self, router: Netns, tmp: Path, limits: str) -> None:
        self.router = router
        self.db = tmp / "store.db"
        self.config = tmp / "config.toml"
        self.log = tmp / "daemon.log"
        self.config.write_text(f'timezone = "UTC"\n[meter]\ninclude = ["wan0"]\n[attribution]\nuplinks = ["wan0"]\n'
                               f'[clients]\ndefault_leases = false\n{limits}\n')
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        starts = self.log.read_text().count("metering into") if self.log.exists() else 0
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(self.router.argv(*datacap_cmd(
                "run", "--db", str(self.db), "--config", str(self.config), "--interval", "0.2", "--flush", "0.5",
                "--no-web")), env=subprocess_env(), stdout=log, stderr=log, text=True)
        wait_for(lambda: self.log.read_text().count("metering into") > starts or self._died(), 30, "the daemon")

    def _died(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log.read_text()}")
        return False

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0, self.log.read_text()
        self.proc = None

    def caps(self) -> list[tuple[Any, ...]]:
        if not self.db.exists():
            return []
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
                return conn.execute("SELECT limit_key, period, action, used_bytes, quota_bytes, period_end "
                                    "FROM client_caps").fetchall()
        except sqlite3.OperationalError:
            return []

    def cli(self, *args: str) -> str:
        proc = subprocess.run(datacap_cmd(*args, "--db", str(self.db), "--config", str(self.config)),
                              capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def table(router: Netns) -> str | None:
    proc = router.run("nft", "list", "table", "inet", TABLE, check=False)
    return proc.stdout if proc.returncode == 0 else None


def caps_at(daemon: RouterDaemon, now: dt.datetime) -> tuple[list[str], ClientCaps]:
    """One step of the same code the daemon runs, at an instant of the test's choosing."""
    import tomllib

    from datacap.config import parse_config

    cfg = parse_config(tomllib.loads(daemon.config.read_text()))
    conn = open_write(daemon.db)
    writer = Writer(conn, cfg.tz)
    caps = ClientCaps(conn, writer.transaction, client_limits(cfg.clients, cfg.cards, cfg.channels), cfg.cards,
                      cfg.tz, runner=subprocess_runner(daemon.router.name))
    try:
        return caps.step(now.timestamp()), caps
    finally:
        conn.close()


def test_a_client_over_its_daily_quota_is_blocked_until_midnight(net: dict[str, Netns], tmp_path: Path) -> None:
    router, c1, c2 = net["router"], net["c1"], net["c2"]
    mac1 = mac_of(c1)
    deliveries = tmp_path / "deliveries.jsonl"
    deliveries.touch()
    limits = (f'[[clients.limits]]\nmac = "{mac1}"\nname = "kid-tablet"\ndaily = "6 MB"\naction = "block"\n'
              'notify = ["hook"]\n[channels]\nhook = "json://127.0.0.1:8941/"\n')
    router.popen(PYTHON, "-c", RECEIVER, "8941", str(deliveries))
    wait_for(lambda: router.listening(8941), 10, "the receiver")
    daemon = RouterDaemon(router, tmp_path, limits)
    try:
        daemon.start()
        assert send(c1, 2 << 20) == "ok" and send(c2, 8 << 20) == "ok"  # under its quota; c2 has none
        assert send(c1, 8 << 20) == "ok"  # now over 6 MB
        [cap] = wait_for(daemon.caps, 30, "the cap to be recorded")
        assert cap[:3] == (f"mac:{mac1}", "day", "block") and cap[3] >= 6 << 20 and cap[4] == 6 << 20
        wait_for(lambda: table(router) and mac1 in (table(router) or ""), 15, "the table with c1's MAC")
        assert send(c1, 1 << 20, timeout=2).startswith("fail")  # blocked
        assert send(c2, 8 << 20) == "ok"  # the other client is never affected
        assert "10.82.1.2" in (table(router) or "") and "10.82.2.2" not in (table(router) or "")
        wait_for(lambda: "kid-tablet" in deliveries.read_text(), 30, "the capped alert")
        [alert] = deliveries.read_text().splitlines()
        assert "kid-tablet blocked" in alert and "6.00 MB daily quota" in alert

        rows = json.loads(daemon.cli("clients", "--json"))
        [capped] = [r for r in rows["rows"] if r["mac"] == mac1]
        assert capped["cap"]["action"] == "block" and capped["cap"]["label"] == "kid-tablet"
        assert all(r["cap"] is None for r in rows["rows"] if r["mac"] != mac1)
        assert "capped: kid-tablet" in daemon.cli("clients")

        # A restart keeps it; a table lost meanwhile (a reboot, `nft flush ruleset`) is put back.
        daemon.stop()
        assert mac1 in (table(router) or "")
        router.run("nft", "delete", "table", "inet", TABLE)
        daemon.start()
        wait_for(lambda: mac1 in (table(router) or ""), 30, "the table re-loaded after a restart")
        assert send(c1, 1 << 20, timeout=2).startswith("fail")
        daemon.stop()
        assert len(deliveries.read_text().splitlines()) == 1  # said once, not again after the restart

        # The period's reset, driven through `now`: a second before midnight it holds, at midnight it lifts.
        end = dt.datetime.fromtimestamp(cap[5], UTC)
        notes, _ = caps_at(daemon, end - dt.timedelta(seconds=1))
        assert notes == [] and mac1 in (table(router) or "")
        notes, _ = caps_at(daemon, end)
        assert notes == ["kid-tablet: day period over, cap lifted"]
        assert table(router) is None and daemon.caps() == []
        assert send(c1, 1 << 20) == "ok"
    finally:
        daemon.close()


def iperf(ns: Netns, *extra: str) -> float:
    """Bits per second received over 3 s after 1 s left out: a policer lets one second's worth through
    at once (nft's byte-mode bucket holds a second at the rate, plus the burst), then holds to the rate."""
    out = json.loads(ns.run("iperf3", "-c", PEER, "-p", "5311", "-t", "3", "-O", "1", "-J", *extra,
                            timeout=60).stdout)
    return float(out["end"]["sum_received"]["bits_per_second"])


def test_a_throttled_client_gets_its_rate_while_the_other_keeps_full_speed(net: dict[str, Netns],
                                                                           tmp_path: Path) -> None:
    router, peer, c1, c2 = net["router"], net["peer"], net["c1"], net["c2"]
    rate = 4_000_000
    mac1 = mac_of(c1)
    peer.popen("iperf3", "-s", "-p", "5311")
    wait_for(lambda: peer.listening(5311), 10, "iperf3 to listen")
    daemon = RouterDaemon(router, tmp_path, f'[[clients.limits]]\nmac = "{mac1}"\ndaily = "3 MB"\n'
                                            f'action = "throttle {rate // 1_000_000} Mbit/s"\n')
    try:
        daemon.start()
        free = iperf(c2)
        assert free > 10 * rate, f"links too slow to show throttling: {free:.0f} bit/s"
        assert send(c1, 6 << 20) == "ok"
        wait_for(daemon.caps, 30, "the cap to be recorded")
        wait_for(lambda: "limit rate over" in (table(router) or ""), 15, "the policer")
        up, down = iperf(c1), iperf(c1, "-R")
        other = iperf(c2)
        print(f"throttled c1: up {up / 1e6:.2f} Mbit/s, down {down / 1e6:.2f} Mbit/s (limit {rate / 1e6:g}); "
              f"c2 {other / 1e6:.0f} Mbit/s, before {free / 1e6:.0f} Mbit/s")
        assert 0.3 * rate < up < 1.3 * rate and 0.3 * rate < down < 1.3 * rate
        assert other > 10 * rate  # the other client keeps its full speed
    finally:
        daemon.close()
