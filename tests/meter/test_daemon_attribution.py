"""`datacap run` as root attributes real traffic: apps, services (from DNS it saw), and the CLI views.

The daemon runs in namespace ``a``; its veth is the uplink. Programs in ``a`` talk to servers in ``b``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from tests.meter.nsutil_names import dns_server
from tests.nsutil import DaemonRunner, Pair, destroy, make_pair, wait_for

pytestmark = pytest.mark.root
MB = 2**20

# A client that resolves a name through the namespace's DNS server, then downloads from the answer.
CLIENT = r"""
import socket, sys
import dns.resolver
resolver = dns.resolver.Resolver(configure=False)
resolver.nameservers = [sys.argv[1]]
address = resolver.resolve(sys.argv[2], "A")[0].to_text()
with socket.create_connection((address, int(sys.argv[3])), timeout=10) as s:
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    total = 0
    while chunk := s.recv(1 << 16):
        total += len(chunk)
print(total)
"""
# A server that sends a fixed amount to each client, then closes (bounded: count and size).
SERVER = r"""
import socket, sys
size, count = int(sys.argv[3]), int(sys.argv[4])
with socket.create_server((sys.argv[1], int(sys.argv[2]))) as srv:
    print("ready", flush=True)
    for _ in range(count):
        conn, _ = srv.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"x" * size)
"""


def settled(pair: Pair) -> tuple[int, ...]:
    """The veth's counters once they stop moving: a sender's exit does not mean its bytes were counted."""
    last: list[tuple[int, ...]] = []

    def still() -> bool:
        last.append(pair.a.counters(pair.a_if))
        return len(last) > 2 and last[-1] == last[-2] == last[-3]
    wait_for(still, 10, "the interface counters to settle", interval=0.1)
    return last[-1]


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root()
    require_tool("iperf3")
    require_tool("nft")
    p = make_pair(subnet=31)
    try:
        yield p
    finally:
        destroy(p)


def test_daemon_attributes_apps_and_services(pair: Pair, tmp_path: Path) -> None:
    config = f'[attribution]\nuplinks = ["{pair.a_if}"]\nrealtime = false\n'
    daemon = DaemonRunner(pair, tmp_path, config)
    iperf = pair.b.popen("iperf3", "-s", "-1", "-p", "5301", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = pair.b.popen(sys.executable, "-c", SERVER, pair.b_ip, "8080", str(6 * MB), "1",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    zone = {"r3.googlevideo.com.": [["A", pair.b_ip, 300]]}
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        with dns_server(pair.b.name, pair.b_ip, zone):
            before = pair.a.counters(pair.a_if)
            daemon.start()
            wait_for(lambda: pair.b.run("ss", "-ltn").stdout.count(":5301 ") > 0, 10, "iperf3 server")
            pair.a.run("iperf3", "-c", pair.b_ip, "-p", "5301", "-n", "15M")
            got = pair.a.run(sys.executable, "-c", CLIENT, pair.b_ip, "r3.googlevideo.com", "8080")
            assert int(got.stdout) == 6 * MB
            after = settled(pair)
            daemon.stop(signal.SIGTERM)
    finally:
        daemon.close()
        for proc in (iperf, server):
            proc.kill()
            proc.wait()
    apps = json.loads(daemon.cli("apps", "--since", "2000-01-01", "--json").stdout)
    by_app = {row["app"]: row for row in apps["rows"]}
    pythons = [row for name, row in by_app.items() if name.startswith("python")]  # python, python3, python3.11
    assert "iperf3" in by_app and pythons, by_app
    assert sum(row["rx_bytes"] for row in pythons) >= 6 * MB  # the download went to the client that made it
    kernel_tx = after[1] - before[1]
    # iperf3 sent nearly all the veth's outgoing bytes (the rest: one HTTP request, DNS, ACKs).
    assert by_app["iperf3"]["tx_bytes"] >= 0.98 * (kernel_tx - 64 * 1024), (by_app["iperf3"], kernel_tx)
    assert by_app["iperf3"]["tx_bytes"] <= kernel_tx
    services = json.loads(daemon.cli("services", "--since", "2000-01-01", "--json").stdout)
    youtube = [r for r in services["rows"] if r["service"] == "youtube"]
    assert youtube and 6 * MB <= youtube[0]["rx_bytes"] <= 6 * MB * 1.05, services
    total = json.loads(daemon.cli("usage", "--by", "year", "--json").stdout)["interfaces"][0]["total"]
    assert abs(total["total_bytes"] - (after[0] - before[0] + kernel_tx)) <= 2048
    attributed = sum(r["total_bytes"] for r in apps["rows"])
    # Billing truth stays the interface: attributed (L3) + unattributed == the interface's bytes.
    assert attributed + apps["unattributed"]["total_bytes"] == total["total_bytes"]
