"""Footprint of `datacap run`: peak RSS and idle CPU, with everything on and metering alone.

Each daemon runs in a network namespace of its own (a veth pair; root needed), as installed: default
interval and flush, attribution on (conntrack), an alert rule and its channel, the dashboard. After
some traffic and a few dashboard requests it is left idle, and its CPU time over the idle window and
its peak RSS (VmHWM; every process of the daemon's tree, in case the dashboard runs as a child) are
printed next to vnstatd's on the same veth.

    sudo .venv/bin/python bench/bench_footprint.py [--idle 30]

Targets (issue #11): everything on <= 45 MB peak RSS and <= 0.5 % of a core idle; metering alone
<= 25 MB.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import datacap_cmd, subprocess_env
from tests.nsutil import Pair, destroy, make_pair, wait_for

UDP = ("import socket, sys\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
       "for _ in range(2000):\n    s.sendto(b'x' * 1200, (sys.argv[1], 9))\n")
GET = ("import sys, urllib.request\nfor path in sys.argv[2:]:\n"
       "    urllib.request.urlopen(sys.argv[1] + path, timeout=30).read()\n")


def tree(pid: int) -> list[int]:
    out = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            out.extend(tree(int(child)))
    return out


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_one(pair: Pair, tmp: Path, label: str, config: str, args: list[str], idle: float,
            requests: bool) -> tuple[str, list[tuple[int, float]], float]:
    db, cfg = tmp / f"{label}.db", tmp / f"{label}.toml"
    cfg.write_text(config)
    log = (tmp / f"{label}.log").open("w")
    proc = subprocess.Popen(["ip", "netns", "exec", pair.a.name, *datacap_cmd("run", "--db", str(db), "--config",
                                                                              str(cfg), *args)],
                            env=subprocess_env(), stdout=log, stderr=log)
    try:
        wait_for(lambda: "metering into" in (tmp / f"{label}.log").read_text(), 60, f"{label} to start")
        pair.a.run(sys.executable, "-c", UDP, pair.b_ip)
        if requests:
            wait_for(lambda: "dashboard:" in (tmp / f"{label}.log").read_text(), 60, "the dashboard")
            pair.a.run(sys.executable, "-c", GET, "http://127.0.0.1:8961", "/", "/api/v1/summary",
                       "/api/v1/status", "/api/v1/apps", "/metrics", "/usage", "/api/v1/usage?by=hour")
        time.sleep(5)  # a benchmark, not a test: let the traffic's flush and the requests settle
        pids = tree(proc.pid)
        c0 = cpu_seconds(pids)
        time.sleep(idle)
        pids = [p for p in tree(proc.pid) if Path(f"/proc/{p}").exists()]
        share = (cpu_seconds(pids) - c0) / idle
        per_process = [(pid, status_kb(pid, "VmHWM") / 1024) for pid in pids]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    return label, per_process, share


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of idle to measure CPU over")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    pair = make_pair(subnet=91)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench_footprint-") as tmpdir:
            tmp = Path(tmpdir)
            card = (f'timezone = "Asia/Shanghai"\n[[cards]]\nname = "veth"\ninterfaces = ["{pair.a_if}"]\n'
                    '[[cards.buckets]]\nname = "data"\nquota = "20 GB"\n')
            full = (card + '[web]\nlisten = "127.0.0.1:8961"\n[channels]\nhook = "json://127.0.0.1:8962/"\n'
                    '[[alerts]]\ncard = "veth"\nbucket = "data"\nwhen = "remaining < 10%"\nnotify = ["hook"]\n')
            rows.append(run_one(pair, tmp, "everything on (web, attribution, alerts)", full, [], args.idle, True))
            meter_only = card + "[attribution]\nenabled = false\n"
            rows.append(run_one(pair, tmp, "metering alone (--no-web, no attribution)", meter_only, ["--no-web"],
                                args.idle, False))
    finally:
        destroy(pair)
    print(f"\n{platform.node()}: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; idle CPU over {args.idle:.0f} s after traffic"
          " and dashboard requests")
    print(f"| {'datacap run':<44} | {'peak RSS MB (per process)':>26} | {'idle CPU':>9} |")
    print(f"|{'-' * 46}|{'-' * 28}|{'-' * 11}|")
    for label, per_process, share in rows:
        rss = " + ".join(f"{mb:.1f}" for _, mb in per_process)
        print(f"| {label:<44} | {rss:>26} | {100 * share:8.2f}% |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
