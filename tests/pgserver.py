"""A real PostgreSQL server for tests and benchmarks, started from Debian's ``postgresql`` package.

``initdb`` and ``pg_ctl`` from /usr/lib/postgresql/*/bin into a fresh temporary directory, run as an
unprivileged user (PostgreSQL refuses root; ``nobody`` when we are root), listening only on a unix
socket inside that directory; stopped and removed by :meth:`PgServer.stop`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def pg_bin() -> Path | None:
    """The newest installed server's bin directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def unavailable() -> str | None:
    """Why no server can be started here, or None."""
    if pg_bin() is None:
        return "needs PostgreSQL (apt-get install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "needs runuser to start PostgreSQL as an unprivileged user"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "needs psycopg 3 (pip install 'datacap[hub-pg]')"
    return None


class PgServer:
    def __init__(self, *, fsync: bool = True, settings: dict[str, str] | None = None) -> None:
        bindir = pg_bin()
        assert bindir is not None
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="dc-pg-"))
        self.data = self.dir / "data"
        self.user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() != 0 else "nobody"
        if os.geteuid() == 0:
            os.chown(self.dir, pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid)
        os.chmod(self.dir, 0o755)
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "hub", "--auth=trust",
                   "--encoding=UTF8", "--no-locale"])
        conf = {"listen_addresses": "''", "unix_socket_directories": f"'{self.dir}'", "max_connections": "60",
                "fsync": "on" if fsync else "off", "shared_buffers": "128MB", **(settings or {})}
        with open(self.data / "postgresql.conf", "a") as f:
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-w", "-t", "60",
                   "start"])
        self.url = f"postgresql://hub@/postgres?host={self.dir}"

    def _run(self, argv: list[str]) -> None:
        if os.geteuid() == 0:
            argv = ["runuser", "-u", self.user, "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {proc.stdout}\n{proc.stderr}")

    def fresh_database(self, name: str) -> str:
        """A new empty database on this server; its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')  # type: ignore[arg-type]
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return f"postgresql://hub@/{name}?host={self.dir}"

    def stop(self) -> None:
        try:
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)  # pg_ctl -w returned: the server is gone
