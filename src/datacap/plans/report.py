"""Turning the engine's charged state into the `datacap status --json` card object."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from datacap.plans import forecast as fc
from datacap.plans.config import BucketConfig, CardConfig, PackConfig
from datacap.plans.cycles import Cycle, cycle_at
from datacap.plans.overage import cycle_cost
from datacap.plans.walk import pack_span
from datacap.timeutil import iso

if TYPE_CHECKING:
    from datacap.plans.walk import Allowance, CycleState, Walker


def status_document(at: dt.datetime, cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole `datacap status --json` document around the card objects."""
    return {"at": iso(at), "cards": cards}


def _bucket(a: Allowance, card: CardConfig, hi: int, tz: ZoneInfo) -> dict[str, Any]:
    cfg = card.buckets[a.index] if a.kind != "pack" else card.packs[a.index - len(card.buckets)]
    out: dict[str, Any] = {
        "name": a.name, "kind": a.kind,
        "quota_bytes": a.quota, "used_bytes": a.used, "remaining_bytes": a.left,
        "expires": iso(dt.datetime.fromtimestamp(a.end, tz)),
        "scope": cfg.scope_dict(),
        "active": a.start <= hi < a.end,
    }
    if a.kind == "pack":
        out["start"] = iso(dt.datetime.fromtimestamp(a.start, tz))
        out["used_in_cycle_bytes"] = a.used - a.base  # a pack may have begun in an earlier cycle
    return out


def _history(walker: Walker, series: dict[int, int], first: int, today: int,
             tz: ZoneInfo) -> list[tuple[dt.date, float]]:
    return [(dt.datetime.fromtimestamp(m, tz).date(), float(series.get(m, 0)))
            for m in walker.midnights if first <= m < today]


def _forecast(card: CardConfig, walker: Walker, state: CycleState, at: dt.datetime, tz: ZoneInfo,
              known_since: dt.datetime | None) -> dict[str, Any]:
    cycle = state.cycle
    now = int(at.timestamp())
    general = [a for a in state.allowances if not a.scoped and a.end > now]
    active = [a for a in general if a.start <= now]
    unlimited = any(a.quota is None for a in active)
    remaining = None if unlimited or not active else sum(a.left or 0 for a in active)
    if cycle.state != "active":
        used = state.used
        return {"cycle_end_used_bytes": used, "exhausted_at": None,
                "daily_budget_bytes": 0 if cycle.state == "expired" else None, "method": "none"}
    today = walker.midnights[max(0, bisect_right(walker.midnights, now) - 1)]
    # Days before the store knew the card are unknown, not zero; a day known only in part is left out.
    known = max(walker.lo, int(known_since.timestamp()) if known_since else 0)
    first = walker.midnights[bisect_left(walker.midnights, known)] if known <= walker.midnights[-1] else today
    horizon = max(1, round((cycle.end_epoch - now) / fc.DAY))
    model = fc.fit(_history(walker, walker.total_by_day, first, today, tz), horizon)
    model_g = fc.fit(_history(walker, walker.general_by_day, first, today, tz), horizon)
    elapsed = max(1, now - cycle.start_epoch)
    general_used = sum(v for d, v in walker.general_by_day.items() if d >= cycle.start_epoch)
    ahead = fc.project(model, at, cycle.end, tz, state.used / elapsed)
    ahead_g = fc.project(model_g, at, cycle.end, tz, general_used / elapsed)
    pools = [fc.Pool(max(a.start, now), a.end, None if a.quota is None else float(a.left or 0))
             for a in general]
    when = None if unlimited or not general else fc.exhausted_at(ahead_g, pools)
    days_left = max(1.0, (cycle.end_epoch - now) / fc.DAY)
    return {
        "cycle_end_used_bytes": int(state.used + sum(x for _, _, x in ahead)),
        "exhausted_at": None if when is None or when >= cycle.end_epoch
        else iso(dt.datetime.fromtimestamp(when, tz)),
        "daily_budget_bytes": None if remaining is None else int(remaining / days_left),
        "method": _method(model),
        "half_life_days": None if model is None else model.half_life,
    }


def _method(model: fc.DailyModel | None) -> str:
    if model is None:
        return "straight-line"
    weekly = model.weekday_factor != 1.0 or model.weekend_factor != 1.0
    return ("trend" if model.trend else "ewma") + ("+weekly" if weekly else "")


