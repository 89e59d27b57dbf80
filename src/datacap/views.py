"""The JSON documents behind ``--json`` and the web API: one builder per view, shared by both.

Each builder takes a Reader and the config and returns plain dicts in the documented contracts;
the CLI renders them as tables, the API returns them as they are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from datacap.errors import InputError
from datacap.store.reader import Bytes, DimKind, Reader
from datacap.timeutil import UTC, Resolution, bucket_end, bucket_start, from_epoch, iso

if TYPE_CHECKING:
    from datacap.config import Config

By = Literal["5min", "hour", "day", "week", "month", "year", "top"]
DEFAULT_SPAN: dict[str, dt.timedelta | None] = {
    "5min": dt.timedelta(hours=24), "hour": dt.timedelta(days=2), "day": dt.timedelta(days=30),
    "week": dt.timedelta(weeks=12), "month": dt.timedelta(days=366), "year": None, "top": None,
}


def now_utc() -> dt.datetime:
    return dt.datetime.now(UTC)


def usage_json(reader: Reader, cfg: Config, by: By, ifaces: Sequence[str] | None = None,
               since: dt.datetime | None = None, until: dt.datetime | None = None,
               limit: int | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    """``datacap usage --json``: per interface, buckets of ``by`` oldest first (``top``: largest days)."""
    tz = cfg.tz
    now = now or now_utc()
    names = _resolve(reader, ifaces)
    if until is None:
        until = bucket_end("day" if by == "top" else by, bucket_start("day" if by == "top" else by, now, tz,
                                                                       reader.week_start), tz, reader.week_start)
    span = DEFAULT_SPAN[by]
    if since is None:
        since = (until - span) if span else dt.datetime.fromtimestamp(0, UTC)
    if since >= until:
        raise InputError(f"--since ({iso(since.astimezone(tz))}) must be before --until ({iso(until.astimezone(tz))})")
    out_ifaces = []
    if by == "top":
        per_iface = reader.top_days(names, since, until, limit or 10)
        res: Resolution = "day"
    else:
        res = by
        per_iface = reader.series(res, names, since, until)
        if limit:
            per_iface = {n: rows[-limit:] for n, rows in per_iface.items()}
    for name in names:
        rows = per_iface.get(name, [])
        total = Bytes()
        out_rows = []
        for start, b in rows:
            total += b
            begin = from_epoch(start, tz)
            out_rows.append({"start": iso(begin), "end": iso(bucket_end(res, begin, tz, reader.week_start)),
                             **b.as_dict()})
        out_ifaces.append({"name": name, "rows": out_rows, "total": total.as_dict()})
    return {"by": by, "timezone": cfg.timezone, "unit": "bytes",
            "since": iso(since.astimezone(tz)), "until": iso(until.astimezone(tz)), "interfaces": out_ifaces}


def summary_json(reader: Reader, cfg: Config, ifaces: Sequence[str] | None = None,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """``datacap`` with no arguments: today, yesterday, this week, this month (+ estimate), all time."""
    tz, ws = cfg.tz, reader.week_start
    now = now or now_utc()
    names = _resolve(reader, ifaces)
    today = bucket_start("day", now, tz)
    yesterday = bucket_start("day", today - dt.timedelta(hours=1), tz)
    week = bucket_start("week", now, tz, ws)
    month = bucket_start("month", now, tz)
    month_end = bucket_end("month", month, tz)
    periods = {"today": (today, now), "yesterday": (yesterday, today), "this_week": (week, now),
               "this_month": (month, now)}
    sums = {key: reader.totals(names, a, b) for key, (a, b) in periods.items()}
    info = {i.name: i for i in reader.interfaces()}
    fraction = (now.timestamp() - month.timestamp()) / (month_end.timestamp() - month.timestamp())
    out = []
    for name in names:
        month_bytes = sums["this_month"][name]
        estimate = round(month_bytes.total_bytes / fraction) if fraction > 0 else 0
        out.append({
            "name": name,
            **{key: sums[key][name].as_dict() for key in periods},
            "month_estimate_bytes": estimate,
            "all_time": info[name].total.as_dict() if name in info else Bytes().as_dict(),
            "first_seen": iso(from_epoch(info[name].first_seen, tz)) if name in info else None,
        })
    return {"at": iso(now.astimezone(tz)), "timezone": cfg.timezone, "unit": "bytes", "interfaces": out}


def interfaces_json(reader: Reader, cfg: Config) -> dict[str, Any]:
    tz = cfg.tz
    return {"timezone": cfg.timezone, "interfaces": [
        {"name": i.name, "link_type": i.link_type, "first_seen": iso(from_epoch(i.first_seen, tz)),
         "last_seen": iso(from_epoch(i.last_seen, tz)), "total": i.total.as_dict()}
        for i in reader.interfaces()]}


def _resolve(reader: Reader, ifaces: Sequence[str] | None) -> list[str]:
    """Interface names from globs; an explicit name that matches nothing is an error, not an empty view."""
    if not ifaces:
        return reader.interface_names()
    names = reader.match_interfaces(ifaces)
    missing = [p for p in ifaces if not reader.match_interfaces([p])]
    if missing:
        known = ", ".join(reader.interface_names()) or "none yet"
        raise InputError(f"--iface {', '.join(missing)}: no such interface in the store (known: {known})")
    return names


def ranking_json(reader: Reader, cfg: Config, kind: DimKind, since: dt.datetime, until: dt.datetime,
                 ifaces: Sequence[str] | None = None, limit: int | None = None,
                 card: str | None = None) -> dict[str, Any]:
    """``datacap apps|clients|services --json``: attributed totals, largest first, plus unattributed.

    ``card``: only that card's usage, by the same rule as its plan status (its SIM's stamp, or its
    interfaces for a card without ICCIDs).
    """
    names = _resolve(reader, ifaces)
    belongs = None
    if card is not None:
        from datacap.status import belongs as card_belongs
        from datacap.status import find_card

        [chosen] = find_card(cfg, card)

        def belongs(iface: str, stamp: str) -> bool:
            return card_belongs(chosen, iface, stamp)
    rows, totals = reader.ranking(kind, since, until, names, belongs)
    iface_total = Bytes()
    for b in totals.values():
        iface_total += b
    attributed = Bytes()
    for r in rows:
        attributed += r.bytes
    denominator = max(iface_total.total_bytes, attributed.total_bytes)
    out_rows = []
    for r in rows[:limit] if limit else rows:
        labels = {k: (v or None) for k, v in r.labels.items()}
        out_rows.append({**labels, **r.bytes.as_dict(),
                         "share": round(r.bytes.total_bytes / denominator, 4) if denominator else 0.0,
                         "flows": r.flows})
    unattributed = Bytes(max(iface_total.rx_bytes - attributed.rx_bytes, 0),
                         max(iface_total.tx_bytes - attributed.tx_bytes, 0))
    tz = cfg.tz
    doc: dict[str, Any] = {"since": iso(since.astimezone(tz)), "until": iso(until.astimezone(tz)), "by": kind,
                           "rows": out_rows, "unattributed": unattributed.as_dict()}
    if card is not None:
        doc["card"] = card
    off = reader.meta("attribution_off")
    if off and not out_rows:
        doc["note"] = f"no {kind} attribution: {off}"
    return doc


def history_json(reader: Reader, cfg: Config, kind: DimKind, name: str, by: Resolution, since: dt.datetime,
                 until: dt.datetime, ifaces: Sequence[str] | None = None) -> dict[str, Any]:
    """``datacap apps NAME --by day --json``: one app's (client's, service's) buckets, oldest first."""
    keys = reader.dim_ids(kind, name)
    if not keys:
        raise InputError(f"no {kind} named {name!r} in the store; see `datacap {kind}s` for the names")
    tz = cfg.tz
    rows = []
    total = Bytes()
    for start, b, flows in reader.dim_series(kind, keys, by, since, until, _resolve(reader, ifaces)):
        begin = from_epoch(start, tz)
        total += b
        rows.append({"start": iso(begin), "end": iso(bucket_end(by, begin, tz, reader.week_start)),
                     **b.as_dict(), "flows": flows})
    return {kind: name, "by": by, "timezone": cfg.timezone, "since": iso(since.astimezone(tz)),
            "until": iso(until.astimezone(tz)), "rows": rows, "total": total.as_dict()}


def status_json(reader: Reader, cfg: Config, card: str | None = None, at: dt.datetime | None = None) -> dict[str, Any]:
    """``datacap status --json`` (see :mod:`datacap.status`)."""
    from datacap.status import status_json as build

    return build(reader, cfg, card, at)
