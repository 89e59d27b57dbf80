"""Two network namespaces joined by a veth pair, made and removed by the test itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass

PROBE = r"""
import socket, sys, threading, time
mode = sys.argv[1]
if mode == "serve":
    # TCP listeners that answer "ok", and a UDP echo; exits by itself after a bounded time.
    deadline = time.monotonic() + float(sys.argv[2])
    def tcp(port):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port)); s.listen(16); s.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                c, _ = s.accept()
            except OSError:
                continue
            c.sendall(b"ok"); c.close()
    def udp(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", port)); s.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                data, peer = s.recvfrom(512)
            except OSError:
                continue
            s.sendto(data, peer)
    threads = [threading.Thread(target=tcp, args=(int(p),), daemon=True) for p in sys.argv[3].split(",")]
    threads += [threading.Thread(target=udp, args=(int(p),), daemon=True) for p in sys.argv[4].split(",")]
    for t in threads: t.start()
    print("ready", flush=True)
    for t in threads: t.join()
elif mode == "tcp":
    try:
        s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=float(sys.argv[4]))
        print(s.recv(2).decode() or "closed")
    except OSError as e:
        print("fail", type(e).__name__)
elif mode == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(float(sys.argv[4]))
    try:
        s.sendto(b"ping", (sys.argv[2], int(sys.argv[3]))); print(s.recvfrom(512)[0].decode())
    except OSError as e:
        print("fail", type(e).__name__)
"""


def sh(*argv: str, ns: str | None = None, timeout: float = 30, check: bool = True) -> str:
    cmd = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Pair:
    """`client` is where datacap runs (its card interface is `iface`); `server` is the far side."""

    client: str
    server: str
    iface: str
    client_ip: str
    server_ip: str

    def probe(self, proto: str, port: int, timeout: float = 1.0) -> str:
        return sh(sys.executable, "-c", PROBE, proto, self.server_ip, str(port), str(timeout),
                  ns=self.client).strip()

    def iperf(self, port: int, reverse: bool = False, seconds: int = 3) -> float:
        """Bits per second received, measured by iperf3 (bounded by -t and the subprocess timeout)."""
        argv = ["iperf3", "-c", self.server_ip, "-p", str(port), "-t", str(seconds), "-J",
                "--connect-timeout", "3000"]
        if reverse:
            argv.append("-R")
        out = json.loads(sh(*argv, ns=self.client, timeout=seconds + 20))
        return float(out["end"]["sum_received"]["bits_per_second"])


@contextmanager
def veth_pair(tag: str) -> Iterator[Pair]:
    uniq = f"{os.getpid() % 100000}"
    client, server = f"dc-al{tag}c-{uniq}", f"dc-al{tag}s-{uniq}"
    octet = 1 + os.getpid() % 250
    pair = Pair(client, server, "dccard0", f"10.231.{octet}.1", f"10.231.{octet}.2")
    try:
        sh("ip", "netns", "add", client)
        sh("ip", "netns", "add", server)
        sh("ip", "link", "add", "dccard0", "netns", client, "type", "veth", "peer", "name", "dcpeer0",
           "netns", server)
        sh("ip", "addr", "add", f"{pair.client_ip}/24", "dev", "dccard0", ns=client)
        sh("ip", "addr", "add", f"{pair.server_ip}/24", "dev", "dcpeer0", ns=server)
        for ns, dev in ((client, "dccard0"), (server, "dcpeer0")):
            sh("ip", "link", "set", dev, "up", ns=ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        yield pair
    finally:
        for ns in (client, server):
            with suppress(Exception):
                sh("ip", "netns", "del", ns, check=False)


@contextmanager
def background(ns: str, *argv: str, ready: str | None = None,
               timeout: float = 10) -> Iterator[subprocess.Popen[str]]:
    """A process in ``ns`` that we started and stop by its own pid."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        if ready is not None:
            assert proc.stdout is not None
            seen = []
            for _ in range(10):  # the ready line comes within the first few; EOF ends the loop too
                seen.append(proc.stdout.readline())
                if ready in seen[-1] or not seen[-1]:
                    break
            assert ready in seen[-1], f"{argv[0]} did not start: {seen!r}"
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
