"""When to send: quiet hours and retry backoff, as pure functions of `now`."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from datacap.alerts.grammar import QuietHours


def release_time(now: dt.datetime, quiet: QuietHours | None, tz: ZoneInfo) -> dt.datetime:
    """``now`` outside quiet hours, else the (local) end of the current quiet window.

    The end is built from the local date and wall time, so a window ending at 07:00 ends at 07:00
    local time on DST days too.
    """
    if quiet is None:
        return now
    local = now.astimezone(tz)
    if not quiet.contains(local.time().replace(tzinfo=None)):
        return now
    end_day = local.date()
    if quiet.start > quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        end_day += dt.timedelta(days=1)  # in the evening part of a window that wraps past midnight
    end = dt.datetime.combine(end_day, quiet.end).replace(tzinfo=tz)
    # Normalise through UTC so a wall time in a DST gap lands on a real instant.
    return end.astimezone(dt.UTC).astimezone(tz)


def next_attempt(now: dt.datetime, attempts: int, initial_s: int, max_s: int) -> dt.datetime:
    """Exponential backoff after ``attempts`` failed attempts: initial, 2x, 4x ... capped at max."""
    delay = min(initial_s * 2 ** max(attempts - 1, 0), max_s)
    return now + dt.timedelta(seconds=delay)
