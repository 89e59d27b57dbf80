"""Reading the usage figures out of Chinese carriers' SMS replies and warnings.

China Mobile (10086), China Unicom (10010) and China Telecom (10001) answer CXLL/108 and push
warnings in free text, each in several styles over the years. The text is cut into clauses at
Chinese and ASCII punctuation (parenthesised notes without a figure are dropped, those with one
become clauses of their own). Each clause gets a *category* from its keywords (结转 rollover,
达量限速 throttle, 专属/定向 scoped, 通用 general, else the category of the clause before it in the
same sentence, else the total) and one figure per *measure* keyword (剩余 remaining, 已使用 used,
共/总量 quota, 已用尽 none left, 超过…限速 throttle threshold), the first size after the keyword.
Sizes may be compound (``9GB1023.98MB``); a size followed by 流量/网络/套餐 (``4G流量``) is a
network generation, not a size.

The instant is the one the text states after 截至/截止 (``2021年01月04日09时47分``, ``08月07日09点``,
``25日10时``); a missing year or month means the most recent such instant not after ``now``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

from datacap.errors import InputError
from datacap.model import UsageRecord
from datacap.plans.config import CardConfig
from datacap.plans.engine import ROLLOVER_PREFIX, Calibration, make_calibration

Category = Literal["general", "scoped", "rollover", "throttle", "offpeak", "local", "total"]
Measure = Literal["remaining", "used", "quota", "threshold"]

_UNIT = {"t": 1024**4, "tb": 1024**4, "g": 1024**3, "gb": 1024**3, "m": 1024**2, "mb": 1024**2,
         "k": 1024, "kb": 1024, "b": 1}
_PART = r"\d+(?:\.\d+)?\s*(?:TB|GB|MB|KB|T|G|M|K|B)(?![A-Za-z])"
# A size, possibly compound; not a network generation ("4G流量", "5G网络", "4G/5G").
_SIZE_RE = re.compile(rf"(?<![\d./])((?:{_PART}\s*)+)(?!\s*(?:流量|网络|套餐|用户|手机|信号|网|/))",
                      re.IGNORECASE)
_PART_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(TB|GB|MB|KB|T|G|M|K|B)", re.IGNORECASE)
_WHEN_RE = re.compile(
    r"截[至止]\s*(?:到|至)?\s*(?:(\d{4})\s*年)?\s*(?:(\d{1,2})\s*月)?\s*(\d{1,2})\s*[日号]\s*"
    r"(?:(\d{1,2})\s*(?:时|点|:|：)\s*(?:(\d{1,2})\s*分?)?)?")
_WHEN_ISO_RE = re.compile(r"截[至止]\s*(?:到|至)?\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?")
_SENTENCE_RE = re.compile(r"[。；;！!？?\n]|(?<![\d.])\d[.、．](?!\d)")
_CLAUSE_RE = re.compile(r"[，,：:]")
_PAREN_RE = re.compile(r"[（(]([^（）()]*)[）)]")
_BRACKET_RE = re.compile(r"【[^】]*】")

# Keyword tables; the first matching row wins, so the more specific come first.
_CATEGORIES: tuple[tuple[Category, tuple[str, ...]], ...] = (
    ("rollover", ("结转",)),
    ("throttle", ("达量限速", "限速")),
    ("scoped", ("专属", "定向", "免流", "指定应用", "指定APP")),
    ("offpeak", ("闲时", "夜间")),
    ("local", ("本地", "省内")),
    ("general", ("通用", "国内流量", "全国流量")),
    ("total", ("套餐内", "总量", "总流量", "数据流量", "移动数据")),
)
_MEASURES: tuple[tuple[Measure | Literal["none_left"], tuple[str, ...]], ...] = (
    ("none_left", ("已用尽", "已用完", "用尽", "用完")),
    ("used", ("已使用", "已用", "使用了", "用了", "已消费", "使用")),
    ("remaining", ("剩余", "还剩", "尚余", "可用", "余")),
    ("threshold", ("超过", "超出")),
    ("quota", ("共", "总量", "总流量", "合计")),
)
FUTURE_SLACK = dt.timedelta(minutes=15)
_CARRIERS = (("China Mobile", "10086", ("中国移动", "10086")),
             ("China Unicom", "10010", ("中国联通", "10010")),
             ("China Telecom", "10001", ("中国电信", "10001")))


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure read from the text: ``category`` ``measure`` = ``bytes``, from ``clause``."""

    category: Category
    measure: Measure
    bytes: int
    clause: str


