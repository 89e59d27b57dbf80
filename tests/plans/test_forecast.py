"""The forecast: the model on its own, and through compute_status."""

from __future__ import annotations

import datetime as dt

import pytest

from datacap.plans import forecast as fc

from .helpers import GB, MB, SH, card, rec, status, t

MONDAY = dt.date(2026, 11, 2)


def days(values: list[float], first: dt.date = MONDAY) -> list[tuple[dt.date, float]]:
    return [(first + dt.timedelta(days=n), v) for n, v in enumerate(values)]


def test_no_history_no_model() -> None:
    assert fc.fit([]) is None


def test_constant_history() -> None:
    model = fc.fit(days([100.0] * 30))
    assert model is not None and model.level == pytest.approx(100.0)
    assert model.expected(dt.date(2026, 12, 5)) == pytest.approx(100.0)


def test_recent_days_weigh_more() -> None:
    model = fc.fit(days([100.0] * 5 + [200.0] * 3))
    assert model is not None and 137.5 < model.level < 200  # above the plain mean


def test_weekly_factors_need_two_weeks() -> None:
    week = [50.0] * 5 + [300.0] * 2
    short = fc.fit(days(week))
    assert short is not None and short.weekday_factor == short.weekend_factor == 1.0
    model = fc.fit(days(week * 4))
    assert model is not None
    assert 5 * model.weekday_factor + 2 * model.weekend_factor == pytest.approx(7.0)
    assert model.expected(dt.date(2026, 12, 5)) == pytest.approx(300.0)  # a Saturday
    assert model.expected(dt.date(2026, 12, 7)) == pytest.approx(50.0)  # a Monday


def test_half_life_follows_a_change_of_habit() -> None:
    model = fc.fit(days([100.0] * 40 + [400.0] * 10), horizon=10)
    assert model is not None and model.half_life <= 4 and model.level > 350


def test_project_over_dst_day_lengths() -> None:
    ny = __import__("zoneinfo").ZoneInfo("America/New_York")
    model = fc.DailyModel(2400.0)
    start = dt.datetime(2026, 3, 7, 12, tzinfo=ny)
    parts = fc.project(model, start, dt.datetime(2026, 3, 10, tzinfo=ny), ny, 0.0)
    assert [b - a for a, b, _ in parts] == [12 * 3600, 23 * 3600, 24 * 3600]
    assert [x for _, _, x in parts] == pytest.approx([1200.0, 2400.0, 2400.0])


def test_exhausted_at() -> None:
    segments = [(0, 100, 100.0), (100, 200, 100.0)]
    assert fc.exhausted_at(segments, [fc.Pool(0, 1000, 150.0)]) == 150
    assert fc.exhausted_at(segments, [fc.Pool(0, 1000, 500.0)]) is None
    assert fc.exhausted_at(segments, [fc.Pool(0, 1000, None)]) is None
    # a pool that lapses at 50 with 40 left: only 50 of it can be used before the other takes over
    assert fc.exhausted_at(segments, [fc.Pool(0, 50, 100.0), fc.Pool(0, 1000, 100.0)]) == 150
    assert fc.exhausted_at(segments, [fc.Pool(0, 1000, 0.0)]) == 0
    assert fc.exhausted_at(segments, []) is None


PLAN = 'buckets = [{name = "general", quota = "30 GB"}, {name = "qq", quota = "100 GB", apps = ["qq"]}]'


def test_status_forecast_steady_user() -> None:
    # 1 GB a day since October (scoped QQ use on top does not count toward the general quota)
    records = [rec("2026-10-01 00:00", 0)]
    start = t("2026-10-01 00:00")
    for n in range(55):
        day = (start + dt.timedelta(days=n)).strftime("%Y-%m-%d")
        records += [rec(f"{day} 12:00", GB), rec(f"{day} 13:00", GB // 2, app="qq")]
    s = status(card(PLAN), records, "2026-11-25 00:00")
    f = s["forecast"]
    # 24 GB general used by Nov 25; 6 days left at 1 GB/day: 30 GB runs out on Dec 1 00:00, the cycle end.
    assert f["exhausted_at"] is None
    assert f["cycle_end_used_bytes"] == pytest.approx(1.5 * GB * 30, rel=0.01)
    assert f["daily_budget_bytes"] == pytest.approx(6 * GB / 6, rel=0.01)
    s = status(card(PLAN.replace("30 GB", "27 GB")), records, "2026-11-25 00:00")
    assert s["forecast"]["exhausted_at"] == "2026-11-28T00:00:00+08:00"
    assert s["pace"]["elapsed_fraction"] == pytest.approx(0.8)


def test_status_forecast_without_history_is_the_straight_line() -> None:
    s = status(card(PLAN), [rec("2026-11-25 00:00", 600 * MB, 21600)], "2026-11-25 06:00",
               known_since=t("2026-11-25 00:00"))
    assert s["forecast"]["method"] == "straight-line"
    frac = s["cycle"]["elapsed_fraction"]
    assert s["forecast"]["cycle_end_used_bytes"] == pytest.approx(600 * MB / frac, rel=0.001)


def test_known_since_leaves_out_unknown_days() -> None:
    records = [rec("2026-11-20 12:00", GB), rec("2026-11-21 12:00", GB)]
    s = status(card(PLAN), records, "2026-11-22 00:00", known_since=t("2026-11-20 00:00"))
    # 2 complete days of 1 GB: 9 days left -> about 9 GB more, not diluted by weeks of "zero"
    assert s["forecast"]["cycle_end_used_bytes"] == pytest.approx(11 * GB, rel=0.01)
    diluted = status(card(PLAN), records, "2026-11-22 00:00")
    assert diluted["forecast"]["cycle_end_used_bytes"] < s["forecast"]["cycle_end_used_bytes"]


def test_expired_and_not_started() -> None:
    body = PLAN + '\n[cycle]\nkind = "once"\nstart = 2026-11-01\nlength = 10\n'
    expired = status(card(body), [rec("2026-11-05 12:00", GB)], "2026-11-25 00:00")
    assert expired["forecast"]["cycle_end_used_bytes"] == GB and expired["forecast"]["exhausted_at"] is None
    waiting = status(card(body), [], "2026-10-25 00:00")
    assert waiting["state"] == "not_started" and waiting["used_bytes"] == 0
    assert SH is not None


def test_trend_is_followed() -> None:
    history = days([100.0 + 10 * n for n in range(40)])
    model = fc.fit(history, horizon=14)
    assert model is not None and model.trend > 0
    last = history[-1][0]
    assert model.expected(last + dt.timedelta(days=10)) > model.expected(last + dt.timedelta(days=1)) > 480


def test_a_day_known_in_part_is_not_history() -> None:
    records = [rec("2026-11-20 18:00", GB // 4), rec("2026-11-21 12:00", GB)]
    s = status(card(PLAN), records, "2026-11-22 00:00", known_since=t("2026-11-20 15:00"))
    # one whole day of 1 GB is the history: 9 more such days, not a mean with the quarter day
    assert s["forecast"]["cycle_end_used_bytes"] == pytest.approx(GB // 4 + 10 * GB, rel=0.01)
