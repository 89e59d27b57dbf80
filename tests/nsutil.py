"""Network namespaces for tests: created per test, always deleted, traffic only between them."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datacap.meter.links import parse_proc_net_dev
from tests.conftest import datacap_cmd, subprocess_env

_counter = itertools.count()


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def unique(prefix: str) -> str:
    """Short unique names: interface names are limited to 15 characters."""
    return f"{prefix}{os.getpid() % 10000}{next(_counter)}"


@dataclass
class Netns:
    name: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.name, *args, check=check)

    def popen(self, *args: str, **kwargs: object) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *args], text=True, **kwargs)  # type: ignore[call-overload]

    def counters(self, iface: str) -> tuple[int, int, int, int]:
        """(rx_bytes, tx_bytes, rx_packets, tx_packets) of an interface, read in the namespace."""
        return parse_proc_net_dev(self.run("cat", "/proc/net/dev").stdout)[iface]


@dataclass
class Pair:
    """Two namespaces joined by a veth pair: ``a`` holds ``a_if`` (10.x.y.1), ``b`` holds ``b_if`` (.2)."""

    a: Netns
    b: Netns
    a_if: str
    b_if: str
    a_ip: str
    b_ip: str
    namespaces: list[str] = field(default_factory=list)

    def create_link(self) -> None:
        self.a.run("ip", "link", "add", self.a_if, "type", "veth", "peer", "name", self.b_if, "netns", self.b.name)
        self.a.run("ip", "addr", "add", f"{self.a_ip}/30", "dev", self.a_if)
        self.b.run("ip", "addr", "add", f"{self.b_ip}/30", "dev", self.b_if)
        self.a.run("ip", "link", "set", self.a_if, "up")
        self.b.run("ip", "link", "set", self.b_if, "up")

    def delete_link(self) -> None:
        self.a.run("ip", "link", "del", self.a_if)


def make_pair(subnet: int = 0) -> Pair:
    """Create two fresh namespaces and a veth pair; IPv6 off so no autoconf chatter blurs the counts."""
    a, b = Netns(unique("dca")), Netns(unique("dcb"))
    third = (os.getpid() + subnet) % 250
    pair = Pair(a, b, unique("dcv"), unique("dcw"), f"10.213.{third}.1", f"10.213.{third}.2", [a.name, b.name])
    for ns in (a, b):
        sh("ip", "netns", "add", ns.name)
        ns.run("ip", "link", "set", "lo", "up")
        ns.run("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
        ns.run("sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1")
    pair.create_link()
    return pair


def destroy(pair: Pair) -> None:
    for name in pair.namespaces:
        # Killing every process left in the namespace first: a namespace with a process does not vanish.
        pids = sh("ip", "netns", "pids", name, check=False).stdout.split()
        for pid in pids:
            sh("kill", "-9", pid, check=False)
        sh("ip", "netns", "del", name, check=False)


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    """Poll until ``condition()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class DaemonRunner:
    """Starts `datacap run` inside namespace ``a`` metering only the veth, and stops it."""

    def __init__(self, pair: Pair, tmp: Path, extra_config: str = "", web: bool = False,
                 env: dict[str, str] | None = None) -> None:
        self.env = env or {}
        self.pair = pair
        self.db = tmp / "store.db"
        self.config = tmp / "config.toml"
        self.config.write_text(f'timezone = "Europe/Berlin"\n{extra_config}\n[meter]\ninclude = ["{pair.a_if}"]\n')
        self.web = web
        self.log = tmp / "daemon.log"
        self.proc: subprocess.Popen[str] | None = None

    def _starts_logged(self) -> int:
        return self.log.read_text().count("metering into") if self.log.exists() else 0

    def start(self) -> None:
        starts = self._starts_logged()
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.pair.a.name,
                 *datacap_cmd("run", "--db", str(self.db), "--config", str(self.config), "--interval", "0.2",
                              "--flush", "0.5", *([] if self.web else ["--no-web"]))],
                env=subprocess_env(**self.env), stdout=log, stderr=log, text=True)
        # Started = signal handlers installed (it logged so) and its baseline is in the store.
        wait_for(lambda: (self._starts_logged() > starts and self._counters_row()) or self._died(), 20,
                 "the daemon to start and flush")

    def _died(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log.read_text()}")
        return False

    def _counters_row(self) -> bool:
        if not self.db.exists():
            return False
        try:
            with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
                return conn.execute("SELECT count(*) FROM counters WHERE iface = ?",
                                    (self.pair.a_if,)).fetchone()[0] > 0
        except sqlite3.OperationalError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        if sig == signal.SIGTERM:
            assert code == 0, self.log.read_text()
        self.proc = None

    def total(self) -> tuple[int, int]:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT coalesce(sum(rx_bytes), 0), coalesce(sum(tx_bytes), 0) FROM usage "
                               "WHERE res = 'year'").fetchone()
        return row[0], row[1]

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A read command against the daemon's store and config (run outside the namespace: no need)."""
        return subprocess.run(datacap_cmd(*args, "--db", str(self.db), "--config", str(self.config)),
                              capture_output=True, text=True, env=subprocess_env(**self.env), timeout=60,
                              check=True)
