"""Benchmark: the forecast of cycle-end usage against the straight line, on synthetic histories.

For each kind of user (seeded random daily usage over 150 days) and each 30-day cycle after the
first, ``compute_status`` is asked at local midnight on days 3, 7, 12, 18 and 24 of the cycle; its
``forecast.cycle_end_used_bytes`` and the straight line (used so far / elapsed fraction, vnStat's
estimate) are compared with what the cycle really used. Prints the mean absolute error of both,
in GiB, per kind and overall.

Run: ``PYTHONPATH=src python bench/bench_forecast.py``
"""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
from collections.abc import Callable
from zoneinfo import ZoneInfo

from datacap.model import UsageRecord
from datacap.plans.config import CardConfig
from datacap.plans.engine import compute_status

TZ = ZoneInfo("Europe/Berlin")  # DST on the way: the engine must not care
GIB = 1024**3
DAYS = 150
FIRST = dt.date(2026, 6, 1)
CARD = CardConfig.model_validate({"name": "bench", "cycle": {"kind": "days", "start": FIRST, "length": 30},
                                  "buckets": [{"name": "general", "quota": "60 GB"}]})
Profile = Callable[[random.Random, int, dt.date], float]


def steady(rng: random.Random, n: int, day: dt.date) -> float:
    return max(0.0, rng.gauss(1.0, 0.2))


def trending(rng: random.Random, n: int, day: dt.date) -> float:
    return max(0.0, (0.4 + 1.6 * n / DAYS) * rng.gauss(1.0, 0.15))


def weekend_heavy(rng: random.Random, n: int, day: dt.date) -> float:
    return max(0.0, rng.gauss(2.6 if day.weekday() >= 5 else 0.5, 0.15))


def bursty(rng: random.Random, n: int, day: dt.date) -> float:
    return rng.uniform(0.2, 0.6) + (rng.uniform(3, 6) if rng.random() < 0.08 else 0.0)


def habit_change(rng: random.Random, n: int, day: dt.date) -> float:
    return max(0.0, rng.gauss(0.5 if (n // 45) % 2 == 0 else 1.8, 0.15))


PROFILES: dict[str, Profile] = {"steady": steady, "trending up": trending, "weekend-heavy": weekend_heavy,
                                "bursty": bursty, "habit change": habit_change}


def history(profile: Profile, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [profile(rng, n, FIRST + dt.timedelta(days=n)) * GIB for n in range(DAYS)]


def records_of(daily: list[float]) -> list[UsageRecord]:
    """Each day as 24 hourly records with an evening-heavy shape, at local hours."""
    shape = [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.5, 0.8, 1, 1, 1, 1,
             1.2, 1, 1, 1, 1, 1.2, 1.5, 2, 2.2, 2, 1.5, 0.8]
    total = sum(shape)
    out = []
    for n, value in enumerate(daily):
        day = FIRST + dt.timedelta(days=n)
        for hour, weight in enumerate(shape):
            start = dt.datetime.combine(day, dt.time(hour), tzinfo=TZ)
            out.append(UsageRecord(int(start.timestamp()), 3600, "wwan0", int(value * weight / total), 0))
    return out


def errors(daily: list[float]) -> tuple[list[float], list[float]]:
    records = records_of(daily)
    ours, line = [], []
    for cycle in range(1, DAYS // 30):
        actual = sum(daily[cycle * 30:(cycle + 1) * 30])
        for elapsed in (3, 7, 12, 18, 24):
            day = FIRST + dt.timedelta(days=cycle * 30 + elapsed)
            at = dt.datetime.combine(day, dt.time(), tzinfo=TZ)
            status = compute_status(CARD, records, [], at, TZ)
            frac = status["cycle"]["elapsed_fraction"]
            ours.append(abs(status["forecast"]["cycle_end_used_bytes"] - actual) / GIB)
            line.append(abs(status["used_bytes"] / frac - actual) / GIB)
    return ours, line


def main(seeds: int = 12) -> None:
    print(f"{'history':<15}{'forecast MAE':>14}{'straight MAE':>14}{'improvement':>13}   (GiB at cycle end)")
    all_ours: list[float] = []
    all_line: list[float] = []
    for name, profile in PROFILES.items():
        ours: list[float] = []
        line: list[float] = []
        for seed in range(seeds):
            o, s = errors(history(profile, seed))
            ours += o
            line += s
        all_ours += ours
        all_line += line
        mo, ml = statistics.mean(ours), statistics.mean(line)
        print(f"{name:<15}{mo:>14.3f}{ml:>14.3f}{(1 - mo / ml) * 100:>12.1f}%")
    mo, ml = statistics.mean(all_ours), statistics.mean(all_line)
    print(f"{'all':<15}{mo:>14.3f}{ml:>14.3f}{(1 - mo / ml) * 100:>12.1f}%   "
          f"({len(all_ours)} forecasts; RMSE {math.sqrt(statistics.mean(x * x for x in all_ours)):.3f} vs "
          f"{math.sqrt(statistics.mean(x * x for x in all_line)):.3f})")


if __name__ == "__main__":
    main()
