"""Attribution benchmark: datacap's conntrack attribution against ``nethogs -t`` on the same traffic.

Run as root from the repository root: ``python bench/bench_attrib.py [--seconds 20]``. It creates two
network namespaces (monitored host and peer, joined by a veth pair), runs both monitors in the host
namespace at once, and drives, one after the other:

1. iperf3 TCP at full rate (the CPU cost of each monitor while packets fly),
2. iperf3 TCP at 10 Mbit/s (datacap's cost must not grow with the packet rate),
3. a storm of 2,000 short TCP connections by one Python program, on the raw veth (~100 us each)
   and on a 100 Mbit/s link (tbf, like a fast 4G/5G card: about 1 ms each),
4. iperf3 UDP at 100 Mbit/s.

CPU is user+system time of each monitor's process during the phase. "Right process" is the share of
the phase's interface bytes each monitor gives to the program that moved them (datacap counts L3
bytes as conntrack does, nethogs counts frames, so each is compared with the matching interface
total). Namespaces and processes are removed at the end. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "meter"))

from netns import PYTHON, PYTHON_NAME, Netns, attribution_agent, topology, wait_for  # noqa: E402
from test_attrib_storm import SERVER, STORM  # noqa: E402  (the same storm as the test's)

NETHOGS_LINE = re.compile(r"^(?P<name>.+)/(?P<pid>\d+)/(?P<uid>\d+)\t(?P<sent>[\d.e+]+)\t(?P<recv>[\d.e+]+)$")


class Nethogs:
    """``nethogs -t -C -v 2`` in the namespace: cumulative bytes per process, refreshed every second."""

    def __init__(self, ns: Netns, ifname: str) -> None:
        self.proc = ns.popen("nethogs", "-t", "-C", "-v", "2", "-d", "1", ifname, stdout=subprocess.PIPE)
        self.totals: dict[int, tuple[str, float]] = {}  # pid -> (name, max bytes seen)
        self.refreshes = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("Refreshing:"):
                with self._lock:
                    self.refreshes += 1
            found = NETHOGS_LINE.match(line.rstrip("\n"))
            if found:
                pid = int(found["pid"])
                value = float(found["sent"]) + float(found["recv"])
                with self._lock:
                    name, old = self.totals.get(pid, (found["name"], 0.0))
                    self.totals[pid] = (name, max(old, value))

    def bytes_of(self, pids: set[int]) -> float:
        with self._lock:
            return sum(value for pid, (_n, value) in self.totals.items() if pid in pids)


def cpu_seconds(pid: int) -> float:
    """User+system CPU of the process (monitors run as the exec'd child of ``ip netns exec``)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def ours_for(rows: list[dict[str, Any]], name: str) -> int:
    return sum(r["rx_bytes"] + r["tx_bytes"] for r in rows if r["app"] and r["app"]["name"] == name)


def run_phase(host: Netns, agent: Any, hogs: Nethogs, cmd: list[str], app: str) -> dict[str, float]:
    """Run one traffic program; CPU of each monitor, and bytes each gives to that program."""
    agent.ask("poll")  # start the phase from a clean slate
    before = host.counters("up0")
    cpu0 = (cpu_seconds(agent.proc.pid), cpu_seconds(hogs.proc.pid))
    started = time.monotonic()
    proc = host.popen(*cmd)
    pids = {proc.pid}  # `ip netns exec` execs the program: same pid, as nethogs reports it
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        # Like `datacap top` (and nethogs -d 1): a refresh every second, so datacap dumps too.
        try:
            proc.wait(timeout=1)
            break
        except subprocess.TimeoutExpired:
            agent.ask("rates")
    # Let nethogs print two more refreshes (once per second), so it has reported every packet.
    seen = hogs.refreshes
    wait_for(lambda: hogs.refreshes >= seen + 2, 5, "nethogs refreshes")
    rows = agent.ask("poll")
    elapsed = time.monotonic() - started
    cpu1 = (cpu_seconds(agent.proc.pid), cpu_seconds(hogs.proc.pid))
    after = host.counters("up0")
    l3 = after["rx_l3"] - before["rx_l3"] + after["tx_l3"] - before["tx_l3"]
    l2 = after["rx_bytes"] - before["rx_bytes"] + after["tx_bytes"] - before["tx_bytes"]
    return {"seconds": elapsed, "cpu_ours": cpu1[0] - cpu0[0], "cpu_hogs": cpu1[1] - cpu0[1],
            "share_ours": ours_for(rows, app) / l3 if l3 else 0.0,
            "share_hogs": min(hogs.bytes_of(pids) / l2, 1.0) if l2 else 0.0, "bytes": l3}


def bench_topology(shaped: bool, seconds: int) -> list[tuple[str, dict[str, float]]]:
    """One host/peer pair (raw veth, or shaped to 100 Mbit/s) and the phases run on it."""
    results: list[tuple[str, dict[str, float]]] = []
    with topology("bench") as topo:
        host, peer = topo.netns("h"), topo.netns("p")
        topo.link(host, "up0", "10.90.0.1/24", peer, "eth0", "10.90.0.2/24")
        if shaped:
            host.shape("up0", "100mbit")
            peer.shape("eth0", "100mbit")
        peer.popen("iperf3", "-s", "-p", "5201")
        peer.popen(PYTHON, "-c", SERVER, "7000")
        wait_for(lambda: peer.listening(5201) and peer.listening(7000), 10, "servers")
        agent = attribution_agent(host, ["up0"])
        hogs = Nethogs(host, "up0")
        try:
            wait_for(lambda: hogs.refreshes >= 1, 10, "nethogs to start")
            storm = [PYTHON, "-c", STORM, "10.90.0.2", "7000", "2000"]
            if shaped:
                results.append(("2,000-connection storm, 100 Mbit/s link",
                                run_phase(host, agent, hogs, storm, PYTHON_NAME)))
                return results
            tcp = ["iperf3", "-c", "10.90.0.2", "-p", "5201", "-t", str(seconds)]
            udp = ["iperf3", "-c", "10.90.0.2", "-p", "5201", "-u", "-b", "100M", "-t", "5"]
            for name, cmd, app in (("iperf3 TCP, full rate", tcp, "iperf3"),
                                   ("iperf3 TCP, 10 Mbit/s", [*tcp, "-b", "10M"], "iperf3"),
                                   ("2,000-connection storm, raw veth", storm, PYTHON_NAME),
                                   ("iperf3 UDP, 100 Mbit/s", udp, "iperf3")):
                results.append((name, run_phase(host, agent, hogs, cmd, app)))
        finally:
            agent.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of the iperf3 phases")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_attrib: needs root (network namespaces, nftables, conntrack)", file=sys.stderr)
        return 2
    results: list[tuple[str, dict[str, float]]] = []
    for shaped in (False, True):
        results += bench_topology(shaped, args.seconds)
    print(f"{'phase':42} {'secs':>5} {'CPU s datacap':>14} {'CPU s nethogs':>14} "
          f"{'right process datacap':>22} {'right process nethogs':>22}")
    for name, r in results:
        print(f"{name:42} {r['seconds']:5.1f} {r['cpu_ours']:14.2f} {r['cpu_hogs']:14.2f} "
              f"{r['share_ours']:22.1%} {r['share_hogs']:22.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
