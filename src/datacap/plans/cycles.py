"""Billing cycles in the card's local timezone.

A cycle always starts at a local midnight (the first real instant of the day where DST skips
midnight), so a monthly cycle on day 1 in Asia/Shanghai starts at 16:00 UTC the day before. A month
shorter than the configured day starts on its last day (day = 31 -> 28 or 29 February), and the next
cycle goes back to the configured day.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from datacap.plans.config import CycleConfig
from datacap.timeutil import local_midnight

State = Literal["active", "expired", "not_started"]


@dataclass(frozen=True, slots=True)
class Cycle:
    """One billing period [start, end) as aware datetimes in the card's zone.

    ``index`` counts cycles: months since year 0 for monthly cycles, periods since ``start`` for
    ``days`` cycles, 0 for ``once``. ``state`` says whether the instant asked about lies before the
    first cycle, inside this one, or after the only one.
    """

    start: dt.datetime
    end: dt.datetime
    index: int
    state: State

    @property
    def start_epoch(self) -> int:
        return int(self.start.timestamp())

    @property
    def end_epoch(self) -> int:
        return int(self.end.timestamp())

    def elapsed_fraction(self, at: dt.datetime) -> float:
        # Epochs, not datetime subtraction: within one ZoneInfo that is wall-clock and ignores DST.
        total = self.end_epoch - self.start_epoch
        done = min(max(at.timestamp(), self.start_epoch), self.end_epoch) - self.start_epoch
        return done / total if total > 0 else 1.0


def _month_start(year: int, month: int, day: int) -> dt.date:
    return dt.date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _monthly(index: int, day: int, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    year, month0 = divmod(index, 12)
    nyear, nmonth0 = divmod(index + 1, 12)
    start = local_midnight(_month_start(year, month0 + 1, day), tz)
    end = local_midnight(_month_start(nyear, nmonth0 + 1, day), tz)
    return start, end


def _period(cfg: CycleConfig, index: int, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    assert cfg.start is not None and cfg.length is not None
    first = cfg.start + dt.timedelta(days=index * cfg.length)
    return local_midnight(first, tz), local_midnight(first + dt.timedelta(days=cfg.length), tz)


def cycle_at(cfg: CycleConfig, at: dt.datetime, tz: ZoneInfo) -> Cycle:
    """The cycle holding ``at``; before the first cycle its first one (not_started), after a `once`
    period that period (expired)."""
    local = at.astimezone(tz)
    if cfg.kind == "monthly":
        index = local.year * 12 + local.month - 1
        start, end = _monthly(index, cfg.month_day, tz)
        if at < start:
            index -= 1
            start, end = _monthly(index, cfg.month_day, tz)
        return Cycle(start, end, index, "active")
    assert cfg.start is not None and cfg.length is not None
    start, end = _period(cfg, 0, tz)
    if at < start:
        return Cycle(start, end, 0, "not_started")
    if cfg.kind == "once":
        return Cycle(start, end, 0, "active" if at < end else "expired")
    index = (local.date() - cfg.start).days // cfg.length
    start, end = _period(cfg, index, tz)
    # A skipped local midnight can put `at` a little before the computed start.
    if at < start:
        index -= 1
        start, end = _period(cfg, index, tz)
    return Cycle(start, end, index, "active")


def previous_cycle(cfg: CycleConfig, cycle: Cycle, tz: ZoneInfo) -> Cycle | None:
    """The cycle before ``cycle``, or None when there is none (first `days` period, `once`)."""
    if cfg.kind == "once" or cycle.state == "not_started":
        return None
    if cfg.kind == "monthly":
        start, end = _monthly(cycle.index - 1, cfg.month_day, tz)
        return Cycle(start, end, cycle.index - 1, "active")
    if cycle.index == 0:
        return None
    start, end = _period(cfg, cycle.index - 1, tz)
    return Cycle(start, end, cycle.index - 1, "active")


def next_cycle(cfg: CycleConfig, cycle: Cycle, tz: ZoneInfo) -> Cycle | None:
    """The cycle after ``cycle`` (None after a `once` period)."""
    if cfg.kind == "once":
        return None
    if cfg.kind == "monthly":
        start, end = _monthly(cycle.index + 1, cfg.month_day, tz)
        return Cycle(start, end, cycle.index + 1, "active")
    start, end = _period(cfg, cycle.index + 1, tz)
    return Cycle(start, end, cycle.index + 1, "active")
