"""Calibration by part: each part of a carrier text lands where it belongs; remaining wins; the carrier's
totals are compared with the config's quotas; rollover follows from a calibration of the cycle before."""

from __future__ import annotations

from typing import Any

import pytest

from datacap.errors import InputError
from datacap.plans.carrier import Applied, carrier_mismatches, sms_calibrations
from datacap.plans.engine import Calibration
from datacap.plans.sms import parse_sms
from datacap.plans.walk import GENERAL_TARGET, OVERAGE_TARGET, THROTTLE_TARGET

from .helpers import GB, SH, bucket, card, rec, status, t
from .sms_corpus import G, M

NOW = t("2026-11-25 12:00")
# The card of issue #10: 通用 30 GB with rollover, a 定向 bucket, 闲时 at night, a 5 GB pack,
# throttle after 40 GB, overage priced.
PLAN = """
[[buckets]]
name = "通用"
quota = "30 GB"
rollover = true
carrier_names = ["限量流量"]
[[buckets]]
name = "定向"
quota = "20 GB"
apps = ["douyin"]
[[buckets]]
name = "闲时"
quota = "10 GB"
hours = "23:00-07:00"
[[packs]]
name = "加油包"
quota = "5 GB"
start = 2026-11-01T00:00:00+08:00
days = 30
[throttle]
after = "40 GB"
rate = "1 Mbit/s"
[overage]
price = 0.29
per = "1 MB"
currency = "CNY"
"""
# Every cycle since September known; October used 28 GB of 通用, so 2 GB roll over into November.
RECORDS = [rec("2026-09-05 10:00", 30 * GB), rec("2026-10-05 10:00", 28 * GB),
           rec("2026-11-02 10:00", 3 * GB), rec("2026-11-02 11:00", GB, app="douyin")]


def apply(text: str, c: Any = None, records: list[Any] | None = None, cals: list[Calibration] | None = None,
          **kw: Any) -> Applied:
    c = c or card(PLAN)
    return sms_calibrations(parse_sms(text, NOW, SH), c, RECORDS if records is None else records, cals or [], SH,
                            NOW, **kw)


def after(applied: Applied, at: str = "2026-11-25 12:00", c: Any = None, records: list[Any] | None = None,
          **kw: Any) -> dict[str, Any]:
    return status(c or card(PLAN), RECORDS if records is None else records, at, applied.calibrations, **kw)


@pytest.mark.parametrize(("text", "target", "used"), [
    ("【中国联通】截至11月25日10时，您的国内通用流量已使用12.00GB。", GENERAL_TARGET, G(12)),
    ("【中国联通】截至11月25日10时，您的定向流量已使用3.00GB，剩余17.00GB。", "定向", G(3)),
    ("【中国联通】截至11月25日07时，您本月闲时流量剩余6.80GB。", "闲时", G("3.2")),
    ("【中国联通】截至11月25日10时，您的流量加油包剩余1.50GB。", "加油包", G("3.5")),
    ("【中国联通】截至11月25日10时，您的上月结转流量剩余0.50GB。", "rollover:通用", G("1.5")),
    ("【中国联通】截至11月25日10时，您的套餐外流量已使用0.92GB。", OVERAGE_TARGET, G("0.92")),
    ("【中国联通】截至11月25日10时，您的“达量限速”流量已使用41.00GB，超过40GB后将被限速。", THROTTLE_TARGET, G(41)),
])
def test_each_part_goes_where_it_belongs(text: str, target: str, used: int) -> None:
    applied = apply(text)
    assert [(c.bucket, c.used_bytes) for c in applied.calibrations] == [(target, used)]
    assert applied.unmatched == [] and applied.mismatches == []


