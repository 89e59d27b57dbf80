"""Concrete advice drawn from a report's figures: pure rules, each returning at most a few items.

Every rule reads the :class:`~datacap.reports.model.Report` only, so the rules are table-tested on
hand-built reports. Service categories come from the services catalog when the caller has one
(``category_of``); :data:`DEFAULT_CATEGORIES` covers common names so advice works without it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from datacap.units import format_bytes

from .i18n import Lang, weekday_name
from .model import Report

Severity = Literal["warn", "info"]
MIB = 1024**2
GIB = 1024**3

DEFAULT_CATEGORIES: Mapping[str, str] = {
    **dict.fromkeys(("youtube", "netflix", "bilibili", "tiktok", "douyin", "iqiyi", "youku", "tencent-video",
                     "kuaishou", "twitch", "prime-video", "disney-plus", "hulu", "mango-tv", "apple-tv", "vimeo",
                     "xigua", "huya", "douyu"), "video"),
    **dict.fromkeys(("spotify", "apple-music", "netease-music", "qq-music", "soundcloud", "kugou"), "music"),
    **dict.fromkeys(("apple-update", "google-update", "microsoft-update", "linux-update", "windows-update",
                     "debian", "ubuntu", "fedora", "android-update"), "update"),
    **dict.fromkeys(("steam", "epic-games", "playstation", "nintendo", "mihoyo", "xbox"), "gaming"),
    **dict.fromkeys(("wechat", "qq", "whatsapp", "telegram", "signal", "line", "discord"), "messaging"),
    **dict.fromkeys(("facebook", "instagram", "twitter", "weibo", "xiaohongshu", "reddit", "snapchat"), "social"),
    **dict.fromkeys(("baidu-netdisk", "dropbox", "icloud", "onedrive", "google-drive"), "cloud"),
}
# Process names of package managers and updaters (what the attribution meter reports as the app);
# apt downloads through its method processes, which show up as "http"/"https".
UPDATE_APPS = frozenset({"apt", "apt-get", "http", "https", "packagekitd", "unattended-upgr", "snapd", "flatpak",
                         "dnf", "yum", "pacman", "zypper", "fwupd", "fwupdmgr", "softwareupdated",
                         "gnome-software", "discover", "opkg", "apk", "docker", "dockerd",
                         "containerd", "wuauserv"})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a rule speaks up. Shares are of the period's interface total."""

    video_share: float = 0.30
    update_share: float = 0.10
    update_bytes: int = GIB
    new_share: float = 0.10
    client_share: float = 0.50
    spike_factor: float = 3.0
    spike_bytes: int = 500 * MIB
    above_usual: float = 1.5
    idle_used: float = 0.20
    idle_outside: float = 0.50
    min_bytes: int = 100 * MIB  # below this a share means nothing


@dataclass(frozen=True, slots=True)
class Advice:
    """One piece of advice; ``text(lang)`` words it. ``weight`` orders items (bytes at stake)."""

    code: str
    severity: Severity
    params: Mapping[str, str]
    weight: int = 0

    def text(self, lang: Lang = "en") -> str:
        return advice_text(self, lang)


