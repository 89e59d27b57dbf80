"""The device's sender against the real `datacap hub serve` over TLS (a self-signed --tls-cert),
on SQLite and on PostgreSQL: refused until the device trusts the hub's certificate (`[hub] ca_file`),
then every byte delivered once."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

from datacap.hub.sender import HubClient
from tests.conftest import datacap_cmd, subprocess_env
from tests.hub.devicekit import DEVICE, device_total, drain, make_device, write_traffic
from tests.hub.test_serve import free_port, self_signed
from tests.nsutil import wait_for


def test_device_pushes_to_hub_serve_over_tls(hub_db: str, tmp_path: Path, run_cli: Any) -> None:
    run_cli.config.write_text(f'timezone = "UTC"\n[hub]\ndatabase = "{hub_db}"\n'
                              f'alert_state = "{tmp_path / "alerts.db"}"\n')
    token = json.loads(run_cli("hub", "device", "add", DEVICE, "--json").stdout)["token"]
    cert, key = self_signed(tmp_path)
    port = free_port()
    log = (tmp_path / "hub.log").open("w")
    hub = subprocess.Popen(datacap_cmd("hub", "serve", "--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert),
                                       "--tls-key", str(key)),
                           env=subprocess_env(DATACAP_CONFIG=str(run_cli.config)), stderr=log, stdout=log)
    home = tmp_path / "dev"
    home.mkdir()
    device = make_device(home, f"https://127.0.0.1:{port}", token)
    try:
        wait_for(lambda: "datacap hub on" in (tmp_path / "hub.log").read_text() or hub.poll() is not None, 60,
                 "hub serve to start")
        write_traffic(device.writer, random.Random(12), 4)
        device.sender.wake()
        assert device.sender.step() > 0  # the system's CAs do not know a self-signed hub
        unacked, = device.sender.store.conn.execute(
            "SELECT count(*) FROM hub_batches WHERE acked_at IS NULL").fetchone()
        error, = device.sender.store.conn.execute("SELECT last_error FROM hub_batches").fetchone()
        assert unacked == 1 and "CERTIFICATE_VERIFY_FAILED" in error

        device.sender.client = HubClient(f"https://127.0.0.1:{port}", home / "token", ca_file=cert)
        wait_for(lambda: (device.sender.wake(), device.sender.step())[1] == 0 or not
                 any(device.sender.store.pending()), 60, "the hub to accept over TLS")
        drain(device.sender)
        fleet = json.loads(run_cli("fleet", "--json").stdout)
        assert [(c["device"], c["card"]) for c in fleet["cards"]] == [(DEVICE, "unicom")]
        from datacap.hub.fleet import totals_doc
        from datacap.hub.store import open_hub_store

        store = open_hub_store(hub_db)
        try:
            doc = totals_doc(store, DEVICE)
        finally:
            store.close()
        assert (doc["rx_bytes"], doc["tx_bytes"]) == device_total(device.db)
    finally:
        device.close()
        hub.terminate()
        hub.wait(30)
        log.close()
