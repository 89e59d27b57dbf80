"""Benchmark: compute_status for a card with a year of hourly usage split by 50 apps.

The target (issue #4) is under 100 ms per call, so the CLI and web UI can recompute from the store
on every request. Prints the median and worst CPU and wall-clock time of several runs, for the
records the caller fetches (``records_needed``) and for the whole year passed unfiltered, with the
load average (other work on the machine inflates the wall-clock figures).

Run: ``PYTHONPATH=src python bench/bench_plans.py``
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import time
import tomllib
from zoneinfo import ZoneInfo

from datacap.model import UsageRecord
from datacap.plans.config import CardConfig
from datacap.plans.engine import compute_status, records_needed

TZ = ZoneInfo("Asia/Shanghai")
APPS = [f"app{n:02d}" for n in range(48)] + ["wechat", "qq"]
CARD = CardConfig.model_validate(tomllib.loads("""
name = "unicom"
interfaces = ["wwan0"]
l2_overhead = 0
[cycle]
day = 15
[[buckets]]
name = "tencent"
quota = "30 GB"
apps = ["wechat", "qq"]
[[buckets]]
name = "night"
quota = "10 GB"
hours = "23:00-07:00"
[[buckets]]
name = "general"
quota = "20 GB"
rollover = true
[[packs]]
name = "boost"
quota = "5 GB"
start = 2026-11-10T10:00:00+08:00
days = 7
[throttle]
after = "60 GB"
rate = "1 Mbit/s"
[overage]
price = 0.29
per = "1 MB"
block = "1 GB"
block_cap = 5.0
daily_cap = 3.0
currency = "CNY"
"""))


def year_of_records(end: dt.datetime, seed: int = 1) -> list[UsageRecord]:
    rng = random.Random(seed)
    start = int(end.timestamp()) - 365 * 86400
    start -= start % 3600
    out = []
    for hour in range(365 * 24):
        t = start + hour * 3600
        for app in APPS:
            rx = rng.randrange(0, 400_000)
            out.append(UsageRecord(t, 3600, "wwan0", rx, rx // 10, app=app))
    return out


def timed(records: list[UsageRecord], at: dt.datetime, runs: int = 9) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds per call (CPU time is what counts on a shared, busy machine)."""
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        compute_status(CARD, records, [], at, TZ)
        wall.append((time.perf_counter() - w0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return wall, cpu


def main() -> None:
    at = dt.datetime(2026, 11, 25, 12, tzinfo=TZ)
    records = year_of_records(at)
    since, until = records_needed(CARD, at, TZ)
    lo, hi = int(since.timestamp()), int(until.timestamp())
    needed = [r for r in records if r.start < hi and r.start + r.seconds > lo]
    print(f"records: {len(records)} in the year, {len(needed)} in records_needed "
          f"[{since.isoformat()}, {until.isoformat()})")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    for label, recs in (("records_needed range", needed), ("whole year unfiltered", records)):
        wall, cpu = timed(recs, at)
        print(f"compute_status, {label}: CPU median {statistics.median(cpu):.1f} ms (worst {max(cpu):.1f}); "
              f"wall median {statistics.median(wall):.1f} ms (worst {max(wall):.1f}); target < 100 ms")


if __name__ == "__main__":
    main()