MESSAGES: Mapping[str, Mapping[Lang, str]] = {
    "no_data": {
        "en": "No traffic was recorded in this period: is the daemon running (`datacap run`)?",
        "zh-CN": "本期没有记录到流量：守护进程是否在运行（`datacap run`）？"},
    "video_share": {
        "en": "Video services took {pct} of your data ({amount}; {names}): download or cache videos offline "
              "on Wi-Fi and lower the streaming quality on mobile data.",
        "zh-CN": "视频服务用掉了 {pct} 的流量（{amount}；{names}）：在 Wi-Fi 下提前缓存/离线下载，"
                 "移动网络下调低清晰度。"},
    "idle_unused": {
        "en": "The {bucket} bucket ({hours}) was only {used_pct} used ({left} left) while {outside_pct} of your "
              "traffic ran outside those hours: move big downloads and updates into {hours}.",
        "zh-CN": "闲时流量包 {bucket}（{hours}）只用了 {used_pct}（剩余 {left}），而 {outside_pct} 的流量发生在"
                 "这段时间之外：把大文件下载和更新安排到 {hours}。"},
    "new_app": {
        "en": "{name} is new this {period_word} and already took {amount} ({pct}): check that it should use "
              "mobile data.",
        "zh-CN": "{name} 是本{period_word}新出现的应用，已用掉 {amount}（{pct}）：确认它是否应该使用移动数据。"},
    "pace_over_plan": {
        "en": "At this pace the plan runs out on {date} (quota {quota}): keep to {budget} a day until the cycle "
              "ends.",
        "zh-CN": "按目前的速度，套餐将在 {date} 用完（额度 {quota}）：在本周期结束前每天控制在 {budget} 以内。"},
    "plan_used_up": {
        "en": "The general quota ({quota}) ran out on {date}: until the cycle ends on {end}, general traffic "
              "is charged as overage or throttled; move what you can to Wi-Fi or to hours and apps a "
              "bucket covers.",
        "zh-CN": "通用流量（{quota}）已于 {date} 用完：在本周期结束（{end}）前，通用流量将按套餐外计费或被限速；"
                 "尽量改用 Wi-Fi，或放到有专属流量包覆盖的时段和应用。"},
    "above_usual": {
        "en": "This {period_word} {verb} {amount}, {pct} more than your average of {average} over the last "
              "{count} {period_words}.",
        "zh-CN": "本{period_word}{verb} {amount}，比前 {count} 个{period_word}的平均 {average} 多 {pct}。"},
    "updates_large": {
        "en": "System and app updates took {amount} ({pct}; {names}): mark the mobile connection as metered and "
              "let updates run on Wi-Fi.",
        "zh-CN": "系统和应用更新用掉了 {amount}（{pct}；{names}）：把移动网络设为按流量计费，让更新只在 Wi-Fi "
                 "下进行。"},
    "client_dominates": {
        "en": "The hotspot client {name} used {pct} of the shared data ({amount}): give it its own limit or ask "
              "what it downloads.",
        "zh-CN": "热点设备 {name} 用掉了共享流量的 {pct}（{amount}）：为它单独设置限额，或问问它在下载什么。"},
    "spike_day": {
        "en": "On {weekday} {date} you used {amount}, {factor}× a typical day: see what ran with "
              "`datacap apps --since {date} --until {next}`.",
        "zh-CN": "{date}（{weekday}）用掉了 {amount}，是平常一天的 {factor} 倍：用 "
                 "`datacap apps --since {date} --until {next}` 查看是谁用的。"},
}

_PERIOD_WORD: Mapping[Lang, Mapping[str, tuple[str, str]]] = {
    "en": {"month": ("month", "months"), "week": ("week", "weeks")},
    "zh-CN": {"month": ("月", "月"), "week": ("周", "周")},
}


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _names(rows: list[dict[str, Any]], key: str, count: int = 3) -> str:
    return ", ".join(str(r.get(key) or "?") for r in rows[:count])


def _denominator(report: Report) -> int:
    attributed = max((sum(r["total_bytes"] for r in doc["rows"]) for doc in report.rankings.values()), default=0)
    return max(report.total.total_bytes, attributed)


def rule_no_data(report: Report, th: Thresholds) -> list[Advice]:
    return [Advice("no_data", "info", {})] if report.total.total_bytes == 0 else []


def covered(report: Report, kind: str, name: str) -> bool:
    """Whether a scoped (定向) bucket of the report's card covers this service or app: advice never tells
    anyone to cut traffic that costs them nothing of the general quota."""
    card = report.plan
    if card is None or not name:
        return False
    key = {"service": "services", "app": "apps"}.get(kind)
    return key is not None and any(name in (b.scope.get(key) or ()) for b in card.buckets if not b.general)


def _category_rows(report: Report, category: str) -> list[dict[str, Any]]:
    cats = {**DEFAULT_CATEGORIES, **report.categories}
    return [r for r in report.rankings["service"]["rows"] if cats.get(str(r.get("service") or "")) == category
            and not covered(report, "service", str(r.get("service") or ""))]


