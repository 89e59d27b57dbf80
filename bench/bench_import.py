"""Benchmark ``datacap import`` of a large CSV: peak memory (RSS) and time of a plain import, and of a
duplicate import (refused). Each run is a fresh ``python -m datacap`` process, measured with wait4.

    python bench/bench_import.py [--rows 1000000] [--before /work/main/src]

``--before SRC`` runs the same steps with another checkout's sources (the code before this change)
in the same run, so the figures compare on the same machine at the same moment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def write_csv(path: Path, rows: int) -> None:
    """``rows`` rows, 5 minutes apart, over two interfaces (a year and more of 5-minute data)."""
    start = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
    with path.open("w") as f:
        f.write("time,interface,rx_bytes,tx_bytes\n")
        for i in range(rows):
            at = dt.datetime.fromtimestamp(start + 300 * (i // 2), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            f.write(f"{at},wwan{i % 2},{1000 + i % 977},{100 + i % 89}\n")


def measure(src: Path, db: Path, config: Path, csv: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit status) of one `datacap import`."""
    env = dict(os.environ, PYTHONPATH=str(src))
    argv = [sys.executable, "-m", "datacap", "import", str(csv), "--db", str(db), "--config", str(config)]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    return elapsed, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--before", type=Path, help="another checkout's src/ to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv = root / "big.csv"
        write_csv(csv, args.rows)
        config = root / "config.toml"
        config.write_text('timezone = "Asia/Shanghai"\n')
        print(f"datacap import of {args.rows:,} rows ({csv.stat().st_size / 2**20:.0f} MiB CSV)")
        print(f"{'code':<10} {'step':<28} {'seconds':>8} {'peak RSS MiB':>13} {'exit':>5}")
        sources = [("this", SRC)] + ([("before", args.before)] if args.before else [])
        for label, src in sources:
            db = root / f"{label}.db"
            for step in ("import", "duplicate (refused)"):
                seconds, rss, code = measure(src, db, config, csv)
                print(f"{label:<10} {step:<28} {seconds:>8.2f} {rss:>13.0f} {code:>5}")


if __name__ == "__main__":
    main()
