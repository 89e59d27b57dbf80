"""Pure alert evaluation: plan status + usage history in, firings out. No I/O, no clock.

A *firing* is a condition that holds now. Whether it is delivered is decided by :func:`decide` against
the stored state: each (rule, card, subject) fires once per period (the cycle, or the local day for
day-based conditions), and re-arms when it has been seen clear.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from datacap.alerts.config import (
    Action,
    AlertRule,
    CalibrationOlder,
    CarrierDisagrees,
    CycleReset,
    DaySpike,
    Exhausted,
    ForecastExhausts,
    Language,
    NewEntity,
    RemainingBelow,
    Threshold,
    Throttled,
    UsedAbove,
    canonical_when,
)
from datacap.alerts.messages import format_age, render, word
from datacap.errors import InputError
from datacap.model import AttribDelta
from datacap.timeutil import parse_instant
from datacap.units import format_bytes

_UTC = ZoneInfo("UTC")  # how a (non-conforming) naive time in the status object is read
HYSTERESIS_MAX = 50 * 1024**2
SPIKE_WINDOW_DAYS = 14
SPIKE_MIN_HISTORY_DAYS = 3
CYCLE_RESET_WINDOW = dt.timedelta(days=3)


@dataclass(frozen=True, slots=True)
class EntityUsage:
    """Bytes one app / client / service used today on a card."""

    kind: str  # "app" | "client" | "service"
    name: str
    bytes: int


@dataclass(slots=True)
class CardHistory:
    """What the status object does not carry, per card; all optional (a missing part skips its rule)."""

    trailing_days: list[tuple[dt.date, int]] = field(default_factory=list)  # days before today
    today_bytes: int | None = None
    today_usage: list[EntityUsage] = field(default_factory=list)
    seen_recently: set[tuple[str, str]] = field(default_factory=set)  # (kind, name), previous 30 days
    last_cycle_total: int | None = None
    last_cycle_top: list[tuple[str, int]] = field(default_factory=list)
    calibration_age_s: float | None = None  # default: from the status' calibration.at


@dataclass(slots=True)
class AlertInputs:
    """`status` is the object of `datacap status --json`; `history` is keyed by card name."""

    status: Mapping[str, Any]
    history: dict[str, CardHistory] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Firing:
    rule_key: str
    card: str
    subject: str  # bucket name, "" for the card / unscoped buckets together, "app:NAME" for new ones
    period: str  # cycle start (ISO) or local date: the once-per unit
    kind: str
    level: str  # the canonical condition, e.g. "remaining<20%"
    title: str
    body: str
    figures: Mapping[str, Any]
    notify: tuple[str, ...] = ()
    action: Action | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule_key, self.card, self.subject)


@dataclass(frozen=True, slots=True)
class Evaluation:
    firings: list[Firing]
    scopes: set[tuple[str, str]]  # (rule_key, card) pairs that were evaluated: absent keys there cleared
    # Keys whose condition is false but within the hysteresis margin: they neither fire nor clear, so a
    # figure wobbling around a threshold (calibration, rounding) cannot re-arm and re-fire an alert.
    sticky: set[tuple[str, str, str]] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Target:
    subject: str
    label: str
    quota: int | None
    used: int
    remaining: int | None


@dataclass(frozen=True, slots=True)
class Options:
    language: Language = "en"
    spike_floor: int = 10 * 1024**2


def usage_by_entity(deltas: Iterable[AttribDelta], card: str | None = None) -> list[EntityUsage]:
    """Sum attributed deltas (e.g. today's, from the store) into per app / client / service totals.

    A delta counts for each dimension it names: an app's flow to a service counts for both.
    """
    totals: dict[tuple[str, str], int] = {}
    for d in deltas:
        if card is not None and d.card != card:
            continue
        names = (("app", d.app.name if d.app else None),
                 ("client", (d.client.hostname or d.client.mac or d.client.ip) if d.client else None),
                 ("service", d.service))
        for kind, name in names:
            if name:
                totals[(kind, name)] = totals.get((kind, name), 0) + d.rx_bytes + d.tx_bytes
    return [EntityUsage(kind, name, total) for (kind, name), total in sorted(totals.items())]


def evaluate(rules: Sequence[AlertRule], inputs: AlertInputs, at: dt.datetime,
             options: Options | None = None) -> list[Firing]:
    """Every (rule, card, subject) whose condition holds at ``at``."""
    return evaluate_all(rules, inputs, at, options).firings


def evaluate_all(rules: Sequence[AlertRule], inputs: AlertInputs, at: dt.datetime,
                 options: Options | None = None) -> Evaluation:
    """Like :func:`evaluate`, plus which (rule, card) pairs were looked at (so absent firings clear).

    A malformed status object is an InputError naming the card and what was wrong, not a traceback.
    """
    opts = options or Options()
    firings: list[Firing] = []
    scopes: set[tuple[str, str]] = set()
    sticky: set[tuple[str, str, str]] = set()
    cards = inputs.status.get("cards")
    if not isinstance(cards, list):
        raise InputError(f"status: expected a 'cards' list, found {type(cards).__name__}")
    for index, card in enumerate(cards):
        if not isinstance(card, Mapping) or not isinstance(card.get("name"), str):
            raise InputError(f"status: cards[{index}]: expected an object with a 'name', found {card!r:.80}")
        if card.get("state", "active") != "active":
            continue  # an expired or future card keeps its state untouched
        history = inputs.history.get(card["name"], CardHistory())
        for rule in rules:
            if rule.card is not None and rule.card != card["name"]:
                continue
            scopes.add((rule.key, card["name"]))
            try:
                firings.extend(_evaluate_rule(rule, card, history, at, opts, sticky))
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise InputError(f"status: card {card['name']!r}: unreadable for rule {rule.key!r}: "
                                 f"{type(err).__name__}: {err}") from None
    return Evaluation(firings, scopes, sticky)


def _evaluate_rule(rule: AlertRule, card: Mapping[str, Any], hist: CardHistory, at: dt.datetime,
                   opts: Options, sticky: set[tuple[str, str, str]]) -> list[Firing]:
    cond = rule.condition
    lang = opts.language
    base = _card_figures(card, at, lang)
    cycle_period = str(card.get("cycle", {}).get("start", ""))
    day_period = at.date().isoformat()
    out: list[tuple[str, str, str, dict[str, str], dict[str, Any]]] = []  # subject, kind, period, text, raw

    match cond:
        case RemainingBelow(th) | UsedAbove(th):
            test = _below if isinstance(cond, RemainingBelow) else _above
            for t in select_targets(card, rule.bucket, lang):
                if test(t, th, 0):
                    kind = "remaining" if isinstance(cond, RemainingBelow) else "used"
                    kind += "" if t.quota else "_unlimited"  # "used > 5 GB" on an unlimited plan
                    out.append((t.subject, kind, cycle_period, _target_figures(t, th, lang), _raw(t)))
                elif test(t, th, _slack(t, th)):
                    sticky.add((rule.key, card["name"], t.subject))
        case Exhausted():
            for t in select_targets(card, rule.bucket, lang):
                if t.quota and t.remaining is not None and t.remaining <= 0:
                    figs = _target_figures(t, None, lang)
                    out.append((t.subject, "exhausted", cycle_period, figs, _raw(t)))
                elif t.quota and t.remaining is not None and t.remaining <= _slack(t, None):
                    sticky.add((rule.key, card["name"], t.subject))
        case Throttled():
            if card.get("throttled"):
                out.append(("", "throttled", cycle_period, {}, {"throttled": True}))
        case ForecastExhausts():
            out.extend(_forecast(card, rule, lang, cycle_period))
        case DaySpike(factor):
            out.extend(_spike(factor, hist, at, opts, day_period))
        case NewEntity(min_bytes, kinds):
            for u in sorted(hist.today_usage, key=lambda u: -u.bytes):
                if u.kind in kinds and u.bytes > min_bytes and (u.kind, u.name) not in hist.seen_recently:
                    figs = {"kind": word(lang, u.kind), "name": u.name, "amount": format_bytes(u.bytes),
                            "threshold": format_bytes(min_bytes)}
                    out.append((f"{u.kind}:{u.name}", "new", day_period, figs, {"bytes": u.bytes}))
        case CycleReset():
            start = _instant(card.get("cycle", {}).get("start"))
            if hist.last_cycle_total is not None and start and start <= at < start + CYCLE_RESET_WINDOW:
                figs = {"last_total": format_bytes(hist.last_cycle_total),
                        "top": _top(hist.last_cycle_top, lang)}
                raw = {"last_cycle_total": hist.last_cycle_total}
                out.append(("", "cycle_reset", cycle_period, figs, raw))
        case CalibrationOlder(seconds):
            out.extend(_calibration(card, hist, at, seconds, lang, cycle_period))
        case CarrierDisagrees():
            out.extend(_disagreements(card, lang, cycle_period))

    firings = []
    for subject, kind, period, figs, raw in out:
        values = {**base, "bucket": figs.pop("bucket_label", word(lang, "together")), **figs}
        title, body = render(kind, lang, values)
        figures = {"card": card["name"], "bucket": subject or None, **raw}
        firings.append(Firing(rule.key, card["name"], subject, period, kind, canonical_when(cond), title,
                              body, figures, tuple(rule.notify), rule.parsed_action))
    return firings


def select_targets(card: Mapping[str, Any], bucket: str | None, lang: Language) -> list[Target]:
    """The quota(s) a rule looks at: one named bucket, each bucket ('*'), or the unscoped ones summed."""
    buckets = list(card.get("buckets", []))
    if bucket == "*":
        return [_target(b["name"], b["name"], [b]) for b in buckets]
    if bucket is not None:
        return [_target(b["name"], b["name"], [b]) for b in buckets if b.get("name") == bucket]
    general = (card.get("headline") or {}).get("general")
    if general is not None:
        # The status model's general quota: unscoped buckets, their rollover and the packs in force,
        # never a scoped or idle-hours bucket (the same figure status, dashboard and reports show).
        return [Target("", word(lang, "together"), general["quota"], int(general["used"]),
                       general["left"] if general["quota"] is not None else None)]
    # A document without a headline (hand-built): every scope key is None when unset.
    unscoped = [b for b in buckets if not any((b.get("scope") or {}).values())]
    if not unscoped:
        return [Target("", word(lang, "together"), None, int(card.get("used_bytes", 0)), None)]
    return [_target("", word(lang, "together"), unscoped)]


def _target(subject: str, label: str, buckets: list[Mapping[str, Any]]) -> Target:
    used = sum(int(b.get("used_bytes") or 0) for b in buckets)
    if any(b.get("quota_bytes") is None for b in buckets):
        return Target(subject, label, None, used, None)  # one unlimited bucket makes the sum unlimited
    quota = sum(int(b["quota_bytes"]) for b in buckets)
    remaining = sum(int(b["remaining_bytes"]) if b.get("remaining_bytes") is not None
                    else int(b["quota_bytes"]) - int(b.get("used_bytes") or 0) for b in buckets)
    return Target(subject, label, quota, used, remaining)


def _below(t: Target, th: Threshold, slack: int) -> bool:
    if t.remaining is None or not t.quota:
        return False
    if th.percent is not None:
        return (t.remaining - slack) * 100 < th.percent * t.quota
    return th.bytes is not None and t.remaining - slack < th.bytes


def _above(t: Target, th: Threshold, slack: int) -> bool:
    if th.percent is not None:
        return bool(t.quota) and (t.used + slack) * 100 > th.percent * (t.quota or 0)
    return th.bytes is not None and t.used + slack > th.bytes


def _slack(t: Target, th: Threshold | None) -> int:
    """The hysteresis margin: 1 % of the quota (or of a size threshold), at most HYSTERESIS_MAX, so
    a real top-up (a pack, a new cycle) still re-arms while a calibration nudge does not."""
    base = t.quota or (th.bytes if th is not None and th.bytes is not None else 0)
    return min(base // 100, HYSTERESIS_MAX)


def _pct(part: int, whole: int | None) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "?"


def _target_figures(t: Target, th: Threshold | None, lang: Language) -> dict[str, str]:
    figs = {
        "bucket_label": t.label,
        "quota": format_bytes(t.quota) if t.quota is not None else word(lang, "unlimited"),
        "used": format_bytes(t.used),
        "remaining": (format_bytes(max(t.remaining, 0)) if t.remaining is not None
                      else word(lang, "unlimited")),
        "remaining_pct": _pct(max(t.remaining or 0, 0), t.quota),
        "used_pct": _pct(t.used, t.quota),
    }
    if th is not None:
        figs["threshold"] = f"{th.percent:g}%" if th.percent is not None else format_bytes(th.bytes or 0)
    return figs


def _raw(t: Target) -> dict[str, Any]:
    return {"quota_bytes": t.quota, "used_bytes": t.used, "remaining_bytes": t.remaining}


def _card_figures(card: Mapping[str, Any], at: dt.datetime, lang: Language) -> dict[str, str]:
    cycle = card.get("cycle") or {}
    return {
        "card": str(card["name"]),
        "cycle_start": _day(cycle.get("start"), at),
        "cycle_end": _day(cycle.get("end"), at),
        "used": format_bytes(int(card.get("used_bytes") or 0)),
        "overage": format_bytes(int(card.get("overage_bytes") or 0)),
    }


def _forecast(card: Mapping[str, Any], rule: AlertRule, lang: Language, period: str
              ) -> list[tuple[str, str, str, dict[str, str], dict[str, Any]]]:
    fc = card.get("forecast") or {}
    when = _instant(fc.get("exhausted_at"))
    end = _instant((card.get("cycle") or {}).get("end"))
    if when is None or end is None or when >= end:
        return []
    targets = select_targets(card, rule.bucket if rule.bucket != "*" else None, lang)
    t = targets[0] if targets else None
    figs = {"exhausted_at": when.date().isoformat(),
            "daily_budget": format_bytes(int(fc.get("daily_budget_bytes") or 0)),
            "bucket_label": t.label if t else word(lang, "together"),
            "remaining": format_bytes(max(t.remaining, 0)) if t and t.remaining is not None else "?"}
    raw = {"exhausted_at": fc.get("exhausted_at"), "daily_budget_bytes": fc.get("daily_budget_bytes")}
    return [(t.subject if t else "", "forecast", period, figs, raw)]


def _spike(factor: float, hist: CardHistory, at: dt.datetime, opts: Options, period: str
           ) -> list[tuple[str, str, str, dict[str, str], dict[str, Any]]]:
    today = at.date()
    window = sorted((d, b) for d, b in hist.trailing_days
                    if today - dt.timedelta(days=SPIKE_WINDOW_DAYS) <= d < today)
    if hist.today_bytes is None or len(window) < SPIKE_MIN_HISTORY_DAYS:
        return []  # too little history to call anything a spike
    average = sum(b for _, b in window) / len(window)
    if hist.today_bytes < opts.spike_floor or hist.today_bytes <= factor * average:
        return []
    ratio = hist.today_bytes / average if average else float("inf")
    top = [(u.name, u.bytes) for u in sorted(hist.today_usage, key=lambda u: -u.bytes) if u.kind == "app"]
    figs = {"today": format_bytes(hist.today_bytes), "average": format_bytes(average),
            "days": str(len(window)),
            "ratio": f"{ratio:.1f}" if average else "∞", "factor": f"{factor:g}",
            "top": _top(top, opts.language)}
    return [("", "spike", period, figs, {"today_bytes": hist.today_bytes, "average_bytes": round(average)})]


def _calibration(card: Mapping[str, Any], hist: CardHistory, at: dt.datetime, seconds: int, lang: Language,
                 period: str) -> list[tuple[str, str, str, dict[str, str], dict[str, Any]]]:
    calib = card.get("calibration") or {}
    cal_at = _instant(calib.get("at"))
    age = hist.calibration_age_s
    if age is None and cal_at is not None:
        age = (at - cal_at).total_seconds()
    if age is not None and age <= seconds:
        return []
    figs = {"age": format_age(age, lang) if age is not None else word(lang, "never"),
            "calibrated_at": _day(calib.get("at"), at) if cal_at else word(lang, "never"),
            "threshold": format_age(seconds, lang)}
    return [("", "calibration", period, figs, {"age_seconds": age})]


def _disagreements(card: Mapping[str, Any], lang: Language,
                   period: str) -> list[tuple[str, str, str, dict[str, str], dict[str, Any]]]:
    """One firing per bucket whose carrier total disagrees with the config (once per cycle)."""
    out = []
    for m in card.get("carrier_mismatch") or []:
        figs = {"part": str(m["part"]), "target": str(m["bucket"]),
                "carrier_total": format_bytes(int(m["carrier_total"])),
                "config_quota": format_bytes(int(m["config_quota"]))}
        raw = {"part": m["part"], "carrier_total": m["carrier_total"], "config_quota": m["config_quota"]}
        out.append((f"carrier:{m['bucket']}", "carrier_disagrees", period, figs, raw))
    return out


def _top(items: Sequence[tuple[str, int]], lang: Language, n: int = 3) -> str:
    if not items:
        return word(lang, "none")
    sep = "、" if lang == "zh-CN" else ", "
    return sep.join(f"{name} {format_bytes(b)}" for name, b in sorted(items, key=lambda x: -x[1])[:n])


def _instant(value: Any) -> dt.datetime | None:
    """A status time field; null is None, a malformed one an InputError (never a silent guess)."""
    if not value:
        return None
    return parse_instant(str(value), _UTC, what="status time field")


def _day(value: Any, at: dt.datetime) -> str:
    inst = _instant(value)
    return inst.astimezone(at.tzinfo).strftime("%Y-%m-%d %H:%M") if inst else "?"


# ---------------------------------------------------------------- once-per-period state machine


@dataclass(frozen=True, slots=True)
class StoredState:
    """The persisted state of one (rule, card, subject)."""

    rule_key: str
    card: str
    subject: str
    period: str
    status: str  # "fired" | "cleared"
    fired_at: int | None = None  # UTC epoch seconds
    cleared_at: int | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    fire: list[Firing]
    clear: list[StoredState]


def decide(evaluation: Evaluation, stored: Mapping[tuple[str, str, str], StoredState]) -> Decision:
    """Which firings are new (never fired in this period, or re-armed) and which fired states cleared."""
    fire = []
    holding = {f.key for f in evaluation.firings}
    for f in evaluation.firings:
        prev = stored.get(f.key)
        if prev is None or prev.status == "cleared" or prev.period != f.period:
            fire.append(f)
    clear = [s for key, s in stored.items()
             if s.status == "fired" and key not in holding and key not in evaluation.sticky
             and (s.rule_key, s.card) in evaluation.scopes]
    return Decision(fire, clear)
