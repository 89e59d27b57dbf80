from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datacap.alerts.config import AlertRule, parse_quiet_hours
from datacap.alerts.rules import AlertInputs, StoredState, decide, evaluate_all
from datacap.alerts.schedule import next_attempt, release_time

from .helpers import GiB, bucket, card, status

SH = ZoneInfo("Asia/Shanghai")
BER = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(("local", "window", "tz", "released"), [
    ("2026-11-25T22:59", "23:00-07:00", SH, "2026-11-25T22:59:00+08:00"),
    ("2026-11-25T23:00", "23:00-07:00", SH, "2026-11-26T07:00:00+08:00"),
    ("2026-11-26T03:00", "23:00-07:00", SH, "2026-11-26T07:00:00+08:00"),
    ("2026-11-26T07:00", "23:00-07:00", SH, "2026-11-26T07:00:00+08:00"),
    ("2026-11-26T13:00", "12:00-14:00", SH, "2026-11-26T14:00:00+08:00"),
    # the night the clocks go back in Berlin: the window still ends at 07:00 local (UTC+1 by then)
    ("2026-10-24T23:30", "23:00-07:00", BER, "2026-10-25T07:00:00+01:00"),
])
def test_release_time(local: str, window: str, tz: ZoneInfo, released: str) -> None:
    now = dt.datetime.fromisoformat(local).replace(tzinfo=tz)
    assert release_time(now, parse_quiet_hours(window), tz).isoformat() == released


def test_no_quiet_hours_means_now() -> None:
    now = dt.datetime(2026, 11, 26, 3, tzinfo=SH)
    assert release_time(now, None, SH) == now


@pytest.mark.parametrize(("attempts", "delay"), [(1, 30), (2, 60), (3, 120), (6, 960), (7, 1800), (30, 1800)])
def test_backoff_doubles_up_to_the_cap(attempts: int, delay: int) -> None:
    now = dt.datetime(2026, 11, 26, tzinfo=SH)
    assert next_attempt(now, attempts, 30, 1800) - now == dt.timedelta(seconds=delay)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 100)), min_size=1, max_size=40))
def test_fires_exactly_once_per_crossing(steps: list[tuple[int, int]]) -> None:
    """Over any sequence of (cycle, percent used), the rule fires exactly when the condition turns
    true (or is true in a new cycle), never twice in a row."""
    rules = [AlertRule(when="used > 80%", id="r")]
    stored: dict[tuple[str, str, str], StoredState] = {}
    prev: tuple[int, bool] | None = None
    cycle_now = 0
    for cycle_step, pct in steps:
        cycle_now += cycle_step  # cycles only move forward
        start = dt.datetime(2026, 1, 1, tzinfo=SH) + dt.timedelta(days=30 * cycle_now)
        c = card(buckets=[bucket("通用", 100 * GiB, pct * GiB)], start=start.isoformat(),
                 end=(start + dt.timedelta(days=30)).isoformat())
        at = start + dt.timedelta(days=1)
        ev = evaluate_all(rules, AlertInputs(status(c)), at)
        d = decide(ev, stored)
        holds = pct > 80
        expected = holds and (prev is None or not prev[1] or prev[0] != cycle_now)
        assert bool(d.fire) == expected
        for f in d.fire:
            stored[f.key] = StoredState(f.rule_key, f.card, f.subject, f.period, "fired")
        for s in d.clear:
            stored[(s.rule_key, s.card, s.subject)] = StoredState(s.rule_key, s.card, s.subject, s.period,
                                                                  "cleared")
        prev = (cycle_now, holds)
