"""What every renderer shows, worded and formatted once: so md, html, pdf and png never disagree.

Byte figures use :func:`datacap.units.format_bytes` and shares ``share:.1%`` exactly as the CLI's
tables print them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from datacap.units import format_bytes

from . import charts
from .advice import Advice, advice_text, category_totals, share_of
from .i18n import Lang, category_name, label, weekday_name
from .model import Report

TOP = 10


@dataclass(frozen=True, slots=True)
class RankLine:
    name: str
    total: str
    rx: str
    tx: str
    share: str
    total_bytes: int
    change: str = ""  # "+40%", "-12%", "new", or "" when the previous period is not in the store


@dataclass(frozen=True, slots=True)
class ReportView:
    """Strings ready to print; ``charts`` are inline SVG documents (html/pdf/png only)."""

    lang: Lang
    title: str
    subtitle: str
    partial: str | None
    totals: list[tuple[str, str, str, str]]  # (interface, total, rx, tx); the last row is the sum
    projected: str | None
    baseline: list[str]
    plan: list[dict[str, str]]
    plan_summary: list[str]
    plan_note: str | None
    advice: list[str]
    rankings: dict[str, list[RankLine]]
    unattributed: dict[str, str]
    categories: list[str]  # "video: 12.00 GiB (32%)", largest first
    previous_label: str  # the period the changes compare with
    heaviest: str | None
    busiest: list[str]
    days: list[tuple[str, str]]
    heat_text: list[str]
    charts: dict[str, str]


def _kind_word(report: Report, lang: Lang) -> str:
    return label(lang, report.period.kind)


def build_view(report: Report, items: list[Advice], lang: Lang, *, with_charts: bool = True) -> ReportView:
    """Format ``report`` for people in ``lang``; ``items`` is :func:`advise`'s output."""
    total = report.total
    scope = f"{label(lang, 'card')} {report.card}" if report.card else label(lang, "all")
    last_day = report.period.end_day - dt.timedelta(days=1)
    subtitle = (f"{_kind_word(report, lang)} {report.period.label} · {report.period.first_day.isoformat()} – "
                f"{last_day.isoformat()} · {report.timezone} · {scope} · {label(lang, 'generated')} "
                f"{report.generated_at:%Y-%m-%d %H:%M}")
    totals = [(name, format_bytes(b.total_bytes), format_bytes(b.rx_bytes), format_bytes(b.tx_bytes))
              for name, b in report.interfaces.items()]
    totals.append((label(lang, "total"), format_bytes(total.total_bytes), format_bytes(total.rx_bytes),
                   format_bytes(total.tx_bytes)))
    rankings = {kind: _top_lines(report, kind, lang) for kind in ("app", "client", "service")}
    heaviest = report.heaviest_day
    return ReportView(
        lang=lang, title=f"{label(lang, 'title')} {report.period.label}", subtitle=subtitle,
        partial=None if report.complete else label(lang, "partial"),
        totals=totals,
        projected=None if report.complete else f"{label(lang, 'projected')}: {format_bytes(report.projected_bytes)}",
        baseline=_baseline_lines(report, lang), plan=_plan_rows(report, lang),
        plan_summary=_plan_summary(report, lang),
        plan_note=label(lang, report.plan_note, detail=report.plan_detail) if report.plan_note else None,
        advice=[advice_text(a, lang) for a in items], rankings=rankings,
        unattributed={kind: format_bytes(report.rankings[kind]["unattributed"]["total_bytes"])
                      for kind in ("app", "client", "service")},
        previous_label=report.period.shifted(-1).label,
        categories=[f"{category_name(cat, lang)}: {format_bytes(amount)} ({share_of(report, amount):.0%})"
                    for cat, amount in category_totals(report)],
        heaviest=None if heaviest is None else
        f"{heaviest[0].isoformat()} {weekday_name(heaviest[0].weekday(), lang)}: "
        f"{format_bytes(heaviest[1].total_bytes)}",
        busiest=[f"{h:02d}:00–{(h + 1) % 24:02d}:00: {format_bytes(b)}" for h, b in report.busiest_hours()],
        days=[(f"{d.isoformat()} {weekday_name(d.weekday(), lang)}", format_bytes(b.total_bytes))
              for d, b in report.days],
        heat_text=_heat_text(report, lang),
        charts=_charts(report, lang) if with_charts else {},
    )


def _rank_line(report: Report, kind: str, row: dict[str, Any], lang: Lang) -> RankLine:
    name = str(row.get(kind) or "?")
    change = report.change(kind, str(row.get(kind) or ""), row["total_bytes"])
    if kind == "app" and row.get("unit"):
        name += f" ({row['unit']})"
    shown = "" if change is None else label(lang, "new") if change == float("inf") else f"{change:+.0%}"
    return RankLine(name, format_bytes(row["total_bytes"]), format_bytes(row["rx_bytes"]),
                    format_bytes(row["tx_bytes"]), f"{row['share']:.1%}", row["total_bytes"], shown)


