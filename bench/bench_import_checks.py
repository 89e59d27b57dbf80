"""Benchmark: what the import's plausibility checks (issue #10 item 8) cost on a large CSV.

Runs the import's streaming check pass (``check_usage_csv``) over the same generated file (a row per
5 minutes on two interfaces, with apps) alone and with the checks (future, card, max_rate per
5-minute bucket), and prints the wall time and the peak of Python allocations (tracemalloc) of
each: the rate check keeps one packed sum per (bucket, interface) the file touches.

Run: ``PYTHONPATH=src python bench/bench_import_checks.py [ROWS]`` (default 200000)
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from datacap.store.csvio import Plausibility, check_usage_csv


def write(path: Path, rows: int) -> None:
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with path.open("w", encoding="utf-8") as f:
        f.write("time,interface,rx_bytes,tx_bytes,card,app,client,service\n")
        for i in range(rows):
            at = (start + dt.timedelta(minutes=5 * (i // 2))).isoformat()
            iface = "wwan0" if i % 2 else "eth0"
            f.write(f"{at},{iface},{1000 + i % 7919},{200 + i % 101},unicom,firefox,,youtube\n")


def measure(path: Path, plausible: Plausibility | None) -> tuple[float, float, int]:
    tracemalloc.start()
    t0 = time.perf_counter()
    parsed = check_usage_csv(path, None, "-", plausible)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak / 2**20, parsed.rows


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    checks = Plausibility(now=dt.datetime.now(dt.UTC), max_rate_bps=100 * 10**9, cards=frozenset({"unicom"}),
                          stored=lambda lo, hi: {})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "usage.csv"
        write(path, rows)
        print(f"{rows} rows, {path.stat().st_size / 2**20:.1f} MiB; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        plain = measure(path, None)
        checked = measure(path, checks)
    print(f"{'':<22}{'wall s':>10}{'peak MiB':>12}")
    print(f"{'syntax only':<22}{plain[0]:>10.2f}{plain[1]:>12.1f}")
    print(f"{'with plausibility':<22}{checked[0]:>10.2f}{checked[1]:>12.1f}")
    print(f"time ratio {checked[0] / plain[0]:.2f}; the checks hold {1024 * 1024 * (checked[1] - plain[1]) / rows:.0f}"
          " bytes per row (one sum per 5-minute bucket and interface)")


if __name__ == "__main__":
    main()
