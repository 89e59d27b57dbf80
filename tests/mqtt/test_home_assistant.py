"""`datacap run` with `[mqtt]` against a real mosquitto broker: Home Assistant discovery configs and
retained states that match `datacap status --json` (and `datacap --json`, `datacap clients --json`)
at the same instant, auth by password file, availability online / offline on stop / last will on kill -9."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from datacap.mqtt.ha import NONE
from tests.conftest import datacap_cmd, subprocess_env
from tests.mqtt.broker import Broker, Subscriber, wait_for

NODE = "testnode"
PASSWORD = "s3cret-broker-pw"
PREFIX = "homeassistant"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path, users={"datacap": PASSWORD, "ha": "ha-pw"})
    try:
        yield b
    finally:
        b.close()


class Rig:
    def __init__(self, tmp: Path, port: int, password_file: Path) -> None:
        self.db = tmp / "store.db"
        self.config = tmp / "config.toml"
        self.log = tmp / "daemon.log"
        self.config.write_text(f'''timezone = "UTC"

[meter]
include = ["lo"]

[attribution]
enabled = false

[web]
enabled = false

[[cards]]
name = "sim"
label = "联通卡"
interfaces = ["wwan0"]

[[cards.buckets]]
name = "通用"
quota = "1 GB"

[[cards.buckets]]
name = "腾讯定向"
quota = "500 MB"
services = ["tencent"]

[cards.throttle]
after = "1100 MB"
rate = "1 Mbit/s"

[cards.overage]
price = 0.29
per = "1 MB"
currency = "CNY"

[mqtt]
url = "mqtt://127.0.0.1:{port}"
username = "datacap"
password_file = "{password_file}"
node = "{NODE}"
interval = 1
top_clients = 3
''')
        self.proc: subprocess.Popen[str] | None = None

    def cli(self, *args: str) -> str:
        proc = subprocess.run(datacap_cmd(*args, "--db", str(self.db), "--config", str(self.config)),
                              capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    def start(self, env: dict[str, str] | None = None) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                datacap_cmd("run", "--db", str(self.db), "--config", str(self.config), "--interval", "0.2",
                            "--flush", "0.5", "--no-web"), env=subprocess_env(**(env or {})), stdout=log,
                stderr=log, text=True)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def usage_csv(path: Path) -> None:
    """1.4 GB on the card's modem today (over the 1 GB bucket: overage, throttled), 3 LAN clients."""
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    midnight = now.replace(hour=0, minute=0)
    at = max(midnight, now - dt.timedelta(minutes=10)).isoformat()
    mb = 1024 * 1024
    rows = ["time,interface,rx_bytes,tx_bytes,card,app,client,service",
            f"{at},wwan0,{700 * mb},{100 * mb},,,phone,",
            f"{at},wwan0,{300 * mb},{50 * mb},,,laptop,",
            f"{at},wwan0,{30 * mb},{20 * mb},,,tv,",
            f"{at},wwan0,{200 * mb},{28 * mb},,,,tencent"]
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture
def rig(tmp_path: Path, broker: Broker) -> Iterator[Rig]:
    pw = tmp_path / "mqtt.pass"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    r = Rig(tmp_path, broker.port, pw)
    usage_csv(tmp_path / "usage.csv")
    r.cli("import", str(tmp_path / "usage.csv"))
    try:
        yield r
    finally:
        r.close()


def state(sub: Subscriber, object_id: str) -> str | None:
    return sub.get(f"datacap/{NODE}/{object_id}/state")


