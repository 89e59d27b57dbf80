"""Load benchmark of `datacap serve`: 20 clients at once on a year of data, p50/p95/max, errors, RSS.

The store holds one year of 5-minute traffic for 3 cards' interfaces and hourly attribution for 40
apps (bench_web.build_store), the config three cards with plans. `datacap serve` runs as its own
process (a real uvicorn on 127.0.0.1); an asyncio client keeps CLIENTS requests in flight, each
client cycling through the overview page, plan status, usage, apps and /metrics, for a bounded
number of requests. The server's peak RSS is read from /proc (VmHWM) after the run.

    .venv/bin/python bench/bench_load.py [--clients 20] [--requests 30] [--days 365]

Target (issue #11): p95 <= 100 ms, no errors, RSS <= 80 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_web import IFACES, build_store
from datacap.config import Config

CARDS = "".join(f"""
[[cards]]
name = "{iface}"
interfaces = ["{iface}"]
[cards.cycle]
kind = "monthly"
day = {1 + 9 * i}
[[cards.buckets]]
name = "通用"
quota = "40 GB"
[[cards.buckets]]
name = "闲时"
quota = "10 GB"
hours = "23:00-07:00"
""" for i, iface in enumerate(IFACES))
MIX = ["/", "/api/v1/status", "/api/v1/usage?by=day", "/api/v1/apps", "/metrics"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def client(host: str, port: int, index: int, count: int, results: list[tuple[str, float, int]]) -> None:
    """One keep-alive HTTP/1.1 connection, requests one after the other: a client light enough that
    twenty of them in one process measure the server, not themselves (httpx costs ~5 ms a request)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i in range(count):
            path = MIX[(index + i) % len(MIX)]
            t0 = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                status = int(head.split(b" ", 2)[1])
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await asyncio.wait_for(reader.readexactly(length), 30)
            except (OSError, ValueError, StopIteration, asyncio.IncompleteReadError, TimeoutError):
                status = 0
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
            results.append((path.split("?")[0], (time.perf_counter() - t0) * 1000, status))
    finally:
        writer.close()


async def load(port: int, clients: int, requests: int) -> list[tuple[str, float, int]]:
    results: list[tuple[str, float, int]] = []
    await asyncio.gather(*(client("127.0.0.1", port, i, requests, results) for i in range(clients)))
    return results


def wait_up(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"datacap serve exited {proc.returncode}")
        try:
            if httpx.get(base + "api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("datacap serve did not answer")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=30, help="requests per client")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--apps", type=int, default=40)
    ap.add_argument("--db", type=Path, default=None, help="reuse (or build once) this store")
    args = ap.parse_args()
    exe = shutil.which("datacap", path=str(Path(sys.executable).parent)) or "datacap"
    with tempfile.TemporaryDirectory(prefix="bench_load-") as tmpdir:
        tmp = Path(tmpdir)
        db, config = args.db or tmp / "datacap.db", tmp / "config.toml"
        config.write_text(f'timezone = "Asia/Shanghai"\n{CARDS}', encoding="utf-8")
        if not db.exists():
            print(f"building {args.days} days for {len(IFACES)} interfaces, {args.apps} apps ...", file=sys.stderr)
            t0 = time.perf_counter()
            build_store(db, Config(timezone="Asia/Shanghai"), args.days, args.apps)
            print(f"built in {time.perf_counter() - t0:.0f} s ({db.stat().st_size / 2**20:.0f} MiB)",
                  file=sys.stderr)
        port = free_port()
        base = f"http://127.0.0.1:{port}/"
        env = {**os.environ, "DATACAP_DB": str(db), "DATACAP_CONFIG": str(config)}
        proc = subprocess.Popen([exe, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_up(base, proc)
            for path in MIX:  # warm: first page render, first status
                httpx.get(base + path.lstrip("/"), timeout=60)
            load_before = os.getloadavg()[0]
            cpu0 = cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            results = asyncio.run(load(port, args.clients, args.requests))
            wall = time.perf_counter() - t0
            cpu = cpu_seconds(proc.pid) - cpu0
            rss = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    times = [ms for _, ms, _ in results]
    errors = sum(1 for _, _, code in results if code != 200)
    print(f"\n{platform.node()}: {platform.machine()}, {os.cpu_count()} CPUs, load average {load_before:.1f} before; "
          f"`datacap serve` on {args.days} days x {len(IFACES)} interfaces, {args.apps} apps, {len(IFACES)} cards")
    print(f"{args.clients} clients x {args.requests} requests = {len(results)} in {wall:.1f} s "
          f"({len(results) / wall:.0f} req/s)")
    print(f"| {'request':<22} | {'n':>4} | {'p50 ms':>7} | {'p95 ms':>7} | {'max ms':>7} | {'errors':>6} |")
    print(f"|{'-' * 24}|{'-' * 6}|{'-' * 9}|{'-' * 9}|{'-' * 9}|{'-' * 8}|")
    for path in [*(p.split("?")[0] for p in MIX), "all"]:
        sel = [(ms, code) for p, ms, code in results if p == path or path == "all"]
        ms_only = [ms for ms, _ in sel]
        errs = sum(1 for _, code in sel if code != 200)
        print(f"| {path:<22} | {len(sel):>4} | {statistics.median(ms_only):7.1f} | {pct(ms_only, 0.95):7.1f} | "
              f"{max(ms_only):7.1f} | {errs:>6} |")
    print(f"server CPU: {1000 * cpu / len(results):.1f} ms per request on average (independent of the "
          f"queueing that other work on a busy machine adds to the latencies)")
    print(f"\nall: p95 {pct(times, 0.95):.1f} ms (target <= 100), errors {errors} (target 0), "
          f"server peak RSS {rss:.1f} MB (target <= 80)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
