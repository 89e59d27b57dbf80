"""Properties of the charging engine over random usage (hypothesis)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datacap.model import UsageRecord
from datacap.plans.config import CardConfig

from .helpers import MB, card, status, t

PLANS = [
    card("""
[[buckets]]
name = "tencent"
quota = "300 MB"
apps = ["wechat"]
[[buckets]]
name = "night"
quota = "200 MB"
hours = "23:00-07:00"
[[buckets]]
name = "general"
quota = "500 MB"
rollover = true
[[packs]]
name = "boost"
quota = "150 MB"
start = 2026-11-10T10:00:00+08:00
days = 7
[[packs]]
name = "spanning"
quota = "200 MB"
start = 2026-10-30T00:00:00+08:00
days = 5
[[packs]]
name = "wechat-pack"
quota = "50 MB"
apps = ["wechat"]
start = 2026-10-28T00:00:00+08:00
end = 2026-11-03T12:00:00+08:00
[overage]
price = 0.29
per = "1 MB"
block = "100 MB"
block_cap = 5.0
daily_cap = 8.0
currency = "CNY"
"""),
    card("""
[cycle]
kind = "days"
start = 2026-09-10
length = 10
[[buckets]]
name = "all"
quota = "400 MB"
rollover = true
[[buckets]]
name = "video"
quota = "100 MB"
services = ["video"]
priority = 5
[throttle]
after = "300 MB"
rate = "1 Mbit/s"
"""),
    card("""
[cycle]
day = 31
[[buckets]]
name = "unl"
quota = "unlimited"
hours = "01:00-06:00"
[[buckets]]
name = "base"
quota = "1 GB"
"""),
]
START = int(t("2026-09-01 00:00").timestamp())
AT = "2026-11-25 12:00"

records_strategy = st.lists(
    st.builds(
        lambda hour, minute, seconds, nbytes, who: UsageRecord(
            START + hour * 3600 + minute * 300, seconds, "wwan0", nbytes, nbytes // 7,
            app=who[0], service=who[1]),
        st.integers(0, 24 * 86), st.integers(0, 11), st.sampled_from([0, 300, 3600, 7200, 86400]),
        st.integers(0, 120 * MB),
        st.sampled_from([(None, None), ("wechat", None), ("firefox", "video"), ("mpv", None)]),
    ),
    max_size=40,
)
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _remaining(s: dict[str, Any]) -> dict[tuple[str, str], int | None]:
    return {(b["name"], b["kind"]): b["remaining_bytes"] for b in s["buckets"]}


@SETTINGS
@given(plan=st.sampled_from(PLANS), records=records_strategy)
def test_every_byte_charged_once(plan: CardConfig, records: list[UsageRecord]) -> None:
    s = status(plan, records, AT)
    assert sum(b.get("used_in_cycle_bytes", b["used_bytes"]) for b in s["buckets"]) + s["overage_bytes"] \
        == s["used_bytes"]
    cs, at = int(t(s["cycle"]["start"][:16].replace("T", " ")).timestamp()), int(t(AT).timestamp())
    naive = 0.0
    for r in records:
        end = r.start + r.seconds
        if r.seconds == 0:
            naive += r.total_bytes if cs <= r.start < at else 0
        else:
            naive += r.total_bytes * max(0, min(end, at) - max(r.start, cs)) / r.seconds
    assert abs(s["used_bytes"] - naive) <= 4 * len(records) + 1  # integer shares of split records
    for b in s["buckets"]:
        assert b["used_bytes"] >= 0
        if b["quota_bytes"] is not None:
            assert b["used_bytes"] <= b["quota_bytes"]
            assert b["remaining_bytes"] == b["quota_bytes"] - b["used_bytes"]


@SETTINGS
@given(plan=st.sampled_from(PLANS), records=records_strategy, seed=st.integers(0, 2**16))
def test_deterministic_and_order_independent(plan: CardConfig, records: list[UsageRecord], seed: int) -> None:
    first = status(plan, records, AT)
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    assert status(plan, shuffled, AT) == first
    assert status(plan, records, AT) == first


@SETTINGS
@given(plan=st.sampled_from(PLANS), records=records_strategy, extra=records_strategy)
def test_more_usage_never_increases_remaining(plan: CardConfig, records: list[UsageRecord],
                                              extra: list[UsageRecord]) -> None:
    before = status(plan, records, AT)
    after = status(plan, records + extra, AT)
    left_after = _remaining(after)
    for key, left in _remaining(before).items():
        if left is None:
            continue
        # a rolled-over quota that shrank to nothing is no longer listed
        assert (left_after.get(key) or 0) <= left, key
    assert after["used_bytes"] >= before["used_bytes"]
    assert after["overage_bytes"] >= before["overage_bytes"]
    assert after["overage_cost"] >= before["overage_cost"]


@SETTINGS
@given(plan=st.sampled_from(PLANS), records=records_strategy)
def test_records_needed_is_enough(plan: CardConfig, records: list[UsageRecord]) -> None:
    from datacap.plans.engine import records_needed

    from .helpers import SH

    since, until = records_needed(plan, t(AT), SH)
    lo, hi = int(since.timestamp()), int(until.timestamp())
    needed = [r for r in records if r.start < hi and (r.start + r.seconds > lo or r.start == lo)]
    assert status(plan, needed, AT) == status(plan, records, AT)


@SETTINGS
@given(plan=st.sampled_from(PLANS[:2]), records=records_strategy, figure=st.integers(0, 3 * 1024 * MB),
       day=st.integers(11, 24))
def test_general_calibration_is_what_the_status_shows(plan: CardConfig, records: list[UsageRecord],
                                                      figure: int, day: int) -> None:
    from datacap.plans.engine import Calibration

    at = f"2026-11-{day:02d} 06:00"
    cal = Calibration("c", None, t(at), figure)
    s = status(plan, records, at, [cal])
    unscoped = [b for b in s["buckets"] if not any(b["scope"].values())]
    shown = sum(b.get("used_in_cycle_bytes", b["used_bytes"]) for b in unscoped) + s["overage_bytes"]
    # a pack that ended earlier in the cycle keeps its count: the figure cannot go below it
    expired = sum(b.get("used_in_cycle_bytes", b["used_bytes"]) for b in unscoped if not b["active"])
    assert shown == max(figure, expired)
    assert s["calibration"]["carrier_used_bytes"] == figure
    assert sum(b.get("used_in_cycle_bytes", b["used_bytes"]) for b in s["buckets"]) + s["overage_bytes"] \
        == s["used_bytes"]
