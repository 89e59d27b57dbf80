"""The human `datacap status`: one card's status object as a rich renderable.

Bars per bucket, the pace (used fraction of the general quota against elapsed fraction of the
cycle), the daily budget, the forecast, overage, throttling and the drift of the last calibration.
Works from the JSON-ready dict of :func:`datacap.plans.engine.compute_status`, so the CLI can render
what it would print as JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from datacap.units import format_bytes

_KIND_LABEL = {"bucket": "", "pack": "pack", "rollover": "rolled over"}
_STATE_STYLE = {"active": "green", "expired": "red", "not_started": "yellow"}


def _when(text: str | None) -> str:
    if not text:
        return "-"
    return dt.datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M")


def _bucket_row(b: dict[str, Any]) -> list[RenderableType]:
    quota, used = b["quota_bytes"], b["used_bytes"]
    scope = b.get("scope") or {}
    parts = [*(scope.get("apps") or []), *(scope.get("services") or [])]
    if scope.get("hours"):
        parts.append(scope["hours"])
    name = Text(b["name"], style="bold" if b.get("active", True) else "dim")
    if _KIND_LABEL.get(b["kind"]):
        name.append(f" ({_KIND_LABEL[b['kind']]})", style="dim")
    if parts:
        name.append(f"\n{', '.join(parts)}", style="dim")
    if quota is None:
        bar: RenderableType = Text("unlimited", style="cyan")
        amount = format_bytes(used)
        left = "-"
    else:
        full = quota > 0 and used >= quota
        bar = ProgressBar(total=max(quota, 1), completed=min(used, quota), width=24,
                          complete_style="red" if full else "green", finished_style="red")
        amount = f"{format_bytes(used)} / {format_bytes(quota)}"
        left = format_bytes(b["remaining_bytes"])
    return [name, bar, amount, left, _when(b.get("expires"))]


def _pace_line(st: dict[str, Any]) -> Text:
    pace = st.get("pace") or {}
    used, elapsed = pace.get("used_fraction"), pace.get("elapsed_fraction", st["cycle"]["elapsed_fraction"])
    line = Text("pace: ")
    if used is None:
        line.append(f"{elapsed:.0%} of the cycle elapsed (no finite general quota)")
        return line
    style = "red" if used > elapsed + 0.05 else "green"
    line.append(f"{used:.0%} of the general quota used", style=style)
    line.append(f" after {elapsed:.0%} of the cycle")
    ahead = pace.get("ahead_bytes")
    if ahead is not None:
        line.append(f" ({format_bytes(abs(ahead))} {'ahead of' if ahead > 0 else 'behind'} an even pace)",
                    style="dim")
    return line


def _forecast_lines(st: dict[str, Any]) -> list[Text]:
    fc = st.get("forecast") or {}
    out = []
    budget = fc.get("daily_budget_bytes")
    if budget is not None:
        out.append(Text(f"daily budget: {format_bytes(budget)} per day until the cycle ends"))
    end_used = fc.get("cycle_end_used_bytes")
    if end_used is not None and st["state"] == "active":
        line = Text(f"forecast: {format_bytes(end_used)} used by {_when(st['cycle']['end'])}")
        if fc.get("exhausted_at") and budget == 0:
            line.append("; general quota used up", style="bold red")
        elif fc.get("exhausted_at"):
            line.append(f"; general quota runs out {_when(fc['exhausted_at'])}", style="bold red")
        else:
            line.append("; general quota lasts the cycle", style="green")
        out.append(line)
    return out


def _extra_lines(st: dict[str, Any]) -> list[Text]:
    out = []
    if st.get("overage_bytes"):
        cost = f" = {st['overage_cost']:.2f} {st['currency']}" if st.get("currency") else ""
        out.append(Text(f"overage: {format_bytes(st['overage_bytes'])}{cost}", style="bold red"))
    throttle = st.get("throttle")
    if st.get("throttled") and throttle:
        rate = throttle["rate_bps"] / 1e6
        since = _when(throttle.get("since"))
        out.append(Text(f"throttled to {rate:g} Mbit/s since {since}", style="bold red"))
    elif throttle:
        left = throttle["after_bytes"] - st["used_bytes"]
        out.append(Text(f"throttle after {format_bytes(throttle['after_bytes'])} "
                        f"({format_bytes(max(0, left))} to go)", style="dim"))
    cal = st.get("calibration")
    if cal:
        drift = cal["drift_bytes"]
        carrier, local = format_bytes(cal["carrier_used_bytes"]), format_bytes(cal["local_used_bytes"])
        out.append(Text(f"calibrated {_when(cal['at'])} from {cal['source']}: carrier {carrier}, "
                        f"datacap {local} (drift {'+' if drift >= 0 else '-'}{format_bytes(abs(drift))})",
                        style="dim"))
    return out


def render_status(st: dict[str, Any]) -> RenderableType:
    """A panel for one card's status object (as returned by ``compute_status``)."""
    table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
    for column in ("bucket", "", "used", "left", "expires"):
        table.add_column(column, no_wrap=column != "bucket")
    for b in st["buckets"]:
        table.add_row(*_bucket_row(b))
    cycle = st["cycle"]
    title = Text(st.get("label") or st["name"], style="bold")
    title.append(f"  {st['state'].replace('_', ' ')}", style=_STATE_STYLE.get(st["state"], ""))
    head = Text(f"cycle {_when(cycle['start'])} - {_when(cycle['end'])}, "
                f"used {format_bytes(st['used_bytes'])}")
    parts: list[RenderableType] = [head]
    if st["buckets"]:
        parts.append(table)
    if st["state"] == "active":
        parts.append(_pace_line(st))
    parts += _forecast_lines(st) + _extra_lines(st)
    return Panel(Group(*parts), title=title, title_align="left", expand=False)
