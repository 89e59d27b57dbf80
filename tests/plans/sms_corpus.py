"""Carrier texts written for these tests, in the styles of 10086, 10010, 10001 and 10099 (replies to
CXLL/108 and pushed warnings), with what each states. ``NOW`` is when they were "received"."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=SH)


def size(text: str) -> int:
    """'14.23G' -> bytes, as carriers count (1 G = 1024 M = 1024² K), rounded half up."""
    units = {"G": 1024**3, "M": 1024**2, "K": 1024}
    return int((Decimal(text[:-1]) * units[text[-1]]).to_integral_value(ROUND_HALF_UP))


G, M, K = (lambda x: size(f"{x}G")), (lambda x: size(f"{x}M")), (lambda x: size(f"{x}K"))

# (id, sender, text, carrier, kind, at, figures): figures are exactly the keys the text states.
TEXTS: list[tuple[str, str | None, str, str, str, str | None, dict[str, Any]]] = [
    # ------------------------------------------------------------------ China Mobile, 10086
    ("cmcc-reply-package", None,
     "【剩余流量查询】尊敬的客户，您好！您本月套餐内流量共20G，已使用5.77G。目前国内通用流量剩余14.23G。【中国移动】",
     "cmcc", "reply", None, {"general_total": G(20), "general_used": G("5.77"), "general_remaining": G("14.23")}),
    ("cmcc-reply-typed-2021", None,
     "【流量查询】尊敬的客户您好，截至到2021年01月04日09时47分，您本月各类型流量剩余情况：1.国内通用流量剩余17.53GB"
     "（含上月结转国内通用流量0MB），专属流量（限指定APP或地点使用）剩余10.00GB；2.流量总量情况：已使用移动数据流量2.66GB，"
     "流量剩余27.53GB。【中国移动】",
     "cmcc", "reply", "2021-01-04T09:47:00+08:00",
     {"general_remaining": G("17.53"), "rollover_remaining": 0, "scoped_remaining": G(10), "all_used": G("2.66"),
      "all_remaining": G("27.53")}),
    ("cmcc-reply-2015-local", None,
     "您好！截至到2015年03月10日15时28分，您已使用数据流量804.85MB，套餐内剩余流量2267.03MB，其中：国内通用流量剩余"
     "1416.58MB，本地流量剩余173.37MB，本地4G流量剩余677.08MB。中国移动",
     "cmcc", "reply", "2015-03-10T15:28:00+08:00",
     {"all_used": M("804.85"), "all_remaining": M("2267.03"), "general_remaining": M("1416.58"),
      "local_remaining": M("173.37")}),
    ("cmcc-warning-percent", "10086",
     "【中国移动】尊敬的客户，截至11月24日18时，您当月国内通用流量已使用80%，已使用16.00GB，剩余4.00GB。",
     "cmcc", "warning", "2026-11-24T18:00:00+08:00", {"general_used": G(16), "general_remaining": G(4)}),
    ("cmcc-warning-halfwidth-tariff", None,
     "【中国移动】温馨提示:截至2026年11月20日10时,您的套餐国内通用流量剩余1.02GB,为避免产生额外费用,请合理安排使用."
     "超出后按3元/GB计费.",
     "cmcc", "warning", "2026-11-20T10:00:00+08:00", {"general_remaining": G("1.02")}),
    ("cmcc-reply-fullwidth-digits-idle", None,
     "【中国移动】截至１１月２５日０９时，您本月国内通用流量已使用３.５０ＧＢ，剩余１６.５０ＧＢ；闲时流量剩余１０.００ＧＢ；"
     "定向流量剩余２８.００ＧＢ。",
     "cmcc", "reply", "2026-11-25T09:00:00+08:00",
     {"general_used": G("3.5"), "general_remaining": G("16.5"), "idle_remaining": G(10), "scoped_remaining": G(28)}),
    ("cmcc-reply-rollover-pack", None,
     "【中国移动】尊敬的客户，截至2026年11月25日08时，您的流量使用情况如下：国内通用流量共30.00GB，已使用12.00GB，"
     "剩余18.00GB；上月结转流量剩余2.00GB；流量加油包剩余1.00GB。",
     "cmcc", "reply", "2026-11-25T08:00:00+08:00",
     {"general_total": G(30), "general_used": G(12), "general_remaining": G(18), "rollover_remaining": G(2),
      "pack_remaining": G(1)}),
    ("cmcc-warning-exhausted-overage", None,
     "【中国移动】提醒：截至11月23日22时，您的国内通用流量已用尽，套餐外流量已使用512.00MB，超出部分按5元/GB收取。",
     "cmcc", "warning", "2026-11-23T22:00:00+08:00", {"general_remaining": 0, "overage_used": M(512)}),
    ("cmcc-reply-24h", None,
     "尊敬的客户，截至11月24日24时，您本月已使用移动数据流量5.20GB，其中国内通用流量已使用5.00GB，剩余15.00GB，"
     "定向流量已使用0.20GB。【中国移动】",
     "cmcc", "reply", "2026-11-25T00:00:00+08:00",
     {"all_used": G("5.2"), "general_used": G(5), "general_remaining": G(15), "scoped_used": G("0.2")}),
    ("cmcc-reply-day-only", None, "截至28日，您本月国内通用流量已使用800KB。中国移动",
     "cmcc", "reply", "2026-10-29T00:00:00+08:00", {"general_used": K(800)}),
    # ------------------------------------------------------------------ China Unicom, 10010
    ("unicom-warning-exhausted-throttle", None,
     "【中国联通】流量用尽提醒：截至08月07日09时42分，“限量流量”部分国内通用流量已用尽；您“达量限速”流量已使用96.4MB，"
     "超过40.000GB后将被限速。",
     "unicom", "warning", "2026-08-07T09:42:00+08:00",
     {"general_remaining": 0, "throttle_used": M("96.4"), "throttle_threshold": G(40)}),
    ("unicom-warning-low", "10010",
     "【中国联通】流量不足预警：截至11月24日20时，您的国内通用流量已用845.7MB，剩余178.3MB，请合理使用。",
     "unicom", "warning", "2026-11-24T20:00:00+08:00", {"general_used": M("845.7"), "general_remaining": M("178.3")}),
    ("unicom-reply-cxll", None,
     "【流量查询】截至11月25日10时，您本月已使用流量12.34GB，其中国内通用流量已使用10.24GB，剩余9.76GB；定向流量已使用"
     "2.10GB，剩余27.90GB。【中国联通】",
     "unicom", "reply", "2026-11-25T10:00:00+08:00",
     {"all_used": G("12.34"), "general_used": G("10.24"), "general_remaining": G("9.76"), "scoped_used": G("2.1"),
      "scoped_remaining": G("27.9")}),
    ("unicom-reply-two-digit-year", None,
     "【中国联通】尊敬的用户:截至26年11月20日08:30,您的“限量流量”部分国内通用流量共30GB,已用9.5GB,剩余20.5GB;"
     "“达量限速”流量已使用0MB,超过40GB后将被限速。",
     "unicom", "reply", "2026-11-20T08:30:00+08:00",
     {"general_total": G(30), "general_used": G("9.5"), "general_remaining": G("20.5"), "throttle_used": 0,
      "throttle_threshold": G(40)}),
    ("unicom-reply-idle-window", None,
     "【中国联通】截至11月25日07时，您本月闲时流量(23:00-07:00)已使用3.20GB，剩余6.80GB；国内通用流量剩余8.00GB。",
     "unicom", "reply", "2026-11-25T07:00:00+08:00", {"idle_remaining": G("6.8"), "general_remaining": G(8)}),
    ("unicom-reply-pack-overage", None,
     "【中国联通】截至11月24日20时，您本月国内通用流量共30GB，已使用30GB，剩余0GB；流量加油包共5GB，已使用5GB，剩余0GB；"
     "套餐外流量0.92GB。",
     "unicom", "reply", "2026-11-24T20:00:00+08:00",
     {"general_total": G(30), "general_used": G(30), "general_remaining": 0, "pack_remaining": 0,
      "overage_used": G("0.92")}),
    ("unicom-warning-all-data", None, "中国联通提醒您:截止11月25日9点,您的国内流量已使用1.50GB,剩余28.50GB.",
     "unicom", "warning", "2026-11-25T09:00:00+08:00", {"all_used": G("1.5"), "all_remaining": G("28.5")}),
    ("unicom-reply-compound", None,
     "【中国联通】您好，截止2026年11月25日11时，国内通用流量已使用9GB1023.98MB，剩余20GB0.02MB。",
     "unicom", "reply", "2026-11-25T11:00:00+08:00",
     {"general_used": G(9) + M("1023.98"), "general_remaining": G(20) + M("0.02")}),
    ("unicom-reply-local", None, "【中国联通】截至11月25日10时，您的省内流量剩余2.00GB，国内通用流量剩余5.00GB。",
     "unicom", "reply", "2026-11-25T10:00:00+08:00", {"local_remaining": G(2), "general_remaining": G(5)}),
    # ------------------------------------------------------------------ China Telecom, 10001
    ("telecom-reply-totals", None,
     "【中国电信】尊敬的客户，截止11月25日08点，您的国内通用流量总量30.00GB，已使用9GB1023.98MB，剩余20GB0.02MB；"
     "定向流量总量20GB，已使用1.5GB，剩余18.5GB。",
     "telecom", "reply", "2026-11-25T08:00:00+08:00",
     {"general_total": G(30), "general_used": G(9) + M("1023.98"), "general_remaining": G(20) + M("0.02"),
      "scoped_total": G(20), "scoped_used": G("1.5"), "scoped_remaining": G("18.5")}),
    ("telecom-reply-108-day-only", None,
     "尊敬的用户，截止25日9点，您的套餐内国内流量共10240.00MB，已用3276.80MB，剩余6963.20MB。【中国电信】",
     "telecom", "reply", "2026-11-25T09:00:00+08:00",
     {"general_total": M(10240), "general_used": M("3276.8"), "general_remaining": M("6963.2")}),
    ("telecom-reply-shangwang-24h", None,
     "【中国电信】您好！截至2026年11月24日24时，您的国内上网流量已使用12.5GB，剩余27.5GB，总量40GB。",
     "telecom", "reply", "2026-11-25T00:00:00+08:00",
     {"general_total": G(40), "general_used": G("12.5"), "general_remaining": G("27.5")}),
    ("telecom-warning-90", "10001",
     "【中国电信】流量提醒：截至11月25日11时，您的国内通用流量已使用90%，剩余1.00GB。请关注流量使用情况，以免产生套餐外费用。",
     "telecom", "warning", "2026-11-25T11:00:00+08:00", {"general_remaining": G(1)}),
    ("telecom-warning-throttle", None,
     "【中国电信】达量限速提醒：截至11月25日10时，您本月达量限速流量已使用45.00GB，超过40GB后网速降至1Mbps。",
     "telecom", "warning", "2026-11-25T10:00:00+08:00", {"throttle_used": G(45), "throttle_threshold": G(40)}),
    ("telecom-reply-money-and-scoped", None,
     "【中国电信】您的话费余额为12.50元；截止11月25日10点，您的定向流量剩余3.00GB。",
     "telecom", "reply", "2026-11-25T10:00:00+08:00", {"scoped_remaining": G(3)}),
    ("telecom-reply-idle", None, "【中国电信】截止11月25日6点，您的夜间闲时流量剩余15.2GB，国内通用流量剩余2.3GB。",
     "telecom", "reply", "2026-11-25T06:00:00+08:00", {"idle_remaining": G("15.2"), "general_remaining": G("2.3")}),
    ("telecom-reply-iso", None, "【中国电信】截至2026-11-25 10:00，您的国内通用流量剩余6.5GB，已使用23.5GB。",
     "telecom", "reply", "2026-11-25T10:00:00+08:00", {"general_remaining": G("6.5"), "general_used": G("23.5")}),
    ("telecom-reply-two-digit-year-24h", None,
     "【中国电信】截止25年12月31日24时，您的国内通用流量已使用29.99GB，剩余0.01GB。",
     "telecom", "reply", "2026-01-01T00:00:00+08:00", {"general_used": G("29.99"), "general_remaining": G("0.01")}),
    # ------------------------------------------------------------------ China Broadnet (中国广电), 10099
    ("broadnet-reply", None,
     "【中国广电】尊敬的用户，截至2026年11月25日10时，您的套餐内通用流量共100GB，已使用35.6GB，剩余64.4GB。",
     "broadnet", "reply", "2026-11-25T10:00:00+08:00",
     {"general_total": G(100), "general_used": G("35.6"), "general_remaining": G("64.4")}),
    ("broadnet-warning", None,
     "【中国广电】流量使用提醒：截至11月25日9时，您本月国内通用流量已使用80.0GB，剩余20.0GB，定向流量剩余50.0GB。",
     "broadnet", "warning", "2026-11-25T09:00:00+08:00",
     {"general_used": G(80), "general_remaining": G(20), "scoped_remaining": G(50)}),
    ("broadnet-warning-exhausted-ad", None,
     "【中国广电】温馨提示：截至11月24日23时59分，您的国内通用流量已用尽，超出后按0.29元/MB计费，回复KTLL开通加油包。",
     "broadnet", "warning", "2026-11-24T23:59:00+08:00", {"general_remaining": 0}),
    ("broadnet-reply-rollover", None,
     "【中国广电】截至11月25日10时，您的上月不清零流量剩余3.5GB，本月国内通用流量剩余40GB。",
     "broadnet", "reply", "2026-11-25T10:00:00+08:00", {"rollover_remaining": G("3.5"), "general_remaining": G(40)}),
    ("broadnet-reply-no-instant", None, "10099：您当前国内通用流量剩余12.5GB，已使用7.5GB。",
     "broadnet", "reply", None, {"general_remaining": G("12.5"), "general_used": G("7.5")}),
    ("broadnet-by-sender", "+8610099", "截至11月25日10时，您的国内通用流量剩余1GB。",
     "broadnet", "reply", "2026-11-25T10:00:00+08:00", {"general_remaining": G(1)}),
]

# (id, text, what the one-line reason says): texts that are no data report.
NOT_DATA: list[tuple[str, str, str]] = [
    ("bank-code", "【招商银行】您的验证码为382910，5分钟内有效，请勿泄露。", "verification code"),
    ("call-credit", "【中国移动】尊敬的客户，截至11月25日，您的话费余额为35.20元，本月已消费18.80元。", "话费"),
    ("marketing", "【中国联通】流量不够用？办理20元10GB流量包，立即回复KTLL开通，限时优惠！", "mentions 流量"),
    ("marketing-remaining",
     "【中国移动】您本月流量剩余不多了，办理10GB加油包仅需10元，回复BL10开通。", "mentions 流量"),
    ("command-menu",
     "【中国电信】回复CXLL查询流量，回复CXHF查询话费，回复0000查询已订业务，回复TD退订。", "command menu"),
    ("error-reply", "【中国移动】您发送的指令有误，请发送正确的指令。查询流量请发送CXLL至10086。", "error reply"),
    ("broadnet-balance", "【中国广电】您的账户余额为50.00元，请及时缴费。", "话费"),
]
