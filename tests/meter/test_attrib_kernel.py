"""Kernel-facing parts against the real kernel, each inside namespaces the test creates.

- the struct decoder agrees with pyroute2's parser on real dump replies and NEW/DESTROY events;
- event loss (a tiny receive buffer flooded until ENOBUFS) is resynced: totals still equal;
- a ct mark set by another table survives, and only ``table inet datacap`` is added and removed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.meter.netns import PYTHON, PYTHON_NAME, Netns, attribution_agent, require_root, topology, wait_for

pytestmark = [pytest.mark.root]

SINK = """
import socket, sys, threading
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", int(sys.argv[1])))
    while True:
        s.recv(65536)
threading.Thread(target=udp, daemon=True).start()
srv = socket.create_server(("0.0.0.0", int(sys.argv[1])), backlog=1024)
while True:
    c, _ = srv.accept()
    with c:
        c.recv(256)
        c.sendall(b"s" * 2000)
"""


@pytest.fixture
def pair() -> Iterator[tuple[Netns, Netns]]:
    require_root("nft")
    with topology("kern") as topo:
        host, peer = topo.netns("h"), topo.netns("p")
        topo.link(host, "up0", "10.79.0.1/24", peer, "eth0", "10.79.0.2/24")
        peer.popen(PYTHON, "-c", SINK, "9000")
        wait_for(lambda: peer.listening(9000), 10, "the sink to listen")
        yield host, peer


CROSS_CHECK = """
import json, socket, time
from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg
from datacap.meter import ctnetlink
from datacap.meter.nft import NftTable, enable_conntrack_accounting

def reference(raw, offset):
    msg = nfct_msg(raw[offset:])
    msg.decode()
    def tup(name):
        t = msg.get_attr(name)
        ip, proto = t.get_attr("CTA_TUPLE_IP"), t.get_attr("CTA_TUPLE_PROTO")
        src = ip.get_attr("CTA_IP_V4_SRC") or ip.get_attr("CTA_IP_V6_SRC")
        dst = ip.get_attr("CTA_IP_V4_DST") or ip.get_attr("CTA_IP_V6_DST")
        return [proto.get_attr("CTA_PROTO_NUM"), src, dst, proto.get_attr("CTA_PROTO_SRC_PORT") or 0,
                proto.get_attr("CTA_PROTO_DST_PORT") or 0]
    def counters(name):
        c = msg.get_attr(name)
        return [c.get_attr("CTA_COUNTERS_BYTES"), c.get_attr("CTA_COUNTERS_PACKETS")] if c else [0, 0]
    ts = msg.get_attr("CTA_TIMESTAMP")
    return {"orig": tup("CTA_TUPLE_ORIG"), "reply": tup("CTA_TUPLE_REPLY"), "id": msg.get_attr("CTA_ID"),
            "mark": msg.get_attr("CTA_MARK") or 0,
            "counters": counters("CTA_COUNTERS_ORIG") + counters("CTA_COUNTERS_REPLY"),
            "start": ts.get_attr("CTA_TIMESTAMP_START") if ts else None}

def ours(m):
    return {"orig": list(m.orig), "reply": list(m.reply), "id": m.ct_id, "mark": m.mark,
            "counters": [m.orig_bytes, m.orig_packets, m.reply_bytes, m.reply_packets], "start": m.start_ns}

enable_conntrack_accounting()
table = NftTable(["up0"])
table.load()
events = ctnetlink.EventSocket()
c = socket.create_connection(("10.79.0.2", 9000)); c.sendall(b"x" * 100); c.recv(4096)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.sendto(b"y" * 300, ("10.79.0.2", 9000))
out = {"dump": [], "events": []}
sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, ctnetlink.NETLINK_NETFILTER)
sock.bind((0, 0))
sock.send(ctnetlink.NLMSG_HEADER.pack(20, 0x101, 0x301, 1, 0) + ctnetlink._NFGEN.pack(0, 0, 0))
done = False
while not done:
    raw = sock.recv(65536)
    for offset, mtype, _ in ctnetlink.iter_messages(raw):
        if mtype == ctnetlink.NLMSG_DONE:
            done = True
        elif mtype >> 8 == 1:
            out["dump"].append([ours(ctnetlink.decode_message(raw, offset)), reference(raw, offset)])
