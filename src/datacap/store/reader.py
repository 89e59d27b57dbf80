"""Read queries over the store. Readers never write; every method is one or a few indexed scans."""

from __future__ import annotations

import datetime as dt
import fnmatch
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from datacap.meter.delta import Reading
from datacap.model import UsageRecord
from datacap.timeutil import UTC, Resolution, bucket_end, bucket_start

DimKind = Literal["app", "client", "service"]
Belongs = Callable[[str, str], bool]  # (interface, card stamp or "") -> is it the card's usage?
_DIM_COLUMN = {"app": "app_id", "client": "client_id", "service": "service_id"}
_SECONDS = {"5min": 300, "hour": 3600}


@dataclass(frozen=True, slots=True)
class Bytes:
    rx_bytes: int = 0
    tx_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.rx_bytes + self.tx_bytes

    def __add__(self, other: Bytes) -> Bytes:
        return Bytes(self.rx_bytes + other.rx_bytes, self.tx_bytes + other.tx_bytes)

    def as_dict(self) -> dict[str, int]:
        return {"rx_bytes": self.rx_bytes, "tx_bytes": self.tx_bytes, "total_bytes": self.total_bytes}


@dataclass(frozen=True, slots=True)
class InterfaceInfo:
    name: str
    link_type: str | None
    first_seen: int
    last_seen: int
    total: Bytes


@dataclass(frozen=True, slots=True)
class RankRow:
    key: int
    labels: dict[str, str]
    bytes: Bytes
    flows: int


