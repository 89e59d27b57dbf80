"""Alert texts in English and Simplified Chinese.

Templates take only pre-formatted strings (sizes already in IEC units), so a message never shows a raw
byte count and both languages show the same figures.
"""

from __future__ import annotations

from collections.abc import Mapping

from datacap.alerts.config import Language

# kind -> language -> (title, body). Placeholders: card, bucket, and the figures of each kind.
_TEMPLATES: dict[str, dict[Language, tuple[str, str]]] = {
    "remaining": {
        "en": ("{card}: {remaining} left in {bucket}",
               "{card} · {bucket}: {remaining} of {quota} left ({remaining_pct} remaining, {used} used); "
               "rule: remaining < {threshold}. Cycle ends {cycle_end}."),
        "zh-CN": ("{card}：{bucket}仅剩 {remaining}",
                  "{card} · {bucket}：剩余 {remaining} / 共 {quota}（剩余 {remaining_pct}，已用 {used}）；"
                  "规则：剩余 < {threshold}。本周期于 {cycle_end} 结束。"),
    },
    "used": {
        "en": ("{card}: {used} used in {bucket}",
               "{card} · {bucket}: {used} of {quota} used ({used_pct}), {remaining} left; "
               "rule: used > {threshold}. Cycle ends {cycle_end}."),
        "zh-CN": ("{card}：{bucket}已用 {used}",
                  "{card} · {bucket}：已用 {used} / 共 {quota}（{used_pct}），剩余 {remaining}；"
                  "规则：已用 > {threshold}。本周期于 {cycle_end} 结束。"),
    },
    "used_unlimited": {
        "en": ("{card}: {used} used in {bucket}",
               "{card} · {bucket}: {used} used this cycle (no quota); rule: used > {threshold}. "
               "Cycle ends {cycle_end}."),
        "zh-CN": ("{card}：{bucket}已用 {used}",
                  "{card} · {bucket}：本周期已用 {used}（不限量）；规则：已用 > {threshold}。"
                  "本周期于 {cycle_end} 结束。"),
    },
    "exhausted": {
        "en": ("{card}: {bucket} is used up",
               "{card} · {bucket}: all of its {quota} is used; further use may be billed as overage "
               "or throttled (overage so far: {overage}). Cycle ends {cycle_end}."),
        "zh-CN": ("{card}：{bucket}已用完",
                  "{card} · {bucket}：{quota} 已全部用完；继续使用可能按超出计费或被限速"
                  "（目前已超出 {overage}）。本周期于 {cycle_end} 结束。"),
    },
    "throttled": {
        "en": ("{card}: speed is now throttled",
               "{card}: the plan's throttle threshold has been passed ({used} used this cycle); "
               "the carrier now limits speed until {cycle_end}."),
        "zh-CN": ("{card}：已触发限速",
                  "{card}：本周期已用 {used}，超过套餐限速阈值，运营商将限速至 {cycle_end}。"),
    },
    "forecast": {
        "en": ("{card}: at this pace data runs out on {exhausted_at}",
               "{card} · {bucket}: {remaining} left; at the current pace it runs out on {exhausted_at}, "
               "before the cycle ends on {cycle_end}. To last, use at most {daily_budget} a day."),
        "zh-CN": ("{card}：按当前速度将于 {exhausted_at} 用完",
                  "{card} · {bucket}：剩余 {remaining}；按当前速度将于 {exhausted_at} 用完，早于本周期结束"
                  "（{cycle_end}）。每天最多使用 {daily_budget} 才能撑到周期结束。"),
    },
    "spike": {
        "en": ("{card}: {today} used today, {ratio}x the usual",
               "{card}: {today} used today against a {days}-day average of {average} a day "
               "({ratio}x; rule: more than {factor}x). Top today: {top}."),
        "zh-CN": ("{card}：今日已用 {today}，是平时的 {ratio} 倍",
                  "{card}：今日已用 {today}，过去 {days} 天日均 {average}"
                  "（{ratio} 倍；规则：超过 {factor} 倍）。"
                  "今日用量最多：{top}。"),
    },
    "new": {
        "en": ("{card}: new {kind} {name} used {amount}",
               "{card}: {kind} '{name}', not seen in the previous 30 days, used {amount} today "
               "(rule: more than {threshold})."),
        "zh-CN": ("{card}：新{kind} {name} 已用 {amount}",
                  "{card}：过去 30 天未出现过的{kind}“{name}”今日已用 {amount}（规则：超过 {threshold}）。"),
    },
    "cycle_reset": {
        "en": ("{card}: new cycle started",
               "{card}: a new cycle started on {cycle_start} and ends {cycle_end}. "
               "Last cycle: {last_total} in total. Top apps: {top}."),
        "zh-CN": ("{card}：新周期已开始",
                  "{card}：新周期于 {cycle_start} 开始，{cycle_end} 结束。上个周期共用 {last_total}。"
                  "用量最多的应用：{top}。"),
    },
    "calibration": {
        "en": ("{card}: carrier figure is {age} old",
               "{card}: the last calibration against the carrier's figure was {age} ago ({calibrated_at}); "
               "rule: older than {threshold}. Send the balance query again to keep figures exact."),
        "zh-CN": ("{card}：运营商用量数据已 {age} 未校准",
                  "{card}：上次按运营商数据校准是 {age} 前（{calibrated_at}）；规则：超过 {threshold}。"
                  "请重新查询余量以保持数据准确。"),
    },
    "carrier_disagrees": {
        "en": ("{card}: the carrier counts {carrier_total} for {part}; the config says {config_quota}",
               "{card}: the carrier's text counts {carrier_total} for {part}, but the config's quota for "
               "{target} is {config_quota}. What is left follows the carrier's remaining figure; fix the plan "
               "in the config (or undo the calibration) so the two agree."),
        "zh-CN": ("{card}：运营商按 {carrier_total} 计算{part}，配置为 {config_quota}",
                  "{card}：运营商短信中{part}共 {carrier_total}，而配置中{target}的额度为 {config_quota}。"
                  "剩余量按运营商的剩余数据计算；请修改配置中的套餐（或撤销该校准）使两者一致。"),
    },
    "test": {
        "en": ("datacap test message", "This is a test from datacap: channel '{channel}' works."),
        "zh-CN": ("datacap 测试消息", "这是一条来自 datacap 的测试消息：通道“{channel}”可以正常送达。"),
    },
}

