"""A link-event overflow (ENOBUFS on the netlink socket) is caught up with, and said, not ignored.

The daemon runs in a namespace of its own; it is stopped (SIGSTOP) while a few hundred veth pairs come
and go there, so the kernel really drops link events it cannot queue; once continued, the daemon
re-reads every counter and records a `resync` event that `datacap events` shows.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacap.daemon import LINK_RESYNC
from datacap.meter.links import LinkEvents
from tests.conftest import require_root
from tests.nsutil import DaemonRunner, Pair, destroy, make_pair, unique, wait_for

pytestmark = pytest.mark.root
PAIRS = 150  # 300 interfaces created and deleted: far more link events than a receive buffer holds


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root()
    p = make_pair()
    try:
        yield p
    finally:
        destroy(p)


def churn(pair: Pair, tmp: Path) -> None:
    names = [(unique("dco"), unique("dcp")) for _ in range(PAIRS)]
    batch = tmp / "churn.batch"
    batch.write_text("".join(f"link add {x} type veth peer name {y}\n" for x, y in names)
                     + "".join(f"link del {x}\n" for x, _ in names))
    pair.a.run("ip", "-batch", str(batch))


def resync_events(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return list(conn.execute("SELECT kind, detail FROM events WHERE kind = ?", (LINK_RESYNC,)))


def test_overflow_resyncs_and_is_recorded(pair: Pair, tmp_path: Path) -> None:
    daemon = DaemonRunner(pair, tmp_path)
    try:
        daemon.start()
        assert daemon.proc is not None
        os.kill(daemon.proc.pid, signal.SIGSTOP)  # `ip netns exec` execs the daemon: this is its pid
        try:
            churn(pair, tmp_path)
        finally:
            os.kill(daemon.proc.pid, signal.SIGCONT)
        wait_for(lambda: resync_events(daemon.db), 30, "the overflow to be recorded")
        before = pair.a.counters(pair.a_if)
        pair.a.run(sys.executable, "-c", "import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                   "for _ in range(50):\n    s.sendto(b'x' * 1000, (sys.argv[1], 9))\n", pair.b_ip)  # metering goes on
        sent = pair.a.counters(pair.a_if)[1] - before[1]
        wait_for(lambda: daemon.total()[1] >= sent, 30, "the daemon to meter after the resync")
        daemon.stop()
    finally:
        daemon.close()
    assert "ENOBUFS" in daemon.log.read_text()
    shown = json.loads(daemon.cli("events", "--json").stdout)["events"]
    assert any(e["kind"] == LINK_RESYNC and "lost" in e["detail"] for e in shown)


def test_overflow_flag_set_by_a_real_overflow(pair: Pair, tmp_path: Path) -> None:
    """The listener itself, in the namespace: nothing drained while the events pile up."""
    probe = ("import sys, subprocess\n"
             "from datacap.meter.links import LinkEvents\n"
             "events = LinkEvents()\n"
             "subprocess.run(['ip', '-batch', sys.argv[1]], check=True)\n"
             "found = events.drain()\n"
             "print(events.overflowed, len(found))\n")
    names = [(unique("dco"), unique("dcp")) for _ in range(PAIRS)]
    batch = tmp_path / "churn.batch"
    batch.write_text("".join(f"link add {x} type veth peer name {y}\n" for x, y in names)
                     + "".join(f"link del {x}\n" for x, _ in names))
    from tests.conftest import subprocess_env

    proc = pair.a.popen(sys.executable, "-c", probe, str(batch), stdout=-1, stderr=-1, env=subprocess_env())
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    overflowed, count = out.split()
    assert overflowed == "True" and int(count) > 0
    assert LinkEvents is not None
