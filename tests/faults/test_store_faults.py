"""The store under faults that need no root: a write refused for space (SQLite's page limit gives the
same SQLITE_FULL as a full disk), the memory bound while the store cannot be written, the lock
through other paths to the same file, file modes, read-only copies, a store in a closed directory."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from datacap.errors import StoreBusy, StoreError, StoreWriteFailed
from datacap.meter.delta import Reading
from datacap.meter.links import LinkSample
from datacap.meter.sampler import Meter
from datacap.store import DaemonLock, Reader, TrafficDelta, Writer, open_read, open_write
from tests.conftest import datacap_cmd, require, require_root, subprocess_env

TZ = ZoneInfo("Asia/Kolkata")  # +05:30: local hours are not UTC hours
BOOT = "boot-1"
T0 = 1_795_000_000 - 1_795_000_000 % 3600


def _sample(t: float, rx: int) -> LinkSample:
    reading = Reading(3, BOOT, t, T0 + t, rx, rx // 2, rx // 100, rx // 200)
    return LinkSample(BOOT, t, T0 + t, {"wwan0": reading}, {"wwan0": "rawip"})


def _fill(writer: Writer) -> int:
    """Cap the database at its current size plus a little: the next big write gets SQLITE_FULL."""
    pages = writer.conn.execute("PRAGMA page_count").fetchone()[0]
    writer.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    return int(pages)


def test_a_refused_write_rolls_back_cleanly_and_the_next_one_writes_everything(tmp_path: Path) -> None:
    writer = Writer(open_write(tmp_path / "s.db"), TZ)
    pages = _fill(writer)
    big = [TrafficDelta(T0 + 300 * i, "wwan0", 1000, 10) for i in range(5000)]
    with pytest.raises(StoreWriteFailed) as refused:
        writer.commit(big)  # before: "cannot rollback - no transaction is active" escaped as a traceback
    assert refused.value.disk_full
    assert not writer.conn.in_transaction
    writer.conn.execute(f"PRAGMA max_page_count = {pages * 1000}")
    writer.commit(big)
    reader = Reader(open_read(tmp_path / "s.db"), TZ)
    assert reader.conn.execute("SELECT sum(rx_bytes) FROM usage WHERE res = 'year'").fetchone()[0] == 5_000_000


def test_set_meta_and_migrations_on_a_full_store_fail_with_a_clear_message(tmp_path: Path) -> None:
    writer = Writer(open_write(tmp_path / "s.db"), TZ)
    _fill(writer)
    with pytest.raises(StoreWriteFailed, match="disk is full"):
        writer.set_meta("rollup_zone", "x" * 200_000)
    conn = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    conn.execute("PRAGMA max_page_count = 3")
    from datacap.store.schema import migrate

    with pytest.raises(StoreError, match="is full") as failed:
        migrate(conn, tmp_path / "fresh.db")
    assert "no transaction is active" not in str(failed.value)


def test_held_bytes_are_bounded_by_merging_5_minute_buckets_into_hours_before_dropping() -> None:
    meter = Meter({}, 10**12)
    meter.on_sample(_sample(0, 0))
    # Two days of traffic in one reading: spread over 576 five-minute buckets, none flushed.
    meter.on_sample(_sample(2 * 86400, 576 * 1000))
    held = meter.pending_bytes()
    assert meter.pending_entries() == 576

    def local_hour(bucket: int) -> int:
        return bucket - (bucket + 19800) % 3600  # +05:30

    done = meter.bound(200, local_hour)
    assert done.merged > 0 and done.dropped_bytes == 0
    assert meter.pending_entries() <= 200
    assert meter.pending_bytes() == held  # merged, not lost
    assert all(b == local_hour(b) for b, _, _ in list(meter._pending)[:done.merged // 12])
    # Past what hours can hold, the oldest hours go, and the meter says how much.
    done = meter.bound(10, local_hour)
    assert meter.pending_entries() <= 10
    assert done.dropped_bytes == held - meter.pending_bytes() > 0
    assert any(e.kind == "held" and "dropped" in e.detail for e in meter.batch().events)


def test_held_hours_land_in_the_right_local_hour_and_day(tmp_path: Path) -> None:
    writer = Writer(open_write(tmp_path / "s.db"), TZ)
    meter = Meter({}, 10**12)
    meter.on_sample(_sample(0, 0))
    meter.on_sample(_sample(86400, 288 * 1000))
    meter.bound(30, lambda b: writer.rollups.starts(b)[1][1])
    batch = meter.batch()
    writer.commit(batch.traffic, (), batch.counters, batch.events)
    meter.flushed(batch)
    reader = Reader(writer.conn, TZ)
    by_res = dict(reader.conn.execute("SELECT res, sum(rx_bytes) FROM usage GROUP BY res").fetchall())
    assert set(by_res.values()) == {288_000}  # every resolution holds every byte
    hours = reader.conn.execute("SELECT start, sum(rx_bytes) FROM usage WHERE res = 'hour' GROUP BY start")
    assert all(total == 12_000 for _, total in list(hours)[1:-1])  # whole hours exact after merging


def test_lock_follows_the_file_through_symlinks_and_hard_links(tmp_path: Path) -> None:
    db = tmp_path / "real" / "s.db"
    open_write(db).close()
    (tmp_path / "link.db").symlink_to(db)
    os.link(db, tmp_path / "hard.db")
    first = DaemonLock(db)
    first.acquire()
    try:
        for other in (tmp_path / "link.db", tmp_path / "hard.db"):
            with pytest.raises(StoreBusy, match="already metering"):
                DaemonLock(other).acquire()  # before: each path had its own lock file
    finally:
        first.release()
    second = DaemonLock(tmp_path / "link.db")
    second.acquire()
    second.release()


def test_lock_follows_the_file_through_a_bind_mount(tmp_path: Path) -> None:
    require_root("unshare")
    db = tmp_path / "a" / "s.db"
    open_write(db).close()
    (tmp_path / "b").mkdir()
    first = DaemonLock(db)
    first.acquire()
    try:
        code = ("import sys; from pathlib import Path; from datacap.store import DaemonLock\n"
                "DaemonLock(Path(sys.argv[1])).acquire()")
        proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                               'mount --bind "$1" "$2" && exec "$3" -c "$4" "$2/s.db"', "sh",
                               str(tmp_path / "a"), str(tmp_path / "b"), sys.executable, code],
                              capture_output=True, text=True, env=subprocess_env(), timeout=60)
        assert proc.returncode != 0 and "StoreBusy" in proc.stderr, proc.stderr
    finally:
        first.release()


def test_store_directory_and_files_are_not_readable_by_others(tmp_path: Path) -> None:
    db = tmp_path / "new" / "s.db"
    old = os.umask(0o022)
    try:
        writer = Writer(open_write(db), TZ)
        writer.commit([TrafficDelta(T0, "wwan0", 1, 1)])
        lock = DaemonLock(db)
        lock.acquire()
        lock.release()
    finally:
        os.umask(old)
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o750
    for path in (db, db.with_name("s.db-wal"), db.with_name("s.db-shm")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    assert not db.with_name("s.db.lock").exists()


def _as_user() -> list[str]:
    """Root ignores file modes: run as nobody, so read-only really means read-only."""
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []


def test_a_read_only_copy_without_its_shm_can_be_read(tmp_path: Path) -> None:
    writer = Writer(open_write(tmp_path / "s.db"), TZ)
    writer.commit([TrafficDelta(T0, "wwan0", 123, 4)])
    writer.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    writer.conn.close()
    copy = Path(f"/tmp/dc-rocopy-{os.getpid()}")  # reachable by nobody, unlike pytest's tmp_path
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir()
    try:
        shutil.copy(tmp_path / "s.db", copy / "s.db")
        os.chmod(copy / "s.db", 0o444)
        os.chmod(copy, 0o555)
        proc = subprocess.run([*_as_user(), *datacap_cmd("interfaces", "--json", "--db", str(copy / "s.db"))],
                              capture_output=True, text=True, env=subprocess_env(HOME="/tmp"), cwd="/",
                              timeout=60)
        assert proc.returncode == 0, proc.stderr  # before: "unable to open database file"
        assert '"rx_bytes": 123' in proc.stdout
    finally:
        os.chmod(copy, 0o755)
        shutil.rmtree(copy, ignore_errors=True)


def test_a_store_in_a_directory_nobody_may_enter_is_a_clear_error(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "needs root to run the command as another user")
    closed = Path(f"/tmp/dc-closed-{os.getpid()}")
    shutil.rmtree(closed, ignore_errors=True)
    closed.mkdir(mode=0o700)
    try:
        open_write(closed / "s.db").close()
        (closed / "config.toml").write_text("")
        for argv in (["usage", "--db", str(closed / "s.db")], ["run", "--db", str(closed / "s.db")],
                     ["usage", "--config", str(closed / "config.toml")]):
            proc = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                   *datacap_cmd(*argv)], capture_output=True, text=True,
                                  env=subprocess_env(HOME="/tmp", XDG_DATA_HOME="/tmp/dc-none"), cwd="/",
                                  timeout=60)
            assert proc.returncode == 2, (argv, proc.stderr)
            assert "Traceback" not in proc.stderr and "permission denied" in proc.stderr.lower(), proc.stderr
    finally:
        shutil.rmtree(closed, ignore_errors=True)
