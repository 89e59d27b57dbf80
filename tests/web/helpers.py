"""Shared by the web tests: the skip-or-fail rule, a generated usage CSV, running the real CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..conftest import require

SRC = Path(__file__).resolve().parents[2] / "src"
CHROMIUM = "/usr/bin/chromium"
APPS = ("firefox", "apt", "bilibili-app", "wechat", "steam")
SERVICES = {"firefox": "web", "apt": "debian", "bilibili-app": "bilibili", "wechat": "tencent", "steam": "steam"}
CLIENTS = ("192.168.8.23", "192.168.8.41")


def require_chromium() -> None:
    require(Path(CHROMIUM).exists(), f"Debian's chromium is not installed ({CHROMIUM}): apt-get install chromium")
    try:
        import playwright  # noqa: F401
    except ImportError:
        require(False, "the playwright Python package is not installed: pip install playwright")


def write_csv(path: Path, now: dt.datetime, days: int = 45, seed: int = 6) -> None:
    """Hourly usage for two interfaces over ``days`` up to ``now``, part of it attributed, with a
    daily rhythm (busy evenings) so the heatmap has a shape."""
    rng = random.Random(seed)
    lines = ["time,interface,rx_bytes,tx_bytes,card,app,client,service"]
    end = now.replace(minute=0, second=0, microsecond=0)
    for h in range(days * 24, 0, -1):
        at = end - dt.timedelta(hours=h)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        evening = 4 if 11 <= at.hour <= 15 else 1  # UTC 11-15 is 19-23 in Asia/Shanghai
        for iface in ("wwan0", "usb0"):
            rx = rng.randint(200_000, 20_000_000) * evening
            tx = rng.randint(20_000, 2_000_000) * evening
            lines.append(f"{stamp},{iface},{rx},{tx},,,,")
            app = rng.choice(APPS)
            client = rng.choice(CLIENTS) if iface == "usb0" else ""
            lines.append(f"{stamp},{iface},{rx // 2},{tx // 2},,{app},{client},{SERVICES[app]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def cli_env(db: Path, config: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "DATACAP_DB": str(db), "DATACAP_CONFIG": str(config)}
    return env


def datacap(db: Path, config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real CLI (this worktree's code) as a subprocess; fails the test on a non-zero exit."""
    proc = subprocess.run([sys.executable, "-m", "datacap", *args], env=cli_env(db, config), text=True,
                          capture_output=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"datacap {' '.join(args)} failed:\n{proc.stderr}"
    return proc


def datacap_json(db: Path, config: Path, *args: str) -> Any:
    return json.loads(datacap(db, config, *args, "--json").stdout)


def have(cmd: str) -> bool:
    return shutil.which(cmd) is not None
