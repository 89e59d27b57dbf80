"""Benchmark of the fleet hub: a simulated fleet pushing 5-minute batches to a real `datacap hub serve`.

10,000 devices with one card each push one batch per simulated 5 minutes (one usage row, their card
and health, exactly the wire format of datacap.hub.protocol, gzip-compressed) to `datacap hub serve`
on 127.0.0.1, in simulated-time order: step 1 for every device, then step 2, ... A whole day is
288 steps = 2.88 M batches and usage rows. The run is bounded (``--seconds`` of ingestion per
backend); the rate measured over it gives the time a whole day would take and the ratio to real time.

While it ingests, a probe asks for the fleet table (``GET /api/v1/fleet?limit=200``, what the page
shows) and one card's status (``GET /api/v1/cards/DEV/sim1/status``, computed afresh by the plan
engine) and reports p50/p95. The hub's CPU and RSS are read from /proc (psutil), PostgreSQL's own
processes separately. Both backends run in the same invocation, side by side.

    PYTHONPATH=src:. python bench/bench_hub.py [--devices 10000] [--seconds 60] [--clients 3]

Goal (issue #14): a day of 10,000 devices ingested >= 20x faster than real time; fleet table
p95 <= 300 ms on PostgreSQL. Figures are printed, never asserted. The machine has 2 cores shared
with the load generator (and, during development, with other engineers' test runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.client
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from datacap.hub.store import open_hub_store  # noqa: E402
from datacap.hub.tokens import token_hash  # noqa: E402

STEPS_PER_DAY = 288
PLAN = {"name": "sim1", "interfaces": ["wwan0"], "cycle": {"kind": "monthly", "day": 1},
        "buckets": [{"name": "general", "quota": "30 GB"}], "throttle": {"after": "25 GB", "rate": "1 Mbit/s"}}
CARRIERS = ("China Mobile", "China Unicom", "China Telecom")


def token_of(i: int) -> str:
    return f"dch_bench-device-{i:06d}-0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def body(i: int, seq: int, day0: int, rows: int = 1) -> bytes:
    """Device ``i``'s batch ``seq``: ``rows`` consecutive 5-minute buckets (1: a push every 5 minutes)."""
    start = day0 + (seq - 1) * 300 * rows
    doc = {"v": 1, "device": f"dev{i:05d}", "seq": seq, "created": dt.datetime.fromtimestamp(start + 300, dt.UTC)
           .isoformat(), "host": {"hostname": f"dev{i:05d}", "datacap": "0.1.0", "timezone": "Asia/Shanghai"},
           "health": {"uptime_s": seq * 300, "last_sample": None, "store_bytes": 1 << 20, "write_errors": 0,
                      "pending_batches": 1},
           "cards": [{"name": "sim1", "label": None, "iccid": f"8986{i:016d}", "carrier": CARRIERS[i % 3],
                      "interfaces": ["wwan0"], "plan": PLAN}],
           "usage": [{"start": start + 300 * k, "interface": "wwan0", "card": None,
                      "rx": 1_000_000 + (i * 7919 + seq + k) % 900_000, "tx": 100_000 + seq} for k in range(rows)],
           "attribution": [], "calibrations": [], "texts": [], "alerts": []}
    return gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def client(port: int, devices: range, day0: int, deadline: float, steps: int, threads: int, rows: int,
           out: Any) -> None:
    """One load process: ``threads`` keep-alive connections, each pushing for its share of the devices,
    step after step (as many requests in flight as connections: a fleet pushes concurrently)."""
    totals = [0, 0]
    lock = threading.Lock()

    def pusher(mine: range) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        sent = other = 0
        for seq in range(1, steps + 1):
            for i in mine:
                if time.monotonic() > deadline:
                    break
                conn.request("POST", "/api/v1/ingest", body(i, seq, day0, rows), {
                    "Authorization": f"Bearer {token_of(i)}", "Content-Type": "application/json",
                    "Content-Encoding": "gzip"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    sent += 1
                else:
                    other += 1
        with lock:
            totals[0] += sent
            totals[1] += other

    n = len(devices)
    parts = [devices[k * n // threads:(k + 1) * n // threads] for k in range(threads)]
    workers = [threading.Thread(target=pusher, args=(part,)) for part in parts]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((totals[0], totals[0] * rows, totals[1]))


def probe(port: int, stop: threading.Event, timings: dict[str, list[float]], devices: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    n = 0
    while not stop.is_set():
        for name, path in (("fleet table (200 rows)", "/api/v1/fleet?limit=200"),
                           ("one card's status", f"/api/v1/cards/dev{(n * 37) % devices:05d}/sim1/status")):
            t0 = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                timings.setdefault(name, []).append(time.perf_counter() - t0)
        n += 1
        stop.wait(0.5)


def cpu_of(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def pg_processes(data_dir: str | None) -> list[psutil.Process]:
    """The processes of the server this benchmark started (not any other PostgreSQL on the machine)."""
    if data_dir is None:
        return []
    return [p for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] == "postgres" and any(data_dir in c for c in (p.info["cmdline"] or []))] + \
        [c for p in psutil.process_iter(["name", "cmdline"])
         if p.info["name"] == "postgres" and any(data_dir in c for c in (p.info["cmdline"] or []))
         for c in p.children()]


def run_backend(label: str, database: str, args: argparse.Namespace, workdir: Path,
                pg_dir: str | None = None) -> dict[str, Any]:
    store = open_hub_store(database)
    store.migrate()
    now = int(time.time())
    t0 = time.perf_counter()
    store.add_devices([(f"dev{i:05d}", f"route{i % 50:02d}", token_hash(token_of(i))) for i in range(args.devices)],
                      now)
    store.close()
    register_s = time.perf_counter() - t0
    ports = [free_port() for _ in range(args.hubs)]
    config = workdir / f"hub-{label}.toml"
    config.write_text(f'timezone = "Asia/Shanghai"\n[hub]\ndatabase = "{database}"\n'
                      f'rate = "100/s"\nalert_state = "{workdir / f"alerts-{label}.db"}"\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # The first process computes statuses and alerts; any others only ingest and serve (--no-worker).
    hubs = [subprocess.Popen([sys.executable, "-m", "datacap", "--config", str(config), "hub", "serve", "--listen",
                              f"127.0.0.1:{p}", *(["--no-worker"] if k else [])], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for k, p in enumerate(ports)]
    port = ports[0]
    try:
        for p in ports:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", p), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.05)
        hub_procs = [psutil.Process(h.pid) for h in hubs]
        pgs = pg_processes(pg_dir)
        day0 = (now - 86400) // 86400 * 86400
        out: Any = mp.Queue()
        share = args.devices // args.clients
        cpu0, pg0 = cpu_of(hub_procs), cpu_of(pgs)
        start = time.monotonic()
        stop_at = start + args.seconds
        slices = [range(k * share, (k + 1) * share if k < args.clients - 1 else args.devices)
                  for k in range(args.clients)]
        workers = [mp.Process(target=client, args=(ports[k % len(ports)], mine, day0, stop_at,
                                                   STEPS_PER_DAY // args.rows, args.threads, args.rows, out))
                   for k, mine in enumerate(slices)]
        timings: dict[str, list[float]] = {}
        stop = threading.Event()
        prober = threading.Thread(target=probe, args=(port, stop, timings, args.devices))
        for w in workers:
            w.start()
        prober.start()
        rss_max = 0
        while any(w.is_alive() for w in workers):
            rss_max = max(rss_max, sum(h.memory_info().rss for h in hub_procs))
            time.sleep(0.5)
        wall = time.monotonic() - start
        stop.set()
        prober.join()
        results = [out.get() for _ in workers]
        for w in workers:
            w.join()
        batches = sum(r[0] for r in results)
        rows = sum(r[1] for r in results)
        refused = sum(r[2] for r in results)
        hub_cpu = cpu_of(hub_procs) - cpu0
        pg_cpu = cpu_of(pg_processes(pg_dir)) - pg0 if pg_dir else 0.0
        rate = rows / wall
        day_s = args.devices * STEPS_PER_DAY / rate if rate else float("inf")
        return {"backend": label, "register_s": register_s, "batches": batches, "rows": rows, "refused": refused,
                "wall_s": wall, "batches_per_s": batches / wall, "rows_per_s": rate, "day_s": day_s,
                "x_real_time": 86400 / day_s,
                "hub_cpu_pct": 100 * hub_cpu / wall, "db_cpu_pct": 100 * pg_cpu / wall,
                "hub_rss_mib": rss_max / 2**20,
                "latency": {k: (statistics.median(v) * 1000, _p95(v) * 1000, len(v)) for k, v in timings.items()}}
    finally:
        for h in hubs:
            h.terminate()
        for h in hubs:
            try:
                h.wait(30)
            except subprocess.TimeoutExpired:
                h.kill()


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="ingestion time per backend")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument("--threads", type=int, default=8, help="connections per load-generator process")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--hubs", type=int, default=1, help="hub processes on the same database (the load "
                        "generators are spread over them; all but the first run with --no-worker)")
    parser.add_argument("--rows", type=int, default=1, choices=(1, 2, 3, 4, 6, 12, 24, 48),
                        help="5-minute rows per batch (1: every device pushes every 5 minutes)")
    args = parser.parse_args()
    from tests.pgserver import PgServer, unavailable

    results = []
    with tempfile.TemporaryDirectory(prefix="dc-bench-hub-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        for backend in args.backends.split(","):
            if backend == "sqlite":
                results.append(run_backend("sqlite", str(work / "hub.db"), args, work))
            elif backend == "postgresql":
                problem = unavailable()
                if problem:
                    print(f"postgresql: skipped ({problem})")
                    continue
                pg = PgServer()
                try:
                    results.append(run_backend("postgresql", pg.fresh_database("bench"), args, work, str(pg.data)))
                finally:
                    pg.stop()
            print(json.dumps(results[-1], indent=1), file=sys.stderr, flush=True)
    load = os.getloadavg()
    print(f"\ndatacap hub benchmark: {args.devices} devices x 1 card, batches of {args.rows} 5-minute usage row(s), "
          f"{args.seconds:.0f} s of ingestion per backend, {args.hubs} hub process(es), "
          f"{args.clients}x{args.threads} connections, "
          f"{os.cpu_count()} cores (load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
    header = f"{'':40}" + "".join(f"{r['backend']:>16}" for r in results)
    print(header)
    rows = [("devices registered (s)", "register_s", "{:.1f}"), ("batches ingested", "batches", "{:d}"),
            ("refused (non-200)", "refused", "{:d}"), ("ingest rate (batches/s)", "batches_per_s", "{:.0f}"),
            ("ingest rate (usage rows/s)", "rows_per_s", "{:.0f}"),
            ("a day of the fleet takes (min)", "day_s", "{:.1f}"),
            ("faster than real time (x)", "x_real_time", "{:.1f}"),
            ("hub CPU, all processes (% of one core)", "hub_cpu_pct", "{:.0f}"),
            ("PostgreSQL CPU (% of one core)", "db_cpu_pct", "{:.0f}"),
            ("hub RSS max, all processes (MiB)", "hub_rss_mib", "{:.0f}")]
    for title, key, fmt in rows:
        cells = []
        for r in results:
            value = r[key] / 60 if key == "day_s" else r[key]
            cells.append(f"{fmt.format(value):>16}")
        print(f"{title:40}" + "".join(cells))
    for name in ("fleet table (200 rows)", "one card's status"):
        cells = []
        for r in results:
            p50, p95, n = r["latency"].get(name, (float("nan"), float("nan"), 0))
            cells.append(f"{f'{p50:.0f}/{p95:.0f} ms (n={n})':>16}")
        print(f"{name + ' p50/p95':40}" + "".join(cells))


if __name__ == "__main__":
    main()
