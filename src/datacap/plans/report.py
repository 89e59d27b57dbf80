"""Turning the engine's charged state into the typed status model (:mod:`datacap.plans.status_model`)."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from datacap.plans import forecast as fc
from datacap.plans.config import BucketConfig, CardConfig, PackConfig
from datacap.plans.cycles import Cycle, cycle_at
from datacap.plans.overage import cycle_cost
from datacap.plans.status_model import (
    BucketStatus,
    CalibrationInfo,
    CardStatus,
    CycleInfo,
    CycleSeries,
    DayPoint,
    Forecast,
    GeneralQuota,
    Headline,
    Overage,
    Pace,
    RolloverUnknown,
    ThrottleStatus,
    headline_state,
)
from datacap.plans.walk import pack_span
from datacap.timeutil import iso

if TYPE_CHECKING:
    from datacap.plans.walk import Allowance, CycleState, Walker


def status_document(at: dt.datetime, cards: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole `datacap status --json` document around the card objects."""
    return {"at": iso(at), "cards": cards}


def _when(epoch: int | None, tz: ZoneInfo) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, tz)


def _bucket(a: Allowance, card: CardConfig, hi: int, tz: ZoneInfo, runs_out: int | None) -> BucketStatus:
    cfg = card.buckets[a.index] if a.kind != "pack" else card.packs[a.index - len(card.buckets)]
    pack = a.kind == "pack"
    return BucketStatus(
        name=a.name, kind=a.kind,  # type: ignore[arg-type]
        quota_bytes=a.quota, used_bytes=a.used, remaining_bytes=a.left,
        expires=dt.datetime.fromtimestamp(a.end, tz), scope=cfg.scope_dict(), active=a.start <= hi < a.end,
        general=not a.scoped, runs_out=_when(runs_out, tz),
        start=dt.datetime.fromtimestamp(a.start, tz) if pack else None,
        used_in_cycle_bytes=a.used - a.base if pack else None)


def _history(walker: Walker, series: dict[int, int], first: int, today: int,
             tz: ZoneInfo) -> list[tuple[dt.date, float]]:
    return [(dt.datetime.fromtimestamp(m, tz).date(), float(series.get(m, 0)))
            for m in walker.midnights if first <= m < today]


def _general(state: CycleState, now: int) -> GeneralQuota:
    """The general quota of the cycle (unscoped allowances; a pack begun earlier brings only what it
    had left at this cycle's start), what general traffic used of it, and what is left now."""
    general = [a for a in state.allowances if not a.scoped and a.start < state.cycle.end_epoch]
    unlimited = any(a.quota is None for a in general)
    quota = None if unlimited or not general else sum((a.quota or 0) - a.base for a in general)
    used = sum(a.used - a.base for a in general) + state.overage
    active = [a for a in general if a.start <= now < a.end]
    left = None if unlimited or not general else sum(a.left or 0 for a in active)
    return GeneralQuota(quota, used, left)


def _pace(general: GeneralQuota, elapsed: float) -> Pace:
    quota = general.quota
    return Pace(round(general.used / quota, 4) if quota else None, round(elapsed, 4),
                None if quota is None else int(general.used - quota * elapsed))


