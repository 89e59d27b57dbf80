"""Benchmark: compute_status for a card with a year of hourly usage split by 50 apps.

The target (issue #4) is under 100 ms per call, so the CLI and web UI can recompute from the store
on every request. Prints the median and worst of several runs, for the records the caller fetches
(``records_needed``) and for the whole year passed unfiltered.

Run: ``PYTHONPATH=src python bench/bench_plans.py``
"""

from __future__ import annotations

import datetime as dt
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


def timed(records: list[UsageRecord], at: dt.datetime, runs: int = 7) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        compute_status(CARD, records, [], at, TZ)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    at = dt.datetime(2026, 11, 25, 12, tzinfo=TZ)
    records = year_of_records(at)
    since, until = records_needed(CARD, at, TZ)
    lo, hi = int(since.timestamp()), int(until.timestamp())
    needed = [r for r in records if r.start < hi and r.start + r.seconds > lo]
    print(f"records: {len(records)} in the year, {len(needed)} in records_needed "
          f"[{since.isoformat()}, {until.isoformat()})")
    for label, recs in (("records_needed range", needed), ("whole year unfiltered", records)):
        times = timed(recs, at)
        print(f"compute_status, {label}: median {statistics.median(times):.1f} ms, worst {max(times):.1f} ms")


if __name__ == "__main__":
    main()
