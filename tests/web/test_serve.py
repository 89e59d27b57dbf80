"""`datacap serve` as a real process, and live rates from real loopback traffic."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from datacap.config import Config
from datacap.store import open_read
from datacap.store.reader import Reader
from datacap.web.queries import LiveRates, live_json

from .conftest import Store
from .helpers import SRC

SERVE = "import typer; from datacap.cli.web import serve; app = typer.Typer(); app.command()(serve); app()"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_the_address_answers_and_stops_on_sigterm(store: Store) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "--db", str(store.db), "--config", str(store.config),
                             "--listen", f"127.0.0.1:{port}"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in line
        deadline = time.monotonic() + 20
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code
                break
            except httpx.TransportError:
                threading.Event().wait(0.05)
        assert status == 200, proc.stderr.read() if proc.poll() is not None and proc.stderr else "no answer"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_serve_refuses_a_wildcard_listen_without_token(store: Store) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", SERVE, "--db", str(store.db), "--config", str(store.config),
                           "--listen", "0.0.0.0:8765"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "needs a token" in proc.stderr


def test_live_rates_see_loopback_traffic(tmp_path: Path) -> None:
    """Bytes we push through lo between two samples show up as a positive rate for lo."""
    db = tmp_path / "lo.db"
    from datacap.store import TrafficDelta, Writer, open_write

    cfg = Config(timezone="UTC")
    Writer(open_write(db), cfg.tz).commit([TrafficDelta(int(time.time()) // 300 * 300, "lo", 1, 1)])
    reader = Reader(open_read(db), cfg.tz)
    rates = LiveRates(min_span=0.05)
    first = live_json(reader, cfg, rates)
    assert [i["name"] for i in first["interfaces"]] == ["lo"]
    payload = b"x" * (1 << 20)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        received = 0

        def sink() -> None:
            nonlocal received
            conn, _ = server.accept()
            with conn:
                while chunk := conn.recv(1 << 16):
                    received += len(chunk)
        thread = threading.Thread(target=sink)
        thread.start()
        with socket.create_connection(("127.0.0.1", port)) as client:
            for _ in range(8):  # 8 MiB, bounded
                client.sendall(payload)
        thread.join(timeout=20)
    assert received == 8 << 20
    second = live_json(reader, cfg, rates)
    lo = second["interfaces"][0]
    assert lo["name"] == "lo" and lo["rx_bps"] > 0 and lo["tx_bps"] > 0
