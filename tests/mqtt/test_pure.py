"""The pure parts of the MQTT publisher: config validation, object ids, rates, entities per card."""

from __future__ import annotations

import datetime as dt

import pytest

from datacap.config import parse_config
from datacap.errors import ConfigError
from datacap.meter.links import LinkSample
from datacap.model import Reading
from datacap.mqtt import ha
from datacap.mqtt.snapshot import Rates, rates_between


@pytest.mark.parametrize(("mqtt", "expected"), [
    ({"url": "http://broker"}, "expected mqtt://host[:port] or mqtts://host[:port]"),
    ({"url": "mqtt://user:pw@broker"}, "expected no user or password in the URL"),
    ({"url": "mqtt://broker:99999"}, "expected a port number"),
    ({"url": "mqtt://broker/x"}, "expected no path"),
    ({"url": "mqtt://broker", "password_file": "/x", "password_env": "X", "username": "u"}, "not both"),
    ({"url": "mqtt://broker", "password_env": "X"}, "a password needs a username"),
    ({"url": "mqtt://broker", "node": "my node"}, "expected letters, digits"),
    ({"url": "mqtt://broker", "interval": 0}, "greater than or equal to 1"),
    ({"url": "mqtt://broker", "topic": "x"}, "unknown key"),
])
def test_bad_mqtt_config_is_a_clear_error(mqtt: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match="mqtt") as err:
        parse_config({"mqtt": mqtt})
    assert expected in str(err.value)
    assert "pw@" not in str(err.value) or "user or password" in str(err.value)


def test_broker_defaults_and_password_sources(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config({"mqtt": {"url": "mqtts://ha.lan", "username": "u", "password_env": "DC_PW"}}).mqtt
    assert cfg is not None
    assert (cfg.broker.host, cfg.broker.port, cfg.broker.tls) == ("ha.lan", 8883, True)
    with pytest.raises(ConfigError, match="DC_PW is not set"):
        cfg.password()
    monkeypatch.setenv("DC_PW", "pw")
    assert cfg.password() == "pw"
    plain = parse_config({"mqtt": {"url": "mqtt://10.0.0.2", "username": "u", "password_file": "/nonexistent/pw"}})
    assert plain.mqtt is not None and plain.mqtt.broker.port == 1883
    with pytest.raises(ConfigError, match="cannot read /nonexistent/pw"):
        plain.mqtt.password()


def test_object_ids_are_ascii_and_distinct() -> None:
    assert ha.slug("unicom") == "unicom"
    ids = {ha.slug(n) for n in ("通用", "闲时", "腾讯定向", "Unicom", "unicom 2")}
    assert len(ids) == 5 and all(i.isascii() and " " not in i for i in ids)
    assert ha.slug("通用") == ha.slug("通用")  # stable across runs: Home Assistant keeps its entities


def _sample(boot: str, t: float, **counters: tuple[int, int, int]) -> LinkSample:
    return LinkSample(boot, t, t, {n: Reading(i, boot, t, t, rx, tx, 0, 0) for n, (i, rx, tx) in counters.items()}, {})


@pytest.mark.parametrize(("a", "b", "expected"), [
    (None, _sample("x", 10, eth0=(2, 100, 0)), {}),  # first sample: no rate yet
    (_sample("x", 10, eth0=(2, 0, 0)), _sample("x", 12, eth0=(2, 1000, 250)), {"eth0": Rates(4000, 1000)}),
    (_sample("x", 10, eth0=(2, 5000, 0)), _sample("x", 12, eth0=(2, 10, 0)), {}),  # counter reset
    (_sample("x", 10, eth0=(2, 0, 0)), _sample("x", 12, eth0=(3, 10, 0)), {}),  # re-created interface
    (_sample("x", 10, eth0=(2, 0, 0)), _sample("y", 12, eth0=(2, 10, 0)), {}),  # reboot
    (_sample("x", 10), _sample("x", 12, wwan0=(4, 10, 0)), {}),  # appeared
])
def test_rates_between(a: LinkSample | None, b: LinkSample, expected: dict[str, Rates]) -> None:
    assert rates_between(a, b) == expected


def _card(**over: object) -> dict[str, object]:
    card: dict[str, object] = {
        "name": "sim", "label": None, "state": "active",
        "cycle": {"start": "2026-11-01T00:00:00+08:00", "end": "2026-12-01T00:00:00+08:00"},
        "used_bytes": 10, "overage_bytes": 0, "overage_cost": 0.0, "currency": None, "throttled": False,
        "buckets": [{"name": "all", "kind": "bucket", "quota_bytes": None, "used_bytes": 10, "remaining_bytes": None,
                     "expires": "2026-12-01T00:00:00+08:00", "active": True}],
        "forecast": {"exhausted_at": None, "method": "none"},
    }
    card.update(over)
    return card


def test_card_entities_say_unknown_rather_than_invent() -> None:
    at = dt.datetime.fromisoformat("2026-11-30T12:00:00+08:00")
    got = {e.object_id: e for e in ha.card_entities(_card(), at)}
    assert got["card_sim_all_remaining"].state == ha.NONE  # unlimited: Home Assistant shows "unknown"
    assert got["card_sim_runs_out"].state == ha.NONE
    assert got["card_sim_days_left"].state == "0.5"
    assert "card_sim_overage_cost" not in got  # no price configured: no cost entity, not a false 0
    expired = {e.object_id: e for e in ha.card_entities(_card(state="expired"), at)}
    assert expired["card_sim_days_left"].state == "0"
    priced = {e.object_id: e for e in ha.card_entities(_card(currency="CNY", overage_cost=1.5), at)}
    assert priced["card_sim_overage_cost"].state == "1.5"


def test_discovery_config_is_home_assistant_shaped() -> None:
    [entity] = ha.interface_entities(ha.InterfaceFigures("wwan0", 5, 8, 16))[:1]
    msg = ha.discovery("pi", "homeassistant", entity)
    assert msg.topic == "homeassistant/sensor/pi/iface_wwan0_today/config" and msg.retain
    assert '"unique_id": "datacap_pi_iface_wwan0_today"' in msg.payload
    assert [m.topic for m in ha.states("pi", entity)] == ["datacap/pi/iface_wwan0_today/state"]
