"""A real mosquitto broker started by the test (own config in a temp dir, a free loopback port) and
a real paho subscriber that keeps the last payload of every topic."""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from tests.conftest import require_tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Broker:
    def __init__(self, tmp: Path, users: dict[str, str] | None = None, tls: bool = False) -> None:
        exe = require_tool("mosquitto")
        self.port = free_port()
        self.dir = tmp / "mosquitto"
        self.dir.mkdir()
        self.log = self.dir / "mosquitto.log"
        # As root mosquitto would drop to the "mosquitto" user, who cannot read the test's temp dir.
        lines = [f"listener {self.port} 127.0.0.1", "persistence false", f"log_dest file {self.log}", "user root",
                 "log_type all"]
        if tls:
            self.ca = make_certs(self.dir)
            lines += [f"cafile {self.ca}", f"certfile {self.dir / 'server.pem'}", f"keyfile {self.dir / 'server.key'}"]
        if users:
            pwfile = self.dir / "passwd"
            pwfile.touch(mode=0o600)
            for user, password in users.items():
                subprocess.run([require_tool("mosquitto_passwd"), "-b", str(pwfile), user, password], check=True,
                               capture_output=True, timeout=30)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        conf = self.dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(self._listening, 15, "mosquitto to listen")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            err = self.proc.stderr.read() if self.proc.stderr else b""
            raise AssertionError(f"mosquitto exited {self.proc.returncode}: {err!r}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Subscriber:
    """Subscribes to ``topics`` and keeps the last payload per topic (retained ones arrive first)."""

    def __init__(self, port: int, topics: list[str], auth: tuple[str, str] | None = None,
                 ca: Path | None = None) -> None:
        self.messages: dict[str, str] = {}
        self.history: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="datacap-test-subscriber")
        if auth:
            self.client.username_pw_set(*auth)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: [c.subscribe(t, qos=1) for t in topics]
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            self.messages[msg.topic] = msg.payload.decode()
            self.history.append((msg.topic, msg.payload.decode()))

    def get(self, topic: str) -> str | None:
        with self.lock:
            return self.messages.get(topic)

    def json(self, topic: str) -> Any:
        raw = self.get(topic)
        return None if raw is None else json.loads(raw)

    def count(self, topic: str) -> int:
        with self.lock:
            return sum(1 for t, _ in self.history if t == topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_certs(where: Path) -> Path:
    """A throw-away CA and a server certificate for 127.0.0.1 (the broker's TLS listener); the CA's path."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "datacap test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (where / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (where / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (where / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.TraditionalOpenSSL,
                                                         serialization.NoEncryption()))
    return where / "ca.pem"
