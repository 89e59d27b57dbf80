"""`datacap hub serve` as a real process over HTTPS (--tls-cert/--tls-key), and `datacap hub device
add|list|revoke` as real commands against the same database, on both backends."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import datacap_cmd, subprocess_env
from tests.hub.helpers import body, bucket_now
from tests.nsutil import wait_for


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_hub_serve_over_tls_with_device_commands(hub_db: str, tmp_path: Path, run_cli: Any) -> None:
    run_cli.config.write_text(f'timezone = "Asia/Shanghai"\n[hub]\ndatabase = "{hub_db}"\n'
                              f'alert_state = "{tmp_path / "alerts.db"}"\n')
    token = json.loads(run_cli("hub", "device", "add", "bus1", "--group", "line3", "--json").stdout)["token"]
    again = run_cli("hub", "device", "add", "bus1", check=False)
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
    assert token not in run_cli("hub", "device", "list").stdout  # shown once, never again
    cert, key = self_signed(tmp_path)
    port = free_port()
    env = subprocess_env(DATACAP_CONFIG=str(run_cli.config))
    hub = subprocess.Popen(datacap_cmd("hub", "serve", "--listen", f"127.0.0.1:{port}", "--tls-cert", str(cert),
                                       "--tls-key", str(key)), env=env, stderr=subprocess.PIPE, text=True)
    try:
        client = httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=ssl.create_default_context(
            cafile=str(cert)), timeout=30)

        def up() -> bool:
            try:
                return client.get("/api/v1/devices").status_code == 200
            except httpx.TransportError:
                assert hub.poll() is None, hub.stderr.read() if hub.stderr else ""
                return False

        wait_for(up, 60, "hub serve over TLS")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   "Content-Encoding": "gzip"}
        s = bucket_now()
        r = client.post("/api/v1/ingest", content=body("bus1", 1, [(s, "wwan0", 5000, 500)]), headers=headers)
        assert r.status_code == 200 and r.json() == {"acked": 1}
        devices = json.loads(run_cli("hub", "device", "list", "--json").stdout)["devices"]
        assert [(d["device"], d["group"], d["last_seq"], d["silent"]) for d in devices] == \
            [("bus1", "line3", 1, False)]
        assert client.get("/api/v1/devices/bus1/totals").json()["rx_bytes"] == 5000
        # revoked from another process while the hub holds the token in its cache: refused at once
        run_cli("hub", "device", "revoke", "bus1")
        r = client.post("/api/v1/ingest", content=body("bus1", 2, [(s, "wwan0", 1, 1)]), headers=headers)
        assert r.status_code == 401
        assert client.get("/api/v1/devices/bus1/totals").json()["rx_bytes"] == 5000
        revoked = json.loads(run_cli("hub", "device", "list", "--json").stdout)["devices"][0]
        assert revoked["revoked"] is not None
        client.close()
    finally:
        hub.terminate()
        hub.wait(30)
