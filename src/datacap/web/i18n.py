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
    "calibration": "Last calibration", "never": "never", "live": "Live rate", "rx": "download",
    "tx": "upload", "total": "total", "today": "Today", "this_month": "This month",
    "month_estimate": "Month-end estimate", "all_time": "All time", "interface": "Interface",
    "all_interfaces": "All interfaces", "by": "By", "hour": "hour", "day": "day", "week": "week",
    "month": "month", "since": "From", "until": "To", "apply": "Apply", "app": "Apps", "client": "LAN clients",
    "service": "Services", "name": "Name", "share": "Share", "flows": "Flows", "history": "History",
    "unattributed": "Unattributed", "not_configured": "Not configured", "no_data": "No data in this range",
    "rules": "Rules", "alert_history": "History", "card": "Card", "bucket": "Bucket",
    "used_figure": "Used (carrier figure, e.g. 12.5 GB)", "remaining_figure": "Remaining (e.g. 7.5 GB)",
    "sms_text": "…or paste the carrier's SMS", "submit": "Save", "token": "Access token",
    "saved": "Saved", "error": "Error",
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
    "state_ok": "Fine", "state_low": "Running low", "state_exhausted": "Used up", "state_throttled": "Throttled",
    "state_overage": "In overage", "overage_cost": "In overage: {cost} so far", "left_of": "left of {quota}",
    "unlimited": "unlimited", "lasts_the_cycle": "Lasts the cycle", "runs_out_on": "Runs out on {date}",
    "ran_out_on": "Ran out on {date}", "throttled_from_on": "Throttled from {date}",
    "expires_on": "expires {date}", "covers": "covers {what}", "hours_only": "only {hours}",
    "kind_rollover": "rolled over", "kind_pack": "pack", "bucket_ok": "fine", "bucket_low": "running low",
    "bucket_exhausted": "used up", "bucket_inactive": "not active", "cycle_chart": "Use over this cycle",
    "measured": "Used", "forecast_line": "Forecast", "quota_line": "Quota", "alert_line": "Alert",
    "calibrate_help": "Enter a figure from the carrier (app, SMS, bill): what is used or what is left.",
    "calibrated": "Saved: {card} · {what} has used {used} by the carrier's count.",
    "calibrated_drift": "Saved: {card} · {what} has used {used} by the carrier's count; datacap counted {local} "
    "(a difference of {drift}).",
    "calibrated_none": "Nothing was saved for {card}: the text holds no figure datacap can use.",
    "throttle_line": "Throttle",
    "err_400": "The request was not understood",
    "err_401": "Sign in with the access token",
    "err_403": "Not allowed",
    "err_404": "Not found",
    "err_503": "Not available here",
    "err_other": "Something went wrong", "nav_label": "Pages", "unnamed": "(no name)", "kind_label": "Show",
    "unit_day": "{n} d", "unit_hour": "{n} h", "unit_minute": "{n} min", "unit_second": "{n} s",
    "kind_app": "app", "kind_client": "device", "kind_service": "service", "or": " or ", "and": ", ",
    "when_remaining_below": "less than {x} is left", "when_used_above": "more than {x} is used",
    "when_exhausted": "the quota is used up", "when_throttled": "the card is throttled",
    "when_forecast_exhausts": "the forecast runs out before the cycle ends",
    "when_day_spike": "a day uses more than {f}× the average", "when_new_entity": "a new {kinds} uses more than {x}",
    "when_cycle_reset": "a new cycle begins", "when_calibration_older": "the last calibration is older than {age}",
    "when_carrier_disagrees": "the carrier's figures disagree with the plan", "when_unknown": "a condition holds",
    "rule_notify": "Notify {to} when {when}", "rule_record": "Record when {when}",
    "do_throttle": ", and throttle to {rate}", "do_block": ", and cut the card off",
    "do_switch_slot": ", and switch to SIM slot {slot}", "do_switch_profile": ", and switch to eSIM profile {iccid}",
    "do_unknown": "", "all_cards": "Every card", "each_bucket": "each bucket", "general_quota": "general quota",
    "rule_fired": "fired {date}", "rule_armed": "armed", "no_alerts_yet": "No alert has fired yet",
    "delivery_delivered": "delivered", "delivery_pending": "not delivered yet, retrying ({n} tries)",
    "delivery_failed": "failed after {n} tries",
    "quota_col": "Quota", "cycle": "Cycle", "throttle": "Throttle", "pack": "Pack", "covers_col": "Covers",
    "valid": "Valid",
    "cycle_monthly": "monthly, renews on day {day}", "cycle_days": "every {n} days from {date}",
    "cycle_once": "once, {n} days from {date}", "general_traffic": "all traffic",
    "rolls_over": "unused quota rolls over",
    "pack_days": "{n} days from {date}", "throttle_text": "slowed to {rate} after {after} in a cycle",
    "overage_text": "{price} {currency} per {per}",
}

