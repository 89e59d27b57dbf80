"""`datacap run` pushes to a hub: a real daemon in a network namespace, real traffic, real signals.

The daemon meters a veth into a second namespace (iperf3 traffic) and pushes to the test's receiver,
which listens on the first namespace's own loopback (not metered). Across a kill -9 while a batch's
answer is in flight, a hub outage and a final SIGTERM, the hub must end up holding exactly the
device's own bytes, bucket by bucket.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool
from tests.hub.devicekit import device_attribution, device_total, device_usage
from tests.hub.receiver import Receiver
from tests.nsutil import DaemonRunner, Pair, destroy, make_pair, wait_for

pytestmark = pytest.mark.root
TOKEN = "tok-mifi-3-9d2f0c"
DEVICE = "mifi-3"


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root()
    require_tool("iperf3")
    p = make_pair(subnet=41)
    try:
        yield p
    finally:
        destroy(p)


def send(pair: Pair, port: int, amount: str, reverse: bool = False) -> None:
    args = ["iperf3", "-c", pair.b_ip, "-p", str(port), "-n", amount, "--connect-timeout", "3000"]
    pair.a.run(*args, *(["-R"] if reverse else []))


def batches_with_usage(hub: Receiver) -> int:
    return sum(1 for b in hub.devices[DEVICE].journal if b.usage)


def test_daemon_pushes_every_byte_once_through_kill_and_outage(pair: Pair, tmp_path: Path) -> None:
    hub = Receiver(TOKEN, netns=pair.a.name).start()
    token = tmp_path / "hub.token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    config = f'[hub]\nurl = "{hub.url}"\ntoken_file = "{token}"\ndevice = "{DEVICE}"\nevery = "1s"\n'
    daemon = DaemonRunner(pair, tmp_path, extra_config=config)
    iperf = pair.b.popen("iperf3", "-s", "-p", "5301", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: ":5301 " in pair.b.run("ss", "-ltn", check=False).stdout, 10, "iperf3 server")
        daemon.start()
        send(pair, 5301, "30M")
        wait_for(lambda: batches_with_usage(hub) >= 1, 30, "a batch with usage at the hub")

        # kill -9 while the hub has applied a batch and its answer is still on the way.
        hub.hold_replies()
        send(pair, 5301, "5M")
        wait_for(hub.held.is_set, 30, "a request in flight")
        daemon.stop(signal.SIGKILL)
        hub.unhold()

        # Restarted; the hub goes down for a while, traffic goes on; then the hub comes back.
        daemon.start()
        hub.stop()
        send(pair, 5301, "20M", reverse=True)
        acked = len(hub.replies)
        hub.start()
        wait_for(lambda: any(s == 200 for s, _ in hub.replies[acked:]), 60, "the daemon to reach the hub again")
        send(pair, 5301, "10M")
        daemon.stop()  # SIGTERM: the last flush is pushed before the daemon exits
    finally:
        daemon.close()
        iperf.kill()
        iperf.wait()
        hub.stop()

    total = device_total(daemon.db)
    assert sum(total) > 60_000_000
    assert hub.usage(DEVICE) == device_usage(daemon.db)  # bucket by bucket, byte for byte
    assert hub.total(DEVICE) == total
    assert hub.attribution(DEVICE) == device_attribution(daemon.db)
    assert any(status == 200 and seq for status, seq in hub.replies)
    seqs = [b.seq for b in hub.devices[DEVICE].journal]
    assert seqs == list(range(1, len(seqs) + 1))
    log = daemon.log.read_text()
    assert "hub already had batch" in log  # the batch whose answer was lost was resent, counted once
    assert TOKEN not in log
