"""Reusable helpers for tests that need network namespaces, veth links and processes inside them.

Every namespace and link is created by the test and deleted afterwards (use :func:`topology` as a
context manager). Names include the pid and a counter, so engineers running tests at once on one
machine never collide; veth ends are created directly inside their namespaces, so nothing appears
in the machine's own namespace, even briefly.
"""

from __future__ import annotations

import itertools
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.conftest import require_root  # noqa: F401  (re-exported for this package's tests)

SRC = str(Path(__file__).resolve().parents[2] / "src")
# The interpreter running the tests (a venv's in CI) runs datacap and the traffic programs, so they
# find the project's dependencies; PYTHON_NAME is the app name attribution gives them.
PYTHON = sys.executable
PYTHON_NAME = os.path.basename(os.path.realpath(PYTHON))
# Programs run as another user use the system's interpreter: the tests' one may be unreadable to them.
SYSTEM_PYTHON = "/usr/bin/python3"
SYSTEM_PYTHON_EXE = os.path.realpath(SYSTEM_PYTHON)
_COUNTER = itertools.count()
T = TypeVar("T")





def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Netns:
    name: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def argv(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, *cmd: str, timeout: float = 60, check: bool = True, input: str | None = None,
            cwd: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.argv(*cmd), capture_output=True, text=True, timeout=timeout,
                              input=input, env=_env(), cwd=cwd)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} in {self.name} failed ({proc.returncode}): "
                                 f"{proc.stderr.strip()}")
        return proc

    def popen(self, *cmd: str, **kwargs: Any) -> subprocess.Popen[str]:
        """Start a process in the namespace; it is killed when the topology is torn down."""
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(self.argv(*cmd), text=True, env=_env(), **kwargs)
        self.procs.append(proc)
        return proc

    def python(self, code: str, *args: str, timeout: float = 120,
               user: tuple[str, str] | None = None) -> str:
        """Run a Python snippet in the namespace, optionally as ``(user, group)``; its stdout.

        Another user runs :data:`SYSTEM_PYTHON` from ``/`` (the checkout may be unreadable to it).
        """
        cmd = [PYTHON, "-c", code, *args]
        if user is not None:
            cmd = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups",
                   SYSTEM_PYTHON, "-c", code, *args]
        return self.run(*cmd, timeout=timeout, cwd="/" if user else None).stdout

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-q", "-w", f"{key}={value}")

    def counters(self, ifname: str) -> dict[str, int]:
        """The interface's counters; ``*_l3`` subtract the 14-byte Ethernet header of each packet."""
        base = f"/sys/class/net/{ifname}/statistics"
        out = self.run("cat", f"{base}/rx_bytes", f"{base}/tx_bytes", f"{base}/rx_packets",
                       f"{base}/tx_packets").stdout.split()
        rx, tx, rxp, txp = (int(x) for x in out)
        return {"rx_bytes": rx, "tx_bytes": tx, "rx_packets": rxp, "tx_packets": txp,
                "rx_l3": rx - 14 * rxp, "tx_l3": tx - 14 * txp}

    def shape(self, ifname: str, rate: str) -> None:
        """Limit the interface's egress to ``rate`` (tbf, one-packet bursts), like a mobile uplink."""
        self.run("tc", "qdisc", "add", "dev", ifname, "root", "tbf", "rate", rate, "burst", "1600",
                 "latency", "100ms")

    def tcp_settled(self) -> bool:
        """No TCP connection still moving data: only listeners and TIME-WAIT left.

        A program's exit does not mean its bytes have left: the kernel still sends what it queued.
        """
        return not self.run("ss", "-tnH", "state", "all", "exclude", "listening", "exclude",
                            "time-wait").stdout.strip()

    def listening(self, port: int, proto: str = "t") -> bool:
        return f":{port} " in self.run("ss", f"-{proto}lnH").stdout


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class Topology:
    """Namespaces and veth links made for one test."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.spaces: list[Netns] = []

    def netns(self, role: str, ipv6: bool = False) -> Netns:
        """A new namespace with loopback up; IPv6 off unless asked (no autoconfiguration chatter)."""
        name = f"dc-{self.tag}-{role}-{os.getpid()}-{next(_COUNTER)}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        ns = Netns(name)
        self.spaces.append(ns)
        ns.run("ip", "link", "set", "lo", "up")
        value = "0" if ipv6 else "1"
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", value)
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", value)
        if ipv6:
            ns.sysctl("net.ipv6.conf.default.accept_ra", "0")
            ns.sysctl("net.ipv6.conf.default.dad_transmits", "0")
        return ns

    def link(self, a: Netns, a_if: str, a_addr: str, b: Netns, b_if: str, b_addr: str) -> None:
        """A veth pair between two namespaces with an address (CIDR) on each end, both up."""
        subprocess.run(["ip", "link", "add", a_if, "netns", a.name, "type", "veth", "peer", "name", b_if,
                        "netns", b.name], check=True, capture_output=True)
        for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            extra = ["nodad"] if ":" in addr else []  # usable at once, no duplicate detection wait
            ns.run("ip", "addr", "add", addr, "dev", ifname, *extra)
            ns.run("ip", "link", "set", ifname, "up")

    def close(self) -> None:
        for ns in self.spaces:
            for proc in ns.procs:
                if proc.poll() is None:
                    proc.kill()
                with suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
        for ns in self.spaces:
            subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)


@contextmanager
def topology(tag: str) -> Iterator[Topology]:
    topo = Topology(tag)
    try:
        yield topo
    finally:
        topo.close()


class JsonAgent:
    """A long-running process in a namespace that answers one JSON line per command line."""

    def __init__(self, ns: Netns, argv: list[str], ready_timeout: float = 30) -> None:
        self.proc = ns.popen(*argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)
        first = self._line(ready_timeout)
        if not isinstance(first, dict) or not first.get("ready"):
            raise AssertionError(f"agent did not start: {first}")

    def _line(self, timeout: float) -> Any:
        assert self.proc.stdout is not None
        if not self._sel.select(timeout):
            raise AssertionError(f"agent gave no answer within {timeout}s")
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"agent exited: {err[-2000:]}")
        return json.loads(line)

    def ask(self, command: str, timeout: float = 60) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._line(timeout)

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            self.proc.stdin.write("stop\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
            self.proc.wait(timeout=timeout)


def attribution_agent(ns: Netns, uplinks: list[str], *extra: str) -> JsonAgent:
    """``python -m datacap.meter.attribution`` running inside ``ns``."""
    argv = [PYTHON, "-m", "datacap.meter.attribution"]
    for name in uplinks:
        argv += ["--uplink", name]
    return JsonAgent(ns, argv + list(extra))