def test_each_mapping_shows_in_status() -> None:
    st = after(apply("【中国联通】截至11月25日07时，您本月闲时流量剩余6.80GB。"))
    assert bucket(st, "闲时")["remaining_bytes"] == G("6.8")
    st = after(apply("【中国联通】截至11月25日10时，您的流量加油包剩余1.50GB。"))
    assert bucket(st, "加油包")["remaining_bytes"] == G("1.5")
    st = after(apply("【中国联通】截至11月25日10时，您的上月结转流量剩余0.50GB。"))
    assert bucket(st, "通用", "rollover")["remaining_bytes"] == G("0.5")
    st = after(apply("【中国联通】截至11月25日10时，您的套餐外流量已使用0.92GB。"))
    assert st["overage_bytes"] == G("0.92") and st["overage_cost"] > 0.92 * 1024 * 0.29 - 0.01
    st = after(apply("【中国联通】截至11月25日10时，您的“达量限速”流量已使用41.00GB，超过40GB后将被限速。"))
    assert st["throttled"] is True and st["throttle"]["since"] == "2026-11-25T10:00:00+08:00"
    assert st["used_bytes"] == 4 * GB  # the throttle counter is the carrier's, the card's usage is datacap's


def test_the_issue_reply_lands_part_by_part() -> None:
    # 通用 30/30 used, 加油包 5/5 used, 套餐外 0.92 GB: before, all of it went to "the unscoped buckets together"
    text = ("【中国联通】截至11月24日20时，您本月国内通用流量共30GB，已使用30GB，剩余0GB；流量加油包共5GB，已使用5GB，"
            "剩余0GB；套餐外流量0.92GB。")
    c = card(PLAN.replace('rollover = true\n', ''))
    applied = apply(text, c)
    assert [(x.bucket, x.used_bytes) for x in applied.calibrations] == [
        (GENERAL_TARGET, 30 * GB), ("加油包", 5 * GB), (OVERAGE_TARGET, G("0.92"))]
    st = after(applied, c=c)
    assert bucket(st, "通用")["remaining_bytes"] == 0 and bucket(st, "加油包")["remaining_bytes"] == 0
    assert st["overage_bytes"] == G("0.92") and st["overage_cost"] > 0
    assert bucket(st, "定向")["used_bytes"] == GB  # untouched: the text said nothing of it


def test_remaining_wins_and_the_disagreement_is_kept() -> None:
    # The 流量不足预警 on a card configured with 100 GB: the carrier's quota is 1 GB.
    c = card('buckets = [{name = "通用", quota = "100 GB"}]')
    text = "【中国联通】流量不足预警：截至11月24日20时，您的国内通用流量已用845.7MB，剩余178.3MB，请合理使用。"
    applied = apply(text, c, records=[rec("2026-11-02 10:00", 3 * GB)])
    [cal] = applied.calibrations
    assert cal.used_bytes == 100 * GB - M("178.3")  # what is left is what runs out
    assert (cal.part, cal.carrier_total, cal.config_quota) == ("国内通用流量", M("845.7") + M("178.3"), 100 * GB)
    [mismatch] = applied.mismatches
    assert mismatch.to_json() == {"part": "国内通用流量", "bucket": "the unscoped buckets", "carrier_total": GB,
                                  "config_quota": 100 * GB,
                                  "text": "the carrier counts 1.00 GB for 国内通用流量; the config says 100.00 GB "
                                          "(the unscoped buckets)"}
    assert mismatch.sentence() in applied.notes
    st = status(c, [rec("2026-11-02 10:00", 3 * GB)], "2026-11-25 12:00", applied.calibrations)
    assert bucket(st, "通用")["remaining_bytes"] == M("178.3")
    # shown for the cycle it was made in, gone in the next, gone once the config says 1 GB
    assert carrier_mismatches(c, applied.calibrations, NOW, SH) == [mismatch]
    assert carrier_mismatches(c, applied.calibrations, t("2026-12-02 12:00"), SH) == []
    fixed = card('buckets = [{name = "通用", quota = "1 GB"}]')
    assert carrier_mismatches(fixed, applied.calibrations, NOW, SH) == []


