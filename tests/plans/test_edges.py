"""Edge cases: DST and half-hour zones, records straddling pack ends, scoped packs, rollover calibration."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from datacap.model import UsageRecord
from datacap.plans.engine import Calibration

from .helpers import MB, bucket, card, rec, status, t, used

NY = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
NIGHT = 'buckets = [{name = "night", quota = "1 GB", hours = "01:00-04:00"}, {name = "day", quota = "1 GB"}]'


def test_hours_window_across_spring_forward() -> None:
    # 2026-03-08 02:00 does not exist in New York: the 01:00-04:00 window is two real hours that night.
    c = card(NIGHT)
    start = int(t("2026-03-08 00:00", NY).timestamp())
    records = [UsageRecord(start + h * 3600, 3600, "wwan0", MB, 0) for h in range(6)]
    st = status(c, records, "2026-03-20 00:00", tz=NY)
    assert used(st) == {"night": 2 * MB, "day": 4 * MB, "overage": 0}


def test_hours_window_across_fall_back() -> None:
    # 2026-11-01 01:00-02:00 happens twice in New York: 01:00-04:00 is four real hours that night.
    c = card(NIGHT)
    start = int(t("2026-11-01 00:00", NY).timestamp())
    records = [UsageRecord(start + h * 3600, 3600, "wwan0", MB, 0) for h in range(6)]
    st = status(c, records, "2026-11-20 00:00", tz=NY)
    assert used(st) == {"night": 4 * MB, "day": 2 * MB, "overage": 0}


def test_daily_cap_in_a_half_hour_zone() -> None:
    # UTC-hour records straddle Kolkata's local midnight (18:30 UTC): each half lands in its own day.
    c = card('[overage]\nprice = 1.0\nper = "1 MB"\ndaily_cap = 1.0\ncurrency = "INR"')
    start = int(t("2026-11-02 00:00", KOLKATA).timestamp()) - 1800  # 23:30 local, an hour on the UTC grid
    st = status(c, [UsageRecord(start, 3600, "wwan0", 2 * MB, 0)], "2026-11-25 12:00", tz=KOLKATA)
    assert st["overage_bytes"] == 2 * MB and st["overage_cost"] == 2.0


def test_record_straddling_pack_end() -> None:
    body = """
buckets = [{name = "general", quota = "1 GB"}]
[[packs]]
name = "day"
quota = "1 GB"
start = 2026-11-20T00:00:00
end = 2026-11-21T00:00:00
"""
    st = status(card(body), [rec("2026-11-20 23:00", 10 * MB, 7200)], "2026-11-25 12:00")
    assert used(st) == {"day": 5 * MB, "general": 5 * MB, "overage": 0}
    assert bucket(st, "day")["expires"] == "2026-11-21T00:00:00+08:00"


def test_scoped_pack_with_hours() -> None:
    body = """
buckets = [{name = "general", quota = "1 GB"}]
[[packs]]
name = "video-night"
quota = "100 MB"
services = ["video"]
hours = "00:00-06:00"
start = 2026-11-01T00:00:00
days = 30
"""
    records = [rec("2026-11-02 01:00", 10 * MB, service="video"), rec("2026-11-02 12:00", 10 * MB,
                                                                      service="video"),
               rec("2026-11-02 01:00", 10 * MB, service="web")]
    st = status(card(body), records, "2026-11-25 12:00")
    assert used(st) == {"video-night": 10 * MB, "general": 20 * MB, "overage": 0}
    assert bucket(st, "video-night")["scope"] == {"services": ["video"], "apps": None, "hours": "00:00-06:00"}


def test_rollover_bucket_calibration() -> None:
    body = 'buckets = [{name = "general", quota = "100 MB", rollover = true}]'
    records = [rec("2026-09-05 10:00", 100 * MB), rec("2026-10-05 10:00", 40 * MB), rec("2026-11-05 10:00",
                                                                                        20 * MB)]
    st = status(card(body), records, "2026-11-25 12:00")
    assert bucket(st, "general", "rollover")["used_bytes"] == 20 * MB
    cal = Calibration("c", "rollover:general", t("2026-11-10 00:00"), 60 * MB, "sms:10086")
    st = status(card(body), records, "2026-11-25 12:00", [cal])
    assert bucket(st, "general", "rollover")["used_bytes"] == 60 * MB
    assert st["calibration"]["bucket"] == "rollover:general" and st["calibration"]["drift_bytes"] == 40 * MB


def test_days_card_not_started_shows_full_quotas() -> None:
    body = 'buckets = [{name = "esim", quota = "3 GB"}]\n[cycle]\nkind = "days"\nstart = 2026-12-01\n' \
        "length = 30"
    st = status(card(body), [rec("2026-11-20 10:00", 10 * MB)], "2026-11-25 12:00")
    assert st["state"] == "not_started" and st["used_bytes"] == 0
    assert bucket(st, "esim")["remaining_bytes"] == 3 * 1024**3
    assert st["cycle"]["elapsed_fraction"] == 0.0


def test_usage_before_a_days_card_started_is_not_history() -> None:
    body = 'buckets = [{name = "esim", quota = "3 GB"}]\n[cycle]\nkind = "days"\nstart = 2026-11-20\n' \
        "length = 30"
    records = [rec("2026-11-10 10:00", 900 * MB), rec("2026-11-21 10:00", 10 * MB)]
    st = status(card(body), records, "2026-11-23 00:00")
    assert st["used_bytes"] == 10 * MB
    assert st["forecast"]["cycle_end_used_bytes"] < 200 * MB
