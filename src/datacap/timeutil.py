"""Local calendar buckets (5 minutes to a year) in an IANA timezone, correct across DST and :30/:45 zones.

Every bucket is stored by the UTC epoch second of its local start. Because every zone in use today
has an offset that is a multiple of 15 minutes, a 5-minute bucket is the same in UTC and in local
time, so each 5-minute bucket nests in exactly one local hour, day, week, month and year: rollups
are sums over 5-minute buckets, whatever the zone. A local hour that happens twice (DST fall-back)
is two buckets; a local hour that does not exist (spring-forward) is none.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from datacap.errors import ConfigError, InputError

Resolution = Literal["5min", "hour", "day", "week", "month", "year"]
RESOLUTIONS: tuple[Resolution, ...] = ("5min", "hour", "day", "week", "month", "year")
FIVE_MINUTES = 300
UTC = dt.UTC
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def system_timezone_name() -> str:
    """The system's IANA zone: $TZ, /etc/timezone, the /etc/localtime link; UTC when none says."""
    env = os.environ.get("TZ", "").lstrip(":")
    if env and _is_zone(env):
        return env
    try:
        name = Path("/etc/timezone").read_text().strip()
        if _is_zone(name):
            return name
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            name = target.split("zoneinfo/", 1)[1]
            if _is_zone(name):
                return name
    except OSError:
        pass
    return "UTC"


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone: expected an IANA zone name like 'Asia/Shanghai', found {name!r}") from None


def local_midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The first instant of a local date (01:00 where midnight is skipped by DST)."""
    naive = dt.datetime.combine(day, dt.time())
    # fold=0 on a skipped midnight takes the offset before the jump, which lands on the first real instant.
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def bucket_start(res: Resolution, instant: dt.datetime, tz: ZoneInfo, week_start: int = 0) -> dt.datetime:
    """The local start (aware, in ``tz``) of the bucket of resolution ``res`` holding ``instant``."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    epoch = int(instant.timestamp())
    if res == "5min":
        return dt.datetime.fromtimestamp(epoch - epoch % FIVE_MINUTES, tz)
    local = instant.astimezone(tz)
    if res == "hour":
        offset = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]
        wall = epoch + offset
        return dt.datetime.fromtimestamp(wall - wall % 3600 - offset, tz)
    day = local.date()
    if res == "week":
        day -= dt.timedelta(days=(day.weekday() - week_start) % 7)
    elif res == "month":
        day = day.replace(day=1)
    elif res == "year":
        day = day.replace(month=1, day=1)
    return local_midnight(day, tz)


def bucket_end(res: Resolution, start: dt.datetime, tz: ZoneInfo, week_start: int = 0) -> dt.datetime:
    """The start of the next bucket after the one starting at ``start``."""
    if res == "5min":
        # Aware arithmetic in one tzinfo is wall-clock arithmetic in Python: step in UTC instead.
        return (start.astimezone(UTC) + dt.timedelta(seconds=FIVE_MINUTES)).astimezone(tz)
    if res == "hour":
        # Normally +1 h; zones with 30-minute DST shifts make a local hour 30 or 90 minutes long.
        probe = start.astimezone(UTC) + dt.timedelta(hours=1)
        nxt = bucket_start("hour", probe, tz)
        return nxt if nxt > start else bucket_start("hour", probe + dt.timedelta(minutes=30), tz)
    day = start.astimezone(tz).date()
    if res == "day":
        nxt_day = day + dt.timedelta(days=1)
    elif res == "week":
        nxt_day = day + dt.timedelta(days=7)
    elif res == "month":
        nxt_day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    else:
        nxt_day = day.replace(year=day.year + 1, month=1, day=1)
    return local_midnight(nxt_day, tz)


def iter_buckets(res: Resolution, since: dt.datetime, until: dt.datetime, tz: ZoneInfo,
                 week_start: int = 0) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Every bucket overlapping [since, until), oldest first, as (start, end)."""
    start = bucket_start(res, since, tz, week_start)
    while start < until:
        end = bucket_end(res, start, tz, week_start)
        yield start, end
        start = end


def epoch(instant: dt.datetime) -> int:
    return int(instant.timestamp())


def from_epoch(seconds: float, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz)


def iso(instant: dt.datetime) -> str:
    """ISO 8601 with offset, no microseconds: ``2026-11-29T00:00:00+08:00``."""
    return instant.replace(microsecond=0).isoformat()


def parse_instant(text: str, tz: ZoneInfo, *, what: str = "time") -> dt.datetime:
    """An ISO 8601 date or datetime; a naive one is read in ``tz``; a date means its local midnight."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            _plausible_year(day.year, what, text)
            return local_midnight(day, tz)
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{what}: expected an ISO 8601 date or time like 2026-11-29 or "
                         f"2026-11-29T08:00:00+08:00, found {text!r}") from None
    _plausible_year(parsed.year, what, text)
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)


FIRST_YEAR, LAST_YEAR = 1970, 2100  # no usage exists before the epoch; past 2100 is a typo


def _plausible_year(year: int, what: str, text: str) -> None:
    """Years outside 1970-2100 are refused: 0001-01-01 or 9999-12-31 would overflow every
    conversion to epoch seconds or to another zone that follows."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InputError(f"{what}: expected a date from {FIRST_YEAR} to {LAST_YEAR}, found {text!r}")


def spread(start: float, end: float, amount: int) -> list[tuple[int, int]]:
    """Split ``amount`` bytes used evenly over [start, end) (epoch seconds) into 5-minute buckets.

    Returns (bucket_epoch, bytes) pairs whose bytes sum to exactly ``amount``: the rounding remainder
    goes to the last bucket. An empty or reversed interval puts everything in the bucket of ``end``.
    """
    if amount == 0:
        return []
    if end <= start:
        return [(int(end // FIVE_MINUTES) * FIVE_MINUTES, amount)]
    # The bucket holding `end` itself only counts when `end` is strictly inside it.
    end_bucket = int(end // FIVE_MINUTES) * FIVE_MINUTES
    if end_bucket == end:
        end_bucket -= FIVE_MINUTES
    first = int(start // FIVE_MINUTES) * FIVE_MINUTES
    total = end - start
    out: list[tuple[int, int]] = []
    given = 0
    bucket = first
    while bucket < end_bucket:
        overlap = min(end, bucket + FIVE_MINUTES) - max(start, bucket)
        share = int(amount * overlap // total)
        if share:
            out.append((bucket, share))
            given += share
        bucket += FIVE_MINUTES
    out.append((end_bucket, amount - given))
    return out