def test_totals_that_agree_are_no_disagreement() -> None:
    text = "【中国电信】截止11月25日08点，您的国内通用流量总量30.00GB，已使用9GB1023.98MB，剩余20GB0.02MB。"
    applied = apply(text, card(PLAN.replace('rollover = true\n', '')))
    assert applied.mismatches == [] and applied.calibrations[0].carrier_total == 30 * GB


def test_throttle_threshold_is_compared() -> None:
    text = "【中国联通】截至11月25日10时，您的“达量限速”流量已使用1.00GB，超过100GB后将被限速。"
    [m] = apply(text).mismatches
    assert (m.part, m.bucket, m.carrier_total, m.config_quota) == ("达量限速", "throttle", 100 * GB, 40 * GB)


def test_carrier_names_pick_the_bucket() -> None:
    two = PLAN.replace('name = "定向"', 'name = "抖音"').replace(
        'apps = ["douyin"]', 'apps = ["douyin"]\ncarrier_names = ["抖音专属"]') + """
[[buckets]]
name = "微信"
quota = "10 GB"
apps = ["wechat"]
"""
    text = "【中国移动】截至11月25日10时，您的抖音专属流量剩余15.00GB；定向流量剩余2GB。"
    applied = apply(text, card(two))
    # the first part names 抖音's carrier name; the second names neither of the two scoped buckets: listed
    assert [(c.bucket, c.used_bytes) for c in applied.calibrations] == [("抖音", 5 * GB)]
    assert [p.name for p in applied.unmatched] == ["定向流量"]
    assert any("定向流量 (scoped) matches no bucket" in n for n in applied.notes)
    # "限量流量" is 通用's carrier name: 已用尽 empties it
    applied = apply("【中国联通】截至11月25日10时，“限量流量”部分国内通用流量已用尽。")
    assert [(c.bucket, c.used_bytes) for c in applied.calibrations] == [("通用", 30 * GB)]


def test_parts_that_match_nothing_are_listed() -> None:
    c = card('buckets = [{name = "通用", quota = "30 GB"}]')
    text = "【中国联通】截至11月25日10时，您的省内流量剩余2.00GB，国内通用流量剩余5.00GB，闲时流量剩余1GB。"
    applied = apply(text, c)
    assert [x.bucket for x in applied.calibrations] == [GENERAL_TARGET]
    assert [(p.name, p.category) for p in applied.unmatched] == [("省内流量", "local"), ("闲时流量", "idle")]
    with pytest.raises(InputError, match=r"no part of it applies to card 'c'.*省内流量 \(local\) matches no bucket"):
        apply("【中国联通】截至11月25日10时，您的省内流量剩余2.00GB。", c)


def test_a_general_figure_with_its_rollover_inside() -> None:
    text = ("【中国移动】截至11月25日10时，您本月国内通用流量剩余17.53GB（含上月结转国内通用流量1GB），"
            "专属流量剩余19.00GB。")
    applied = apply(text)
    assert [(c.bucket, c.used_bytes) for c in applied.calibrations] == [
        (GENERAL_TARGET, 32 * GB - G("17.53")), ("定向", GB)]
    assert any("part of the general figure" in n for n in applied.notes)
    st = after(applied)
    # the rolled-over 2 GB are used first, then 12.47 GB of the cycle's own
    assert bucket(st, "通用", "rollover")["remaining_bytes"] == 0
    assert bucket(st, "通用", "bucket")["remaining_bytes"] == G("17.53")


def test_a_calibration_applies_only_within_its_cycle() -> None:
    # "截至10月31日24时" is the state at the end of October: it corrects October, not November.
    c = card(PLAN.replace('rollover = true\n', ''))
    applied = sms_calibrations(parse_sms("截至10月31日24时，您的国内通用流量已使用20.00GB。", NOW, SH), c, RECORDS,
                               [], SH, NOW)
    [cal] = applied.calibrations
    assert cal.at == t("2026-10-31 23:59:59")
    assert bucket(after(applied, c=c), "通用")["used_bytes"] == 3 * GB
    assert bucket(after(applied, at="2026-10-31 23:59:59", c=c), "通用")["used_bytes"] == 20 * GB


