"""``datacap doctor``: what is damaged in a store, and a rebuild from what is still readable.

Diagnosis reads only: ``PRAGMA quick_check`` and a count of every table, each read on its own so one
damaged table does not hide the state of the others.

The rebuild copies every row it can still read into a new store (scanning each table forwards and
backwards, so one damaged page costs only the rows on it), then recomputes the rollups (hour, day,
week, month, year) from the finest rows that are complete: the 5-minute rows from where retention
last cut them, the hourly rows before that, and so on. The raw counters come along, so the daemon
counts on from them. The damaged file is kept beside the new one as ``NAME.damaged-EPOCH``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from datacap.errors import StoreError
from datacap.store.db import DaemonLock, describe_sqlite_error, open_write, require_store
from datacap.store.health import META_KEY, from_meta
from datacap.store.writer import Rollups
from datacap.timeutil import RESOLUTIONS, UTC, bucket_end, bucket_start

# The periods each rollup can be rebuilt from: only periods nesting in it (weeks cross months).
SOURCES: dict[str, tuple[str, ...]] = {
    "hour": ("5min",), "day": ("5min", "hour"), "week": ("5min", "hour", "day"),
    "month": ("5min", "hour", "day"), "year": ("5min", "hour", "day", "month"),
}
_INDEX: dict[str, int] = {res: i for i, res in enumerate(RESOLUTIONS)}
_KEYS = {"usage": ("res", "iface_id", "start", "card"),
         "attrib": ("res", "start", "iface_id", "card", "app_id", "client_id", "service_id")}
_VALUES = {"usage": ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets"),
           "attrib": ("rx_bytes", "tx_bytes", "flows")}


@dataclass
class Diagnosis:
    path: Path
    problems: list[str]  # quick_check's findings; empty when it says ok
    tables: dict[str, int | str]  # rows, or why they cannot be counted
    write_health: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and all(isinstance(v, int) for v in self.tables.values())

    def as_dict(self) -> dict[str, Any]:
        return {"store": str(self.path), "ok": self.ok, "problems": self.problems, "tables": self.tables,
                "write_health": self.write_health}


@dataclass
class RebuildReport:
    path: Path
    kept_as: Path
    copied: dict[str, int] = field(default_factory=dict)  # rows read back per table
    unreadable: list[str] = field(default_factory=list)  # tables (or parts) a damaged page cut short
    rebuilt: dict[str, int] = field(default_factory=dict)  # rollup rows recomputed per resolution
    corrected: dict[str, int] = field(default_factory=dict)  # of those, missing or different before

    def as_dict(self) -> dict[str, Any]:
        return {"store": str(self.path), "damaged_copy": str(self.kept_as), "copied": self.copied,
                "unreadable": self.unreadable, "rebuilt": self.rebuilt, "corrected": self.corrected}


def diagnose(path: Path) -> Diagnosis:
    """Check the store without writing to it."""
    require_store(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        problems = [r[0] for r in conn.execute("PRAGMA quick_check(50)")]
        names = _table_names(conn)
    except sqlite3.DatabaseError as exc:
        problems, names = [describe_sqlite_error(path, exc)], []
        with contextlib.suppress(sqlite3.DatabaseError):
            names = _table_names(conn)
    problems = [] if problems == ["ok"] else problems
    tables: dict[str, int | str] = {}
    for name in names:
        try:
            tables[name] = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        except sqlite3.DatabaseError as exc:
            tables[name] = f"unreadable: {exc}"
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_KEY,)).fetchone()
        health = from_meta(row[0]) if row else None
    except sqlite3.DatabaseError:
        health = None
    conn.close()
    return Diagnosis(path, problems, tables, health)


def rebuild(path: Path, tz: ZoneInfo, week_start: int = 0) -> RebuildReport:
    """Copy what is readable into a new store, recompute the rollups, and put it in the store's place.

    Refused while a daemon meters into the store (its lock is held).
    """
    require_store(path)
    lock = DaemonLock(path)
    lock.acquire()
    try:
        fresh = path.with_name(f"{path.name}.rebuild")
        for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
            leftover.unlink(missing_ok=True)
        kept = path.with_name(f"{path.name}.damaged-{int(time.time())}")
        report = RebuildReport(path, kept)
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        dst = open_write(fresh)
        try:
            _copy_all(src, dst, report)
            _rebuild_rollups(dst, Rollups(tz, week_start), tz, week_start, report)
            dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            src.close()
            dst.close()
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                os.replace(f"{path}{suffix}", f"{kept}{suffix}")
        os.replace(fresh, path)
        Path(f"{fresh}-wal").unlink(missing_ok=True)
        Path(f"{fresh}-shm").unlink(missing_ok=True)
    finally:
        lock.release()
    return report


def _table_names(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def _copy_all(src: sqlite3.Connection, dst: sqlite3.Connection, report: RebuildReport) -> None:
    try:
        wanted = set(_table_names(dst)) - {"migrations"}
        names = [n for n in _table_names(src) if n in wanted]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"the store's schema itself is unreadable ({exc}): nothing can be rebuilt from it; "
                         "restore a backup") from exc
    dst.execute("BEGIN IMMEDIATE")
    for name in names:
        dst.execute(f'DELETE FROM "{name}"')  # rows the migrations seeded come back from the copy
        cols = [r[1] for r in dst.execute(f'PRAGMA table_info("{name}")')]
        src_cols = {r[1] for r in src.execute(f'PRAGMA table_info("{name}")')}
        cols = [c for c in cols if c in src_cols]
        rows, complete = _salvage(src, name, cols)
        if name in _KEYS:
            res_at = cols.index("res")
            rows = [r for r in rows if r[res_at] in _INDEX]  # a garbled cell is not a row
        marks = ", ".join("?" * len(cols))
        quoted = ", ".join(f'"{c}"' for c in cols)
        dst.executemany(f'INSERT OR IGNORE INTO "{name}" ({quoted}) VALUES ({marks})', rows)
        report.copied[name] = len(rows)
        if not complete:
            report.unreadable.append(name)
    dst.execute("COMMIT")


def _salvage(src: sqlite3.Connection, table: str, cols: list[str]) -> tuple[list[tuple[Any, ...]], bool]:
    """Every row of ``table`` still readable: a forward and a backward scan meet at a damaged page."""
    quoted = ", ".join(f'"{c}"' for c in cols)
    keys = _primary_key(src, table) or ["rowid"]
    found: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    complete = True
    for direction in ("ASC", "DESC"):
        order = ", ".join(f"{k} {direction}" for k in keys)
        sql = f'SELECT {quoted} FROM "{table}" ORDER BY {order}'
        try:
            for row in src.execute(sql):
                found.setdefault(row, row)
        except sqlite3.DatabaseError:
            complete = False
        if complete:
            break
    return list(found), complete


def _primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    info = sorted((r[5], r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")') if r[5])
    return [f'"{name}"' for _, name in info]


def _rebuild_rollups(conn: sqlite3.Connection, rollups: Rollups, tz: ZoneInfo, week_start: int,
                     report: RebuildReport) -> None:
    complete = _complete_since(conn)
    conn.execute("BEGIN IMMEDIATE")
    for table in ("usage", "attrib"):
        for target, sources in SOURCES.items():
            rebuilt, corrected = _rebuild_one(conn, table, target, sources, complete, rollups, tz, week_start)
            report.rebuilt[f"{table}.{target}"] = rebuilt
            report.corrected[f"{table}.{target}"] = corrected
    conn.execute("COMMIT")


def _complete_since(conn: sqlite3.Connection) -> dict[str, int | None]:
    """Per resolution, where its rows are complete (retention cut them there); None: from the start."""
    out: dict[str, int | None] = {}
    for res in RESOLUTIONS:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"complete_since_{res}",)).fetchone()
        out[res] = int(row[0]) if row else None
    return out


def _rebuild_one(conn: sqlite3.Connection, table: str, target: str, sources: tuple[str, ...],
                 complete: dict[str, int | None], rollups: Rollups, tz: ZoneInfo, week_start: int) -> tuple[int, int]:
    """Recompute ``target`` rows of ``table`` from the finest complete source. Returns (rows, corrected)."""
    keys, values = _KEYS[table], _VALUES[table]
    level = _INDEX[target]
    upper: int | None = None  # the part from here on is rebuilt from a finer source already
    rebuilt = corrected = 0
    for source in sources:
        lower = _ceil(target, complete[source], tz, week_start)
        if upper is not None and lower >= upper:
            continue
        sums: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * len(values))
        for row in _rows(conn, table, source, lower, upper):
            rec = dict(zip((*keys, *values), row, strict=True))
            if not isinstance(rec["start"], int) or rec["start"] % 300:
                continue  # a garbled row
            start = rollups.starts(rec["start"])[level][1]
            if start < lower or (upper is not None and start >= upper):
                continue
            key = tuple(start if k == "start" else target if k == "res" else rec[k] for k in keys)
            acc = sums[key]
            for i, v in enumerate(values):
                acc[i] += rec[v]
        old = {tuple(r[:len(keys)]): list(r[len(keys):]) for r in _rows(conn, table, target, lower, upper)}
        corrected += sum(1 for k, v in sums.items() if old.get(k) != v) + sum(1 for k in old if k not in sums)
        bounds = [target, lower] + ([upper] if upper is not None else [])
        conn.execute(f"DELETE FROM {table} WHERE res = ? AND start >= ?" + (" AND start < ?" if upper else ""),
                     bounds)
        cols = (*keys, *values)
        conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                         [(*k, *v) for k, v in sums.items()])
        rebuilt += len(sums)
        upper = lower
    return rebuilt, corrected


def _rows(conn: sqlite3.Connection, table: str, res: str, lower: int, upper: int | None) -> Iterator[tuple[Any, ...]]:
    cols = ", ".join((*_KEYS[table], *_VALUES[table]))
    sql = f"SELECT {cols} FROM {table} WHERE res = ? AND start >= ?"
    args: list[Any] = [res, lower]
    if upper is not None:
        sql += " AND start < ?"
        args.append(upper)
    yield from conn.execute(sql, args)


def _ceil(res: str, instant: int | None, tz: ZoneInfo, week_start: int) -> int:
    """The first ``res`` bucket starting at or after ``instant`` (the very beginning for None)."""
    if instant is None:
        return -(1 << 62)
    at = dt.datetime.fromtimestamp(instant, UTC)
    start = bucket_start(res, at, tz, week_start)  # type: ignore[arg-type]
    if int(start.timestamp()) == instant:
        return instant
    return int(bucket_end(res, start, tz, week_start).timestamp())  # type: ignore[arg-type]