@dataclass(frozen=True)
class SmsReading:
    """What a carrier SMS says. Sizes are bytes; None when the text does not say."""

    at: dt.datetime | None
    carrier: str | None
    sender: str | None
    figures: tuple[Figure, ...] = field(default=())

    def get(self, category: Category, measure: Measure) -> int | None:
        """The first figure of that category and measure (the text lists the summary first)."""
        for fig in self.figures:
            if fig.category == category and fig.measure == measure:
                return fig.bytes
        return None

    @property
    def general_used(self) -> int | None:
        used = self.get("general", "used")
        quota, left = self.get("general", "quota"), self.get("general", "remaining")
        if used is None and quota is not None and left is not None:
            used = max(0, quota - left)
        if used is None and left is not None:
            # "套餐内流量共20G ... 国内通用流量剩余14.23G": the plan's total is the general quota.
            total_quota = self.get("total", "quota")
            if total_quota is not None and total_quota >= left and self.get("scoped", "remaining") is None:
                used = total_quota - left
        return used

    @property
    def general_remaining(self) -> int | None:
        return self.get("general", "remaining")

    @property
    def scoped_remaining(self) -> int | None:
        return self.get("scoped", "remaining")

    @property
    def scoped_used(self) -> int | None:
        return self.get("scoped", "used")

    @property
    def rollover_remaining(self) -> int | None:
        return self.get("rollover", "remaining")

    @property
    def throttle_used(self) -> int | None:
        return self.get("throttle", "used")

    @property
    def throttle_threshold(self) -> int | None:
        return self.get("throttle", "threshold")

    @property
    def total_used(self) -> int | None:
        return self.get("total", "used")

    @property
    def total_remaining(self) -> int | None:
        return self.get("total", "remaining")

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary, for `datacap calibrate --sms` to show what it read."""
        names = ("general_used", "general_remaining", "scoped_used", "scoped_remaining", "rollover_remaining",
                 "throttle_used", "throttle_threshold", "total_used", "total_remaining")
        out: dict[str, object] = {"at": self.at.isoformat() if self.at else None, "carrier": self.carrier,
                                  "sender": self.sender}
        out.update({f"{name}_bytes": getattr(self, name) for name in names})
        return out


def size_of(text: str) -> int:
    """``"9GB1023.98MB"`` -> bytes (binary units, as carriers bill)."""
    return round(sum(float(n) * _UNIT[u.lower()] for n, u in _PART_RE.findall(text)))


def _stated_instant(text: str, now: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
    local_now = now.astimezone(tz)
    iso = _WHEN_ISO_RE.search(text)
    if iso:
        y, mo, d, h, mi = iso.groups()
        return _past(_not_after(_make(int(y), int(mo), int(d), h, mi, tz, text), h, now), now, iso.group(0))
    match = _WHEN_RE.search(text)
    if not match:
        return None
    y, mo, d, h, mi = match.groups()
    if y is not None:
        stated = _make(int(y), int(mo or local_now.month), int(d), h, mi, tz, text)
        return _past(_not_after(stated, h, now), now, match.group(0))
    # A missing year (or month) means the most recent such instant not after now.
    year, month = local_now.year, local_now.month
    for _ in range(14):
        if mo is not None:
            candidate = _make_or_none(year, int(mo), int(d), h, mi, tz)
            year -= 1
        else:
            candidate = _make_or_none(year, month, int(d), h, mi, tz)
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        if candidate is not None and _not_after(candidate, h, now) <= now:
            return _not_after(candidate, h, now)
    raise InputError(f"SMS: cannot place the date {match.group(0)!r} in the past")


def _past(instant: dt.datetime, now: dt.datetime, text: str) -> dt.datetime:
    # A few minutes of clock difference between the carrier and this machine are normal.
    if instant > now + FUTURE_SLACK:
        raise InputError(f"SMS: expected a time in the past after 截至, found {text!r}, which is after "
                         f"now ({now.isoformat()})")
    return instant


def _not_after(instant: dt.datetime, hour: str | None, now: dt.datetime) -> dt.datetime:
    """A date without a time stands for the end of that day; when that day is today, for now."""
    if hour is None and instant - dt.timedelta(days=1) <= now < instant:
        return now
    return instant


def _make_or_none(y: int, mo: int, d: int, h: str | None, mi: str | None, tz: ZoneInfo) -> dt.datetime | None:
    try:
        day = dt.date(y, mo, d)
    except ValueError:
        return None
    if h is None:
        # "截至11月24日" is the state at the end of that day.
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    hour, minute = int(h), int(mi or 0)
    if hour > 24 or minute > 59:
        return None
    if hour == 24:
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, minute), tzinfo=tz)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)


def _make(y: int, mo: int, d: int, h: str | None, mi: str | None, tz: ZoneInfo, text: str) -> dt.datetime:
    made = _make_or_none(y, mo, d, h, mi, tz)
    if made is None:
        raise InputError("SMS: expected a real date and time after 截至, found an impossible one in "
                         f"{text[:80]!r}")
    return made


def _clauses(text: str) -> list[list[str]]:
    """Sentences of clauses; parenthesised notes with a figure become clauses of their own."""
    text = _BRACKET_RE.sub("。", text).replace("“", "").replace("”", "").replace('"', "")

    def lift(match: re.Match[str]) -> str:
        # "剩余17.53GB（含上月结转0MB）" -> its own clause right after; "（限指定APP使用）" -> gone.
        return f"，{match.group(1)}，" if _SIZE_RE.search(match.group(1)) else ""

    while _PAREN_RE.search(text):
        text = _PAREN_RE.sub(lift, text)
    sentences = [s for s in _SENTENCE_RE.split(text) if s.strip()]
    return [[c.strip() for c in _CLAUSE_RE.split(s) if c.strip()] for s in sentences]


def _category(clause: str) -> Category | None:
    for category, words in _CATEGORIES:
        if any(w in clause for w in words):
            return category
    return None


def _figures(clause: str, category: Category, explicit: bool,
             inherited: Measure | None) -> tuple[list[Figure], Measure | None]:
    """One figure per measure keyword: the first size after it, before the next keyword. A clause
    with a size but no keyword ("含上月结转0MB", "剩余流量：通用5GB") takes the last measure named
    before it in the sentence, which is returned for the next clause.
    ``explicit``: the category was named in this sentence, so "已用尽" is about something."""
    marks: list[tuple[int, int, Measure | Literal["none_left"]]] = []
    for measure, words in _MEASURES:
        for word in words:
            for m in re.finditer(re.escape(word), clause):
                if not any(s <= m.start() < e for s, e, _ in marks):
                    marks.append((m.start(), m.end(), measure))
    marks.sort()
    if not marks and inherited is not None:
        marks.append((0, 0, inherited))
    out: list[Figure] = []
    for i, (_, end, measure) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else len(clause)
        if measure == "none_left":
            if explicit:
                out.append(Figure(category, "remaining", 0, clause))
            continue
        size = _SIZE_RE.search(clause, end, stop)
        if size and not (measure == "threshold" and category != "throttle"):
            out.append(Figure(category, measure, size_of(size.group(1)), clause))
    named = [m for _, _, m in marks if m != "none_left"]
    return out, named[-1] if named else inherited


def parse_sms(text: str, now: dt.datetime, tz: ZoneInfo, sender: str | None = None) -> SmsReading:
    """Read a carrier SMS. Raises InputError (changing nothing) when it holds no usage figure."""
    if not text or not text.strip():
        raise InputError("SMS: expected the text of a carrier SMS, found an empty text")
    figures: list[Figure] = []
    for sentence in _clauses(text):
        current: Category | None = None
        measure: Measure | None = None
        for clause in sentence:
            current = _category(clause) or current
            found, measure = _figures(clause, current or "total", current is not None, measure)
            figures += found
    if not figures:
        shown = " ".join(text.split())[:80]
        raise InputError("SMS: expected a carrier usage message with figures like '剩余14.23G' or "
                         "'已使用5.77GB', "
                         f"found none in {shown!r}")
    carrier, number = None, sender
    for name, default_sender, marks in _CARRIERS:
        if any(m in text or m == sender for m in marks):
            carrier, number = name, sender or default_sender
            break
    return SmsReading(_stated_instant(text, now, tz), carrier, number, tuple(figures))


def describe(figures: Sequence[Figure]) -> list[str]:
    """Human lines "general remaining: 14.23 GiB" for showing what was read."""
    from datacap.units import format_bytes

    return [f"{f.category} {f.measure}: {format_bytes(f.bytes)}  ({f.clause})" for f in figures]


def sms_calibrations(reading: SmsReading, card: CardConfig, records: Sequence[UsageRecord],
                     calibrations: Sequence[Calibration], tz: ZoneInfo, now: dt.datetime, *,
                     at: dt.datetime | None = None, ethernet_ifaces: frozenset[str] | set[str] = frozenset(),
                     known_since: dt.datetime | None = None) -> tuple[list[Calibration], list[str]]:
    """Calibrations of ``card`` from what the SMS says, and notes on the figures that could not be used.

    The instant is the one the text states, else ``at``, else ``now``. The general figure calibrates the
    unscoped buckets together (rolled-over quota included, used first); the 专属/定向 figure the card's
    only services/apps-scoped bucket or pack; without a general figure, the 结转 figure the rolled-over
    quota of the card's only ``rollover = true`` bucket. Raises
    InputError when no figure applies to the card, so nothing is stored.
    """
    instant = reading.at or at or now
    source = f"sms:{reading.sender}" if reading.sender else "sms"
    made: list[Calibration] = []
    notes: list[str] = []

    def add(bucket: str | None, used: int | None, remaining: int | None, what: str) -> None:
        if used is None and remaining is None:
            return
        try:
            made.append(make_calibration(card, records, [*calibrations, *made], instant, tz, used=used,
                                         remaining=None if used is not None else remaining, bucket=bucket,
                                         source=source, ethernet_ifaces=ethernet_ifaces,
                                         known_since=known_since))
        except InputError as err:
            notes.append(f"{what} figure not used: {err}")

    scoped = [c.name for c in [*card.buckets, *card.packs] if c.services or c.apps]
    if reading.general_used is not None or reading.general_remaining is not None:
        add(None, reading.general_used, reading.general_remaining, "general (通用)")
    elif not scoped:
        add(None, reading.total_used, reading.total_remaining, "total")
    if reading.scoped_used is not None or reading.scoped_remaining is not None:
        if len(scoped) == 1:
            add(scoped[0], reading.scoped_used, reading.scoped_remaining, "scoped (专属/定向)")
        else:
            notes.append(f"scoped (专属/定向) figure not used: card {card.name!r} has {len(scoped)} "
                         "services/apps-scoped buckets; calibrate one with --bucket")
    rolling = [b.name for b in card.buckets if b.rollover]
    if reading.rollover_remaining is not None and made and made[0].bucket is None:
        # The general figure includes the rolled-over quota, which it fills first, as carriers do.
        notes.append("rollover (结转) figure is part of the general figure")
    elif reading.rollover_remaining is not None:
        if len(rolling) == 1:
            add(ROLLOVER_PREFIX + rolling[0], None, reading.rollover_remaining, "rollover (结转)")
        else:
            notes.append(f"rollover (结转) figure not used: card {card.name!r} has {len(rolling)} "
                         "buckets with rollover = true")
    if reading.throttle_used is not None:
        notes.append("throttle (达量限速) figure is shown, not calibrated: the throttle counts all traffic")
    if not made:
        raise InputError(f"SMS: no figure in it applies to card {card.name!r}; nothing was changed"
                         + ("\n" + "\n".join(notes) if notes else ""))
    return made, notes
