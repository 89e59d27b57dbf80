"""Hand-built reports for the pure tests: only the figures a test names differ from a quiet month."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

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
                plan: dict[str, Any] | None = None, elapsed: float = 1.0,
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
