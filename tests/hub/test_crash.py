"""`datacap hub serve` killed with -9 in the middle of ingestion and started again, on both backends:
a device that resends whatever was not acknowledged (as the device's sender does) ends with every
byte counted exactly once; nothing acknowledged is lost (on SQLite: the group commit acknowledges a
batch only after its transaction is on disk)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import datacap_cmd, subprocess_env
from tests.hub.helpers import body, bucket_now
from tests.hub.test_serve import free_port
from tests.nsutil import wait_for

DEVICES = 6
BATCHES = 60


def start(config: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(datacap_cmd("hub", "serve", "--listen", f"127.0.0.1:{port}", "--no-alerts"),
                            env=subprocess_env(DATACAP_CONFIG=str(config)), stderr=subprocess.DEVNULL, text=True)


def test_kill_9_mid_ingest_then_restart_counts_every_byte_once(hub_db: str, tmp_path: Path, run_cli: Any) -> None:
    run_cli.config.write_text(f'timezone = "Asia/Shanghai"\n[hub]\ndatabase = "{hub_db}"\nrate = "1000/s"\n')
    tokens = {f"bus{i}": json.loads(run_cli("hub", "device", "add", f"bus{i}", "--json").stdout)["token"]
              for i in range(DEVICES)}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    hub = start(run_cli.config, port)
    s = bucket_now(3600)
    acked: dict[str, int] = {}
    killed = threading.Event()

    def up() -> bool:
        try:
            return httpx.get(base + "/api/v1/devices", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def device(name: str) -> None:
        with httpx.Client(base_url=base, timeout=10) as client:
            seq, attempts = 1, 0
            while seq <= BATCHES and attempts < 20_000:  # bounded: every retry counts
                attempts += 1
                payload = body(name, seq, [(s + 300 * (seq % 12), "wwan0", 1000 + seq, seq)])
                try:
                    r = client.post("/api/v1/ingest", content=payload, headers={
                        "Authorization": f"Bearer {tokens[name]}", "Content-Encoding": "gzip"})
                except httpx.TransportError:
                    killed.wait(30)  # the hub is down: wait for the test to restart it, then resend
                    wait_for(up, 60, "the hub back")
                    continue
                if r.status_code == 200:
                    acked[name] = r.json()["acked"]
                    seq = r.json()["acked"] + 1
                elif r.status_code == 409:
                    seq = r.json()["expected"]

    try:
        wait_for(up, 60, "hub serve")
        senders = [threading.Thread(target=device, args=(f"bus{i}",)) for i in range(DEVICES)]
        for t in senders:
            t.start()
        wait_for(lambda: sum(acked.values()) >= DEVICES * BATCHES // 3, 120, "a third of the batches in")
        hub.send_signal(signal.SIGKILL)  # mid-ingest: requests in flight get no answer
        hub.wait(30)
        hub = start(run_cli.config, port)
        killed.set()
        for t in senders:
            t.join(300)
            assert not t.is_alive()
        assert acked == {f"bus{i}": BATCHES for i in range(DEVICES)}
        for i in range(DEVICES):
            totals = httpx.get(f"{base}/api/v1/devices/bus{i}/totals", timeout=10).json()
            assert (totals["rx_bytes"], totals["tx_bytes"]) == (sum(1000 + n for n in range(1, BATCHES + 1)),
                                                                sum(range(1, BATCHES + 1)))
        # a replay of the first batch after all that: acknowledged, not counted
        again = httpx.post(f"{base}/api/v1/ingest", content=body("bus0", 1, [(s, "wwan0", 1000, 1)]),
                           headers={"Authorization": f"Bearer {tokens['bus0']}", "Content-Encoding": "gzip"})
        assert again.json() == {"acked": BATCHES, "duplicate": True}
    finally:
        killed.set()
        hub.terminate()
        hub.wait(30)