c.close()
deadline = time.monotonic() + 10
kinds = set()
while "destroy" not in kinds and time.monotonic() < deadline:
    events.wait(0.5)
    raws, lost = events.read_raw()
    for raw in raws:
        for m in ctnetlink.decode_datagram(raw):
            kinds.add(m.kind.value)
            out["events"].append([m.kind.value, ours(m), reference(raw, 0)])
    if "new" in kinds:
        # Ending the flows makes the kernel send DESTROY with final counters.
        subprocess = __import__("subprocess")
        subprocess.run(["conntrack", "-D", "-p", "udp"], capture_output=True)
table.remove()
print(json.dumps(out))
"""


def test_decoder_matches_pyroute2_on_real_kernel_messages(pair: tuple[Netns, Netns]) -> None:
    require_root("conntrack")
    host, _peer = pair
    out = json.loads(host.python(CROSS_CHECK))
    assert len(out["dump"]) >= 2
    for mine, ref in out["dump"]:
        assert mine == ref
        assert mine["counters"][0] > 0 and mine["mark"] != 0
    kinds = [kind for kind, _m, _r in out["events"]]
    assert "new" in kinds and "destroy" in kinds
    for _kind, mine, ref in out["events"]:
        assert mine == ref


def _sum(rows: list[dict[str, Any]]) -> tuple[int, int]:
    return sum(r["rx_bytes"] for r in rows), sum(r["tx_bytes"] for r in rows)


FLOOD = """
import socket, sys
# Many one-datagram UDP flows (each a new socket and source port), then short TCP connections.
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"f" * 200, ("10.79.0.2", 9000))
    s.close()
for _ in range(int(sys.argv[2])):
    with socket.create_connection(("10.79.0.2", 9000)) as c:
        c.sendall(b"GET")
        while c.recv(65536):
            pass
