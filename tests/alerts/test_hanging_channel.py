"""A channel that never answers does not stop the meter: deliveries run on the daemon's worker thread.

The receiver accepts the connection and then says nothing (until the test ends); while the delivery
waits on it, the daemon must go on sampling and flushing, and stop cleanly on SIGTERM.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root
from tests.nsutil import DaemonRunner, Pair, destroy, make_pair, wait_for

pytestmark = pytest.mark.root

SILENT = r"""
import socket, sys, time
log = open(sys.argv[2], "a")
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen(8)
print("ready", flush=True)
deadline = time.monotonic() + 120  # bounded: the test kills it long before
conn, _ = server.accept()
log.write("accepted\n"); log.flush()
conn.settimeout(0.5)
while time.monotonic() < deadline:  # read the request, answer nothing, note when the sender gives up
    try:
        if not conn.recv(65536):
            log.write("closed\n"); log.flush()
            break
    except TimeoutError:
        continue
time.sleep(120)
"""

UDP = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
       "for _ in range(200):\n    s.sendto(b'x' * 1000, (sys.argv[1], 9))\n")


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root()
    p = make_pair(subnet=71)
    try:
        yield p
    finally:
        destroy(p)


def last_flush(db: Path) -> float:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return float(conn.execute("SELECT max(wall) FROM counters").fetchone()[0] or 0)


def test_samples_keep_flowing_while_a_delivery_hangs(pair: Pair, tmp_path: Path) -> None:
    config = f'''
[[cards]]
name = "veth"
interfaces = ["{pair.a_if}"]

[[cards.buckets]]
name = "data"
quota = "100 KB"

[channels]
silent = "json://127.0.0.1:8941/?cto=5&rto=60"  # apprise waits up to a minute for it

[[alerts]]
card = "veth"
bucket = "data"
when = "remaining < 50%"
notify = ["silent"]
'''
    daemon = DaemonRunner(pair, tmp_path, config)
    seen = tmp_path / "receiver.log"
    seen.touch()
    receiver = pair.a.popen(sys.executable, "-c", SILENT, "8941", str(seen), stdout=subprocess.PIPE)
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        daemon.start()
        pair.a.run(sys.executable, "-c", UDP, pair.b_ip)  # 200 KB: past half of the 100 KB quota
        wait_for(lambda: "accepted" in seen.read_text(), 30, "the delivery to reach the silent channel")
        stuck_at = last_flush(daemon.db)
        # Flushes every 0.5 s go on while the channel has still not answered (apprise waits 60 s).
        wait_for(lambda: last_flush(daemon.db) >= stuck_at + 3, 30, "the daemon to keep flushing")
        assert "closed" not in seen.read_text(), "the delivery gave up first: it did not overlap the flushes"
        total_before = daemon.total()[1]  # read first: what is flushed from here on only adds to it
        before = pair.a.counters(pair.a_if)
        pair.a.run(sys.executable, "-c", UDP, pair.b_ip)
        sent = pair.a.counters(pair.a_if)[1] - before[1]
        wait_for(lambda: daemon.total()[1] >= total_before + sent, 30, "new traffic to be stored")
        assert "closed" not in seen.read_text()  # the delivery is still waiting on the channel
        daemon.stop(signal.SIGTERM)  # and a stop does not wait forever for the channel
    finally:
        daemon.close()
        receiver.kill()
        receiver.wait()
    assert "worker is still busy" in daemon.log.read_text()  # it stopped without waiting a minute
