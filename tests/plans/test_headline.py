"""The headline of the status model (state, general quota, run-out, throttle, daily budget) and the
forecast per bucket and to the throttle (issue #10 items 6 and 7), from real engine runs."""

from __future__ import annotations

import datetime as dt

import pytest

from datacap.model import UsageRecord

from .helpers import GB, MB, card, model, rec, t

PLAN = '''
throttle = {after = "%s", rate = "1 Mbit/s"}
overage = {price = 0.01, per = "1 MB", currency = "CNY"}

[[buckets]]
name = "通用"
quota = "%s"

[[buckets]]
name = "腾讯定向"
quota = "%s"
services = ["tencent"]
'''


def plan(general: str = "1 GB", scoped: str = "10 GB", throttle: str = "100 GB") -> str:
    return PLAN % (throttle, general, scoped)


def daily(first: int, last: int, size: int, **kw: object) -> list[UsageRecord]:
    return [rec(f"2026-11-{d:02d} 10:00", size, **kw) for d in range(first, last + 1)]  # type: ignore[arg-type]


def test_ok_lasts_the_cycle_and_leaves_the_scoped_quota_out() -> None:
    st = model(card(plan()), daily(1, 10, 5 * MB) + daily(1, 10, 300 * MB, service="tencent"), "2026-11-11 00:00")
    h = st.headline
    assert h.state == "ok" and h.lasts_cycle and h.runs_out is None and h.throttle_from is None
    assert (h.general.quota, h.general.used, h.general.left) == (GB, 50 * MB, GB - 50 * MB)  # 定向 not in it
    assert h.general.used_pct == round(100 * 50 / 1024, 1) and h.elapsed_pct == round(100 * 10 / 30, 1)
    assert st.forecast.budget_limit == "general" and h.daily_budget == (GB - 50 * MB) // 20
    assert st.to_json()["headline"]["pace"] == {"used_pct": h.general.used_pct, "elapsed_pct": h.elapsed_pct}


def test_low_when_under_a_fifth_is_left() -> None:
    st = model(card(plan()), [rec("2026-11-01 10:00", 900 * MB)], "2026-11-11 00:00")
    assert st.headline.state == "low" and st.headline.general.left == 124 * MB


def test_low_when_the_forecast_runs_out_before_the_cycle_ends() -> None:
    st = model(card(plan()), daily(1, 10, 60 * MB), "2026-11-11 00:00")
    h = st.headline
    assert h.state == "low" and not h.lasts_cycle and h.runs_out is not None
    # 424 MiB left at about 60 MiB a day: about seven days
    assert t("2026-11-17 00:00") < h.runs_out < t("2026-11-19 00:00")
    assert st.bucket("通用") is not None and st.bucket("通用").runs_out == h.runs_out  # type: ignore[union-attr]


def test_exhausted_says_when_it_ran_out_not_now() -> None:
    st = model(card(plan()), [rec("2026-11-02 10:00", GB)], "2026-11-11 00:00")
    h = st.headline
    assert h.state == "exhausted" and h.general.left == 0 and not h.lasts_cycle
    assert h.runs_out == t("2026-11-02 11:00")  # the hour that used it up ended at 11:00
    assert h.daily_budget == 0


def test_overage_with_its_cost_and_the_instant_it_began() -> None:
    st = model(card(plan()), [rec("2026-11-02 10:00", 2 * GB)], "2026-11-11 00:00")
    h = st.headline
    assert h.state == "overage" and st.overage_bytes == GB
    assert h.runs_out == t("2026-11-02 10:30")  # half of the hour's 2 GiB filled the 1 GiB
    assert h.overage is not None and (h.overage.bytes, h.overage.currency) == (GB, "CNY")
    assert h.overage.cost == st.overage_cost == pytest.approx(1024 * 0.01)