def _baseline_lines(report: Report, lang: Lang) -> list[str]:
    base = report.baseline
    if base is None:
        return [label(lang, "no_baseline")]
    current = report.projected_bytes
    change = (current / base.average_bytes - 1) if base.average_bytes else 0.0
    lines = [f"{label(lang, 'average', count=base.count)}: {format_bytes(base.average_bytes)} · "
             f"{label(lang, 'change')}: {change:+.0%}"]
    lines += [f"{period}: {format_bytes(value)}" for period, value in base.periods]
    return lines


def _plan_rows(report: Report, lang: Lang) -> list[dict[str, str]]:
    card = report.plan
    rows = []
    for b in card.buckets if card else ():
        hours = b.scope.get("hours")
        kind = f" ({label(lang, b.kind)})" if b.kind in ("rollover", "pack") else ""
        rows.append({"name": b.name + kind + (f" ({hours})" if hours else ""),
                     "quota": format_bytes(b.quota_bytes) if b.quota_bytes is not None else label(lang, "unlimited"),
                     "used": format_bytes(b.used_bytes),
                     "left": format_bytes(b.remaining_bytes) if b.remaining_bytes is not None else "–",
                     "expires": b.expires.date().isoformat()})
    return rows


def _plan_summary(report: Report, lang: Lang) -> list[str]:
    """The headline of the status model: state, general quota, overage and throttle of the cycle."""
    card = report.plan
    if card is None:
        return []
    h = card.headline
    out = [f"{label(lang, 'card')}: {card.label or card.name} · {label(lang, 'state')}: "
           f"{label(lang, 'state_' + h.state)}"]
    g = h.general
    if g.quota is not None:
        out.append(f"{label(lang, 'general')}: {label(lang, 'used')} {format_bytes(g.used)} / "
                   f"{format_bytes(g.quota)} ({g.used_pct:.0f}%), {label(lang, 'left')} {format_bytes(g.left or 0)}")
    if h.runs_out is not None:
        word = "ran_out" if g.left == 0 else "forecast"  # used up: when it happened, not a forecast
        out.append(f"{label(lang, word)}: {h.runs_out.date().isoformat()}")
    if card.overage_bytes:
        cost = f" = {card.overage_cost:.2f} {card.currency}" if card.currency else ""
        out.append(f"{label(lang, 'overage')}: {format_bytes(card.overage_bytes)}{cost}")
    if card.throttled and card.throttle is not None and card.throttle.since is not None:
        out.append(f"{label(lang, 'throttled_since')}: {card.throttle.since:%Y-%m-%d %H:%M} "
                   f"({card.throttle.rate_bps / 1e6:g} Mbit/s)")
    elif h.throttle_from is not None:
        out.append(f"{label(lang, 'throttle_from')}: {h.throttle_from:%Y-%m-%d %H:%M}")
    return out


_SHADES = " ░▒▓█"


def _heat_text(report: Report, lang: Lang) -> list[str]:
    """The heatmap as text for md: one line per weekday, one shade character per hour."""
    largest = max((v for row in report.heatmap for v in row), default=0)
    if largest == 0:
        return []
    lines = ["      " + "".join(f"{h:<3d}" for h in range(0, 24, 3)).rstrip()]
    for day, row in enumerate(report.heatmap):
        cells = "".join(_SHADES[0 if v == 0 else 1 + min(3, int(4 * v / (largest + 1)))] for v in row)
        lines.append(f"{weekday_name(day, lang):<4}  {cells}")
    return lines


def _charts(report: Report, lang: Lang) -> dict[str, str]:
    days = [(f"{d.day}", b.rx_bytes, b.tx_bytes) for d, b in report.days]
    out = {"daily": charts.stacked_bars(days, label(lang, "daily"), label_every=1 if len(days) <= 10 else 3,
                                       show_title=False)}
    if any(v for row in report.heatmap for v in row):
        out["heatmap"] = charts.heatmap(report.heatmap, [weekday_name(i, lang) for i in range(7)],
                                        label(lang, "heatmap"), show_title=False)
    for kind, key in (("app", "apps"), ("client", "clients"), ("service", "services")):
        rows = [(line.name, line.total_bytes) for line in _top_lines(report, kind, lang)]
        if rows:
            out[key] = charts.hbars(rows, label(lang, key), show_title=False)
    return out


def _top_lines(report: Report, kind: str, lang: Lang) -> list[RankLine]:
    return [_rank_line(report, kind, r, lang) for r in report.top(kind, TOP)]
