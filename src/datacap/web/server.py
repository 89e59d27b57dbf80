"""``datacap serve``, and the dashboard in a thread (what :mod:`datacap.web.child` runs for the daemon).

Register with ``app.command()(serve)`` in datacap/cli/entry.py.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from datacap.cli.options import ConfigOpt, DbOpt
from datacap.config import Config, load_config
from datacap.errors import DatacapError
from datacap.store import default_db_path
from datacap.web.app import create_app
from datacap.web.auth import check_listen, parse_listen, refuse_token_argument, resolve_token
from datacap.web.child import WebPlugin

__all__ = ["WebPlugin", "WebThread", "address", "build_server", "serve", "start_in_thread"]

log = logging.getLogger("datacap.web")


def address(host: str, port: int) -> str:
    """The URL to print; an IPv6 host goes in brackets, a wildcard host is shown as this machine."""
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else ("[::1]" if host == "::" else host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def build_server(db_path: Path, cfg: Config, listen: str | None = None, token: str | None = None) -> uvicorn.Server:
    """A configured uvicorn.Server (not started). Raises ConfigError for a bad listen or a missing token."""
    host, port = parse_listen(listen or cfg.web.listen)
    token = token or resolve_token(cfg)
    check_listen(host, token)
    app = create_app(db_path, cfg, token, host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            proxy_headers=False, server_header=False, timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


@dataclass
class WebThread:
    """The dashboard running in a thread of the daemon; ``stop()`` asks uvicorn to exit and joins."""

    server: uvicorn.Server
    thread: threading.Thread

    @property
    def url(self) -> str | None:
        """The address once bound (the real port when 0 was asked), else None."""
        servers = getattr(self.server, "servers", None) or []
        for srv in servers:
            for sock in srv.sockets:
                port = sock.getsockname()[1]
                return address(self.server.config.host, port)
        return None

    def wait_started(self, timeout: float = 10.0) -> bool:
        """Block until uvicorn is accepting connections (or the thread died, or timeout passed)."""
        deadline = time.monotonic() + timeout
        pause = threading.Event()
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            pause.wait(0.02)
        return bool(self.server.started)

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_in_thread(db_path: Path, cfg: Config, listen: str | None = None, token: str | None = None) -> WebThread:
    """Start the dashboard in a thread; the caller joins it with ``WebThread.stop()`` on shutdown.

    uvicorn installs no signal handlers off the main thread, so the daemon keeps its own.
    """
    server = build_server(db_path, cfg, listen, token)
    thread = threading.Thread(target=server.run, name="datacap-web", daemon=True)
    thread.start()
    return WebThread(server, thread)


def serve(db: DbOpt = None, config: ConfigOpt = None,
          listen: Annotated[str | None, typer.Option("--listen", help="HOST:PORT (default web.listen, "
                                                     "127.0.0.1:8765)")] = None,
          token_file: Annotated[Path | None, typer.Option("--token-file", help="a file holding the access token "
                                                          "(or set DATACAP_WEB_TOKEN); required beyond "
                                                          "loopback")] = None,
          token: Annotated[str | None, typer.Option("--token", hidden=True,
                                                    help="refused: use --token-file")] = None) -> None:
    """Serve the dashboard, JSON API (/api/v1) and Prometheus metrics (/metrics).

    Example: datacap serve --listen 0.0.0.0:8765 --token-file /etc/datacap/web-token
    """
    refuse_token_argument(token)
    cfg = load_config(config)
    db_path = db or default_db_path()
    from datacap.config import default_config_path
    from datacap.privileges import secret_warnings

    for line in secret_warnings(cfg, config or default_config_path()):
        log.warning("%s", line)
    server = build_server(db_path, cfg, listen, resolve_token(cfg, token_file))
    _drop_privileges(db_path)
    typer.echo(f"datacap dashboard: {address(server.config.host, server.config.port)}  (Ctrl-C to stop)")
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal against the handler that
    # was there before it: with these no-op handlers in place that ends as a clean exit 0, not as a
    # KeyboardInterrupt traceback (Ctrl-C) or a death by signal (systemd stop).
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    except OSError as exc:  # the port is taken, or the address is not ours
        raise DatacapError(f"cannot listen on {server.config.host}:{server.config.port}: {exc.strerror}") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:  # uvicorn logs why (the port is taken) and returns without raising
        raise DatacapError(f"the dashboard could not listen on {server.config.host}:{server.config.port}")


def _drop_privileges(db_path: Path) -> None:
    """``serve`` needs no privilege: as root it becomes the datacap user when that user can read the
    store, and in any case holds no capability (a port below 1024 is not supported as root either)."""
    from datacap import privileges

    if os.geteuid() == 0:
        user = privileges.service_user()
        if user is not None and privileges.can_read_store(user, db_path):
            privileges.switch_user(user, keep=())
            return
        log.warning("serving as root without capabilities: create the %s user (scripts/install.sh does) "
                    "and give it the store, or run `datacap serve` as an ordinary user",
                    privileges.SERVICE_USER)
    privileges.drop_all()
