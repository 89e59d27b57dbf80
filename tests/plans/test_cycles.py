"""Cycle boundaries in the card's timezone: monthly day N (31 in February), days, once, DST."""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacap.plans.config import CycleConfig
from datacap.plans.cycles import cycle_at, next_cycle, previous_cycle

from .helpers import SH, t

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(("cfg", "at", "tz", "start", "end", "state"), [
    # monthly day 1 in Shanghai: the cycle starts at local midnight, 16:00 UTC the day before
    ({"day": 1}, "2026-11-25 12:00", SH, "2026-11-01 00:00", "2026-12-01 00:00", "active"),
    ({"day": 1}, "2026-11-30 23:59", SH, "2026-11-01 00:00", "2026-12-01 00:00", "active"),
    ({"day": 1}, "2026-12-01 00:00", SH, "2026-12-01 00:00", "2027-01-01 00:00", "active"),
    ({}, "2026-11-25 12:00", SH, "2026-11-01 00:00", "2026-12-01 00:00", "active"),
    # day 15: before the 15th the cycle began last month
    ({"day": 15}, "2026-11-14 23:59", SH, "2026-10-15 00:00", "2026-11-15 00:00", "active"),
    ({"day": 15}, "2026-11-15 00:00", SH, "2026-11-15 00:00", "2026-12-15 00:00", "active"),
    # day 31: a shorter month starts on its last day, the next goes back to the 31st
    ({"day": 31}, "2027-02-28 00:00", SH, "2027-02-28 00:00", "2027-03-31 00:00", "active"),
    ({"day": 31}, "2027-02-27 23:00", SH, "2027-01-31 00:00", "2027-02-28 00:00", "active"),
    ({"day": 31}, "2028-02-29 10:00", SH, "2028-02-29 00:00", "2028-03-31 00:00", "active"),
    ({"day": 31}, "2026-04-30 10:00", SH, "2026-04-30 00:00", "2026-05-31 00:00", "active"),
    ({"day": 30}, "2027-03-01 10:00", SH, "2027-02-28 00:00", "2027-03-30 00:00", "active"),
    # year boundary
    ({"day": 20}, "2027-01-05 10:00", SH, "2026-12-20 00:00", "2027-01-20 00:00", "active"),
    # DST: the New York cycle starts at local midnight whatever the offset
    ({"day": 1}, "2026-11-15 12:00", NY, "2026-11-01 00:00", "2026-12-01 00:00", "active"),
    ({"day": 10}, "2026-03-09 12:00", NY, "2026-02-10 00:00", "2026-03-10 00:00", "active"),
    # days: back-to-back periods from start
    ({"kind": "days", "start": dt.date(2026, 10, 20), "length": 30}, "2026-11-18 23:00", SH,
     "2026-10-20 00:00", "2026-11-19 00:00", "active"),
    ({"kind": "days", "start": dt.date(2026, 10, 20), "length": 30}, "2026-11-19 00:00", SH,
     "2026-11-19 00:00", "2026-12-19 00:00", "active"),
    ({"kind": "days", "start": dt.date(2026, 10, 20), "length": 30}, "2026-10-19 23:59", SH,
     "2026-10-20 00:00", "2026-11-19 00:00", "not_started"),
    ({"kind": "days", "start": dt.date(2026, 3, 1), "length": 7}, "2026-03-09 01:00", NY,
     "2026-03-08 00:00", "2026-03-15 00:00", "active"),
    # once: one validity period, then expired
    ({"kind": "once", "start": dt.date(2026, 10, 20), "length": 365}, "2027-10-19 23:59", SH,
     "2026-10-20 00:00", "2027-10-20 00:00", "active"),
    ({"kind": "once", "start": dt.date(2026, 10, 20), "length": 365}, "2027-10-20 00:00", SH,
     "2026-10-20 00:00", "2027-10-20 00:00", "expired"),
    ({"kind": "once", "start": dt.date(2026, 10, 20), "length": 365}, "2026-01-01 00:00", SH,
     "2026-10-20 00:00", "2027-10-20 00:00", "not_started"),
])
def test_cycle_at(cfg: dict[str, object], at: str, tz: ZoneInfo, start: str, end: str, state: str) -> None:
    cycle = cycle_at(CycleConfig.model_validate(cfg), t(at, tz), tz)
    assert (cycle.start, cycle.end, cycle.state) == (t(start, tz), t(end, tz), state)


