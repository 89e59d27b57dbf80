"""Period parsing and calendar arithmetic, as tables."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from datacap.errors import InputError
from datacap.reports.period import Period, choose_period, default_period, parse_period, parse_week

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(("text", "kind", "first", "end", "label"), [
    ("2026-11", "month", dt.date(2026, 11, 1), dt.date(2026, 12, 1), "2026-11"),
    ("2026-12", "month", dt.date(2026, 12, 1), dt.date(2027, 1, 1), "2026-12"),
    (" 2026-2 ", "month", dt.date(2026, 2, 1), dt.date(2026, 3, 1), "2026-02"),
    ("2026-W48", "week", dt.date(2026, 11, 23), dt.date(2026, 11, 30), "2026-W48"),
    ("2026w1", "week", dt.date(2025, 12, 29), dt.date(2026, 1, 5), "2026-W01"),
    ("2026-W53", "week", dt.date(2026, 12, 28), dt.date(2027, 1, 4), "2026-W53"),
])
def test_parse_period(text: str, kind: str, first: dt.date, end: dt.date, label: str) -> None:
    p = parse_period(text)
    assert (p.kind, p.first_day, p.end_day, p.label) == (kind, first, end, label)


@pytest.mark.parametrize(("text", "message"), [
    ("2026-00", "expected a month 01..12"),
    ("2026-13", "expected a month 01..12"),
    ("11/2026", "expected a month like 2026-11 or an ISO week like 2026-W48, found '11/2026'"),
    ("", "found ''"),
    ("2025-W53", "expected an ISO week 01..52 of 2025"),
    ("2026-W00", "expected an ISO week 01..53 of 2026"),
])
def test_parse_period_errors(text: str, message: str) -> None:
    with pytest.raises(InputError, match=r"^--period: ") as info:
        parse_period(text)
    assert message in str(info.value)


def test_parse_week_requires_a_week() -> None:
    assert parse_week("2026-W48") == Period("week", dt.date(2026, 11, 23))
    with pytest.raises(InputError, match=r"^--week: expected an ISO week like 2026-W48, found '2026-11'$"):
        parse_week("2026-11")


@pytest.mark.parametrize(("period", "count", "expected"), [
    (Period("month", dt.date(2026, 2, 1)), -3, Period("month", dt.date(2025, 11, 1))),
    (Period("month", dt.date(2026, 11, 1)), 2, Period("month", dt.date(2027, 1, 1))),
    (Period("week", dt.date(2026, 1, 5)), -2, Period("week", dt.date(2025, 12, 22))),
])
def test_shifted(period: Period, count: int, expected: Period) -> None:
    assert period.shifted(count) == expected


def test_earlier_is_most_recent_first() -> None:
    labels = [p.label for p in Period("month", dt.date(2026, 2, 1)).earlier(3)]
    assert labels == ["2026-01", "2025-12", "2025-11"]


@pytest.mark.parametrize(("now", "tz", "kind", "label"), [
    # 2026-11-30 20:00 UTC is already December 1st in Shanghai: November is complete there.
    (dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.UTC), SH, "month", "2026-11"),
    (dt.datetime(2026, 11, 30, 20, 0, tzinfo=dt.UTC), NY, "month", "2026-10"),
    (dt.datetime(2026, 1, 15, tzinfo=dt.UTC), SH, "month", "2025-12"),
    (dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC), SH, "week", "2026-W47"),  # a Sunday: W48 not over
    (dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC), SH, "week", "2026-W48"),
])
def test_default_period(now: dt.datetime, tz: ZoneInfo, kind: str, label: str) -> None:
    assert default_period(kind, now, tz).label == label  # type: ignore[arg-type]


def test_bounds_are_local_midnights_across_dst() -> None:
    since, until = Period("month", dt.date(2026, 11, 1)).bounds(NY)  # DST ends on 2026-11-01
    assert since.isoformat() == "2026-11-01T00:00:00-04:00"
    assert until.isoformat() == "2026-12-01T00:00:00-05:00"
    assert until.timestamp() - since.timestamp() == (30 * 24 + 1) * 3600


def test_choose_period() -> None:
    now = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
    assert choose_period(None, None, now, SH).label == "2026-10"
    assert choose_period("2026-11", None, now, SH).label == "2026-11"  # the current month, so far
    assert choose_period(None, "2026-W48", now, SH).label == "2026-W48"
    with pytest.raises(InputError, match="has not started yet"):
        choose_period("2026-12", None, now, SH)
    with pytest.raises(InputError, match="found both"):
        choose_period("2026-10", "2026-W40", now, SH)
