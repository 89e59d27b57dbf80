"""Report periods: a calendar month (``2026-11``) or an ISO week (``2026-W48``), in the local zone.

Pure: parsing and calendar arithmetic only. A period's instants are the local midnights that open
and close it, so they agree with the store's day/week/month buckets and with ``--since/--until``.
ISO weeks always start on Monday, whatever ``week_start`` the config sets, because that is what the
ISO label means.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from datacap.errors import InputError
from datacap.timeutil import local_midnight

PeriodKind = Literal["month", "week"]
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_WEEK = re.compile(r"^(\d{4})-?[Ww](\d{1,2})$")


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One month or ISO week; ``first_day`` is the 1st of the month or the week's Monday."""

    kind: PeriodKind
    first_day: dt.date

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.first_day:%Y-%m}"
        year, week, _ = self.first_day.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def end_day(self) -> dt.date:
        """The first day after the period."""
        if self.kind == "week":
            return self.first_day + dt.timedelta(days=7)
        return _add_months(self.first_day, 1)

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days

    def bounds(self, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """[since, until) as aware local instants."""
        return local_midnight(self.first_day, tz), local_midnight(self.end_day, tz)

    def shifted(self, count: int) -> Period:
        """The period ``count`` periods later (negative: earlier)."""
        if self.kind == "week":
            return Period("week", self.first_day + dt.timedelta(days=7 * count))
        return Period("month", _add_months(self.first_day, count))

    def earlier(self, count: int) -> list[Period]:
        """Up to ``count`` periods before this one, most recent first."""
        return [self.shifted(-i) for i in range(1, count + 1)]


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def parse_period(text: str, *, option: str = "--period") -> Period:
    """``2026-11`` -> that month; ``2026-W48`` -> that ISO week. Raises InputError saying what was expected."""
    value = text.strip()
    month = _MONTH.match(value)
    if month:
        year, number = int(month.group(1)), int(month.group(2))
        if not 1 <= number <= 12:
            raise InputError(f"{option}: expected a month 01..12 like 2026-11, found {text!r}")
        return Period("month", dt.date(year, number, 1))
    week = _WEEK.match(value)
    if week:
        return _iso_week(int(week.group(1)), int(week.group(2)), text, option)
    raise InputError(f"{option}: expected a month like 2026-11 or an ISO week like 2026-W48, found {text!r}")


def parse_week(text: str) -> Period:
    """``--week 2026-W48`` (the ``W`` is required here so a month is never taken for a week)."""
    week = _WEEK.match(text.strip())
    if not week:
        raise InputError(f"--week: expected an ISO week like 2026-W48, found {text!r}")
    return _iso_week(int(week.group(1)), int(week.group(2)), text, "--week")


def _iso_week(year: int, number: int, text: str, option: str) -> Period:
    try:
        monday = dt.date.fromisocalendar(year, number, 1)
    except ValueError:
        last = dt.date(year, 12, 28).isocalendar()[1]
        raise InputError(f"{option}: expected an ISO week 01..{last} of {year}, found {text!r}") from None
    return Period("week", monday)


def default_period(kind: PeriodKind, now: dt.datetime, tz: ZoneInfo) -> Period:
    """The last complete month (or ISO week) before ``now``, in local time."""
    today = now.astimezone(tz).date()
    if kind == "week":
        return Period("week", today - dt.timedelta(days=today.weekday() + 7))
    return Period("month", _add_months(today.replace(day=1), -1))


def choose_period(period: str | None, week: str | None, now: dt.datetime, tz: ZoneInfo,
                  default_kind: PeriodKind = "month") -> Period:
    """What ``--period`` / ``--week`` ask for; neither means the last complete month (or week)."""
    if period is not None and week is not None:
        raise InputError("--period and --week: expected one of them, found both")
    if week is not None:
        chosen = parse_week(week)
    elif period is not None:
        chosen = parse_period(period)
    else:
        return default_period(default_kind, now, tz)
    since, _ = chosen.bounds(tz)
    if since > now:
        raise InputError(f"{'--week' if week else '--period'}: {chosen.label} has not started yet "
                         f"(today is {now.astimezone(tz).date().isoformat()})")
    return chosen
