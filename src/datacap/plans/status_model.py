"""The one typed status model of a card's plan, read by every face (CLI, web, reports, alerts, metrics).

:func:`datacap.plans.report.build_status` fills it from the engine's charged state; each face reads
these fields (or their :meth:`to_json` form, the ``datacap status --json`` contract) and computes no
figure of its own. The JSON keeps every key of the documented shape and adds ``headline``,
``carrier_mismatch``, per-bucket ``general``/``runs_out`` and the throttle forecast.

The headline answers "how much is left, will it last": the *general* quota only, that is the
unscoped allowances (buckets without services, apps or hours, their rolled-over quota, and unscoped
packs) — never a scoped (定向) or idle-hours (闲时) bucket, whose quota does not serve other traffic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from datacap.timeutil import iso

HeadlineState = Literal["ok", "low", "exhausted", "throttled", "overage"]
BucketState = Literal["ok", "low", "exhausted", "inactive"]
LOW_FRACTION = 0.2  # under a fifth of the general quota left is "running low"


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else iso(value)


def _pct(part: int, whole: int | None) -> float | None:
    return round(100 * part / whole, 1) if whole else None


class MismatchNote(Protocol):
    """Where the carrier's figures and the config disagree (:class:`datacap.plans.carrier.Mismatch`)."""

    def sentence(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class RolloverUnknown:
    """A rollover bucket whose previous cycle the store does not know (history began inside it)."""

    bucket: str

    @property
    def note(self) -> str:
        return (f"what {self.bucket} rolls over from the last cycle is unknown: the store's history begins "
                "inside that cycle; calibrate with a carrier text from then (or one stating 结转) to know it")

    def to_json(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "note": self.note}


@dataclass(frozen=True, slots=True)
class CycleInfo:
    start: dt.datetime
    end: dt.datetime
    elapsed_fraction: float

    def to_json(self) -> dict[str, Any]:
        return {"start": iso(self.start), "end": iso(self.end), "elapsed_fraction": self.elapsed_fraction}


@dataclass(frozen=True, slots=True)
class BucketStatus:
    """One allowance: a cycle bucket, its rolled-over quota (``kind = "rollover"``) or a pack."""

    name: str
    kind: Literal["bucket", "rollover", "pack"]
    quota_bytes: int | None
    used_bytes: int
    remaining_bytes: int | None
    expires: dt.datetime
    scope: Mapping[str, Any]
    active: bool
    general: bool  # counts toward the general quota (unscoped, no hours)
    runs_out: dt.datetime | None = None  # forecast: when it empties before it expires
    start: dt.datetime | None = None  # packs only
    used_in_cycle_bytes: int | None = None  # packs only: a pack may have begun in an earlier cycle

    @property
    def used_pct(self) -> float | None:
        return _pct(self.used_bytes, self.quota_bytes)

    @property
    def state(self) -> BucketState:
        """Its own state, so a used-up bucket never looks like a healthy one: ``inactive`` when it is
        not running now (expired, or a pack not begun), else as the headline's words."""
        if not self.active:
            return "inactive"
        if self.quota_bytes is not None and self.remaining_bytes is not None and self.remaining_bytes <= 0:
            return "exhausted"
        quota, left = self.quota_bytes, self.remaining_bytes
        if self.runs_out is not None or (quota and left is not None and left < LOW_FRACTION * quota):
            return "low"
        return "ok"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name, "kind": self.kind, "quota_bytes": self.quota_bytes, "used_bytes": self.used_bytes,
            "remaining_bytes": self.remaining_bytes, "expires": iso(self.expires), "scope": dict(self.scope),
            "active": self.active, "general": self.general, "runs_out": _iso(self.runs_out),
            "state": self.state, "used_pct": self.used_pct,
        }
        if self.kind == "pack":
            out["start"] = _iso(self.start)
            out["used_in_cycle_bytes"] = self.used_in_cycle_bytes
        return out


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    after_bytes: int
    rate_bps: int
    since: dt.datetime | None  # when the card was throttled in this cycle (None: not throttled)
    starts_at: dt.datetime | None  # forecast: when it will be, before the cycle ends (None: it will not)

    def to_json(self) -> dict[str, Any]:
        return {"after_bytes": self.after_bytes, "rate_bps": self.rate_bps, "since": _iso(self.since),
                "starts_at": _iso(self.starts_at)}


@dataclass(frozen=True, slots=True)
class Pace:
    """Used fraction of the general quota against the elapsed fraction of the cycle."""

    used_fraction: float | None
    elapsed_fraction: float
    ahead_bytes: int | None

    def to_json(self) -> dict[str, Any]:
        return {"used_fraction": self.used_fraction, "elapsed_fraction": self.elapsed_fraction,
                "ahead_bytes": self.ahead_bytes}


@dataclass(frozen=True, slots=True)
class Forecast:
    """The cycle's projection: run-out of the general quota, throttle start, and the daily budget that
    avoids the earlier of the two (``budget_limit`` says which one binds)."""

    cycle_end_used_bytes: int
    exhausted_at: dt.datetime | None
    daily_budget_bytes: int | None
    method: str
    half_life_days: float | None = None
    throttle_at: dt.datetime | None = None
    budget_limit: Literal["general", "throttle"] | None = None
    active: bool = True  # False: the cycle is not running (no model, no half-life key)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cycle_end_used_bytes": self.cycle_end_used_bytes,
                               "exhausted_at": _iso(self.exhausted_at),
                               "daily_budget_bytes": self.daily_budget_bytes, "method": self.method}
        if self.active:
            out["half_life_days"] = self.half_life_days
        out["throttle_at"] = _iso(self.throttle_at)
        out["budget_limit"] = self.budget_limit
        return out