class _Projection:
    """The forecast of a running cycle: expected use per day part, overall and per allowance."""

    def __init__(self, walker: Walker, state: CycleState, at: dt.datetime, tz: ZoneInfo,
                 known_since: dt.datetime | None) -> None:
        cycle = state.cycle
        self.now = now = int(at.timestamp())
        today = walker.midnights[max(0, bisect_right(walker.midnights, now) - 1)]
        # Days before the store knew the card are unknown, not zero; a day known only in part is left out.
        known = max(walker.lo, int(known_since.timestamp()) if known_since else 0)
        first = walker.midnights[bisect_left(walker.midnights, known)] if known <= walker.midnights[-1] else today
        self.horizon = max(1, round((cycle.end_epoch - now) / fc.DAY))
        elapsed = max(1, now - cycle.start_epoch)

        def ahead(series: dict[int, int], used_in_cycle: int) -> tuple[fc.DailyModel | None,
                                                                         list[tuple[int, int, float]]]:
            model = fc.fit(_history(walker, series, first, today, tz), self.horizon)
            return model, fc.project(model, at, cycle.end, tz, used_in_cycle / elapsed)

        self.model, self.total = ahead(walker.total_by_day, state.used)
        general_used = sum(v for d, v in walker.general_by_day.items() if d >= cycle.start_epoch)
        _, self.general = ahead(walker.general_by_day, general_used)
        self.runs_out: dict[int, int | None] = {}  # id(allowance) -> when it empties
        pools = [a for a in state.allowances if not a.scoped and a.end > now]
        emptied, self.exhausted = fc.drain(self.general, [_pool(a, now) for a in pools])
        self.runs_out.update({id(a): t for a, t in zip(pools, emptied, strict=True)})
        for index in sorted({a.index for a in state.allowances if a.scoped}):
            mine = [a for a in state.allowances if a.scoped and a.index == index and a.end > now]
            series = walker.taken_by_day.get(index, {})
            _, segments = ahead(series, sum(v for d, v in series.items() if d >= cycle.start_epoch))
            emptied, _ = fc.drain(segments, [_pool(a, now) for a in mine])
            self.runs_out.update({id(a): t for a, t in zip(mine, emptied, strict=True)})


def _pool(a: Allowance, now: int) -> fc.Pool:
    return fc.Pool(max(a.start, now), a.end, None if a.quota is None else float(a.left or 0))


def _forecast(card: CardConfig, state: CycleState, general: GeneralQuota, projection: _Projection | None,
              tz: ZoneInfo) -> Forecast:
    cycle = state.cycle
    if projection is None:
        return Forecast(state.used, None, 0 if cycle.state == "expired" else None, "none", active=False)
    now, end = projection.now, cycle.end_epoch
    when = projection.exhausted
    throttle = card.throttle
    throttle_at = None
    to_throttle = None
    if throttle is not None and state.throttle_count < throttle.after:
        to_throttle = throttle.after - state.throttle_count
        throttle_at = fc.crossing(projection.total, to_throttle)
    days_left = max(1.0, (end - now) / fc.DAY)
    limits = [(left, kind) for left, kind in ((general.left, "general"), (to_throttle, "throttle"))
              if left is not None]
    left, limit = min(limits, key=lambda x: x[0]) if limits else (None, None)
    return Forecast(
        cycle_end_used_bytes=int(state.used + sum(x for _, _, x in projection.total)),
        exhausted_at=_when(when, tz) if general.left is not None and when is not None and when < end else None,
        daily_budget_bytes=None if left is None else int(left / days_left),
        method=_method(projection.model),
        half_life_days=None if projection.model is None else projection.model.half_life,
        throttle_at=_when(throttle_at, tz) if throttle_at is not None and throttle_at < end else None,
        budget_limit=limit)  # type: ignore[arg-type]


def _method(model: fc.DailyModel | None) -> str:
    if model is None:
        return "straight-line"
    weekly = model.weekday_factor != 1.0 or model.weekend_factor != 1.0
    return ("trend" if model.trend else "ewma") + ("+weekly" if weekly else "")


def _calibration(state: CycleState, tz: ZoneInfo) -> CalibrationInfo | None:
    if state.calibration is None:
        return None
    cal, local_now = state.calibration
    local = cal.local_used_bytes if cal.local_used_bytes is not None else local_now
    return CalibrationInfo(cal.at.astimezone(tz), cal.source, cal.bucket, cal.used_bytes, local)


