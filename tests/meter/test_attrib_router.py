"""A router namespace forwarding (with NAT) for two client namespaces: each client gets its own bytes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.meter.netns import PYTHON, Netns, attribution_agent, require_root, topology, wait_for

pytestmark = [pytest.mark.root, pytest.mark.slow]

SINK = """
import socket, sys, threading
def drain(c):
    with c:
        while c.recv(65536):
            pass
def tcp():
    srv = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=64)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=drain, args=(c,), daemon=True).start()
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[1])))
    while True:
        data, peer = s.recvfrom(65536)
        s.sendto(data[:100], peer)  # a short answer, so each UDP flow has both directions
threading.Thread(target=udp, daemon=True).start()
tcp()
"""

CLIENT = """
import socket, sys
host, port, tcp_bytes, datagrams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
chunk = b"c" * 65536
with socket.create_connection((host, port)) as c:
    for _ in range(tcp_bytes // len(chunk)):
        c.sendall(chunk)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)
for _ in range(datagrams):
    u.sendto(b"d" * 1000, (host, port))
    try:
        u.recv(2048)
    except TimeoutError:
        pass
"""


@pytest.fixture
def net() -> Iterator[dict[str, Netns]]:
    require_root("nft")
    with topology("rtr") as topo:
        router, peer = topo.netns("r"), topo.netns("p")
        c1, c2 = topo.netns("c1"), topo.netns("c2")
        topo.link(router, "wan0", "10.81.9.1/24", peer, "eth0", "10.81.9.2/24")
        topo.link(router, "lan1", "10.81.1.1/24", c1, "eth0", "10.81.1.2/24")
        topo.link(router, "lan2", "10.81.2.1/24", c2, "eth0", "10.81.2.2/24")
        c1.run("ip", "route", "add", "default", "via", "10.81.1.1")
        c2.run("ip", "route", "add", "default", "via", "10.81.2.1")
        router.sysctl("net.ipv4.ip_forward", "1")
        # The router hides its clients behind its WAN address, as a hotspot does.
        router.run("nft", "-f", "-", input="table ip dctest_nat {\n chain post {\n"
                   "  type nat hook postrouting priority srcnat; policy accept;\n"
                   '  oifname "wan0" masquerade\n }\n}\n')
        yield {"router": router, "peer": peer, "c1": c1, "c2": c2}


def test_router_attributes_each_client(net: dict[str, Netns]) -> None:
    router, peer = net["router"], net["peer"]
    peer.popen(PYTHON, "-c", SINK, "8000")
    wait_for(lambda: peer.listening(8000), 10, "the sink to listen")
    agent = attribution_agent(router, ["wan0"])
    try:
        before = {name: net[name].counters("eth0") for name in ("c1", "c2")}
        procs = [net["c1"].popen(PYTHON, "-c", CLIENT, "10.81.9.2", "8000", str(24 << 20), "300"),
                 net["c2"].popen(PYTHON, "-c", CLIENT, "10.81.9.2", "8000", str(8 << 20), "900")]
        for proc in procs:
            assert proc.wait(timeout=120) == 0
        for name in ("c1", "c2"):
            wait_for(net[name].tcp_settled, 10, f"{name}'s connection to close")
        after = {name: net[name].counters("eth0") for name in ("c1", "c2")}
        rows: list[dict[str, Any]] = agent.ask("poll")
        totals = agent.ask("totals")
    finally:
        agent.stop()
    got: dict[str, dict[str, int]] = {}
    for row in rows:
        assert row["app"] is None, row  # forwarded traffic has no local process
        assert row["interface"] == "wan0"
        ip = row["client"]["ip"]
        entry = got.setdefault(ip, {"rx": 0, "tx": 0, "flows": 0})
        entry["rx"] += row["rx_bytes"]
        entry["tx"] += row["tx_bytes"]
        entry["flows"] += row["flows"]
    for name, ip in (("c1", "10.81.1.2"), ("c2", "10.81.2.2")):
        tx = after[name]["tx_l3"] - before[name]["tx_l3"]  # what the client sent is the uplink's tx
        rx = after[name]["rx_l3"] - before[name]["rx_l3"]
        assert got[ip]["tx"] == pytest.approx(tx, rel=0.02), (name, got, tx, rx)
        assert got[ip]["rx"] == pytest.approx(rx, rel=0.02), (name, got, tx, rx)
        exact = totals["clients"][ip]
        assert exact["tx_bytes"] == pytest.approx(tx, rel=0.02), (name, exact, tx)
        assert exact["rx_bytes"] == pytest.approx(rx, rel=0.02), (name, exact, rx)
    assert set(got) == {"10.81.1.2", "10.81.2.2"}
    assert got["10.81.1.2"]["flows"] == 2 and got["10.81.2.2"]["flows"] == 2
