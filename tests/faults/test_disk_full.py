"""A full disk under the daemon, for real: a small tmpfs in a mount namespace the test creates, real
traffic between two network namespaces, the disk filled while bytes flow, then space freed.

The daemon must keep metering, hold the unwritten bytes in memory (its /metrics says how many), and
write all of them once space returns: the store's total equals the kernel's counters (within the
2 KiB of ARP at the edges, as every namespace test here).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import datacap_cmd, require_root, require_tool, subprocess_env
from tests.nsutil import Pair, destroy, make_pair, wait_for

SLACK = 2048
pytestmark = pytest.mark.root


@dataclass
class SmallDisk:
    """A tmpfs of ``size`` mounted at ``path`` inside a private mount namespace held by a sleeper."""

    holder: subprocess.Popen[str]
    path: Path

    def enter(self, *argv: str) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-m", *argv]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.enter(*argv), capture_output=True, text=True, timeout=60, check=check,
                              env=subprocess_env())

    def fill(self) -> None:
        """Write zeros until the file system refuses (dd exits non-zero: no space left on device)."""
        done = self.run("dd", "if=/dev/zero", f"of={self.path}/fill", "bs=16k", check=False)
        assert "No space left" in done.stderr, done.stderr

    def free(self) -> None:
        self.run("rm", "-f", f"{self.path}/fill")

    def store_total(self, db: Path) -> tuple[int, int]:
        code = ("import sqlite3,sys; c=sqlite3.connect(f'file:{sys.argv[1]}?mode=ro', uri=True); "
                "print(*c.execute(\"SELECT coalesce(sum(rx_bytes),0), coalesce(sum(tx_bytes),0) FROM usage "
                "WHERE res='year'\").fetchone())")
        rx, tx = self.run(sys.executable, "-c", code, str(db)).stdout.split()
        return int(rx), int(tx)


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root("unshare", "nsenter", "dd")
    require_tool("iperf3")
    p = make_pair()
    try:
        yield p
    finally:
        destroy(p)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    require_root("unshare", "nsenter", "dd")
    mnt = tmp_path / "small"
    mnt.mkdir()
    holder = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f"mount -t tmpfs -o size=6m,mode=0755 dcfull {mnt} && echo ready && exec sleep 900"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    line = holder.stdout.readline()
    if line.strip() != "ready":
        holder.kill()
        pytest.fail(f"could not mount a tmpfs in a mount namespace: {holder.stderr.read() if holder.stderr else ''}")
    try:
        yield SmallDisk(holder, mnt)
    finally:
        holder.kill()  # the namespace, and the tmpfs with it, go away with their last process
        holder.wait(timeout=10)


def metrics(pair: Pair) -> dict[str, float]:
    """The daemon's own /metrics, fetched inside its network namespace."""
    code = ("import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8765/metrics', timeout=5)"
            ".read().decode())")
    text = pair.a.run(sys.executable, "-c", code, check=False).stdout
    found = {}
    for name in ("datacap_store_writable", "datacap_store_held_bytes", "datacap_store_dropped_bytes"):
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        if m:
            found[name] = float(m.group(1))
    return found


