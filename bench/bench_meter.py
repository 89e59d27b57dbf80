"""Benchmark: datacap's daemon against vnstatd on the same veth, and the cold day-view query.

Prints a table; not a test. Needs root (network namespaces), iperf3 and vnstat (apt).

    sudo .venv/bin/python bench/bench_meter.py [--seconds 20] [--rate 300M] [--idle 20]

1. Both daemons watch the same veth in a namespace while iperf3 moves traffic at a fixed rate for a
   fixed time: CPU seconds and peak RSS of each, bytes each counted against the kernel's delta.
2. Both idle for a while: CPU share of one core.
3. A store holding one year of 5-minute data for 4 interfaces: cold wall time of
   `datacap usage --by day --json` (page cache dropped first, interpreter start included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.nsutil import Netns, destroy, make_pair, wait_for  # noqa: E402

from datacap.store import TrafficDelta, Writer, open_write  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_datacap(ns: Netns, tmp: Path, iface: str, full: bool) -> tuple[subprocess.Popen[str], Path]:
    """``full``: with the dashboard and attribution (as root); else interface metering only, like vnStat."""
    name = "full" if full else "meter"
    db, cfg = tmp / f"datacap-{name}.db", tmp / f"datacap-{name}.toml"
    extra = f'[attribution]\nuplinks = ["{iface}"]\n' if full else "[attribution]\nenabled = false\n"
    cfg.write_text(f'[meter]\ninclude = ["{iface}"]\n{extra}')
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = ns.popen(sys.executable, "-m", "datacap", "run", "--db", str(db), "--config", str(cfg),
                    *([] if full else ["--no-web"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    def ready() -> bool:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                return bool(conn.execute("SELECT count(*) FROM counters").fetchone()[0])
        except sqlite3.Error:
            return False
    wait_for(ready, 30, "datacap's first flush", interval=0.2)
    return proc, db


def start_vnstat(ns: Netns, tmp: Path, iface: str) -> tuple[subprocess.Popen[str], Path, Path]:
    dbdir, cfg, log = tmp / "vnstat", tmp / "vnstat.conf", tmp / "vnstat.log"
    dbdir.mkdir()
    cfg.write_text(f'DatabaseDir "{dbdir}"\nUseLogging 0\nBandwidthDetection 0\nMaxBandwidth 0\n')
    ns.run("vnstatd", "--config", str(cfg), "--initdb")
    ns.run("vnstat", "--config", str(cfg), "--add", "-i", iface)
    handle = log.open("w")
    proc = ns.popen("vnstatd", "-n", "-t", "--config", str(cfg), stdout=handle, stderr=subprocess.STDOUT)
    wait_for(lambda: "Monitoring" in log.read_text(), 30, "vnstatd to start", interval=0.2)
    return proc, cfg, log


def vnstat_total(ns: Netns, cfg: Path, iface: str) -> int:
    doc = json.loads(ns.run("vnstat", "--config", str(cfg), "--json", "-i", iface).stdout)
    total = doc["interfaces"][0]["traffic"]["total"]
    return int(total["rx"]) + int(total["tx"])


def datacap_total(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT coalesce(sum(rx_bytes + tx_bytes), 0) FROM usage WHERE res = 'year'")
                   .fetchone()[0])


def daemons(seconds: float, rate: str, idle: float, settle: float) -> list[tuple[str, ...]]:
    pair = make_pair(subnet=99)
    tmp = Path(tempfile.mkdtemp(prefix="dc-bench-"))
    rows: list[tuple[str, ...]] = []
    server = pair.b.popen("iperf3", "-s", "-p", "5299", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        k0 = pair.a.counters(pair.a_if)
        dc, db = start_datacap(pair.a, tmp, pair.a_if, full=False)
        full, full_db = start_datacap(pair.a, tmp, pair.a_if, full=True)
        vn, vcfg, _ = start_vnstat(pair.a, tmp, pair.a_if)
        procs = (dc, full, vn)
        wait_for(lambda: pair.b.run("ss", "-ltn").stdout.count(":5299 ") > 0, 10, "iperf3 server")
        idle_cpu = {p.pid: cpu_seconds(p.pid) for p in procs}
        t_idle = time.monotonic()
        time.sleep(idle)  # benchmark: a fixed idle window is what is being measured
        idle_span = time.monotonic() - t_idle
        idle_share = {pid: (cpu_seconds(pid) - c0) / idle_span for pid, c0 in idle_cpu.items()}
        load_cpu = {p.pid: cpu_seconds(p.pid) for p in procs}
        pair.a.run("iperf3", "-c", pair.b_ip, "-p", "5299", "-t", str(seconds), "-b", rate)
        load = {pid: cpu_seconds(pid) - c0 for pid, c0 in load_cpu.items()}
        rss = {p.pid: peak_rss_mb(p.pid) for p in procs}
        # vnstatd reads counters every UpdateInterval (20 s) and takes no last reading when stopped:
        # give it that long after the load so the byte comparison measures counting, not stopping.
        time.sleep(settle)
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        k1 = pair.a.counters(pair.a_if)
        kernel = (k1[0] - k0[0]) + (k1[1] - k0[1])
        counted = {dc.pid: datacap_total(db), full.pid: datacap_total(full_db),
                   vn.pid: vnstat_total(pair.a, vcfg, pair.a_if)}
        for name, proc in (("datacap (metering)", dc), ("datacap (+web, +apps)", full), ("vnstatd", vn)):
            rows.append((name, f"{load[proc.pid]:.2f}", f"{100 * idle_share[proc.pid]:.3f} %", f"{rss[proc.pid]:.1f}",
                         f"{counted[proc.pid]:,}", f"{counted[proc.pid] - kernel:+,}"))
        rows.append(("kernel", "", "", "", f"{kernel:,}", "0"))
    finally:
        server.kill()
        destroy(pair)
    return rows


def query(interfaces: int = 4) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="dc-bench-q-"))
    db = tmp / "year.db"
    tz = ZoneInfo("Asia/Shanghai")
    writer = Writer(open_write(db), tz)
    end = int(dt.datetime(2026, 11, 29, tzinfo=tz).timestamp())
    start = end - 365 * 86400
    t0 = time.perf_counter()
    for day in range(start, end, 86400):
        writer.commit([TrafficDelta(b, f"wwan{i}", 100_000 + b % 977, 20_000 + b % 331, 90, 30)
                       for b in range(day, day + 86400, 300) for i in range(interfaces)])
    fill = time.perf_counter() - t0
    writer.conn.close()
    cfg = tmp / "c.toml"
    cfg.write_text('timezone = "Asia/Shanghai"\n')
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), DATACAP_DB=str(db), DATACAP_CONFIG=str(cfg))
    walls = []
    for _ in range(5):
        if os.geteuid() == 0:
            subprocess.run(["sync"], check=True)
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "datacap", "usage", "--by", "day", "--since", "2025-11-29",
                        "--until", "2026-11-29", "--json"], env=env, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t)
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "datacap", "usage", "--by", "day", "--since", "2025-11-29",
                        "--until", "2026-11-29", "--json"], env=env, check=True, stdout=subprocess.DEVNULL)
        warm.append(time.perf_counter() - t)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    interpreter = time.perf_counter() - t
    return {"rows": interfaces * 365 * 288, "fill_s": fill, "size_mb": db.stat().st_size / 2**20,
            "cold_median_ms": 1000 * sorted(walls)[len(walls) // 2], "cold_best_ms": 1000 * min(walls),
            "warm_median_ms": 1000 * sorted(warm)[len(warm) // 2],
            "interpreter_ms": 1000 * interpreter}


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = lambda r: "  ".join(str(v).rjust(w) for v, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(tuple("-" * w for w in widths)), *map(line, rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="load duration")
    parser.add_argument("--rate", default="300M", help="iperf3 -b rate")
    parser.add_argument("--idle", type=float, default=20.0, help="idle window for the idle CPU figure")
    parser.add_argument("--settle", type=float, default=25.0,
                        help="wait after the load before stopping (0: show what vnstatd loses on stop)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_meter.py needs root (network namespaces)")
    rows = daemons(args.seconds, args.rate, args.idle, args.settle)
    print(f"\nDaemons on one veth, iperf3 {args.rate}bit/s for {args.seconds:.0f} s (idle window {args.idle:.0f} s, "
          f"stopped {args.settle:.0f} s after the load)")
    print(table(("daemon", "CPU s under load", "idle CPU", "peak RSS MB", "bytes counted", "vs kernel"), rows))
    q = query()
    print(f"\nStore with one year of 5-minute data for 4 interfaces ({q['rows']:,} 5-minute rows, "
          f"{q['size_mb']:.0f} MB, written in {q['fill_s']:.1f} s)")
    print(table(("query", "cold wall (median of 5)", "best", "warm (median of 5)", "of which interpreter start"),
                [("datacap usage --by day --json", f"{q['cold_median_ms']:.0f} ms", f"{q['cold_best_ms']:.0f} ms",
                  f"{q['warm_median_ms']:.0f} ms", f"{q['interpreter_ms']:.0f} ms")]))


if __name__ == "__main__":
    main()
