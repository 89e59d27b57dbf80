"""The device side of the fleet hub: what pushing costs a small machine.

Run from the repository root: ``python bench/bench_hub_device.py [--flushes 2000]``. It measures, on
a real store in a temp dir and a real HTTP receiver on loopback (tests/hub/receiver.py):

1. one metering flush (4 interfaces, 40 attributed flows) with the hub outbox off and on: the cost
   the outbox adds to the metering thread's transaction;
2. forming a full batch (5,000 usage + 5,000 attribution rows: read, JSON, gzip, stored with its
   seq): time, compressed size, bytes per row; against the floor of json+gzip of the same rows alone;
3. a normal push round (a minute of one device's data) formed, sent and acknowledged;
4. catching up after a week offline (4 interfaces, 30 s flushes: 80,640 outbox rows, compacted and
   sent in full batches): wall time and rows per second.

Timing is printed, never asserted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "src"))

from tests.hub.devicekit import snapshot  # noqa: E402
from tests.hub.receiver import Receiver  # noqa: E402

from datacap.hub import protocol  # noqa: E402
from datacap.hub.batches import BatchStore  # noqa: E402
from datacap.hub.sender import HubClient, Sender  # noqa: E402
from datacap.model import AppIdentity, AttribDelta, ClientIdentity  # noqa: E402
from datacap.store import TrafficDelta, Writer, open_write  # noqa: E402

TOKEN = "bench-device-token"


def flush_batch(rng: random.Random, bucket: int) -> tuple[list[TrafficDelta], list[AttribDelta]]:
    traffic = [TrafficDelta(bucket, f"wwan{i}", rng.randrange(10**6), rng.randrange(10**5), 700, 90)
               for i in range(4)]
    attrib = [AttribDelta(bucket, "wwan0", rng.randrange(10**5), rng.randrange(10**4), 1,
                          app=AppIdentity(f"app{j % 12}", f"/usr/bin/app{j % 12}"),
                          client=ClientIdentity(f"192.168.8.{j % 20}", None, f"phone{j % 20}"),
                          service=f"svc{j % 30}") for j in range(40)]
    return traffic, attrib


def time_flushes(tmp: Path, outbox: bool, flushes: int) -> list[float]:
    db = tmp / f"flush-{outbox}.db"
    writer = Writer(open_write(db), ZoneInfo("Asia/Shanghai"))
    if outbox:
        writer.enable_outbox(True)
    rng = random.Random(1)
    start = int(time.time()) - flushes * 30
    times = []
    for i in range(flushes):
        bucket = (start + 30 * i) // 300 * 300
        traffic, attrib = flush_batch(rng, bucket)
        t0 = time.perf_counter()
        writer.commit(traffic, attrib, seen_at=bucket)
        times.append(time.perf_counter() - t0)
    writer.conn.close()
    return times


def full_batch(tmp: Path) -> tuple[float, int, float]:
    db = tmp / "full.db"
    writer = Writer(open_write(db), ZoneInfo("UTC"))
    writer.enable_outbox(True)
    rng = random.Random(2)
    base = int(time.time()) // 300 * 300 - 5000 * 300
    writer.commit([TrafficDelta(base + 300 * i, "wwan0", rng.randrange(10**7), rng.randrange(10**6), 9000, 800)
                   for i in range(5000)],
                  [AttribDelta(base + 3600 * (i // 3), "wwan0", rng.randrange(10**6), rng.randrange(10**5), 1,
                               app=AppIdentity(f"app{i}")) for i in range(5000)])
    writer.conn.close()
    store = BatchStore(db, "bench")
    t0 = time.perf_counter()
    batch = store.form(snapshot)
    formed = time.perf_counter() - t0
    doc = json.loads(gzip.decompress(batch.body))
    t0 = time.perf_counter()
    gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=6)
    floor = time.perf_counter() - t0
    store.close()
    return formed, len(batch.body), floor


def push_rounds(tmp: Path, url: str, rounds: int) -> list[float]:
    db = tmp / "rounds.db"
    token = tmp / "token"
    token.write_text(TOKEN)
    writer = Writer(open_write(db), ZoneInfo("UTC"))
    writer.enable_outbox(True)
    sender = Sender(BatchStore(db, "rounds"), HubClient(url, token), snapshot, every=60)
    rng = random.Random(3)
    times = []
    for i in range(rounds):
        bucket = int(time.time()) // 300 * 300
        for _ in range(2):  # two 30 s flushes a minute
            traffic, attrib = flush_batch(rng, bucket)
            writer.commit(traffic, attrib)
        t0 = time.perf_counter()
        sender.wake()
        sender.step()
        times.append(time.perf_counter() - t0)
        assert sender.store.next_unacked() is None, f"round {i} not acknowledged"
    sender.stop(final_push=0)
    writer.conn.close()
    return times


def catch_up(tmp: Path, url: str) -> tuple[float, int, int]:
    db = tmp / "week.db"
    token = tmp / "token"
    writer = Writer(open_write(db), ZoneInfo("UTC"))
    writer.enable_outbox(True)
    rng = random.Random(4)
    start = int(time.time()) // 300 * 300 - 7 * 86400
    for _ in range(10):  # a week of 30 s flushes on 4 interfaces: every 5-minute bucket written 10 times
        writer.commit([TrafficDelta(start + 300 * i, f"wwan{k}", rng.randrange(10**6), rng.randrange(10**5))
                       for i in range(2016) for k in range(4)])
    rows = writer.conn.execute("SELECT count(*) FROM hub_outbox_usage").fetchone()[0]
    writer.conn.close()
    sender = Sender(BatchStore(db, "week"), HubClient(url, token), snapshot, every=60)
    t0 = time.perf_counter()
    batches = 0
    while any(sender.store.pending()) and batches < 100:
        sender.wake()
        sender.step()
        batches += 1
    took = time.perf_counter() - t0
    sender.stop(final_push=0)
    return took, rows, batches


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flushes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    receiver = Receiver(TOKEN).start()
    try:
        with tempfile.TemporaryDirectory(prefix="dc-bench-hub-") as name:
            tmp = Path(name)
            off = time_flushes(tmp, False, args.flushes)
            on = time_flushes(tmp, True, args.flushes)
            formed, size, floor = full_batch(tmp)
            rounds = push_rounds(tmp, receiver.url, args.rounds)
            took, rows, batches = catch_up(tmp, receiver.url)
    finally:
        receiver.stop()
    p95 = statistics.quantiles
    print("device side of the fleet hub (real SQLite store, loopback HTTP receiver)\n")
    print(f"{'measure':<58} {'median':>11} {'p95':>11}")
    print(f"{'metering flush, outbox off (4 ifaces, 40 flows)':<58} {ms(statistics.median(off)):>11} "
          f"{ms(p95(off, n=20)[18]):>11}")
    print(f"{'metering flush, outbox on':<58} {ms(statistics.median(on)):>11} {ms(p95(on, n=20)[18]):>11}")
    print(f"{'  outbox cost per flush (median on / off)':<58} {statistics.median(on) / statistics.median(off):>10.2f}x")
    print(f"{'push round: a minute of data formed, sent, acknowledged':<58} {ms(statistics.median(rounds)):>11} "
          f"{ms(p95(rounds, n=20)[18]):>11}")
    print(f"{'full batch formed (5,000 usage + 5,000 attribution rows)':<58} {ms(formed):>11}")
    print(f"{'  of which json+gzip alone (the floor)':<58} {ms(floor):>11}")
    print(f"{'  compressed size':<58} {size:>9,} B  ({size / 10_000:.1f} B/row, "
          f"limit {protocol.MAX_COMPRESSED_BYTES:,} B)")
    print(f"{'catch-up after a week offline: outbox rows':<58} {rows:>11,}")
    print(f"{'  compacted, sent and acknowledged in':<58} {took:>9.2f} s  ({batches} batches, "
          f"{rows / took:,.0f} outbox rows/s)")


if __name__ == "__main__":
    main()
