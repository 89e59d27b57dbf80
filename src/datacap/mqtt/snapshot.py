"""What the MQTT publisher reads: the status document, interfaces' today and rates, top clients.

All figures come from the query layer (the same functions behind ``datacap status --json``,
``datacap --json`` and ``datacap clients --json``); rates are the average bit rate over the
publishing interval from two samples of the kernel's interface counters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from datacap.config import Config
from datacap.meter.links import LinkSample
from datacap.mqtt.ha import ClientFigures, InterfaceFigures, Snapshot
from datacap.query.status import status_json
from datacap.query.views import ranking_json, summary_json
from datacap.store import Reader
from datacap.timeutil import bucket_start, iso


@dataclass(frozen=True)
class Rates:
    rx_bps: int
    tx_bps: int


def rates_between(a: LinkSample | None, b: LinkSample) -> dict[str, Rates]:
    """Bits per second per interface between two samples; a reset, a new ifindex or a reboot gives none."""
    if a is None or a.boot_id != b.boot_id or b.boottime <= a.boottime:
        return {}
    span = b.boottime - a.boottime
    out: dict[str, Rates] = {}
    for name, rb in b.readings.items():
        ra = a.readings.get(name)
        if ra is None or ra.ifindex != rb.ifindex or rb.rx_bytes < ra.rx_bytes or rb.tx_bytes < ra.tx_bytes:
            continue
        out[name] = Rates(round((rb.rx_bytes - ra.rx_bytes) * 8 / span), round((rb.tx_bytes - ra.tx_bytes) * 8 / span))
    return out


def take_snapshot(reader: Reader, cfg: Config, at: dt.datetime, rates: dict[str, Rates], top_clients: int) -> Snapshot:
    at = at.replace(microsecond=0).astimezone(cfg.tz)  # the instant `status --json --at` can be asked for
    status = status_json(reader, cfg, at=at) if cfg.cards else {"at": iso(at), "cards": []}
    interfaces = []
    for entry in summary_json(reader, cfg, now=at)["interfaces"]:
        rate = rates.get(entry["name"])
        interfaces.append(InterfaceFigures(entry["name"], entry["today"]["total_bytes"],
                                           rate.rx_bps if rate else None, rate.tx_bps if rate else None))
    clients: list[ClientFigures] = []
    if top_clients:
        doc = ranking_json(reader, cfg, "client", bucket_start("day", at, cfg.tz), at, limit=top_clients)
        clients = [ClientFigures(str(r.get("client") or r.get("mac") or "?"), r.get("mac"), r.get("ip"),
                                 int(r["total_bytes"])) for r in doc["rows"]]
    return Snapshot(status, interfaces, clients)
