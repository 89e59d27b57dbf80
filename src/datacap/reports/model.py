"""The report's figures for one period, computed from the store: pure over a Reader, no rendering.

Rankings come from :func:`datacap.query.views.ranking_json` with the period's bounds, so every app, client
and service figure in a report equals ``datacap apps|clients|services --since A --until B --json``;
totals come from ``Reader.totals``, the same sums ``datacap usage`` shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datacap.config import Config
from datacap.plans.status_model import CardStatus
from datacap.query import views
from datacap.store.reader import Belongs, Bytes, Reader
from datacap.timeutil import bucket_start, from_epoch, iso, iter_buckets

from .period import Period

BASELINE_PERIODS = 6


@dataclass(frozen=True, slots=True)
class Baseline:
    """The average of up to six earlier periods of the same kind that the store fully covers."""

    periods: tuple[tuple[str, int], ...]  # (label, total bytes), most recent first
    average_bytes: int

    @property
    def count(self) -> int:
        return len(self.periods)


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a renderer shows; build it with :func:`build_report`."""

    period: Period
    since: dt.datetime
    until: dt.datetime
    generated_at: dt.datetime
    timezone: str
    card: str | None
    interfaces: dict[str, Bytes]
    days: tuple[tuple[dt.date, Bytes], ...]  # every day of the period, zeros included
    heatmap: tuple[tuple[int, ...], ...]  # [weekday Monday=0][hour 0..23] total bytes
    rankings: Mapping[str, dict[str, Any]]  # "app" | "client" | "service" -> ranking_json document
    # kind -> {name: total bytes} in the previous period; empty when the store does not cover it.
    previous: Mapping[str, Mapping[str, int]]
    baseline: Baseline | None
    plan: CardStatus | None = None  # the card's status at the period's end (or now)
    plan_note: str | None = None  # why there is no plan: a key of i18n.LABELS
    plan_detail: str = ""
    categories: Mapping[str, str] = field(default_factory=dict)

    @property
    def total(self) -> Bytes:
        out = Bytes()
        for b in self.interfaces.values():
            out += b
        return out

    @property
    def elapsed_fraction(self) -> float:
        """1.0 for a finished period; the part already elapsed for the current one."""
        span = (self.until - self.since).total_seconds()
        done = (min(self.generated_at, self.until) - self.since).total_seconds()
        return max(0.0, min(1.0, done / span)) if span > 0 else 1.0

    @property
    def complete(self) -> bool:
        return self.generated_at >= self.until

    @property
    def projected_bytes(self) -> int:
        """The period's total at its end, at the pace so far (the total itself once complete)."""
        fraction = self.elapsed_fraction
        total = self.total.total_bytes
        return total if fraction >= 1.0 or fraction <= 0 else round(total / fraction)

    @property
    def heaviest_day(self) -> tuple[dt.date, Bytes] | None:
        used = [d for d in self.days if d[1].total_bytes > 0]
        return max(used, key=lambda d: (d[1].total_bytes, -d[0].toordinal())) if used else None

    @property
    def hour_totals(self) -> tuple[int, ...]:
        """Bytes per hour of day (0..23) over the whole period."""
        return tuple(sum(row[h] for row in self.heatmap) for h in range(24))

    def busiest_hours(self, count: int = 3) -> list[tuple[int, int]]:
        ranked = sorted(enumerate(self.hour_totals), key=lambda x: (-x[1], x[0]))
        return [(h, b) for h, b in ranked[:count] if b > 0]

    def change(self, kind: str, name: str, amount: int) -> float | None:
        """``amount`` against ``name``'s total in the previous period: 0.4 = +40 %, inf = new; None when
        the previous period is not in the store."""
        before = self.previous.get(kind)
        if not before:
            return None
        old = before.get(name, 0)
        return (amount / old - 1) if old else float("inf")

    def top(self, kind: str, count: int = 10) -> list[dict[str, Any]]:
        return list(self.rankings[kind]["rows"][:count])


