"""The hub storage interface and the SQL both backends share.

The two backends differ in connections, locking, migrations and partitioning; the statements that
ingest a batch and read the fleet are the same SQL (``?`` placeholders, rewritten for psycopg).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from datacap.errors import InputError
from datacap.hub.protocol import AttributionRow, Batch, InvalidBatch, UsageRow
from datacap.plans import Calibration
from datacap.timeutil import UTC

OLDEST_START = 946_684_800          # 2000-01-01: a row before it is a broken clock, not usage
FUTURE_SLACK = 2 * 86_400           # a row this far ahead of the hub's clock is refused


@dataclass(frozen=True, slots=True)
class DeviceRow:
    device: str
    group: str
    created: int
    revoked_at: int | None
    last_seq: int
    last_seen: int | None
    hostname: str | None = None
    version: str | None = None
    timezone: str | None = None
    health: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What the hub answers: ``applied`` (acked = seq), ``duplicate`` (acked = last), ``gap`` (expected)."""

    status: Literal["applied", "duplicate", "gap", "revoked"]
    acked: int
    expected: int | None = None


@dataclass(frozen=True, slots=True)
class CardRow:
    device: str
    card: str
    label: str | None
    iccid: str | None
    carrier: str | None
    interfaces: list[str]
    plan: dict[str, Any]
    group: str = ""
    timezone: str | None = None
    last_seen: int | None = None


@dataclass(frozen=True, slots=True)
class CardSummary:
    """The figures of a card's status the fleet table sorts and filters on (the rest is in the JSON)."""

    state: str
    used_bytes: int
    quota_bytes: int | None
    remaining_bytes: int | None
    remaining_fraction: float | None
    exhausts_at: int | None         # when the forecast runs out, if before the cycle ends
    cycle_end: int | None
    throttled: bool
    overage_bytes: int


@dataclass(frozen=True, slots=True)
class CardStatusRow:
    card: CardRow
    summary: CardSummary | None
    computed_at: int | None
    risk: int                       # 0 hurting now, 1 runs out before the cycle ends, 2 silent, 3 fine


@dataclass(frozen=True, slots=True)
class FleetFilter:
    carrier: str | None = None
    device: str | None = None
    group: str | None = None
    limit: int | None = None
    offset: int = 0


@dataclass(frozen=True, slots=True)
class UsageTotal:
    device: str
    interface: str
    card: str | None                # the stamp ("" stored) or None
    rx: int
    tx: int


@dataclass(frozen=True, slots=True)
class CarrierTotal:
    carrier: str | None
    cards: int
    used_bytes: int
    quota_bytes: int
    remaining_bytes: int
    overage_bytes: int


@dataclass(slots=True)
class FleetPage:
    rows: list[CardStatusRow]
    total: int
    carriers: list[CarrierTotal] = field(default_factory=list)


class HubStore(Protocol):
    """What the hub needs of its database. Both implementations pass the same test suite."""

    backend: str

    def migrate(self) -> list[str]: ...
    def close(self) -> None: ...
    # devices and tokens
    def add_device(self, name: str, group: str, token_sha256: str, now: int) -> None: ...
    def add_devices(self, rows: Sequence[tuple[str, str, str]], now: int) -> None: ...
    def devices(self) -> list[DeviceRow]: ...
    def revoke(self, name: str, now: int) -> bool: ...
    def device_by_token(self, token_sha256: str) -> DeviceRow | None: ...
    # ingestion
    def ingest(self, device: str, batch: Batch, now: int, token_sha256: str | None = None) -> IngestOutcome: ...
    # reading
    def cards(self, device: str | None = None) -> list[CardRow]: ...
    def card(self, device: str, card: str) -> CardRow | None: ...
    def usage_rows(self, device: str, since: int, until: int) -> list[tuple[int, str, str, int, int]]: ...
    def calibrations(self, device: str, card: str) -> list[Calibration]: ...
    def first_usage(self, device: str) -> dict[str, int]: ...
    def usage_totals(self, device: str | None = None) -> list[UsageTotal]: ...
    def events(self, device: str, kind: Literal["texts", "alerts", "calibrations"],
               limit: int = 50) -> list[dict[str, Any]]: ...
    # the fleet table's cache of statuses
    def due_cards(self, limit: int, stale_before: int, fresh_after: int) -> list[tuple[str, str, int | None]]: ...
    def save_status(self, device: str, card: str, computed_at: int, summary: CardSummary,
                    status: dict[str, Any], dirty_seen: int | None) -> None: ...
    def card_status(self, device: str, card: str) -> tuple[int, dict[str, Any]] | None: ...
    def fleet(self, flt: FleetFilter, now: int, silent_after: int) -> FleetPage: ...
    def filter_options(self) -> dict[str, list[str]]: ...


