"""The stored calibrations (the carrier's own figures): what each part of a carrier text set, listed and undone.

The table itself is core (``0002_calibrations``); migration ``0300_calibration_parts`` adds what a
carrier text says beyond a used figure: the carrier's name for the part, the total it states or
implies, and the config's quota of the target then, so a disagreement is kept with the calibration.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from datacap.errors import InputError

MIGRATION = ("0300_calibration_parts", """
ALTER TABLE calibrations ADD COLUMN part TEXT;              -- the carrier's name for it ("国内通用流量")
ALTER TABLE calibrations ADD COLUMN carrier_total INTEGER;  -- the total the text states or implies
ALTER TABLE calibrations ADD COLUMN config_quota INTEGER;   -- the config's quota of the target then
""")

_COLUMNS = "id, card, bucket, at, used_bytes, local_used_bytes, source, created, part, carrier_total, config_quota"


@dataclass(frozen=True, slots=True)
class StoredCalibration:
    """One row, as ``datacap calibrate list`` shows it. Times are UTC epoch seconds."""

    id: int
    card: str
    bucket: str | None
    at: int
    used_bytes: int
    local_used_bytes: int | None
    source: str
    created: int
    part: str | None
    carrier_total: int | None
    config_quota: int | None


def _select(conn: sqlite3.Connection) -> str:
    # A store not yet migrated by its writer (read-only readers never migrate) lacks the new columns.
    have = {row[1] for row in conn.execute("PRAGMA table_info(calibrations)")}
    return ", ".join(c if c in have else f"NULL AS {c}" for c in _COLUMNS.split(", "))


def rows(conn: sqlite3.Connection, card: str | None = None) -> list[StoredCalibration]:
    """Every calibration (of one card), oldest first."""
    where, args = ("WHERE card = ?", (card,)) if card is not None else ("", ())
    cursor = conn.execute(f"SELECT {_select(conn)} FROM calibrations {where} ORDER BY at, id", args)
    return [StoredCalibration(*row) for row in cursor]


def insert(conn: sqlite3.Connection, values: Sequence[tuple[object, ...]], raw: str | None) -> list[int]:
    """Insert (card, bucket, at, used, local, source, part, carrier_total, config_quota) rows inside the
    caller's transaction; returns their ids."""
    ids = []
    for v in values:
        cursor = conn.execute(
            "INSERT INTO calibrations (card, bucket, at, used_bytes, local_used_bytes, source, part, carrier_total, "
            "config_quota, created, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (*v, int(time.time()), raw))
        ids.append(int(cursor.lastrowid or 0))
    return ids


def delete(conn: sqlite3.Connection, calibration_id: int) -> StoredCalibration:
    """Remove one calibration inside the caller's transaction; an unknown id is an InputError."""
    found = conn.execute(f"SELECT {_COLUMNS} FROM calibrations WHERE id = ?", (calibration_id,)).fetchone()
    if found is None:
        known = [str(r[0]) for r in conn.execute("SELECT id FROM calibrations ORDER BY id DESC LIMIT 5")]
        hint = f"the latest are {', '.join(known)}" if known else "there are none"
        raise InputError(f"calibrate undo: no calibration with id {calibration_id} ({hint}; see `datacap "
                         "calibrate list`)")
    conn.execute("DELETE FROM calibrations WHERE id = ?", (calibration_id,))
    return StoredCalibration(*found)


def iso_at(epoch: int, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(epoch, tz).isoformat()
