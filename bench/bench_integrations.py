"""Benchmark: what the issue #15 integrations cost per round.

* one MQTT round (on the MQTT thread, with a read-only connection: never the metering thread):
  status of each card from the store, interfaces' today, top clients, every entity's discovery
  config and state built, for 1 and 5 cards with a month of 5-minute usage and 20 LAN clients;
* one per-client quota step (usage of each limited client's day and cycle from the store, the cap
  decision, the nft script rendered) for 5 and 50 limits (nft itself not run);
* storing one MiFi stick reading (delta, bytes spread, reading kept, one transaction).

Each is compared with the bare interpreter start measured in the same run (the cost of any
`datacap` command). Prints median and worst wall-clock ms with the load average.

Run: ``PYTHONPATH=src python bench/bench_integrations.py``
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from datacap.alerts.client_caps import ClientCaps
from datacap.alerts.client_limits import client_limits
from datacap.config import parse_config
from datacap.daemon.mifi import apply_reading
from datacap.meter.mifi import StickReading
from datacap.model import AttribDelta, ClientIdentity
from datacap.mqtt import ha
from datacap.mqtt.snapshot import take_snapshot
from datacap.store import Reader, Writer, open_write
from datacap.store.writer import TrafficDelta

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
MB = 1 << 20


def store(path: Path, cards: int, clients: int) -> Writer:
    cfg_tz = parse_config({"timezone": "Asia/Shanghai"}).tz
    writer = Writer(open_write(path), cfg_tz)
    start = int(NOW.timestamp()) // 300 * 300 - 30 * 86400
    traffic, attrib = [], []
    for bucket in range(start, int(NOW.timestamp()) - 300, 300):
        for c in range(cards):
            traffic.append(TrafficDelta(bucket, f"wwan{c}", 200_000, 20_000, 150, 60, None))
        for k in range(clients):
            if (bucket // 300) % clients == k:
                attrib.append(AttribDelta(bucket, "wwan0", 100_000, 10_000, 1, None, None,
                                          ClientIdentity(f"192.168.8.{k + 2}", f"aa:bb:cc:dd:ee:{k:02x}", f"host{k}")))
    writer.commit(traffic=traffic, attrib=attrib)
    return writer


def config(cards: int, limits: int) -> object:
    return parse_config({
        "timezone": "Asia/Shanghai",
        "cards": [{"name": f"card{c}", "interfaces": [f"wwan{c}"],
                   "buckets": [{"name": "通用", "quota": "20 GB"}, {"name": "定向", "quota": "30 GB",
                                                                   "services": ["tencent"]}],
                   "throttle": {"after": "40 GB", "rate": "1 Mbit/s"},
                   "overage": {"price": 0.29, "per": "1 MB", "currency": "CNY"}} for c in range(cards)],
        "clients": {"limits": [{"mac": f"aa:bb:cc:dd:{i // 256:02x}:{i % 256:02x}", "daily": "1 GB",
                                "cycle": "10 GB", "card": "card0"} for i in range(limits)]},
        "mqtt": {"url": "mqtt://127.0.0.1", "node": "bench", "top_clients": 5},
    })


def timed(fn: Callable[[], object], runs: int = 15) -> tuple[float, float]:
    fn()  # warm
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out), max(out)


def main() -> None:
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = (time.perf_counter() - t) * 1000
    rows: list[tuple[str, float, float]] = [("bare interpreter start (peer)", bare, bare)]
    with tempfile.TemporaryDirectory() as tmp:
        for cards in (1, 5):
            writer = store(Path(tmp) / f"m{cards}.db", cards, 20)
            cfg = config(cards, 0)
            reader = Reader(writer.conn, cfg.tz)  # type: ignore[attr-defined]

            def mqtt_round(cfg: object = cfg, reader: Reader = reader) -> int:
                snap = take_snapshot(reader, cfg, NOW, {}, 5)  # type: ignore[arg-type]
                msgs = [m for e in ha.entities(snap) for m in (ha.discovery("bench", "homeassistant", e),
                                                              *ha.states("bench", e))]
                return len(msgs)

            n = mqtt_round()
            rows.append((f"MQTT round, {cards} card(s), {n} messages", *timed(mqtt_round)))
        writer = store(Path(tmp) / "caps.db", 1, 20)
        for limits in (5, 50):
            cfg = config(1, limits)
            caps = ClientCaps(writer.conn, writer.transaction,
                              client_limits(cfg.clients, cfg.cards, cfg.channels),  # type: ignore[attr-defined]
                              cfg.cards, cfg.tz, runner=lambda argv, stdin: "")  # type: ignore[attr-defined]
            rows.append((f"client quota step, {limits} limits", *timed(lambda c=caps: c.step(NOW.timestamp()))))
        src = parse_config({"sources": [{"kind": "zte", "name": "s", "address": "http://127.0.0.1"}]}).sources[0]
        total = [0]

        def reading() -> None:
            total[0] += 5 * MB
            apply_reading(writer, src, StickReading("202611", total[0], total[0] // 10, time.time()), 10**10)

        rows.append(("store one MiFi stick reading", *timed(reading, 50)))
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  median ms  worst ms  x bare start")
    for label, med, worst in rows:
        print(f"{label:<{width}}  {med:9.2f}  {worst:8.2f}  {med / bare:11.3f}")


if __name__ == "__main__":
    main()
