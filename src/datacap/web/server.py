"""The dashboard's server: built from the config, run in a thread (what :mod:`datacap.web.child` runs
for the daemon, and `datacap serve` in the foreground, datacap.cli.web)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from datacap.config import Config
from datacap.web.app import create_app
from datacap.web.auth import check_listen, parse_listen, resolve_token
from datacap.web.child import WebPlugin

__all__ = ["WebPlugin", "WebThread", "address", "build_server", "start_in_thread"]

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