class Reader:
    """Queries in one timezone; ``since``/``until`` are aware datetimes, [since, until)."""

    def __init__(self, conn: sqlite3.Connection, tz: ZoneInfo, week_start: int = 0) -> None:
        self.conn = conn
        self.tz = tz
        self.week_start = week_start

    # -- interfaces -------------------------------------------------------------------------------
    def interfaces(self) -> list[InterfaceInfo]:
        rows = self.conn.execute("""
            SELECT i.name, i.link_type, i.first_seen, i.last_seen,
                   coalesce(sum(u.rx_bytes), 0), coalesce(sum(u.tx_bytes), 0)
            FROM interfaces i LEFT JOIN usage u ON u.iface_id = i.id AND u.res = 'year'
            GROUP BY i.id ORDER BY i.name""").fetchall()
        return [InterfaceInfo(r[0], r[1], r[2], r[3], Bytes(r[4], r[5])) for r in rows]

    def interface_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM interfaces ORDER BY name")]

    def link_types(self) -> dict[str, str]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT name, link_type FROM interfaces") if r[1]}

    def match_interfaces(self, patterns: Iterable[str] | None) -> list[str]:
        """Known interface names matching any of the globs (all when ``patterns`` is None)."""
        names = self.interface_names()
        if patterns is None:
            return names
        pats = list(patterns)
        return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]

    def _ids(self, names: Sequence[str] | None) -> dict[int, str]:
        rows = self.conn.execute("SELECT id, name FROM interfaces").fetchall()
        return {i: n for i, n in rows if names is None or n in names}

    # -- series -----------------------------------------------------------------------------------
    def series(self, res: Resolution, names: Sequence[str] | None, since: dt.datetime,
               until: dt.datetime) -> dict[str, list[tuple[int, Bytes]]]:
        """Per interface, the stored buckets of ``res`` starting in [since, until), oldest first."""
        ids = self._ids(names)
        out: dict[str, list[tuple[int, Bytes]]] = {n: [] for n in ids.values()}
        lo = int(bucket_start(res, since, self.tz, self.week_start).timestamp())
        rows = self.conn.execute(
            "SELECT iface_id, start, sum(rx_bytes), sum(tx_bytes) FROM usage "
            "WHERE res = ? AND start >= ? AND start < ? GROUP BY iface_id, start ORDER BY iface_id, start",
            (res, lo, int(until.timestamp())))
        for iface_id, start, rx, tx in rows:
            if iface_id in ids:
                out[ids[iface_id]].append((start, Bytes(rx, tx)))
        return out

    def totals(self, names: Sequence[str] | None, since: dt.datetime, until: dt.datetime,
               belongs: Belongs | None = None) -> dict[str, Bytes]:
        """Exact per-interface totals over [since, until), from the coarsest buckets that fit.

        ``belongs(interface, card_stamp)`` keeps only one card's usage (a SIM's, on a shared modem).
        """
        ids = self._ids(names)
        sums: dict[str, Bytes] = {n: Bytes() for n in ids.values()}
        for res, lo, hi in self.cover(since, until):
            rows = self.conn.execute(
                "SELECT iface_id, card, sum(rx_bytes), sum(tx_bytes) FROM usage "
                "WHERE res = ? AND start >= ? AND start < ? GROUP BY iface_id, card", (res, lo, hi))
            for iface_id, card, rx, tx in rows:
                if iface_id in ids and (belongs is None or belongs(ids[iface_id], card)):
                    sums[ids[iface_id]] += Bytes(rx, tx)
        return sums

    def cover(self, since: dt.datetime, until: dt.datetime) -> list[tuple[str, int, int]]:
        """Split [since, until) into (res, lo, hi) pieces: whole months inside, then days, hours and
        5-minute buckets towards the edges, so a sum over the pieces counts every stored byte once and
        a year's ranking reads a dozen month rows per name, not 365 day rows."""
        lo, hi = int(since.timestamp()), int(until.timestamp())
        lo -= lo % 300
        if hi <= lo:
            return []
        return self._cover(lo, hi, ("month", "day", "hour", "5min"))

    def _cover(self, lo: int, hi: int, levels: tuple[str, ...]) -> list[tuple[str, int, int]]:
        res, rest = levels[0], levels[1:]
        if not rest:
            return [(res, lo, hi)]
        first = self._ceil(res, lo)
        last = int(bucket_start(res, dt.datetime.fromtimestamp(hi, UTC), self.tz).timestamp())  # type: ignore[arg-type]
        if first >= last:
            return self._cover(lo, hi, rest)
        pieces = [(res, first, last)]
        if lo < first:
            pieces += self._cover(lo, first, rest)
        if last < hi:
            pieces += self._cover(last, hi, rest)
        return pieces

    def _ceil(self, res: str, instant: int) -> int:
        start = bucket_start(res, dt.datetime.fromtimestamp(instant, UTC), self.tz)  # type: ignore[arg-type]
        if int(start.timestamp()) == instant:
            return instant
        return int(bucket_end(res, start, self.tz).timestamp())  # type: ignore[arg-type]

    def top_days(self, names: Sequence[str] | None, since: dt.datetime | None, until: dt.datetime | None,
                 limit: int) -> dict[str, list[tuple[int, Bytes]]]:
        ids = self._ids(names)
        out: dict[str, list[tuple[int, Bytes]]] = {}
        lo = int(since.timestamp()) if since else 0
        hi = int(until.timestamp()) if until else 1 << 62
        for iface_id, name in ids.items():
            rows = self.conn.execute(
                "SELECT start, sum(rx_bytes) AS rx, sum(tx_bytes) AS tx FROM usage "
                "WHERE res = 'day' AND iface_id = ? AND start >= ? AND start < ? "
                "GROUP BY start ORDER BY rx + tx DESC, start LIMIT ?", (iface_id, lo, hi, limit))
            out[name] = [(r[0], Bytes(r[1], r[2])) for r in rows]
        return out

    # -- records for the plan engine ------------------------------------------------------------
    def usage_records(self, since: dt.datetime, until: dt.datetime, names: Sequence[str] | None = None,
                      keep: Callable[[str, str], bool] | None = None) -> list[UsageRecord]:
        """Usage in [since, until) as records: 5-minute ones where kept, hourly before retention's cut.

        Per interval, attributed records (app/service/client set) plus one unattributed record add
        up to exactly the interface's bytes. Attribution is scaled down in the rare interval where
        flows reported more than the interface counted (a flow's final counters land a little later
        than the interface's), so the billing total stays the interface counters.
        ``keep(interface, card)``: only those intervals (one card's plan status needs no other's).
        """
        lo, hi = int(since.timestamp()), int(until.timestamp())
        # 5-minute buckets are complete from where retention last cut them (from the start if never).
        pruned = self.meta("complete_since_5min")
        cut = lo if pruned is None else max(lo, min(hi, self._ceil("hour", int(pruned))))
        ids = self._ids(names)
        records: list[UsageRecord] = []
        if lo < cut:
            records += self._records("hour", int(bucket_start("hour", since, self.tz).timestamp()), cut, ids, keep)
        if cut < hi:
            records += self._records("5min", cut - cut % 300, hi, ids, keep)
        return records

    def _records(self, res: str, lo: int, hi: int, ids: dict[int, str],
                 keep: Callable[[str, str], bool] | None = None) -> list[UsageRecord]:
        seconds = _SECONDS[res]
        totals = {}
        for start, iface_id, card, rx, tx, rxp, txp in self.conn.execute(
                "SELECT start, iface_id, card, rx_bytes, tx_bytes, rx_packets, tx_packets FROM usage "
                "WHERE res = ? AND start >= ? AND start < ?", (res, lo, hi)):
            if iface_id in ids and (keep is None or keep(ids[iface_id], card)):
                totals[(start, iface_id, card)] = (rx, tx, rxp, txp)
        parts: dict[tuple[int, int, str], list[tuple[int, int, str | None, str | None, str | None]]]
        parts = defaultdict(list)
        for start, iface_id, card, rx, tx, app, client, service in self.conn.execute("""
                SELECT a.start, a.iface_id, a.card, a.rx_bytes, a.tx_bytes, p.name,
                       coalesce(nullif(c.hostname, ''), nullif(c.ip, ''), c.mac), s.name
                FROM attrib a LEFT JOIN apps p ON p.id = a.app_id LEFT JOIN clients c ON c.id = a.client_id
                LEFT JOIN services s ON s.id = a.service_id
                WHERE a.res = ? AND a.start >= ? AND a.start < ?""", (res, lo, hi)):
            if (start, iface_id, card) in totals:
                parts[(start, iface_id, card)].append((rx, tx, app, client, service))
        out: list[UsageRecord] = []
        for key, (rx, tx, rxp, txp) in sorted(totals.items()):
            start, iface_id, card = key
            name, card_name = ids[iface_id], card or None
            att = _fit(parts.get(key, []), rx, tx)
            arx = sum(p[0] for p in att)
            atx = sum(p[1] for p in att)
            for prx, ptx, app, client, service in att:
                out.append(UsageRecord(start, seconds, name, prx, ptx, card=card_name, app=app,
                                       client=client, service=service))
            if rx - arx or tx - atx or not att:
                out.append(UsageRecord(start, seconds, name, rx - arx, tx - atx, rxp, txp, card=card_name))
        return out

    def day_rows(self, since: dt.datetime, until: dt.datetime) -> list[tuple[int, str, str, int]]:
        """(local day start, interface, card stamp, bytes) of the days starting in [since, until)."""
        ids = self._ids(None)
        rows = self.conn.execute("SELECT start, iface_id, card, rx_bytes + tx_bytes FROM usage "
                                 "WHERE res = 'day' AND start >= ? AND start < ?",
                                 (int(since.timestamp()), int(until.timestamp())))
        return [(start, ids[i], card, total) for start, i, card, total in rows if i in ids]

    def attrib_day_rows(self, since: dt.datetime,
                        until: dt.datetime) -> list[tuple[int, str, str, str | None, str | None, str | None, int]]:
        """(day start, interface, card stamp, app, client, service, bytes) of attributed days in range."""
        ids = self._ids(None)
        rows = self.conn.execute("""
            SELECT a.start, a.iface_id, a.card, p.name,
                   coalesce(nullif(c.hostname, ''), nullif(c.ip, ''), c.mac), s.name, a.rx_bytes + a.tx_bytes
            FROM attrib a LEFT JOIN apps p ON p.id = a.app_id LEFT JOIN clients c ON c.id = a.client_id
            LEFT JOIN services s ON s.id = a.service_id
            WHERE a.res = 'day' AND a.start >= ? AND a.start < ?""", (int(since.timestamp()), int(until.timestamp())))
        return [(start, ids[i], card, app, client, service, total)
                for start, i, card, app, client, service, total in rows if i in ids]

    # -- attribution rankings -------------------------------------------------------------------
    def ranking(self, kind: DimKind, since: dt.datetime, until: dt.datetime, names: Sequence[str] | None = None,
                belongs: Belongs | None = None) -> tuple[list[RankRow], dict[str, Bytes]]:
        """Attributed totals per app/client/service, largest first, and the interfaces' totals."""
        col = _DIM_COLUMN[kind]
        ids = self._ids(names)
        acc: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
        for res, lo, hi in self.cover(since, until):
            for iface_id, card, key, rx, tx, flows in self.conn.execute(
                    f"SELECT iface_id, card, {col}, sum(rx_bytes), sum(tx_bytes), sum(flows) FROM attrib "
                    f"WHERE res = ? AND start >= ? AND start < ? AND {col} != 0 GROUP BY iface_id, card, {col}",
                    (res, lo, hi)):
                if iface_id in ids and (belongs is None or belongs(ids[iface_id], card)):
                    a = acc[key]
                    a[0] += rx
                    a[1] += tx
                    a[2] += flows
        labels = self._labels(kind, list(acc))
        rows = [RankRow(k, labels.get(k, {}), Bytes(v[0], v[1]), v[2]) for k, v in acc.items()]
        rows.sort(key=lambda r: (-r.bytes.total_bytes, r.labels.get(kind, "")))
        return rows, self.totals(list(ids.values()), since, until, belongs)

    def _labels(self, kind: DimKind, keys: list[int]) -> dict[int, dict[str, str]]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        if kind == "app":
            sql = f"SELECT id, name, exe, unit, user FROM apps WHERE id IN ({marks})"
            return {r[0]: {"app": r[1], "exe": r[2], "unit": r[3], "user": r[4]}
                    for r in self.conn.execute(sql, keys)}
        if kind == "client":
            sql = f"SELECT id, ip, mac, hostname FROM clients WHERE id IN ({marks})"
            return {r[0]: {"client": r[3] or r[1], "ip": r[1], "mac": r[2], "hostname": r[3]}
                    for r in self.conn.execute(sql, keys)}
        sql = f"SELECT id, name FROM services WHERE id IN ({marks})"
        return {r[0]: {"service": r[1]} for r in self.conn.execute(sql, keys)}

    def dim_ids(self, kind: DimKind, name: str) -> list[int]:
        """Ids of an app (by name or exe), client (by ip, mac or hostname) or service (by name)."""
        args: tuple[str, ...]
        if kind == "app":
            sql, args = "SELECT id FROM apps WHERE name = ? OR exe = ?", (name, name)
        elif kind == "client":
            sql = "SELECT id FROM clients WHERE ip = ? OR mac = ? OR hostname = ?"
            args = (name, name.lower(), name)
        else:
            sql, args = "SELECT id FROM services WHERE name = ?", (name,)
        return [r[0] for r in self.conn.execute(sql, args)]

    def dim_series(self, kind: DimKind, keys: Sequence[int], res: Resolution, since: dt.datetime,
                   until: dt.datetime, names: Sequence[str] | None = None) -> list[tuple[int, Bytes, int]]:
        """One app's (client's, service's) buckets of ``res`` in [since, until), oldest first."""
        if not keys:
            return []
        col = _DIM_COLUMN[kind]
        ids = self._ids(names)
        lo = int(bucket_start(res, since, self.tz, self.week_start).timestamp())
        marks = ",".join("?" * len(keys))
        acc: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
        for start, iface_id, rx, tx, flows in self.conn.execute(
                f"SELECT start, iface_id, sum(rx_bytes), sum(tx_bytes), sum(flows) FROM attrib "
                f"WHERE res = ? AND {col} IN ({marks}) AND start >= ? AND start < ? GROUP BY start, iface_id",
                (res, *keys, lo, int(until.timestamp()))):
            if iface_id in ids:
                a = acc[start]
                a[0] += rx
                a[1] += tx
                a[2] += flows
        return [(s, Bytes(v[0], v[1]), v[2]) for s, v in sorted(acc.items())]

    # -- daemon state ------------------------------------------------------------------------------
    def counters(self) -> dict[str, Reading]:
        return {r[0]: Reading(*r[1:]) for r in self.conn.execute(
            "SELECT iface, ifindex, boot_id, boottime, wall, rx_bytes, tx_bytes, rx_packets, tx_packets "
            "FROM counters")}

    def imported(self, sha256: str) -> tuple[str, int, int] | None:
        row = self.conn.execute("SELECT path, rows, imported_at FROM imports WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def events(self, limit: int = 50) -> list[tuple[int, str | None, str, str]]:
        return list(self.conn.execute("SELECT at, iface, kind, detail FROM events ORDER BY id DESC LIMIT ?",
                                      (limit,)))


def _fit(parts: list[tuple[int, int, str | None, str | None, str | None]], rx: int,
         tx: int) -> list[tuple[int, int, str | None, str | None, str | None]]:
    """Scale attributed parts down (per direction) so they never exceed the interface's bytes."""
    arx = sum(p[0] for p in parts)
    atx = sum(p[1] for p in parts)
    if arx <= rx and atx <= tx:
        return parts
    fx = rx / arx if arx > rx else 1.0
    ft = tx / atx if atx > tx else 1.0
    scaled = [(int(p[0] * fx), int(p[1] * ft), *p[2:]) for p in parts]
    return [p for p in scaled if p[0] or p[1]]
