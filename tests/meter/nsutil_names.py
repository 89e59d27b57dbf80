"""Network-namespace helpers for the names/clients tests, and a tiny authoritative DNS server.

Every namespace is named ``dc-nm-<tag>-<pid>`` so concurrent test runs never collide, and is deleted
in a ``finally``. Run as a script, this module is the DNS server (started inside a namespace with
``ip netns exec``): ``python nsutil_names.py ADDRESS ZONE_JSON``.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.conftest import require_root  # noqa: F401  (re-exported for this package's tests)

HERE = Path(__file__).resolve().parent








def sh(*args: str) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval_fd: int | None = None) -> Any:
    """Poll ``condition`` until it returns something truthy, waiting on ``interval_fd`` if given."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"condition not met within {timeout} s")
        if interval_fd is not None:
            select.select([interval_fd], [], [], min(left, 0.2))
        else:
            # Nothing to wait on: yield the CPU briefly; the deadline bounds the loop.
            select.select([], [], [], min(left, 0.02))


@contextlib.contextmanager
def netns_pair(tag: str) -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth pair: A = 10.231.0.1/24, fd0d:c::1/64; B = .2 / ::2."""
    a, b = f"dc-nm-{tag}a-{os.getpid()}", f"dc-nm-{tag}b-{os.getpid()}"
    try:
        for ns in (a, b):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", b)
        for ns, dev, last in ((a, "veth0", 1), (b, "veth1", 2)):
            sh("ip", "-n", ns, "addr", "add", f"10.231.0.{last}/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"fd0d:c::{last}/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@contextlib.contextmanager
def netns_router(tag: str) -> Iterator[tuple[str, str, str]]:
    """client (10.231.1.2) -- router (10.231.1.1 | 10.231.2.1, forwarding) -- server (10.231.2.2)."""
    client, router, server = (f"dc-nm-{tag}{r}-{os.getpid()}" for r in "crs")
    try:
        for ns in (client, router, server):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for ns, net in ((client, 1), (server, 2)):
            sh("ip", "-n", router, "link", "add", f"lan{net}", "type", "veth",
               "peer", "name", "up0", "netns", ns)
            sh("ip", "-n", router, "addr", "add", f"10.231.{net}.1/24", "dev", f"lan{net}")
            sh("ip", "-n", router, "link", "set", f"lan{net}", "up")
            sh("ip", "-n", ns, "addr", "add", f"10.231.{net}.2/24", "dev", "up0")
            sh("ip", "-n", ns, "link", "set", "up0", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", f"10.231.{net}.1")
        # Forwarding is a per-namespace sysctl: this touches the router namespace only.
        sh("ip", "netns", "exec", router, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
        yield client, router, server
    finally:
        for ns in (client, router, server):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@contextlib.contextmanager
def in_netns(name: str) -> Iterator[None]:
    """Run the block (this thread) inside namespace ``name``; sockets made here stay in it."""
    from pyroute2 import netns

    netns.pushns(name)
    try:
        yield
    finally:
        netns.popns()


@contextlib.contextmanager
def dns_server(ns: str, address: str, zone: dict[str, list[list[Any]]]) -> Iterator[subprocess.Popen[str]]:
    """Start this module as a DNS server on ``address``:53 inside ``ns``; stopped on exit."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.meter.nsutil_names", address, json.dumps(zone)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parents[1])
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "ready":
            err = proc.stderr.read() if proc.stderr else ""
            raise RuntimeError(f"DNS server did not start: {line!r} {err}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _serve(address: str, zone: dict[str, list[list[Any]]]) -> None:
    """Answer from ``zone``: name -> [[type, value, ttl], ...]; CNAMEs are followed like a resolver."""
    import socket

    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    print("ready", flush=True)
    records = {dns.name.from_text(k): v for k, v in zone.items()}
    while True:
        data, peer = sock.recvfrom(4096)
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        name, qtype = query.question[0].name, query.question[0].rdtype
        for _ in range(16):
            entries = records.get(name)
            if not entries:
                break
            cname = [e for e in entries if e[0] == "CNAME"]
            if cname:
                target = dns.name.from_text(cname[0][1])
                reply.answer.append(dns.rrset.from_text(name, cname[0][2], "IN", "CNAME", target.to_text()))
                name = target
                continue
            wanted = dns.rdatatype.to_text(qtype)
            for rtype, value, ttl in entries:
                if rtype == wanted:
                    reply.answer.append(dns.rrset.from_text(name, ttl, "IN", rtype, value))
            break
        if not reply.answer:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        sock.sendto(reply.to_wire(), peer)


if __name__ == "__main__":
    _serve(sys.argv[1], json.loads(sys.argv[2]))
