"""Calibrations: the carrier's figure replaces datacap's count up to its instant; usage after adds on."""

from __future__ import annotations

import pytest

from datacap.errors import InputError
from datacap.plans.engine import Calibration, make_calibration

from .helpers import MB, SH, bucket, card, rec, status, t, used

PLAN = """
[[buckets]]
name = "tencent"
quota = "100 MB"
apps = ["wechat"]
[[buckets]]
name = "general"
quota = "200 MB"
rollover = true
[[packs]]
name = "boost"
quota = "50 MB"
start = 2026-11-10T00:00:00+08:00
days = 18
[throttle]
after = "300 MB"
rate = "1 Mbit/s"
[overage]
price = 1.0
per = "1 MB"
currency = "CNY"
"""
RECORDS = [rec("2026-09-03 10:00", 200 * MB), rec("2026-10-03 10:00", 200 * MB),  # no rollover into Nov
           rec("2026-11-03 10:00", 40 * MB), rec("2026-11-03 11:00", 30 * MB, app="wechat"),
           rec("2026-11-20 10:00", 20 * MB)]


def cal(at: str, used_bytes: int, bucket_name: str | None = None, local: int | None = None) -> Calibration:
    return Calibration("c", bucket_name, t(at), used_bytes, "cli", local)


def test_without_calibration() -> None:
    st = status(card(PLAN), RECORDS, "2026-11-25 12:00")
    assert used(st) == {"tencent": 30 * MB, "boost": 20 * MB, "general": 40 * MB, "overage": 0}
    assert st["calibration"] is None


def test_general_calibration_redistributes_in_order() -> None:
    # The carrier counted 100 MB of general use by Nov 15 (datacap: 40): the pack takes the first
    # 50 (it expires first), the cycle bucket the rest; later usage adds on.
    st = status(card(PLAN), RECORDS, "2026-11-25 12:00", [cal("2026-11-15 00:00", 100 * MB)])
    assert used(st) == {"tencent": 30 * MB, "boost": 50 * MB, "general": 70 * MB, "overage": 0}
    assert st["used_bytes"] == 30 * MB + 100 * MB + 20 * MB
    assert st["calibration"] == {"at": "2026-11-15T00:00:00+08:00", "source": "cli", "bucket": None,
                                 "carrier_used_bytes": 100 * MB, "local_used_bytes": 40 * MB,
                                 "drift_bytes": 60 * MB}


def test_general_calibration_beyond_quota_is_overage() -> None:
    # 260 MB general: 50 pack + 200 bucket + 10 overage; the 20 MB of Nov 20 add 20 more overage.
    st = status(card(PLAN), RECORDS, "2026-11-25 12:00", [cal("2026-11-15 00:00", 260 * MB)])
    assert used(st) == {"tencent": 30 * MB, "boost": 50 * MB, "general": 200 * MB, "overage": 30 * MB}
    assert st["overage_cost"] == 30.0
    # 30 scoped + 260 = 290 MB at the calibration; the throttle (300 MB) starts halfway through Nov 20's hour
    assert st["throttled"] and st["throttle"]["since"] == "2026-11-20T10:30:00+08:00"
    st = status(card(PLAN), RECORDS, "2026-11-25 12:00", [cal("2026-11-15 00:00", 280 * MB)])
    assert st["throttle"]["since"] == "2026-11-15T00:00:00+08:00"


def test_lower_calibration_removes_overage_and_throttle() -> None:
    records = [*RECORDS, rec("2026-11-12 10:00", 300 * MB)]
    before = status(card(PLAN), records, "2026-11-25 12:00")
    assert before["overage_bytes"] > 0 and before["throttled"]
    st = status(card(PLAN), records, "2026-11-25 12:00", [cal("2026-11-15 00:00", 10 * MB)])
    assert used(st) == {"tencent": 30 * MB, "boost": 30 * MB, "general": 0, "overage": 0}
    assert not st["throttled"] and st["overage_cost"] == 0.0


