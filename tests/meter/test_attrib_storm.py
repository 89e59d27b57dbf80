"""A storm of short TCP connections by one program: its bytes go to it or to its user, never elsewhere.

The storm runs as ``nobody``; each connection sends a request and reads a 4 KiB answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.meter.netns import (
    PYTHON,
    SYSTEM_PYTHON_EXE,
    Netns,
    Topology,
    attribution_agent,
    require_root,
    topology,
    wait_for,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

CONNECTIONS = 2000

# One connection at a time: read the request, answer 4 KiB, close.
SERVER = """
import socket, sys
srv = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=1024)
body = b"s" * 4096
while True:
    c, _ = srv.accept()
    with c:
        c.recv(256)
        c.sendall(body)
"""

# Bounded in count (argv[3]) and in time (60 s).
STORM = """
import socket, sys, time
deadline = time.monotonic() + 60
done = 0
for _ in range(int(sys.argv[3])):
    if time.monotonic() > deadline:
        break
    with socket.create_connection((sys.argv[1], int(sys.argv[2]))) as c:
        c.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        while c.recv(65536):
            pass
    done += 1
print(done)
"""


@pytest.fixture
def pair() -> Iterator[tuple[Topology, Netns, Netns]]:
    require_root("nft", "setpriv")
    with topology("storm") as topo:
        host = topo.netns("h")
        peer = topo.netns("p")
        topo.link(host, "up0", "10.78.0.1/24", peer, "eth0", "10.78.0.2/24")
        # A 100 Mbit/s link, as fast as a good 4G/5G card: connections last about a millisecond. On
        # an unshaped veth they last ~100 us, shorter than any real metered link allows, and a
        # loaded machine then decides the result (see bench/bench_attrib.py for that case).
        host.shape("up0", "100mbit")
        peer.shape("eth0", "100mbit")
        yield topo, host, peer


def test_connection_storm_is_attributed_to_its_program_and_user(
        pair: tuple[Topology, Netns, Netns]) -> None:
    _topo, host, peer = pair
    peer.popen(PYTHON, "-c", SERVER, "7000")
    wait_for(lambda: peer.listening(7000), 10, "the server to listen")
    agent = attribution_agent(host, ["up0"])
    try:
        before = host.counters("up0")
        done = int(host.python(STORM, "10.78.0.2", "7000", str(CONNECTIONS), user=("nobody", "nogroup")))
        wait_for(host.tcp_settled, 10, "the last connection to close")
        after = host.counters("up0")
        rows: list[dict[str, Any]] = agent.ask("poll")
        stats = agent.ask("stats")
        totals = agent.ask("totals")
    finally:
        agent.stop()
    assert done == CONNECTIONS
    truth = after["rx_l3"] - before["rx_l3"] + after["tx_l3"] - before["tx_l3"]
    to_program = to_user = 0
    for row in rows:
        app = row["app"]
        assert app is not None and app["user"] == "nobody", row  # every byte to the storm's user
        storm_name = SYSTEM_PYTHON_EXE.rsplit("/", 1)[1]
        assert app["name"] in (storm_name, "unknown"), row  # never another process
        if app["name"] == storm_name:
            assert app["exe"] == SYSTEM_PYTHON_EXE, row
            to_program += row["rx_bytes"] + row["tx_bytes"]
        to_user += row["rx_bytes"] + row["tx_bytes"]
    assert to_user == pytest.approx(truth, rel=0.02), (to_user, truth, stats)
    assert to_program >= 0.9 * truth, (to_program, truth, str(stats))
    assert sum(row["flows"] for row in rows) == CONNECTIONS
    nobody = totals["users"]["65534"]  # the kernel's exact per-user count agrees
    assert nobody["rx_bytes"] + nobody["tx_bytes"] == pytest.approx(truth, rel=0.02), totals