def build_report(reader: Reader, cfg: Config, period: Period, *, ifaces: Sequence[str] | None = None,
                 card: str | None = None, rule: Belongs | None = None, now: dt.datetime | None = None,
                 categories: Mapping[str, str] | None = None, plan: CardStatus | None = None,
                 plan_note: str | None = None, plan_detail: str = "") -> Report:
    """Figures for ``period`` over ``ifaces`` (all when None); ``rule`` keeps one card's usage (see
    :func:`datacap.query.reports.card_usage`); ``categories`` maps service -> category."""
    tz = cfg.tz
    now = now or views.now_utc()
    since, until = period.bounds(tz)
    names = views._resolve(reader, ifaces)  # same resolution (and errors) as the CLI's --iface
    totals = reader.totals(names, since, until, rule)
    rankings = {kind: views.ranking_json(reader, cfg, kind, since, until, names, rule=rule)
                for kind in ("app", "client", "service")}
    baseline = _baseline(reader, cfg, period, names, rule)
    previous: dict[str, dict[str, int]] = {}
    prev = period.shifted(-1)
    if baseline is not None and baseline.periods[0][0] == prev.label:
        # Only when the store covers the previous period: otherwise everything would look "new".
        prev_since, prev_until = prev.bounds(tz)
        for kind in ("app", "client", "service"):
            sums = previous.setdefault(kind, {})
            for r in reader.ranking(kind, prev_since, prev_until, names, rule)[0]:
                key = r.labels.get(kind) or ""
                sums[key] = sums.get(key, 0) + r.bytes.total_bytes
    return Report(
        period=period, since=since, until=until, generated_at=now.astimezone(tz), timezone=cfg.timezone,
        card=card, interfaces={n: totals.get(n, Bytes()) for n in names},
        days=_days(reader, names, since, until, rule), heatmap=_heatmap(reader, names, since, until, rule),
        rankings=rankings, previous=previous,
        baseline=baseline, plan=plan, plan_note=plan_note, plan_detail=plan_detail,
        categories=dict(categories or {}),
    )


def _days(reader: Reader, names: Sequence[str], since: dt.datetime,
          until: dt.datetime, rule: Belongs | None) -> tuple[tuple[dt.date, Bytes], ...]:
    sums: dict[int, Bytes] = {}
    for rows in reader.series("day", names, since, until, rule).values():
        for start, b in rows:
            sums[start] = sums.get(start, Bytes()) + b
    return tuple((start.date(), sums.get(int(start.timestamp()), Bytes()))
                 for start, _ in iter_buckets("day", since, until, reader.tz))


def _heatmap(reader: Reader, names: Sequence[str], since: dt.datetime,
             until: dt.datetime, rule: Belongs | None) -> tuple[tuple[int, ...], ...]:
    grid = [[0] * 24 for _ in range(7)]
    for rows in reader.series("hour", names, since, until, rule).values():
        for start, b in rows:
            local = from_epoch(start, reader.tz)
            grid[local.weekday()][local.hour] += b.total_bytes
    return tuple(tuple(row) for row in grid)


def _baseline(reader: Reader, cfg: Config, period: Period, names: Sequence[str],
              rule: Belongs | None = None) -> Baseline | None:
    """Average of earlier periods the store covers from their first day (a partial first period would
    drag the average down, so a period is only counted when data exists from its first local day)."""
    firsts = [i.first_seen for i in reader.interfaces() if i.name in names]
    if not firsts:
        return None
    first_day = bucket_start("day", from_epoch(min(firsts), cfg.tz), cfg.tz)
    out = []
    for earlier in period.earlier(BASELINE_PERIODS):
        since, until = earlier.bounds(cfg.tz)
        if since < first_day:
            break
        sums = reader.totals(names, since, until, rule)
        out.append((earlier.label, sum(b.total_bytes for b in sums.values())))
    if not out:
        return None
    return Baseline(tuple(out), round(sum(v for _, v in out) / len(out)))


def report_json(report: Report) -> dict[str, Any]:
    """The report as a JSON document (``--format json``); byte figures are integers."""
    heaviest = report.heaviest_day
    base = report.baseline
    return {
        "period": report.period.label, "kind": report.period.kind, "timezone": report.timezone,
        "since": iso(report.since), "until": iso(report.until), "generated_at": iso(report.generated_at),
        "complete": report.complete, "card": report.card,
        "interfaces": [{"name": n, **b.as_dict()} for n, b in report.interfaces.items()],
        "total": report.total.as_dict(), "projected_bytes": report.projected_bytes,
        "baseline": None if base is None else {
            "average_bytes": base.average_bytes,
            "periods": [{"period": label, "total_bytes": v} for label, v in base.periods]},
        "heaviest_day": None if heaviest is None else {"date": heaviest[0].isoformat(), **heaviest[1].as_dict()},
        "days": [{"date": d.isoformat(), **b.as_dict()} for d, b in report.days],
        "heatmap": [list(row) for row in report.heatmap],
        "busiest_hours": [{"hour": h, "total_bytes": b} for h, b in report.busiest_hours()],
        "apps": report.rankings["app"], "clients": report.rankings["client"],
        "services": report.rankings["service"],
        "plan": None if report.plan is None else report.plan.to_json(), "plan_note": report.plan_note,
    }
