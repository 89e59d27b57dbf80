"""Carrier SMS: the four texts of issue #4 and more of each carrier's styles."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacap.errors import InputError
from datacap.plans.sms import parse_sms, size_of, sms_calibrations

from .helpers import GB, MB, SH, bucket, card, rec, status, t

NOW = t("2026-11-25 12:00")


def mb(x: float) -> int:
    return round(x * MB)


def gb(x: float) -> int:
    return round(x * GB)


CASES: list[tuple[str, str, dict[str, object]]] = [
    ("10086 CXLL reply (issue)",
     "【剩余流量查询】尊敬的客户，您好！您本月套餐内流量共20G，已使用5.77G。目前国内通用流量剩余14.23G。【中国移动】",
     {"at": None, "carrier": "China Mobile", "sender": "10086", "general_remaining_bytes": gb(14.23),
      "general_used_bytes": gb(20) - gb(14.23), "total_used_bytes": gb(5.77)}),
    ("10010 exhausted warning (issue)",
     "【中国联通】流量用尽提醒：截至08月07日09时42分，“限量流量”部分国内通用流量已用尽；您“达量限速”流量已使用96.4MB，"
     "超过40.000GB后将被限速。",
     {"at": "2026-08-07T09:42:00+08:00", "carrier": "China Unicom", "sender": "10010",
      "general_remaining_bytes": 0, "throttle_used_bytes": mb(96.4), "throttle_threshold_bytes": 40 * GB,
      "total_remaining_bytes": None}),
    ("10086 typed report (issue)",
     "【流量查询】尊敬的客户您好，截至到2021年01月04日09时47分，您本月各类型流量剩余情况：1.国内通用流量剩余17.53GB"
     "（含上月结转国内通用流量0MB），专属流量（限指定APP或地点使用）剩余10.00GB；2.流量总量情况：已使用移动数据流量2.66GB，"
     "流量剩余27.53GB。【中国移动】",
     {"at": "2021-01-04T09:47:00+08:00", "general_remaining_bytes": gb(17.53), "rollover_remaining_bytes": 0,
      "scoped_remaining_bytes": gb(10), "total_used_bytes": gb(2.66), "total_remaining_bytes": gb(27.53)}),
    ("10086 2015 style with 4G (issue)",
     "您好！截至到2015年03月10日15时28分，您已使用数据流量804.85MB，套餐内剩余流量2267.03MB，其中：国内通用流量剩余"
     "1416.58MB，本地流量剩余173.37MB，本地4G流量剩余677.08MB。中国移动",
     {"at": "2015-03-10T15:28:00+08:00", "total_used_bytes": mb(804.85), "total_remaining_bytes": mb(2267.03),
      "general_remaining_bytes": mb(1416.58), "scoped_remaining_bytes": None}),
    ("10001 compound values, 截止 and 点",
     "【中国电信】尊敬的客户，截止11月25日08点，您的国内通用流量总量30.00GB，已使用9GB1023.98MB，剩余20GB0.02MB；"
     "定向流量总量20GB，已使用1.5GB，剩余18.5GB。",
     {"at": "2026-11-25T08:00:00+08:00", "carrier": "China Telecom", "sender": "10001",
      "general_used_bytes": 9 * GB + mb(1023.98), "general_remaining_bytes": 20 * GB + mb(0.02),
      "scoped_used_bytes": mb(1536), "scoped_remaining_bytes": gb(18.5)}),
    ("10010 CXLL reply, category carried to the next clause",
     "【流量查询】截至11月25日10时，您本月已使用流量12.34GB，其中国内通用流量已使用10.24GB，剩余9.76GB；定向流量已使用"
     "2.10GB，剩余27.90GB。【中国联通】",
     {"at": "2026-11-25T10:00:00+08:00", "total_used_bytes": gb(12.34), "general_used_bytes": gb(10.24),
      "general_remaining_bytes": gb(9.76), "scoped_used_bytes": gb(2.10),
      "scoped_remaining_bytes": gb(27.90)}),
    ("10001 108 reply in MB, day without month",
     "尊敬的用户，截止25日9点，您的套餐内国内流量共10240.00MB，已用3276.80MB，剩余6963.20MB。【中国电信】",
     {"at": "2026-11-25T09:00:00+08:00", "general_quota": None, "general_used_bytes": mb(3276.80),
      "general_remaining_bytes": mb(6963.20)}),
    ("network generations are not sizes",
     "截至11月25日10时，您的4G/5G通用流量剩余3.5GB，5G套餐内定向流量剩余1GB。",
     {"general_remaining_bytes": gb(3.5), "scoped_remaining_bytes": GB}),
    ("date later this year means last year",
     "【中国联通】截至12月31日23时59分，您的国内通用流量剩余1.5G。",
     {"at": "2025-12-31T23:59:00+08:00", "general_remaining_bytes": gb(1.5)}),
    ("day later this month means last month, no time: end of day",
     "截至28日，您本月国内通用流量已使用800KB。中国移动",
     {"at": "2026-10-29T00:00:00+08:00", "general_used_bytes": 800 * 1024}),
    ("today without a time means now",
     "尊敬的客户，截至11月25日，您本月已使用国内通用流量3.56GB，剩余16.44GB；已使用定向流量0.00MB。",
     {"at": "2026-11-25T12:00:00+08:00", "general_used_bytes": gb(3.56), "scoped_used_bytes": 0}),
    ("其中 carries the measure",
     "【中国联通】您好，您本月已用流量2.35GB，其中：国内流量2.35GB；套餐内剩余国内流量27.65GB。",
     {"total_used_bytes": gb(2.35), "general_used_bytes": gb(2.35), "general_remaining_bytes": gb(27.65)}),
    ("10086 push warning with 80%",
     "【中国移动】尊敬的客户，截至11月24日18时，您当月国内通用流量已使用80%，已使用16.00GB，剩余4.00GB。",
     {"at": "2026-11-24T18:00:00+08:00", "general_used_bytes": gb(16), "general_remaining_bytes": gb(4)}),
    ("measure named before a colon",
     "【中国电信】尊敬的客户，为您查询到截止11月24日24时的流量剩余情况：国内通用流量5.2GB，定向流量3GB。已使用流量：1.5GB",
     {"at": "2026-11-25T00:00:00+08:00", "general_remaining_bytes": gb(5.2), "scoped_remaining_bytes": 3 * GB,
      "total_used_bytes": gb(1.5)}),
    ("rollover and throttle parts",
     "【中国联通】截至11月20日10时，您的“达量限速”流量已使用1.2GB，超过100GB后将被限速至1Mbps；上月结转流量剩余2.5GB；"
     "国内通用流量剩余0.5GB。",
     {"at": "2026-11-20T10:00:00+08:00", "throttle_used_bytes": gb(1.2), "throttle_threshold_bytes": 100 * GB,
      "rollover_remaining_bytes": gb(2.5), "general_remaining_bytes": gb(0.5)}),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse(text: str, expected: dict[str, object]) -> None:
    got = parse_sms(text, NOW, SH).as_dict()
    assert {k: got.get(k) for k in expected if k in got} == {k: v for k, v in expected.items() if k in got}


@pytest.mark.parametrize(("text", "bytes_"), [
    ("9GB1023.98MB", 9 * GB + mb(1023.98)), ("20G", 20 * GB), ("96.4MB", mb(96.4)), ("512KB", 512 * 1024),
    ("1.5 GB 10 MB", gb(1.5) + 10 * MB), ("0MB", 0),
])
def test_size_of(text: str, bytes_: int) -> None:
    assert size_of(text) == bytes_


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty text"),
    ("   ", "empty text"),
    ("【中国移动】您的话费余额为35.20元。", "found none"),
    ("您的验证码是 123456，5分钟内有效。", "found none"),
    ("截至2026年02月30日10时，您的国内通用流量剩余1G。", "impossible one"),
    ("截至2026年11月26日10时，您的国内通用流量剩余1G。", "expected a time in the past"),
    ("截至2027-01-01 10:00，您的国内通用流量剩余1G。", "expected a time in the past"),
])
def test_unreadable(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_sms(text, NOW, SH)


def test_sender_argument_names_carrier() -> None:
    reading = parse_sms("截至11月25日10时，您的国内通用流量剩余1G。", NOW, SH, sender="10010")
    assert (reading.carrier, reading.sender) == ("China Unicom", "10010")
    reading = parse_sms("截至11月25日10时，您的国内通用流量剩余1G。", NOW, SH)
    assert (reading.carrier, reading.sender) == (None, None)


PLAN = """
[[buckets]]
name = "tencent"
quota = "30 GB"
apps = ["wechat"]
[[buckets]]
name = "general"
quota = "20 GB"
rollover = true
"""


def test_sms_calibrations() -> None:
    c = card(PLAN)
    records = [rec("2026-09-05 10:00", 20 * GB), rec("2026-10-05 10:00", 15 * GB),
               rec("2026-11-02 10:00", 3 * GB),
               rec("2026-11-02 11:00", GB, app="wechat")]
    text = ("【中国移动】截至11月25日10时，您本月国内通用流量剩余17.53GB（含上月结转国内通用流量1GB），"
            "专属流量剩余29.00GB。")
    reading = parse_sms(text, NOW, SH)
    cals, notes = sms_calibrations(reading, c, records, [], SH, NOW)
    assert notes == ["rollover (结转) figure is part of the general figure"]
    assert [(x.bucket, x.source, x.at) for x in cals] == [
        (None, "sms:10086", t("2026-11-25 10:00")), ("tencent", "sms:10086", t("2026-11-25 10:00"))]
    # general quota: 20 GB + 5 GB rolled over; 17.53 left
    assert cals[0].used_bytes == 25 * GB - gb(17.53) and cals[0].local_used_bytes == 3 * GB
    assert cals[1].used_bytes == GB
    st = status(c, records, "2026-11-25 12:00", cals)
    assert st["calibration"]["source"] == "sms:10086"
    # the rolled-over 5 GB are used first, then 2.47 GB of the cycle's own
    assert bucket(st, "general", "rollover")["remaining_bytes"] == 0
    assert bucket(st, "general", "bucket")["remaining_bytes"] == gb(17.53)


def test_sms_rollover_figure_alone() -> None:
    c = card(PLAN)
    records = [rec("2026-09-05 10:00", 20 * GB), rec("2026-10-05 10:00", 15 * GB)]
    reading = parse_sms("截至11月25日10时，您的上月结转流量剩余1GB。中国移动", NOW, SH)
    cals, notes = sms_calibrations(reading, c, records, [], SH, NOW)
    assert notes == [] and [(x.bucket, x.used_bytes) for x in cals] == [("rollover:general", 4 * GB)]


def test_sms_calibration_without_stated_time_uses_at_then_now() -> None:
    c = card(PLAN.replace("rollover = true", ""))
    reading = parse_sms("您本月国内通用流量剩余10G。中国联通", NOW, SH)
    cals, _ = sms_calibrations(reading, c, [], [], SH, NOW)
    assert cals[0].at == NOW
    cals, _ = sms_calibrations(reading, c, [], [], SH, NOW, at=t("2026-11-20 08:00"))
    assert cals[0].at == t("2026-11-20 08:00") and cals[0].used_bytes == 10 * GB


def test_sms_with_nothing_for_the_card_changes_nothing() -> None:
    c = card('buckets = [{name = "a", quota = "1 GB", apps = ["x"]},\n'
             '{name = "b", quota = "1 GB", apps = ["y"]}]')
    reading = parse_sms("截至11月25日10时，专属流量剩余1G。", NOW, SH)
    with pytest.raises(InputError, match="no figure in it applies to card 'c'"):
        sms_calibrations(reading, c, [], [], SH, NOW)


def test_throttle_figure_is_a_note() -> None:
    reading = parse_sms(CASES[1][1], NOW, SH)
    cals, notes = sms_calibrations(reading, card(PLAN.replace("rollover = true", "")), [], [], SH, NOW)
    assert cals[0].at == dt.datetime(2026, 8, 7, 9, 42, tzinfo=SH) and cals[0].used_bytes == 20 * GB
    assert any("达量限速" in n for n in notes)


@given(gb_part=st.integers(0, 500), mb_part=st.integers(0, 102399), kb=st.booleans())
def test_compound_sizes_round_trip(gb_part: int, mb_part: int, kb: bool) -> None:
    mb_value = mb_part / 100  # two decimals, as carriers print them
    text = f"{gb_part}GB{mb_value:.2f}{'KB' if kb else 'MB'}"
    expected = gb_part * GB + round(mb_value * (1024 if kb else MB))
    assert abs(size_of(text) - expected) <= 1
    reading = parse_sms(f"截至11月25日10时，您的国内通用流量已使用{text}。", NOW, SH)
    assert reading.general_used is not None and abs(reading.general_used - expected) <= 1