def test_rollover_unknown_without_history_then_known_from_a_calibration() -> None:
    # The store saw this card from Oct 20 on only: what October left over is unknown ...
    known = t("2026-10-20 00:00")
    records = [rec("2026-10-21 10:00", 2 * GB), rec("2026-11-02 10:00", 3 * GB)]
    st = status(card(PLAN), records, "2026-11-25 12:00", known_since=known)
    assert [b["kind"] for b in st["buckets"] if b["name"] == "通用"] == ["bucket"]
    assert [r["bucket"] for r in st["rollover_unknown"]] == ["通用"] and "unknown" in st["rollover_unknown"][0]["note"]
    # ... until a carrier text from October says what it counted then (10 GB by Oct 25, 0 after)
    october = sms_calibrations(parse_sms("截至10月25日10时，您的国内通用流量已使用10.00GB。", NOW, SH), card(PLAN),
                               records, [], SH, NOW, known_since=known)
    st = status(card(PLAN), records, "2026-11-25 12:00", october.calibrations, known_since=known)
    assert st["rollover_unknown"] == []
    assert bucket(st, "通用", "rollover")["quota_bytes"] == 20 * GB
    # a text from before the store's history does not tell what happened between it and the history
    early = sms_calibrations(parse_sms("截至10月15日10时，您的国内通用流量已使用10.00GB。", NOW, SH), card(PLAN),
                             records, [], SH, NOW, known_since=known)
    st = status(card(PLAN), records, "2026-11-25 12:00", early.calibrations, known_since=known)
    assert [r["bucket"] for r in st["rollover_unknown"]] == ["通用"]


def test_unpacks_like_before() -> None:
    cals, notes = apply("【中国联通】截至11月25日10时，您的国内通用流量已使用12.00GB。")
    assert len(cals) == 1 and notes == []


def test_a_rollover_figure_when_the_rollover_is_unknown() -> None:
    # History from Oct 20 only: the 结转 part of a November text says what is left of it from then on.
    known = t("2026-10-20 00:00")
    records = [rec("2026-10-21 10:00", 2 * GB), rec("2026-11-02 10:00", 3 * GB), rec("2026-11-25 11:00", GB // 2)]
    applied = sms_calibrations(parse_sms("截至11月25日10时，您的上月结转流量剩余1.50GB。", NOW, SH), card(PLAN),
                               records, [], SH, NOW, known_since=known)
    [cal] = applied.calibrations
    assert (cal.bucket, cal.used_bytes, cal.carrier_total) == ("rollover:通用", 0, G("1.5"))
    st = status(card(PLAN), records, "2026-11-25 12:00", applied.calibrations, known_since=known)
    assert st["rollover_unknown"] == []
    rolled = bucket(st, "通用", "rollover")
    # the half GB used after the text came out of the rolled-over quota first
    assert (rolled["quota_bytes"], rolled["used_bytes"], rolled["remaining_bytes"]) == (G("1.5"), GB // 2, GB)
    assert bucket(st, "通用", "bucket")["used_bytes"] == 3 * GB


def test_a_scoped_part_finds_the_bucket_of_the_app_it_names() -> None:
    plan = """
[[buckets]]
name = "通用"
quota = "30 GB"
[[buckets]]
name = "video"
quota = "20 GB"
services = ["bilibili"]
[[buckets]]
name = "social"
quota = "10 GB"
services = ["tencent", "wechat"]
"""
    text = "【中国联通】截至11月25日10时，您的腾讯王卡定向流量剩余9.00GB，哔哩哔哩定向流量剩余15.00GB。"
    applied = apply(text, card(plan))
    assert [(c.bucket, c.used_bytes) for c in applied.calibrations] == [("social", GB), ("video", 5 * GB)]
    assert applied.unmatched == []