def _pace(state: CycleState, at: dt.datetime) -> dict[str, Any]:
    cyc = state.cycle
    elapsed = cyc.elapsed_fraction(at)
    general = [a for a in state.allowances if not a.scoped and a.start < cyc.end_epoch]
    unlimited = any(a.quota is None for a in general)
    # A pack that began in an earlier cycle brings only what it had left at this cycle's start.
    quota = None if unlimited or not general else sum((a.quota or 0) - a.base for a in general)
    used = sum(a.used - a.base for a in general) + state.overage
    used_fraction = round(used / quota, 4) if quota else None
    return {"used_fraction": used_fraction, "elapsed_fraction": round(elapsed, 4),
            "ahead_bytes": None if quota is None else int(used - quota * elapsed)}


def _calibration(state: CycleState, tz: ZoneInfo) -> dict[str, Any] | None:
    if state.calibration is None:
        return None
    cal, local_now = state.calibration
    local = cal.local_used_bytes if cal.local_used_bytes is not None else local_now
    return {"at": iso(cal.at.astimezone(tz)), "source": cal.source, "bucket": cal.bucket,
            "carrier_used_bytes": cal.used_bytes, "local_used_bytes": local,
            "drift_bytes": cal.used_bytes - local}


def build_status(card: CardConfig, walker: Walker, current: Cycle, at: dt.datetime, until: dt.datetime,
                 tz: ZoneInfo, known_since: dt.datetime | None) -> dict[str, Any]:
    """The card object of the JSON contract, plus "label", "pace", "throttle" and per-bucket extras."""
    state = walker.state
    assert state is not None and state.cycle.start == current.start
    hi = int(until.timestamp())
    throttle = card.throttle
    return {
        "name": card.name,
        "label": card.label,
        "state": current.state,
        "cycle": {"start": iso(current.start), "end": iso(current.end),
                  "elapsed_fraction": round(current.elapsed_fraction(at), 4)},
        "used_bytes": state.used,
        "buckets": [_bucket(a, card, hi, tz) for a in state.allowances],
        "overage_bytes": state.overage,
        "overage_cost": cycle_cost(state.overage_by_day.values(), card.overage) if card.overage else 0.0,
        "currency": card.overage.currency if card.overage else None,
        "throttled": bool(throttle and state.throttle_count >= throttle.after),
        "throttle": None if throttle is None else {
            "after_bytes": throttle.after, "rate_bps": throttle.rate,
            "since": None if state.throttled_since is None or state.throttle_count < throttle.after
            else iso(dt.datetime.fromtimestamp(state.throttled_since, tz))},
        "pace": _pace(state, at),
        "forecast": _forecast(card, walker, state, at, tz, known_since),
        "calibration": _calibration(state, tz),
    }


def _plan_entry(cfg: BucketConfig | PackConfig, kind: str, start: dt.datetime, end: dt.datetime,
                index: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
    key = (cfg.priority is None, cfg.priority or 0, not cfg.scoped, int(end.timestamp()), index)
    return key, {"name": cfg.name, "kind": kind, "quota_bytes": cfg.quota, "start": iso(start),
                 "expires": iso(end), "scope": cfg.scope_dict(), "priority": cfg.priority,
                 "rollover": isinstance(cfg, BucketConfig) and cfg.rollover}


def plan_summary(card: CardConfig, at: dt.datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The resolved plan of a card at ``at`` for `datacap plan check`: sizes in bytes, cycle and pack
    validity as instants in the card's zone, in consumption order, with no usage involved."""
    cycle = cycle_at(card.cycle, at, tz)
    entries = [_plan_entry(b, "bucket", cycle.start, cycle.end, i) for i, b in enumerate(card.buckets)]
    for j, p in enumerate(card.packs):
        start, end = pack_span(p, tz)
        entries.append(_plan_entry(p, "pack", start, end, len(card.buckets) + j))
        entries[-1][1]["active"] = start <= at < end
    entries.sort(key=lambda e: e[0])
    throttle, overage = card.throttle, card.overage
    return {
        "name": card.name, "label": card.label, "interfaces": card.interfaces, "iccid": card.iccid,
        "count": card.count, "l2_overhead": card.l2_overhead,
        "cycle": {"kind": card.cycle.kind, "state": cycle.state, "start": iso(cycle.start),
                  "end": iso(cycle.end)},
        "buckets": [e[1] for e in entries],
        "throttle": None if throttle is None else {"after_bytes": throttle.after, "rate_bps": throttle.rate},
        "overage": None if overage is None else overage.model_dump(),
    }
