"""Fuzz the carrier SMS reader (``datacap.plans.sms.parse_sms``, its public entry) with texts built
from the words and figures carriers use, and with anything at all."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from datacap.errors import DatacapError
from datacap.plans.sms import parse_sms

from .bounds import clear_error_or_result, fuzz_settings

TZ = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=TZ)
WORDS = ["尊敬的客户", "您好", "截至", "截止", "11月29日", "2026年11月29日24时", "26年1月1日", "时", "点",
         "国内通用流量", "通用流量", "定向流量", "闲时流量", "本地流量", "加油包", "套餐外", "结转", "总流量",
         "共", "已使用", "已用", "剩余", "已用尽", "超出", "达量限速", "【中国移动】", "【中国联通】",
         "中国电信", "中国广电", "话费", "余额", "元", "，", "。", ",", "；", ":", "（", "）", "(", ")",
         "GB", "MB", "KB", "G", "M", "K", "TB", "-", " ", "\n", "10086", "10010", "10001", "10099"]
NUMBERS = st.one_of(st.integers(min_value=-10, max_value=10**6).map(str),
                    st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda f: f"{f:.2f}"),
                    st.integers(min_value=0, max_value=10**40).map(str),
                    st.just("9" * 350))
CARRIER_TEXT = st.lists(st.one_of(st.sampled_from(WORDS), NUMBERS), max_size=60).map("".join)


def read(text: str) -> None:
    result = clear_error_or_result(lambda: parse_sms(text, NOW, TZ))
    if not isinstance(result, DatacapError):
        for key, value in result.figures.items():
            assert isinstance(value, int) and 0 <= value <= 2**50, (key, value)  # at most 1 PB
        if result.at is not None:
            assert result.at.tzinfo is not None


@given(CARRIER_TEXT)
@fuzz_settings(300)
@example("【中国移动】尊敬的客户，截至11月29日24时，您的国内通用流量共20GB，已使用5.77GB，剩余14.23GB。")
@example("共" + "1" * 31 + "GB，已使用" + "1" * 31 + "GB")
@example("剩余-5GB")
@example("(" * 30000 + "剩余1GB" + ")" * 30000)
@example("剩余" + "9" * 350 + "GB")
@example("1900年1月1日0时 剩余1GB")
def test_carrier_like_texts(text: str) -> None:
    read(text)


@given(st.text(max_size=2000))
@fuzz_settings(200)
@example("剩余1GB" * 150_000)  # about 1 MB
@example("\x00剩余1GB\ud7ff")
def test_any_text(text: str) -> None:
    read(text)