def test_dst_cycle_length_is_wall_clock() -> None:
    # March in New York has 23 hours less one: the cycle is local midnight to local midnight.
    cycle = cycle_at(CycleConfig(day=1), t("2026-03-15 12:00", NY), NY)
    assert cycle.end_epoch - cycle.start_epoch == 31 * 86400 - 3600
    expected = (15.5 * 86400 - 3600) / (31 * 86400 - 3600)
    assert cycle.elapsed_fraction(t("2026-03-16 12:00", NY)) == pytest.approx(expected)
    assert cycle.start.utcoffset() == dt.timedelta(hours=-5)
    assert cycle.end.utcoffset() == dt.timedelta(hours=-4)


def test_previous_and_next() -> None:
    cfg = CycleConfig(day=31)
    feb = cycle_at(cfg, t("2027-03-10 00:00"), SH)
    prev = previous_cycle(cfg, feb, SH)
    assert prev is not None and prev.start == t("2027-01-31 00:00") and prev.end == feb.start
    nxt = next_cycle(cfg, feb, SH)
    assert nxt is not None and nxt.start == feb.end == t("2027-03-31 00:00")
    days = CycleConfig(kind="days", start=dt.date(2026, 10, 20), length=30)
    first = cycle_at(days, t("2026-10-25 00:00"), SH)
    assert previous_cycle(days, first, SH) is None
    once = CycleConfig(kind="once", start=dt.date(2026, 10, 20), length=30)
    assert next_cycle(once, cycle_at(once, t("2026-10-25 00:00"), SH), SH) is None


def test_elapsed_fraction() -> None:
    cfg = CycleConfig(kind="days", start=dt.date(2026, 11, 1), length=10)
    cycle = cycle_at(cfg, t("2026-11-03 12:00"), SH)
    assert cycle.elapsed_fraction(t("2026-11-03 12:00")) == pytest.approx(0.25)
    assert cycle.elapsed_fraction(t("2026-12-03 12:00")) == 1.0


ZONES = [SH, NY, ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Lord_Howe"), ZoneInfo("UTC")]
CONFIGS = st.one_of(
    st.builds(lambda d: CycleConfig(day=d), st.integers(1, 31)),
    st.builds(lambda s, n: CycleConfig(kind="days", start=s, length=n),
              st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)), st.integers(1, 400)),
)


@settings(max_examples=300, deadline=None)
@given(cfg=CONFIGS, tz=st.sampled_from(ZONES),
       instant=st.datetimes(dt.datetime(2021, 1, 1), dt.datetime(2031, 1, 1), timezones=st.just(dt.UTC)))
def test_cycle_properties(cfg: CycleConfig, tz: ZoneInfo, instant: dt.datetime) -> None:
    cycle = cycle_at(cfg, instant, tz)
    if cycle.state == "not_started":
        assert instant < cycle.start
        return
    assert cycle.start <= instant < cycle.end
    # cycles start at a local midnight (or the first instant of a day that skips it) and abut
    local = cycle.start.astimezone(tz)
    assert local.time() <= dt.time(1, 0) and (local - dt.timedelta(hours=1)).date() < local.date()
    nxt = next_cycle(cfg, cycle, tz)
    assert nxt is not None and nxt.start == cycle.end and nxt.end > nxt.start
    prev = previous_cycle(cfg, cycle, tz)
    assert prev is None or prev.end == cycle.start
    if cfg.kind == "monthly":
        assert local.day == min(cfg.month_day, calendar.monthrange(local.year, local.month)[1])