@dataclass(frozen=True, slots=True)
class CalibrationInfo:
    at: dt.datetime
    source: str
    bucket: str | None
    carrier_used_bytes: int
    local_used_bytes: int

    @property
    def drift_bytes(self) -> int:
        return self.carrier_used_bytes - self.local_used_bytes

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "source": self.source, "bucket": self.bucket,
                "carrier_used_bytes": self.carrier_used_bytes, "local_used_bytes": self.local_used_bytes,
                "drift_bytes": self.drift_bytes}


@dataclass(frozen=True, slots=True)
class GeneralQuota:
    """The general quota of the cycle: ``quota`` None when unlimited or when there is none."""

    quota: int | None
    used: int  # general use in this cycle, overage included
    left: int | None  # what the general allowances still active hold now

    @property
    def used_pct(self) -> float | None:
        return _pct(self.used, self.quota)

    def to_json(self) -> dict[str, Any]:
        return {"quota": self.quota, "used": self.used, "left": self.left, "used_pct": self.used_pct}


@dataclass(frozen=True, slots=True)
class Overage:
    bytes: int
    cost: float
    currency: str

    def to_json(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "cost": self.cost, "currency": self.currency}


@dataclass(frozen=True, slots=True)
class Headline:
    """One line per card: the state, the general quota, pace, run-out or throttle, budget, overage."""

    state: HeadlineState
    general: GeneralQuota
    elapsed_pct: float
    runs_out: dt.datetime | None  # past (it ran out) or forecast; None: it lasts or is unlimited
    throttle_from: dt.datetime | None  # since when throttled, or when the forecast says it will be
    lasts_cycle: bool
    daily_budget: int | None
    overage: Overage | None

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "general": self.general.to_json(),
                "pace": {"used_pct": self.general.used_pct, "elapsed_pct": self.elapsed_pct},
                "runs_out": _iso(self.runs_out), "throttle_from": _iso(self.throttle_from),
                "lasts_cycle": self.lasts_cycle, "daily_budget": self.daily_budget,
                "overage": None if self.overage is None else self.overage.to_json()}


def headline_state(general: GeneralQuota, throttled: bool, overage_bytes: int, runs_out: dt.datetime | None,
                   throttle_at: dt.datetime | None, cycle_state: str = "active") -> HeadlineState:
    """Throttled, then in overage, then used up, then low (under a fifth left, or the forecast runs
    out or throttles before the cycle ends), else ok. Before its first cycle a card is ok; after
    its only one, used up."""
    if cycle_state == "not_started":
        return "ok"
    if cycle_state == "expired":
        return "exhausted"
    if throttled:
        return "throttled"
    if overage_bytes > 0:
        return "overage"
    if general.quota is not None and general.left is not None and general.left <= 0:
        return "exhausted"
    if runs_out is not None or throttle_at is not None:
        return "low"
    if general.quota and general.left is not None and general.left < LOW_FRACTION * general.quota:
        return "low"
    return "ok"


@dataclass(frozen=True, slots=True)
class DayPoint:
    """The general quota's cumulative use at the end of one local day of the cycle (``forecast``:
    projected, not measured)."""

    day: dt.date
    used_bytes: int
    forecast: bool

    def to_json(self) -> dict[str, Any]:
        return {"date": self.day.isoformat(), "used_bytes": self.used_bytes, "forecast": self.forecast}


@dataclass(frozen=True, slots=True)
class CycleSeries:
    """The cycle as a chart reads it: measured days through today (today ends at the headline's
    general use), then the forecast's days to the cycle's end."""

    points: tuple[DayPoint, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.points]


@dataclass(frozen=True, slots=True)
class CardStatus:
    """A card's plan status at one instant: the card object of ``datacap status --json``."""

    name: str
    label: str | None
    state: str  # the cycle's: active | expired | not_started
    cycle: CycleInfo
    used_bytes: int
    buckets: tuple[BucketStatus, ...]
    overage_bytes: int
    overage_cost: float
    currency: str | None
    throttled: bool
    throttle: ThrottleStatus | None
    pace: Pace
    forecast: Forecast
    calibration: CalibrationInfo | None
    headline: Headline
    carrier_mismatch: tuple[MismatchNote, ...] = field(default=())
    rollover_unknown: tuple[RolloverUnknown, ...] = field(default=())
    series: CycleSeries | None = field(default=None, compare=False)  # not in to_json: /api/v1/cycle serves it

    def bucket(self, name: str, kind: str = "bucket") -> BucketStatus | None:
        return next((b for b in self.buckets if b.name == name and b.kind == kind), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "label": self.label, "state": self.state, "cycle": self.cycle.to_json(),
            "used_bytes": self.used_bytes, "buckets": [b.to_json() for b in self.buckets],
            "overage_bytes": self.overage_bytes, "overage_cost": self.overage_cost, "currency": self.currency,
            "throttled": self.throttled, "throttle": None if self.throttle is None else self.throttle.to_json(),
            "pace": self.pace.to_json(), "forecast": self.forecast.to_json(),
            "calibration": None if self.calibration is None else self.calibration.to_json(),
            "headline": self.headline.to_json(),
            "carrier_mismatch": [m.to_json() for m in self.carrier_mismatch],
            "rollover_unknown": [r.to_json() for r in self.rollover_unknown],
        }


@dataclass(frozen=True, slots=True)
class StatusDocument:
    """``datacap status --json``: every card (or one) at an instant."""

    at: dt.datetime
    cards: tuple[CardStatus, ...]

    def card(self, name: str) -> CardStatus | None:
        return next((c for c in self.cards if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"at": iso(self.at), "cards": [c.to_json() for c in self.cards]}