def epoch(value: dt.datetime) -> int:
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


def check_rows(batch: Batch, now: int) -> None:
    """Refuse rows no honest device sends (and which would create partitions without end)."""
    parts: list[tuple[str, Sequence[UsageRow | AttributionRow]]] = [("usage", batch.usage),
                                                                     ("attribution", batch.attribution)]
    for kind, rows in parts:
        for i, r in enumerate(rows):
            if not OLDEST_START <= r.start <= now + FUTURE_SLACK:
                raise InvalidBatch(f"{kind}.{i}.start: expected an instant between 2000 and the hub's clock "
                                   f"(+2 days), found {r.start}")
            if max(len(r.interface), len(r.card or "")) > 64:
                raise InvalidBatch(f"{kind}.{i}: interface and card names are at most 64 characters")
    names = [c.name for c in batch.cards]
    if len(set(names)) != len(names):
        raise InvalidBatch("cards: expected unique card names")


def summed(batch: Batch) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, int]]:
    """Usage and attribution rows with equal keys added up, and each interface's first start."""
    usage: dict[tuple[str, str, int], list[int]] = defaultdict(lambda: [0, 0])
    firsts: dict[str, int] = {}
    for u in batch.usage:
        acc = usage[(u.card or "", u.interface, u.start)]
        acc[0] += u.rx
        acc[1] += u.tx
        firsts[u.interface] = min(firsts.get(u.interface, u.start), u.start)
    attrib: dict[tuple[str, str, int, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for a in batch.attribution:
        acc = attrib[(a.card or "", a.interface, a.start, a.kind, a.name)]
        acc[0] += a.rx
        acc[1] += a.tx
    return ([(batch.device, *k, rx, tx) for k, (rx, tx) in usage.items()],
            [(batch.device, *k, rx, tx) for k, (rx, tx) in attrib.items()], firsts)


@dataclass(slots=True)
class IngestJob:
    """A batch checked and summed, ready for its transaction."""

    device: str
    batch: Batch
    now: int
    token_sha256: str | None
    usage: list[tuple[Any, ...]]
    attrib: list[tuple[Any, ...]]
    firsts: dict[str, int]
    cards_digest: str


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


RISK_SQL = """CASE WHEN s.overage_bytes > 0 OR s.throttled = 1 OR s.remaining_bytes <= 0 THEN 0
 WHEN s.exhausts_at IS NOT NULL THEN 1
 WHEN d.last_seen IS NULL OR d.last_seen < ? THEN 2 ELSE 3 END"""
FAR = 1 << 62


class SqlHubStore:
    """The statements both backends share; subclasses provide connections, locking and migrations."""

    backend = "sql"
    lock_suffix = ""                # " FOR UPDATE" where the database locks rows
    least = "min"                   # the scalar minimum function

    def __init__(self) -> None:
        # What this process committed last, to skip statements that would change nothing.
        self._known_cards: dict[str, tuple[int, str]] = {}      # device -> (seq, digest of its cards)
        self._known_firsts: dict[tuple[str, str], int] = {}     # (device, interface) -> first start

    # -- provided by the backend
    def _write(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _before_ingest(self, batch: Batch) -> None:
        """Backend hook outside the transaction (PostgreSQL creates the month partitions)."""

    # -- devices
    def add_device(self, name: str, group: str, token_sha256: str, now: int) -> None:
        with self._write() as cur:
            cur.execute("SELECT 1 FROM devices WHERE device = ?", (name,))
            if cur.fetchone():
                raise InputError(f"hub device add: a device named {name!r} exists (revoke it, or pick another name)")
            cur.execute("INSERT INTO devices (device, grp, token_sha256, created) VALUES (?, ?, ?, ?)",
                        (name, group, token_sha256, now))

    def add_devices(self, rows: Sequence[tuple[str, str, str]], now: int) -> None:
        """Register many devices (name, group, token hash) in one transaction (provisioning a fleet)."""
        with self._write() as cur:
            cur.executemany("INSERT INTO devices (device, grp, token_sha256, created) VALUES (?, ?, ?, ?)",
                            [(*r, now) for r in rows])

    def devices(self) -> list[DeviceRow]:
        with self._read() as cur:
            cur.execute("SELECT device, grp, created, revoked_at, last_seq, last_seen, hostname, version, timezone,"
                        " health FROM devices ORDER BY device")
            return [_device(r) for r in cur.fetchall()]

    def revoke(self, name: str, now: int) -> bool:
        with self._write() as cur:
            cur.execute("SELECT revoked_at FROM devices WHERE device = ?", (name,))
            row = cur.fetchone()
            if row is None:
                return False
            # A new random value, so the old token can never match again (and nothing can be guessed).
            cur.execute("UPDATE devices SET revoked_at = ?, token_sha256 = ? WHERE device = ?",
                        (row[0] or now, f"revoked:{name}", name))
            return True

    def device_by_token(self, token_sha256: str) -> DeviceRow | None:
        with self._read() as cur:
            cur.execute("SELECT device, grp, created, revoked_at, last_seq, last_seen, hostname, version, timezone,"
                        " health FROM devices WHERE token_sha256 = ? AND revoked_at IS NULL", (token_sha256,))
            row = cur.fetchone()
            return None if row is None else _device(row)

    # -- ingestion
    def ingest(self, device: str, batch: Batch, now: int, token_sha256: str | None = None) -> IngestOutcome:
        """Apply the batch if it is the device's next one, with the sequence bump, in one transaction.

        ``token_sha256``: the token the batch came with, checked again under the device's row lock,
        so a token revoked while the batch was on its way is refused (callers may cache lookups).
        """
        job = self._prepare(device, batch, now, token_sha256)
        with self._write() as cur:
            outcome = self._ingest_in(cur, job)
        self._committed(job, outcome)
        return outcome

    def _prepare(self, device: str, batch: Batch, now: int, token_sha256: str | None) -> IngestJob:
        check_rows(batch, now)
        usage, attrib, firsts = summed(batch)
        self._before_ingest(batch)
        digest = hashlib.sha256(json.dumps([c.model_dump(mode="json") for c in batch.cards],
                                           sort_keys=True).encode()).hexdigest()
        return IngestJob(device, batch, now, token_sha256, usage, attrib, firsts, digest)

    def _ingest_in(self, cur: Cursor, job: IngestJob) -> IngestOutcome:
        """The batch's statements inside the caller's transaction."""
        device, batch = job.device, job.batch
        cur.execute(f"SELECT last_seq, revoked_at, token_sha256 FROM devices WHERE device = ?{self.lock_suffix}",
                    (device,))
        row = cur.fetchone()
        if row is None or row[1] is not None or (job.token_sha256 is not None and row[2] != job.token_sha256):
            return IngestOutcome("revoked", 0)
        last = int(row[0])
        if batch.seq <= last:
            return IngestOutcome("duplicate", last)
        if batch.seq > last + 1:
            return IngestOutcome("gap", last, last + 1)
        job.firsts = {i: s for i, s in job.firsts.items() if self._known_firsts.get((device, i), s + 1) > s}
        same_cards = self._known_cards.get(device) == (last, job.cards_digest)
        self._apply(cur, batch, job.usage, job.attrib, job.firsts, job.now, same_cards)
        cur.execute("UPDATE devices SET last_seq = ?, last_seen = ?, hostname = ?, version = ?, timezone = ?,"
                    " health = ? WHERE device = ?",
                    (batch.seq, job.now, batch.host.hostname, batch.host.datacap, batch.host.timezone,
                     batch.health.model_dump_json(), device))
        return IngestOutcome("applied", batch.seq)

    def _committed(self, job: IngestJob, outcome: IngestOutcome) -> None:
        """After the commit: what this process now knows needs no statement next time. The card set
        is known only as of this sequence number (another hub process may apply the next batch)."""
        if outcome.status != "applied":
            return
        self._known_cards[job.device] = (job.batch.seq, job.cards_digest)
        for i, s in job.firsts.items():
            self._known_firsts[(job.device, i)] = s

    def _apply(self, cur: Cursor, batch: Batch, usage: list[tuple[Any, ...]], attrib: list[tuple[Any, ...]],
               firsts: dict[str, int], now: int, same_cards: bool) -> None:
        dev = batch.device
        if usage:
            cur.executemany("INSERT INTO usage (device, card, interface, start, rx, tx) VALUES (?, ?, ?, ?, ?, ?)"
                            " ON CONFLICT (device, card, interface, start) DO UPDATE"
                            " SET rx = usage.rx + excluded.rx, tx = usage.tx + excluded.tx", usage)
        if attrib:
            cur.executemany("INSERT INTO attribution (device, card, interface, start, kind, name, rx, tx)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                            " ON CONFLICT (device, card, interface, start, kind, name) DO UPDATE"
                            " SET rx = attribution.rx + excluded.rx, tx = attribution.tx + excluded.tx", attrib)
        if firsts:
            cur.executemany(f"INSERT INTO links (device, interface, first_start) VALUES (?, ?, ?)"
                            f" ON CONFLICT (device, interface) DO UPDATE"
                            f" SET first_start = {self.least}(links.first_start, excluded.first_start)",
                            [(dev, i, s) for i, s in firsts.items()])
        if batch.calibrations:
            cur.executemany(
                "INSERT INTO calibrations (device, card, id, bucket, at, used_bytes, local_used_bytes, source, extra)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, card, id) DO UPDATE"
                " SET bucket = excluded.bucket, at = excluded.at, used_bytes = excluded.used_bytes,"
                " local_used_bytes = excluded.local_used_bytes,"
                " source = excluded.source, extra = excluded.extra",
                [(dev, c.card, c.id, c.bucket, epoch(c.at), c.used_bytes, _local(c.model_extra), c.source,
                  json.dumps(c.model_extra or {}, default=str)) for c in batch.calibrations])
        if batch.texts:
            cur.executemany("INSERT INTO texts (device, card, id, at, sender, body) VALUES (?, ?, ?, ?, ?, ?)"
                            " ON CONFLICT (device, card, id) DO UPDATE SET at = excluded.at,"
                            " sender = excluded.sender, body = excluded.body",
                            [(dev, t.card or "", t.id, epoch(t.at), t.sender, t.text) for t in batch.texts])
        if batch.alerts:
            cur.executemany("INSERT INTO alerts (device, card, id, at, rule, level, message) VALUES"
                            " (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, card, id) DO UPDATE SET at = excluded.at,"
                            " rule = excluded.rule, level = excluded.level, message = excluded.message",
                            [(dev, a.card or "", a.id, epoch(a.at), a.rule, a.level, a.message)
                             for a in batch.alerts])
        if same_cards:  # the cards did not change since this device's previous batch: only mark them dirty
            cur.execute("UPDATE cards SET dirty_since = ? WHERE device = ? AND dirty_since IS NULL", (now, dev))
        else:
            self._replace_cards(cur, batch, now)

    def _replace_cards(self, cur: Cursor, batch: Batch, now: int) -> None:
        dev = batch.device
        names = [c.name for c in batch.cards]
        if names:
            marks = ", ".join("?" for _ in names)
            cur.execute(f"DELETE FROM card_status WHERE device = ? AND card NOT IN ({marks})", (dev, *names))
            cur.execute(f"DELETE FROM cards WHERE device = ? AND card NOT IN ({marks})", (dev, *names))
        else:
            cur.execute("DELETE FROM card_status WHERE device = ?", (dev,))
            cur.execute("DELETE FROM cards WHERE device = ?", (dev,))
        if batch.cards:
            cur.executemany(
                "INSERT INTO cards (device, card, label, iccid, carrier, interfaces, plan, updated, dirty_since)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, card) DO UPDATE SET label = excluded.label,"
                " iccid = excluded.iccid, carrier = excluded.carrier, interfaces = excluded.interfaces,"
                " plan = excluded.plan, updated = excluded.updated,"
                " dirty_since = COALESCE(cards.dirty_since, excluded.dirty_since)",
                [(dev, c.name, c.label, c.iccid, c.carrier, json.dumps(c.interfaces),
                  json.dumps(c.plan, sort_keys=True, default=str), now, now) for c in batch.cards])

    # -- reading
    _CARD_COLS = ("c.device, c.card, c.label, c.iccid, c.carrier, c.interfaces, c.plan, d.grp, d.timezone,"
                  " d.last_seen")

    def cards(self, device: str | None = None) -> list[CardRow]:
        where, params = ("WHERE c.device = ?", (device,)) if device is not None else ("", ())
        with self._read() as cur:
            cur.execute(f"SELECT {self._CARD_COLS} FROM cards c JOIN devices d ON d.device = c.device {where}"
                        " ORDER BY c.device, c.card", params)
            return [_card(r) for r in cur.fetchall()]

    def card(self, device: str, card: str) -> CardRow | None:
        with self._read() as cur:
            cur.execute(f"SELECT {self._CARD_COLS} FROM cards c JOIN devices d ON d.device = c.device"
                        " WHERE c.device = ? AND c.card = ?", (device, card))
            row = cur.fetchone()
            return None if row is None else _card(row)

    def usage_rows(self, device: str, since: int, until: int) -> list[tuple[int, str, str, int, int]]:
        with self._read() as cur:
            cur.execute("SELECT start, interface, card, rx, tx FROM usage WHERE device = ? AND start >= ?"
                        " AND start < ? ORDER BY start, interface, card", (device, since, until))
            return [(int(s), i, c, int(rx), int(tx)) for s, i, c, rx, tx in cur.fetchall()]

    def calibrations(self, device: str, card: str) -> list[Calibration]:
        with self._read() as cur:
            cur.execute("SELECT card, bucket, at, used_bytes, source, local_used_bytes FROM calibrations"
                        " WHERE device = ? AND card = ? ORDER BY at, id", (device, card))
            return [Calibration(c, b, dt.datetime.fromtimestamp(at, UTC), int(used), source,
                                None if local is None else int(local))
                    for c, b, at, used, source, local in cur.fetchall()]

    def first_usage(self, device: str) -> dict[str, int]:
        with self._read() as cur:
            cur.execute("SELECT interface, first_start FROM links WHERE device = ?", (device,))
            return {i: int(s) for i, s in cur.fetchall()}

    def usage_totals(self, device: str | None = None) -> list[UsageTotal]:
        where, params = ("WHERE device = ?", (device,)) if device is not None else ("", ())
        with self._read() as cur:
            cur.execute(f"SELECT device, interface, card, SUM(rx), SUM(tx) FROM usage {where}"
                        " GROUP BY device, interface, card ORDER BY device, interface, card", params)
            return [UsageTotal(d, i, c or None, int(rx), int(tx)) for d, i, c, rx, tx in cur.fetchall()]

    def events(self, device: str, kind: Literal["texts", "alerts", "calibrations"],
               limit: int = 50) -> list[dict[str, Any]]:
        cols = {"texts": "id, card, at, sender, body", "alerts": "id, card, at, rule, level, message",
                "calibrations": "id, card, at, bucket, used_bytes, local_used_bytes, source"}[kind]
        with self._read() as cur:
            cur.execute(f"SELECT {cols} FROM {kind} WHERE device = ? ORDER BY at DESC, id DESC LIMIT ?",
                        (device, limit))
            names = [c.strip() for c in cols.split(",")]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    # -- the status cache
    def due_cards(self, limit: int, stale_before: int, fresh_after: int) -> list[tuple[str, str, int | None]]:
        """Cards whose status must be computed: never computed; new usage since it was, unless it was
        computed after ``fresh_after``; or computed before ``stale_before``. Longest waiting first."""
        with self._read() as cur:
            cur.execute("SELECT c.device, c.card, c.dirty_since FROM cards c LEFT JOIN card_status s"
                        " ON s.device = c.device AND s.card = c.card"
                        " WHERE s.computed_at IS NULL OR s.computed_at < ?"
                        " OR (c.dirty_since IS NOT NULL AND s.computed_at < ?)"
                        " ORDER BY COALESCE(s.computed_at, 0), c.device, c.card LIMIT ?",
                        (stale_before, fresh_after, limit))
            return [(d, c, None if ds is None else int(ds)) for d, c, ds in cur.fetchall()]

    def save_status(self, device: str, card: str, computed_at: int, summary: CardSummary,
                    status: dict[str, Any], dirty_seen: int | None) -> None:
        s = summary
        with self._write() as cur:
            cur.execute("SELECT 1 FROM cards WHERE device = ? AND card = ?", (device, card))
            if cur.fetchone() is None:
                return  # replaced meanwhile
            cur.execute(
                "INSERT INTO card_status (device, card, computed_at, state, used_bytes, quota_bytes, remaining_bytes,"
                " remaining_fraction, exhausts_at, cycle_end, throttled, overage_bytes, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, card) DO UPDATE SET"
                " computed_at = excluded.computed_at, state = excluded.state, used_bytes = excluded.used_bytes,"
                " quota_bytes = excluded.quota_bytes, remaining_bytes = excluded.remaining_bytes,"
                " remaining_fraction = excluded.remaining_fraction, exhausts_at = excluded.exhausts_at,"
                " cycle_end = excluded.cycle_end, throttled = excluded.throttled,"
                " overage_bytes = excluded.overage_bytes, status = excluded.status",
                (device, card, computed_at, s.state, s.used_bytes, s.quota_bytes, s.remaining_bytes,
                 s.remaining_fraction, s.exhausts_at, s.cycle_end, int(s.throttled), s.overage_bytes,
                 json.dumps(status, ensure_ascii=False)))
            if dirty_seen is not None:  # newer usage arrived meanwhile: leave the mark for the next round
                cur.execute("UPDATE cards SET dirty_since = NULL WHERE device = ? AND card = ? AND dirty_since <= ?",
                            (device, card, dirty_seen))

    def card_status(self, device: str, card: str) -> tuple[int, dict[str, Any]] | None:
        with self._read() as cur:
            cur.execute("SELECT computed_at, status FROM card_status WHERE device = ? AND card = ?", (device, card))
            row = cur.fetchone()
            return None if row is None else (int(row[0]), json.loads(row[1]))

    def fleet(self, flt: FleetFilter, now: int, silent_after: int) -> FleetPage:
        conds, params = [], []
        for column, value in (("c.carrier", flt.carrier), ("c.device", flt.device), ("d.grp", flt.group)):
            if value is not None:
                conds.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(conds)}" if conds else ""
        base = ("FROM cards c JOIN devices d ON d.device = c.device"
                f" LEFT JOIN card_status s ON s.device = c.device AND s.card = c.card {where}")
        page = " LIMIT ? OFFSET ?" if flt.limit is not None else ""
        paging = [flt.limit, flt.offset] if flt.limit is not None else []
        with self._read() as cur:
            cur.execute(f"SELECT {self._CARD_COLS}, s.computed_at, s.state, s.used_bytes, s.quota_bytes,"
                        f" s.remaining_bytes, s.remaining_fraction, s.exhausts_at, s.cycle_end, s.throttled,"
                        f" s.overage_bytes, {RISK_SQL} AS risk, COUNT(*) OVER () {base}"
                        f" ORDER BY risk, COALESCE(s.exhausts_at, {FAR}), COALESCE(s.remaining_fraction, 2),"
                        f" c.device, c.card{page}", [now - silent_after, *params, *paging])
            fetched = cur.fetchall()
            rows = [_status_row(r[:-1]) for r in fetched]
            if fetched:
                total = int(fetched[0][-1])
            else:  # past the last page: count on its own
                cur.execute(f"SELECT COUNT(*) {base}", params)
                total = int(cur.fetchone()[0])
            cur.execute(f"SELECT c.carrier, COUNT(*), COALESCE(SUM(s.used_bytes), 0), COALESCE(SUM(s.quota_bytes), 0),"
                        f" COALESCE(SUM(s.remaining_bytes), 0), COALESCE(SUM(s.overage_bytes), 0) {base}"
                        " GROUP BY c.carrier ORDER BY c.carrier", params)
            carriers = [CarrierTotal(c, int(n), int(u), int(q), int(r), int(o)) for c, n, u, q, r, o in cur.fetchall()]
        return FleetPage(rows, total, carriers)


    def filter_options(self) -> dict[str, list[str]]:
        """The values the fleet page's filters offer: carriers, devices and groups that have cards."""
        with self._read() as cur:
            out = {}
            for key, sql in (("carrier", "SELECT DISTINCT carrier FROM cards WHERE carrier IS NOT NULL"),
                             ("device", "SELECT DISTINCT device FROM cards"),
                             ("group", "SELECT DISTINCT d.grp FROM devices d JOIN cards c ON c.device = d.device")):
                cur.execute(sql + " ORDER BY 1")
                out[key] = [r[0] for r in cur.fetchall()]
            return out


def _local(extra: dict[str, Any] | None) -> int | None:
    value = (extra or {}).get("local_used_bytes")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _device(r: Sequence[Any]) -> DeviceRow:
    return DeviceRow(r[0], r[1], int(r[2]), None if r[3] is None else int(r[3]), int(r[4]),
                     None if r[5] is None else int(r[5]), r[6], r[7], r[8], json.loads(r[9]) if r[9] else None)


def _card(r: Sequence[Any]) -> CardRow:
    return CardRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), json.loads(r[6]), r[7], r[8],
                   None if r[9] is None else int(r[9]))


def _status_row(r: Sequence[Any]) -> CardStatusRow:
    card = _card(r[:10])
    computed, state, used, quota, remaining, frac, exhausts, cend, throttled, overage, risk = r[10:]
    summary = None if computed is None else CardSummary(
        state, int(used), None if quota is None else int(quota), None if remaining is None else int(remaining),
        None if frac is None else float(frac), None if exhausts is None else int(exhausts),
        None if cend is None else int(cend), bool(throttled), int(overage))
    return CardStatusRow(card, summary, None if computed is None else int(computed), int(risk))
