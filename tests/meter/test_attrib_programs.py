"""Two programs in one namespace move known amounts to a peer namespace; each gets its own bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.meter.netns import PYTHON, PYTHON_NAME, Netns, Topology, attribution_agent, require_root, topology, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

UDP_SINK = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
while True:
    s.recv(65536)
"""

TCP_SINK = """
import socket, sys, threading
srv = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=512)
def serve(conn):
    with conn:
        while conn.recv(1 << 16):
            pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# Unconnected UDP (sendto) and a plain TCP stream: the python program's two kinds of flows.
PY_TCP = """
import socket, sys
data = b"p" * 65536
with socket.create_connection((sys.argv[1], int(sys.argv[2]))) as c:
    for _ in range(int(sys.argv[3]) // len(data)):
        c.sendall(data)
"""

PY_UDP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[3])):
    s.sendto(b"u" * 1200, (sys.argv[1], int(sys.argv[2])))
"""


@pytest.fixture
def pair() -> Iterator[tuple[Topology, Netns, Netns]]:
    require_root("iperf3", "nft")
    with topology("prog") as topo:
        host = topo.netns("h")
        peer = topo.netns("p")
        topo.link(host, "up0", "10.77.0.1/24", peer, "eth0", "10.77.0.2/24")
        yield topo, host, peer


def by_app(rows: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        name = row["app"]["name"] if row["app"] else "-"
        out[name] = out.get(name, 0) + row["rx_bytes"] + row["tx_bytes"]
    return out


def l3_total(before: dict[str, int], after: dict[str, int]) -> int:
    return after["rx_l3"] - before["rx_l3"] + after["tx_l3"] - before["tx_l3"]


def test_two_programs_tcp_and_udp_each_get_their_bytes(pair: tuple[Topology, Netns, Netns]) -> None:
    _topo, host, peer = pair
    peer.popen("iperf3", "-s", "-p", "5201")
    peer.popen(PYTHON, "-c", TCP_SINK, "6000")
    peer.popen(PYTHON, "-c", UDP_SINK, "6001")
    wait_for(lambda: peer.listening(5201) and peer.listening(6000), 10, "servers to listen")
    agent = attribution_agent(host, ["up0"])
    truth = {"iperf3": 0, PYTHON_NAME: 0}
    try:
        phases = [
            ("iperf3", ["iperf3", "-c", "10.77.0.2", "-p", "5201", "-n", "30M"]),
            (PYTHON_NAME, [PYTHON, "-c", PY_TCP, "10.77.0.2", "6000", str(20 << 20)]),
            ("iperf3", ["iperf3", "-c", "10.77.0.2", "-p", "5201", "-u", "-b", "200M", "-n", "10M"]),
            (PYTHON_NAME, [PYTHON, "-c", PY_UDP, "10.77.0.2", "6001", "8000"]),
        ]
        rows: list[dict[str, Any]] = []
        for app, cmd in phases:
            before = host.counters("up0")
            host.run(*cmd, timeout=120)
            # Let the last ACKs and iperf3's control connection close before reading the counters.
            wait_for(host.tcp_settled, 10, "connections to close")
            rows += agent.ask("poll")
            truth[app] += l3_total(before, host.counters("up0"))
        rows += agent.ask("poll")
        stats = agent.ask("stats")
    finally:
        agent.stop()
    got = by_app(rows)
    for app, expected in truth.items():
        assert got.get(app, 0) == pytest.approx(expected, rel=0.02), (app, got, truth, stats)


V6_SINK = """
import socket, sys, threading
def udp():
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", int(sys.argv[1])))
    while True:
        data, peer = s.recvfrom(65536)
        s.sendto(data[:64], peer)
def drain(c):
    with c:
        while c.recv(1 << 16):
            pass
threading.Thread(target=udp, daemon=True).start()
srv = socket.create_server(("::", int(sys.argv[1])), family=socket.AF_INET6)
while True:
    c, _ = srv.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
"""

V6_CLIENT = """
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
with socket.create_connection((host, port)) as c:
    for _ in range(160):
        c.sendall(b"6" * 65536)
u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u.connect((host, port))
u.settimeout(2)
for _ in range(500):
    u.send(b"v" * 1000)
    try:
        u.recv(2048)
    except TimeoutError:
        pass
"""


def test_ipv6_flows_and_pinned_service() -> None:
    require_root("nft")
    with topology("v6") as topo:
        host, peer = topo.netns("h", ipv6=True), topo.netns("p", ipv6=True)
        topo.link(host, "up0", "fd00:77::1/64", peer, "eth0", "fd00:77::2/64")
        peer.popen(PYTHON, "-c", V6_SINK, "6100")
        wait_for(lambda: peer.listening(6100), 10, "the sink to listen")
        agent = attribution_agent(host, ["up0"], "--service", "fd00:77::2=testflix")
        try:
            before = host.counters("up0")
            host.run(PYTHON, "-c", V6_CLIENT, "fd00:77::2", "6100", timeout=120)
            wait_for(host.tcp_settled, 10, "the connection to close")
            after = host.counters("up0")
            rows: list[dict[str, Any]] = agent.ask("poll")
            totals = agent.ask("totals")
        finally:
            agent.stop()
    mine = [r for r in rows if r["app"] and r["app"]["name"] == PYTHON_NAME]
    assert mine and all(r["service"] == "testflix" for r in mine), rows
    assert sum(r["flows"] for r in mine) == 2
    # IPv6 neighbour discovery is on the interface but in no flow: a few hundred bytes at most.
    attributed = sum(r["rx_bytes"] + r["tx_bytes"] for r in mine)
    assert attributed == pytest.approx(l3_total(before, after), rel=0.02)
    assert totals["clients"]["fd00:77::1"]["tx_bytes"] == pytest.approx(after["tx_l3"] - before["tx_l3"],
                                                                         rel=0.02)


def test_inbound_connection_goes_to_the_listening_program(pair: tuple[Topology, Netns, Netns]) -> None:
    _topo, host, peer = pair
    host.popen(PYTHON, "-c", TCP_SINK, "6200")  # the program on this host that accepts uploads
    wait_for(lambda: host.listening(6200), 10, "the host's server to listen")
    agent = attribution_agent(host, ["up0"])
    try:
        before = host.counters("up0")
        peer.run(PYTHON, "-c", PY_TCP, "10.77.0.1", "6200", str(12 << 20), timeout=120)
        wait_for(host.tcp_settled, 10, "the connection to close")
        after = host.counters("up0")
        rows: list[dict[str, Any]] = agent.ask("poll")
    finally:
        agent.stop()
    mine = [r for r in rows if r["app"] and r["app"]["name"] == PYTHON_NAME]
    assert len(mine) == 1 and mine[0]["flows"] == 1, rows
    # Initiated from outside: what the peer sent is this host's rx.
    assert mine[0]["rx_bytes"] == pytest.approx(after["rx_l3"] - before["rx_l3"], rel=0.02), rows
    assert mine[0]["tx_bytes"] == pytest.approx(after["tx_l3"] - before["tx_l3"], rel=0.02), rows


def test_live_rates_name_the_busy_program(pair: tuple[Topology, Netns, Netns]) -> None:
    _topo, host, peer = pair
    peer.popen("iperf3", "-s", "-p", "5201")
    wait_for(lambda: peer.listening(5201), 10, "iperf3 to listen")
    agent = attribution_agent(host, ["up0"])
    try:
        client = host.popen("iperf3", "-c", "10.77.0.2", "-p", "5201", "-t", "30", "-b", "50M")

        def busy() -> list[dict[str, Any]]:
            rates = agent.ask("rates")
            return [r for r in rates if r["app"] and r["app"]["name"] == "iperf3" and r["tx_rate"] > 1e6]

        found = wait_for(busy, 20, "iperf3 in the live rates", interval=0.5)
        client.kill()
    finally:
        agent.stop()
    assert found[0]["interface"] == "up0"
