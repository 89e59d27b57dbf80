"""The glance views as both command-line paths print them: JSON documents and tables.

The typer app (datacap.cli) and its fast path (datacap.glance) call these same functions, so the
two print the same bytes. rich is imported only to draw a table; ``--json`` never loads it.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datacap import views
from datacap.store.db import default_db_path, open_read
from datacap.store.reader import Reader
from datacap.texttable import Styled, TextTable, emit, say
from datacap.timeutil import Resolution, bucket_start, parse_instant
from datacap.units import format_bytes

BAR_WIDTH = 24

if TYPE_CHECKING:
    from rich.console import Console

    from datacap.config import Config
    from datacap.glancecache import LightConfig

    AnyConfig = Config | LightConfig

_console: Console | None = None


def console() -> Console:
    """The CLI's stdout console (rich), created on first use."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console()
    return _console


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")


def reader(cfg: AnyConfig, db: Path | None) -> Reader:
    return Reader(open_read(db or default_db_path()), cfg.tz, cfg.week_start_index)


def instant(cfg: AnyConfig, text: str | None, what: str) -> dt.datetime | None:
    return None if text is None else parse_instant(text, cfg.tz, what=what)


def summary(r: Reader, cfg: AnyConfig, iface: Sequence[str] | None, as_json: bool) -> None:
    doc = views.summary_json(r, cfg, iface)  # type: ignore[arg-type]  # reads only tz/timezone
    if as_json:
        print_json(doc)
        return
    if not doc["interfaces"]:
        say("No interfaces metered yet: run `datacap run` (or import a CSV).")
        return
    for entry in doc["interfaces"]:
        rows = [(label, entry[key]) for key, label in (("today", "today"), ("yesterday", "yesterday"),
                                                        ("this_week", "this week"), ("this_month", "this month"),
                                                        ("all_time", "all time"))]
        table = bytes_table(f"{entry['name']}  (since {entry['first_seen'] or '-'})", "", rows)
        emit(table)
        say(f"  month-end estimate: {format_bytes(entry['month_estimate_bytes'])}\n")


def usage(r: Reader, cfg: AnyConfig, by: Any, iface: Sequence[str] | None, since: str | None, until: str | None,
          limit: int | None, as_json: bool) -> None:
    doc = views.usage_json(r, cfg, by, iface, instant(cfg, since, "--since"),  # type: ignore[arg-type]
                           instant(cfg, until, "--until"), limit)
    if as_json:
        print_json(doc)
        return
    for entry in doc["interfaces"]:
        rows = [(bucket_label(by, row["start"]), row) for row in entry["rows"]]
        emit(bytes_table(f"{entry['name']}: by {by} ({doc['timezone']})", by, rows, entry["total"]))


def interfaces(r: Reader, cfg: AnyConfig, as_json: bool) -> None:
    doc = views.interfaces_json(r, cfg)  # type: ignore[arg-type]
    if as_json:
        print_json(doc)
        return
    table = TextTable()
    for col in ("interface", "type", "first seen", "last seen", "rx", "tx", "total"):
        table.add_column(col, justify="right" if col in ("rx", "tx", "total") else "left")
    for i in doc["interfaces"]:
        table.add_row(i["name"], i["link_type"] or "", i["first_seen"], i["last_seen"],
                      format_bytes(i["total"]["rx_bytes"]), format_bytes(i["total"]["tx_bytes"]),
                      format_bytes(i["total"]["total_bytes"]))
    emit(table)


def events(r: Reader, cfg: AnyConfig, limit: int, as_json: bool) -> None:
    rows = r.events(limit)
    doc = [{"at": dt.datetime.fromtimestamp(at, cfg.tz).isoformat(), "interface": iface, "kind": kind,
            "detail": detail} for at, iface, kind, detail in rows]
    if as_json:
        print_json({"events": doc})
        return
    table = TextTable()
    for col in ("at", "interface", "kind", "detail"):
        table.add_column(col)
    for e in doc:
        table.add_row(str(e["at"]), e["interface"] or "", str(e["kind"]), str(e["detail"]))
    emit(table)


def ranking(r: Reader, cfg: AnyConfig, kind: Any, name: str | None, iface: list[str] | None, since: str | None,
            until: str | None, by: Resolution, limit: int | None, as_json: bool,
            span: tuple[dt.datetime, dt.datetime] | None = None, card: str | None = None) -> None:
    """``datacap apps|clients|services [NAME]``: this month (or ``span``, or --since/--until) so far."""
    now = views.now_utc()
    lo = instant(cfg, since, "--since") or (span[0] if span else bucket_start("month", now, cfg.tz))
    hi = instant(cfg, until, "--until") or (span[1] if span else now)
    if name is not None:
        doc = views.history_json(r, cfg, kind, name, by, lo, hi, iface)  # type: ignore[arg-type]
        if as_json:
            print_json(doc)
            return
        rows = [(bucket_label(by, row["start"]), row) for row in doc["rows"]]
        emit(bytes_table(f"{kind} {name}: by {by}", by, rows, doc["total"]))
        return
    doc = views.ranking_json(r, cfg, kind, lo, hi, iface, limit, card)  # type: ignore[arg-type]
    if as_json:
        print_json(doc)
        return
    print_ranking(kind, doc)


