"""The store on real SQLite files: rollups, exact range totals, records for plans, retention, migrations."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from datacap.errors import StoreBusy, StoreError
from datacap.meter.delta import Reading
from datacap.model import AppIdentity, AttribDelta
from datacap.store import DaemonLock, Reader, TrafficDelta, Writer, open_read, open_write
from datacap.store.schema import all_migrations

TZ = ZoneInfo("Asia/Shanghai")
T0 = int(dt.datetime(2026, 11, 28, 23, 50, tzinfo=TZ).timestamp())  # 10 minutes before a local midnight


def make(tmp_path: Path) -> tuple[Writer, Reader]:
    conn = open_write(tmp_path / "s.db")
    return Writer(conn, TZ), Reader(open_read(tmp_path / "s.db"), TZ)


def test_rollups_sum_to_the_same_total_at_every_resolution(tmp_path: Path) -> None:
    writer, reader = make(tmp_path)
    deltas = [TrafficDelta(T0 + i * 300, "wwan0", 1000 + i, 10 * i, 2, 1) for i in range(4)]
    writer.commit(deltas)
    totals = {res: reader.conn.execute("SELECT sum(rx_bytes), sum(tx_bytes), count(*) FROM usage WHERE res = ?",
                                       (res,)).fetchone() for res in ("5min", "hour", "day", "week", "month", "year")}
    assert {t[:2] for t in totals.values()} == {(4006, 60)}
    assert totals["5min"][2] == 4 and totals["day"][2] == 2  # two buckets each side of midnight


def test_totals_over_partial_days_are_exact(tmp_path: Path) -> None:
    writer, reader = make(tmp_path)
    writer.commit([TrafficDelta(T0 + i * 300, "wwan0", 100, 0) for i in range(-24, 48)])  # 2 h before, 4 h after
    since = dt.datetime.fromtimestamp(T0 - 3600, TZ)
    until = dt.datetime.fromtimestamp(T0 + 7200 + 600, TZ)
    assert reader.totals(None, since, until)["wwan0"].rx_bytes == 100 * (12 + 24 + 2)
    pieces = reader.cover(since, until)
    assert {p[0] for p in pieces} == {"hour", "5min"}


def test_writes_are_atomic(tmp_path: Path) -> None:
    writer, reader = make(tmp_path)
    reading = Reading(3, "b", 10.0, 1.0, 1, 2, 3, 4)
    delta = TrafficDelta(T0, "wwan0", 10, 0)
    writer.conn.execute("CREATE TRIGGER fail BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    from datacap.store.writer import MeterEvent

    with pytest.raises(StoreError, match="nothing was written"):
        writer.commit([delta], counters={"wwan0": reading}, events=[MeterEvent(1, "wwan0", "reset", "x")])
    assert reader.counters() == {}
    assert reader.conn.execute("SELECT count(*) FROM usage").fetchone()[0] == 0


def test_records_add_up_to_interface_bytes_and_carry_attribution(tmp_path: Path) -> None:
    writer, reader = make(tmp_path)
    writer.commit([TrafficDelta(T0, "wwan0", 1000, 500, 10, 5)],
                  [AttribDelta(T0, "wwan0", 600, 100, flows=3, app=AppIdentity("firefox"), service="youtube")])
    records = reader.usage_records(dt.datetime.fromtimestamp(T0 - 3600, TZ), dt.datetime.fromtimestamp(T0 + 3600, TZ))
    assert sum(r.rx_bytes for r in records) == 1000 and sum(r.tx_bytes for r in records) == 500
    attributed = [r for r in records if r.app]
    assert attributed[0].app == "firefox" and attributed[0].service == "youtube"
    assert [r.rx_packets for r in records if not r.app] == [10]


def test_attribution_larger_than_interface_is_scaled_to_fit(tmp_path: Path) -> None:
    writer, reader = make(tmp_path)
    writer.commit([TrafficDelta(T0, "wwan0", 1000, 0)],
                  [AttribDelta(T0, "wwan0", 1500, 0, app=AppIdentity("a")),
                   AttribDelta(T0, "wwan0", 500, 0, app=AppIdentity("b"))])
    records = reader.usage_records(dt.datetime.fromtimestamp(T0, TZ), dt.datetime.fromtimestamp(T0 + 300, TZ))
    assert sum(r.rx_bytes for r in records) == 1000
    assert {r.app: r.rx_bytes for r in records if r.app} == {"a": 750, "b": 250}


def test_records_use_hours_before_the_5min_retention_and_5min_after(tmp_path: Path) -> None:
    writer, reader = make(tmp_path)
    writer.commit([TrafficDelta(T0 + i * 300, "wwan0", 1, 0) for i in range(-36, 36)])
    writer.apply_retention(T0 + 1, {"5min": 1})  # keeps 5-minute rows from T0 on
    records = reader.usage_records(dt.datetime.fromtimestamp(T0 - 3 * 3600, TZ),
                                   dt.datetime.fromtimestamp(T0 + 3 * 3600, TZ))
    assert sum(r.rx_bytes for r in records) == 72
    assert {r.seconds for r in records} == {300, 3600}
    hours = [r for r in records if r.seconds == 3600]
    fives = [r for r in records if r.seconds == 300]
    assert max(r.start for r in hours) < min(r.start for r in fives)


def test_retention_keeps_coarser_resolutions(tmp_path: Path) -> None:
    writer, reader = make(tmp_path)
    writer.commit([TrafficDelta(T0, "wwan0", 5, 5)])
    deleted = writer.apply_retention(T0 + 30 * 86400, {"5min": 7 * 86400, "hour": 365 * 86400})
    assert deleted == 1
    assert reader.interfaces()[0].total.total_bytes == 10


def test_migrations_are_recorded_and_reapplying_is_a_no_op(tmp_path: Path) -> None:
    open_write(tmp_path / "s.db").close()
    conn = open_write(tmp_path / "s.db")
    names = [r[0] for r in conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == [m[0] for m in all_migrations()]


def test_a_store_from_a_newer_datacap_is_refused(tmp_path: Path) -> None:
    conn = open_write(tmp_path / "s.db")
    conn.execute("INSERT INTO migrations VALUES ('9999_future', 0)")
    conn.close()
    with pytest.raises(StoreError, match="newer datacap"):
        open_write(tmp_path / "s.db")


def test_readers_cannot_write(tmp_path: Path) -> None:
    make(tmp_path)
    reader = open_read(tmp_path / "s.db")
    with pytest.raises(sqlite3.OperationalError):
        reader.execute("DELETE FROM usage")


def test_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        open_read(tmp_path / "nope.db")


def test_only_one_daemon_per_store(tmp_path: Path) -> None:
    first, second = DaemonLock(tmp_path / "s.db"), DaemonLock(tmp_path / "s.db")
    first.acquire()
    try:
        with pytest.raises(StoreBusy):
            second.acquire()
    finally:
        first.release()
    second.acquire()
    second.release()


def test_cover_uses_months_inside_and_finer_buckets_at_the_edges(tmp_path: Path) -> None:
    writer, reader = make(tmp_path)
    start = int(dt.datetime(2026, 1, 15, 13, 25, tzinfo=TZ).timestamp())
    writer.commit([TrafficDelta(start + i * 7 * 3600, "wwan0", 1, 0) for i in range(1200)])  # ~ 11.5 months
    since = dt.datetime(2026, 1, 20, 10, 5, tzinfo=TZ)
    until = dt.datetime(2026, 11, 3, 17, 40, tzinfo=TZ)
    pieces = reader.cover(since, until)
    assert [p[0] for p in pieces if p[0] == "month"] == ["month"]
    inside = sum(1 for i in range(1200) if since.timestamp() <= start + i * 7 * 3600 < until.timestamp())
    assert reader.totals(None, since, until)["wwan0"].rx_bytes == inside


def test_meta_is_set_replaced_and_removed(tmp_path: Path) -> None:
    writer, reader = make(tmp_path)
    writer.set_meta("attribution_off", "needs root")
    writer.set_meta("attribution_off", "needs CAP_NET_ADMIN")
    assert reader.meta("attribution_off") == "needs CAP_NET_ADMIN"
    writer.set_meta("attribution_off", None)
    assert reader.meta("attribution_off") is None