def category_totals(report: Report) -> list[tuple[str, int]]:
    """Bytes per service category (video, messaging, ...), largest first; unknown services are "other"."""
    cats = {**DEFAULT_CATEGORIES, **report.categories}
    sums: dict[str, int] = {}
    for row in report.rankings["service"]["rows"]:
        category = cats.get(str(row.get("service") or ""), "other")
        sums[category] = sums.get(category, 0) + row["total_bytes"]
    return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))


def share_of(report: Report, amount: int) -> float:
    total = _denominator(report)
    return amount / total if total else 0.0


def rule_video_share(report: Report, th: Thresholds) -> list[Advice]:
    rows = _category_rows(report, "video")
    amount = sum(r["total_bytes"] for r in rows)
    total = _denominator(report)
    if not total or amount < th.min_bytes or amount / total < th.video_share:
        return []
    return [Advice("video_share", "warn", {"pct": _pct(amount / total), "amount": format_bytes(amount),
                                           "names": _names(rows, "service")}, amount)]


def rule_updates(report: Report, th: Thresholds) -> list[Advice]:
    services = _category_rows(report, "update")
    apps = [r for r in report.rankings["app"]["rows"] if str(r.get("app") or "").lower() in UPDATE_APPS
            and not covered(report, "app", str(r.get("app") or ""))]
    # Services and apps describe the same bytes from two sides: take the larger view, never their sum.
    rows, key = (services, "service") if sum(r["total_bytes"] for r in services) >= sum(
        r["total_bytes"] for r in apps) else (apps, "app")
    amount = sum(r["total_bytes"] for r in rows)
    total = _denominator(report)
    if not total or amount < th.min_bytes or (amount / total < th.update_share and amount < th.update_bytes):
        return []
    return [Advice("updates_large", "warn", {"pct": _pct(amount / total), "amount": format_bytes(amount),
                                             "names": _names(rows, key)}, amount)]


def rule_new_apps(report: Report, th: Thresholds) -> list[Advice]:
    before = report.previous.get("app")
    total = _denominator(report)
    if not before or not total:
        return []
    out = []
    for row in report.rankings["app"]["rows"]:
        name = row.get("app") or ""
        share = row["total_bytes"] / total
        if share < th.new_share:
            break  # rows are largest first
        if name and name not in before and row["total_bytes"] >= th.min_bytes and not covered(report, "app", name):
            out.append(Advice("new_app", "info", {"name": name, "amount": format_bytes(row["total_bytes"]),
                                                  "pct": _pct(share), "period": report.period.kind},
                              row["total_bytes"]))
    return out[:2]


def rule_client_dominates(report: Report, th: Thresholds) -> list[Advice]:
    rows = report.rankings["client"]["rows"]
    if len(rows) < 2:
        return []
    shared = sum(r["total_bytes"] for r in rows)
    top = rows[0]
    if shared < th.min_bytes or top["total_bytes"] / shared <= th.client_share:  # more than half
        return []
    return [Advice("client_dominates", "info", {"name": str(top.get("client") or top.get("ip") or "?"),
                                                "pct": _pct(top["total_bytes"] / shared),
                                                "amount": format_bytes(top["total_bytes"])}, top["total_bytes"])]


def rule_spike_day(report: Report, th: Thresholds) -> list[Advice]:
    used = [b.total_bytes for _, b in report.days if b.total_bytes > 0]
    heaviest = report.heaviest_day
    if heaviest is None or len(used) < 4:
        return []
    typical = statistics.median(used)
    day, amount = heaviest[0], heaviest[1].total_bytes
    if amount < th.spike_bytes or amount < th.spike_factor * typical:
        return []
    return [Advice("spike_day", "info", {"date": day.isoformat(), "next": (day + dt.timedelta(days=1)).isoformat(),
                                         "weekday": str(day.weekday()), "amount": format_bytes(amount),
                                         "factor": f"{amount / typical:.1f}"}, amount)]


