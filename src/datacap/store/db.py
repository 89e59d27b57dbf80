"""Opening the store: one SQLite file in WAL mode, one writer, any number of read-only readers."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path

from datacap.errors import StoreBusy, StoreError
from datacap.store.schema import migrate


def default_db_path() -> Path:
    """``$DATACAP_DB``, else /var/lib/datacap/datacap.db for root, else the XDG data dir."""
    if env := os.environ.get("DATACAP_DB"):
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/datacap/datacap.db")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "datacap" / "datacap.db"


def open_write(path: Path) -> sqlite3.Connection:
    """A read-write connection with the schema up to date.

    Autocommit mode (isolation_level=None): every write runs in an explicit ``BEGIN IMMEDIATE``
    transaction, so the writer holds the lock from the first statement and never deadlocks with a
    reader upgrading. synchronous=NORMAL in WAL survives a process crash (kill -9) with every
    committed transaction; a power cut may lose the last ones, and with them the raw counters they
    carried, so the next delta recounts those bytes: consistent either way.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {exc.strerror}") from exc
    return conn


def open_read(path: Path) -> sqlite3.Connection:
    """A read-only connection; the store must exist (the daemon or an import creates it)."""
    if not path.exists():
        raise StoreError(f"no store at {path}: start `datacap run`, or `datacap import FILE.csv`, "
                         "or point --db / DATACAP_DB at an existing one")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA query_only=ON")
        version = conn.execute("SELECT count(*) FROM sqlite_master WHERE name='migrations'").fetchone()[0]
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store {path}: {exc}") from exc
    if not version:
        raise StoreError(f"{path} is not a datacap store")
    return conn


class DaemonLock:
    """An exclusive lock next to the store: only one daemon meters into it at a time."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreBusy(f"another datacap daemon is already metering into {self.path.with_suffix('')}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