def test_full_disk_keeps_metering_and_writes_every_byte_when_space_returns(
        pair: Pair, disk: SmallDisk, tmp_path: Path) -> None:
    db = disk.path / "store.db"
    config = tmp_path / "config.toml"
    config.write_text(f'timezone = "Europe/Berlin"\n[meter]\ninclude = ["{pair.a_if}"]\n')
    log = tmp_path / "daemon.log"
    server = pair.b.popen("iperf3", "-s", "-p", "5301", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    traffic: subprocess.Popen[str] | None = None
    with log.open("w") as out:
        daemon = subprocess.Popen(
            disk.enter("ip", "netns", "exec", pair.a.name,
                       *datacap_cmd("run", "--db", str(db), "--config", str(config), "--interval", "0.2",
                                    "--flush", "0.5")),
            env=subprocess_env(), stdout=out, stderr=out, text=True)
    try:
        wait_for(lambda: metrics(pair).get("datacap_store_writable") == 1 or daemon.poll() is not None, 30,
                 "the daemon and its /metrics to start")
        assert daemon.poll() is None, log.read_text()
        wait_for(lambda: pair.b.run("ss", "-ltn").stdout.count(":5301 ") > 0, 10, "iperf3 server")
        before = pair.a.counters(pair.a_if)
        # Bounded load: 120 MB at 60 Mbit/s, about 16 s, flowing before, during and after the full disk.
        traffic = pair.a.popen("iperf3", "-c", pair.b_ip, "-p", "5301", "-n", "120M", "-b", "60M",
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        disk.fill()
        wait_for(lambda: metrics(pair).get("datacap_store_writable") == 0, 60,
                 "a flush to fail on the full disk")
        # Traffic goes on; the daemon holds it in memory.
        held = wait_for(lambda: (metrics(pair).get("datacap_store_held_bytes") or 0) > 20_000_000 and
                        metrics(pair)["datacap_store_held_bytes"], 60, "bytes to be held in memory")
        stored_while_full = disk.store_total(db)
        disk.free()
        wait_for(lambda: metrics(pair).get("datacap_store_writable") == 1, 60, "the store to take writes again")
        traffic.wait(timeout=120)
        wait_for(lambda: pair.a.run("ss", "-tnH", "state", "all", "exclude", "listening",
                                    "exclude", "time-wait").stdout.strip() == "", 30, "TCP to settle")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, log.read_text()
        after = pair.a.counters(pair.a_if)
        stored = disk.store_total(db)
    finally:
        for proc in (traffic, daemon, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    kernel = (after[0] - before[0], after[1] - before[1])
    lost = (kernel[0] + kernel[1]) - (stored[0] + stored[1])
    print(f"\ndisk full: {held:.0f} bytes held in memory at one point; stored while full {sum(stored_while_full)}, "
          f"kernel {sum(kernel)} bytes, stored {sum(stored)}, lost {lost}")
    assert kernel[0] + kernel[1] > 50_000_000, "too little traffic to mean anything"
    assert abs(stored[0] - kernel[0]) <= SLACK and abs(stored[1] - kernel[1]) <= SLACK, (stored, kernel)
    assert "Traceback" not in text and "cannot rollback" not in text, text
    failures, recoveries = text.count("cannot write to the store"), text.count("takes writes again")
    assert failures >= 1 and failures == recoveries, text  # logged once per change of state, not per retry


def _cli(disk: SmallDisk, *args: str) -> subprocess.CompletedProcess[str]:
    return disk.run(*datacap_cmd(*args), check=False)


def test_import_and_start_up_on_a_full_disk_fail_with_a_clear_message(disk: SmallDisk, tmp_path: Path) -> None:
    db = disk.path / "store.db"
    csv = tmp_path / "u.csv"
    csv.write_text("time,interface,rx_bytes,tx_bytes\n" + "".join(
        f"2026-11-{1 + i // 288:02d}T{(i % 288) // 12:02d}:{(i % 12) * 5:02d}:00Z,wwan0,{i},1\n" for i in range(8000)))
    disk.fill()
    # A new store on a full disk: the migrations cannot be written.
    for args in (["import", str(csv), "--db", str(db)], ["run", "--db", str(db), "--no-web", "--max-runtime", "3"]):
        proc = _cli(disk, *args)
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr and "cannot rollback" not in proc.stderr, proc.stderr
        assert "full" in proc.stderr, proc.stderr
    # An existing store, then the disk fills: the import is refused whole, the store unchanged.
    disk.free()
    small = tmp_path / "small.csv"
    small.write_text("time,interface,rx_bytes,tx_bytes\n2026-11-01T00:00:00Z,wwan0,5,5\n")
    assert _cli(disk, "import", str(small), "--db", str(db)).returncode == 0
    disk.fill()
    proc = _cli(disk, "import", str(csv), "--db", str(db))
    assert proc.returncode == 2 and "full" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    disk.free()
    assert disk.store_total(db) == (5, 5)  # nothing partial was written


def test_a_store_on_a_read_only_file_system_is_a_clear_error(tmp_path: Path) -> None:
    require_root("unshare")
    store = tmp_path / "ro"
    store.mkdir()
    from datacap.store import open_write

    open_write(store / "s.db").close()
    script = ('mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"')
    for args in (["run", "--db", str(store / "s.db"), "--no-web", "--max-runtime", "3"],
                 ["run", "--db", str(store / "new.db"), "--no-web", "--max-runtime", "3"]):
        proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(store),
                               *datacap_cmd(*args)], capture_output=True, text=True, env=subprocess_env(),
                              timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert "read-only" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
