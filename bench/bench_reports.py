"""Benchmark ``datacap report`` on the issue's load: one year of 5-minute data for 3 cards and hourly
attribution for 200 apps. Prints the store build time, then per step the median of a few runs.

    PYTHONPATH=src python bench/bench_reports.py [--days 365] [--apps 200] [--runs 3] [--db PATH]

The store is written with the real Writer (the daemon's path); reports are built and rendered
in-process exactly as the CLI does.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from datacap.config import Config
from datacap.model import AppIdentity, AttribDelta
from datacap.reports import Format, build_report, default_period, render_report
from datacap.store import Reader, TrafficDelta, Writer, open_read, open_write

TZ_NAME = "Asia/Shanghai"
CARDS = (("wwan0", "cmcc"), ("wwan1", "unicom"), ("wwan2", "telecom"))
APP_ACTIVE = 0.1  # share of hours in which each app has traffic


def build_store(path: Path, days: int, apps: int, end: dt.datetime) -> tuple[int, int]:
    tz = ZoneInfo(TZ_NAME)
    writer = Writer(open_write(path), tz)
    rnd = random.Random(42)
    names = [AppIdentity(f"app{i:03d}") for i in range(apps)]
    start = int(end.timestamp()) - days * 86400
    start -= start % 3600
    traffic_rows = attrib_rows = 0
    for day in range(days):
        lo = start + day * 86400
        traffic = [TrafficDelta(b, iface, rnd.randint(0, 4 << 20), rnd.randint(0, 1 << 20), card=card)
                   for b in range(lo, lo + 86400, 300) for iface, card in CARDS]
        attrib = [AttribDelta(h, "wwan0", rnd.randint(1, 8 << 20), rnd.randint(0, 1 << 20), flows=1, card="cmcc",
                              app=app, service=f"svc{i % 40}")
                  for h in range(lo, lo + 86400, 3600) for i, app in enumerate(names) if rnd.random() < APP_ACTIVE]
        writer.commit(traffic, attrib)
        traffic_rows += len(traffic)
        attrib_rows += len(attrib)
    writer.conn.close()
    return traffic_rows, attrib_rows


def timed(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, help="reuse (or create) this store instead of a temporary one")
    args = parser.parse_args()
    cfg = Config(timezone=TZ_NAME)
    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="datacap-bench-reports-") as tmp:
        db = args.db or Path(tmp) / "bench.db"
        if not db.exists():
            t0 = time.perf_counter()
            rows = build_store(db, args.days, args.apps, now)
            print(f"store: {rows[0]} traffic + {rows[1]} attribution deltas written in "
                  f"{time.perf_counter() - t0:.1f} s ({db.stat().st_size / 2**20:.0f} MiB)")
        reader = Reader(open_read(db), cfg.tz)
        period = default_period("month", now, cfg.tz)
        report = build_report(reader, cfg, period, now=now)
        print(f"period {period.label}: total {report.total.total_bytes} bytes, "
              f"{len(report.rankings['app']['rows'])} apps")
        week = default_period("week", now, cfg.tz)
        for name, p in (("month", period), ("week", week)):
            ms = timed(lambda p=p: build_report(reader, cfg, p, now=now), args.runs) * 1000  # type: ignore[misc]
            print(f"build_report ({name}): {ms:.0f} ms")
        formats: tuple[Format, ...] = ("md", "html", "pdf", "png")
        for fmt in formats:
            size = len(render_report(report, fmt))
            ms = timed(lambda f=fmt: render_report(report, f), args.runs) * 1000  # type: ignore[misc]
            print(f"render {fmt}: {ms:.0f} ms ({size / 1024:.0f} KiB)")
        reader.conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
