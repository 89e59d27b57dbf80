"""Home Assistant MQTT discovery: which entities datacap offers and what each one's state is.

Pure functions over a :class:`Snapshot` (the ``status --json`` document, the interfaces' figures and
today's top clients): every figure is read from those documents, none is recomputed here. Each
entity has its own retained state topic (``datacap/<node>/<object>/state``) so a change republishes
one small message, and its discovery config under ``<prefix>/<component>/<node>/<object>/config``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import datacap

NONE = "None"  # Home Assistant's MQTT sensor reads this payload as "unknown"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool = True


@dataclass(frozen=True)
class InterfaceFigures:
    name: str
    today_bytes: int
    rx_bps: int | None  # bit/s over the last publishing interval; None: not measured (absent here)
    tx_bps: int | None


@dataclass(frozen=True)
class ClientFigures:
    name: str  # hostname, else IP
    mac: str | None
    ip: str | None
    today_bytes: int


@dataclass(frozen=True)
class Snapshot:
    status: dict[str, Any]  # the `datacap status --json` document
    interfaces: list[InterfaceFigures] = field(default_factory=list)
    clients: list[ClientFigures] = field(default_factory=list)


@dataclass(frozen=True)
class Entity:
    component: str  # "sensor" or "binary_sensor"
    object_id: str
    name: str
    device: str  # key of the device it belongs to ("node" or "card:<name>")
    state: str
    options: dict[str, Any] = field(default_factory=dict)  # device_class, unit, state_class, icon
    attributes: dict[str, Any] | None = None


def slug(name: str) -> str:
    """An object id part: ASCII, lower case; a name that loses characters gets a short hash (联通 stays unique)."""
    clean = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")
    if clean == name.lower() and clean:
        return clean
    digest = hashlib.sha1(name.encode()).hexdigest()[:6]
    return f"{clean}_{digest}" if clean else digest


def availability_topic(node: str) -> str:
    return f"datacap/{node}/availability"


def state_topic(node: str, object_id: str) -> str:
    return f"datacap/{node}/{object_id}/state"


def attributes_topic(node: str, object_id: str) -> str:
    return f"datacap/{node}/{object_id}/attributes"


def _num(value: Any) -> str:
    if value is None:
        return NONE
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))
    return str(value)


DATA = {"device_class": "data_size", "unit_of_measurement": "B"}
RATE = {"device_class": "data_rate", "unit_of_measurement": "bit/s", "state_class": "measurement"}


def card_entities(card: dict[str, Any], at: dt.datetime) -> list[Entity]:
    """The entities of one card object of ``status --json``."""
    key, label = slug(card["name"]), card.get("label") or card["name"]
    dev = f"card:{card['name']}"
    base = f"card_{key}"
    out = [Entity("sensor", f"{base}_used", f"{label} used this cycle", dev, _num(card["used_bytes"]),
                  {**DATA, "state_class": "total_increasing", "icon": "mdi:counter"},
                  {"status_at": at.isoformat(), "cycle_start": card["cycle"]["start"],
                   "cycle_end": card["cycle"]["end"], "state": card["state"]})]
    end = dt.datetime.fromisoformat(card["cycle"]["end"])
    days = max(0.0, (end - at).total_seconds() / 86400)
    out.append(Entity("sensor", f"{base}_days_left", f"{label} days left in cycle", dev,
                      f"{days:.1f}" if card["state"] == "active" else "0",
                      {"device_class": "duration", "unit_of_measurement": "d", "state_class": "measurement",
                       "icon": "mdi:calendar-clock"}))
    for bucket in card["buckets"]:
        bkey = slug(bucket["name"])
        out.append(Entity("sensor", f"{base}_{bkey}_remaining", f"{label} {bucket['name']} remaining", dev,
                          _num(bucket["remaining_bytes"]),
                          {**DATA, "state_class": "measurement", "icon": "mdi:database-arrow-down"},
                          {"kind": bucket["kind"], "quota_bytes": bucket["quota_bytes"],
                           "used_bytes": bucket["used_bytes"], "expires": bucket["expires"],
                           "active": bucket["active"]}))
    forecast = card.get("forecast") or {}
    out.append(Entity("sensor", f"{base}_runs_out", f"{label} forecast run-out", dev,
                      forecast.get("exhausted_at") or NONE, {"device_class": "timestamp", "icon": "mdi:chart-line"},
                      {"method": forecast.get("method"), "cycle_end_used_bytes": forecast.get("cycle_end_used_bytes"),
                       "daily_budget_bytes": forecast.get("daily_budget_bytes")}))
    out.append(Entity("binary_sensor", f"{base}_throttled", f"{label} throttled", dev,
                      "ON" if card["throttled"] else "OFF", {"icon": "mdi:speedometer-slow"}))
    out.append(Entity("sensor", f"{base}_overage", f"{label} overage this cycle", dev, _num(card["overage_bytes"]),
                      {**DATA, "state_class": "total_increasing"}))
    if card.get("currency"):
        out.append(Entity("sensor", f"{base}_overage_cost", f"{label} overage cost", dev,
                          _num(card["overage_cost"]),
                          {"device_class": "monetary", "unit_of_measurement": card["currency"],
                           "state_class": "total"}))
    return out


def interface_entities(iface: InterfaceFigures) -> list[Entity]:
    key = f"iface_{slug(iface.name)}"
    return [
        Entity("sensor", f"{key}_today", f"{iface.name} today", "node", _num(iface.today_bytes),
               {**DATA, "state_class": "total_increasing", "icon": "mdi:swap-vertical"}),
        Entity("sensor", f"{key}_rx_rate", f"{iface.name} download rate", "node", _num(iface.rx_bps),
               {**RATE, "icon": "mdi:download-network"}),
        Entity("sensor", f"{key}_tx_rate", f"{iface.name} upload rate", "node", _num(iface.tx_bps),
               {**RATE, "icon": "mdi:upload-network"}),
    ]


def client_entities(client: ClientFigures) -> list[Entity]:
    ident = client.mac or client.name
    return [Entity("sensor", f"client_{slug(ident)}_today", f"{client.name} today", "node",
                   _num(client.today_bytes), {**DATA, "state_class": "total_increasing", "icon": "mdi:devices"},
                   {"mac": client.mac, "ip": client.ip, "name": client.name})]


def entities(snapshot: Snapshot) -> list[Entity]:
    at = dt.datetime.fromisoformat(snapshot.status["at"])
    out = [e for card in snapshot.status["cards"] for e in card_entities(card, at)]
    out += [e for iface in snapshot.interfaces for e in interface_entities(iface)]
    out += [e for client in snapshot.clients for e in client_entities(client)]
    return out


def _device(node: str, device: str) -> dict[str, Any]:
    node_id = f"datacap_{node}"
    if device == "node":
        return {"identifiers": [node_id], "name": f"datacap {node}", "manufacturer": "datacap",
                "model": "data-usage monitor", "sw_version": datacap.__version__}
    card = device.split(":", 1)[1]
    return {"identifiers": [f"{node_id}_card_{slug(card)}"], "name": f"{card} ({node})", "manufacturer": "datacap",
            "model": "data card", "via_device": node_id}


def discovery(node: str, prefix: str, entity: Entity) -> Message:
    config: dict[str, Any] = {
        "name": entity.name,
        "unique_id": f"datacap_{node}_{entity.object_id}",
        "state_topic": state_topic(node, entity.object_id),
        "availability_topic": availability_topic(node),
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": _device(node, entity.device),
        **entity.options,
    }
    if entity.attributes is not None:
        config["json_attributes_topic"] = attributes_topic(node, entity.object_id)
    if entity.component == "binary_sensor":
        config.update(payload_on="ON", payload_off="OFF")
    return Message(f"{prefix}/{entity.component}/{node}/{entity.object_id}/config",
                   json.dumps(config, ensure_ascii=False, sort_keys=True))


def states(node: str, entity: Entity) -> list[Message]:
    out = [Message(state_topic(node, entity.object_id), entity.state)]
    if entity.attributes is not None:
        out.append(Message(attributes_topic(node, entity.object_id),
                           json.dumps(entity.attributes, ensure_ascii=False, sort_keys=True)))
    return out