def test_bucket_calibration() -> None:
    st = status(card(PLAN), RECORDS, "2026-11-25 12:00", [cal("2026-11-15 00:00", 80 * MB, "tencent")])
    assert used(st)["tencent"] == 80 * MB and st["calibration"]["drift_bytes"] == 50 * MB
    # clamped to its quota: the carrier's figure cannot make a bucket hold more than it has
    st = status(card(PLAN), RECORDS, "2026-11-25 12:00", [cal("2026-11-15 00:00", 500 * MB, "tencent")])
    assert bucket(st, "tencent")["remaining_bytes"] == 0


def test_latest_calibration_wins_and_old_cycles_do_not_show() -> None:
    cals = [cal("2026-11-05 00:00", 10 * MB), cal("2026-11-15 00:00", 100 * MB, local=45 * MB)]
    st = status(card(PLAN), RECORDS, "2026-11-25 12:00", cals)
    assert st["calibration"]["local_used_bytes"] == 45 * MB  # the stored figure, as it was then
    st = status(card(PLAN), RECORDS, "2026-12-05 12:00", cals)
    assert st["calibration"] is None


def test_calibration_in_previous_cycle_changes_rollover() -> None:
    st = status(card(PLAN), RECORDS, "2026-11-25 12:00", [cal("2026-10-31 23:00", 50 * MB)])
    assert bucket(st, "general", "rollover")["quota_bytes"] == 150 * MB


def test_calibration_for_other_card_or_unknown_bucket_is_ignored() -> None:
    other = Calibration("other", None, t("2026-11-15 00:00"), 999 * MB)
    gone = cal("2026-11-15 00:00", 5 * MB, "no-such-bucket")
    assert used(status(card(PLAN), RECORDS, "2026-11-25 12:00", [other, gone]))["general"] == 40 * MB


def test_make_calibration() -> None:
    c = card(PLAN)
    made = make_calibration(c, RECORDS, [], t("2026-11-15 00:00"), SH, remaining=150 * MB, source="sms:10010")
    # unscoped quota at that instant: 200 MB bucket + 50 MB pack; 150 left -> 100 used
    assert made == Calibration("c", None, t("2026-11-15 00:00"), 100 * MB, "sms:10010", 40 * MB,
                               config_quota=250 * MB)
    made = make_calibration(c, RECORDS, [], t("2026-11-15 00:00"), SH, used=70 * MB, bucket="tencent")
    assert (made.used_bytes, made.local_used_bytes, made.bucket) == (70 * MB, 30 * MB, "tencent")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"used": 1, "remaining": 1}, "exactly one of --used or --remaining"),
    ({}, "exactly one of --used or --remaining"),
    ({"used": 1, "bucket": "nope"}, "expected one of boost, general, tencent, found 'nope'"),
    ({"remaining": 900 * MB}, "expected a remaining figure up to the quota"),
])
def test_make_calibration_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_calibration(card(PLAN), RECORDS, [], t("2026-11-15 00:00"), SH, **kwargs)  # type: ignore[arg-type]


def test_make_calibration_unlimited_remaining() -> None:
    c = card('buckets = [{name = "all", quota = "unlimited"}]')
    with pytest.raises(InputError, match="unlimited quota"):
        make_calibration(c, [], [], t("2026-11-15 00:00"), SH, remaining=MB)
    with pytest.raises(InputError, match="no unscoped bucket"):
        make_calibration(card(), [], [], t("2026-11-15 00:00"), SH, used=MB)


def test_general_calibration_below_an_ended_pack() -> None:
    # The pack ended on Nov 28 with 20 MB used; a carrier figure of 5 MB on Nov 29 cannot undo that.
    records = [*RECORDS, rec("2026-11-29 10:00", 10 * MB)]
    st = status(card(PLAN), records, "2026-11-30 00:00", [cal("2026-11-29 00:00", 5 * MB)])
    assert used(st) == {"tencent": 30 * MB, "boost": 20 * MB, "general": 10 * MB, "overage": 0}
    assert st["used_bytes"] == 30 * MB + 20 * MB + 10 * MB
