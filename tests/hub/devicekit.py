"""A device for the push tests: a real store written through the real Writer, the real sender."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from datacap.config import parse_config
from datacap.hub import protocol
from datacap.hub.batches import BatchStore, Snapshot
from datacap.hub.device import cards
from datacap.hub.sender import HubClient, Sender, host_info
from datacap.model import AppIdentity, AttribDelta, ClientIdentity
from datacap.store import TrafficDelta, Writer, open_write

DEVICE = "bus-17"
CONFIG = {"timezone": "UTC", "cards": [{"name": "unicom", "label": "联通", "interfaces": ["wwan0"],
                                         "buckets": [{"name": "通用", "quota": "20 GB"}]}]}


def snapshot(pending: int) -> Snapshot:
    cfg = parse_config(CONFIG)
    health = protocol.Health(uptime_s=1, last_sample=dt.datetime.now(dt.UTC), store_bytes=1, write_errors=0,
                             pending_batches=pending)
    return Snapshot(host_info("UTC"), health, cards(cfg, {c["name"]: c for c in CONFIG["cards"]}, {}))


@dataclass
class Device:
    db: Path
    writer: Writer
    sender: Sender

    def close(self) -> None:
        self.writer.conn.close()
        self.sender.store.close()


def make_device(tmp: Path, url: str, token: str, device: str = DEVICE) -> Device:
    db = tmp / "device.db"
    token_file = tmp / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    writer = Writer(open_write(db), ZoneInfo("UTC"))
    if not writer.outbox:
        writer.enable_outbox(True)
    sender = Sender(BatchStore(db, device), HubClient(url, token_file, timeout=5), snapshot, every=60)
    return Device(db, writer, sender)


def write_traffic(writer: Writer, rng: random.Random, flushes: int, now: int | None = None,
                  attrib: bool = True) -> None:
    """``flushes`` writes of random deltas over two interfaces (one stamped with a SIM's card) and
    their attribution, as the daemon's flush does."""
    now = int(time.time()) if now is None else now
    for _ in range(flushes):
        bucket = now - now % 300 - 300 * rng.randrange(0, 3)
        rx, tx = rng.randrange(0, 5_000_000), rng.randrange(0, 500_000)
        traffic = [TrafficDelta(bucket, "wwan0", rx, tx, rx // 1400, tx // 1400),
                   TrafficDelta(bucket, "wwan1", rng.randrange(0, 90_000), rng.randrange(0, 9_000), card="unicom")]
        deltas = []
        if attrib:
            app = AppIdentity(rng.choice(["firefox", "wechat", "apt"]), "/usr/bin/x")
            client = ClientIdentity("192.168.8.23", "aa:bb:cc:dd:ee:ff", "phone")
            deltas = [AttribDelta(bucket, "wwan0", traffic[0].rx_bytes // 2, traffic[0].tx_bytes // 3, 1,
                                  app=app, client=client, service=rng.choice([None, "bilibili"]))]
        writer.commit(traffic, deltas, seen_at=now)


def device_usage(db: Path) -> dict[tuple[int, str, str | None], tuple[int, int]]:
    """The device's own 5-minute usage per (start, interface, card): what the hub must hold."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT u.start, i.name, u.card, u.rx_bytes, u.tx_bytes FROM usage u "
                            "JOIN interfaces i ON i.id = u.iface_id WHERE u.res = '5min'").fetchall()
    return {(s, i, c or None): (rx, tx) for s, i, c, rx, tx in rows if rx or tx}


def device_packets(db: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT coalesce(sum(rx_packets), 0), coalesce(sum(tx_packets), 0) FROM usage "
                           "WHERE res = 'year'").fetchone()
    return row[0], row[1]


def device_total(db: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT coalesce(sum(rx_bytes), 0), coalesce(sum(tx_bytes), 0) FROM usage "
                           "WHERE res = 'year'").fetchone()
    return row[0], row[1]


def device_attribution(db: Path) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (kind, name), the device's own attributed bytes (hour rows: every byte once)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        out: dict[tuple[str, str], tuple[int, int]] = {}
        queries = {
            "app": "SELECT p.name, sum(a.rx_bytes), sum(a.tx_bytes) FROM attrib a JOIN apps p ON p.id = a.app_id "
                   "WHERE a.res = 'hour' GROUP BY p.name",
            "client": "SELECT coalesce(nullif(c.hostname, ''), nullif(c.ip, ''), c.mac), sum(a.rx_bytes), "
                      "sum(a.tx_bytes) FROM attrib a JOIN clients c ON c.id = a.client_id WHERE a.res = 'hour' "
                      "GROUP BY 1",
            "service": "SELECT s.name, sum(a.rx_bytes), sum(a.tx_bytes) FROM attrib a "
                       "JOIN services s ON s.id = a.service_id WHERE a.res = 'hour' GROUP BY s.name",
        }
        for kind, sql in queries.items():
            for name, rx, tx in conn.execute(sql):
                out[(kind, name)] = (rx, tx)
    return out


def drain(sender: Sender, rounds: int = 500) -> None:
    """Run the sender's rounds until the hub holds everything (bounded)."""
    for _ in range(rounds):
        unacked, usage, attrib = sender.store.pending()
        if not (unacked or usage or attrib):
            return
        sender.wake()
        sender.step()
    raise AssertionError(f"sender did not catch up in {rounds} rounds: {sender.store.pending()}")
