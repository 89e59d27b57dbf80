"""Benchmark of the glance commands: wall time against the interpreter's own start and `vnstat -d`.

Builds a store with one year of 5-minute traffic for 4 interfaces (and hourly attribution for 40
apps, 10 LAN clients, 20 services), trimmed by the default retention as the daemon would, plus a
config with one card; builds vnStat's own database with the same year in a temp dir. Then runs every
glance command interleaved with `python -c pass` (the interpreter datacap runs on) and `vnstat -d`,
round after round, and prints the median of each and its ratio to the interpreter's start.

    .venv/bin/python bench/bench_cli.py [--rounds 15] [--days 365]

Target (issue #11): every glance command at most 5x the interpreter's start. Run from a fresh clone
after `scripts/test.sh` (or `pip install -e .`): it times the installed `datacap` next to the
interpreter. The machine may be busy: medians of interleaved rounds keep the ratios comparable.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from datacap.config import RetentionConfig
from datacap.model import AppIdentity, AttribDelta, ClientIdentity
from datacap.store import TrafficDelta, Writer, open_write
from datacap.timeutil import load_zone

IFACES = ("wwan0", "wwan1", "usb0", "eth1")
ZONE = "Asia/Shanghai"
CONFIG = f"""timezone = "{ZONE}"

[[cards]]
name = "unicom"
interfaces = ["wwan0"]
[cards.cycle]
kind = "monthly"
day = 1
[[cards.buckets]]
name = "通用"
quota = "40 GB"
[[cards.buckets]]
name = "闲时"
quota = "10 GB"
hours = "23:00-07:00"
"""
COMMANDS: list[tuple[str, list[str]]] = [
    ("datacap", []),
    ("datacap --json", ["--json"]),
    ("datacap status", ["status"]),
    ("datacap status --json", ["status", "--json"]),
    ("datacap usage --by day", ["usage", "--by", "day"]),
    ("datacap usage --by hour --json", ["usage", "--by", "hour", "--json"]),
    ("datacap usage --by month", ["usage", "--by", "month"]),
    ("datacap apps", ["apps"]),
    ("datacap clients --json", ["clients", "--json"]),
    ("datacap services", ["services"]),
    ("datacap interfaces", ["interfaces"]),
    ("datacap plan check", ["plan", "check"]),
    ("datacap --version", ["--version"]),
    ("datacap --help", ["--help"]),
    ("datacap usage --help", ["usage", "--help"]),
]


def build_store(path: Path, days: int, seed: int = 1) -> None:
    """Write ``days`` of 5-minute traffic month by month (bounded memory), then apply retention."""
    rng = random.Random(seed)
    tz = load_zone(ZONE)
    conn = open_write(path)
    writer = Writer(conn, tz, 0)
    end = int(time.time()) // 300 * 300
    start = end - days * 86400
    apps = [AppIdentity(f"app{i:02d}", f"/usr/bin/app{i:02d}") for i in range(40)]
    clients = [ClientIdentity(f"192.168.8.{10 + i}", f"02:00:00:00:00:{i:02x}", f"phone{i}") for i in range(10)]
    services = [f"svc{i:02d}" for i in range(20)]
    chunk = 30 * 86400
    for lo in range(start, end, chunk):
        hi = min(lo + chunk, end)
        traffic = [TrafficDelta(b, iface, rng.randint(0, 3_000_000), rng.randint(0, 300_000))
                   for b in range(lo, hi, 300) for iface in IFACES]
        attrib = [AttribDelta(h // 3600 * 3600, "wwan0", rng.randint(0, 80_000), rng.randint(0, 8_000), flows=1,
                              app=ident, client=clients[i % 10], service=services[i % 20])
                  for h in range(lo, hi, 3600) for i, ident in enumerate(apps)]
        writer.commit(traffic, attrib, seen_at=hi)
    writer.apply_retention(end, dict(RetentionConfig().seconds()))
    conn.execute("PRAGMA optimize")
    conn.close()


def build_vnstat(tmp: Path, days: int, seed: int = 1) -> Path | None:
    """vnStat's own database with the same amount of history; None when vnstat is not installed."""
    if not (shutil.which("vnstat") and shutil.which("vnstatd")):
        return None
    dbdir = tmp / "vnstat"
    dbdir.mkdir()
    cfg = tmp / "vnstat.conf"
    cfg.write_text(f'DatabaseDir "{dbdir}"\nUseLogging 0\n')
    subprocess.run(["vnstatd", "--config", str(cfg), "--initdb"], check=True, capture_output=True)
    db = sqlite3.connect(dbdir / "vnstat.db")
    rng = random.Random(seed)
    end = int(time.time()) // 300 * 300
    start = end - days * 86400
    for name in IFACES:
        db.execute("INSERT OR IGNORE INTO interface (name, active, created, updated, rxcounter, txcounter, rxtotal, "
                   "txtotal) VALUES (?, 1, datetime(?, 'unixepoch', 'localtime'), datetime('now', 'localtime'), "
                   "0, 0, 0, 0)", (name, start))
        iface = db.execute("SELECT id FROM interface WHERE name = ?", (name,)).fetchone()[0]
        rows = [(iface, t, rng.randint(0, 3_000_000), rng.randint(0, 300_000)) for t in range(start, end, 300)]
        kept = (("fiveminute", "'%Y-%m-%d %H:%M'", 2 * 86400), ("hour", "'%Y-%m-%d %H:00'", 62 * 86400),
                ("day", "'%Y-%m-%d'", None), ("month", "'%Y-%m-01'", None), ("year", "'%Y-01-01'", None))
        for table, fmt, keep in kept:
            db.executemany(f"INSERT INTO {table} (interface, date, rx, tx) "
                           f"VALUES (?, strftime({fmt}, ?, 'unixepoch', 'localtime'), ?, ?) "
                           "ON CONFLICT (interface, date) DO UPDATE SET rx = rx + excluded.rx, tx = tx + excluded.tx",
                           [r for r in rows if keep is None or r[1] >= end - keep])
        db.execute("UPDATE interface SET rxtotal = (SELECT sum(rx) FROM year WHERE interface = ?), "
                   "txtotal = (SELECT sum(tx) FROM year WHERE interface = ?) WHERE id = ?", (iface, iface, iface))
    db.commit()
    db.close()
    return cfg


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


