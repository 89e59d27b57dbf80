"""CSV import and export of usage: ``time,interface,rx_bytes,tx_bytes[,card,app,client,service]``.

``time`` is the instant the bytes were used (ISO 8601 with an offset or Z); the bytes go into the
5-minute bucket holding it. A row with an app, client or service is also attribution of those bytes.
An import is all or nothing: every row is checked first, and any bad row rejects the file. Besides
its syntax a row must be plausible (:class:`Plausibility`): not in the future, for a configured card,
and within ``max_rate`` for its 5 minutes.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import ipaddress
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from datacap.errors import ImportRejected, InputError
from datacap.model import AppIdentity, AttribDelta, ClientIdentity, UsageRecord
from datacap.store.writer import TrafficDelta

REQUIRED = ("time", "interface", "rx_bytes", "tx_bytes")
OPTIONAL = ("card", "app", "client", "service")
HEADER = REQUIRED + OPTIONAL
MAX_SHOWN = 20
_CARD = re.compile(r"^[a-z0-9_-]+$")
_MAC = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


MAX_DIGITS = 16  # 10^16 bytes is ~9 PB: beyond any 5 minutes of any link, and far from 2^63


@dataclass(frozen=True, slots=True)
class Plausibility:
    """What an imported row must respect besides its syntax (issue #10 item 8).

    ``now``: no row may lie after it (plus a minute of clock slack). ``max_rate_bps``: the meter's
    ``max_rate``; the bytes of one interface in one 5-minute bucket (each direction, this file's rows
    plus what the store already holds there) may not exceed what that rate moves in 300 s.
    ``cards``: the configured card names a ``card`` column may name (None: any, when no card is
    configured). ``stored``: the store's bytes per (bucket, interface) for buckets in [lo, hi].
    """

    now: dt.datetime
    max_rate_bps: int | None = None
    cards: frozenset[str] | None = None
    stored: Callable[[int, int], Mapping[tuple[int, str], tuple[int, int]]] | None = None

    @property
    def bucket_limit(self) -> int | None:
        return None if self.max_rate_bps is None else self.max_rate_bps * BUCKET // 8


BUCKET = 300
FUTURE_SLACK = dt.timedelta(minutes=1)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class ParsedFile:
    traffic: list[TrafficDelta]
    attrib: list[AttribDelta]
    rows: int
    sha256: str
    total_bytes: int


def read_usage_csv(path: Path, progress: Callable[[int], None] | None = None,
                   plausible: Plausibility | None = None) -> ParsedFile:
    """Parse and check every row (and, with ``plausible``, that it could be true); raise ImportRejected
    listing up to 20 bad rows as ``FILE:LINE: reason``: then nothing is imported."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected([f"{path}: not UTF-8 text (byte {exc.start})"], 1) from None
    problems: list[str] = []
    bad = 0
    traffic: list[TrafficDelta] = []
    attrib: list[AttribDelta] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    columns = _check_header(path, header)
    rows = 0
    total = 0
    rate = _RateCheck(plausible.bucket_limit) if plausible and plausible.bucket_limit else None
    lines = array("I")  # the line of each traffic row, to name it when the store's bytes add up
    for line, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        rows += 1
        try:
            delta, extra, epoch = _parse_row(dict(zip(columns, fields, strict=False)), len(fields), len(columns))
            if plausible is not None:
                _plausible(delta, epoch, plausible)
            if rate is not None:
                rate.add(delta, line)
        except InputError as exc:
            bad += 1
            if len(problems) < MAX_SHOWN:
                problems.append(f"{path}:{line}: {exc}")
            continue
        traffic.append(delta)
        if rate is not None:
            lines.append(line)
        total += delta.rx_bytes + delta.tx_bytes
        if extra is not None:
            attrib.append(extra)
        if progress and rows % 5000 == 0:
            progress(reader.line_num)
    if rate is not None and not bad and plausible is not None and plausible.stored is not None and traffic:
        stored = plausible.stored(min(d.bucket for d in traffic), max(d.bucket for d in traffic))
        for line, reason in rate.against(stored, traffic, lines) if stored else []:
            bad += 1
            if len(problems) < MAX_SHOWN:
                problems.append(f"{path}:{line}: {reason}")
    if bad:
        raise ImportRejected(problems, bad)
    if rows == 0:
        raise ImportRejected([f"{path}: no data rows after the header"], 1)
    return ParsedFile(traffic, attrib, rows, hashlib.sha256(raw).hexdigest(), total)


def _check_header(path: Path, header: list[str] | None) -> list[str]:
    if header is None:
        raise ImportRejected([f"{path}:1: empty file; expected the header {','.join(REQUIRED)}"], 1)
    columns = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    unknown = [c for c in columns if c not in HEADER]
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if missing or unknown or dupes:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        if dupes:
            parts.append(f"repeated column(s) {', '.join(dupes)}")
        raise ImportRejected([f"{path}:1: bad header: {'; '.join(parts)}; expected "
                              f"{','.join(REQUIRED)} plus optional {','.join(OPTIONAL)}"], 1)
    return columns


def _parse_row(row: dict[str, str], width: int,
               expected: int) -> tuple[TrafficDelta, AttribDelta | None, int]:
    """The row's traffic, its attribution (if any) and its instant (epoch seconds)."""
    if width != expected:
        raise InputError(f"expected {expected} fields, found {width}")
    instant = parse_time(row["time"])
    iface = row["interface"].strip()
    if not iface or any(c.isspace() for c in iface) or "/" in iface:
        raise InputError(f"interface: expected an interface name like wwan0, found {row['interface']!r}")
    rx, tx = _bytes(row, "rx_bytes"), _bytes(row, "tx_bytes")
    card = (row.get("card") or "").strip() or None
    if card is not None and not _CARD.match(card):
        raise InputError(f"card: expected lower-case letters, digits, - and _, found {card!r}")
    epoch = int(instant.timestamp())
    bucket = epoch - epoch % 300
    delta = TrafficDelta(bucket, iface, rx, tx, card=card)
    app = (row.get("app") or "").strip()
    client = (row.get("client") or "").strip()
    service = (row.get("service") or "").strip()
    if not (app or client or service):
        return delta, None, epoch
    return delta, AttribDelta(bucket, iface, rx, tx, flows=0, card=card,
                              app=AppIdentity(app) if app else None,
                              client=client_identity(client) if client else None, service=service or None), epoch


def parse_time(text: str) -> dt.datetime:
    value = text.strip()
    try:
        parsed = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise InputError(f"time: expected ISO 8601 like 2026-11-29T08:00:00+08:00, found {text!r}") from None
    if parsed.tzinfo is None:
        raise InputError(f"time: expected an offset or Z (the instant must be unambiguous), found {text!r}")
    if not 1970 <= parsed.year <= 2100:
        raise InputError(f"time: expected a year from 1970 to 2100, found {text!r}")
    return parsed


def _bytes(row: dict[str, str], key: str) -> int:
    value = row[key].strip()
    if not value.isascii() or not value.isdigit():
        shown = row[key] if len(row[key]) <= 40 else row[key][:40] + "…"
        raise InputError(f"{key}: expected a non-negative integer, found {shown!r}")
    digits = value.lstrip("0")
    if len(digits) > MAX_DIGITS:
        raise InputError(f"{key}: expected at most {MAX_DIGITS} digits (about 9 PB), found a {len(digits)}-digit "
                         "number")
    return int(value)


def _plausible(delta: TrafficDelta, epoch: int, check: Plausibility) -> None:
    """A row that could not be true: in the future, before 1970, or for a card the config does not know."""
    instant = dt.datetime.fromtimestamp(epoch, dt.UTC)
    if epoch < 0:
        raise InputError(f"time: expected an instant after {EPOCH.date()}, found one before it")
    if instant > check.now + FUTURE_SLACK:
        now = check.now.astimezone(dt.UTC).isoformat(timespec="seconds")
        raise InputError(f"time: {instant.isoformat()} is in the future (now {now})")
    if delta.card is not None and check.cards is not None and delta.card not in check.cards:
        known = ", ".join(sorted(check.cards)) or "none"
        raise InputError(f"card: no card {delta.card!r} in the config (known: {known})")


class _RateCheck:
    """Bytes per (5-minute bucket, interface), each direction, against what ``max_rate`` moves in 300 s.

    Compact, since a file may hold a million rows: one small-int key and one packed int per bucket
    (``rx << 64 | tx``; both stay below the limit, far below 2^64), about 75 bytes each."""

    _SHIFT = 64
    _MASK = (1 << 64) - 1

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.ifaces: dict[str, int] = {}
        self.sums: dict[int, int] = {}

    def _key(self, bucket: int, interface: str) -> int:
        index = self.ifaces.setdefault(interface, len(self.ifaces))
        return (bucket // BUCKET) << 20 | index

    def add(self, delta: TrafficDelta, line: int) -> None:
        key = self._key(delta.bucket, delta.interface)
        packed = self.sums.get(key, 0)
        rx, tx = (packed >> self._SHIFT) + delta.rx_bytes, (packed & self._MASK) + delta.tx_bytes
        over = self._over(rx, tx, delta.bucket, delta.interface)
        if over:
            raise InputError(over)
        self.sums[key] = rx << self._SHIFT | tx

    def against(self, stored: Mapping[tuple[int, str], tuple[int, int]], traffic: Sequence[TrafficDelta],
                lines: Sequence[int]) -> list[tuple[int, str]]:
        """(line, reason) of the first row of each bucket this file would push beyond the limit with
        what the store already holds there."""
        out = []
        seen: set[tuple[int, str]] = set()
        for delta, line in zip(traffic, lines, strict=True):
            where = (delta.bucket, delta.interface)
            if where not in stored or where in seen:
                continue
            seen.add(where)
            packed = self.sums[self._key(*where)]
            srx, stx = stored[where]
            over = self._over((packed >> self._SHIFT) + srx, (packed & self._MASK) + stx, *where, stored=True)
            if over:
                out.append((line, over))
        return out

    def _over(self, rx: int, tx: int, bucket: int, interface: str, stored: bool = False) -> str | None:
        if max(rx, tx) <= self.limit:
            return None
        direction, amount = ("rx_bytes", rx) if rx >= tx else ("tx_bytes", tx)
        start = dt.datetime.fromtimestamp(bucket, dt.UTC).isoformat()
        with_store = " with what the store already holds there" if stored else ""
        return (f"{direction}: {amount} bytes on {interface} in the 5 minutes from {start}{with_store} is more "
                f"than max_rate allows ({self.limit} bytes in 300 s); refused as implausible")


def client_identity(value: str) -> ClientIdentity:
    """A client column holds an IP, a MAC or a hostname; the same text comes back on export."""
    lowered = value.lower()
    if _MAC.match(lowered):
        return ClientIdentity(ip="", mac=lowered)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return ClientIdentity(ip=value, hostname=value)
    return ClientIdentity(ip=value)


def write_csv(records: Iterable[UsageRecord], out: TextIO, tz: dt.tzinfo) -> int:
    """Write records as import-ready CSV (``datacap import`` reads it back to the same store)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    count = 0
    for r in records:
        writer.writerow([dt.datetime.fromtimestamp(r.start, tz).isoformat(), r.interface, r.rx_bytes,
                         r.tx_bytes, r.card or "", r.app or "", r.client or "",
                         r.service or ""])
        count += 1
    return count


def records_as_json(records: Iterable[UsageRecord], tz: dt.tzinfo) -> Iterator[dict[str, Any]]:
    for r in records:
        yield {"time": dt.datetime.fromtimestamp(r.start, tz).isoformat(), "interface": r.interface,
               "rx_bytes": r.rx_bytes, "tx_bytes": r.tx_bytes, "card": r.card, "app": r.app,
               "client": r.client, "service": r.service}