"""


@pytest.mark.slow
def test_event_loss_is_resynced_and_totals_stay_equal(pair: tuple[Netns, Netns]) -> None:
    host, _peer = pair
    # Flows end within a second or two, so DESTROY events are part of the flood too.
    host.sysctl("net.netfilter.nf_conntrack_udp_timeout", "1")
    host.sysctl("net.netfilter.nf_conntrack_tcp_timeout_time_wait", "1")
    agent = attribution_agent(host, ["up0"], "--rcvbuf", "4096")
    try:
        floods = [host.popen(PYTHON, "-c", FLOOD, "3000", "300") for _ in range(3)]
        for proc in floods:
            assert proc.wait(timeout=120) == 0
        rows: list[dict[str, Any]] = agent.ask("poll")

        def drained() -> bool:
            return host.run("cat", "/proc/sys/net/netfilter/nf_conntrack_count").stdout.strip() == "0"

        wait_for(drained, 60, "every flood flow to end", interval=0.2)
        rows += agent.ask("poll")
        stats = agent.ask("stats")
        totals = agent.ask("totals")
    finally:
        agent.stop()
    assert stats["overflows"] > 0, stats  # the flood did lose events
    assert stats["resyncs"] > 0, stats
    rx, tx = _sum(rows)
    exact = totals["uplinks"]["up0"]
    assert (rx, tx) == (exact["rx_bytes"], exact["tx_bytes"]), stats
    # Each flow counts once. UDP sockets that get a recently used source port join the kernel's
    # existing flow for that tuple, so there can be fewer flows than sockets, never more.
    flows = sum(r["flows"] for r in rows)
    assert 3 * 300 < flows <= 3 * (3000 + 300), (flows, stats)


MARKS = """
table inet dctest_other {
  chain out {
    type filter hook output priority -150; policy accept;
    ct state new ct mark set ct mark or 0x5
  }
  chain post {
    type filter hook postrouting priority 50; policy accept;
    ct state new ct mark set ct mark or 0x100
  }
}
"""

READ_MARKS = """
import json
from datacap.meter import ctnetlink
print(json.dumps([[m.orig.dport, m.mark] for m in ctnetlink.dump() if m.orig.dport == 9000]))
"""

KEEP_OPEN = """
import socket, sys
c = socket.create_connection(("10.79.0.2", 9000))
c.sendall(b"x")
c.recv(4096)
sys.stdout.write("open\\n")
sys.stdout.flush()
sys.stdin.readline()
"""


def test_existing_ct_mark_survives_and_only_our_table_changes(pair: tuple[Netns, Netns]) -> None:
    host, _peer = pair
    host.run("nft", "-f", "-", input=MARKS)
    mask = 0x0FFF0000
    agent = attribution_agent(host, ["up0"], "--mark-mask", hex(mask))
    try:
        assert "table inet datacap" in host.run("nft", "list", "tables").stdout
        proc = host.popen(PYTHON, "-c", KEEP_OPEN, stdin=-1, stdout=-1)
        assert proc.stdout is not None and proc.stdout.readline() == "open\n"
        marks = json.loads(host.python(READ_MARKS))
        rows: list[dict[str, Any]] = agent.ask("poll")
        assert proc.stdin is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=10)
    finally:
        agent.stop()
    assert marks, "the flow is not in the conntrack table"
    for _port, mark in marks:
        assert mark & 0x105 == 0x105, hex(mark)  # the other table's bits, before and after ours
        assert mark & ~(mask | 0x105) == 0, hex(mark)  # we wrote nothing outside our mask
        field = (mark & mask) >> 16
        assert field & 0x1F == 1, hex(mark)  # uplink slot 1 (up0), initiated from inside
        assert field >> 6 != 0, hex(mark)  # a user slot (root)
    assert any(r["app"] and r["app"]["name"] == PYTHON_NAME and r["app"]["user"] == "root"
               for r in rows), rows
    tables = host.run("nft", "list", "tables").stdout
    assert "dctest_other" in tables and "datacap" not in tables


def test_without_privileges_start_says_why_and_changes_nothing(pair: tuple[Netns, Netns]) -> None:
    require_root("setpriv")
    host, _peer = pair
    # uid 0 keeps the checkout readable; an empty bounding set takes CAP_NET_ADMIN away.
    no_caps = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", PYTHON, "-m", "datacap.meter.attribution",
               "--uplink", "up0"]
    ran = host.run(*no_caps, check=False)
    assert ran.returncode == 2, ran.stderr
    said = json.loads(ran.stdout)
    assert said["not_permitted"], said
    assert "CAP_NET_ADMIN" in said["error"] or "needs root" in said["error"], said
    assert "datacap" not in host.run("nft", "list", "tables").stdout


LIFECYCLE = """
import subprocess
from datacap.meter.nft import NftTable
table = NftTable(["up0"], uids=[0, 65534])
table.load()
table.load()  # a restart replaces the table atomically, it does not fail or duplicate it
print(subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.count("datacap"))
print(table.add_users([65534, 4242]))
print(table.totals().uplinks)
print(table.add_uplinks(["up0", "wwan1"]), table.uplink_of(2))
listing = subprocess.run(["nft", "list", "table", "inet", "datacap"], capture_output=True, text=True).stdout
print('"wwan1" : jump up_2' in listing and '"wwan1" : jump in_2' in listing)
table.remove()
table.remove()
print(subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.count("datacap"))
"""


def test_table_load_is_idempotent_and_remove_is_safe_twice(pair: tuple[Netns, Netns]) -> None:
    host, _peer = pair
    lines = host.python(LIFECYCLE).splitlines()
    assert lines == ["1", "[4242]", "{}", "['wwan1'] wwan1", "True", "0"]


def test_a_second_source_in_the_same_namespace_is_refused(pair: tuple[Netns, Netns]) -> None:
    host, _peer = pair
    first = attribution_agent(host, ["up0"])
    try:
        second = host.run(PYTHON, "-m", "datacap.meter.attribution", "--uplink", "up0", check=False)
        said = json.loads(second.stdout)
        assert second.returncode == 2 and "already attributes traffic" in said["error"], said
        assert not said["not_permitted"]
        assert "table inet datacap" in host.run("nft", "list", "tables").stdout  # the first's, intact
    finally:
        first.stop()
    again = attribution_agent(host, ["up0"])  # released on stop: a restart works
    again.stop()
