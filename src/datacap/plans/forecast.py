"""Forecast of a cycle's usage: when the general quota runs out and how much the cycle will use.

Method (exponential smoothing with weekly factors, the variant picked by backtest; no I/O):

1. Input is the usage of each *complete* local day before today (oldest first) plus what today used
   so far. Days before the store knew this card are left out by the caller, not given as zero.
2. With at least 14 complete days, a weekday and a weekend factor are estimated from the last 28
   days: each day divided by the mean of the 7 days centred on it (so a trend is not taken for a
   weekly pattern), averaged over Monday-Friday and over Saturday-Sunday, and scaled so that
   ``5 * weekday + 2 * weekend == 7``. With less history (or under 4 weekend days) both are 1.
3. Each day is divided by its factor (de-seasonalised). The level is then forecast by one of a few
   candidates: an exponentially weighted mean of the days (half-life 2, 4, 7, 14 or 28 days:
   recent days weigh more, so a change of habit shows within days while one bursty day is damped),
   or Holt's linear smoothing with a damped trend (half-life 4, 7 or 14 days, trend damped by 0.98 a
   day) for usage that keeps growing or shrinking. The candidate chosen is the one that, replayed
   over the last 28 days of the history, best predicted the mean of the following days (as many
   as the forecast covers, at most 14); with under two weeks of history it is the 7-day mean.
4. The expected usage of a future day is ``(level + damped trend) * factor(day)``; the rest of today
   is the expected day times the fraction of today still to come. Without any complete day, the pace
   of the current cycle so far stands in (the straight line).

The straight line (usage so far / elapsed fraction of the cycle, vnStat's estimate) is what
``bench/bench_forecast.py`` compares this with on synthetic histories.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

HALF_LIFE_DAYS = 7.0
HALF_LIVES = (2.0, 4.0, 7.0, 14.0, 28.0)
MIN_BACKTEST_DAYS = 7
DAMPING = 0.98
TREND_HALF_LIVES = (4.0, 7.0, 14.0)
MIN_DAYS_FOR_WEEKLY = 14
MIN_WEEKEND_DAYS = 4
SEASON_WINDOW_DAYS = 28
DAY = 86400


@dataclass(frozen=True, slots=True)
class DailyModel:
    """Expected bytes per local day: ``level`` times the weekday or weekend factor."""

    level: float
    weekday_factor: float = 1.0
    weekend_factor: float = 1.0
    half_life: float = HALF_LIFE_DAYS
    trend: float = 0.0  # change of the level per day, damped by DAMPING each day ahead
    last_day: dt.date | None = None  # the day the level was measured at (the last complete day)

    def factor(self, day: dt.date) -> float:
        return self.weekend_factor if day.weekday() >= 5 else self.weekday_factor

    def expected(self, day: dt.date) -> float:
        level = self.level
        if self.trend and self.last_day is not None:
            level += self.trend * _damped_steps(max(0, (day - self.last_day).days))
        return max(0.0, level) * self.factor(day)


def _damped_steps(steps: int) -> float:
    """phi + phi^2 + ... + phi^steps: how many days' worth of trend a day ``steps`` ahead adds."""
    return DAMPING * (1 - DAMPING**steps) / (1 - DAMPING)


def _weekly_factors(history: Sequence[tuple[dt.date, float]]) -> tuple[float, float]:
    """Weekday and weekend factors, each day measured against the centred 7-day mean around it (so a
    trend is not mistaken for a weekly pattern), over the last ``SEASON_WINDOW_DAYS`` days."""
    if len(history) < MIN_DAYS_FOR_WEEKLY:
        return 1.0, 1.0
    values = [v for _, v in history]
    weekday: list[float] = []
    weekend: list[float] = []
    for i in range(max(3, len(history) - SEASON_WINDOW_DAYS), len(history) - 3):
        week = sum(values[i - 3:i + 4]) / 7
        if week > 0:
            (weekend if history[i][0].weekday() >= 5 else weekday).append(values[i] / week)
    if len(weekend) < MIN_WEEKEND_DAYS or not weekday:
        return 1.0, 1.0
    mean_wd = sum(weekday) / len(weekday)
    mean_we = sum(weekend) / len(weekend)
    week_mean = (5 * mean_wd + 2 * mean_we) / 7
    return mean_wd / week_mean, mean_we / week_mean