def print_ranking(kind: str, doc: dict[str, Any]) -> None:
    table = TextTable(f"{kind}s {doc['since']} .. {doc['until']}")
    for col in (kind, "rx", "tx", "total", "share", "flows", ""):
        table.add_column(col, justify="left" if col in (kind, "") else "right")
    largest = max((row["total_bytes"] for row in doc["rows"]), default=0)
    for row in doc["rows"]:
        label = row.get(kind) or "?"
        if kind == "app" and row.get("unit"):
            label += f" ({row['unit']})"
        table.add_row(label, format_bytes(row["rx_bytes"]), format_bytes(row["tx_bytes"]),
                      format_bytes(row["total_bytes"]), f"{row['share']:.1%}", str(row["flows"]),
                      bar(row["total_bytes"], largest))
    un = doc["unattributed"]
    table.add_section()
    table.add_row("unattributed", format_bytes(un["rx_bytes"]), format_bytes(un["tx_bytes"]),
                  format_bytes(un["total_bytes"]), "", "", "")
    emit(table)
    if doc.get("note"):
        say(doc["note"])


def print_plan_check(doc: dict[str, Any]) -> None:
    cards = doc["cards"]
    say(f"{doc['config']}: valid, {len(cards)} card(s), timezone {doc['timezone']}")
    for s in cards:
        table = TextTable(f"{s['name']}  {s['label'] or ''}  cycle {s['cycle']['start']} .. {s['cycle']['end']} "
                          f"({s['cycle']['state']})")
        for col in ("#", "bucket", "kind", "quota", "scope", "valid"):
            table.add_column(col)
        for i, b in enumerate(s["buckets"], 1):
            quota = "unlimited" if b.get("quota_bytes") is None else format_bytes(b["quota_bytes"])
            scope = ", ".join(f"{k}={v}" for k, v in (b.get("scope") or {}).items() if v) or "all traffic"
            table.add_row(str(i), b["name"], b["kind"], quota, scope, f"{b.get('start', '')} .. {b.get('expires', '')}")
        emit(table)
        say(f"  interfaces: {', '.join(s['interfaces']) or '-'}   iccid: {', '.join(s['iccid'] or []) or '-'}"
            f"   count: {s['count']}   l2_overhead: {s['l2_overhead']}")


def bar(value: int, largest: int, width: int = BAR_WIDTH) -> Styled | str:
    """A bar proportional to value/largest, rx and tx are not split: the total is what is billed."""
    if largest <= 0 or value <= 0:
        return ""
    return Styled("█" * max(1, round(width * value / largest)), "cyan")


def bytes_table(title: str, first_col: str, rows: Sequence[tuple[str, dict[str, Any]]],
                total: dict[str, Any] | None = None) -> TextTable:
    """rx / tx / total columns and a bar, one row per (label, {rx_bytes, tx_bytes, total_bytes})."""
    table = TextTable(title)
    table.add_column(first_col)
    for name in ("rx", "tx", "total"):
        table.add_column(name, justify="right")
    table.add_column("", no_wrap=True)
    largest = max((r["total_bytes"] for _, r in rows), default=0)
    for label, r in rows:
        table.add_row(label, format_bytes(r["rx_bytes"]), format_bytes(r["tx_bytes"]),
                      format_bytes(r["total_bytes"]), bar(r["total_bytes"], largest))
    if total is not None and rows:
        table.add_section()
        table.add_row(Styled("total", "bold"), format_bytes(total["rx_bytes"]), format_bytes(total["tx_bytes"]),
                      Styled(format_bytes(total["total_bytes"]), "bold"), "")
    return table


def bucket_label(by: str, start_iso: str) -> str:
    start = dt.datetime.fromisoformat(start_iso)
    if by == "5min":
        return start.strftime("%Y-%m-%d %H:%M")
    if by == "hour":
        return start.strftime("%Y-%m-%d %H:00 %z")
    if by in ("day", "top"):
        return start.strftime("%Y-%m-%d %a")
    if by == "week":
        iso_year, week, _ = start.isocalendar()
        return f"{iso_year}-W{week:02d} ({start:%m-%d})"
    if by == "month":
        return start.strftime("%Y-%m")
    return start.strftime("%Y")