ZH: dict[str, str] = {
    "title": "datacap 流量监控", "overview": "概览", "usage": "用量", "who": "谁用了流量", "when": "时段",
    "alerts": "告警", "plan": "套餐", "calibrate": "校准", "login": "登录",
    "used": "已用", "left": "剩余", "quota": "总量", "pace": "用量进度", "elapsed": "账期已过",
    "daily_budget": "每日可用", "forecast": "预计用完", "lasts_cycle": "本期够用",
    "throttled": "已限速", "expired": "已过期", "active": "正常", "state": "状态",
    "capped_blocked": "已断网，直到", "capped_throttled": "已限速，直到",
    "calibration": "上次校准", "never": "从未", "live": "实时速率", "rx": "下载",
    "tx": "上传", "total": "合计", "today": "今天", "this_month": "本月",
    "month_estimate": "月底预估", "all_time": "累计", "interface": "网卡",
    "all_interfaces": "全部网卡", "by": "粒度", "hour": "小时", "day": "天", "week": "周",
    "month": "月", "since": "从", "until": "到", "apply": "应用", "app": "应用", "client": "局域网设备",
    "service": "服务", "name": "名称", "share": "占比", "flows": "连接数", "history": "历史",
    "unattributed": "未归属", "not_configured": "未配置", "no_data": "该时段没有数据",
    "rules": "规则", "alert_history": "历史", "card": "卡", "bucket": "流量包",
    "used_figure": "已用（运营商数据，如 12.5 GB）", "remaining_figure": "剩余（如 7.5 GB）",
    "sms_text": "…或粘贴运营商短信", "submit": "保存", "token": "访问令牌",
    "saved": "已保存", "error": "错误",
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
    "state_ok": "正常", "state_low": "即将用完", "state_exhausted": "已用完", "state_throttled": "已限速",
    "state_overage": "超额中", "overage_cost": "超额中：已产生 {cost}", "left_of": "剩余（共 {quota}）",
    "unlimited": "不限量", "lasts_the_cycle": "本期够用", "runs_out_on": "预计 {date} 用完",
    "ran_out_on": "已于 {date} 用完", "throttled_from_on": "{date} 起限速",
    "expires_on": "{date} 到期", "covers": "适用于 {what}", "hours_only": "仅 {hours}",
    "kind_rollover": "上期结转", "kind_pack": "加油包", "bucket_ok": "正常", "bucket_low": "即将用完",
    "bucket_exhausted": "已用完", "bucket_inactive": "未生效", "cycle_chart": "本账期用量",
    "measured": "已用", "forecast_line": "预测", "quota_line": "总量", "alert_line": "告警线",
    "calibrate_help": "填入运营商给出的数据（营业厅、短信或账单）：已用量或剩余量。",
    "calibrated": "已保存：按运营商数据，{card} · {what} 已用 {used}。",
    "calibrated_drift": "已保存：按运营商数据，{card} · {what} 已用 {used}；本机计为 {local}（相差 {drift}）。",
    "calibrated_none": "{card} 没有保存任何数据：这段文字里没有可用的流量数字。",
    "throttle_line": "限速线",
    "err_400": "请求有误：请检查填写的卡、流量包、日期或数值",
    "err_401": "需要访问令牌，请先登录",
    "err_403": "没有权限：请从本页面提交，或使用访问令牌",
    "err_404": "没有找到",
    "err_503": "该功能尚未配置，或数据库暂时不可用",
    "err_other": "出错了，请稍后再试", "nav_label": "页面", "unnamed": "（无名称）", "kind_label": "查看",
    "unit_day": "{n} 天", "unit_hour": "{n} 小时", "unit_minute": "{n} 分钟", "unit_second": "{n} 秒",
    "kind_app": "应用", "kind_client": "设备", "kind_service": "服务", "or": "或", "and": "、",
    "when_remaining_below": "剩余不足 {x}", "when_used_above": "已用超过 {x}",
    "when_exhausted": "流量用完", "when_throttled": "被限速",
    "when_forecast_exhausts": "预计在账期结束前用完",
    "when_day_spike": "单日用量超过平均的 {f} 倍", "when_new_entity": "新{kinds}用量超过 {x}",
    "when_cycle_reset": "新账期开始", "when_calibration_older": "上次校准已超过 {age}",
    "when_carrier_disagrees": "运营商数据与套餐配置不一致", "when_unknown": "条件满足",
    "rule_notify": "{when}{sp}时通知 {to}", "rule_record": "{when}{sp}时记录",
    "do_throttle": "，并限速到 {rate}", "do_block": "，并断开该卡",
    "do_switch_slot": "，并切换到卡槽 {slot}", "do_switch_profile": "，并切换到 eSIM 配置 {iccid}",
    "do_unknown": "", "all_cards": "所有卡", "each_bucket": "每个流量包", "general_quota": "通用流量",
    "rule_fired": "已于 {date} 触发", "rule_armed": "待触发", "no_alerts_yet": "还没有触发过告警",
    "delivery_delivered": "已送达", "delivery_pending": "未送达，重试中（已试 {n} 次）",
    "delivery_failed": "发送失败（已试 {n} 次）",
    "quota_col": "总量", "cycle": "账期", "throttle": "限速",
    "pack": "加油包", "covers_col": "适用范围", "valid": "有效期",
    "cycle_monthly": "每月 {day} 日重置", "cycle_days": "自 {date} 起每 {n} 天一个账期",
    "cycle_once": "一次性，自 {date} 起 {n} 天", "general_traffic": "全部流量", "rolls_over": "未用完可结转",
    "pack_days": "自 {date} 起 {n} 天", "throttle_text": "每账期用满 {after} 后限速到 {rate}",
    "overage_text": "每 {per} {price} {currency}",
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
