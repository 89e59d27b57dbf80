"""Local calendar buckets across DST changes and in zones with :30 and :45 offsets."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacap.errors import InputError
from datacap.store.writer import Rollups
from datacap.timeutil import (
    UTC,
    bucket_end,
    bucket_start,
    iter_buckets,
    local_midnight,
    parse_instant,
    spread,
)

BERLIN, NEW_YORK, KOLKATA, KATHMANDU = (ZoneInfo(z) for z in
                                        ("Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu"))


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("tz", "day", "hours"), [
    (BERLIN, dt.date(2026, 3, 29), 23),  # spring forward
    (BERLIN, dt.date(2026, 10, 25), 25),  # fall back
    (NEW_YORK, dt.date(2026, 3, 8), 23),
    (NEW_YORK, dt.date(2026, 11, 1), 25),
    (KOLKATA, dt.date(2026, 3, 29), 24),
])
def test_day_length_across_dst(tz: ZoneInfo, day: dt.date, hours: int) -> None:
    start = local_midnight(day, tz)
    end = bucket_end("day", start, tz)
    assert end.timestamp() - start.timestamp() == hours * 3600  # same-tzinfo subtraction is wall time
    assert len(list(iter_buckets("hour", start, end, tz))) == hours


def test_fall_back_hour_is_two_buckets() -> None:
    first = bucket_start("hour", utc(2026, 10, 25, 0, 30), BERLIN)  # 02:30 CEST
    second = bucket_start("hour", utc(2026, 10, 25, 1, 30), BERLIN)  # 02:30 CET
    assert first.hour == second.hour == 2
    assert second.timestamp() - first.timestamp() == 3600


def test_kolkata_hours_start_at_half_past_utc() -> None:
    start = bucket_start("hour", utc(2026, 1, 1, 5, 10), KOLKATA)
    assert start.astimezone(UTC) == utc(2026, 1, 1, 4, 30)
    assert bucket_end("hour", start, KOLKATA).astimezone(UTC) == utc(2026, 1, 1, 5, 30)


@pytest.mark.parametrize(("tz", "instant", "day_utc", "month_utc"), [
    (KOLKATA, utc(2026, 2, 28, 19, 0), utc(2026, 2, 28, 18, 30), utc(2026, 2, 28, 18, 30)),  # 00:30 IST Mar 1
    (KATHMANDU, utc(2026, 6, 15, 12, 0), utc(2026, 6, 14, 18, 15), utc(2026, 5, 31, 18, 15)),
    (NEW_YORK, utc(2026, 11, 1, 3, 0), utc(2026, 10, 31, 4, 0), utc(2026, 10, 1, 4, 0)),  # 23:00 EDT Oct 31
])
def test_days_and_months_in_odd_offsets(tz: ZoneInfo, instant: dt.datetime, day_utc: dt.datetime,
                                        month_utc: dt.datetime) -> None:
    assert bucket_start("day", instant, tz).astimezone(UTC) == day_utc
    assert bucket_start("month", instant, tz).astimezone(UTC) == month_utc


def test_week_start_is_configurable() -> None:
    wed = utc(2026, 11, 25, 12)
    assert bucket_start("week", wed, BERLIN, week_start=0).date() == dt.date(2026, 11, 23)  # Monday
    assert bucket_start("week", wed, BERLIN, week_start=6).date() == dt.date(2026, 11, 22)  # Sunday


def test_month_across_dst_in_berlin() -> None:
    start = bucket_start("month", utc(2026, 10, 10), BERLIN)
    end = bucket_end("month", start, BERLIN)
    assert (start.isoformat(), end.isoformat()) == ("2026-10-01T00:00:00+02:00", "2026-11-01T00:00:00+01:00")


def test_parse_instant() -> None:
    assert parse_instant("2026-11-29", KOLKATA).isoformat() == "2026-11-29T00:00:00+05:30"
    assert parse_instant("2026-11-29T08:00:00Z", KOLKATA).astimezone(UTC) == utc(2026, 11, 29, 8)
    with pytest.raises(InputError, match="expected an ISO 8601"):
        parse_instant("yesterday", KOLKATA)


@given(st.integers(0, 10**7), st.floats(0, 10**5), st.floats(0.001, 10**5), st.integers(0, 10**12))
def test_spread_conserves_bytes(base: int, offset: float, length: float, amount: int) -> None:
    start = 1_700_000_000 + base + offset
    parts = spread(start, start + length, amount)
    assert sum(p for _, p in parts) == amount
    assert all(b % 300 == 0 and p >= 0 for b, p in parts)
    if parts:
        assert start - 300 < parts[0][0] and parts[-1][0] < start + length  # every bucket overlaps the span


def test_spread_is_proportional() -> None:
    assert spread(0, 600, 1000) == [(0, 500), (300, 500)]
    assert spread(250, 350, 100) == [(0, 50), (300, 50)]
    assert spread(100, 100, 7) == [(0, 7)]


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK, KOLKATA, KATHMANDU, ZoneInfo("Australia/Lord_Howe")])
def test_writer_rollups_match_calendar_for_a_whole_year(tz: ZoneInfo) -> None:
    """The writer's cached rollup mapping must agree with the reference functions at every 5 minutes."""
    rollups = Rollups(tz)
    start = int(utc(2026, 1, 1).timestamp())
    for bucket in range(start, start + 366 * 86400, 300 * 7):  # every 35 min: hits every hour offset
        bucket -= bucket % 300
        instant = dt.datetime.fromtimestamp(bucket, UTC)
        expected = tuple((res, int(bucket_start(res, instant, tz).timestamp()))
                         for res in ("5min", "hour", "day", "week", "month", "year"))
        assert rollups.starts(bucket) == expected, instant
