"""A real store for the report tests: generated CSV imported with ``datacap import`` (a subprocess).

The data covers the four months up to the last complete one (computed from the clock, so the periods
are always in the past), in Asia/Shanghai, with apps, services and LAN clients shaped so that the
advice rules have something to say: video is heavy, apt updates are large, one client dominates,
one app is new in the report month and one day spikes.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from datacap.reports.period import Period, default_period

SRC = Path(__file__).resolve().parents[2] / "src"
TZ_NAME = "Asia/Shanghai"
TZ = ZoneInfo(TZ_NAME)
MIB = 1024**2
CLI_TIMEOUT = 120

# (app, service, client, rx MiB per active hour, tx MiB, chance the hour is active)
FLOWS: tuple[tuple[str, str, str, int, int, float], ...] = (
    ("firefox", "youtube", "", 40, 2, 0.5),
    ("bilibili", "bilibili", "", 30, 2, 0.4),
    ("wechat", "wechat", "", 4, 2, 0.8),
    ("apt", "linux-update", "", 25, 1, 0.2),
    ("", "", "phone-b", 20, 3, 0.4),
    ("", "", "192.168.8.23", 3, 1, 0.3),
)


@dataclass(frozen=True)
class Store:
    db: Path
    config: Path
    workdir: Path
    month: Period  # the report month (last complete month)
    week: Period  # an ISO week inside it

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATACAP_")}
        env.update(PYTHONPATH=str(SRC), DATACAP_DB=str(self.db), DATACAP_CONFIG=str(self.config),
                   PYTHONIOENCODING="utf-8", NO_COLOR="1", COLUMNS="200")
        return env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``datacap ARGS`` (with ``report`` registered) as a subprocess in the store's work dir."""
        proc = subprocess.run([sys.executable, "-m", "datacap.reports", *args], env=self.env(),
                              cwd=self.workdir, capture_output=True, text=True, timeout=CLI_TIMEOUT)
        if check and proc.returncode != 0:
            raise AssertionError(f"datacap {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)


def write_csv(path: Path, month: Period) -> int:
    """Hourly rows for the three months before ``month`` and ``month`` itself; returns the row count."""
    rnd = random.Random(6)
    start = month.shifted(-3).first_day
    end = month.end_day
    spike_day = month.first_day + dt.timedelta(days=19)
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["time", "interface", "rx_bytes", "tx_bytes", "card", "app", "client", "service"])
        day = start
        while day < end:
            for hour in range(24):
                at = dt.datetime.combine(day, dt.time(hour, 7), TZ).isoformat()
                for app, service, client, rx, tx, chance in FLOWS:
                    if rnd.random() < chance:
                        w.writerow([at, "wwan0", rx * MIB + rnd.randint(0, MIB), tx * MIB, "cmcc", app, client,
                                    service])
                        rows += 1
                # Unattributed background traffic on a second interface, another card.
                w.writerow([at, "wlan0", rnd.randint(1, 5) * MIB, MIB, "", "", "", ""])
                rows += 1
                if day >= month.first_day and hour in (1, 2, 3):
                    # An app that appears only in the report month.
                    w.writerow([at, "wwan0", 60 * MIB, MIB, "cmcc", "steam", "", "steam"])
                    rows += 1
                if day == spike_day and hour == 14:
                    w.writerow([at, "wwan0", 6000 * MIB, 10 * MIB, "cmcc", "", "", ""])
                    rows += 1
            day += dt.timedelta(days=1)
    return rows


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("reports-store")
    month = default_period("month", dt.datetime.now(dt.UTC), TZ)
    monday = month.first_day + dt.timedelta(days=(7 - month.first_day.weekday()) % 7)
    config = root / "config.toml"
    config.write_text(f'timezone = "{TZ_NAME}"\n', encoding="utf-8")
    s = Store(root / "datacap.db", config, root, month, Period("week", monday))
    csv_path = root / "usage.csv"
    write_csv(csv_path, month)
    proc = s.run("import", str(csv_path))
    assert "imported" in proc.stdout
    yield s
