"""CSV import and export of usage: ``time,interface,rx_bytes,tx_bytes[,card,app,client,service]``.

``time`` is the instant the bytes were used (ISO 8601 with an offset or Z); the bytes go into the
5-minute bucket holding it. A row with an app, client or service is also attribution of those bytes.
An import is all or nothing: every row is checked first, and any bad row rejects the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
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


@dataclass(frozen=True, slots=True)
class ParsedFile:
    traffic: list[TrafficDelta]
    attrib: list[AttribDelta]
    rows: int
    sha256: str
    total_bytes: int


def read_usage_csv(path: Path, progress: Callable[[int], None] | None = None) -> ParsedFile:
    """Parse and check every row; raise ImportRejected listing up to 20 bad rows as ``FILE:LINE: reason``."""
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
    rows_read = _csv_rows(reader, path)
    header = next(rows_read, None)
    columns = _check_header(path, header)
    rows = 0
    total = 0
    for line, fields in enumerate(rows_read, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        rows += 1
        try:
            delta, extra = _parse_row(dict(zip(columns, fields, strict=False)), len(fields), len(columns))
        except InputError as exc:
            bad += 1
            if len(problems) < MAX_SHOWN:
                problems.append(f"{path}:{line}: {exc}")
            continue
        traffic.append(delta)
        total += delta.rx_bytes + delta.tx_bytes
        if extra is not None:
            attrib.append(extra)
        if progress and rows % 5000 == 0:
            progress(reader.line_num)
    if bad:
        raise ImportRejected(problems, bad)
    if rows == 0:
        raise ImportRejected([f"{path}: no data rows after the header"], 1)
    return ParsedFile(traffic, attrib, rows, hashlib.sha256(raw).hexdigest(), total)


def _csv_rows(reader: Any, path: Path) -> Iterator[list[str]]:
    """The reader's rows; a row the csv module cannot read (a field over its 128 KiB limit, an
    unclosed quote at the end) is a refusal naming the line, not a traceback."""
    try:
        yield from reader
    except csv.Error as exc:
        raise ImportRejected([f"{path}:{reader.line_num}: not a CSV row: {exc}"], 1) from None


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


def _parse_row(row: dict[str, str], width: int, expected: int) -> tuple[TrafficDelta, AttribDelta | None]:
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
        return delta, None
    return delta, AttribDelta(bucket, iface, rx, tx, flows=0, card=card,
                              app=AppIdentity(app) if app else None,
                              client=client_identity(client) if client else None, service=service or None)


def parse_time(text: str) -> dt.datetime:
    value = text.strip()
    try:
        parsed = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise InputError(f"time: expected ISO 8601 like 2026-11-29T08:00:00+08:00, found {text!r}") from None
    if parsed.tzinfo is None:
        raise InputError(f"time: expected an offset or Z (the instant must be unambiguous), found {text!r}")
    return parsed


def _bytes(row: dict[str, str], key: str) -> int:
    value = row[key].strip()
    if not value.isdigit():
        raise InputError(f"{key}: expected a non-negative integer, found {row[key]!r}")
    return int(value)


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
