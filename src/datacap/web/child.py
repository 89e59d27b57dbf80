"""The dashboard as a child process of ``datacap run`` that holds no privilege at all.

The daemon keeps the capabilities metering needs (netlink to conntrack and nftables); a bug in the
web server, the one part that parses requests from the network, must not be able to use them. So
``datacap run`` starts ``python -m datacap.web.child``: before it reads anything the child clears
every capability set and sets no_new_privs (:func:`datacap.privileges.drop_all`), and it runs as the
daemon's user (``datacap``; root only when that user does not exist, and then without capabilities).

What the child needs comes through its stdin as a pickle (the store's path, the validated config,
where to listen, the token): never through argv, which every local user can read in ``ps``. It
answers with one line on stdout, ``listening URL`` (or ``failed REASON``), and serves until
SIGTERM, or until the daemon dies (PR_SET_PDEATHSIG), whichever comes first.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from datacap.model import AttribDelta

log = logging.getLogger("datacap.web")
START_TIMEOUT = 20.0  # seconds for the child to import the app and bind
RESTART_AFTER = 30.0  # seconds before a dashboard that died is started again


@dataclass(frozen=True)
class WebSpec:
    """What the child is told through its stdin."""

    db_path: Path
    cfg: Any  # datacap.config.Config (pickled: a validated model, no need to re-read a 0600 file)
    listen: str | None
    token: str | None


class WebProcess:
    """One running dashboard child; ``stop()`` ends it (SIGTERM, then SIGKILL after ``timeout``)."""

    def __init__(self, spec: WebSpec) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DATACAP_WEB_TOKEN"}
        src = str(Path(__file__).resolve().parents[2])  # this checkout's datacap, whatever is installed
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen([sys.executable, "-m", "datacap.web.child"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, close_fds=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            pickle.dump(spec, self.proc.stdin)
            self.proc.stdin.flush()
            # The pipe stays open for the daemon's write health (a full disk must show on the
            # dashboard while nothing reaches the store); never blocking the metering thread.
            os.set_blocking(self.proc.stdin.fileno(), False)
        except BrokenPipeError:
            pass
        self.url: str | None = None
        self.error: str | None = None
        line = _read_line(self.proc.stdout, START_TIMEOUT)
        if line.startswith("listening "):
            self.url = line.removeprefix("listening ").strip()
        else:
            self.error = line.removeprefix("failed ").strip() or "it exited without saying why"
            self.stop()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send_health(self, line: str) -> bool:
        """Tell the child the daemon's write health (one JSON line); False when it could not be sent
        now (the child is busy or gone: the next poll sends it again)."""
        stdin = self.proc.stdin
        if stdin is None or stdin.closed:
            return False
        try:
            return os.write(stdin.fileno(), (line + "\n").encode()) == len(line) + 1
        except (BlockingIOError, BrokenPipeError, OSError):
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # the child's health reader ends
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _read_line(stream: IO[bytes], timeout: float) -> str:
    """The child's first line, or "" when it says nothing within ``timeout`` (or exits)."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = stream.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return ""
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return ""
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace")


class WebPlugin:
    """The dashboard as a daemon plugin: a child process started with the daemon, restarted if it
    dies, stopped on shutdown. Raises ConfigError (the plugin is then left out) for a bad listen
    address or a missing token, before any process starts."""

    name = "web"

    def __init__(self, db_path: Path, cfg: Any, listen: str | None = None, token: str | None = None) -> None:
        from datacap.web.auth import check_listen, parse_listen, resolve_token

        token = token or resolve_token(cfg)
        host, _ = parse_listen(listen or cfg.web.listen)
        check_listen(host, token)
        self.spec = WebSpec(db_path, cfg, listen, token)
        self._restart_at: float | None = None
        self._health_sent = ""
        self.web = self._start()

    def _start(self) -> WebProcess:
        self._health_sent = ""  # a new child knows nothing yet
        web = WebProcess(self.spec)
        if web.url:
            log.info("dashboard: %s (process %d, no privileges)", web.url, web.pid)
        else:
            log.error("the dashboard did not start on %s: %s", self.spec.listen or self.spec.cfg.web.listen,
                      web.error)
            self._restart_at = time.monotonic() + RESTART_AFTER
        return web

    def poll(self, now: float) -> Iterable[AttribDelta]:
        self._share_health()
        if self.web.url and not self.web.alive():
            log.error("the dashboard (process %d) exited with %s; starting it again in %.0f s", self.web.pid,
                      self.web.proc.returncode, RESTART_AFTER)
            self.web.stop()
            self.web.url = None
            self._restart_at = time.monotonic() + RESTART_AFTER
        if self._restart_at is not None and time.monotonic() >= self._restart_at:
            self._restart_at = None
            self.web = self._start()
        return ()

    def _share_health(self) -> None:
        from datacap.store.health import WRITE_HEALTH

        if not WRITE_HEALTH.active or not self.web.url:
            return
        line = WRITE_HEALTH.to_meta()
        if line != self._health_sent and self.web.send_health(line):
            self._health_sent = line

    def after_flush(self, now: float) -> None:
        return None

    def close(self) -> None:
        self.web.stop()


def _follow_health(stream: IO[bytes]) -> None:
    """The daemon's write health, one JSON line per change, into this process's WRITE_HEALTH (what
    /metrics, /api/v1/health and the overview show). Ends when the daemon closes the pipe; a daemon
    thread, since a blocked read cannot be joined and the process ends right after the pipe does."""
    from datacap.store.health import WRITE_HEALTH, from_meta

    for line in stream:
        doc = from_meta(line.decode("utf-8", "replace"))
        if doc is None:
            continue
        for key, value in doc.items():
            if hasattr(WRITE_HEALTH, key):
                setattr(WRITE_HEALTH, key, value)
        WRITE_HEALTH.active = True


def main() -> int:
    """The child: drop everything, read the spec, serve until SIGTERM or the daemon's death."""
    from datacap import privileges

    privileges.die_with_parent(signal.SIGTERM)
    privileges.drop_all()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    spec: WebSpec = pickle.load(sys.stdin.buffer)
    threading.Thread(target=_follow_health, args=(sys.stdin.buffer,), name="datacap-health", daemon=True).start()
    # SIGTERM/SIGINT wait for sigwait below: blocked before the server thread starts, so it inherits
    # that. SIGHUP (a reload) is the daemon's business.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    from datacap.errors import DatacapError
    from datacap.web.server import start_in_thread

    try:
        web = start_in_thread(spec.db_path, spec.cfg, spec.listen, spec.token)
    except DatacapError as exc:
        print(f"failed {exc}", flush=True)
        return 2
    if not web.wait_started(START_TIMEOUT):
        print("failed could not listen (is the port taken?)", flush=True)
        web.stop()
        return 1
    print(f"listening {web.url}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    web.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
