"""Reading what a Chinese carrier's text says about a card's data: parts, figures, instant.

China Mobile (10086), China Unicom (10010), China Telecom (10001) and China Broadnet (10099) answer
CXLL/108 and push warnings in free text, each in several styles over the years. The reader is one
linear pass, bounded in size, so hostile input costs no more than its length:

1. The text is NFKC-normalised (full-width punctuation, digits and letters become ASCII), cut into
   sentences (。；！？, line breaks, ``1.``/``2、`` enumerations and 【headers】) and clauses (, : and
   parentheses; a parenthesised clause reads in its context but does not change it).
2. A clause that names a kind of data (通用, 定向, 闲时, 结转, 加油包, 套餐外, 达量限速, 总流量, ...)
   starts a *part*, named by the carrier's own words (``国内通用流量``); a clause that names none
   continues the part before it in the same sentence. The same name later in the text is the same part.
3. Each measure keyword (剩余, 已使用, 共/总量, 超过…限速, 已用尽) takes the first size after it:
   ``9GB1023.98MB`` is one compound size, ``4G流量`` a network generation, ``0.29元/MB`` a tariff.
   A clause that ends with a measure and no size (``剩余情况：``) lends it to the clauses after it.
4. The package parts (套餐内, 套餐流量, 数据流量) are the general quota when the text does not itemise a
   通用 part, or agrees with it; otherwise they count all data.

Figures are checked: nothing beyond 1 PB, nothing negative, no part whose used and remaining
figures contradict its total. A text with no data figure is refused with a one-line reason.
Sizes are binary, as carriers bill: 1 GB = 1024 MB = 1024² KB.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from zoneinfo import ZoneInfo

from datacap.errors import InputError

Category = Literal["general", "scoped", "idle", "local", "rollover", "pack", "overage", "throttle", "all"]
Measure = Literal["total", "used", "remaining"]
Carrier = Literal["cmcc", "unicom", "telecom", "broadnet"]
Kind = Literal["reply", "warning"]

MAX_CHARS = 4000  # ten concatenated SMS are about 700 characters; a longer "text" is not a carrier's
MAX_FIGURE = 1024**5  # 1 PB: no card holds more
MAX_DIGITS = 12
FUTURE_SLACK = dt.timedelta(minutes=15)
FIRST_YEAR, LAST_YEAR = 1970, 2100
CHINA = ZoneInfo("Asia/Shanghai")


class NotADataReport(InputError):
    """The text is readable but states no data figure (a bank code, a 话费 balance, an ad, a menu)."""


class ImplausibleFigure(InputError):
    """A figure the text states cannot be true (beyond 1 PB, negative, contradicting its part)."""


_UNIT = {"t": 1024**4, "tb": 1024**4, "g": 1024**3, "gb": 1024**3, "m": 1024**2, "mb": 1024**2,
         "k": 1024, "kb": 1024, "b": 1}
_UNIT_ORDER = {"tb": 4, "t": 4, "gb": 3, "g": 3, "mb": 2, "m": 2, "kb": 1, "k": 1, "b": 0}
# One number and unit; the lookbehind keeps a match from starting inside a number, so a long run of
# digits is tried once (linear), and the unit must not run into letters (``Mbps``, ``Mbit/s``).
_SIZE_PART = re.compile(r"(?<![\d.])(\d+)(?:\.(\d+))?\s?(TB|GB|MB|KB|T|G|M|K|B)(?![A-Za-z])", re.IGNORECASE)
_GENERATION_NEXT = re.compile(r"[\u4e00-\u9fffA-Za-z/+]")
_SENTENCE = re.compile(r"[。;!?\n\r]+|(?<![\d.])\d[.、](?!\d)")
_CLAUSE = re.compile(r"([,:()])")
_WHEN = re.compile(
    r"截[至止](?:到|至)?\s*(?:(\d{2,4})\s*年)?\s*(?:(\d{1,2})\s*月)?\s*(\d{1,2})\s*[日号]\s*"
    r"(?:(\d{1,2})\s*(?:时|点|:)\s*(?:(\d{1,2})\s*分?)?)?")
_WHEN_ISO = re.compile(r"截[至止](?:到|至)?\s*(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:\s*(\d{1,2}):(\d{2}))?")

# Kinds of data, most specific first: the first row with a keyword in the clause wins.
_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rollover", ("结转", "上月剩余", "上月未用", "不清零", "转存")),
    ("throttle", ("达量限速", "限速")),
    ("pack", ("加油包", "叠加包", "加餐包", "流量加油")),
    ("overage", ("套餐外", "超出套餐", "超套", "超出流量", "超出部分")),
    ("scoped", ("定向", "专属", "免流", "指定应用", "指定APP", "委托")),
    ("idle", ("闲时", "夜间")),
    ("local", ("本地", "省内")),
    ("general", ("通用", "国内上网流量", "全国流量")),
    ("package", ("套餐内", "套餐流量", "套餐包含")),
    ("all", ("总流量", "移动上网流量", "移动数据", "国内流量", "流量总量", "全部流量", "上网流量")),
    ("package", ("数据流量", "数据")),
)
_NAME_PREFIXES = ("国内", "省内", "本地", "全国", "上月", "本月", "当月", "套餐内", "4G", "5G")
_NAME_SUFFIX = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]{0,4}?(?:流量|包)")
# How carriers name the apps of a 定向 offer ("腾讯王卡定向流量"): the service catalog's names in Chinese.
# They qualify a part's name (two 定向 parts of one text stay two) and find the bucket scoped to them.
SERVICE_WORDS: dict[str, tuple[str, ...]] = {
    "tencent": ("腾讯",), "wechat": ("微信",), "qq": ("QQ",), "tencent-video": ("腾讯视频",), "douyin": ("抖音",),
    "tiktok": ("TikTok",), "bilibili": ("哔哩哔哩", "B站"), "iqiyi": ("爱奇艺",), "youku": ("优酷",),
    "kuaishou": ("快手",), "mango-tv": ("芒果",), "baidu": ("百度",), "baidu-netdisk": ("百度网盘",),
    "alibaba": ("阿里", "淘宝", "支付宝"), "jd": ("京东",), "pinduoduo": ("拼多多",), "meituan": ("美团",),
    "weibo": ("微博",), "xiaohongshu": ("小红书",), "zhihu": ("知乎",), "netease": ("网易",),
    "netease-music": ("网易云音乐",), "qq-music": ("QQ音乐",), "huawei": ("华为",), "xiaomi": ("小米",),
    "mihoyo": ("米哈游", "原神"),
}
_APP_WORDS = tuple(w for words in SERVICE_WORDS.values() for w in words)
_QUALIFIER_STOP = set("的您中前月，,:;。 ")
_MEASURES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("none_left", ("已用尽", "已用完", "已经用完", "用尽", "用完")),
    ("used", ("已使用", "已用", "使用了", "用了", "已消费", "累计使用", "使用")),
    ("remaining", ("剩余", "还剩", "尚余", "可用", "余")),
    ("threshold", ("超过", "达到", "超出")),
    ("total", ("总量", "共计", "共有", "共", "总计", "合计", "总额", "包含")),
)
# A clause selling something states no usage ("办理10GB加油包仅需10元").
_SELLING = ("办理", "订购", "仅需", "只需", "优惠", "活动", "推荐", "立即", "限时", "赠送", "领取", "开通", "回复",
            "点击", "抢购", "低至", "特惠", "升级")
_CARRIERS: tuple[tuple[Carrier, str, tuple[str, ...]], ...] = (
    ("cmcc", "10086", ("中国移动", "10086")),
    ("unicom", "10010", ("中国联通", "10010")),
    ("telecom", "10001", ("中国电信", "10001")),
    ("broadnet", "10099", ("中国广电", "10099", "广电")),
)
_PERCENT = re.compile(r"\d\s*%")
_WARNING_WORDS = ("提醒", "预警", "提示", "已达", "已超", "不足", "即将", "用尽", "用完")
_JSON_KEYS: dict[str, tuple[Measure, ...]] = {
    "general": ("total", "used", "remaining"), "scoped": ("total", "used", "remaining"),
    "idle": ("remaining",), "local": ("remaining",), "rollover": ("remaining",), "pack": ("remaining",),
    "overage": ("used",), "throttle": ("used", "total"), "all": ("used", "remaining"),
}


@dataclass(frozen=True, slots=True)
class Size:
    """A size as the text printed it: bytes, and half the value of its last printed digit."""

    bytes: int
    slack: int


@dataclass(frozen=True, slots=True)
class Part:
    """One kind of data the text reports on: its name in the carrier's words and its figures.

    For the throttle part, ``total`` is the amount after which the line is slowed. ``text`` is the
    clauses the part was read from (to match a bucket's ``carrier_names``); ``slack`` the rounding of
    the printed figures, in bytes.
    """

    name: str
    category: Category
    total: int | None = None
    used: int | None = None
    remaining: int | None = None
    text: str = ""
    slack: int = 0

    def get(self, measure: Measure) -> int | None:
        return self.total if measure == "total" else self.used if measure == "used" else self.remaining

    def implied_total(self) -> int | None:
        """The total the part states, or used + remaining when it states both."""
        if self.total is not None:
            return self.total
        if self.used is not None and self.remaining is not None:
            return self.used + self.remaining
        return None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "category": self.category, "total": self.total, "used": self.used,
                "remaining": self.remaining}


@dataclass(frozen=True)
class SmsReading:
    """What a carrier text says. ``at``: the instant it states (None when it states none)."""

    at: dt.datetime | None
    carrier: Carrier | None
    sender: str | None
    kind: Kind
    parts: tuple[Part, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())

    def first(self, category: Category, measure: Measure) -> int | None:
        """The first figure of that kind (texts give the summary before the detail)."""
        for part in self.parts:
            if part.category == category and part.get(measure) is not None:
                return part.get(measure)
        return None

    @property
    def figures(self) -> dict[str, int]:
        """The `figures` object of ``datacap sms read --json``: only what the text states."""
        out: dict[str, int] = {}
        for category, measures in _JSON_KEYS.items():
            for measure in measures:
                value = self.first(category, measure)  # type: ignore[arg-type]
                if value is not None:
                    key = "throttle_threshold" if (category, measure) == ("throttle", "total") else \
                        f"{category}_{measure}"
                    out[key] = value
        return out

    def to_json(self) -> dict[str, Any]:
        return {"carrier": self.carrier, "kind": self.kind, "at": self.at.isoformat() if self.at else None,
                "figures": self.figures, "parts": [p.to_json() for p in self.parts], "notes": list(self.notes)}


def size_of(text: str) -> int:
    """``"9GB1023.98MB"`` -> bytes (binary units, as carriers bill); the sizes in ``text`` summed."""
    return sum(s.bytes for s in (_size(m) for m in _SIZE_PART.finditer(_normalise(text))))


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _size(match: re.Match[str]) -> Size:
    whole, frac, unit = match.group(1), match.group(2) or "", match.group(3).lower()
    if len(whole.lstrip("0")) > MAX_DIGITS or len(frac) > MAX_DIGITS:
        raise ImplausibleFigure(f"SMS: expected a data figure of at most {MAX_DIGITS} digits, found one of "
                                f"{len(whole) + len(frac)} digits ({match.group(0)[:24]}…)")
    scale = _UNIT[unit]
    value = (int(whole) * 10**len(frac) + int(frac or "0")) * scale
    amount = (2 * value + 10**len(frac)) // (2 * 10**len(frac))  # exact decimal arithmetic, rounded
    # A figure's rounding: half its last printed digit; a whole number of GB is taken as (nearly) exact.
    slack = scale // (2 * 10**len(frac)) if frac else min(scale // 2, 8 * 1024**2)
    return Size(amount, slack or 1)


def _sizes(clause: str) -> Iterator[tuple[int, int, Size]]:
    """(start, end, size) of every size in the clause; adjacent descending units are one size."""
    pending: tuple[int, int, Size, int] | None = None
    for m in _SIZE_PART.finditer(clause):
        unit = m.group(3).lower()
        if unit == "g" and m.group(2) is None and m.group(1) in ("2", "3", "4", "5") and \
                _GENERATION_NEXT.match(clause, m.end()):
            continue  # "4G流量", "5G套餐", "4G/5G": a network generation
        before = clause[max(0, m.start() - 1):m.start()]
        after = clause[m.end():m.end() + 1]
        if before in ("元", "/") or after in ("元", "/"):
            continue  # a tariff or a price ("10元1GB", "1GB/5元"): money, not data
        size, order = _size(m), _UNIT_ORDER[unit]
        if pending is not None and not clause[pending[1]:m.start()].strip() and order < pending[3]:
            merged = Size(pending[2].bytes + size.bytes, min(pending[2].slack, size.slack))
            pending = (pending[0], m.end(), merged, order)
            continue
        if pending is not None:
            yield pending[:3]
        pending = (m.start(), m.end(), size, order)
    if pending is not None:
        yield pending[:3]


def _negative(clause: str, start: int) -> bool:
    before = clause[max(0, start - 2):start].rstrip()
    return before.endswith(("-", "负", "−"))


# ---------------------------------------------------------------- the instant


def _stated_instant(text: str, now: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
    iso = _WHEN_ISO.search(text)
    if iso:
        y, mo, d, h, mi = iso.groups()
        return _check_past(_at_end(_make(_year(y), int(mo), int(d), h, mi, tz, iso.group(0)), h, now), now,
                           iso.group(0))
    match = _WHEN.search(text)
    if not match:
        return None
    y, mo, d, h, mi = match.groups()
    local_now = now.astimezone(tz)
    if y is not None:
        stated = _make(_year(y), int(mo or local_now.month), int(d), h, mi, tz, match.group(0))
        return _check_past(_at_end(stated, h, now), now, match.group(0))
    # A missing year (or month) is the most recent such instant not after now.
    year, month = local_now.year, local_now.month
    for _ in range(14):
        if mo is not None:
            candidate = _make_or_none(year, int(mo), int(d), h, mi, tz)
            year -= 1
        else:
            candidate = _make_or_none(year, month, int(d), h, mi, tz)
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        if candidate is not None and _at_end(candidate, h, now) <= now + FUTURE_SLACK:
            return _at_end(candidate, h, now)
    raise InputError(f"SMS: cannot place the date {match.group(0)!r} in the past")


def _year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        year += 2000  # "26年": carriers' two-digit years are this century
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ImplausibleFigure(f"SMS: expected a date between {FIRST_YEAR} and {LAST_YEAR}, found the year {year}")
    return year


def _check_past(instant: dt.datetime, now: dt.datetime, text: str) -> dt.datetime:
    # A few minutes of clock difference between the carrier and this machine are normal.
    if instant > now + FUTURE_SLACK:
        raise InputError(f"SMS: expected a time in the past after 截至, found {text!r}, which is after "
                         f"{now.isoformat()}")
    return instant


def _at_end(instant: dt.datetime, hour: str | None, now: dt.datetime) -> dt.datetime:
    """A date without a time stands for the end of that day; when that day is today, for now."""
    if hour is None and instant - dt.timedelta(days=1) <= now < instant:
        return now
    return instant


def _make_or_none(y: int, mo: int, d: int, h: str | None, mi: str | None, tz: ZoneInfo) -> dt.datetime | None:
    if not FIRST_YEAR <= y <= LAST_YEAR:
        return None
    try:
        day = dt.date(y, mo, d)
    except ValueError:
        return None
    if h is None:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    hour, minute = int(h), int(mi or 0)
    if hour > 24 or minute > 59 or (hour == 24 and minute):
        return None
    if hour == 24:  # "24时" is the next day's first instant
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)


def _make(y: int, mo: int, d: int, h: str | None, mi: str | None, tz: ZoneInfo, text: str) -> dt.datetime:
    made = _make_or_none(y, mo, d, h, mi, tz)
    if made is None:
        raise InputError(f"SMS: expected a real date and time after 截至, found {text[:40]!r}")
    return made


# ---------------------------------------------------------------- parts and figures


def _sentences(text: str) -> Iterator[list[tuple[str, bool]]]:
    """Sentences as (clause, inside parentheses) lists; one pass, nesting kept as a depth count."""
    text = text.replace("【", "。").replace("】", "。")
    for sentence in _SENTENCE.split(text):
        depth, clauses, buf = 0, [], ""
        for piece in _CLAUSE.split(sentence):
            if piece in (",", ":", "(", ")"):
                if buf.strip():
                    clauses.append((buf.strip(), depth > 0))
                buf = ""
                depth = depth + 1 if piece == "(" else max(0, depth - 1) if piece == ")" else depth
            else:
                buf += piece
        if buf.strip():
            clauses.append((buf.strip(), depth > 0))
        if clauses:
            yield clauses


def _category(clause: str) -> tuple[str, str] | None:
    """(category, the carrier's name for it) of the first kind of data the clause names."""
    for category, words in _CATEGORIES:
        for word in words:
            at = clause.find(word)
            if at < 0:
                continue
            start = at
            moved = True
            while moved:
                moved = False
                for prefix in _NAME_PREFIXES:
                    if clause.startswith(prefix, start - len(prefix)) and start >= len(prefix):
                        start -= len(prefix)
                        moved = True
                        break
            start = _app_qualified(clause, start)
            end = at + len(word)
            if not word.endswith(("流量", "包")):
                suffix = _NAME_SUFFIX.match(clause, end)
                if suffix:
                    end = suffix.end()
            return category, clause[start:end]
    return None


def _app_qualified(clause: str, start: int) -> int:
    """Where the name starts when an app qualifies it ("哔哩哔哩定向流量"), else ``start``."""
    first = start
    while first > 0 and start - first < 8 and clause[first - 1] not in _QUALIFIER_STOP:
        first -= 1
    run = clause[first:start]
    found = [run.find(w) for w in _APP_WORDS if w in run]
    return first + min(found) if found else start


def _marks(clause: str) -> list[tuple[int, int, str]]:
    marks: list[tuple[int, int, str]] = []
    taken = [False] * (len(clause) + 1)
    for measure, words in _MEASURES:
        for word in words:
            at = clause.find(word)
            while at >= 0:
                if not any(taken[at:at + len(word)]):
                    marks.append((at, at + len(word), measure))
                    for i in range(at, at + len(word)):
                        taken[i] = True
                at = clause.find(word, at + len(word))
    return sorted(marks)


@dataclass
class _Draft:
    name: str
    category: str
    explicit: bool
    figures: dict[str, Size] = field(default_factory=dict)
    text: list[str] = field(default_factory=list)


class _Reader:
    def __init__(self) -> None:
        self.parts: dict[str, _Draft] = {}

    def part(self, name: str, category: str, explicit: bool) -> _Draft:
        key = name if explicit else f"\0{category}"
        if key not in self.parts:
            self.parts[key] = _Draft(name, category, explicit)
        return self.parts[key]

    def sentence(self, clauses: list[tuple[str, bool]]) -> None:
        current: tuple[str, str] | None = None
        lent: str | None = None  # a measure named at a clause's end without a size
        last: str | None = None  # the last measure named outside parentheses
        for clause, aside in clauses:
            named = _category(clause)
            if named and current and named[0] == current[0] and (named[1] in current[1] or current[1] in named[1]):
                named = current  # "达量限速流量…，超过40GB后限速": still the same part
            context = named or current
            # "剩余17.53GB（含上月结转0MB）": an aside without a measure of its own reads like its clause.
            measure, named_last = self.clause(clause, context, last if aside else lent)
            if not aside:
                current, lent, last = context, measure, named_last or last

    def clause(self, clause: str, context: tuple[str, str] | None,
               lent: str | None) -> tuple[str | None, str | None]:
        """Read one clause into its part; return the measure it lends to the next clauses, and the last
        measure it names."""
        sizes = list(_sizes(clause))
        marks = _marks(clause)
        selling = any(w in clause for w in _SELLING)
        category, name = context or ("all", "流量")
        draft = None if selling else self.part(name, category, context is not None)
        if draft is not None:
            draft.text.append(clause)
        if not marks and lent is not None and sizes and draft is not None:
            self.take(draft, clause, lent, sizes[0])
            return lent, None
        if not marks and sizes and draft is not None and category in ("overage", "throttle"):
            self.take(draft, clause, "used", sizes[0])
        for i, (_, end, measure) in enumerate(marks):
            if draft is None:
                break
            stop = marks[i + 1][0] if i + 1 < len(marks) else len(clause)
            if measure == "none_left":
                if context is not None:
                    draft.figures.setdefault("remaining", Size(0, 0))
                continue
            size = next((s for s in sizes if end <= s[0] < stop), None)
            if size is not None:
                self.take(draft, clause, measure, size)
        last = marks[-1] if marks else None
        named = last[2] if last is not None and last[2] != "none_left" else None
        if named is not None and not any(s[0] >= last[1] for s in sizes):  # type: ignore[index]
            return named, named
        return None, named

    @staticmethod
    def take(draft: _Draft, clause: str, measure: str, found: tuple[int, int, Size]) -> None:
        start, _, size = found
        if _negative(clause, start):
            raise ImplausibleFigure(f"SMS: expected a data figure of zero or more, found a negative one in "
                                    f"{clause[:60]!r}")
        if size.bytes > MAX_FIGURE:
            raise ImplausibleFigure(f"SMS: expected data figures up to 1 PB, found {size.bytes} bytes in "
                                    f"{clause[:60]!r}")
        if measure == "threshold":
            if draft.category != "throttle":
                return
            measure = "total"
        draft.figures.setdefault(measure, size)


def _finish(drafts: list[_Draft]) -> tuple[list[Part], list[str]]:
    """Parts from the drafts: package parts become general or all data; contradictions are refused."""
    notes: list[str] = []
    kept = [d for d in drafts if d.figures]
    general = next((d for d in kept if d.category == "general"), None)
    packages = [d for d in kept if d.category == "package"]
    agree = general is None or all(_agree(general, p) for p in packages)
    for p in packages:
        if general is None:
            p.category = "general"
        elif agree:
            for measure, size in p.figures.items():
                general.figures.setdefault(measure, size)
            notes.append(f"{p.name} is read as the general quota ({general.name})")
        else:
            p.category = "all"
    parts = []
    for d in kept:
        if d.category == "package" and agree and general is not None:
            continue
        f = d.figures
        values = {m: f[m].bytes if m in f else None for m in ("total", "used", "remaining")}
        part = Part(d.name, d.category, values["total"], values["used"], values["remaining"],  # type: ignore[arg-type]
                    text="，".join(d.text), slack=sum(s.slack for s in f.values()) + 1024)
        _check(part)
        parts.append(part)
    return parts, notes


def _agree(general: _Draft, package: _Draft) -> bool:
    slack = sum(s.slack for s in (*general.figures.values(), *package.figures.values())) + 1024
    for measure in ("total", "used", "remaining"):
        a, b = general.figures.get(measure), package.figures.get(measure)
        if a is not None and b is not None and abs(a.bytes - b.bytes) > slack:
            return False
    merged = {**package.figures, **general.figures}
    if len(merged) == 3:
        return abs(merged["total"].bytes - merged["used"].bytes - merged["remaining"].bytes) <= slack
    return True


def _check(part: Part) -> None:
    total, used, left, slack = part.total, part.used, part.remaining, part.slack
    if part.category == "throttle":
        return  # the counter runs past the threshold: that is when the line is slowed
    if total is not None and used is not None and used > total + slack:
        raise ImplausibleFigure(f"SMS: {part.name}: used {used} bytes is more than its total {total} bytes")
    if total is not None and left is not None and left > total + slack:
        raise ImplausibleFigure(f"SMS: {part.name}: remaining {left} bytes is more than its total {total} bytes")
    if total is not None and used is not None and left is not None and abs(total - used - left) > slack:
        raise ImplausibleFigure(f"SMS: {part.name}: used {used} + remaining {left} bytes is not its total "
                                f"{total} bytes")


def _no_data_reason(text: str) -> str:
    if any(w in text for w in ("验证码", "校验码", "动态码", "动态密码", "验证代码")):
        what = "a verification code"
    elif any(w in text for w in ("指令有误", "指令错误", "无法识别", "输入有误", "格式不正确", "格式错误", "系统繁忙",
                                 "查询失败", "暂时无法", "不支持该")):
        what = "an error reply from the carrier"
    elif len(re.findall(r"(?:回复|发送|编辑)\s*[\"“]?[A-Za-z0-9#*]{1,8}", text)) >= 2:
        what = "a command menu"
    elif "元" in text and any(w in text for w in ("话费", "余额", "账户", "欠费", "缴费", "充值")):
        what = "a 话费 (call credit) balance"
    elif "流量" in text:
        what = "a text that mentions 流量 but states no used or remaining amount"
    else:
        what = "a text with no data figure"
    return f"SMS: not a data report: {what} (expected figures like '剩余14.23GB' or '已使用5.77GB')"


def parse_sms(text: str, now: dt.datetime, tz: ZoneInfo = CHINA, sender: str | None = None) -> SmsReading:
    """Read a carrier text. ``now``: the instant a missing year or month is completed against.

    Raises :class:`NotADataReport` (an InputError) for a text with no data figure,
    :class:`ImplausibleFigure` for figures that cannot be true, InputError for any other unreadable
    text; never anything else.
    """
    if not isinstance(text, str) or not text.strip():
        raise NotADataReport("SMS: expected the text of a carrier SMS, found an empty text")
    if len(text) > MAX_CHARS:
        raise InputError(f"SMS: expected at most {MAX_CHARS} characters (ten SMS are about 700), "
                         f"found {len(text)}")
    if now.tzinfo is None:
        now = now.replace(tzinfo=tz)
    if not FIRST_YEAR <= now.year <= LAST_YEAR:
        raise InputError(f"SMS: expected a time of receipt between {FIRST_YEAR} and {LAST_YEAR}, "
                         f"found {now.isoformat()}")
    norm = _normalise(text)
    reader = _Reader()
    for sentence in _sentences(norm):
        reader.sentence(sentence)
    parts, notes = _finish(list(reader.parts.values()))
    if not parts:
        raise NotADataReport(_no_data_reason(norm))
    at = _stated_instant(norm, now, tz)
    carrier, number = None, (sender or "").removeprefix("+86").strip() or None
    for code, default_sender, marks in _CARRIERS:
        if number == default_sender or any(m in norm for m in marks):
            carrier, number = code, number or default_sender
            break
    # A reply answers a query; a pushed warning reminds, warns, or tells a share of the quota reached.
    pushed = any(w in norm for w in _WARNING_WORDS) or _PERCENT.search(norm) is not None
    kind: Kind = "warning" if pushed and "查询" not in norm else "reply"
    if at is None:
        notes.append("the text states no instant")
    return SmsReading(at, carrier, number, kind, tuple(parts), tuple(notes))


def with_instant(reading: SmsReading, at: dt.datetime) -> SmsReading:
    return replace(reading, at=at)


def describe(reading: SmsReading) -> list[str]:
    """Human lines "国内通用流量 (general): total 30 GiB, used 9.99 GiB, remaining 20 GiB"."""
    from datacap.units import format_bytes

    lines = []
    for p in reading.parts:
        figs = ", ".join(f"{m} {format_bytes(v)}" for m in ("total", "used", "remaining")
                         if (v := p.get(m)) is not None)
        label = "threshold" if p.category == "throttle" else "total"
        lines.append(f"{p.name} ({p.category}): {figs.replace('total', label)}")
    return lines


def __getattr__(name: str) -> Any:
    # `sms_calibrations` lives with the rest of calibration by part; kept importable from here.
    if name == "sms_calibrations":
        from datacap.plans.carrier import sms_calibrations

        return sms_calibrations
    raise AttributeError(f"module 'datacap.plans.sms' has no attribute {name!r}")
