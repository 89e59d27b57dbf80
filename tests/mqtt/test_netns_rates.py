"""The interface entities from real traffic: the daemon in a network namespace meters a veth, a
broker and a subscriber run in the same namespace (its own loopback); the published download rate
is seen above zero while bytes flow, and the retained "today" equals `datacap --json` after a stop."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import datacap_cmd, require_root, require_tool, subprocess_env
from tests.nsutil import DaemonRunner, Pair, destroy, make_pair, wait_for

pytestmark = pytest.mark.root
NODE = "nsnode"
SUB = r"""
import json, sys
import paho.mqtt.client as mqtt
out = open(sys.argv[2], "a")
def on_message(c, u, m):
    out.write(json.dumps({"topic": m.topic, "payload": m.payload.decode()}) + "\n"); out.flush()
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ns-sub")
c.on_message = on_message
c.on_connect = lambda c, u, f, rc, p: c.subscribe("datacap/#", qos=1)
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_forever()
"""
SEND = r"""
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2]))) as s:
    chunk = b"x" * 65536
    for _ in range(int(sys.argv[3])):
        s.sendall(chunk)
"""
SINK = r"""
import socket, sys
srv = socket.create_server(("0.0.0.0", int(sys.argv[1])))
while True:
    c, _ = srv.accept()
    while c.recv(65536):
        pass
    c.close()
"""


@pytest.fixture
def pair() -> Iterator[Pair]:
    require_root()
    require_tool("mosquitto")
    p = make_pair(subnet=83)
    try:
        yield p
    finally:
        destroy(p)


def messages(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last(path: Path, topic: str) -> str | None:
    found = [m["payload"] for m in messages(path) if m["topic"] == topic]
    return found[-1] if found else None


def test_interface_rate_and_today_from_real_traffic(pair: Pair, tmp_path: Path) -> None:
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("listener 18883 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n")
    broker = pair.a.popen("mosquitto", "-c", str(conf), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    got = tmp_path / "messages.jsonl"
    got.touch()
    sink = pair.a.popen(sys.executable, "-c", SINK, "9183")
    daemon = DaemonRunner(pair, tmp_path, f'[attribution]\nenabled = false\n[mqtt]\nurl = "mqtt://127.0.0.1:18883"\n'
                                          f'node = "{NODE}"\ninterval = 1\ntop_clients = 0\n')
    sub = None
    try:
        wait_for(lambda: ":18883" in pair.a.run("ss", "-tlnH").stdout, 15, "mosquitto")
        sub = pair.a.popen(sys.executable, "-c", SUB, "18883", str(got), env=subprocess_env())
        daemon.start()
        today = f"datacap/{NODE}/iface_{pair.a_if}_today/state"
        rate = f"datacap/{NODE}/iface_{pair.a_if}_rx_rate/state"
        wait_for(lambda: last(got, today) is not None, 30, "the interface's first state")
        sender = pair.b.popen(sys.executable, "-c", SEND, pair.a_ip, "9183", "400")  # 25 MiB, bounded
        wait_for(lambda: any(m["topic"] == rate and m["payload"] not in ("None", "0") and int(m["payload"]) > 0
                             for m in messages(got)), 30, "a download rate above zero")
        assert sender.wait(timeout=60) == 0
        wait_for(lambda: int(last(got, today) or 0) >= 25 << 20, 30, "today to hold the bytes sent")
        daemon.stop()
        wait_for(lambda: last(got, f"datacap/{NODE}/availability") == "offline", 15, "offline")
    finally:
        daemon.close()
        for proc in (sub, sink, broker):
            if proc is not None:
                proc.kill()
    summary = json.loads(subprocess.run(datacap_cmd("--json", "--db", str(daemon.db), "--config", str(daemon.config)),
                                        capture_output=True, text=True, env=subprocess_env(), timeout=60).stdout)
    [entry] = [i for i in summary["interfaces"] if i["name"] == pair.a_if]
    assert last(got, today) == str(entry["today"]["total_bytes"])
