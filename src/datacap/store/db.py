"""Opening the store: one SQLite file in WAL mode, one writer, any number of read-only readers.

The store's directory is created 0750 and its files (database, -wal, -shm) 0640: the store keeps
raw carrier texts, which are nobody else's business. SQLite gives the -wal and -shm files the
database file's own mode, so creating the database file 0640 first is enough.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import stat
from pathlib import Path

from datacap.errors import StoreBusy, StoreError
from datacap.store.schema import migrate

DIR_MODE = 0o750
FILE_MODE = 0o640
DAMAGED_HINT = "run `datacap doctor` to see what is damaged and `datacap doctor --rebuild-rollups` to repair it"


def default_db_path() -> Path:
    """``$DATACAP_DB``, else /var/lib/datacap/datacap.db for root, else the XDG data dir."""
    if env := os.environ.get("DATACAP_DB"):
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/datacap/datacap.db")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "datacap" / "datacap.db"


def describe_sqlite_error(path: object, exc: sqlite3.Error) -> str:
    """One sentence a user can act on, for the SQLite errors faults produce."""
    text = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        code &= 0xFF  # the primary code of an extended one (SQLITE_IOERR_SHMSIZE is an I/O error)
    if code == sqlite3.SQLITE_FULL or "disk is full" in text or (code == sqlite3.SQLITE_IOERR and _no_space(path)):
        return f"the disk holding {path} is full ({text}): free some space"
    if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in text or "not a database" in text
                                                    or code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)):
        return f"the store {path} is damaged ({text}): {DAMAGED_HINT}"
    if code == sqlite3.SQLITE_READONLY or "readonly" in text:
        return f"the store {path} cannot be written ({text}): is its directory or file system read-only?"
    if code == sqlite3.SQLITE_IOERR or "disk I/O error" in text:
        return f"an I/O error on {path} ({text}): check the disk"
    return f"the store {path}: {text}"


def _no_space(path: object) -> bool:
    """Whether the file system holding ``path`` has no block left (SQLite reports some such writes as I/O errors)."""
    try:
        st = os.statvfs(Path(str(path)).parent)
    except OSError:
        return False
    return st.f_bavail == 0


def _exists(path: Path) -> bool:
    """Whether ``path`` exists; a directory we may not enter is a clear error, not a traceback."""
    try:
        path.stat()
    except FileNotFoundError:
        return False
    except NotADirectoryError:
        raise StoreError(f"no store at {path}: {path.parent} is not a directory") from None
    except PermissionError:
        raise StoreError(f"cannot reach the store {path}: permission denied on {path.parent} "
                         "(run as a user who may read it, or point --db elsewhere)") from None
    except OSError as exc:
        raise StoreError(f"cannot reach the store {path}: {exc.strerror}") from None
    return True


def store_exists(path: Path) -> bool:
    """Whether a store file is at ``path`` (StoreError when its directory cannot be entered)."""
    return _exists(path)


def require_store(path: Path) -> None:
    """StoreError (exit 2) unless a store is at ``path``: commands that only read or update one never create it."""
    if not _exists(path):
        raise StoreError(f"no store at {path}: start `datacap run`, or `datacap import FILE.csv`, "
                         "or point --db / DATACAP_DB at an existing one")


def prepare_store_file(path: Path) -> None:
    """Create the store's directory (0750) and an empty database file (0640) when they are missing."""
    try:
        if not _exists(path.parent):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path.parent, DIR_MODE)
        if not _exists(path):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
            os.fchmod(fd, FILE_MODE)  # exactly 0640, whatever the umask
            os.close(fd)
    except FileExistsError:
        pass  # created by another process between the check and here
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {_os_reason(exc)}") from None


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied ({exc.filename or ''})"
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    return exc.strerror or str(exc)


def open_write(path: Path) -> sqlite3.Connection:
    """A read-write connection with the schema up to date.

    Autocommit mode (isolation_level=None): every write runs in an explicit ``BEGIN IMMEDIATE``
    transaction, so the writer holds the lock from the first statement and never deadlocks with a
    reader upgrading. synchronous=NORMAL in WAL survives a process crash (kill -9) with every
    committed transaction; a power cut may lose the last ones, and with them the raw counters they
    carried, so the next delta recounts those bytes: consistent either way.
    """
    prepare_store_file(path)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {path}: {describe_sqlite_error(path, exc)}") from exc
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open the store {path}: {describe_sqlite_error(path, exc)}") from exc
    except StoreError:
        conn.close()
        raise
    return conn


def open_read(path: Path) -> sqlite3.Connection:
    """A read-only connection; the store must exist (the daemon or an import creates it).

    A read-only copy of a store (a backup on a read-only medium, without its -shm file) cannot be
    opened the usual way: SQLite needs to create the -shm. It is then opened as immutable, which
    is right for a copy nobody writes (a -wal beside it is not read).
    """
    require_store(path)
    try:
        return _connect_ro(path, immutable=False)
    except sqlite3.OperationalError as exc:
        if "unable to open" not in str(exc) and "readonly" not in str(exc):
            raise StoreError(f"cannot read the store {path}: {describe_sqlite_error(path, exc)}") from exc
        first = exc
    try:
        return _connect_ro(path, immutable=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the store {path}: {describe_sqlite_error(path, first)}") from exc


def _connect_ro(path: Path, *, immutable: bool) -> sqlite3.Connection:
    uri = f"file:{_uri_path(path)}?mode=ro" + ("&immutable=1" if immutable else "")
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
    try:
        conn.execute("PRAGMA query_only=ON")
        version = conn.execute("SELECT count(*) FROM sqlite_master WHERE name='migrations'").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError):
            raise
        raise StoreError(f"cannot read the store {path}: {describe_sqlite_error(path, exc)}") from exc
    if not version:
        conn.close()
        raise StoreError(f"{path} is not a datacap store")
    return conn


def _uri_path(path: Path) -> str:
    from urllib.parse import quote

    return quote(str(path.absolute()), safe="/")


class DaemonLock:
    """An exclusive lock on the store file itself: one daemon per store, whatever path leads to it.

    ``flock`` locks the open file, so a symlink, a bind mount or a hard link to the same store
    meets the same lock; SQLite's own locks are POSIX record locks, which Linux keeps apart from
    ``flock``. The descriptor stays open until after the daemon closed its connection (closing
    another descriptor of the database file would drop SQLite's record locks).
    """

    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        self._fd: int | None = None

    def acquire(self) -> None:
        prepare_store_file(self.path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise StoreError(f"cannot open the store {self.path} for writing: {_os_reason(exc)}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise StoreError(f"{self.path} is not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            real = os.path.realpath(self.path)
            where = "" if real == str(self.path) else f" (the same file as {real})"
            raise StoreBusy(f"another datacap daemon is already metering into {self.path}{where}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