def rule_above_usual(report: Report, th: Thresholds) -> list[Advice]:
    base = report.baseline
    projected = report.projected_bytes
    if base is None or base.average_bytes <= 0 or projected < th.min_bytes:
        return []
    if projected < th.above_usual * base.average_bytes:
        return []
    return [Advice("above_usual", "warn", {
        "amount": format_bytes(projected), "average": format_bytes(base.average_bytes), "count": str(base.count),
        "pct": _pct(projected / base.average_bytes - 1), "verb": "used" if report.complete else "is on pace for",
        "period": report.period.kind}, projected - base.average_bytes)]


def rule_pace_over_plan(report: Report, th: Thresholds) -> list[Advice]:
    """From the headline: the general quota (never a scoped bucket's) runs out before the cycle ends,
    or already ran out in this cycle."""
    card = report.plan
    if card is None or card.state != "active":
        return []
    h = card.headline
    quota = h.general.quota
    if not quota or h.runs_out is None:
        return []
    if h.general.left == 0:
        return [Advice("plan_used_up", "warn", {"date": h.runs_out.date().isoformat(), "quota": format_bytes(quota),
                                                "end": card.cycle.end.date().isoformat()}, quota)]
    budget = h.daily_budget
    return [Advice("pace_over_plan", "warn", {"date": h.runs_out.date().isoformat(), "quota": format_bytes(quota),
                                              "budget": format_bytes(int(budget or 0))}, quota)]


def _window(text: str) -> tuple[int, int] | None:
    try:
        start, end = text.split("-")
        sh, sm = (int(x) for x in start.split(":"))
        eh, em = (int(x) for x in end.split(":"))
    except ValueError:
        return None
    return sh * 60 + sm, eh * 60 + em


def _in_window(hour: int, window: tuple[int, int]) -> bool:
    minute, (start, end) = hour * 60, window
    return start <= minute < end if start < end else minute >= start or minute < end


def rule_idle_unused(report: Report, th: Thresholds) -> list[Advice]:
    """A time-window (闲时/night) bucket left mostly unused while traffic ran at other hours."""
    card = report.plan
    hours = report.hour_totals
    total = sum(hours)
    if card is None or total < th.min_bytes:
        return []
    out = []
    for bucket in card.buckets:
        text = bucket.scope.get("hours")
        window = _window(text) if text else None
        quota = bucket.quota_bytes or 0
        if window is None or quota <= 0 or bucket.kind != "bucket":
            continue
        used = bucket.used_bytes
        outside = sum(b for h, b in enumerate(hours) if not _in_window(h, window)) / total
        if used / quota < th.idle_used and outside >= th.idle_outside:
            left = bucket.remaining_bytes if bucket.remaining_bytes is not None else max(quota - used, 0)
            out.append(Advice("idle_unused", "warn", {"bucket": bucket.name, "hours": str(text),
                                                      "used_pct": _pct(used / quota), "left": format_bytes(left),
                                                      "outside_pct": _pct(outside)}, left))
    return out


Rule = Callable[[Report, Thresholds], list[Advice]]
RULES: tuple[Rule, ...] = (rule_no_data, rule_pace_over_plan, rule_idle_unused, rule_video_share, rule_updates,
                           rule_above_usual, rule_new_apps, rule_client_dominates, rule_spike_day)


def advise(report: Report, thresholds: Thresholds | None = None) -> list[Advice]:
    """Every rule's advice, warnings first, then the most bytes at stake."""
    th = thresholds or Thresholds()
    items = [a for rule in RULES for a in rule(report, th)]
    return sorted(items, key=lambda a: (a.severity != "warn", -a.weight))


def advice_text(item: Advice, lang: Lang) -> str:
    """The item worded in ``lang``, with period and weekday words in that language."""
    params = dict(item.params)
    if "period" in params:
        single, plural = _PERIOD_WORD[lang][params["period"]]
        params["period_word"], params["period_words"] = single, plural
    if "weekday" in params:
        params["weekday"] = weekday_name(int(params["weekday"]), lang)
    if lang == "zh-CN" and "verb" in params:
        params["verb"] = "用了" if params["verb"] == "used" else "预计用到"
    return MESSAGES[item.code][lang].format(**params)
