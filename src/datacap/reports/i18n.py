"""Words of the report in English and Simplified Chinese; numbers and dates stay ISO everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

from datacap.errors import InputError

Lang = Literal["en", "zh-CN"]
LANGS: tuple[str, ...] = get_args(Lang)

_WEEKDAYS: Mapping[Lang, tuple[str, ...]] = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "zh-CN": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
}

LABELS: Mapping[Lang, Mapping[str, str]] = {
    "en": {
        "title": "datacap report", "month": "Month", "week": "Week", "card": "Card", "interfaces": "Interfaces",
        "generated": "Generated", "partial": "period not finished yet: figures so far",
        "totals": "Totals", "interface": "interface", "rx": "received", "tx": "sent", "total": "total",
        "all": "all interfaces", "projected": "projected for the whole period",
        "baseline": "Against earlier periods", "average": "average of the last {count}", "change": "change",
        "no_baseline": "no earlier complete period in the store to compare with",
        "plan": "Plan", "bucket": "bucket", "quota": "quota", "used": "used", "left": "left",
        "expires": "expires", "unlimited": "unlimited", "state": "state", "forecast": "forecast run-out",
        "daily": "Daily use", "heaviest": "Heaviest day", "heatmap": "Busiest hours (hour of day × weekday)",
        "busiest": "Busiest hours", "no_hours": "no hourly data kept for this period",
        "apps": "Top apps", "clients": "Top LAN clients", "services": "Top services", "share": "share",
        "app": "app", "client": "client", "service": "service", "unattributed": "unattributed",
        "none": "none recorded", "advice": "Advice", "no_advice": "nothing stands out this period",
        "hour": "hour", "day": "day", "categories": "By category",
        "new": "new", "vs": "vs {period}",
        "plan_unavailable": "plan status is not available in this build of datacap",
        "plan_no_cards": "no [[cards]] configured: add your plan to see per-bucket use",
        "plan_error": "plan status unavailable: {detail}",
        "plan_no_card": "no plan configured for card {detail}",
        "general": "general quota", "overage": "overage", "ran_out": "general quota ran out",
        "throttled_since": "throttled since",
        "throttle_from": "throttled from (forecast)", "rollover": "rolled over", "pack": "pack",
        "state_ok": "fine", "state_low": "running low", "state_exhausted": "used up",
        "state_throttled": "throttled", "state_overage": "in overage",
    },
    "zh-CN": {
        "title": "datacap 流量报告", "month": "月份", "week": "周", "card": "卡", "interfaces": "接口",
        "generated": "生成时间", "partial": "本期尚未结束：以下为截至目前的数据",
        "totals": "总量", "interface": "接口", "rx": "下行", "tx": "上行", "total": "合计",
        "all": "全部接口", "projected": "按当前速度全期预计",
        "baseline": "与往期对比", "average": "前 {count} 期平均", "change": "变化",
        "no_baseline": "库中没有可对比的完整往期",
        "plan": "套餐", "bucket": "流量包", "quota": "额度", "used": "已用", "left": "剩余",
        "expires": "到期", "unlimited": "不限量", "state": "状态", "forecast": "预计用完",
        "daily": "每日用量", "heaviest": "用量最多的一天", "heatmap": "高峰时段（小时 × 星期）",
        "busiest": "最忙的时段", "no_hours": "本期没有保留按小时的数据",
        "apps": "应用排行", "clients": "局域网设备排行", "services": "服务排行", "share": "占比",
        "app": "应用", "client": "设备", "service": "服务", "unattributed": "未归属",
        "none": "无记录", "advice": "建议", "no_advice": "本期没有需要特别注意的地方",
        "hour": "时", "day": "日", "categories": "按类别",
        "new": "新增", "vs": "较 {period}",
        "plan_unavailable": "此版本的 datacap 尚不支持套餐状态",
        "plan_no_cards": "尚未配置 [[cards]]：添加套餐后可查看各流量包用量",
        "plan_error": "无法获取套餐状态：{detail}",
        "plan_no_card": "卡 {detail} 没有配置套餐",
        "general": "通用流量", "overage": "超出套餐", "ran_out": "通用流量用完于",
        "throttled_since": "已限速，开始于",
        "throttle_from": "预计限速开始", "rollover": "结转", "pack": "加油包",
        "state_ok": "正常", "state_low": "即将用完", "state_exhausted": "已用完",
        "state_throttled": "已限速", "state_overage": "已超出套餐",
    },
}


CATEGORY_NAMES: Mapping[Lang, Mapping[str, str]] = {
    "en": {},
    "zh-CN": {"video": "视频", "music": "音乐", "social": "社交", "messaging": "通讯", "shopping": "购物",
              "search": "搜索", "maps": "地图", "news": "新闻", "gaming": "游戏", "update": "更新", "cloud": "云存储",
              "cdn": "CDN", "productivity": "办公", "ads": "广告", "other": "其他"},
}


def category_name(category: str, lang: Lang) -> str:
    return CATEGORY_NAMES[lang].get(category, category)


def check_lang(value: str) -> Lang:
    """``--lang``: en or zh-CN (zh, zh_CN and zh-Hans are accepted as zh-CN)."""
    lowered = value.strip().lower().replace("_", "-")
    if lowered in ("en", "en-us", "en-gb"):
        return "en"
    if lowered in ("zh", "zh-cn", "zh-hans", "zh-hans-cn"):
        return "zh-CN"
    raise InputError(f"--lang: expected one of {', '.join(LANGS)}, found {value!r}")


def weekday_name(index: int, lang: Lang) -> str:
    return _WEEKDAYS[lang][index]


def label(lang: Lang, key: str, **params: object) -> str:
    return LABELS[lang][key].format(**params)