def test_discovery_and_states_match_status_json_and_availability(rig: Rig, broker: Broker) -> None:
    sub = Subscriber(broker.port, [f"{PREFIX}/#", f"datacap/{NODE}/#"], auth=("ha", "ha-pw"))
    try:
        rig.start()
        avail = f"datacap/{NODE}/availability"
        wait_for(lambda: sub.get(avail) == "online", 30, "availability online")
        wait_for(lambda: sub.get(f"datacap/{NODE}/card_sim_used/attributes")
                 and state(sub, "iface_wwan0_today") and state(sub, "client_phone_today"), 30, "the first states")
        assert rig.stop() == 0
        wait_for(lambda: sub.get(avail) == "offline", 15, "availability offline after a clean stop")

        # The retained states are the last round's: compare with status --json at that round's instant.
        at = sub.json(f"datacap/{NODE}/card_sim_used/attributes")["status_at"]
        doc = json.loads(rig.cli("status", "--json", "--at", at))
        [card] = doc["cards"]
        assert card["used_bytes"] == 1428 * 1024 * 1024
        assert state(sub, "card_sim_used") == str(card["used_bytes"])
        by_name = {b["name"]: b for b in card["buckets"]}
        general = [k for k in sub.messages if k.startswith(f"datacap/{NODE}/card_sim_") and
                   k.endswith("_remaining/state")]
        assert len(general) == 2  # one per bucket, the Chinese names hashed into ASCII object ids
        for topic in general:
            object_id = topic.split("/")[2]
            attrs = sub.json(f"datacap/{NODE}/{object_id}/attributes")
            bucket = next(b for b in card["buckets"] if b["quota_bytes"] == attrs["quota_bytes"])
            assert sub.get(topic) == (NONE if bucket["remaining_bytes"] is None else str(bucket["remaining_bytes"]))
            assert attrs["used_bytes"] == bucket["used_bytes"]
        assert by_name["通用"]["remaining_bytes"] == 0
        assert card["throttled"] is True and state(sub, "card_sim_throttled") == "ON"
        assert card["overage_cost"] > 0
        assert float(state(sub, "card_sim_overage_cost") or "nan") == pytest.approx(card["overage_cost"], abs=0.005)
        assert state(sub, "card_sim_overage") == str(card["overage_bytes"])
        assert state(sub, "card_sim_runs_out") == (card["forecast"]["exhausted_at"] or NONE)
        days = (dt.datetime.fromisoformat(card["cycle"]["end"]) - dt.datetime.fromisoformat(doc["at"])).total_seconds()
        assert float(state(sub, "card_sim_days_left") or "nan") == pytest.approx(days / 86400, abs=0.051)

        summary = json.loads(rig.cli("--json"))
        wwan = next(i for i in summary["interfaces"] if i["name"] == "wwan0")
        assert state(sub, "iface_wwan0_today") == str(wwan["today"]["total_bytes"])
        assert state(sub, "iface_wwan0_rx_rate") == NONE  # not an interface of this machine: no rate
        clients = json.loads(rig.cli("clients", "--json", "--limit", "3"))["rows"]
        assert [c["client"] for c in clients] == ["phone", "laptop", "tv"]
        for c in clients:
            assert state(sub, f"client_{c['client']}_today") == str(c["total_bytes"])

        # Discovery configs: what Home Assistant needs to make typed, grouped, available-aware entities.
        used = sub.json(f"{PREFIX}/sensor/{NODE}/card_sim_used/config")
        assert used["state_topic"] == f"datacap/{NODE}/card_sim_used/state"
        assert used["availability_topic"] == avail
        assert (used["device_class"], used["unit_of_measurement"], used["state_class"]) == \
            ("data_size", "B", "total_increasing")
        assert used["unique_id"] == f"datacap_{NODE}_card_sim_used" and "联通卡" in used["name"]
        assert used["device"]["via_device"] == f"datacap_{NODE}"
        throttled = sub.json(f"{PREFIX}/binary_sensor/{NODE}/card_sim_throttled/config")
        assert (throttled["payload_on"], throttled["payload_off"]) == ("ON", "OFF")
        cost = sub.json(f"{PREFIX}/sensor/{NODE}/card_sim_overage_cost/config")
        assert (cost["device_class"], cost["unit_of_measurement"], cost["state_class"]) == ("monetary", "CNY", "total")
        rate = sub.json(f"{PREFIX}/sensor/{NODE}/iface_wwan0_rx_rate/config")
        assert (rate["device_class"], rate["unit_of_measurement"], rate["state_class"]) == \
            ("data_rate", "bit/s", "measurement")
        runout = sub.json(f"{PREFIX}/sensor/{NODE}/card_sim_runs_out/config")
        assert runout["device_class"] == "timestamp"
        # Unchanged states are not sent again every round: the used figure went out once.
        assert sub.count(f"datacap/{NODE}/card_sim_used/state") == 1
        assert PASSWORD not in rig.log.read_text()

        # kill -9: no goodbye, the broker publishes the last will.
        rig.start()
        wait_for(lambda: sub.get(avail) == "online", 30, "availability online again")
        rig.stop(signal.SIGKILL)
        wait_for(lambda: sub.get(avail) == "offline", 30, "the last will: offline after kill -9")
    finally:
        sub.close()


def test_wrong_password_is_said_clearly_and_never_logged(rig: Rig, broker: Broker, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("not-the-password\n")
    rig.config.write_text(rig.config.read_text().replace(str(tmp_path / "mqtt.pass"), str(wrong)))
    rig.start()
    wait_for(lambda: "broker refused the connection" in rig.log.read_text(), 30, "the refusal in the log")
    assert rig.stop() == 0
    text = rig.log.read_text()
    assert "not-the-password" not in text and PASSWORD not in text
    assert "metering into" in text  # metering goes on without the broker


def test_tls_broker_with_password_from_the_environment(tmp_path: Path) -> None:
    broker = Broker(tmp_path, users={"datacap": PASSWORD, "ha": "ha-pw"}, tls=True)
    try:
        rig = Rig(tmp_path, broker.port, tmp_path / "unused")
        rig.config.write_text(rig.config.read_text()
                              .replace(f"mqtt://127.0.0.1:{broker.port}", f"mqtts://127.0.0.1:{broker.port}")
                              .replace(f'password_file = "{tmp_path / "unused"}"',
                                       f'password_env = "DATACAP_TEST_MQTT_PW"\nca_file = "{broker.ca}"'))
        usage_csv(tmp_path / "usage.csv")
        rig.cli("import", str(tmp_path / "usage.csv"))
        sub = Subscriber(broker.port, [f"datacap/{NODE}/#"], auth=("ha", "ha-pw"), ca=broker.ca)
        try:
            rig.start(env={"DATACAP_TEST_MQTT_PW": PASSWORD})
            wait_for(lambda: sub.get(f"datacap/{NODE}/availability") == "online", 30, "online over TLS")
            wait_for(lambda: state(sub, "card_sim_used"), 30, "a state over TLS")
            assert rig.stop() == 0
            assert state(sub, "card_sim_used") == str(1428 * 1024 * 1024)
            wait_for(lambda: sub.get(f"datacap/{NODE}/availability") == "offline", 15, "offline over TLS")
            assert "(TLS)" in rig.log.read_text() and PASSWORD not in rig.log.read_text()
        finally:
            sub.close()
            rig.close()
    finally:
        broker.close()