def _headline(card: CardConfig, state: CycleState, general: GeneralQuota, forecast: Forecast,
              throttle: ThrottleStatus | None, throttled: bool, cost: float, tz: ZoneInfo,
              elapsed: float) -> Headline:
    empty = general.quota is not None and general.left is not None and general.left <= 0
    runs_out = _when(state.general_out_at, tz) if empty else forecast.exhausted_at
    throttle_from = throttle.since if throttled and throttle else forecast.throttle_at
    state_word = headline_state(general, throttled, state.overage, forecast.exhausted_at, forecast.throttle_at,
                                state.cycle.state)
    overage = None
    if card.overage is not None:
        overage = Overage(state.overage, cost, card.overage.currency)
    return Headline(state=state_word, general=general, elapsed_pct=round(100 * elapsed, 1), runs_out=runs_out,
                    throttle_from=throttle_from,
                    lasts_cycle=state_word == "ok" or (state_word == "low" and runs_out is None
                                                       and throttle_from is None),
                    daily_budget=forecast.daily_budget_bytes, overage=overage)


def build_status(card: CardConfig, walker: Walker, current: Cycle, at: dt.datetime, until: dt.datetime,
                 tz: ZoneInfo, known_since: dt.datetime | None) -> CardStatus:
    """The typed status of a card (its ``to_json()`` is the card object of the JSON contract)."""
    state = walker.state
    assert state is not None and state.cycle.start == current.start
    hi = int(until.timestamp())
    now = int(at.timestamp())
    elapsed = current.elapsed_fraction(at)
    general = _general(state, now)
    projection = _Projection(walker, state, at, tz, known_since) if current.state == "active" else None
    forecast = _forecast(card, state, general, projection, tz)
    cfg = card.throttle
    throttled = bool(cfg and state.throttle_count >= cfg.after)
    throttle = None if cfg is None else ThrottleStatus(
        cfg.after, cfg.rate,
        since=_when(state.throttled_since, tz) if throttled else None, starts_at=forecast.throttle_at)
    cost = cycle_cost(state.overage_by_day.values(), card.overage) if card.overage else 0.0
    runs_out = projection.runs_out if projection else {}
    series = _series(walker, state, general, projection, now, tz)
    return CardStatus(
        name=card.name, label=card.label, state=current.state,
        cycle=CycleInfo(current.start, current.end, round(elapsed, 4)),
        used_bytes=state.used,
        buckets=tuple(_bucket(a, card, hi, tz, runs_out.get(id(a))) for a in state.allowances),
        overage_bytes=state.overage, overage_cost=cost,
        currency=card.overage.currency if card.overage else None,
        throttled=throttled, throttle=throttle, pace=_pace(general, elapsed), forecast=forecast,
        calibration=_calibration(state, tz),
        headline=_headline(card, state, general, forecast, throttle, throttled, cost, tz, elapsed),
        rollover_unknown=tuple(RolloverUnknown(name) for name in state.rollover_unknown), series=series)


def _series(walker: Walker, state: CycleState, general: GeneralQuota, projection: _Projection | None, now: int,
            tz: ZoneInfo) -> CycleSeries:
    """Cumulative general use per local day of the cycle: the charged days through today (today ends
    at the headline's figure, calibrations and overage included), then the general forecast's days."""
    cycle = state.cycle
    end = min(now, cycle.end_epoch)
    points: list[DayPoint] = []
    running = 0
    for midnight in walker.midnights:
        if midnight < cycle.start_epoch or midnight >= end:
            continue
        running += walker.general_by_day.get(midnight, 0)
        points.append(DayPoint(dt.datetime.fromtimestamp(midnight, tz).date(), running, False))
    if points:
        points[-1] = DayPoint(points[-1].day, general.used, False)
    if projection is not None:
        ahead: dict[dt.date, float] = {}
        for start, _, amount in projection.general:
            day = dt.datetime.fromtimestamp(start, tz).date()
            ahead[day] = ahead.get(day, 0.0) + amount
        total = float(general.used)
        for day in sorted(ahead):
            total += ahead[day]
            if points and day <= points[-1].day:
                continue  # the rest of today: counted in the next day's total (one point per day)
            points.append(DayPoint(day, int(total), True))
    return CycleSeries(tuple(points))


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