def test_throttled_wins_over_everything() -> None:
    st = model(card(plan(throttle="1500 MB")), [rec("2026-11-02 10:00", 2 * GB)], "2026-11-11 00:00")
    h = st.headline
    assert st.throttled and h.state == "throttled"
    assert st.throttle is not None and h.throttle_from == st.throttle.since
    assert h.throttle_from == t("2026-11-02 10:00") + dt.timedelta(seconds=3600 * 1500 // 2048)


def test_throttle_forecast_and_the_budget_to_the_earlier_limit() -> None:
    """The throttle comes before the general quota runs out: status says when, and the daily budget
    keeps to the throttle (the day before it the budget must not say "lasts the cycle")."""
    st = model(card(plan(general="5 GB", throttle="2 GB")), daily(1, 10, 100 * MB), "2026-11-11 00:00")
    fc, h = st.forecast, st.headline
    assert fc.exhausted_at is None and st.bucket("通用").runs_out is None  # type: ignore[union-attr]
    assert fc.throttle_at is not None and t("2026-11-20 00:00") < fc.throttle_at < t("2026-11-23 00:00")
    assert st.throttle is not None and st.throttle.starts_at == fc.throttle_at == h.throttle_from
    assert fc.budget_limit == "throttle" and fc.daily_budget_bytes == (2 * GB - 1000 * MB) // 20
    assert h.state == "low" and not h.lasts_cycle and h.runs_out is None
    doc = st.to_json()
    assert doc["forecast"]["throttle_at"] == doc["throttle"]["starts_at"] == doc["headline"]["throttle_from"]
    # The day before: still a forecast; the day after: throttled since then, no forecast left.
    before = model(card(plan(general="5 GB", throttle="2 GB")), daily(1, 20, 100 * MB), "2026-11-20 12:00")
    assert before.forecast.throttle_at is not None and before.headline.throttle_from is not None
    after = model(card(plan(general="5 GB", throttle="2 GB")), daily(1, 22, 100 * MB), "2026-11-23 00:00")
    assert after.throttled and after.forecast.throttle_at is None and after.headline.state == "throttled"
    # 2000 MiB by the 20th; the 21st's hour of 100 MiB crossed 2048 MiB 48/100 of the way in.
    assert after.headline.throttle_from == t("2026-11-21 10:28:48")


def test_forecast_per_scoped_bucket() -> None:
    st = model(card(plan(scoped="600 MB")), daily(1, 10, 40 * MB, service="tencent"), "2026-11-11 00:00")
    scoped = st.bucket("腾讯定向")
    assert scoped is not None and scoped.remaining_bytes == 200 * MB and not scoped.general
    assert scoped.runs_out is not None and t("2026-11-15 00:00") < scoped.runs_out < t("2026-11-17 00:00")
    assert st.headline.state == "ok" and st.headline.runs_out is None  # the general quota is untouched


def test_before_and_after_a_once_card() -> None:
    body = plan() + '[cycle]\nkind = "once"\nstart = 2026-12-01\nlength = 7\n'
    assert model(card(body), [], "2026-11-25 12:00").headline.state == "ok"
    gone = model(card(body), [rec("2026-12-02 10:00", 10 * MB)], "2026-12-10 12:00")
    assert gone.state == "expired" and gone.headline.state == "exhausted"


def test_json_keeps_the_documented_keys() -> None:
    doc = model(card(plan()), daily(1, 3, MB), "2026-11-11 00:00").to_json()
    assert {"name", "label", "state", "cycle", "used_bytes", "buckets", "overage_bytes", "overage_cost", "currency",
            "throttled", "throttle", "pace", "forecast", "calibration", "headline", "carrier_mismatch",
            "rollover_unknown"} == set(doc)
    assert set(doc["headline"]) == {"state", "general", "pace", "runs_out", "throttle_from", "lasts_cycle",
                                    "daily_budget", "overage"}
    assert set(doc["headline"]["general"]) == {"quota", "used", "left", "used_pct"}
    assert doc["carrier_mismatch"] == []
    assert isinstance(dt.datetime.fromisoformat(doc["cycle"]["end"]), dt.datetime)