def datacap_command() -> str:
    found = shutil.which("datacap", path=str(Path(sys.executable).parent)) or shutil.which("datacap")
    if found is None:
        raise SystemExit("datacap is not installed next to this interpreter: pip install -e . first")
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="timed rounds (each runs every command once)")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--datacap", default=None, help="another datacap executable to time (an older build)")
    args = ap.parse_args()
    exe = args.datacap or datacap_command()
    with tempfile.TemporaryDirectory(prefix="bench_cli-") as tmpdir:
        tmp = Path(tmpdir)
        db, config = tmp / "datacap.db", tmp / "config.toml"
        config.write_text(CONFIG, encoding="utf-8")
        print(f"building a store with {args.days} days of 5-minute data for {len(IFACES)} interfaces ...",
              file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        build_store(db, args.days)
        vn_cfg = build_vnstat(tmp, args.days)
        print(f"built in {time.perf_counter() - t0:.0f} s ({db.stat().st_size / 2**20:.0f} MiB)", file=sys.stderr)
        env = {**os.environ, "DATACAP_DB": str(db), "DATACAP_CONFIG": str(config), "XDG_CACHE_HOME": str(tmp / "cache"),
               "TZ": ZONE, "COLUMNS": "100"}
        env.pop("DATACAP_NO_FAST", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: modules load from their .pyc
        runs: dict[str, list[float]] = {"python -c pass": [], **{label: [] for label, _ in COMMANDS}}
        baseline = [sys.executable, "-c", "pass"]
        vnstat = ["vnstat", "--config", str(vn_cfg), "-d", "-i", IFACES[0]] if vn_cfg else None
        if vnstat:
            runs["vnstat -d"] = []
        first = {label: timed([exe, *argv], env) for label, argv in COMMANDS}  # cold: fills the caches
        load_before = os.getloadavg()[0]
        for _ in range(args.rounds):
            for label, argv in COMMANDS:
                runs["python -c pass"].append(timed(baseline, env))
                runs[label].append(timed([exe, *argv], env))
            if vnstat:
                runs["vnstat -d"].append(timed(vnstat, env))
        base = statistics.median(runs["python -c pass"])
        print(f"\n{platform.node()}: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
              f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after; {args.rounds} interleaved "
              f"rounds, medians; a year of 5-minute data for {len(IFACES)} interfaces")
        print(f"| {'command':<34} | {'median ms':>9} | {'x interpreter':>13} | {'first run ms':>12} |")
        print(f"|{'-' * 36}|{'-' * 11}|{'-' * 15}|{'-' * 14}|")
        worst = 0.0
        for label, times in runs.items():
            med = statistics.median(times)
            ratio = med / base
            if label.startswith("datacap"):
                worst = max(worst, ratio)
            cold = f"{first[label] * 1000:12.0f}" if label in first else " " * 12
            print(f"| {label:<34} | {med * 1000:9.1f} | {ratio:13.1f} | {cold} |")
        print(f"\nworst glance command: {worst:.1f}x the interpreter's start (target: at most 5x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
