"""Hand-built reports for the pure tests: only the figures a test names differ from a quiet month."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from datacap.plans.status_model import (
    BucketStatus,
    CardStatus,
    CycleInfo,
    Forecast,
    GeneralQuota,
    Headline,
    Pace,
    headline_state,
)
from datacap.reports.model import Baseline, Report
from datacap.reports.period import Period
from datacap.store.reader import Bytes

GIB = 1024**3
MIB = 1024**2
TZ = ZoneInfo("Asia/Shanghai")
PERIOD = Period("month", dt.date(2026, 10, 1))


def ranking(kind: str, rows: list[tuple[str, int]], total: int) -> dict[str, Any]:
    out = [{kind: name, "rx_bytes": b, "tx_bytes": 0, "total_bytes": b, "share": round(b / total, 4) if total else 0,
            "flows": 0} for name, b in sorted(rows, key=lambda r: -r[1])]
    return {"rows": out, "unattributed": {"rx_bytes": 0, "tx_bytes": 0, "total_bytes": 0}}


def make_report(total: int = 10 * GIB, *, apps: list[tuple[str, int]] | None = None,
                services: list[tuple[str, int]] | None = None, clients: list[tuple[str, int]] | None = None,
                days: list[int] | None = None, hours: list[int] | None = None,
                previous_apps: dict[str, int] | None = None, baseline: int | None = None,
                plan: CardStatus | None = None, elapsed: float = 1.0,
                categories: dict[str, str] | None = None) -> Report:
    """A month with ``total`` bytes spread evenly over days and hours unless ``days``/``hours`` say."""
    since, until = PERIOD.bounds(TZ)
    now = since + (until - since) * elapsed if elapsed < 1 else until + dt.timedelta(days=1)
    per_day = days if days is not None else [total // 31] * 31
    day_rows = tuple((PERIOD.first_day + dt.timedelta(days=i), Bytes(b, 0)) for i, b in enumerate(per_day))
    per_hour = hours if hours is not None else [total // 24] * 24
    # All hours on Monday: the advice only looks at hour-of-day totals.
    heat = tuple(tuple(per_hour) if w == 0 else (0,) * 24 for w in range(7))
    return Report(
        period=PERIOD, since=since, until=until, generated_at=now, timezone="Asia/Shanghai", card=None,
        interfaces={"wwan0": Bytes(total, 0)}, days=day_rows, heatmap=heat,
        rankings={"app": ranking("app", apps or [], total), "service": ranking("service", services or [], total),
                  "client": ranking("client", clients or [], total)},
        previous={"app": previous_apps} if previous_apps is not None else {},
        baseline=None if baseline is None else Baseline((("2026-09", baseline),), baseline),
        plan=plan, categories=categories or {},
    )


def bucket_status(name: str, quota: int | None, used: int, *, hours: str | None = None,
                  services: list[str] | None = None, kind: str = "bucket") -> BucketStatus:
    """One allowance of the October cycle as the status model holds it."""
    left = None if quota is None else max(0, quota - used)
    return BucketStatus(name, kind, quota, used, left, dt.datetime(2026, 11, 1, tzinfo=TZ),  # type: ignore[arg-type]
                        {"services": services, "apps": None, "hours": hours}, True,
                        general=not (hours or services))


def plan_model(buckets: list[BucketStatus], *, runs_out: str | None = None, budget: int | None = 100 * MIB,
               overage: int = 0) -> CardStatus:
    """A card's typed status for October 2026 (hand-built: the advice rules are pure over it)."""
    start, end = dt.datetime(2026, 10, 1, tzinfo=TZ), dt.datetime(2026, 11, 1, tzinfo=TZ)
    general = [b for b in buckets if b.general]
    quota = sum(b.quota_bytes or 0 for b in general) or None
    used = sum(b.used_bytes for b in general) + overage
    left = sum(b.remaining_bytes or 0 for b in general) if quota else None
    g = GeneralQuota(quota, used, left)
    when = None if runs_out is None else dt.datetime.fromisoformat(runs_out)
    forecast = Forecast(used, when, budget, "ewma", 7.0)
    state = headline_state(g, False, overage, when, None)
    headline = Headline(state, g, 80.0, when, None, when is None and state == "ok", budget, None)
    return CardStatus("cmcc", None, "active", CycleInfo(start, end, 0.8), used, tuple(buckets), overage, 0.0, None,
                      False, None, Pace(None if not quota else used / quota, 0.8, None), forecast, None, headline)
