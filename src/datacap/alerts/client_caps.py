"""Per-client quotas at run time: measure, cap, lift at the period's reset, survive restarts.

Each step (after a daemon flush) sums every limited client's attributed bytes of its periods from
the store, records a new cap in ``client_caps`` *before* nftables is changed (so a restart knows
what is in force and why), loads the whole ``inet datacap_clients`` table in one atomic ``nft -f``,
and tells the limit's channels once. A cap stays until its period ends, whatever later counts say,
and is lifted by the first step at or after that instant, also after a restart. ``now`` is always a
parameter, so the lifting can be shown at any instant without waiting for midnight.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from datacap.alerts.client_limits import Cap, ClientLimit, Period, Target, evaluate, ruleset
from datacap.alerts.enforce import Runner, subprocess_runner
from datacap.errors import DatacapError, MeterError
from datacap.plans.config import CardConfig
from datacap.timeutil import UTC
from datacap.units import format_bytes

log = logging.getLogger("datacap.alerts.client_caps")

CLIENT_CAPS_MIGRATION = ("0370_client_caps", """
-- Clients over a [[clients.limits]] quota: in force until period_end (issue #15).
CREATE TABLE client_caps (
    limit_key    TEXT PRIMARY KEY,          -- 'mac:aa:bb:..' or 'hostname:NAME'
    label        TEXT NOT NULL,
    period       TEXT NOT NULL,             -- 'day' | 'cycle'
    period_start INTEGER NOT NULL,
    period_end   INTEGER NOT NULL,          -- lifted at the first step at or after this instant
    since        INTEGER NOT NULL,
    used_bytes   INTEGER NOT NULL,
    quota_bytes  INTEGER NOT NULL,
    action       TEXT NOT NULL,             -- 'block' | 'throttle'
    rate_bps     INTEGER,
    notified     INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0
);
""")
MAX_NOTIFY_ATTEMPTS = 5
Notify = Callable[[str, str, str], None]  # (channel URL, title, body); raises DeliveryError


@dataclass(frozen=True, slots=True)
class CapRecord:
    cap: Cap
    since: int
    notified: bool
    attempts: int

    def as_dict(self, tz: ZoneInfo) -> dict[str, object]:
        c = self.cap
        return {"client": c.key.split(":", 1)[1], "by": c.key.split(":", 1)[0], "label": c.label,
                "period": c.period.kind, "action": c.action, "rate_bps": c.rate_bps,
                "used_bytes": c.used, "quota_bytes": c.period.quota,
                "since": _iso(self.since, tz), "until": _iso(c.period.end, tz)}


def _iso(epoch: int, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(epoch, tz).isoformat()


def stored_caps(conn: sqlite3.Connection) -> list[CapRecord]:
    """The caps recorded in the store (none when the table is not there yet: a read-only old store)."""
    try:
        rows = conn.execute("SELECT limit_key, label, period, period_start, period_end, since, used_bytes, "
                            "quota_bytes, action, rate_bps, notified, attempts FROM client_caps "
                            "ORDER BY limit_key").fetchall()
    except sqlite3.OperationalError:
        return []
    return [CapRecord(Cap(k, label, Period(kind, start, end, quota), used, action, rate), since, bool(n), a)
            for k, label, kind, start, end, since, used, quota, action, rate, n, a in rows]


def client_usage(conn: sqlite3.Connection, limit: ClientLimit, period: Period) -> int:
    """Bytes (both ways) attributed to the limit's client in ``period``, from day rows when the period
    starts at a local midnight (as days and cycles do), else from hour rows."""
    column, value = ("mac", limit.mac) if limit.mac else ("hostname", limit.hostname)
    ids = [r[0] for r in conn.execute(f"SELECT id FROM clients WHERE {column} = ?", (value,))]
    if not ids:
        return 0
    day_start = conn.execute("SELECT 1 FROM attrib WHERE res = 'day' AND start = ? LIMIT 1",
                             (period.start,)).fetchone()
    res = "day" if day_start or period.kind == "day" else "hour"
    marks = ",".join("?" * len(ids))
    row = conn.execute(f"SELECT coalesce(sum(rx_bytes + tx_bytes), 0) FROM attrib WHERE res = ? AND start >= ? "
                       f"AND start < ? AND client_id IN ({marks})", (res, period.start, period.end, *ids)).fetchone()
    return int(row[0])


class ClientCaps:
    def __init__(self, conn: sqlite3.Connection, transaction: Callable[[], object], limits: Sequence[ClientLimit],
                 cards: Sequence[CardConfig], tz: ZoneInfo, *, channels: dict[str, str] | None = None,
                 notify: Notify | None = None, runner: Runner | None = None,
                 neighbours: Callable[[], dict[str, str]] | None = None) -> None:
        self.conn = conn
        self.transaction = transaction  # Writer.transaction: the single writer's
        self.limits = {limit.key: limit for limit in limits}
        self.cards = list(cards)
        self.tz = tz
        self.channels = channels or {}
        self.notify = notify
        self.run = runner or subprocess_runner()
        self.neighbours = neighbours or (lambda: {})
        self._loaded: str | None = None  # the last ruleset nft accepted

    def step(self, now: float) -> list[str]:
        """Cap, lift, (re)load the table and notify as ``now`` calls for; returns what changed, said."""
        at = dt.datetime.fromtimestamp(now, UTC)
        held = {r.cap.key: r for r in stored_caps(self.conn)}
        notes: list[str] = []
        ended = [r for k, r in held.items() if now >= r.cap.period.end or k not in self.limits]
        fresh: list[Cap] = []
        for key, limit in self.limits.items():
            if key in held and held[key] not in ended:
                continue  # capped until its period ends, whatever later counts say
            cap = evaluate(limit, self._usage_of(limit), at, self.tz, self.cards)
            if cap is not None:
                fresh.append(cap)
        if ended or fresh:
            with self.transaction() as conn:  # type: ignore[attr-defined]
                for r in ended:
                    conn.execute("DELETE FROM client_caps WHERE limit_key = ?", (r.cap.key,))
                    conn.execute("INSERT INTO events (at, iface, kind, detail) VALUES (?, NULL, ?, ?)",
                                 (int(now), "client_cap_lifted", json.dumps({"client": r.cap.key})))
                for c in fresh:
                    conn.execute("INSERT OR REPLACE INTO client_caps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
                                 (c.key, c.label, c.period.kind, c.period.start, c.period.end, int(now), c.used,
                                  c.period.quota, c.action, c.rate_bps))
                    conn.execute("INSERT INTO events (at, iface, kind, detail) VALUES (?, NULL, ?, ?)",
                                 (int(now), "client_capped", json.dumps({"client": c.key, "period": c.period.kind,
                                                                         "used": c.used, "quota": c.period.quota})))
            notes += [f"{r.cap.label}: {r.cap.period.kind} period over, cap lifted" for r in ended]
            notes += [f"{c.label}: {c.used} of {c.period.quota} bytes this {c.period.kind}: {_what(c)} until "
                      f"{_iso(c.period.end, self.tz)}" for c in fresh]
        self._load(stored_caps(self.conn))
        self._notify_due(now)
        return notes

    def _usage_of(self, limit: ClientLimit) -> Callable[[Period], int]:
        return lambda period: client_usage(self.conn, limit, period)

    def _targets(self, records: Sequence[CapRecord]) -> list[Target]:
        try:
            table = self.neighbours()
        except DatacapError as exc:
            log.warning("client limits: neighbour table unreadable, capping by MAC only: %s", exc)
            table = {}
        out = []
        for r in records:
            kind, _, ident = r.cap.key.partition(":")
            macs = {ident} if kind == "mac" else {m for (m,) in self.conn.execute(
                "SELECT DISTINCT mac FROM clients WHERE hostname = ? AND mac != ''", (ident,))}
            ips = tuple(sorted(ip for ip, mac in table.items() if mac in macs))
            out.append(Target(r.cap.key, r.cap.action, r.cap.rate_bps, tuple(sorted(macs)), ips))
        return out

    def _load(self, records: Sequence[CapRecord]) -> None:
        script = ruleset(self._targets(records))
        if script == self._loaded and (not records or self._table_present()):
            return
        self.run(["nft", "-f", "-"], script)  # MeterError/NotPermitted: the caller logs, the next step retries
        self._loaded = script

    def _table_present(self) -> bool:
        try:
            self.run(["nft", "list", "table", "inet", "datacap_clients"], None)
            return True
        except MeterError:
            return False

    def _notify_due(self, now: float) -> None:
        if self.notify is None:
            return
        for r in stored_caps(self.conn):
            limit = self.limits.get(r.cap.key)
            if r.notified or limit is None or not limit.notify or r.attempts >= MAX_NOTIFY_ATTEMPTS:
                continue
            title = f"datacap: {r.cap.label} {_what(r.cap)}"
            body = (f"{r.cap.label} used {format_bytes(r.cap.used)} of its {format_bytes(r.cap.period.quota)} "
                    f"{'daily' if r.cap.period.kind == 'day' else 'cycle'} quota: {_what(r.cap)} until "
                    f"{_iso(r.cap.period.end, self.tz)}.")
            ok = True
            for channel in limit.notify:
                try:
                    self.notify(self.channels[channel], title, body)
                except DatacapError as exc:
                    ok = False
                    log.warning("client limits: %s: not delivered to %s: %s", r.cap.label, channel, exc)
            with self.transaction() as conn:  # type: ignore[attr-defined]
                conn.execute("UPDATE client_caps SET notified = ?, attempts = attempts + 1 WHERE limit_key = ?",
                             (int(ok), r.cap.key))

    def clear(self) -> None:
        """Remove the table (nothing capped any more, e.g. the limits were taken out of the config)."""
        self.run(["nft", "-f", "-"], ruleset([]))
        self._loaded = None


def _what(cap: Cap) -> str:
    return "blocked" if cap.action == "block" else f"throttled to {(cap.rate_bps or 0) / 1e6:g} Mbit/s"

