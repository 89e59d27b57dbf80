"""The human `datacap status`: one card's status object as a rich renderable.

Bars per bucket, the pace (used fraction of the general quota against elapsed fraction of the
cycle), the daily budget, the forecast, overage, throttling and the drift of the last calibration.
Reads the typed status model (:mod:`datacap.plans.status_model`), the same object ``--json`` prints.
"""

from __future__ import annotations

import datetime as dt

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from datacap.plans.status_model import BucketStatus, CardStatus
from datacap.units import format_bytes

_KIND_LABEL = {"bucket": "", "pack": "pack", "rollover": "rolled over"}
_STATE_STYLE = {"active": "green", "expired": "red", "not_started": "yellow"}


_STATE_WORD = {"ok": "fine", "low": "running low", "exhausted": "used up", "throttled": "throttled",
               "overage": "in overage"}
_HEADLINE_STYLE = {"ok": "bold green", "low": "bold yellow", "exhausted": "bold red", "throttled": "bold red",
                   "overage": "bold red"}


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def _bucket_row(b: BucketStatus) -> list[RenderableType]:
    quota, used = b.quota_bytes, b.used_bytes
    scope = b.scope
    parts = [*(scope.get("apps") or []), *(scope.get("services") or [])]
    if scope.get("hours"):
        parts.append(scope["hours"])
    name = Text(b.name, style="bold" if b.active else "dim")
    if _KIND_LABEL.get(b.kind):
        name.append(f" ({_KIND_LABEL[b.kind]})", style="dim")
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
        left = format_bytes(b.remaining_bytes or 0)
    return [name, bar, amount, left, _when(b.expires)]


def _headline_line(st: CardStatus) -> Text:
    """The headline: state, what is left of the general quota, and whether it lasts."""
    h = st.headline
    line = Text(_STATE_WORD[h.state], style=_HEADLINE_STYLE[h.state])
    g = h.general
    if g.quota is not None and g.left is not None:
        line.append(f"  {format_bytes(g.left)} of {format_bytes(g.quota)} general left")
    if h.lasts_cycle:
        line.append("; lasts the cycle", style="green")
    elif h.runs_out is not None:
        verb = "ran out" if g.left == 0 else "runs out"
        line.append(f"; {verb} {_when(h.runs_out)}", style="bold red")
    if h.throttle_from is not None and not st.throttled:
        line.append(f"; throttled from {_when(h.throttle_from)}", style="bold red")
    return line


def _pace_line(st: CardStatus) -> Text:
    used, elapsed, ahead = st.pace.used_fraction, st.pace.elapsed_fraction, st.pace.ahead_bytes
    line = Text("pace: ")
    if used is None:
        line.append(f"{elapsed:.0%} of the cycle elapsed (no finite general quota)")
        return line
    style = "red" if used > elapsed + 0.05 else "green"
    line.append(f"{used:.0%} of the general quota used", style=style)
    line.append(f" after {elapsed:.0%} of the cycle")
    if ahead is not None:
        line.append(f" ({format_bytes(abs(ahead))} {'ahead of' if ahead > 0 else 'behind'} an even pace)",
                    style="dim")
    return line


def _forecast_lines(st: CardStatus) -> list[Text]:
    fc = st.forecast
    out = []
    budget = fc.daily_budget_bytes
    if budget is not None:
        until = "the throttle" if fc.budget_limit == "throttle" else "the cycle ends"
        out.append(Text(f"daily budget: {format_bytes(budget)} per day until {until}"))
    if st.state == "active":
        line = Text(f"forecast: {format_bytes(fc.cycle_end_used_bytes)} used by {_when(st.cycle.end)}")
        if fc.exhausted_at and budget == 0:
            line.append("; general quota used up", style="bold red")
        elif fc.exhausted_at:
            line.append(f"; general quota runs out {_when(fc.exhausted_at)}", style="bold red")
        elif st.headline.general.left == 0:
            line.append("; general quota used up", style="bold red")
        else:
            line.append("; general quota lasts the cycle", style="green")
        if fc.throttle_at:
            line.append(f"; throttled from {_when(fc.throttle_at)}", style="bold red")
        out.append(line)
    return out


def _extra_lines(st: CardStatus) -> list[Text]:
    out = []
    if st.overage_bytes:
        cost = f" = {st.overage_cost:.2f} {st.currency}" if st.currency else ""
        out.append(Text(f"overage: {format_bytes(st.overage_bytes)}{cost}", style="bold red"))
    throttle = st.throttle
    if st.throttled and throttle:
        out.append(Text(f"throttled to {throttle.rate_bps / 1e6:g} Mbit/s since {_when(throttle.since)}",
                        style="bold red"))
    elif throttle:
        left = throttle.after_bytes - st.used_bytes
        out.append(Text(f"throttle after {format_bytes(throttle.after_bytes)} "
                        f"({format_bytes(max(0, left))} to go)", style="dim"))
    cal = st.calibration
    if cal:
        drift = cal.drift_bytes
        carrier, local = format_bytes(cal.carrier_used_bytes), format_bytes(cal.local_used_bytes)
        out.append(Text(f"calibrated {_when(cal.at)} from {cal.source}: carrier {carrier}, "
                        f"datacap {local} (drift {'+' if drift >= 0 else '-'}{format_bytes(abs(drift))})",
                        style="dim"))
    return out


def render_status(st: CardStatus) -> RenderableType:
    """A panel for one card's status (as returned by :func:`datacap.plans.engine.card_status`)."""
    table = Table(box=None, pad_edge=False, show_header=True, header_style="dim")
    for column in ("bucket", "", "used", "left", "expires"):
        # Names never wrap (a CJK name squeezed to nothing is unreadable); the bar gives way instead.
        table.add_column(column, no_wrap=True, overflow="crop" if column == "" else "ellipsis",
                         min_width=4 if column == "" else None, max_width=12 if column == "" else None)
    for b in st.buckets:
        table.add_row(*_bucket_row(b))
    title = Text(st.label or st.name, style="bold")
    title.append(f"  {st.state.replace('_', ' ')}", style=_STATE_STYLE.get(st.state, ""))
    head = Text(f"cycle {_when(st.cycle.start)} - {_when(st.cycle.end)}, used {format_bytes(st.used_bytes)}")
    parts: list[RenderableType] = [head]
    if st.state == "active":
        parts.append(_headline_line(st))
    if st.buckets:
        parts.append(table)
    if st.state == "active":
        parts.append(_pace_line(st))
    parts += _forecast_lines(st) + _extra_lines(st)
    return Panel(Group(*parts), title=title, title_align="left", expand=False)


def carrier_lines(st: CardStatus) -> list[str]:
    """Where the carrier and the config disagree, and rolled-over quota nobody knows, under a card."""
    lines = [f"  ! {m.sentence()}" for m in st.carrier_mismatch]
    lines += [f"  ? rolled over ({r.bucket}): unknown: {r.note}" for r in st.rollover_unknown]
    return lines


def render_card(st: CardStatus) -> RenderableType:
    """What ``datacap status`` prints for one card: its panel, then the carrier's disagreements."""
    return Group(render_status(st), *(Text(line) for line in carrier_lines(st)))
