"""Benchmark of service-name learning and client identity (prints a table; not a test).

1. Per-call costs: DNS answer parsing, ``service_for``, SNI extraction, ``identify``.
2. Capture cost under bulk traffic: iperf3 at full rate (TCP, then UDP) between two namespaces this
   script creates, while a resolver captures in the sender's namespace. The BPF filter should keep
   packets out of Python entirely; for contrast, the same traffic through an unfiltered AF_PACKET
   socket drained by Python.

Run as root: ``PYTHONPATH=src python bench/bench_names.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dns.message
import dns.rrset
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "meter"))
from nsutil_names import in_netns, netns_pair, sh, wait_until

from datacap.meter.clients import ClientDirectory
from datacap.meter.leases import LeaseSource
from datacap.meter.names import NameCache, NameResolver
from datacap.meter.namesniff import sni_from_client_hello
from datacap.meter.quicsni import QuicSniTracker


def per_call(label: str, func: object, count: int) -> tuple[str, str]:
    assert callable(func)
    start = time.perf_counter()
    for i in range(count):
        func(i)
    return label, f"{(time.perf_counter() - start) / count * 1e6:.2f} us"


def micro() -> list[tuple[str, str]]:
    wires = []
    for i in range(2000):
        reply = dns.message.make_response(dns.message.make_query(f"r{i}.googlevideo.com", "A"))
        reply.answer.append(dns.rrset.from_text(f"r{i}.googlevideo.com.", 300, "IN", "CNAME",
                                                f"e{i}.l.google.com."))
        reply.answer.append(dns.rrset.from_text(f"e{i}.l.google.com.", 300, "IN", "A",
                                                f"10.{i // 250}.{i % 250}.1"))
        wires.append(reply.to_wire())
    resolver = NameResolver(cache=NameCache())
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname="www.netflix.com")
    with contextlib.suppress(ssl.SSLWantReadError):
        conn.do_handshake()
    hello = outgoing.read()
    quic = QuicConnection(configuration=QuicConfiguration(is_client=True, server_name="www.youtube.com"))
    quic.connect(("192.0.2.1", 443), now=time.time())
    initial = quic.datagrams_to_send(now=time.time())[0][0]
    leases = Path(f"/tmp/dc-nm-bench-{os.getpid()}.leases")
    leases.write_text("".join(f"0 aa:bb:cc:00:{i // 250:02x}:{i % 250:02x} 192.168.{i // 250}.{i % 250} "
                              f"host{i} *\n" for i in range(500)))

    class Table:
        def neighbours(self) -> dict[str, str]:
            return {}

    directory = ClientDirectory(Table(), [LeaseSource("dnsmasq", str(leases))])
    try:
        return [
            per_call("learn one DNS answer (CNAME + A)", lambda i: resolver.learn_dns(wires[i % 2000]),
                     20000),
            per_call("service_for (hit, 2000 entries)", lambda i: resolver.service_for(f"10.{i % 8}.1.1"),
                     100000),
            per_call("service_for (miss)", lambda i: resolver.service_for("192.0.2.1"), 100000),
            per_call("SNI from a ClientHello", lambda i: sni_from_client_hello(hello), 100000),
            per_call("SNI from a QUIC Initial (decrypt + parse)",
                     lambda i: QuicSniTracker().feed("192.0.2.1", initial), 5000),
            per_call("identify (500 leases)", lambda i: directory.identify(f"192.168.1.{i % 250}"), 100000),
        ]
    finally:
        leases.unlink()


def drain_loop(fileno: int, drain: object, seconds: float) -> tuple[float, int]:
    """Run a daemon-like loop for ``seconds``; return (CPU seconds, packets read)."""
    assert callable(drain)
    cpu0, packets = time.process_time(), 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fileno], [], [], min(left, 1.0))
        if ready:
            packets += drain()
    return time.process_time() - cpu0, packets


def open_capture(mode: str) -> tuple[int, Callable[[], int], Callable[[], None]]:
    """The resolver's filtered socket, or for contrast an AF_PACKET socket that takes every packet."""
    if mode == "filtered resolver":
        resolver = NameResolver.open()
        return resolver.fileno(), resolver.poll, resolver.close
    raw = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(3))
    raw.setblocking(False)

    def drain_raw() -> int:
        count = 0
        while count < 2000:
            try:
                raw.recv(65535)
            except BlockingIOError:
                break
            count += 1
        return count

    return raw.fileno(), drain_raw, raw.close


def under_load(seconds: float) -> list[tuple[str, str]]:
    rows = []
    with netns_pair(f"b{os.getpid() % 10000}") as (client, server):
        iperf_server = subprocess.Popen(["ip", "netns", "exec", server, "iperf3", "-s", "-B", "10.231.0.2"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: "10.231.0.2:5201" in sh("ip", "netns", "exec", server, "ss", "-ltn"), 10)
            for proto, extra in (("TCP", []), ("UDP", ["-u", "-b", "0", "-l", "1400"])):
                for mode in ("filtered resolver", "unfiltered AF_PACKET"):
                    with in_netns(client):
                        fileno, drain, close = open_capture(mode)
                    client_proc = subprocess.Popen(
                        ["ip", "netns", "exec", client, "iperf3", "-c", "10.231.0.2", "-t", str(int(seconds)),
                         "-f", "g", *extra], stdout=subprocess.PIPE, text=True)
                    cpu, packets = drain_loop(fileno, drain, seconds)
                    out, _ = client_proc.communicate(timeout=seconds + 30)
                    close()
                    rate = "?"
                    for line in out.splitlines():
                        words = line.split()
                        if "sender" in words and "Gbits/sec" in words:
                            rate = words[words.index("Gbits/sec") - 1] + " Gbit/s"
                    rows.append((f"{proto} iperf3 {int(seconds)} s ({rate}): {mode}",
                                 f"{cpu:.3f} CPU s, {packets} packets into Python"))
        finally:
            iperf_server.terminate()
            iperf_server.wait(timeout=10)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    rows = micro()
    if os.geteuid() == 0:
        rows += under_load(args.seconds)
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