_WORDS: dict[Language, dict[str, str]] = {
    "en": {"together": "all buckets", "never": "never", "none": "none", "app": "app", "client": "client",
           "service": "service", "unlimited": "unlimited"},
    "zh-CN": {"together": "通用流量合计", "never": "从未校准", "none": "无", "app": "应用", "client": "设备",
              "service": "服务", "unlimited": "不限量"},
}


_SEVERITY = {"exhausted": "failure", "throttled": "failure", "cycle_reset": "info", "calibration": "info",
             "test": "info"}


def severity(kind: str) -> str:
    """info | warning | failure, for the channel's notification type and the desktop urgency."""
    return _SEVERITY.get(kind, "warning")


def word(lang: Language, key: str) -> str:
    return _WORDS[lang].get(key, key)


def render(kind: str, lang: Language, values: Mapping[str, str]) -> tuple[str, str]:
    """(title, body) of one alert kind in ``lang``; a missing figure shows as '?' rather than failing."""
    title, body = _TEMPLATES[kind][lang]

    class _Safe(dict[str, str]):
        def __missing__(self, key: str) -> str:
            return "?"

    safe = _Safe(values)
    return title.format_map(safe), body.format_map(safe)


def format_age(seconds: float, lang: Language) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours = rest // 3600
    if lang == "zh-CN":
        parts = [f"{days} 天" if days else "", f"{hours} 小时" if hours or not days else ""]
        return " ".join(p for p in parts if p)
    return " ".join(p for p in (f"{days}d" if days else "", f"{hours}h" if hours or not days else "") if p)
