"""The dashboard's words in English and Simplified Chinese; the language comes from a cookie set by
the toggle, else Accept-Language. JS gets the chosen dictionary inline, so no extra request."""

from __future__ import annotations

from typing import Literal

Lang = Literal["en", "zh-CN"]
LANGS: tuple[Lang, ...] = ("en", "zh-CN")

EN: dict[str, str] = {
    "title": "datacap", "overview": "Overview", "usage": "Usage", "who": "Who used it", "when": "When",
    "alerts": "Alerts", "plan": "Plan", "calibrate": "Calibrate", "login": "Sign in",
    "used": "used", "left": "left", "quota": "quota", "pace": "Pace", "elapsed": "of the cycle elapsed",
    "daily_budget": "Daily budget", "forecast": "Runs out", "lasts_cycle": "lasts the cycle",
    "throttled": "throttled", "expired": "expired", "active": "active", "state": "State",
    "capped_blocked": "blocked until", "capped_throttled": "throttled until",
    "calibration": "Last calibration", "never": "never", "live": "Live rate", "rx": "download (rx)",
    "tx": "upload (tx)", "total": "total", "today": "Today", "this_month": "This month",
    "month_estimate": "Month-end estimate", "all_time": "All time", "interface": "Interface",
    "all_interfaces": "All interfaces", "by": "By", "hour": "hour", "day": "day", "week": "week",
    "month": "month", "since": "From", "until": "To", "apply": "Apply", "app": "Apps", "client": "LAN clients",
    "service": "Services", "name": "Name", "share": "Share", "flows": "Flows", "history": "History",
    "unattributed": "Unattributed", "not_configured": "Not configured", "no_data": "No data in this range",
    "rules": "Rules", "alert_history": "History", "card": "Card", "bucket": "Bucket",
    "used_figure": "Used (carrier figure, e.g. 12.5 GB)", "remaining_figure": "Remaining (e.g. 7.5 GB)",
    "sms_text": "…or paste the carrier's SMS", "submit": "Save", "token": "Access token",
    "token_needed": "This action needs the access token.", "saved": "Saved", "error": "Error",
    "heatmap": "Traffic by hour of day and weekday", "peak": "Busiest", "lang": "中文",
    "mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun",
    "health": "Daemon last wrote", "store_unwritable": "the store cannot be written (disk full?)",
    "held_in_memory": "held in memory", "ago": "ago", "cycle_ends": "Cycle ends", "overage": "Overage",
    "back": "Back to the list", "range_7d": "7 days", "range_30d": "30 days", "range_month": "This month",
    "range_year": "12 months", "no_live": "No metered interface is up on this machine right now",
    "ahead": "ahead of the calendar",
    "ok": "fine", "low": "running low", "exhausted": "used up", "throttle_from": "Throttled from",
    "carrier_disagrees": "Carrier disagrees", "config_says": "the config says",
    "rollover_unknown": "Rolled over: unknown",
}

ZH: dict[str, str] = {
    "title": "datacap 流量监控", "overview": "概览", "usage": "用量", "who": "谁用了流量", "when": "时段",
    "alerts": "告警", "plan": "套餐", "calibrate": "校准", "login": "登录",
    "used": "已用", "left": "剩余", "quota": "总量", "pace": "用量进度", "elapsed": "账期已过",
    "daily_budget": "每日可用", "forecast": "预计用完", "lasts_cycle": "本期够用",
    "throttled": "已限速", "expired": "已过期", "active": "正常", "state": "状态",
    "capped_blocked": "已断网，直到", "capped_throttled": "已限速，直到",
    "calibration": "上次校准", "never": "从未", "live": "实时速率", "rx": "下载 (rx)",
    "tx": "上传 (tx)", "total": "合计", "today": "今天", "this_month": "本月",
    "month_estimate": "月底预估", "all_time": "累计", "interface": "网卡",
    "all_interfaces": "全部网卡", "by": "粒度", "hour": "小时", "day": "天", "week": "周",
    "month": "月", "since": "从", "until": "到", "apply": "应用", "app": "应用", "client": "局域网设备",
    "service": "服务", "name": "名称", "share": "占比", "flows": "连接数", "history": "历史",
    "unattributed": "未归属", "not_configured": "未配置", "no_data": "该时段没有数据",
    "rules": "规则", "alert_history": "历史", "card": "卡", "bucket": "流量包",
    "used_figure": "已用（运营商数据，如 12.5 GB）", "remaining_figure": "剩余（如 7.5 GB）",
    "sms_text": "…或粘贴运营商短信", "submit": "保存", "token": "访问令牌",
    "token_needed": "此操作需要访问令牌。", "saved": "已保存", "error": "错误",
    "heatmap": "按星期和小时的流量分布", "peak": "最忙时段", "lang": "English",
    "mon": "周一", "tue": "周二", "wed": "周三", "thu": "周四", "fri": "周五", "sat": "周六", "sun": "周日",
    "health": "守护进程上次写入", "store_unwritable": "数据库无法写入（磁盘已满？）",
    "held_in_memory": "暂存于内存", "ago": "前", "cycle_ends": "账期结束", "overage": "超额",
    "back": "返回列表", "range_7d": "7 天", "range_30d": "30 天", "range_month": "本月",
    "range_year": "12 个月", "no_live": "本机当前没有正在计量的网卡",
    "ahead": "用得比日历快",
    "ok": "正常", "low": "即将用完", "exhausted": "已用完", "throttle_from": "限速开始",
    "carrier_disagrees": "与运营商不一致", "config_says": "配置为",
    "rollover_unknown": "结转：未知",
}

WORDS: dict[Lang, dict[str, str]] = {"en": EN, "zh-CN": ZH}


def choose_lang(cookie: str | None, accept_language: str | None) -> Lang:
    """The toggle's cookie wins; else the first zh or en in Accept-Language (by q order); else en."""
    if cookie in LANGS:
        return cookie
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, index, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return "en"
