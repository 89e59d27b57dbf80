"""Benchmark of the dashboard: p50/p95 of every API call and the overview page's load time.

The store holds one year of 5-minute traffic for 3 interfaces (cards) and hourly attribution for
200 apps, written through the store's Writer as the daemon would, then trimmed by the default
retention (5-minute buckets for 7 days, hours for 366). The API is called over HTTP (httpx) on a
real uvicorn bound to 127.0.0.1; the page is timed in headless Debian chromium.

    PYTHONPATH=src python bench/bench_web.py [--days 365] [--apps 200] [--requests 40]

Targets (issue #6): every API call p95 < 100 ms; the overview usable in < 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from datacap.config import Config, RetentionConfig
from datacap.model import AppIdentity, AttribDelta
from datacap.store import TrafficDelta, Writer, open_write
from datacap.web.server import start_in_thread

OUT = Path(__file__).resolve().parent / "out"
IFACES = ("wwan0", "wwan1", "usb0")
CHROMIUM = "/usr/bin/chromium"


def build_store(path: Path, cfg: Config, days: int, apps: int, seed: int = 1) -> None:
    """Write the data set month by month (bounded memory), then apply the default retention."""
    rng = random.Random(seed)
    conn = open_write(path)
    writer = Writer(conn, cfg.tz, cfg.week_start_index)
    end = int(time.time()) // 3600 * 3600
    start = end - days * 86400
    identities = [AppIdentity(f"app{i:03d}", f"/usr/bin/app{i:03d}") for i in range(apps)]
    services = [f"svc{i:02d}" for i in range(30)]
    chunk = 30 * 86400
    for lo in range(start, end, chunk):
        hi = min(lo + chunk, end)
        traffic = [TrafficDelta(b, iface, rng.randint(0, 3_000_000), rng.randint(0, 300_000), card=iface)
                   for b in range(lo, hi, 300) for iface in IFACES]
        attrib = [AttribDelta(h, IFACES[i % 3], rng.randint(0, 80_000), rng.randint(0, 8_000), flows=1,
                              card=IFACES[i % 3], app=ident, service=services[i % 30])
                  for h in range(lo, hi, 3600) for i, ident in enumerate(identities)]
        writer.commit(traffic, attrib, seen_at=hi)
        print(f"  wrote {dt.datetime.fromtimestamp(hi, cfg.tz):%Y-%m-%d}", file=sys.stderr, flush=True)
    keep = {k: v for k, v in RetentionConfig().seconds().items()}
    writer.apply_retention(end, keep)
    conn.execute("PRAGMA optimize")
    conn.close()


def calls(cfg: Config) -> list[tuple[str, dict[str, Any]]]:
    now = dt.datetime.now(cfg.tz)
    year_ago = (now - dt.timedelta(days=365)).date().isoformat()
    return [
        ("summary", {}), ("interfaces", {}), ("features", {}), ("plan", {}), ("health", {}), ("live", {}),
        ("usage", {"by": "5min"}), ("usage", {"by": "hour"}), ("usage", {"by": "day"}),
        ("usage", {"by": "week"}), ("usage", {"by": "month"}), ("usage", {"by": "top"}),
        ("usage", {"by": "hour", "since": (now - dt.timedelta(days=30)).date().isoformat()}),
        ("usage", {"by": "day", "since": year_ago}),
        ("apps", {}), ("apps", {"since": year_ago, "limit": 200}), ("services", {}), ("clients", {}),
        ("apps/app007", {"by": "day"}), ("apps/app007", {"by": "day", "since": year_ago}),
        ("apps/app007", {"by": "hour", "since": (now - dt.timedelta(days=7)).date().isoformat()}),
        ("heatmap", {}), ("heatmap", {"since": year_ago}), ("../../metrics", {}),
    ]


def bench_api(base: str, cfg: Config, n: int) -> list[tuple[str, float, float, int]]:
    rows = []
    with httpx.Client(base_url=base, timeout=30) as http:
        for path, params in calls(cfg):
            url = f"/api/v1/{path}" if not path.startswith("../") else "/metrics"
            first = http.get(url, params=params)
            first.raise_for_status()
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                http.get(url, params=params).raise_for_status()
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            label = url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
            rows.append((label, statistics.median(times), times[int(0.95 * (len(times) - 1))], len(first.content)))
    return rows


def bench_page(base: str, paths: list[str], rounds: int) -> list[tuple[str, float, float]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            for path in paths:
                times = []
                for i in range(rounds + 1):  # the first round warms the server; browser cache is per context
                    context = browser.new_context()
                    page = context.new_page()
                    t0 = time.perf_counter()
                    page.goto(base.rstrip("/") + path)
                    page.wait_for_selector("body[data-ready='1']", timeout=30_000)
                    if i:
                        times.append((time.perf_counter() - t0) * 1000)
                    context.close()
                out.append((path, statistics.median(times), max(times)))
        finally:
            browser.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--apps", type=int, default=200)
    ap.add_argument("--requests", type=int, default=40, help="timed requests per API call")
    ap.add_argument("--rounds", type=int, default=5, help="cold page loads per page")
    ap.add_argument("--db", type=Path, default=None, help="reuse or create this store")
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    cfg = Config(timezone="Asia/Shanghai")
    db = args.db or OUT / f"bench_web-{args.days}d-{args.apps}apps.db"
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        print(f"building {db} ...", file=sys.stderr)
        t0 = time.perf_counter()
        build_store(db, cfg, args.days, args.apps)
        print(f"built in {time.perf_counter() - t0:.0f} s, {db.stat().st_size / 2**20:.0f} MiB", file=sys.stderr)
    web = start_in_thread(db, cfg, listen="127.0.0.1:0")
    try:
        if not web.wait_started():
            raise SystemExit("uvicorn did not start")
        base = web.url or ""
        load = os.getloadavg()[0]
        rows = bench_api(base, cfg, args.requests)
        print(f"\nAPI over HTTP on loopback, {args.requests} requests each ({db.name}); {os.cpu_count()} CPUs, "
              f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after (other work on the box slows it)")
        print(f"{'call':<58} {'p50 ms':>8} {'p95 ms':>8} {'bytes':>9}")
        for label, p50, p95, size in rows:
            flag = "" if p95 < 100 else "  > 100 ms"
            print(f"{label:<58} {p50:8.1f} {p95:8.1f} {size:9d}{flag}")
        worst = max(rows, key=lambda r: r[2])
        print(f"worst p95: {worst[2]:.1f} ms ({worst[0]})")
        if not args.no_browser and Path(CHROMIUM).exists():
            print("\npage load in headless chromium (navigation until the page's data is drawn)")
            print(f"{'page':<20} {'median ms':>10} {'max ms':>8}")
            for path, med, worst_ms in bench_page(base, ["/", "/usage", "/who", "/when"], args.rounds):
                print(f"{path:<20} {med:10.0f} {worst_ms:8.0f}")
    finally:
        web.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