def _ewma_path(values: Sequence[float], half_life: float) -> list[float]:
    """The weighted mean after each value: ``path[k]`` has seen ``values[:k + 1]``, each day weighing
    ``0.5 ** (age / half_life)``. Normalised by the weights, so a short history is not biased toward
    its first day."""
    decay = 0.5 ** (1 / half_life)
    num = den = 0.0
    path = []
    for value in values:
        num = num * decay + value
        den = den * decay + 1.0
        path.append(num / den)
    return path


def _holt_path(values: Sequence[float], half_life: float) -> list[tuple[float, float]]:
    """(level, trend) after each value, by Holt's linear smoothing with a damped trend."""
    alpha = 1 - 0.5 ** (1 / half_life)
    beta = alpha / 2
    # Start from the slope of the first week rather than from no trend at all.
    first = min(len(values) - 1, 7)
    level, trend = values[0], (values[first] - values[0]) / first if first else 0.0
    path = [(level, trend)]
    for value in values[1:]:
        previous = level
        level = alpha * value + (1 - alpha) * (level + DAMPING * trend)
        trend = beta * (level - previous) + (1 - beta) * DAMPING * trend
        path.append((level, trend))
    return path


Candidate = tuple[str, float]  # ("level" | "trend", half-life in days)
CANDIDATES: tuple[Candidate, ...] = (*(("level", h) for h in HALF_LIVES),
                                     *(("trend", h) for h in TREND_HALF_LIVES))


def _forecasts(values: Sequence[float], candidate: Candidate, horizon: int) -> list[float]:
    """For each origin k, the candidate's forecast of the mean of the ``horizon`` days after k."""
    kind, half_life = candidate
    if kind == "level":
        return _ewma_path(values, half_life)
    ahead = sum(_damped_steps(i) for i in range(1, horizon + 1)) / horizon
    return [level + trend * ahead for level, trend in _holt_path(values, half_life)]


def _backtest_error(values: Sequence[float], candidate: Candidate, horizon: int) -> float:
    """Mean absolute error of a candidate's forecasts of the mean of the next ``horizon`` days, over
    the last ``SEASON_WINDOW_DAYS`` forecast origins of the history."""
    path = _forecasts(values, candidate, horizon)
    n = len(values)
    errors = []
    for origin in range(max(MIN_BACKTEST_DAYS, n - SEASON_WINDOW_DAYS - horizon), n - 1):
        ahead = values[origin + 1:origin + 1 + horizon]
        errors.append(abs(path[origin] - sum(ahead) / len(ahead)))
    return sum(errors) / len(errors) if errors else 0.0


def fit(history: Sequence[tuple[dt.date, float]], horizon: int = 7) -> DailyModel | None:
    """Fit the model on complete days (oldest first) for forecasting ``horizon`` days; None without
    any day."""
    if not history:
        return None
    wd, we = _weekly_factors(history)
    # A factor of 0 (never any weekend use) says nothing about the level: those days are left out.
    values = [v / f for d, v in history if (f := we if d.weekday() >= 5 else wd) > 0]
    if not values:
        return DailyModel(0.0, wd, we)
    horizon = max(1, min(horizon, 14))
    best: Candidate = ("level", HALF_LIFE_DAYS)
    if len(values) >= MIN_BACKTEST_DAYS + 7:
        # Ties go to the plain level, then to the half-life nearest the default.
        best = min(CANDIDATES, key=lambda c: (_backtest_error(values, c, horizon), c[0] != "level",
                                              abs(c[1] - HALF_LIFE_DAYS)))
    kind, half_life = best
    if kind == "level":
        return DailyModel(_ewma_path(values, half_life)[-1], wd, we, half_life)
    level, trend = _holt_path(values, half_life)[-1]
    return DailyModel(level, wd, we, half_life, trend, history[-1][0])


def project(model: DailyModel | None, at: dt.datetime, end: dt.datetime, tz: dt.tzinfo,
            fallback_rate: float) -> list[tuple[int, int, float]]:
    """Expected usage from ``at`` to ``end`` as (start epoch, end epoch, bytes) per local day part.

    ``fallback_rate`` (bytes per second) is used when there is no model.
    """
    out: list[tuple[int, int, float]] = []
    cursor = at
    while cursor < end:
        day = cursor.astimezone(tz).date()
        nxt = _next_midnight(day, tz)
        stop = min(nxt, end)
        a, b = int(cursor.timestamp()), int(stop.timestamp())
        if model is None:
            amount = fallback_rate * (b - a)
        else:
            length = int(nxt.timestamp()) - int(_midnight(day, tz).timestamp())
            amount = model.expected(day) * (b - a) / length if length > 0 else 0.0
        out.append((a, b, amount))
        cursor = stop
    return out


def _midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    naive = dt.datetime.combine(day, dt.time())
    return naive.replace(tzinfo=tz).astimezone(dt.UTC).astimezone(tz)


def _next_midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return _midnight(day + dt.timedelta(days=1), tz)


@dataclass(slots=True)
class Pool:
    """An allowance as the forecast sees it: usable in [start, end), ``left`` bytes (None: unlimited)."""

    start: int
    end: int
    left: float | None


def exhausted_at(segments: Sequence[tuple[int, int, float]], pools: Sequence[Pool]) -> int | None:
    """The epoch second the pools run dry under the projected use, or None if they last.

    Use within a segment is spread evenly; it is taken from the usable pool that expires first, as the
    engine does; a pool's leftover lapses at its end.
    """
    return drain(segments, pools)[1]


def drain(segments: Sequence[tuple[int, int, float]],
          pools: Sequence[Pool]) -> tuple[list[int | None], int | None]:
    """When each pool empties under the projected use (None: it lasts, or was empty already), and
    when they all run dry together (as :func:`exhausted_at`)."""
    live = [Pool(p.start, p.end, p.left) for p in pools]
    emptied: list[int | None] = [None] * len(live)
    if not live:
        return emptied, None
    for a, b, amount in segments:
        if b <= a:
            continue
        rate = amount / (b - a)
        inner = [x for p in live for x in (p.start, p.end) if a < x < b]
        cuts = sorted({a, b, *inner})
        for s, e in itertools.pairwise(cuts):
            usable = sorted((i for i, p in enumerate(live) if p.start <= s < p.end), key=lambda i: live[i].end)
            if any(live[i].left is None for i in usable):
                continue
            if not any(live[i].left for i in usable):
                return emptied, s
            want = need = rate * (e - s)
            for i in usable:
                pool = live[i]
                had = pool.left or 0.0
                take = min(need, had)
                pool.left = had - take
                need -= take
                if had > 0 and pool.left <= 1e-6 and rate > 0:
                    emptied[i] = int(s + (want - need) / rate)
            if need > 1e-6 and rate > 0:
                return emptied, int(e - need / rate)
    return emptied, None


def crossing(segments: Sequence[tuple[int, int, float]], amount: float) -> int | None:
    """The epoch second the projected use adds up to ``amount`` (e.g. the bytes left before the
    throttle), or None if it stays below within the segments."""
    if amount <= 0:
        return segments[0][0] if segments else None
    for a, b, used in segments:
        if used >= amount and used > 0:
            return int(a + (b - a) * amount / used)
        amount -= used
    return None


def straight_line(used: float, elapsed_fraction: float) -> float:
    """vnStat's estimate: usage so far scaled to the whole cycle."""
    return used / elapsed_fraction if elapsed_fraction > 0 else float(used)
